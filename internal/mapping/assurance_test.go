package mapping

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/assurance"
	"github.com/skolbro/skolbro/internal/attr"
)

// The upstream's class, acr, amr and eduPersonAssurance become the
// organiser's levels through the upstream's mapping; its own words are
// never kept as an attribute, and what the mapping does not know proves
// only the lowest level, with a warning naming no value (case 49).
func TestCase49_UpstreamAssuranceNormalised(t *testing.T) {
	t.Parallel()
	m, err := assurance.NewMap(map[string]string{"urn:x:adfs:otp": assurance.TwoFactor}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		in       Input
		want     []string
		warnings []Warning
	}{
		{"configured class", Input{AuthnContext: "urn:x:adfs:otp"}, assurance.Closure([]string{assurance.TwoFactor}), nil},
		{"password class", Input{AuthnContext: ppt}, []string{assurance.Bas}, nil},
		{"unknown class is bas", Input{AuthnContext: "urn:x:strong-sounding"}, []string{assurance.Bas},
			[]Warning{{Attribute: "authn_context", Reason: ReasonUnknownAssurance}}},
		{"Entra amr mfa", Input{AuthnContext: "urn:x:entra", AMR: []string{"pwd", "mfa"}}, assurance.Closure([]string{assurance.TwoFactor}),
			[]Warning{{Attribute: "authn_context", Reason: ReasonUnknownAssurance}}},
		{"eduPersonAssurance supersedes the class", Input{AuthnContext: "urn:x:adfs:otp",
			Attributes: map[string][]string{"urn:oid:1.3.6.1.4.1.5923.1.1.1.11": {assurance.Bas}}}, []string{assurance.Bas}, nil},
		{"eduperson_assurance claim", Input{Attributes: map[string][]string{"eduperson_assurance": {assurance.LoA3}}},
			assurance.Closure([]string{assurance.LoA3}), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := baseConfig()
			c.Assurance = m
			in := tc.in
			if in.Attributes == nil {
				in.Attributes = map[string][]string{}
			}
			in.Attributes[oidEPPN] = []string{"t@skola.example.se"}
			id, warnings, err := MapWithWarnings(c, in, now)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, id.Assurance); diff != "" {
				t.Errorf("levels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.warnings, warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if _, kept := id.Attributes[attr.Assurance]; kept {
				t.Errorf("the upstream's eduPersonAssurance was kept as an attribute")
			}
		})
	}
}
