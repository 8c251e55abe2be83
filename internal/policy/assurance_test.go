package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/skolbro/skolbro/internal/assurance"
)

// assurance: is read like every other key, each problem with its key and
// line; the dnp preset requires level 2 or two-factor of staff.
func TestCase49_AssuranceValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		head     string
		yaml     string
		want     *AssuranceRule
		problems []Problem
	}{
		{name: "absent: no minimum", want: nil},
		{
			name: "one level for staff",
			yaml: "assurance:\n  minimum: http://id.skolfederation.se/loa/2fa\n  for: [faculty, employee]\n",
			want: &AssuranceRule{Minimum: []string{assurance.TwoFactor}, For: []string{"faculty", "employee"}},
		},
		{
			name: "any of a list, for everyone",
			yaml: "assurance:\n  minimum:\n    - http://id.skolfederation.se/loa/2fa\n    - http://id.elegnamnden.se/loa/1.0/loa2\n",
			want: &AssuranceRule{Minimum: []string{assurance.TwoFactor, assurance.LoA2}},
		},
		{
			name: "mistakes",
			yaml: "assurance:\n  minimum: [urn:x:strong, http://id.skolfederation.se/loa/2fa, http://id.skolfederation.se/loa/2fa]\n  for: [teacher]\n",
			problems: []Problem{
				{Key: "assurance.minimum[0]", Line: 14, Message: `unknown level "urn:x:strong"; use one of ` +
					"http://id.skolfederation.se/loa/bas, http://id.elegnamnden.se/loa/1.0/loa2, https://refeds.org/profile/mfa, " +
					"http://id.skolfederation.se/loa/2fa, http://id.elegnamnden.se/loa/1.0/loa3, http://id.elegnamnden.se/loa/1.0/loa4"},
				{Key: "assurance.minimum[2]", Line: 14, Message: `"http://id.skolfederation.se/loa/2fa" is listed twice`},
				{Key: "assurance.for[0]", Line: 15, Message: `unknown affiliation "teacher"; use student, faculty, staff, employee, member, affiliate, alum or library-walk-in`},
			},
		},
		{
			name:     "no minimum",
			yaml:     "assurance:\n  for: [faculty]\n",
			problems: []Problem{{Key: "assurance.minimum", Line: 13, Message: "is required: the level (or levels, any one of which suffices) the vendor requires, e.g. http://id.skolfederation.se/loa/2fa"}},
		},
		{
			name: "dnp preset: level 2 or two-factor for staff",
			head: "preset: dnp\n",
			want: &AssuranceRule{Minimum: []string{assurance.TwoFactor, assurance.LoA2}, For: []string{"faculty", "staff", "employee"}},
		},
		{
			name: "dnp preset asking less is warned about",
			head: "preset: dnp\n",
			yaml: "assurance:\n  minimum: http://id.skolfederation.se/loa/bas\n  for: [student]\n",
			want: &AssuranceRule{Minimum: []string{assurance.Bas}, For: []string{"student"}},
			problems: []Problem{
				{Key: "assurance.minimum", Line: 15, Warning: true, Message: "the dnp preset: http://id.skolfederation.se/loa/bas is weaker than Skolverket's level 2 for staff"},
				{Key: "assurance.for", Line: 16, Warning: true, Message: "the dnp preset: Skolverket requires faculty to log in at level 2 (or two-factor); this policy does not require it of them"},
				{Key: "assurance.for", Line: 16, Warning: true, Message: "the dnp preset: Skolverket requires staff to log in at level 2 (or two-factor); this policy does not require it of them"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writePolicy(t, tc.head+enabledBase+tc.yaml)
			p, problems := LoadFile(path, At(testNow))
			for i := range tc.problems {
				tc.problems[i].File = path
			}
			// The dnp preset's own warnings about the base file are not
			// this test's business.
			var got []Problem
			for _, pr := range problems {
				if pr.Key == "" || pr.Key[:min(len(pr.Key), 9)] == "assurance" {
					got = append(got, pr)
				}
			}
			if diff := cmp.Diff(tc.problems, got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("problems (-want +got):\n%s", diff)
			}
			if HasErrors(problems) {
				return
			}
			if diff := cmp.Diff(tc.want, p.Assurance); diff != "" {
				t.Errorf("assurance (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCase49_AssuranceApplies(t *testing.T) {
	t.Parallel()
	staff := &AssuranceRule{Minimum: []string{assurance.TwoFactor}, For: []string{"faculty", "staff"}}
	everyone := &AssuranceRule{Minimum: []string{assurance.TwoFactor}}
	var none *AssuranceRule
	tests := []struct {
		name string
		rule *AssuranceRule
		aff  []string
		want bool
	}{
		{"teacher", staff, []string{"faculty", "employee"}, true},
		{"pupil", staff, []string{"student", "member"}, false},
		{"no affiliation", staff, nil, false},
		{"everyone: pupil too", everyone, []string{"student"}, true},
		{"everyone: no affiliation too", everyone, nil, true},
		{"no rule", none, []string{"faculty"}, false},
	}
	for _, tc := range tests {
		if got := tc.rule.Applies(tc.aff); got != tc.want {
			t.Errorf("%s: Applies = %v, want %v", tc.name, got, tc.want)
		}
	}
}
