package pseudonym

import (
	"testing"

	"github.com/skolbro/skolbro/internal/identity"
)

// BenchmarkDerive times the pseudonymous identifiers a login derives: the
// EPPN every vendor gets, a SAML pairwise-id and an OIDC pairwise sub.
func BenchmarkDerive(b *testing.B) {
	d, err := New(testKey(7), "skola.example.se")
	if err != nil {
		b.Fatal(err)
	}
	stable := identity.NewSecret("anna.a@skolor.example.se")
	const sector = "https://vendor.example.com/saml/metadata"
	for _, bc := range []struct {
		name string
		f    func() string
	}{
		{"eppn", func() string { return d.EPPN(stable) }},
		{"pairwise_id", func() string { return d.PairwiseID(stable, sector) }},
		{"pairwise_sub", func() string { return d.PairwiseSub(stable, sector) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if bc.f() == "" {
					b.Fatal("empty pseudonym")
				}
			}
		})
	}
}
