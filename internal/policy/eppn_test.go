package policy

import (
	"strings"
	"testing"
)

func samlPolicy(extra, attrs string) string {
	return `id: app
display_name: App
` + extra + `saml:
  entity_id: "https://app.example/sp"
  name_id: transient
purpose: "Learning"
legal_basis: "Public interest task"
agreement:
  reference: "PUB-1"
  ends: 2099-12-31
attributes:
` + attrs
}

// TestCase33_SharedEPPNWithPairwiseWarned: a vendor that gets the shared
// EPPN (or eduPersonUniqueID) together with any pairwise identifier is
// warned about, on the EPPN's line, naming the pairwise one and the fix;
// eppn: pairwise, or no pairwise identifier, is not. eppn takes only
// shared or pairwise; the dnp preset refuses pairwise.
func TestCase33_SharedEPPNWithPairwiseWarned(t *testing.T) {
	t.Parallel()
	const eppn = "  - name: eduPersonPrincipalName\n"
	tests := []struct {
		name, yaml string
		warn       string // "" for no warning
		errKey     string // "" for no error
	}{
		{name: "shared EPPN and pairwise-id", yaml: samlPolicy("", eppn+"  - name: pairwise-id\n"), warn: "and pairwise-id"},
		{name: "eduPersonUniqueID and eduPersonTargetedID", yaml: samlPolicy("", "  - name: eduPersonUniqueID\n  - name: eduPersonTargetedID\n"), warn: "and eduPersonTargetedID"},
		{name: "shared EPPN and pairwise NameID", yaml: strings.Replace(samlPolicy("", eppn), "name_id: transient", "name_id: pairwise", 1), warn: "pairwise NameID"},
		{name: "shared EPPN and an OIDC sub", yaml: oidcPolicy("quiz", []string{quizURI}, ""), warn: "pairwise sub"},
		{name: "explicit shared", yaml: samlPolicy("eppn: shared\n", eppn+"  - name: pairwise-id\n"), warn: "set eppn: pairwise"},
		{name: "pairwise EPPN and pairwise-id", yaml: samlPolicy("eppn: pairwise\n", eppn+"  - name: pairwise-id\n")},
		{name: "shared EPPN alone", yaml: samlPolicy("", eppn)},
		{name: "pairwise-id alone", yaml: samlPolicy("", "  - name: pairwise-id\n")},
		{name: "unknown kind", yaml: samlPolicy("eppn: per-vendor\n", eppn), errKey: "eppn"},
		{name: "dnp with pairwise", yaml: samlPolicy("preset: dnp\neppn: pairwise\n", eppn), errKey: "eppn"},
		{name: "dnp with a pairwise NameID", yaml: strings.Replace(samlPolicy("preset: dnp\n", eppn), "name_id: transient", "name_id: pairwise", 1), warn: "saml.name_id: transient"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, problems := LoadFile(writePolicy(t, tc.yaml), At(testNow))
			if tc.errKey != "" {
				if p != nil || len(problems) == 0 || problems[0].Key != tc.errKey {
					t.Fatalf("want an error at %s, got %v", tc.errKey, problems)
				}
				return
			}
			if p == nil {
				t.Fatalf("errors: %v", problems)
			}
			pr := p.SharedEPPNProblem()
			switch {
			case tc.warn == "" && pr != nil:
				t.Errorf("unexpected warning: %s", pr)
			case tc.warn != "" && pr == nil:
				t.Errorf("no warning, want one containing %q", tc.warn)
			case tc.warn != "" && (!pr.Warning || !strings.HasPrefix(pr.Key, "attributes[") || pr.Line == 0 || !strings.Contains(pr.String(), tc.warn)):
				t.Errorf("warning %s does not name the EPPN's key and line and %q", pr, tc.warn)
			}
		})
	}
}
