package release

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/pseudonym"
)

// BenchmarkRelease times the release step of a login for the example
// policies (a learning app; the dnp preset), for an unprotected and a
// protected pupil (masking applies).
func BenchmarkRelease(b *testing.B) {
	d, err := pseudonym.New(bytes.Repeat([]byte{9}, 32), scope)
	if err != nil {
		b.Fatal(err)
	}
	pn, err := identity.ParsePersonalNumber(pnText, testNow)
	if err != nil {
		b.Fatal(err)
	}
	newID := func(p identity.Protection) *identity.Identity {
		return &identity.Identity{
			Upstream:       "school-idp",
			StableID:       identity.NewSecret("user-1"),
			PersonalNumber: pn,
			Attributes: identity.Attributes{
				attr.GivenName:         {"Tolvan"},
				attr.Surname:           {"Tolvansson"},
				attr.DisplayName:       {"Tolvan Tolvansson"},
				attr.Mail:              {"tolvan@skola.example.se"},
				attr.Affiliation:       {"student", "member"},
				attr.ScopedAffiliation: {"student@" + scope, "member@" + scope},
				attr.SchoolUnitCode:    {"12345678"},
				attr.Assurance:         {loaBas},
			},
			AuthnInstant: authnInstant,
			Protection:   p,
		}
	}
	for _, file := range []string{"learning-app.yaml", "dnp.yaml"} {
		p, problems := policy.LoadFile(filepath.Join("../../testdata/policies/valid", file), policy.At(testNow))
		if p == nil {
			b.Fatalf("LoadFile(%s): %v", file, problems)
		}
		for _, prot := range []identity.Protection{identity.ProtectionNone, identity.ProtectionSkyddadFolkbokforing} {
			b.Run(p.ID+"/"+prot.String(), func(b *testing.B) {
				id := newID(prot)
				b.ReportAllocs()
				for b.Loop() {
					if r := Release(p, id, d); r == nil {
						b.Fatal("nil release")
					}
				}
			})
		}
	}
}
