package protection

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/store"
)

// backendUnderTest is one backend with a way to read its raw contents
// (the bytes as stored, bypassing the backend's code).
type backendUnderTest struct {
	backend RegisterBackend
	raw     func(t *testing.T) []byte
}

// runRegisterTests runs the register's behaviour on fresh backends made
// by newBackend; every backend's test calls it.
func runRegisterTests(t *testing.T, newBackend func(t *testing.T) backendUnderTest) {
	tests := []struct {
		name string
		run  func(t *testing.T, b backendUnderTest, r *Register)
	}{
		{"status-of-marked-and-unmarked", testRegisterStatus},
		{"add-twice-keeps-first", testRegisterAddTwice},
		{"remove", testRegisterRemove},
		{"list", testRegisterList},
		{"notes-refused", testRegisterBadNotes},
		{"no-personal-number-in-clear", testRegisterNoNumberInClear},
		{"backend-get-missing-key", testBackendMissingKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t)
			r, err := NewRegister(b.backend, testRegisterKey)
			if err != nil {
				t.Fatal(err)
			}
			tc.run(t, b, r)
		})
	}
}

func mustAdd(t *testing.T, r *Register, pnr, note string) {
	t.Helper()
	if err := r.Add(bg, mustPNR(t, pnr), note, testNow); err != nil {
		t.Fatalf("Add: %v", err)
	}
}

func wantStatus(t *testing.T, r *Register, id *identity.Identity, want identity.Protection) {
	t.Helper()
	got, err := r.Status(bg, id)
	if err != nil || got != want {
		t.Errorf("Status = %v, %v; want %v", got, err, want)
	}
}

func testRegisterStatus(t *testing.T, _ backendUnderTest, r *Register) {
	mustAdd(t, r, testNumbers[0], "")
	wantStatus(t, r, person(t, testNumbers[0]), identity.ProtectionManual)
	wantStatus(t, r, person(t, testNumbers[1]), identity.ProtectionNone)
	// Without a personal number the register cannot tell: it fails, and
	// the Resolver masks the person.
	if got, err := r.Status(bg, person(t, "")); !errors.Is(err, ErrNoPersonalNumber) || !errors.Is(err, ErrMissing) || got != identity.ProtectionUnknown {
		t.Errorf("Status without a number = %v, %v; want unknown, ErrNoPersonalNumber", got, err)
	}
	// The 10-digit form finds the same entry.
	id := &identity.Identity{PersonalNumber: mustPNR(t, testNumbers[0][2:8]+"-"+testNumbers[0][8:])}
	wantStatus(t, r, id, identity.ProtectionManual)
}

func testRegisterAddTwice(t *testing.T, b backendUnderTest, r *Register) {
	mustAdd(t, r, testNumbers[0], "first")
	later := testNow.AddDate(0, 1, 0)
	if err := r.Add(bg, mustPNR(t, testNumbers[0]), "second", later); !errors.Is(err, ErrAlreadyMarked) {
		t.Fatalf("second Add = %v, want ErrAlreadyMarked", err)
	}
	got, err := r.List(bg)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{{Key: r.ShortKey(mustPNR(t, testNumbers[0])), Added: "2025-03-01", Note: "first"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
}

func testRegisterRemove(t *testing.T, _ backendUnderTest, r *Register) {
	mustAdd(t, r, testNumbers[0], "")
	mustAdd(t, r, testNumbers[1], "")
	if err := r.Remove(bg, mustPNR(t, testNumbers[0])); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	wantStatus(t, r, person(t, testNumbers[0]), identity.ProtectionNone)
	wantStatus(t, r, person(t, testNumbers[1]), identity.ProtectionManual)
	if err := r.Remove(bg, mustPNR(t, testNumbers[0])); !errors.Is(err, ErrNotMarked) {
		t.Errorf("Remove of a removed person = %v, want ErrNotMarked", err)
	}
	if err := r.Remove(bg, identity.PersonalNumber{}); !errors.Is(err, ErrNoPersonalNumber) {
		t.Errorf("Remove without a number = %v, want ErrNoPersonalNumber", err)
	}
	if err := r.Add(bg, identity.PersonalNumber{}, "", testNow); !errors.Is(err, ErrNoPersonalNumber) {
		t.Errorf("Add without a number = %v, want ErrNoPersonalNumber", err)
	}
}

func testRegisterList(t *testing.T, _ backendUnderTest, r *Register) {
	if got, err := r.List(bg); err != nil || len(got) != 0 {
		t.Fatalf("List of an empty register = %v, %v", got, err)
	}
	if err := r.Add(bg, mustPNR(t, testNumbers[0]), "  beslut 2025-02, rektor  ", testNow.AddDate(0, 0, 1)); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, r, testNumbers[1], "")
	got, err := r.List(bg)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Key: r.ShortKey(mustPNR(t, testNumbers[1])), Added: "2025-03-01"},
		{Key: r.ShortKey(mustPNR(t, testNumbers[0])), Added: "2025-03-02", Note: "beslut 2025-02, rektor"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	for _, e := range got {
		if len(e.Key) != ShortKeyLen {
			t.Errorf("listed key has %d characters, want %d", len(e.Key), ShortKeyLen)
		}
	}
}

func testRegisterBadNotes(t *testing.T, _ backendUnderTest, r *Register) {
	tests := []struct{ name, note string }{
		{"too long", strings.Repeat("x", MaxNoteLen+1)},
		{"newline", "two\nlines"},
		{"tab", "a\tb"},
		{"12-digit number", "see " + testNumbers[1]},
		{"10-digit number", "see " + testNumbers[1][2:]},
		{"dashed number", "see " + testNumbers[1][2:8] + "-" + testNumbers[1][8:]},
		{"invalid utf-8", "\xff"},
	}
	for _, tc := range tests {
		err := r.Add(bg, mustPNR(t, testNumbers[0]), tc.note, testNow)
		if !errors.Is(err, ErrBadNote) {
			t.Errorf("%s: Add = %v, want ErrBadNote", tc.name, err)
		}
		if err != nil {
			assertNoNumberInText(t, tc.name+": error", err.Error())
		}
	}
	wantStatus(t, r, person(t, testNumbers[0]), identity.ProtectionNone)
	if err := r.Add(bg, mustPNR(t, testNumbers[0]), strings.Repeat("å", MaxNoteLen), testNow); err != nil {
		t.Errorf("Add with a note of %d characters: %v", MaxNoteLen, err)
	}
}

// testRegisterNoNumberInClear: whatever the register holds, read raw from
// the backend, has no form of any test number.
func testRegisterNoNumberInClear(t *testing.T, b backendUnderTest, r *Register) {
	for i, n := range testNumbers {
		if err := r.Add(bg, mustPNR(t, n), []string{"", "flyttat", "beslut rektor"}[i%3], testNow); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Remove(bg, mustPNR(t, testNumbers[0])); err != nil {
		t.Fatal(err)
	}
	raw := b.raw(t)
	if len(raw) == 0 {
		t.Fatal("raw contents are empty: the check would prove nothing")
	}
	// The raw contents do hold the entries (so the check is on real data).
	if !strings.Contains(string(raw), r.keyFor(mustPNR(t, testNumbers[1]))) {
		t.Fatal("raw contents do not hold a known entry key")
	}
	assertNoTestNumber(t, "raw register", raw)
}

func testBackendMissingKey(t *testing.T, b backendUnderTest, r *Register) {
	mustAdd(t, r, testNumbers[0], "")
	if _, err := b.backend.Get(bg, "no-such-key"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of an absent key = %v, want store.ErrNotFound", err)
	}
	if err := b.backend.Delete(bg, "no-such-key"); err != nil {
		t.Errorf("Delete of an absent key = %v, want nil", err)
	}
}

// TestRegisterKey checks the entry key against its definition:
// hex(HMAC-SHA256(key, "skolbro-protect-v1" || 12 digits)).
func TestRegisterKey(t *testing.T) {
	t.Parallel()
	r, err := NewRegister(nil, testRegisterKey)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, testRegisterKey)
	m.Write([]byte("skolbro-protect-v1" + testNumbers[0]))
	want := hex.EncodeToString(m.Sum(nil))
	if got := r.keyFor(mustPNR(t, testNumbers[0])); got != want {
		t.Errorf("keyFor = %s, want %s", got, want)
	}
	if got := r.ShortKey(mustPNR(t, testNumbers[0])); got != want[:ShortKeyLen] {
		t.Errorf("ShortKey = %s, want %s", got, want[:ShortKeyLen])
	}
	other, _ := NewRegister(nil, []byte(strings.Repeat("k", MinRegisterKeyLen)))
	if other.keyFor(mustPNR(t, testNumbers[0])) == want {
		t.Error("two register keys give the same entry key")
	}
	if _, err := NewRegister(nil, testRegisterKey[:MinRegisterKeyLen-1]); !errors.Is(err, ErrRegisterKeyTooShort) {
		t.Errorf("NewRegister with a short key = %v, want ErrRegisterKeyTooShort", err)
	}
	if r.Name() != "register" {
		t.Errorf("Name = %q", r.Name())
	}
}

// failingBackend fails every call.
type failingBackend struct{}

var errBackendDown = errors.New("backend down")

func (failingBackend) Set(context.Context, string, []byte) error { return errBackendDown }
func (failingBackend) Delete(context.Context, string) error      { return errBackendDown }
func (failingBackend) Get(context.Context, string) ([]byte, error) {
	return nil, errBackendDown
}
func (failingBackend) List(context.Context) (map[string][]byte, error) { return nil, errBackendDown }

// TestRegisterBackendDown: a failing backend is an error, never "not
// marked", so the Resolver fails closed.
func TestRegisterBackendDown(t *testing.T) {
	t.Parallel()
	r, err := NewRegister(failingBackend{}, testRegisterKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Status(bg, person(t, testNumbers[0]))
	if !errors.Is(err, errBackendDown) || got != identity.ProtectionUnknown {
		t.Errorf("Status = %v, %v; want unknown and the backend's error", got, err)
	}
	var errs []error
	errs = append(errs, err, r.Add(bg, mustPNR(t, testNumbers[0]), "", testNow), r.Remove(bg, mustPNR(t, testNumbers[0])))
	_, err = r.List(bg)
	errs = append(errs, err)
	for i, err := range errs {
		if !errors.Is(err, errBackendDown) {
			t.Errorf("call %d = %v, want the backend's error", i, err)
			continue
		}
		assertNoNumberInText(t, "error", err.Error())
	}
	res := &Resolver{Sources: []Source{r}}
	level, failures := res.Resolve(bg, person(t, testNumbers[0]))
	if level != identity.ProtectionUnknown || len(failures) != 1 || failures[0] != (Failure{"register", ReasonError}) {
		t.Errorf("Resolve = %v, %v; want unknown with a register error", level, failures)
	}
}
