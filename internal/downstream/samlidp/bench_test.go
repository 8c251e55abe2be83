package samlidp_test

import (
	"crypto"
	"testing"

	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// BenchmarkBuildResponse times the downstream half of a login: building
// the response to a vendor from a release and signing it, for the signing
// choices a vendor's policy can make. The RSA-2048 private-key operation
// is most of it; compare with BenchmarkSignEnveloped in internal/xmlsig.
func BenchmarkBuildResponse(b *testing.B) {
	fx := newFixture(b)
	req := &samlidp.Request{ID: "_req-bench", VendorEntityID: plainVendor, ACSURL: plainACS0, RelayState: relay}
	rel := released(b, plainVendor)
	for _, bc := range []struct {
		name string
		opts samlidp.ResponseOptions
	}{
		{"rsa/assertion_and_response", samlidp.ResponseOptions{SignResponse: true, SignAssertion: true}},
		{"rsa/assertion", samlidp.ResponseOptions{SignAssertion: true}},
		{"rsa/response", samlidp.ResponseOptions{SignResponse: true}},
		{"ecdsa/assertion_and_response", samlidp.ResponseOptions{SignResponse: true, SignAssertion: true, SignatureMethod: xmlsig.ECDSASHA256}},
		{"ecdsa/assertion", samlidp.ResponseOptions{SignAssertion: true, SignatureMethod: xmlsig.ECDSASHA256}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fx.idp.BuildResponse(req, rel, bc.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseRequest times reading a vendor's AuthnRequest: the
// HTTP-Redirect binding with a signed query (inflate, parse, signature
// check) and unsigned.
func BenchmarkParseRequest(b *testing.B) {
	fx := newFixture(b)
	signed := signedQuery(b, fx.vendorSign, xmlsig.RSASHA256, crypto.SHA256, deflate(b, newAuthn(signedVendor).xml()), strp(relay))
	plain := query("SAMLRequest", deflate(b, newAuthn(plainVendor).xml()), "RelayState", relay)
	for _, bc := range []struct{ name, query string }{{"redirect/signed", signed}, {"redirect/unsigned", plain}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fx.idp.ParseRequest(getRequest(bc.query)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
