package pseudonym

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/skolbro/skolbro/internal/identity"
)

// oasisID is the OASIS subject-id/pairwise-id syntax: unique part, '@', scope.
var oasisID = regexp.MustCompile(`^[a-z0-9][a-z0-9=-]{0,126}@[a-z0-9][a-z0-9.-]{0,126}$`)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func mustNew(t *testing.T, key []byte, scope string) *Deriver {
	t.Helper()
	d, err := New(key, scope)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		key   []byte
		scope string
		want  error
	}{
		{"ok", testKey(1), "skola.example.se", nil},
		{"ok with digits and hyphen", testKey(1), "kommun-1.example.se", nil},
		{"short key", make([]byte, 31), "skola.example.se", ErrKeyTooShort},
		{"nil key", nil, "skola.example.se", ErrKeyTooShort},
		{"upper case scope", testKey(1), "Skola.example.se", ErrBadScope},
		{"single label", testKey(1), "localhost", ErrBadScope},
		{"empty scope", testKey(1), "", ErrBadScope},
		{"empty label", testKey(1), "skola..se", ErrBadScope},
		{"leading hyphen", testKey(1), "-skola.se", ErrBadScope},
		{"trailing dot", testKey(1), "skola.se.", ErrBadScope},
		{"at sign", testKey(1), "a@skola.se", ErrBadScope},
		{"label too long", testKey(1), strings.Repeat("a", 64) + ".se", ErrBadScope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tc.key, tc.scope)
			if !errors.Is(err, tc.want) {
				t.Fatalf("New err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNewCopiesKey(t *testing.T) {
	t.Parallel()
	key := testKey(7)
	d := mustNew(t, key, "skola.example.se")
	before := d.EPPN(identity.NewSecret("abc"))
	key[0] ^= 0xff
	if after := d.EPPN(identity.NewSecret("abc")); after != before {
		t.Fatalf("changing the caller's key slice changed the pseudonym")
	}
}

func TestFormatAndStability(t *testing.T) {
	t.Parallel()
	d := mustNew(t, testKey(1), "skola.example.se")
	stable := identity.NewSecret("user-123")
	kinds := map[string]func() string{
		"EPPN":        func() string { return d.EPPN(stable) },
		"SubjectID":   func() string { return d.SubjectID(stable) },
		"PairwiseID":  func() string { return d.PairwiseID(stable, "https://vendor.example/sp") },
		"PairwiseSub": func() string { return d.PairwiseSub(stable, "vendor.example") + "@x.se" },
	}
	for name, f := range kinds {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, b := f(), f()
			if a != b {
				t.Fatalf("not stable: %q then %q", a, b)
			}
			if !oasisID.MatchString(a) {
				t.Fatalf("%q does not match the OASIS syntax", a)
			}
			opaque, _, _ := strings.Cut(a, "@")
			if n := len(opaque); n < 26 || n > 32 {
				t.Fatalf("opaque part has %d characters, want 26-32", n)
			}
			if a != strings.ToLower(a) {
				t.Fatalf("%q is not lower case", a)
			}
		})
	}
	if got := d.EPPN(stable); !strings.HasSuffix(got, "@skola.example.se") {
		t.Fatalf("EPPN %q lacks the scope", got)
	}
	if got := d.PairwiseSub(stable, "vendor.example"); strings.Contains(got, "@") {
		t.Fatalf("PairwiseSub %q has a scope", got)
	}
}

func TestKindsAreSeparated(t *testing.T) {
	t.Parallel()
	d := mustNew(t, testKey(1), "skola.example.se")
	stable := identity.NewSecret("user-123")
	const sector = "https://vendor.example/sp"
	opaques := map[string]string{}
	for name, v := range map[string]string{
		"eppn":         d.EPPN(stable),
		"subject-id":   d.SubjectID(stable),
		"pairwise-id":  d.PairwiseID(stable, sector),
		"pairwise-sub": d.PairwiseSub(stable, sector),
	} {
		o, _, _ := strings.Cut(v, "@")
		if other, dup := opaques[o]; dup {
			t.Fatalf("%s and %s share the opaque part", name, other)
		}
		opaques[o] = name
	}
}

func TestDifferences(t *testing.T) {
	t.Parallel()
	d1 := mustNew(t, testKey(1), "skola.example.se")
	d2 := mustNew(t, testKey(2), "skola.example.se")
	alice, bob := identity.NewSecret("alice"), identity.NewSecret("bob")
	const vendorA, vendorB = "https://a.example/sp", "https://b.example/sp"
	tests := []struct {
		name string
		a, b string
	}{
		{"pairwise-id differs across vendors", d1.PairwiseID(alice, vendorA), d1.PairwiseID(alice, vendorB)},
		{"pairwise sub differs across vendors", d1.PairwiseSub(alice, vendorA), d1.PairwiseSub(alice, vendorB)},
		{"EPPN differs across keys", d1.EPPN(alice), d2.EPPN(alice)},
		{"subject-id differs across keys", d1.SubjectID(alice), d2.SubjectID(alice)},
		{"pairwise-id differs across keys", d1.PairwiseID(alice, vendorA), d2.PairwiseID(alice, vendorA)},
		{"EPPN differs across people", d1.EPPN(alice), d1.EPPN(bob)},
		{"pairwise-id differs across people", d1.PairwiseID(alice, vendorA), d1.PairwiseID(bob, vendorA)},
		{"sector and stable id cannot be shifted", d1.PairwiseSub(identity.NewSecret("b"), "a"), d1.PairwiseSub(identity.NewSecret(""), "ab")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.a == tc.b {
				t.Fatalf("both are %q, want them to differ", tc.a)
			}
		})
	}
}

// TestNoPersonalNumberInOutput uses personal numbers as stable ids: no
// output may contain a run of six or more digits taken from the input.
func TestNoPersonalNumberInOutput(t *testing.T) {
	t.Parallel()
	d := mustNew(t, testKey(3), "skola.example.se")
	for _, pn := range []string{"191212121212", "200001012384", "201001022388", "197001011234"} {
		stable := identity.NewSecret(pn)
		outs := []string{
			d.EPPN(stable), d.SubjectID(stable),
			d.PairwiseID(stable, "https://vendor.example/sp"), d.PairwiseSub(stable, "vendor.example"),
		}
		for _, out := range outs {
			for i := 0; i+6 <= len(pn); i++ {
				if strings.Contains(out, pn[i:i+6]) {
					t.Fatalf("output contains the digits %q of the input", pn[i:i+6])
				}
			}
			if regexp.MustCompile(`[0-9]{6,}`).MatchString(out) {
				t.Fatalf("output has a run of six or more digits")
			}
		}
	}
}

func writeKey(t *testing.T, content []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pseudonym.key")
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	// Chmod explicitly: WriteFile's mode is subject to the umask.
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadKey(t *testing.T) {
	t.Parallel()
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i*7 + 200) // not valid text in any encoding
	}
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    []byte
		wantErr string
	}{
		{"raw bytes", raw, 0o600, raw, ""},
		{"hex with newline", []byte(hex.EncodeToString(raw) + "\n"), 0o600, raw, ""},
		{"upper-case hex", []byte(strings.ToUpper(hex.EncodeToString(raw))), 0o400, raw, ""},
		{"base64", []byte(base64.StdEncoding.EncodeToString(raw) + "\n"), 0o600, raw, ""},
		{"base64 raw url", []byte(base64.RawURLEncoding.EncodeToString(raw)), 0o600, raw, ""},
		{"short hex", []byte(hex.EncodeToString(raw[:31])), 0o600, nil, "shorter than 32 bytes"},
		{"short base64", []byte(base64.StdEncoding.EncodeToString(raw[:20])), 0o600, nil, "shorter than 32 bytes"},
		{"short raw", raw[:31], 0o600, nil, "shorter than 32 bytes"},
		{"empty", nil, 0o600, nil, "shorter than 32 bytes"},
		{"world readable", raw, 0o604, nil, "accessible by group or others"},
		{"group readable", raw, 0o640, nil, "accessible by group or others"},
		{"group writable", raw, 0o620, nil, "accessible by group or others"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := writeKey(t, tc.content, tc.mode)
			got, err := LoadKey(p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), p) {
					t.Fatalf("err = %v, want it to name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadKey: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("key mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadKeyMissing(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "nope.key")
	_, err := LoadKey(p)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v, want not-exist naming the file", err)
	}
}

func TestLoadKeyDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("err = %v, want not a regular file", err)
	}
}
