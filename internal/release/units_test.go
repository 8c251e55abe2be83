package release

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/policy"
)

const (
	unitA = "12345678"
	unitB = "87654321"
)

// unitsPolicy releases the EPPN, the affiliation and the school unit code,
// enabled for enabled (nil: every unit), replacing the unit code of a
// protected person when replace is set.
func unitsPolicy(t *testing.T, enabled []string, replace bool) *policy.Policy {
	t.Helper()
	p := &policy.Policy{
		ID: "units-app", SAML: &policy.SAMLSettings{EntityID: "https://units.example/sp", NameID: policy.NameIDTransient},
		Attributes: []policy.Rule{
			{Def: def(t, attr.EPPN)},
			{Def: def(t, attr.ScopedAffiliation)},
			{Def: def(t, attr.SchoolUnitCode)},
		},
		EnabledFor: policy.EnabledFor{SchoolUnits: enabled},
	}
	if replace {
		p.Protected = []policy.MaskRule{{Def: def(t, attr.SchoolUnitCode), Action: policy.Replace, Value: "00000000"}}
	}
	return p
}

func withUnits(t *testing.T, level identity.Protection, units ...string) *identity.Identity {
	id := person(t, level)
	id.Attributes[attr.SchoolUnitCode] = units
	return id
}

// The released sisSchoolUnitCode values are only the enabled units, and
// masking of protected persons still applies on top (case 47).
func TestCase47_ReleaseSendsOnlyEnabledUnits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		enabled []string
		replace bool
		id      *identity.Identity
		want    []string // released sisSchoolUnitCode values; nil: left out
	}{
		{"not restricted: every unit", nil, false, withUnits(t, identity.ProtectionNone, unitA, unitB), []string{unitA, unitB}},
		{"teacher in two units, one enabled", []string{unitB}, false, withUnits(t, identity.ProtectionNone, unitA, unitB), []string{unitB}},
		{"both enabled", []string{unitA, unitB}, false, withUnits(t, identity.ProtectionNone, unitA, unitB), []string{unitA, unitB}},
		{"none enabled: attribute left out", []string{"11112222"}, false, withUnits(t, identity.ProtectionNone, unitA), nil},
		{"protected pupil: withheld as before", []string{unitA}, false, withUnits(t, identity.ProtectionSkyddadFolkbokforing, unitA), nil},
		{"unknown protection: withheld (fail closed)", []string{unitA}, false, withUnits(t, identity.ProtectionUnknown, unitA), nil},
		{"protected pupil: replaced as before", []string{unitA}, true, withUnits(t, identity.ProtectionSkyddadFolkbokforing, unitA, unitB), []string{"00000000"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := append([]string(nil), tc.id.Attributes[attr.SchoolUnitCode]...)
			r := Release(unitsPolicy(t, tc.enabled, tc.replace), tc.id, deriver(t))
			var got []string
			for _, a := range r.Attributes {
				if a.Def.Name == attr.SchoolUnitCode {
					got = a.Values
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("released sisSchoolUnitCode (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tc.id.Attributes[attr.SchoolUnitCode]); diff != "" {
				t.Errorf("the identity was changed (-want +got):\n%s", diff)
			}
		})
	}
}

// Enabled reads the person's units and unscoped affiliations.
func TestCase47_EnabledReadsUnitsAndAffiliations(t *testing.T) {
	t.Parallel()
	pupilA := withUnits(t, identity.ProtectionNone, unitA) // student, member
	teacher := withUnits(t, identity.ProtectionNone, unitA, unitB)
	teacher.Attributes[attr.Affiliation] = []string{"faculty", "employee"}
	tests := []struct {
		name    string
		enabled policy.EnabledFor
		id      *identity.Identity
		want    bool
	}{
		{"everyone", policy.EnabledFor{}, pupilA, true},
		{"pupil at an enabled unit", policy.EnabledFor{SchoolUnits: []string{unitA}}, pupilA, true},
		{"pupil at another unit", policy.EnabledFor{SchoolUnits: []string{unitB}}, pupilA, false},
		{"teacher, one of two units enabled", policy.EnabledFor{SchoolUnits: []string{unitB}}, teacher, true},
		{"students only: pupil", policy.EnabledFor{Affiliations: []string{"student"}}, pupilA, true},
		{"students only: teacher", policy.EnabledFor{Affiliations: []string{"student"}}, teacher, false},
		{"teachers at B: teacher", policy.EnabledFor{SchoolUnits: []string{unitB}, Affiliations: []string{"faculty"}}, teacher, true},
		{"teachers at A: pupil at A", policy.EnabledFor{SchoolUnits: []string{unitA}, Affiliations: []string{"faculty"}}, pupilA, false},
		{"a protected pupil is decided the same way", policy.EnabledFor{SchoolUnits: []string{unitB}}, withUnits(t, identity.ProtectionManual, unitA), false},
	}
	for _, tc := range tests {
		p := unitsPolicy(t, nil, false)
		p.EnabledFor = tc.enabled
		if got := Enabled(p, tc.id); got != tc.want {
			t.Errorf("%s: Enabled = %v, want %v", tc.name, got, tc.want)
		}
	}
}
