package samlidp_test

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/skolbro/skolbro/internal/downstream/samlidp"
)

// Fuzz modes: how the fuzzed SAMLRequest value reaches ParseRequest.
const (
	// modeRedirect: a Redirect-binding value (deflated, base64), URL-encoded
	// by the harness, as is RelayState.
	modeRedirect = iota
	// modeRedirectRaw: the query is "SAMLRequest=<value>&RelayState=<relay>"
	// with both inserted as they are, so percent-encoding and extra
	// parameters are fuzzed too.
	modeRedirectRaw
	// modePOST: a POST-binding value (base64).
	modePOST
	// modeRedirectXML and modePOSTXML: the value is the AuthnRequest XML,
	// encoded by the harness, so that mutations reach the XML checks.
	modeRedirectXML
	modePOSTXML
	numModes
)

// FuzzParseRequest feeds ParseRequest mutated AuthnRequests on both
// bindings. It must never panic, must refuse with a *samlidp.Error, and
// anything it accepts must come from a known vendor and name an ACS URL from
// that vendor's metadata. Crashers found are kept in testdata/fuzz.
func FuzzParseRequest(f *testing.F) {
	fx := newFixture(f)
	plain := newAuthn(plainVendor).with(func(a *authn) { a.ACSURL = plainACS0 }).xml()
	byIndex := newAuthn(plainVendor).with(func(a *authn) { a.ACSIndex = "1" }).xml()
	signed := newAuthn(signedVendor).xml()
	signedPOST := signXML(f, newSigner(f, fx.vendorSign), signed)

	f.Add(uint8(modeRedirect), deflate(f, plain), relay)
	f.Add(uint8(modeRedirect), deflate(f, signed), "")
	f.Add(uint8(modeRedirectRaw), url.QueryEscape(deflate(f, byIndex)), "a%2Fb")
	f.Add(uint8(modeRedirectRaw), url.QueryEscape(deflate(f, plain)), "x&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256&Signature=AAAA")
	f.Add(uint8(modePOST), b64(plain), relay)
	f.Add(uint8(modePOST), b64(signedPOST), "")
	f.Add(uint8(modeRedirectXML), plain, relay)
	f.Add(uint8(modeRedirectXML), byIndex, "")
	f.Add(uint8(modePOSTXML), plain, relay)
	f.Add(uint8(modePOSTXML), signedPOST, "")

	f.Fuzz(func(t *testing.T, mode uint8, samlRequest, relayState string) {
		mode %= numModes
		var r *http.Request
		switch mode {
		case modeRedirect:
			r = getRequest(query("SAMLRequest", samlRequest, "RelayState", relayState))
		case modeRedirectRaw:
			r = getRequest("SAMLRequest=" + samlRequest + "&RelayState=" + relayState)
		case modePOST:
			r = postRequest(samlRequest, &relayState)
		case modeRedirectXML:
			r = getRequest(query("SAMLRequest", deflate(t, samlRequest), "RelayState", relayState))
		case modePOSTXML:
			r = postRequest(b64(samlRequest), &relayState)
		}

		req, err := fx.idp.ParseRequest(r)
		if err != nil {
			var e *samlidp.Error
			if !errors.As(err, &e) {
				t.Fatalf("refusal is not a *samlidp.Error: %T", err)
			}
			if e.Reason == "" || e.Status < 400 || e.Status > 499 {
				t.Fatalf("refusal with reason %q status %d", e.Reason, e.Status)
			}
			if req != nil {
				t.Fatalf("refused request returned %+v", req)
			}
			return
		}
		v, ok := fx.idp.Vendors[req.VendorEntityID]
		if !ok {
			t.Fatalf("accepted a request from unknown vendor %q", req.VendorEntityID)
		}
		if _, ok := v.ACSByURL(req.ACSURL); !ok {
			t.Fatalf("accepted ACS URL %q, not in %s's metadata", req.ACSURL, v.EntityID)
		}
		if err := samlidp.CheckBrowserURL(req.ACSURL, false); err != nil {
			t.Fatalf("accepted ACS URL %q: %v", req.ACSURL, err)
		}
		if len(req.RelayState) > samlidp.MaxRelayState {
			t.Fatalf("accepted %d bytes of RelayState", len(req.RelayState))
		}
		if mode != modeRedirectRaw && req.RelayState != relayState {
			t.Fatalf("RelayState changed from %q to %q", relayState, req.RelayState)
		}
		// No Redirect request carries a valid signature (none of the seeds
		// does, and one cannot be forged), so a vendor that requires signed
		// requests never gets one through that binding.
		isRedirect := mode == modeRedirect || mode == modeRedirectRaw || mode == modeRedirectXML
		if isRedirect && v.AuthnRequestsSigned {
			t.Fatalf("accepted an unsigned Redirect request from %s", v.EntityID)
		}
	})
}
