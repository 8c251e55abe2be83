package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/pseudonym"
)

var subjectKeyPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestSubjectKeyDefinition(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef-audit")
	k, err := NewSubjectKeyer(key)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(msg string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return hex.EncodeToString(m.Sum(nil))
	}
	pn := mustPN(t, pupilPN)
	if got, want := k.KeyForPersonalNumber(pn), mac("skolbro-audit-v1"+pupilPN); got != want {
		t.Errorf("KeyForPersonalNumber = %s, want HMAC over label and 12 digits %s", got, want)
	}
	if got, want := k.KeyForStableID(identity.NewSecret("u123@skola.se")), mac("skolbro-audit-v1sid:u123@skola.se"); got != want {
		t.Errorf("KeyForStableID = %s, want %s", got, want)
	}
}

func TestSubjectKey(t *testing.T) {
	t.Parallel()
	k := testKeyer(t)
	other, err := NewSubjectKeyer([]byte("another-audit-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	pn := mustPN(t, pupilPN)
	short := mustPN(t, pupilPN[2:8]+"-"+pupilPN[8:]) // YYMMDD-NNNN form of the same number
	stable := identity.NewSecret("stable-1")
	withPN := &identity.Identity{StableID: stable, PersonalNumber: pn}
	withoutPN := &identity.Identity{StableID: stable}

	tests := []struct {
		name      string
		got, want string
		equal     bool
	}{
		{"identity with a number is keyed by the number", k.Key(withPN), k.KeyForPersonalNumber(pn), true},
		{"10- and 12-digit forms give one key", k.KeyForPersonalNumber(short), k.KeyForPersonalNumber(pn), true},
		{"identity without a number is keyed by the stable id", k.Key(withoutPN), k.KeyForStableID(stable), true},
		{"number and stable id keys differ", k.Key(withPN), k.Key(withoutPN), false},
		{"classmates differ", k.KeyForPersonalNumber(mustPN(t, classmatePN)), k.KeyForPersonalNumber(pn), false},
		{"another audit key gives another key", other.KeyForPersonalNumber(pn), k.KeyForPersonalNumber(pn), false},
		{"nobody has no key", k.Key(&identity.Identity{}), "", true},
		{"nil identity has no key", k.Key(nil), "", true},
		{"zero number has no key", k.KeyForPersonalNumber(identity.PersonalNumber{}), "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if (tc.got == tc.want) != tc.equal {
				t.Errorf("got %q, want equal=%v to %q", tc.got, tc.equal, tc.want)
			}
			if tc.got != "" && !subjectKeyPattern.MatchString(tc.got) {
				t.Errorf("key %q is not 64 hex digits", tc.got)
			}
		})
	}
}

func TestNewSubjectKeyerCopiesAndChecksKey(t *testing.T) {
	t.Parallel()
	if _, err := NewSubjectKeyer(make([]byte, 31)); !errors.Is(err, ErrAuditKeyTooShort) {
		t.Errorf("31-byte key: err = %v, want ErrAuditKeyTooShort", err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	k, err := NewSubjectKeyer(key)
	if err != nil {
		t.Fatal(err)
	}
	before := k.KeyForPersonalNumber(mustPN(t, pupilPN))
	key[0] ^= 0xff
	if after := k.KeyForPersonalNumber(mustPN(t, pupilPN)); after != before {
		t.Error("changing the caller's key slice changed the keyer")
	}
}

func TestLoadSubjectKeyer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hexKey := "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	tests := []struct {
		name    string
		path    string
		wantErr error
	}{
		{"hex key, mode 0600", write("good.key", hexKey+"\n", 0o600), nil},
		{"readable by others", write("open.key", hexKey, 0o644), errAny},
		{"too short", write("short.key", "00112233", 0o600), pseudonym.ErrKeyTooShort},
		{"missing", filepath.Join(dir, "missing.key"), os.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k, err := LoadSubjectKeyer(tc.path)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("LoadSubjectKeyer: %v", err)
			case tc.wantErr == nil:
				raw, _ := hex.DecodeString(hexKey)
				want, _ := NewSubjectKeyer(raw)
				pn := mustPN(t, pupilPN)
				if k.KeyForPersonalNumber(pn) != want.KeyForPersonalNumber(pn) {
					t.Error("loaded key differs from the file's hex")
				}
			case err == nil:
				t.Fatal("LoadSubjectKeyer succeeded, want an error")
			case tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestSubjectKeys(t *testing.T) {
	t.Parallel()
	k := testKeyer(t)
	pn, stable := mustPN(t, pupilPN), identity.NewSecret("stable-1")
	tests := []struct {
		name string
		id   *identity.Identity
		want []string
	}{
		{"number and stable id: the number's key first", &identity.Identity{StableID: stable, PersonalNumber: pn},
			[]string{k.KeyForPersonalNumber(pn), k.KeyForStableID(stable)}},
		{"number dropped: the stable id's", &identity.Identity{StableID: stable, PersonalNumberDropped: true}, []string{k.KeyForStableID(stable)}},
		{"nobody", &identity.Identity{}, nil},
		{"nil", nil, nil},
	}
	for _, tc := range tests {
		got := k.Keys(tc.id)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %d keys, want %d", tc.name, len(got), len(tc.want))
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: key %d differs", tc.name, i)
			}
		}
		if len(got) > 0 && got[0] != k.Key(tc.id) {
			t.Errorf("%s: the first key is not Key", tc.name)
		}
	}
}
