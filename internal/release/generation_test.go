package release

import (
	"strings"
	"testing"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/policy"
)

// identifiers collects every identifier a release carries: NameID, sub
// and every derived attribute.
func identifiers(r *Released) map[string]string {
	out := map[string]string{"NameID": r.NameID, "sub": r.Sub}
	for _, a := range r.Attributes {
		if a.Def.Kind == attr.Derived {
			out[a.Def.Name] = strings.Join(a.Values, " ")
		}
	}
	return out
}

// TestCase36_ReleaseFromTheGeneration: a release in generation n carries
// every identifier of that generation and none of another's, for a SAML
// vendor (NameID and every derived attribute) and an OIDC vendor (sub);
// the generation is recorded for the audit log.
func TestCase36_ReleaseFromTheGeneration(t *testing.T) {
	t.Parallel()
	d := deriver(t)
	saml := everything(t, nil)
	oidc := &policy.Policy{ID: "oidc", OIDC: &policy.OIDCSettings{Sector: "https://rp.example"},
		Attributes: []policy.Rule{{Def: def(t, attr.EPPN)}, {Def: def(t, attr.SubjectID)}, {Def: def(t, attr.PairwiseID)}}}
	seen := map[string]int{}
	for g := 0; g <= 2; g++ {
		for _, lv := range []identity.Protection{identity.ProtectionNone, identity.ProtectionManual} {
			id := person(t, lv)
			id.Generation = g
			for _, p := range []*policy.Policy{saml, oidc} {
				r := Release(p, id, d)
				if r.Generation != g {
					t.Errorf("Released.Generation = %d, want %d", r.Generation, g)
				}
				for name, v := range identifiers(r) {
					if v == "" {
						continue
					}
					if prev, ok := seen[v]; ok && prev != g {
						t.Errorf("%s of generation %d was already issued in generation %d", name, g, prev)
					}
					seen[v] = g
				}
			}
		}
	}
	id := person(t, identity.ProtectionNone)
	gen0 := identifiers(Release(saml, id, d))
	if gen0[attr.EPPN] != d.EPPN(identity.NewSecret("user-1")) {
		t.Error("generation 0 is not the original identity")
	}
	id.Generation = 1
	gen1 := identifiers(Release(oidc, id, d))
	if gen1["sub"] == "" || gen1["sub"] != d.PairwiseSub(d.Generation(identity.NewSecret("user-1"), 1), "https://rp.example") {
		t.Error("the OIDC sub is not derived from generation 1")
	}
}

// TestCase33_PairwiseEPPNRelease: with eppn: pairwise the EPPN (and
// eduPersonUniqueID, its twin) differs across vendors and is stable for
// one; with eppn: shared it is the same everywhere; without a sector
// none is released rather than the shared one.
func TestCase33_PairwiseEPPNRelease(t *testing.T) {
	t.Parallel()
	d := deriver(t)
	mk := func(entityID string, kind policy.EPPNKind) *policy.Policy {
		return &policy.Policy{ID: "v", EPPN: kind,
			SAML:       &policy.SAMLSettings{EntityID: entityID, NameID: policy.NameIDTransient},
			Attributes: []policy.Rule{{Def: def(t, attr.EPPN)}, {Def: def(t, attr.UniqueID)}}}
	}
	eppn := func(p *policy.Policy, id *identity.Identity) (string, string) {
		r := Release(p, id, d)
		if len(r.Attributes) != 2 {
			t.Fatalf("released %v", r.Names())
		}
		return r.Attributes[0].Values[0], r.Attributes[1].Values[0]
	}
	id := person(t, identity.ProtectionNone)
	a1, au := eppn(mk("https://a.example/sp", policy.EPPNPairwise), id)
	a2, _ := eppn(mk("https://a.example/sp", policy.EPPNPairwise), id)
	b, bu := eppn(mk("https://b.example/sp", policy.EPPNPairwise), id)
	shared, _ := eppn(mk("https://a.example/sp", policy.EPPNShared), id)
	sharedB, _ := eppn(mk("https://b.example/sp", ""), id)
	switch {
	case a1 != a2:
		t.Error("the pairwise EPPN is not stable for one vendor")
	case a1 == b || au == bu:
		t.Error("two vendors with eppn: pairwise got the same EPPN or eduPersonUniqueID")
	case a1 == shared:
		t.Error("the pairwise EPPN is the shared one")
	case shared != sharedB:
		t.Error("the shared EPPN (explicit or default) differs between vendors")
	case au != a1:
		t.Error("eduPersonUniqueID does not follow the pairwise EPPN")
	case !strings.HasSuffix(a1, "@"+scope):
		t.Errorf("pairwise EPPN %q is not in the organiser's scope", a1)
	}
	noSector := &policy.Policy{ID: "n", EPPN: policy.EPPNPairwise, Attributes: []policy.Rule{{Def: def(t, attr.EPPN)}}}
	if r := Release(noSector, id, d); len(r.Attributes) != 0 {
		t.Errorf("without a sector a pairwise EPPN policy released %v", r.Names())
	}
}
