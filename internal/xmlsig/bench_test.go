package xmlsig_test

import (
	"crypto/x509"
	"testing"

	"github.com/skolbro/skolbro/internal/xmlsig"
)

// BenchmarkSignEnveloped times one enveloped signature of an assertion
// (canonicalisation, digest, private-key operation) with each key type the
// bridge signs with. The bridge's `skolbro bench` compares a login's CPU
// time with this.
func BenchmarkSignEnveloped(b *testing.B) {
	for _, a := range algorithms {
		b.Run(a.name, func(b *testing.B) {
			s := newSigner(b, a.alg)
			el := findAssertion(b, parse(b, standalone))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.SignEnveloped(el); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyEnveloped times verifying such a signature, as the
// bridge verifies a school IdP's (RSA: goxmldsig expects an ECDSA value in
// DER, which internal/upstream/samlsp converts before it verifies).
func BenchmarkVerifyEnveloped(b *testing.B) {
	for _, a := range algorithms[:1] {
		b.Run(a.name, func(b *testing.B) {
			s := newSigner(b, a.alg)
			el := findAssertion(b, parse(b, signFixture(b, s, standalone)))
			certs := []*x509.Certificate{s.Pair().Cert}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := xmlsig.VerifyEnveloped(el, certs, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
