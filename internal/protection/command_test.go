package protection

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skolbro/skolbro/internal/identity"
)

func runCommand(t *testing.T, r *Register, op, stdin string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Command(bg, op, r, strings.NewReader(stdin), &out, testNow)
	assertNoNumberInText(t, op+" output", out.String())
	if err != nil {
		assertNoNumberInText(t, op+" error", err.Error())
	}
	return out.String(), err
}

func TestCommandAddListRemove(t *testing.T) {
	t.Parallel()
	r := newFileRegister(t, filepath.Join(t.TempDir(), "protect.json"))
	short0 := r.ShortKey(mustPNR(t, testNumbers[0]))
	short1 := r.ShortKey(mustPNR(t, testNumbers[1]))

	steps := []struct {
		name, op, stdin string
		wantOut         []string // substrings of the output
		wantErr         error
	}{
		{"init", "init", "", []string{"ready"}, nil},
		{"list empty", "list", "", []string{"empty"}, nil},
		{"add with note", "add", testNumbers[0] + "\nbeslut rektor\n", []string{"Added", short0}, nil},
		{"add dashed 10-digit form, no note, no final newline", "add",
			testNumbers[1][2:8] + "-" + testNumbers[1][8:], []string{"Added", short1}, nil},
		{"add again", "add", testNumbers[0] + "\n", []string{"Already", short0, "unchanged"}, nil},
		{"list", "list", "", []string{"KEY", short0, short1, "2025-03-01", "beslut rektor"}, nil},
		{"remove", "remove", "  " + testNumbers[0] + "  \r\n", []string{"Removed", short0}, nil},
		{"remove again", "remove", testNumbers[0] + "\n", nil, ErrNotMarked},
		{"add with a number in the note", "add", testNumbers[2] + "\nsee " + testNumbers[3] + "\n", nil, ErrBadNote},
		{"unknown op", "purge", "", nil, ErrUnknownOp},
	}
	for _, s := range steps {
		out, err := runCommand(t, r, s.op, s.stdin)
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil) != (err == nil) {
			t.Fatalf("%s: err = %v, want %v", s.name, err, s.wantErr)
		}
		for _, w := range s.wantOut {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output %q lacks %q", s.name, out, w)
			}
		}
		// Not a terminal: no prompt.
		if strings.Contains(out, "Personal number:") {
			t.Errorf("%s: prompted although stdin is not a terminal", s.name)
		}
	}
	wantStatus(t, r, person(t, testNumbers[0]), identity.ProtectionNone)
	wantStatus(t, r, person(t, testNumbers[1]), identity.ProtectionManual)
	wantStatus(t, r, person(t, testNumbers[2]), identity.ProtectionNone)
	out, _ := runCommand(t, r, "list", "")
	if strings.Contains(out, short0) {
		t.Errorf("list still shows the removed entry: %q", out)
	}
}

// TestCommandRefusesInvalidNumbers: a bad number is refused with a
// message that does not repeat it, and nothing is stored.
func TestCommandRefusesInvalidNumbers(t *testing.T) {
	t.Parallel()
	r := newFileRegister(t, filepath.Join(t.TempDir(), "protect.json"))
	if _, err := runCommand(t, r, "init", ""); err != nil {
		t.Fatal(err)
	}
	badLuhn := testNumbers[0][:11] + string('0'+(testNumbers[0][11]-'0'+1)%10)
	tests := []struct {
		name, stdin string
		want        error
	}{
		{"wrong check digit", badLuhn + "\n", ErrBadInput},
		{"wrong check digit, dashed", badLuhn[2:8] + "-" + badLuhn[8:] + "\n", ErrBadInput},
		{"too short", "1234567\n", ErrBadInput},
		{"letters", "19121212-12AB\n", ErrBadInput},
		{"number on the second line", "\n" + testNumbers[0] + "\n", ErrBadInput},
		{"two numbers on one line", testNumbers[0] + " " + testNumbers[1] + "\n", ErrBadInput},
		{"empty", "", ErrNoInput},
		{"too long", strings.Repeat("1", 5000) + "\n", nil},
	}
	for _, tc := range tests {
		for _, op := range []string{"add", "remove"} {
			out, err := runCommand(t, r, op, tc.stdin)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("%s %s: err = %v, want %v", tc.name, op, err, tc.want)
			}
			if err != nil && strings.TrimSpace(tc.stdin) != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.stdin)[:6]) {
				t.Errorf("%s %s: error repeats the input", tc.name, op)
			}
			if out != "" {
				t.Errorf("%s %s: printed %q, want nothing", tc.name, op, out)
			}
		}
	}
	if got, err := r.List(bg); err != nil || len(got) != 0 {
		t.Errorf("register after refused input = %v, %v; want empty", got, err)
	}
}

// TestCommandPromptsOnCharDevice: a prompt is printed when stdin is a
// character device (here /dev/null, which then gives no number).
func TestCommandPromptsOnCharDevice(t *testing.T) {
	t.Parallel()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Skip("no null device")
	}
	defer f.Close()
	r := newFileRegister(t, filepath.Join(t.TempDir(), "protect.json"))
	var out bytes.Buffer
	err = Command(bg, "add", r, f, &out, testNow)
	if !errors.Is(err, ErrNoInput) {
		t.Errorf("err = %v, want ErrNoInput", err)
	}
	if !strings.Contains(out.String(), "Personal number:") {
		t.Errorf("output %q has no prompt", out.String())
	}
}
