package samlidp_test

import (
	"crypto/x509"
	"testing"

	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// A vendor whose metadata announces ECDSA-SHA256 first (alg:SigningMethod)
// is signed with the organiser's P-256 key when its policy leaves the
// method open; SHA-1 and methods without a key are passed over; a policy
// that names the method, or an IdP without the key, keeps the default.
// (xmlsec1 verifies such ECDSA signatures in TestCase25.)
func TestSignatureMethodAnnouncedByTheVendor(t *testing.T) {
	t.Parallel()
	rsaSHA1 := "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	for _, tc := range []struct {
		name      string
		announced []string
		auto      bool
		noECKey   bool
		want      string
	}{
		{"ecdsa first", []string{xmlsig.ECDSASHA256, xmlsig.RSASHA256}, true, false, xmlsig.ECDSASHA256},
		{"sha1 passed over", []string{rsaSHA1, xmlsig.ECDSASHA256}, true, false, xmlsig.ECDSASHA256},
		{"rsa first", []string{xmlsig.RSASHA256, xmlsig.ECDSASHA256}, true, false, xmlsig.RSASHA256},
		{"nothing announced", nil, true, false, xmlsig.RSASHA256},
		{"only a method without a key", []string{xmlsig.RSASHA512}, true, false, xmlsig.RSASHA256},
		{"the policy names the method", []string{xmlsig.ECDSASHA256}, false, false, xmlsig.RSASHA256},
		{"no P-256 key", []string{xmlsig.ECDSASHA256}, true, true, xmlsig.RSASHA256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t)
			fx.idp.Vendors[plainVendor].SigningMethods = tc.announced
			if tc.noECKey {
				fx.idp.AltSigners = nil
			}
			req := &samlidp.Request{ID: "_req-alg", VendorEntityID: plainVendor, ACSURL: plainACS0}
			resp, err := fx.idp.BuildResponse(req, released(t, plainVendor), samlidp.ResponseOptions{SignAssertion: true, AutoSignatureMethod: tc.auto})
			if err != nil {
				t.Fatal(err)
			}
			_, root := decodeResponse(t, resp)
			a := one(t, root, samlxml.NSAssertion, "Assertion")
			if got := signatureShape(t, a).SignatureMethod; got != tc.want {
				t.Errorf("signed with %s, want %s", got, tc.want)
			}
			// The IdP's verifier reads the XML-DSig r||s form of ECDSA.
			cert := fx.bridge.Cert
			if tc.want == xmlsig.ECDSASHA256 {
				cert = fx.bridgeEC.Cert
			}
			if err := xmlsig.VerifyInPlace(a, []*x509.Certificate{cert}, testNow()); err != nil {
				t.Errorf("the signature does not verify with the %s key: %v", tc.want, err)
			}
		})
	}
}
