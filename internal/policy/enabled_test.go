package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The decision of case 47 as a table: (no units listed OR one of the
// person's units listed) AND (no affiliations listed OR one listed).
func TestCase47_EnabledForDecision(t *testing.T) {
	t.Parallel()
	const a, b, c = "12345678", "87654321", "11112222"
	tests := []struct {
		name         string
		enabled      EnabledFor
		units, affil []string
		want         bool
	}{
		{"no restriction", EnabledFor{}, []string{a}, []string{"student"}, true},
		{"no restriction, no attributes", EnabledFor{}, nil, nil, true},
		{"pupil at an enabled unit", EnabledFor{SchoolUnits: []string{a}}, []string{a}, []string{"student"}, true},
		{"pupil at another unit", EnabledFor{SchoolUnits: []string{a}}, []string{b}, []string{"student"}, false},
		{"no unit at all", EnabledFor{SchoolUnits: []string{a}}, nil, []string{"student"}, false},
		{"teacher in two units, one enabled", EnabledFor{SchoolUnits: []string{b}}, []string{a, b}, []string{"faculty"}, true},
		{"teacher in two units, none enabled", EnabledFor{SchoolUnits: []string{c}}, []string{a, b}, []string{"faculty"}, false},
		{"empty list enables no one", EnabledFor{SchoolUnits: []string{}}, []string{a}, []string{"student"}, false},
		{"affiliation listed", EnabledFor{Affiliations: []string{"student"}}, []string{a}, []string{"member", "student"}, true},
		{"affiliation not listed", EnabledFor{Affiliations: []string{"student"}}, []string{a}, []string{"faculty", "employee"}, false},
		{"no affiliation at all", EnabledFor{Affiliations: []string{"student"}}, []string{a}, nil, false},
		{"both met", EnabledFor{SchoolUnits: []string{a}, Affiliations: []string{"faculty"}}, []string{a, b}, []string{"faculty"}, true},
		{"unit met, affiliation not", EnabledFor{SchoolUnits: []string{a}, Affiliations: []string{"faculty"}}, []string{a}, []string{"student"}, false},
		{"affiliation met, unit not", EnabledFor{SchoolUnits: []string{a}, Affiliations: []string{"faculty"}}, []string{b}, []string{"faculty"}, false},
		{"values compared exactly", EnabledFor{SchoolUnits: []string{a}, Affiliations: []string{"student"}}, []string{a + " "}, []string{"Student"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.enabled.Allows(tc.units, tc.affil); got != tc.want {
				t.Errorf("Allows(%v, %v) = %v, want %v", tc.units, tc.affil, got, tc.want)
			}
		})
	}
}

func TestCase47_SchoolUnitsOfKeepsOnlyEnabledUnits(t *testing.T) {
	t.Parallel()
	codes := []string{"12345678", "87654321", "11112222"}
	tests := []struct {
		name    string
		enabled EnabledFor
		want    []string
	}{
		{"no restriction", EnabledFor{}, codes},
		{"one enabled", EnabledFor{SchoolUnits: []string{"87654321"}}, []string{"87654321"}},
		{"two enabled, input order kept", EnabledFor{SchoolUnits: []string{"11112222", "12345678"}}, []string{"12345678", "11112222"}},
		{"none enabled", EnabledFor{SchoolUnits: []string{"99999999"}}, nil},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, tc.enabled.SchoolUnitsOf(codes)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestCase47_WithSchoolUnitsCopies(t *testing.T) {
	t.Parallel()
	p := &Policy{ID: "v", EnabledFor: EnabledFor{SchoolUnits: []string{"12345678"}, Affiliations: []string{"student"}}}
	units := []string{"87654321"}
	c := p.WithSchoolUnits(units)
	units[0] = "00000000"
	if diff := cmp.Diff([]string{"87654321"}, c.EnabledFor.SchoolUnits); diff != "" {
		t.Errorf("copy's units (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"student"}, c.EnabledFor.Affiliations); diff != "" {
		t.Errorf("affiliations must stay the file's (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"12345678"}, p.EnabledFor.SchoolUnits); diff != "" {
		t.Errorf("the original changed (-want +got):\n%s", diff)
	}
	if all := p.WithSchoolUnits(nil); all.EnabledFor.SchoolUnits != nil {
		t.Errorf("WithSchoolUnits(nil) = %v, want every unit (nil)", all.EnabledFor.SchoolUnits)
	}
}

const enabledBase = `id: units-app
display_name: Units App
saml:
  entity_id: https://units.example/sp
purpose: "Pupils log in."
legal_basis: "Public interest task (GDPR art. 6.1 e)"
agreement:
  reference: "PUB-1"
  ends: 2099-12-31
attributes:
  - name: eduPersonPrincipalName
  - name: sisSchoolUnitCode
`

func writePolicy(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "units-app.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// enabled_for is read and checked like every other key: each problem
// names the file, the key and the line, all at once.
func TestCase47_EnabledForValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		yaml     string
		want     EnabledFor
		problems []Problem
	}{
		{name: "absent: everyone", yaml: "", want: EnabledFor{}},
		{
			name: "units and affiliations",
			yaml: "enabled_for:\n  school_units: [\"12345678\", 01234567]\n  affiliations: [student, faculty]\n",
			want: EnabledFor{SchoolUnits: []string{"12345678", "01234567"}, Affiliations: []string{"student", "faculty"}},
		},
		{
			name: "units only",
			yaml: "enabled_for:\n  school_units:\n    - \"87654321\"\n",
			want: EnabledFor{SchoolUnits: []string{"87654321"}},
		},
		{
			name: "bad values",
			yaml: "enabled_for:\n  school_units:\n    - \"1234567\"\n    - \"1234567a\"\n    - \"12345678\"\n    - \"12345678\"\n  affiliations:\n    - studnet\n    - student@skola.example\n",
			problems: []Problem{
				{Key: "enabled_for.school_units[0]", Line: 15, Message: `"1234567" is not a school unit code: 8 digits`},
				{Key: "enabled_for.school_units[1]", Line: 16, Message: `"1234567a" is not a school unit code: 8 digits`},
				{Key: "enabled_for.school_units[3]", Line: 18, Message: `"12345678" is listed twice (also [2])`},
				{Key: "enabled_for.affiliations[0]", Line: 20, Message: `unknown affiliation "studnet"; use student, faculty, staff, employee, member, affiliate, alum or library-walk-in`},
				{Key: "enabled_for.affiliations[1]", Line: 21, Message: `"student@skola.example": give the unscoped value, e.g. student`},
			},
		},
		{
			name: "empty lists",
			yaml: "enabled_for:\n  school_units: []\n  affiliations: []\n",
			problems: []Problem{
				{Key: "enabled_for.school_units", Line: 14, Message: "is empty; leave it out to enable the vendor for everyone"},
				{Key: "enabled_for.affiliations", Line: 15, Message: "is empty; leave it out to enable the vendor for everyone"},
			},
		},
		{
			name:     "unknown key",
			yaml:     "enabled_for:\n  schools: [\"12345678\"]\n",
			problems: []Problem{{Key: "enabled_for.schools", Line: 14, Message: `unknown key "schools"`}},
		},
		{
			name:     "wrong type",
			yaml:     "enabled_for:\n  school_units: \"12345678\"\n",
			problems: []Problem{{Key: "enabled_for.school_units", Line: 14, Message: "must be a list"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writePolicy(t, enabledBase+tc.yaml)
			p, problems := LoadFile(path, At(testNow))
			for i := range tc.problems {
				tc.problems[i].File = path
			}
			if diff := cmp.Diff(tc.problems, problems, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("problems (-want +got):\n%s", diff)
			}
			if tc.problems != nil {
				if p != nil {
					t.Fatal("a policy with errors was returned")
				}
				return
			}
			if diff := cmp.Diff(tc.want, p.EnabledFor); diff != "" {
				t.Errorf("EnabledFor (-want +got):\n%s", diff)
			}
		})
	}
}
