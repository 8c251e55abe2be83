package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/identity"
)

func validAction() AdminAction {
	return AdminAction{
		Time: testNow, TxnID: "0a1b2c3d4e5f", Channel: ChannelWeb, Admin: strings.Repeat("ad", 32),
		Action: ActionSubjectAccess, SubjectKeys: []string{strings.Repeat("0f", 32), strings.Repeat("1e", 32)},
	}
}

// TestAdminActionHasNoFieldForValues pins AdminAction's fields, as
// TestEventHasNoFieldForValues pins Event's.
func TestAdminActionHasNoFieldForValues(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(validAction())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	want := []string{"action", "admin", "channel", "subject_keys", "time", "txn_id"}
	if diff := cmp.Diff(want, keys, cmpSorted); diff != "" {
		t.Errorf("JSON keys (-want +got):\n%s", diff)
	}
}

func TestAdminActionValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*AdminAction)
		ok     bool
	}{
		{"valid web lookup", func(*AdminAction) {}, true},
		{"valid cli lookup", func(a *AdminAction) { a.Channel, a.Admin, a.TxnID = ChannelCLI, "", "" }, true},
		{"register list without keys", func(a *AdminAction) { a.Action, a.SubjectKeys = ActionProtectionList, nil }, true},
		{"register add", func(a *AdminAction) { a.Action = ActionProtectionAdd }, true},
		{"register list with a key", func(a *AdminAction) { a.Action = ActionProtectionList }, false},
		{"lookup without a key", func(a *AdminAction) { a.SubjectKeys = nil }, false},
		{"personal number as a key", func(a *AdminAction) { a.SubjectKeys = []string{pupilPN} }, false},
		{"a key repeated", func(a *AdminAction) { a.SubjectKeys = []string{a.SubjectKeys[0], a.SubjectKeys[0]} }, false},
		{"admin by name", func(a *AdminAction) { a.Admin = "Tolvan Tolvansson" }, false},
		{"web action without an admin", func(a *AdminAction) { a.Admin = "" }, false},
		{"cli action naming an admin", func(a *AdminAction) { a.Channel = ChannelCLI }, false},
		{"unknown channel", func(a *AdminAction) { a.Channel = "email" }, false},
		{"unknown action", func(a *AdminAction) { a.Action = "peek" }, false},
		{"request id with spaces", func(a *AdminAction) { a.TxnID = "a b" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := validAction()
			tc.change(&a)
			err := a.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && (!errors.Is(err, ErrInvalidAction) || strings.Contains(err.Error(), "Tolvan") || pnPattern.MatchString(err.Error())) {
				t.Errorf("error %q", err)
			}
		})
	}
}

// TestCase37_ActionLogFilesAndRoundTrip: the admin action log is its own
// stream of 0600 files in the release log's directory; what is written is
// read back, filtered by date; neither stream reads the other's files;
// an invalid action is refused and never written.
func TestCase37_ActionLogFilesAndRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := newClock(testNow)
	releases := openSink(t, FileSinkConfig{Dir: dir, Now: clk.Now})
	l, err := OpenActionLog(FileSinkConfig{Dir: dir, Now: clk.Now, RotateDaily: true})
	if err != nil {
		t.Fatal(err)
	}
	k := testKeyer(t)
	pupil := k.KeyForPersonalNumber(mustPN(t, pupilPN))
	ev := validEvent()
	ev.SubjectKey = pupil
	write(t, releases, ev)
	ctx := context.Background()
	first := AdminAction{TxnID: "req-1", Channel: ChannelWeb, Admin: k.KeyForStableID(identity.NewSecret("admin@skola")),
		Action: ActionSubjectAccess, SubjectKeys: []string{pupil}}
	if err := l.Write(ctx, first); err != nil {
		t.Fatal(err)
	}
	clk.Add(24 * time.Hour)
	second := AdminAction{Channel: ChannelCLI, Action: ActionProtectionList}
	if err := l.Write(ctx, second); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(ctx, AdminAction{Channel: ChannelWeb, Admin: "Tolvan", Action: ActionSubjectAccess, SubjectKeys: []string{pupil}}); !errors.Is(err, ErrInvalidAction) {
		t.Errorf("an action naming the admin: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	entries, _ := os.ReadDir(dir)
	var actionFiles int
	for _, e := range entries {
		fi, _ := e.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", e.Name(), fi.Mode().Perm())
		}
		if regexp.MustCompile(`^admin-actions-\d{8}T\d{6}Z\.jsonl$`).MatchString(e.Name()) {
			actionFiles++
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				checkNoPersonalData(t, line)
			}
		}
	}
	if actionFiles != 2 {
		t.Errorf("%d action log files, want 2 (daily rotation)", actionFiles)
	}

	res, err := ReadActions(ctx, dir, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	first.Time, second.Time = testNow, testNow.Add(24*time.Hour)
	if diff := cmp.Diff([]AdminAction{first, second}, res.Actions); diff != "" || res.Files != 2 || res.Skipped != 0 {
		t.Errorf("read back (%d files, %d skipped) (-want +got):\n%s", res.Files, res.Skipped, diff)
	}
	later, _ := ReadActions(ctx, dir, testNow.Add(time.Hour))
	if len(later.Actions) != 1 || later.Actions[0].Action != ActionProtectionList {
		t.Errorf("since: %+v", later.Actions)
	}
	scan, err := Scan(ctx, dir, pupil)
	if err != nil || len(scan.Records) != 1 || scan.Files != 1 || scan.Skipped != 0 {
		t.Errorf("the release scan read the action log: %+v %v", scan, err)
	}

	var out bytes.Buffer
	if err := ActionsCommand(ctx, dir, &out, "csv", time.Time{}); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil || len(rows) != 3 || rows[1][4] != ActionSubjectAccess || rows[1][5] != pupil || rows[2][2] != ChannelCLI {
		t.Errorf("csv: %v %q", err, rows)
	}
	out.Reset()
	if err := ActionsCommand(ctx, dir, &out, "json", time.Time{}); err != nil || !strings.Contains(out.String(), `"files_scanned": 2`) {
		t.Errorf("json: %v\n%s", err, out.String())
	}
	if err := ActionsCommand(ctx, dir, &out, "xml", time.Time{}); !errors.Is(err, ErrBadFormat) {
		t.Errorf("xml: %v", err)
	}
}
