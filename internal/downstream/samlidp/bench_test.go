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
	plain := &samlidp.Request{ID: "_req-bench", VendorEntityID: plainVendor, ACSURL: plainACS0, RelayState: relay}
	enc := &samlidp.Request{ID: "_req-bench", VendorEntityID: encVendor, ACSURL: encACS, RelayState: relay}
	for _, bc := range []struct {
		name string
		req  *samlidp.Request
		opts samlidp.ResponseOptions
	}{
		{"rsa/assertion_and_response", plain, samlidp.ResponseOptions{SignResponse: true, SignAssertion: true}},
		{"rsa/assertion", plain, samlidp.ResponseOptions{SignAssertion: true}},
		{"rsa/response", plain, samlidp.ResponseOptions{SignResponse: true}},
		// The realistic world's vendor: an encryption key in its metadata.
		{"rsa/assertion/encrypted", enc, samlidp.ResponseOptions{SignAssertion: true, Encrypt: "auto"}},
		{"ecdsa/assertion_and_response", plain, samlidp.ResponseOptions{SignResponse: true, SignAssertion: true, SignatureMethod: xmlsig.ECDSASHA256}},
		{"ecdsa/assertion", plain, samlidp.ResponseOptions{SignAssertion: true, SignatureMethod: xmlsig.ECDSASHA256}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rel := released(b, bc.req.VendorEntityID)
			b.ReportAllocs()
			cpu0, ok := processCPU()
			for b.Loop() {
				if _, err := fx.idp.BuildResponse(bc.req, rel, bc.opts); err != nil {
					b.Fatal(err)
				}
			}
			if cpu1, ok1 := processCPU(); ok && ok1 && b.N > 0 {
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
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
