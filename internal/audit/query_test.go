package audit

import (
	"bytes"
	"context"
	"encoding/csv"
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
)

// subjectLog writes a day of logins for a pupil and a classmate to two
// vendors, across a size and a daily rotation, and returns the directory.
func subjectLog(t *testing.T) (dir string, keyer *SubjectKeyer) {
	t.Helper()
	keyer = testKeyer(t)
	dir = t.TempDir()
	clk := newClock(testNow)
	s := openSink(t, FileSinkConfig{Dir: dir, RotateDaily: true, MaxBytes: 1000, Now: clk.Now})
	pupil := &identity.Identity{Upstream: "school-idp", PersonalNumber: mustPN(t, pupilPN), StableID: identity.NewSecret("p1")}
	mate := &identity.Identity{Upstream: "school-idp", PersonalNumber: mustPN(t, classmatePN), StableID: identity.NewSecret("p2")}
	ev := func(id *identity.Identity, vendor, protocol string, names ...string) Event {
		return Event{
			TxnID: "req", Upstream: id.Upstream, Vendor: vendor, Protocol: protocol,
			Attributes: names, PolicyVersion: strings.Repeat("1", 64), Outcome: OutcomeReleased,
			SubjectKey: keyer.Key(id),
		}
	}
	write(t, s, ev(pupil, "learning-app", ProtocolSAML, attr.EPPN, attr.GivenName))
	write(t, s, ev(mate, "learning-app", ProtocolSAML, attr.EPPN, attr.GivenName))
	clk.Add(time.Hour)
	write(t, s, ev(pupil, "dnp", ProtocolSAML, attr.EPPN, attr.ScopedAffiliation))
	write(t, s, ev(mate, "dnp", ProtocolSAML, attr.EPPN))
	clk.Add(24 * time.Hour) // the next day, a new file
	masked := ev(pupil, "learning-app", ProtocolOIDC, attr.EPPN)
	masked.Masked = true
	write(t, s, masked)
	refused := ev(pupil, "dnp", ProtocolSAML)
	refused.Attributes, refused.Outcome, refused.Reason, refused.PolicyVersion = nil, OutcomeRefused, "agreement_ended", ""
	write(t, s, refused)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, keyer
}

func pupilRecords() []Record {
	day2 := testNow.Add(25 * time.Hour)
	return []Record{
		{Time: testNow, Vendor: "learning-app", Protocol: ProtocolSAML, Attributes: []string{attr.EPPN, attr.GivenName}, Outcome: OutcomeReleased},
		{Time: testNow.Add(time.Hour), Vendor: "dnp", Protocol: ProtocolSAML, Attributes: []string{attr.EPPN, attr.ScopedAffiliation}, Outcome: OutcomeReleased},
		{Time: day2, Vendor: "learning-app", Protocol: ProtocolOIDC, Attributes: []string{attr.EPPN}, Masked: true, Outcome: OutcomeReleased},
		{Time: day2, Vendor: "dnp", Protocol: ProtocolSAML, Attributes: []string{}, Outcome: OutcomeRefused, Reason: "agreement_ended"},
	}
}

func TestQuerySubjectAccess(t *testing.T) {
	t.Parallel()
	dir, keyer := subjectLog(t)
	if n := len(logFileNames(t, dir)); n < 3 {
		t.Fatalf("test setup: %d log files, want rotated ones too", n)
	}
	got, err := Query(dir, keyer.KeyForPersonalNumber(mustPN(t, pupilPN)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(pupilRecords(), got); diff != "" {
		t.Errorf("pupil's records (-want +got):\n%s", diff)
	}

	mate, err := Query(dir, keyer.KeyForPersonalNumber(mustPN(t, classmatePN)))
	if err != nil {
		t.Fatal(err)
	}
	if len(mate) != 2 {
		t.Fatalf("classmate: %d records, want 2", len(mate))
	}
	for _, r := range mate {
		if r.Time.After(testNow.Add(2 * time.Hour)) {
			t.Errorf("classmate's records include the pupil's next-day event %+v", r)
		}
	}

	nobody, err := Query(dir, keyer.KeyForPersonalNumber(mustPN(t, pnDigits("19991231999"))))
	if err != nil {
		t.Fatal(err)
	}
	if len(nobody) != 0 {
		t.Errorf("someone with no logins: %d records", len(nobody))
	}
	if _, err := Query(dir, ""); !errors.Is(err, ErrNoSubjectKey) {
		t.Errorf("empty key: err = %v, want ErrNoSubjectKey", err)
	}
}

// TestQueryTornLine appends what a crash mid-write leaves (a line without
// its end) and a line of garbage: both are skipped and counted, and the
// records are unchanged.
func TestQueryTornLine(t *testing.T) {
	t.Parallel()
	dir, keyer := subjectLog(t)
	key := keyer.KeyForPersonalNumber(mustPN(t, pupilPN))
	files := logFileNames(t, dir)
	last := filepath.Join(dir, files[len(files)-1])
	first := filepath.Join(dir, files[0])
	appendTo := func(path, s string) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	appendTo(first, "not json at all\n")
	appendTo(last, `{"time":"2026-11-25T11:15:00Z","txn_id":"req","vendor":"learning-app","subject_key":"`+key[:20])

	res, err := Scan(context.Background(), dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 2 {
		t.Errorf("skipped %d lines, want 2", res.Skipped)
	}
	if res.Files != len(files) {
		t.Errorf("scanned %d files, want %d", res.Files, len(files))
	}
	if diff := cmp.Diff(pupilRecords(), res.Records); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestWriteCSVAndJSON(t *testing.T) {
	t.Parallel()
	records := pupilRecords()
	records = append(records, Record{Time: testNow, Vendor: "=HYPERLINK(\"x\")", Protocol: ProtocolSAML, Outcome: OutcomeRefused, Reason: "unknown_vendor"})

	var buf bytes.Buffer
	if err := WriteCSV(&buf, records); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"time", "vendor", "protocol", "attributes", "masked", "outcome", "reason", "generation"},
		{"2026-11-24T10:15:00Z", "learning-app", "saml", "eduPersonPrincipalName; givenName", "false", "released", "", "0"},
		{"2026-11-24T11:15:00Z", "dnp", "saml", "eduPersonPrincipalName; eduPersonScopedAffiliation", "false", "released", "", "0"},
		{"2026-11-25T11:15:00Z", "learning-app", "oidc", "eduPersonPrincipalName", "true", "released", "", "0"},
		{"2026-11-25T11:15:00Z", "dnp", "saml", "", "false", "refused", "agreement_ended", ""},
		{"2026-11-24T10:15:00Z", "'=HYPERLINK(\"x\")", "saml", "", "false", "refused", "unknown_vendor", ""},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("CSV (-want +got):\n%s", diff)
	}

	buf.Reset()
	if err := WriteJSON(&buf, records[:4]); err != nil {
		t.Fatal(err)
	}
	var back []Record
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(pupilRecords(), back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
	buf.Reset()
	if err := WriteJSON(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(buf.String()); got != "[]" {
		t.Errorf("no records: %q, want []", got)
	}
}

func TestSummarise(t *testing.T) {
	t.Parallel()
	records := pupilRecords()
	records = append(records, Record{Time: testNow.Add(48 * time.Hour), Vendor: "learning-app", Protocol: ProtocolSAML, Attributes: []string{attr.GivenName}, Outcome: OutcomeReleased})
	want := []VendorSummary{
		{
			Vendor: "dnp", Protocols: []string{"saml"}, Refusals: 1,
			Attributes: []AttributeDates{
				{Name: attr.EPPN, Dates: []string{"2026-11-24"}},
				{Name: attr.ScopedAffiliation, Dates: []string{"2026-11-24"}},
			},
		},
		{
			Vendor: "learning-app", Protocols: []string{"oidc", "saml"},
			Attributes: []AttributeDates{
				{Name: attr.EPPN, Dates: []string{"2026-11-24", "2026-11-25"}},
				{Name: attr.GivenName, Dates: []string{"2026-11-24", "2026-11-26"}},
			},
		},
	}
	if diff := cmp.Diff(want, Summarise(records, nil)); diff != "" {
		t.Errorf("Summarise (-want +got):\n%s", diff)
	}

	// A login at 23:30 UTC is the next day in Stockholm.
	late := []Record{{Time: time.Date(2026, 11, 24, 23, 30, 0, 0, time.UTC), Vendor: "dnp", Protocol: "saml", Attributes: []string{attr.EPPN}, Outcome: OutcomeReleased}}
	loc := time.FixedZone("CET", 3600)
	if got := Summarise(late, loc)[0].Attributes[0].Dates; !cmp.Equal(got, []string{"2026-11-25"}) {
		t.Errorf("dates in CET: %v", got)
	}
}

func TestSubjectCommand(t *testing.T) {
	t.Parallel()
	dir, keyer := subjectLog(t)
	dashed := pupilPN[:8] + "-" + pupilPN[8:]
	short := pupilPN[2:8] + "-" + pupilPN[8:]
	forms := []string{pupilPN, dashed, short, pupilPN[2:]}
	tests := []struct {
		name    string
		stdin   string
		format  string
		wantErr error
		want    int // records expected
	}{
		{"12 digits, csv", pupilPN + "\n", "csv", nil, 4},
		{"dashed with spaces, default format", "  " + dashed + "  \n", "", nil, 4},
		{"10 digits, json", short + "\n", "json", nil, 4},
		{"classmate", classmatePN, "csv", nil, 2},
		{"bad control digit", pupilPN[:11] + string(rune('0'+(int(pupilPN[11]-'0')+1)%10)), "csv", ErrBadSubjectPN, 0},
		{"name instead of number", "Tolvan Tolvansson", "csv", ErrBadSubjectPN, 0},
		{"two numbers", pupilPN + "\n" + classmatePN + "\n", "csv", ErrBadSubjectLine, 0},
		{"nothing", "\n", "csv", ErrNoInput, 0},
		{"unknown format", pupilPN, "xml", ErrBadFormat, 0},
		{"too long", strings.Repeat("1", 2000), "csv", ErrBadSubjectLine, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := SubjectCommand(context.Background(), dir, keyer, strings.NewReader(tc.stdin), &out, SubjectOptions{Format: tc.format, Now: testNow})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			text := out.String()
			if err != nil {
				text += err.Error()
			}
			for _, f := range append(forms, classmatePN, pupilPN[2:8]+pupilPN[8:], "Tolvan") {
				if strings.Contains(text, f) {
					t.Errorf("output or error echoes the input")
				}
			}
			if pnPattern.MatchString(text) {
				t.Errorf("output has something like a personal number")
			}
			if tc.wantErr != nil {
				if out.Len() != 0 {
					t.Errorf("output on error: %d bytes", out.Len())
				}
				return
			}
			switch tc.format {
			case "json":
				var rep SubjectReport
				if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
					t.Fatal(err)
				}
				if len(rep.Records) != tc.want || len(rep.Summary) != 2 || rep.SkippedLines != 0 || rep.FilesScanned < 3 {
					t.Errorf("report: %d records, %d vendors, %d skipped, %d files", len(rep.Records), len(rep.Summary), rep.SkippedLines, rep.FilesScanned)
				}
				if !rep.GeneratedAt.Equal(testNow) {
					t.Errorf("generated_at %v", rep.GeneratedAt)
				}
			default:
				rows, err := csv.NewReader(&out).ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				if len(rows)-1 != tc.want {
					t.Errorf("%d CSV records, want %d", len(rows)-1, tc.want)
				}
			}
		})
	}
}
