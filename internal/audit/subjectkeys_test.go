package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/release"
)

// multiKeyLog writes, through the constructors the server uses, a login
// of the pupil with a personal number to one vendor, one without (or with
// the number dropped by the mapper) to another, a classmate's login, and
// an old-style event (one key only, as files written before SubjectKeys
// hold). It returns the directory.
func multiKeyLog(t *testing.T, k *SubjectKeyer) string {
	t.Helper()
	dir := t.TempDir()
	clk := newClock(testNow)
	s := openSink(t, FileSinkConfig{Dir: dir, Now: clk.Now})
	p := &policy.Policy{ID: "learning-app", Hash: strings.Repeat("ab", 32)}
	q := &policy.Policy{ID: "dnp", Hash: strings.Repeat("cd", 32)}
	eppn, _ := attr.Lookup(attr.EPPN)
	rel := &release.Released{Attributes: []release.Attribute{{Def: eppn, Values: []string{"x"}}}}
	withPN := &identity.Identity{StableID: identity.NewSecret("tolvan@skola.example.se"), PersonalNumber: mustPN(t, pupilPN)}
	withoutPN := &identity.Identity{StableID: identity.NewSecret("tolvan@skola.example.se"), PersonalNumberDropped: true}
	mate := &identity.Identity{StableID: identity.NewSecret("alva@skola.example.se"), PersonalNumber: mustPN(t, classmatePN)}

	write(t, s, ReleaseEvent(time.Time{}, "t1", "idp", ProtocolSAML, p, rel, k.Keys(withPN)...))
	clk.Add(time.Minute)
	write(t, s, ReleaseEvent(time.Time{}, "t2", "idp", ProtocolOIDC, q, rel, k.Keys(withoutPN)...))
	clk.Add(time.Minute)
	write(t, s, RefusalEvent(time.Time{}, "t3", "idp", ProtocolSAML, "dnp", q, "agreement_ended", k.Keys(withoutPN)...))
	write(t, s, ReleaseEvent(time.Time{}, "t4", "idp", ProtocolSAML, p, rel, k.Keys(mate)...))
	clk.Add(time.Minute)
	old := ReleaseEvent(time.Time{}, "t5", "idp", ProtocolSAML, q, rel)
	old.SubjectKey = k.Key(withPN) // the old form: the primary key alone
	write(t, s, old)
	return dir
}

// TestCase35_SubjectAccessFindsEveryRelease: a release is logged under
// every key of the login, so subject access by the personal number and by
// the stable id each find the pupil's releases across two vendors, the
// one without a number included when the stable id is given; the
// classmate's never; old single-key events still by their key; and one
// event found by two keys is reported once.
func TestCase35_SubjectAccessFindsEveryRelease(t *testing.T) {
	t.Parallel()
	k := testKeyer(t)
	dir := multiKeyLog(t, k)
	pn := k.KeyForPersonalNumber(mustPN(t, pupilPN))
	sid := k.KeyForStableID(identity.NewSecret("tolvan@skola.example.se"))
	txns := func(keys ...string) []string {
		t.Helper()
		res, err := Scan(context.Background(), dir, keys...)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range res.Records {
			out = append(out, r.Vendor+"/"+r.Outcome)
		}
		return out
	}
	tests := []struct {
		name string
		keys []string
		want []string
	}{
		{"by number", []string{pn}, []string{"learning-app/released", "dnp/released"}},
		{"by stable id", []string{sid}, []string{"learning-app/released", "dnp/released", "dnp/refused"}},
		{"by both, each event once", []string{pn, sid, pn}, []string{"learning-app/released", "dnp/released", "dnp/refused", "dnp/released"}},
		{"the classmate", []string{k.KeyForPersonalNumber(mustPN(t, classmatePN))}, []string{"learning-app/released"}},
	}
	for _, tc := range tests {
		got := txns(tc.keys...)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}

	lines := readLines(t, dir)
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]any{pn, sid}, first["subject_keys"]); diff != "" || first["subject_key"] != pn {
		t.Errorf("a login with a number: subject_key %v, subject_keys (-want +got):\n%s", first["subject_key"], diff)
	}
	for _, l := range lines {
		checkNoPersonalData(t, l)
		if strings.Contains(l, "tolvan") {
			t.Errorf("a stable id is in the log")
		}
	}
}

// TestCase35_ExtractStatesWhatItCannotCover: the statement follows the
// forms given and the log: the start of the log, old single-key events,
// unreadable lines.
func TestCase35_ExtractStatesWhatItCannotCover(t *testing.T) {
	t.Parallel()
	k := testKeyer(t)
	dir := multiKeyLog(t, k)
	f, err := os.OpenFile(filepath.Join(dir, logFileNames(t, dir)[0]), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"time":"2026-11-24T10:1`) // torn by a crash
	f.Close()
	res, err := Scan(context.Background(), dir, k.KeyForPersonalNumber(mustPN(t, pupilPN)))
	if err != nil {
		t.Fatal(err)
	}
	if res.SingleKeyEvents != 1 || !res.SingleKeyUntil.Equal(testNow.Add(3*time.Minute)) || res.Skipped != 1 || !res.LogStart.Equal(testNow) {
		t.Fatalf("scan: %d single-key events until %v, %d skipped, log start %v", res.SingleKeyEvents, res.SingleKeyUntil, res.Skipped, res.LogStart)
	}
	all := strings.Join(NotCovered(res, []string{ByPersonalNumber}), "\n")
	for _, want := range []string{
		"Only events logged under the identifiers given",
		"No stable id (user name) was given",
		"1 events in the log, up to 2026-11-24",
		"The log begins on 2026-11-24",
		"Refusals before the person logged in",
		"1 lines of the log could not be read",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the statement lacks %q:\n%s", want, all)
		}
	}
	both := strings.Join(NotCovered(&QueryResult{}, []string{ByPersonalNumber, ByStableID}), "\n")
	if strings.Contains(both, "was given") || !strings.Contains(both, "The log holds no files") {
		t.Errorf("both forms, no files:\n%s", both)
	}
	if bySID := strings.Join(NotCovered(res, []string{ByStableID}), "\n"); !strings.Contains(bySID, "No personal number was given") {
		t.Errorf("by stable id:\n%s", bySID)
	}
}

// fakeActionSink records admin actions, or refuses them all.
type fakeActionSink struct {
	got  []AdminAction
	fail bool
}

func (f *fakeActionSink) Write(_ context.Context, a AdminAction) error {
	if f.fail {
		return errors.New("disk full")
	}
	f.got = append(f.got, a)
	return nil
}

// TestCase37_SubjectCommandByStableIDAndRecorded: `skolbro audit subject`
// reads the forms --by names, one a line; the lookup is recorded by
// subject keys before the log is read, and is not made when it cannot be.
// Nothing typed is echoed.
func TestCase37_SubjectCommandByStableIDAndRecorded(t *testing.T) {
	t.Parallel()
	k := testKeyer(t)
	dir := multiKeyLog(t, k)
	pn := k.KeyForPersonalNumber(mustPN(t, pupilPN))
	sid := k.KeyForStableID(identity.NewSecret("tolvan@skola.example.se"))
	tests := []struct {
		name, by, stdin string
		wantErr         error
		wantKeys        []string
		wantRecords     int
	}{
		{"stable id", "stable-id", "tolvan@skola.example.se\n", nil, []string{sid}, 3},
		{"both", "pnr,stable-id", pupilPN + "\r\n  tolvan@skola.example.se \n", nil, []string{pn, sid}, 4},
		{"both, one line", "pnr,stable-id", pupilPN + "\n", ErrBadSubjectLine, nil, 0},
		{"stable id with a control character", "stable-id", "tolvan\x00@skola.example.se\n", ErrBadStableID, nil, 0},
		{"bad number before the stable id", "pnr,stable-id", "19121212-1213\ntolvan@skola.example.se\n", ErrBadSubjectPN, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forms, err := ParseLookupForms(tc.by)
			if err != nil {
				t.Fatal(err)
			}
			sink := &fakeActionSink{}
			var out, notes bytes.Buffer
			err = SubjectCommand(context.Background(), dir, k, strings.NewReader(tc.stdin), &out,
				SubjectOptions{Format: "json", By: forms, Now: testNow, Actions: sink, Notes: &notes})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			text := out.String() + notes.String()
			if err != nil {
				text += err.Error()
			}
			if strings.Contains(text, "tolvan") || pnPattern.MatchString(text) {
				t.Errorf("the output or error echoes the input")
			}
			if tc.wantErr != nil {
				if len(sink.got) != 0 || out.Len() != 0 {
					t.Errorf("a refused lookup was recorded or answered")
				}
				return
			}
			want := []AdminAction{{Time: testNow, Channel: ChannelCLI, Action: ActionSubjectAccess, SubjectKeys: tc.wantKeys}}
			if diff := cmp.Diff(want, sink.got); diff != "" {
				t.Errorf("recorded (-want +got):\n%s", diff)
			}
			var rep SubjectReport
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if len(rep.Records) != tc.wantRecords || !cmp.Equal(rep.SearchedBy, forms) || len(rep.NotCovered) == 0 {
				t.Errorf("report: %d records, searched by %v, %d limits", len(rep.Records), rep.SearchedBy, len(rep.NotCovered))
			}
		})
	}

	t.Run("not recorded, not made", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		err := SubjectCommand(context.Background(), dir, k, strings.NewReader(pupilPN), &out,
			SubjectOptions{Format: "csv", Now: testNow, Actions: &fakeActionSink{fail: true}})
		if err == nil || out.Len() != 0 {
			t.Errorf("err %v, %d bytes of output", err, out.Len())
		}
	})
	t.Run("csv notes", func(t *testing.T) {
		t.Parallel()
		var out, notes bytes.Buffer
		if err := SubjectCommand(context.Background(), dir, k, strings.NewReader(pupilPN), &out,
			SubjectOptions{Now: testNow, Notes: &notes}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(notes.String(), "not covered: No stable id") || strings.Contains(out.String(), "not covered") {
			t.Errorf("csv: the statement goes to the notes, the records to stdout:\n%s", notes.String())
		}
	})
	for _, bad := range []string{"name", "pnr,pnr", "pnr;stable-id"} {
		if _, err := ParseLookupForms(bad); !errors.Is(err, ErrBadLookupForm) {
			t.Errorf("--by %q: %v", bad, err)
		}
	}
}
