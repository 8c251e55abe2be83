package assurance

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClosure(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"nothing is bas", nil, []string{Bas}},
		{"unknown is bas", []string{"urn:x:unknown"}, []string{Bas}},
		{"2fa", []string{TwoFactor}, []string{Bas, REFEDSMFA, TwoFactor}},
		{"refeds mfa is 2fa", []string{REFEDSMFA}, []string{Bas, REFEDSMFA, TwoFactor}},
		{"loa2 is not 2fa", []string{LoA2}, []string{Bas, LoA2}},
		{"loa3", []string{LoA3}, []string{Bas, LoA2, REFEDSMFA, TwoFactor, LoA3}},
		{"loa4", []string{LoA4}, []string{Bas, LoA2, REFEDSMFA, TwoFactor, LoA3, LoA4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Closure(tc.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestMapProven(t *testing.T) {
	m, err := NewMap(map[string]string{
		"urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport": Bas,
		"urn:x:otp": TwoFactor,
	}, map[string]string{TwoFactor: "urn:x:otp"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		s           Signals
		want        string
		wantUnknown int
	}{
		{"configured two-factor class", Signals{Class: "urn:x:otp"}, TwoFactor, 0},
		{"configured password class", Signals{Class: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}, Bas, 0},
		{"unknown class is the lowest level", Signals{Class: "urn:x:something-strong"}, Bas, 1},
		{"no signal is bas", Signals{}, Bas, 0},
		{"default: the vocabulary's own words", Signals{Class: LoA3}, LoA3, 0},
		{"default: ADFS multiple authentication", Signals{Class: ADFSMultipleAuthn}, TwoFactor, 0},
		{"default: amr mfa (Entra ID)", Signals{Class: "urn:x:entra", AMR: []string{"pwd", "mfa"}}, TwoFactor, 2},
		{"eduPersonAssurance supersedes the class", Signals{Class: "urn:x:otp", Assurance: []string{Bas}}, Bas, 0},
		{"eduPersonAssurance 2fa over a password class", Signals{Class: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport", Assurance: []string{TwoFactor}}, TwoFactor, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			proven, unknown := m.Proven(tc.s)
			if got := Primary(proven); got != tc.want || unknown != tc.wantUnknown {
				t.Errorf("Primary = %s (unknown %d), want %s (unknown %d)", got, unknown, tc.want, tc.wantUnknown)
			}
		})
	}
	var none *Map
	if p, _ := none.Proven(Signals{Class: TwoFactor}); Primary(p) != TwoFactor {
		t.Errorf("nil map: defaults not applied")
	}
}

func TestNewMapErrors(t *testing.T) {
	_, err := NewMap(map[string]string{"urn:x:a": "urn:x:not-a-level", "": Bas}, map[string]string{"urn:x:nope": "x", TwoFactor: ""})
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{"urn:x:not-a-level", "empty upstream value", "urn:x:nope", "empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestRequestAndOffers(t *testing.T) {
	m, err := NewMap(map[string]string{"urn:x:pwd": Bas}, map[string]string{TwoFactor: "urn:x:otp", LoA3: "urn:x:bankid"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"urn:x:otp", "urn:x:bankid"}, m.Request([]string{TwoFactor})); diff != "" {
		t.Errorf("asking for 2fa (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"urn:x:bankid"}, m.Request([]string{LoA2})); diff != "" {
		t.Errorf("asking for loa2 (-want +got):\n%s", diff)
	}
	if got := m.Request([]string{LoA4}); len(got) != 0 {
		t.Errorf("asked for loa4 with %q; the upstream cannot be asked for it", got)
	}
	if diff := cmp.Diff([]string{Bas, LoA2, REFEDSMFA, TwoFactor, LoA3}, m.Offers()); diff != "" {
		t.Errorf("offers (-want +got):\n%s", diff)
	}
	var none *Map
	if none.Offers() != nil {
		t.Errorf("an unconfigured upstream claims levels")
	}
	if d, _ := NewMap(nil, nil); d.Offers() != nil {
		t.Errorf("defaults alone claim levels")
	}
}

func TestRequestedChoose(t *testing.T) {
	twofa := Closure([]string{TwoFactor})
	bas := Closure(nil)
	loa3 := Closure([]string{LoA3})
	tests := []struct {
		name       string
		classes    []string
		comparison string
		proven     []string
		want       string
		ok         bool
	}{
		{"nothing asked names the primary", nil, "", twofa, TwoFactor, true},
		{"exact 2fa met", []string{TwoFactor}, "", twofa, TwoFactor, true},
		{"exact refeds named as asked", []string{REFEDSMFA}, Exact, twofa, REFEDSMFA, true},
		{"exact 2fa with bas: downgrade refused", []string{TwoFactor}, Exact, bas, "", false},
		{"minimum loa2 met by loa3", []string{LoA2}, Minimum, loa3, LoA2, true},
		{"minimum loa2 not met by 2fa", []string{LoA2}, Minimum, twofa, "", false},
		{"better than bas needs more", []string{Bas}, Better, bas, "", false},
		{"better than bas with 2fa", []string{Bas}, Better, twofa, TwoFactor, true},
		{"maximum 2fa with bas names bas", []string{TwoFactor}, Maximum, bas, Bas, true},
		{"PasswordProtectedTransport asks bas", []string{"urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}, Minimum, bas, Bas, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, known := FromClasses(tc.classes, tc.comparison)
			if !known {
				t.Fatal("request not understood")
			}
			got, ok := r.Choose(tc.proven)
			if got != tc.want || ok != tc.ok {
				t.Errorf("Choose = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	if _, known := FromClasses([]string{"urn:x:vendor-specific"}, ""); known {
		t.Errorf("an unknown class was taken as understood")
	}
	if _, known := FromClasses([]string{TwoFactor}, "sideways"); known {
		t.Errorf("an unknown comparison was accepted")
	}
}
