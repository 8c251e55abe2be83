package samlidp_test

import (
	"crypto"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

const (
	rsaSHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	relay   = "vendor-state-17"
)

// binding sends an AuthnRequest (XML) with RelayState through one binding.
type binding struct {
	name string
	send func(t testing.TB, xml string, relay *string) *http.Request
}

func bindings() []binding {
	return []binding{
		{"redirect", func(t testing.TB, xml string, relay *string) *http.Request {
			q := query("SAMLRequest", deflate(t, xml))
			if relay != nil {
				q += "&" + query("RelayState", *relay)
			}
			return getRequest(q)
		}},
		{"post", func(t testing.TB, xml string, relay *string) *http.Request {
			return postRequest(b64(xml), relay)
		}},
	}
}

// TestCase21_UnknownVendorOrACS: an AuthnRequest from an unknown SP, or one
// asking for an ACS URL that is not in the vendor's metadata, is refused
// (the caller shows an error page and POSTs nothing), on both bindings.
func TestCase21_UnknownVendorOrACS(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	now := testNow()
	base := newAuthn(plainVendor)
	tests := []struct {
		name string
		req  authn
		// reason is the expected refusal; "" means accepted with wantACS.
		reason  string
		wantACS string
	}{
		{name: "known vendor, no ACS named: default ACS", req: base, wantACS: plainACS1},
		{name: "ACS URL from metadata", req: base.with(func(a *authn) { a.ACSURL = plainACS0 }), wantACS: plainACS0},
		{name: "ACS index from metadata", req: base.with(func(a *authn) { a.ACSIndex = "0" }), wantACS: plainACS0},
		{name: "no ProtocolBinding", req: base.with(func(a *authn) { a.ProtocolBinding = "" }), wantACS: plainACS1},
		{name: "no Destination", req: base.with(func(a *authn) { a.Destination = "" }), wantACS: plainACS1},
		{name: "IssueInstant at max age", req: base.with(func(a *authn) { a.IssueInstant = stamp(now.Add(-10 * time.Minute)) }), wantACS: plainACS1},
		{name: "IssueInstant at max skew ahead", req: base.with(func(a *authn) { a.IssueInstant = stamp(now.Add(2 * time.Minute)) }), wantACS: plainACS1},

		{name: "unknown issuer", req: newAuthn("https://unknown.example.org/sp"), reason: "unknown_vendor"},
		{name: "issuer differs by trailing slash", req: newAuthn(plainVendor + "/"), reason: "unknown_vendor"},
		{name: "empty issuer", req: newAuthn(""), reason: "unknown_vendor"},
		{name: "missing issuer", req: base.with(func(a *authn) { a.NoIssuer = true }), reason: "no_issuer"},
		{name: "ACS URL of another host", req: base.with(func(a *authn) { a.ACSURL = "https://evil.example.net/acs" }), reason: "acs"},
		{name: "ACS URL of another vendor", req: base.with(func(a *authn) { a.ACSURL = signedACS0 }), reason: "acs"},
		{name: "ACS URL with trailing slash", req: base.with(func(a *authn) { a.ACSURL = plainACS0 + "/" }), reason: "acs"},
		{name: "ACS URL host in upper case", req: base.with(func(a *authn) { a.ACSURL = "https://PLAIN.example.com/saml/acs" }), reason: "acs"},
		{name: "ACS URL path in upper case", req: base.with(func(a *authn) { a.ACSURL = "https://plain.example.com/saml/ACS" }), reason: "acs"},
		{name: "ACS URL with query", req: base.with(func(a *authn) { a.ACSURL = plainACS0 + "?next=https://evil.example.net" }), reason: "acs"},
		{name: "ACS URL with fragment", req: base.with(func(a *authn) { a.ACSURL = plainACS0 + "#x" }), reason: "acs"},
		{name: "ACS URL plain http", req: base.with(func(a *authn) { a.ACSURL = "http://plain.example.com/saml/acs" }), reason: "acs"},
		{name: "ACS URL of the Redirect-binding endpoint", req: base.with(func(a *authn) { a.ACSURL = "https://plain.example.com/saml/redirect" }), reason: "acs"},
		{name: "ACS index not in metadata", req: base.with(func(a *authn) { a.ACSIndex = "7" }), reason: "acs"},
		{name: "ACS index of the Redirect-binding endpoint", req: base.with(func(a *authn) { a.ACSIndex = "5" }), reason: "acs"},
		{name: "ACS index not a number", req: base.with(func(a *authn) { a.ACSIndex = "first" }), reason: "acs"},
		{name: "ACS index negative", req: base.with(func(a *authn) { a.ACSIndex = "-1" }), reason: "acs"},
		{name: "ACS URL and index together", req: base.with(func(a *authn) { a.ACSURL, a.ACSIndex = plainACS0, "0" }), reason: "acs"},
		{name: "ProtocolBinding HTTP-Redirect", req: base.with(func(a *authn) { a.ProtocolBinding = samlidp.BindingRedirect }), reason: "binding"},
		{name: "ProtocolBinding HTTP-Artifact", req: base.with(func(a *authn) {
			a.ProtocolBinding = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"
		}), reason: "binding"},
		{name: "IssueInstant one second too old", req: base.with(func(a *authn) {
			a.IssueInstant = stamp(now.Add(-10*time.Minute - time.Second))
		}), reason: "stale"},
		{name: "IssueInstant a day old", req: base.with(func(a *authn) { a.IssueInstant = stamp(now.Add(-24 * time.Hour)) }), reason: "stale"},
		{name: "IssueInstant one second beyond skew", req: base.with(func(a *authn) {
			a.IssueInstant = stamp(now.Add(2*time.Minute + time.Second))
		}), reason: "stale"},
		{name: "IssueInstant an hour ahead", req: base.with(func(a *authn) { a.IssueInstant = stamp(now.Add(time.Hour)) }), reason: "stale"},
		{name: "IssueInstant not a time", req: base.with(func(a *authn) { a.IssueInstant = "yesterday" }), reason: "malformed"},
		{name: "Destination another IdP", req: base.with(func(a *authn) { a.Destination = "https://other-idp.example.se/sso" }), reason: "destination"},
		{name: "Destination with trailing slash", req: base.with(func(a *authn) { a.Destination = ssoURL + "/" }), reason: "destination"},
	}
	for _, b := range bindings() {
		for _, tc := range tests {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				got, err := fx.idp.ParseRequest(b.send(t, tc.req.xml(), strp(relay)))
				if tc.reason != "" {
					if got != nil {
						t.Errorf("refused request returned %+v", got)
					}
					checkRefused(t, err, tc.reason, http.StatusBadRequest)
					// The error is logged: it must carry no input.
					for _, in := range []string{tc.req.ID, tc.req.Issuer, tc.req.ACSURL, tc.req.Destination, tc.req.IssueInstant, relay} {
						if in != "" && strings.Contains(err.Error(), in) {
							t.Errorf("error %q contains the input %q", err, in)
						}
					}
					return
				}
				if err != nil {
					t.Fatalf("ParseRequest: %v", err)
				}
				want := &samlidp.Request{ID: tc.req.ID, VendorEntityID: plainVendor, ACSURL: tc.wantACS, RelayState: relay}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("request (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestParseRequestOtherRefusals covers what the bridge cannot honour or
// does not read: they are refused with a fixed reason, never a panic.
func TestParseRequestOtherRefusals(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	base := newAuthn(plainVendor)
	tests := []struct {
		name   string
		req    func(t testing.TB) *http.Request
		reason string
		status int
	}{
		{"method PUT", func(testing.TB) *http.Request {
			r := postRequest(b64(base.xml()), nil)
			r.Method = http.MethodPut
			return r
		}, "method", http.StatusMethodNotAllowed},
		{"redirect without SAMLRequest", func(testing.TB) *http.Request {
			return getRequest(query("RelayState", relay))
		}, "no_request", http.StatusBadRequest},
		{"redirect SAMLRequest not deflated", func(testing.TB) *http.Request {
			return getRequest(query("SAMLRequest", b64(base.xml())))
		}, "malformed", http.StatusBadRequest},
		{"redirect SAMLRequest not base64", func(testing.TB) *http.Request {
			return getRequest("SAMLRequest=%%%%")
		}, "malformed", http.StatusBadRequest},
		{"redirect deflate bomb", func(t testing.TB) *http.Request {
			return getRequest(query("SAMLRequest", deflate(t, base.xml()+strings.Repeat(" ", 300<<10))))
		}, "too_large", http.StatusRequestEntityTooLarge},
		{"post SAMLRequest not base64", func(testing.TB) *http.Request {
			return postRequest("<samlp:AuthnRequest/>", nil)
		}, "malformed", http.StatusBadRequest},
		{"post DOCTYPE", func(testing.TB) *http.Request {
			return postRequest(b64(`<!DOCTYPE x [<!ENTITY e "e">]>`+base.xml()), nil)
		}, "dtd", http.StatusBadRequest},
		{"post not an AuthnRequest", func(testing.TB) *http.Request {
			return postRequest(b64(strings.ReplaceAll(base.xml(), "AuthnRequest", "LogoutRequest")), nil)
		}, "malformed", http.StatusBadRequest},
		{"post Version 1.1", func(testing.TB) *http.Request {
			return postRequest(b64(strings.Replace(base.xml(), `Version="2.0"`, `Version="1.1"`, 1)), nil)
		}, "malformed", http.StatusBadRequest},
		{"post no ID", func(testing.TB) *http.Request {
			return postRequest(b64(base.with(func(a *authn) { a.ID = "" }).xml()), nil)
		}, "malformed", http.StatusBadRequest},
		{"post comment inside Issuer", func(testing.TB) *http.Request {
			x := strings.Replace(base.xml(), plainVendor, "https://plain.example.com<!---->/sp", 1)
			return postRequest(b64(x), nil)
		}, "malformed", http.StatusBadRequest},
		{"post two Issuers", func(testing.TB) *http.Request {
			x := strings.Replace(base.xml(), "</samlp:AuthnRequest>", "<saml:Issuer>"+plainVendor+"</saml:Issuer></samlp:AuthnRequest>", 1)
			return postRequest(b64(x), nil)
		}, "no_issuer", http.StatusBadRequest},
		{"redirect bad percent-encoding in RelayState", func(t testing.TB) *http.Request {
			return getRequest(query("SAMLRequest", deflate(t, base.xml())) + "&RelayState=%zz")
		}, "malformed", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := fx.idp.ParseRequest(tc.req(t))
			if got != nil {
				t.Errorf("refused request returned %+v", got)
			}
			checkRefused(t, err, tc.reason, tc.status)
			if strings.Contains(err.Error(), "%zz") {
				t.Errorf("error %q repeats the input", err)
			}
		})
	}

	t.Run("accepted with ForceAuthn and a transient NameIDPolicy", func(t *testing.T) {
		t.Parallel()
		x := base.with(func(a *authn) {
			a.Extra = [][2]string{{"ForceAuthn", "true"}}
			a.NameIDFormat = samlidp.NameIDTransient
		}).xml()
		got, err := fx.idp.ParseRequest(postRequest(b64(x), nil))
		if err != nil {
			t.Fatal(err)
		}
		want := &samlidp.Request{ID: base.ID, VendorEntityID: plainVendor, ACSURL: plainACS1, ForceAuthn: true,
			NameIDFormat: samlidp.NameIDTransient}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("request (-want +got):\n%s", diff)
		}
	})
	// IsPassive and an unsupported NameIDPolicy are not refused here: the
	// server answers them with a SAML status (NoPassive,
	// InvalidNameIDPolicy) at the vendor's validated ACS.
	t.Run("IsPassive and an email NameIDPolicy are recorded", func(t *testing.T) {
		t.Parallel()
		x := base.with(func(a *authn) {
			a.Extra = [][2]string{{"IsPassive", "true"}}
			a.NameIDFormat = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
		}).xml()
		got, err := fx.idp.ParseRequest(postRequest(b64(x), nil))
		if err != nil {
			t.Fatal(err)
		}
		if !got.IsPassive || got.NameIDFormat != "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" {
			t.Errorf("request %+v", got)
		}
	})
}

// TestCase23_RelayState: RelayState is opaque, at most 80 bytes (counted
// after URL decoding), and passed back unchanged; it never changes where
// the response goes.
func TestCase23_RelayState(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	xml := newAuthn(plainVendor).with(func(a *authn) { a.ACSURL = plainACS0 }).xml()
	tests := []struct {
		name  string
		relay string
		ok    bool
	}{
		{"80 bytes", strings.Repeat("r", 80), true},
		{"81 bytes", strings.Repeat("r", 81), false},
		{"80 bytes that need URL encoding", "a&b=c/d?e f%g+h#" + strings.Repeat("x", 64), true},
		// 39 two-byte characters and two ASCII bytes: 41 characters.
		{"80 bytes of UTF-8", strings.Repeat("ö", 39) + "ab", true},
		{"81 bytes of UTF-8", strings.Repeat("ö", 40) + "a", false},
		{"a URL is only a value", "https://evil.example.net/steal", true},
		{"empty", "", true},
		{"1000 bytes", strings.Repeat("r", 1000), false},
	}
	for _, b := range bindings() {
		for _, tc := range tests {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				got, err := fx.idp.ParseRequest(b.send(t, xml, strp(tc.relay)))
				if !tc.ok {
					if got != nil {
						t.Errorf("refused request returned %+v", got)
					}
					checkRefused(t, err, "relay_state", http.StatusBadRequest)
					return
				}
				if err != nil {
					t.Fatalf("ParseRequest with %d bytes of RelayState: %v", len(tc.relay), err)
				}
				want := &samlidp.Request{ID: newAuthn("").ID, VendorEntityID: plainVendor, ACSURL: plainACS0, RelayState: tc.relay}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("request (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestCase24_SignedAuthnRequests: a vendor whose metadata says
// AuthnRequestsSigned must sign, with a key from its metadata and an
// accepted algorithm, over exactly what it sent; a signature that is there
// must verify even when the vendor does not require one.
func TestCase24_SignedAuthnRequests(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	signedReq := newAuthn(signedVendor).with(func(a *authn) { a.ACSURL = signedACS0 }).xml()
	otherReq := newAuthn(signedVendor).with(func(a *authn) { a.ACSURL = signedACS1 }).xml()
	enc, otherEnc := deflate(t, signedReq), deflate(t, otherReq)
	optReq := newAuthn(optVendor).xml()
	plainReq := newAuthn(plainVendor).xml()
	vendorSigner, otherSigner := newSigner(t, fx.vendorSign), newSigner(t, fx.other)

	// state is the RelayState of most cases; its URL-encoded form differs
	// from it, so a verifier that re-encodes would be caught.
	state := "state/1 ok?"
	// swap replaces one part of a query, as an attacker would after
	// signing.
	swap := func(t testing.TB, q, from, to string) string {
		if !strings.Contains(q, from) {
			t.Fatalf("query has no %q", from)
		}
		return strings.Replace(q, from, to, 1)
	}
	accepted := func(vendor, acs, relay string) *samlidp.Request {
		return &samlidp.Request{ID: newAuthn("").ID, VendorEntityID: vendor, ACSURL: acs, RelayState: relay}
	}

	tests := []struct {
		name   string
		req    func(t testing.TB) *http.Request
		want   *samlidp.Request // nil: refused with reason
		reason string
	}{
		// HTTP-Redirect binding.
		{"redirect signed with RelayState", func(t testing.TB) *http.Request {
			return getRequest(signedQuery(t, fx.vendorSign, xmlsig.RSASHA256, crypto.SHA256, enc, &state))
		}, accepted(signedVendor, signedACS0, state), ""},
		{"redirect signed without RelayState", func(t testing.TB) *http.Request {
			return getRequest(signedQuery(t, fx.vendorSign, xmlsig.RSASHA256, crypto.SHA256, enc, nil))
		}, accepted(signedVendor, signedACS0, ""), ""},
		{"redirect signed over lower-case percent-encoding as sent", func(t testing.TB) *http.Request {
			// The signature covers the bytes as sent, not a re-encoding.
			q := "SAMLRequest=" + lowerEscapes(url.QueryEscape(enc)) + "&RelayState=" + lowerEscapes(url.QueryEscape(state)) +
				"&SigAlg=" + lowerEscapes(url.QueryEscape(xmlsig.RSASHA256))
			return getRequest(q + "&" + query("Signature", signRaw(t, fx.vendorSign, crypto.SHA256, q)))
		}, accepted(signedVendor, signedACS0, state), ""},
		{"redirect signed with RSA-SHA512", func(t testing.TB) *http.Request {
			return getRequest(signedQuery(t, fx.vendorSign, xmlsig.RSASHA512, crypto.SHA512, enc, &state))
		}, accepted(signedVendor, signedACS0, state), ""},
		{"redirect unsigned", func(t testing.TB) *http.Request {
			return getRequest(query("SAMLRequest", enc, "RelayState", state))
		}, nil, "unsigned"},
		{"redirect signed by a key not in metadata", func(t testing.TB) *http.Request {
			return getRequest(signedQuery(t, fx.other, xmlsig.RSASHA256, crypto.SHA256, enc, &state))
		}, nil, "bad_signature"},
		{"redirect RSA-SHA1", func(t testing.TB) *http.Request {
			return getRequest(signedQuery(t, fx.vendorSign, rsaSHA1, crypto.SHA1, enc, &state))
		}, nil, "weak_algorithm"},
		{"redirect SigAlg changed after signing", func(t testing.TB) *http.Request {
			q := signedQuery(t, fx.vendorSign, xmlsig.RSASHA256, crypto.SHA256, enc, &state)
			return getRequest(swap(t, q, query("SigAlg", xmlsig.RSASHA256), query("SigAlg", xmlsig.RSASHA512)))
		}, nil, "bad_signature"},
		{"redirect SAMLRequest replaced after signing", func(t testing.TB) *http.Request {
			q := signedQuery(t, fx.vendorSign, xmlsig.RSASHA256, crypto.SHA256, enc, &state)
			return getRequest(swap(t, q, query("SAMLRequest", enc), query("SAMLRequest", otherEnc)))
		}, nil, "bad_signature"},
		{"redirect RelayState changed after signing", func(t testing.TB) *http.Request {
			q := signedQuery(t, fx.vendorSign, xmlsig.RSASHA256, crypto.SHA256, enc, &state)
			return getRequest(swap(t, q, query("RelayState", state), query("RelayState", "state/2 ok?")))
		}, nil, "bad_signature"},
		{"redirect RelayState added after signing", func(t testing.TB) *http.Request {
			q := signedQuery(t, fx.vendorSign, xmlsig.RSASHA256, crypto.SHA256, enc, nil)
			return getRequest(q + "&" + query("RelayState", state))
		}, nil, "bad_signature"},
		{"redirect RelayState removed after signing", func(t testing.TB) *http.Request {
			q := signedQuery(t, fx.vendorSign, xmlsig.RSASHA256, crypto.SHA256, enc, &state)
			return getRequest(swap(t, q, "&"+query("RelayState", state), ""))
		}, nil, "bad_signature"},
		{"redirect Signature without SigAlg", func(t testing.TB) *http.Request {
			q := signedQuery(t, fx.vendorSign, xmlsig.RSASHA256, crypto.SHA256, enc, &state)
			return getRequest(swap(t, q, "&"+query("SigAlg", xmlsig.RSASHA256), ""))
		}, nil, "bad_signature"},
		{"redirect SigAlg without Signature", func(t testing.TB) *http.Request {
			return getRequest(query("SAMLRequest", enc, "RelayState", state, "SigAlg", xmlsig.RSASHA256))
		}, nil, "bad_signature"},
		{"redirect Signature not base64", func(t testing.TB) *http.Request {
			return getRequest(query("SAMLRequest", enc, "RelayState", state, "SigAlg", xmlsig.RSASHA256, "Signature", "not base64!"))
		}, nil, "bad_signature"},
		{"redirect duplicate SAMLRequest", func(t testing.TB) *http.Request {
			q := signedQuery(t, fx.vendorSign, xmlsig.RSASHA256, crypto.SHA256, enc, &state)
			return getRequest(q + "&" + query("SAMLRequest", otherEnc))
		}, nil, "duplicate_parameter"},
		{"redirect duplicate SAMLRequest under an encoded name", func(t testing.TB) *http.Request {
			q := signedQuery(t, fx.vendorSign, xmlsig.RSASHA256, crypto.SHA256, enc, &state)
			return getRequest(q + "&SAML%52equest=" + query("", otherEnc)[1:])
		}, nil, "duplicate_parameter"},
		{"redirect duplicate RelayState", func(t testing.TB) *http.Request {
			q := signedQuery(t, fx.vendorSign, xmlsig.RSASHA256, crypto.SHA256, enc, &state)
			return getRequest(q + "&" + query("RelayState", "https://evil.example.net/"))
		}, nil, "duplicate_parameter"},
		{"redirect duplicate RelayState on an unsigned request", func(t testing.TB) *http.Request {
			return getRequest(query("SAMLRequest", deflate(t, plainReq), "RelayState", "a", "RelayState", "b"))
		}, nil, "duplicate_parameter"},
		{"redirect duplicate SigAlg", func(t testing.TB) *http.Request {
			q := signedQuery(t, fx.vendorSign, xmlsig.RSASHA256, crypto.SHA256, enc, &state)
			return getRequest(q + "&" + query("SigAlg", rsaSHA1))
		}, nil, "duplicate_parameter"},
		{"redirect duplicate Signature", func(t testing.TB) *http.Request {
			q := signedQuery(t, fx.vendorSign, xmlsig.RSASHA256, crypto.SHA256, enc, &state)
			return getRequest(q + "&" + query("Signature", "AAAA"))
		}, nil, "duplicate_parameter"},

		// HTTP-POST binding, enveloped signature.
		{"post signed", func(t testing.TB) *http.Request {
			return postRequest(b64(signXML(t, vendorSigner, signedReq)), &state)
		}, accepted(signedVendor, signedACS0, state), ""},
		{"post unsigned", func(t testing.TB) *http.Request {
			return postRequest(b64(signedReq), &state)
		}, nil, "unsigned"},
		{"post ACS URL changed after signing", func(t testing.TB) *http.Request {
			x := signXML(t, vendorSigner, signedReq)
			return postRequest(b64(strings.Replace(x, `"`+signedACS0+`"`, `"`+signedACS1+`"`, 1)), &state)
		}, nil, "bad_signature"},
		{"post ID changed after signing", func(t testing.TB) *http.Request {
			x := signXML(t, vendorSigner, signedReq)
			return postRequest(b64(strings.ReplaceAll(x, newAuthn("").ID, "_other")), &state)
		}, nil, "bad_signature"},
		{"post signed by a key not in metadata", func(t testing.TB) *http.Request {
			return postRequest(b64(signXML(t, otherSigner, signedReq)), &state)
		}, nil, "bad_signature"},
		{"post SignatureMethod RSA-SHA1", func(t testing.TB) *http.Request {
			x := signXML(t, vendorSigner, signedReq)
			return postRequest(b64(strings.Replace(x, xmlsig.RSASHA256, rsaSHA1, 1)), &state)
		}, nil, "weak_algorithm"},
		{"post DigestMethod SHA-1", func(t testing.TB) *http.Request {
			x := signXML(t, vendorSigner, signedReq)
			return postRequest(b64(strings.Replace(x, xmlsig.DigestSHA256, "http://www.w3.org/2000/09/xmldsig#sha1", 1)), &state)
		}, nil, "weak_algorithm"},

		// A vendor that does not require signatures: none is fine, a bad
		// one is not.
		{"optional: redirect unsigned", func(t testing.TB) *http.Request {
			return getRequest(query("SAMLRequest", deflate(t, optReq)))
		}, accepted(optVendor, optACS, ""), ""},
		{"optional: redirect signed", func(t testing.TB) *http.Request {
			return getRequest(signedQuery(t, fx.vendorSign, xmlsig.RSASHA256, crypto.SHA256, deflate(t, optReq), &state))
		}, accepted(optVendor, optACS, state), ""},
		{"optional: redirect signed by a key not in metadata", func(t testing.TB) *http.Request {
			return getRequest(signedQuery(t, fx.other, xmlsig.RSASHA256, crypto.SHA256, deflate(t, optReq), &state))
		}, nil, "bad_signature"},
		{"optional: redirect RSA-SHA1", func(t testing.TB) *http.Request {
			return getRequest(signedQuery(t, fx.vendorSign, rsaSHA1, crypto.SHA1, deflate(t, optReq), &state))
		}, nil, "weak_algorithm"},
		{"optional: post unsigned", func(t testing.TB) *http.Request {
			return postRequest(b64(optReq), nil)
		}, accepted(optVendor, optACS, ""), ""},
		{"optional: post signed", func(t testing.TB) *http.Request {
			return postRequest(b64(signXML(t, vendorSigner, optReq)), nil)
		}, accepted(optVendor, optACS, ""), ""},
		{"optional: post signed by a key not in metadata", func(t testing.TB) *http.Request {
			return postRequest(b64(signXML(t, otherSigner, optReq)), nil)
		}, nil, "bad_signature"},
		{"no keys in metadata: redirect signed anyway", func(t testing.TB) *http.Request {
			return getRequest(signedQuery(t, fx.other, xmlsig.RSASHA256, crypto.SHA256, deflate(t, plainReq), nil))
		}, nil, "bad_signature"},
		{"no keys in metadata: post signed anyway", func(t testing.TB) *http.Request {
			return postRequest(b64(signXML(t, otherSigner, plainReq)), nil)
		}, nil, "bad_signature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := fx.idp.ParseRequest(tc.req(t))
			if tc.want == nil {
				if got != nil {
					t.Errorf("refused request returned %+v", got)
				}
				checkRefused(t, err, tc.reason, http.StatusBadRequest)
				return
			}
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

// lowerEscapes writes percent-escapes with lower-case hex digits, which
// url.QueryEscape never produces but a vendor SP may.
func lowerEscapes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			b.WriteString(strings.ToLower(s[i : i+3]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// TestCase24_SignedRequestWithoutDestinationRefused: the SAML bindings
// require Destination in a signed AuthnRequest. Without it, a request a
// vendor signed for another IdP would be accepted here; so a signed request
// without one is refused on both bindings, whether or not the vendor
// requires signatures, and a Destination that is not this IdP's SSO URL is
// refused too. An unsigned request may leave Destination out.
func TestCase24_SignedRequestWithoutDestinationRefused(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	vendorSigner := newSigner(t, fx.vendorSign)
	state := "state/1"
	noDest := func(a *authn) { a.Destination = "" }
	reqs := map[string]authn{
		"required": newAuthn(signedVendor).with(func(a *authn) { a.ACSURL = signedACS0 }),
		"optional": newAuthn(optVendor),
	}
	acs := map[string]string{"required": signedACS0, "optional": optACS}
	entity := map[string]string{"required": signedVendor, "optional": optVendor}

	redirect := func(t testing.TB, x string) *http.Request {
		return getRequest(signedQuery(t, fx.vendorSign, xmlsig.RSASHA256, crypto.SHA256, deflate(t, x), &state))
	}
	post := func(t testing.TB, x string) *http.Request {
		return postRequest(b64(signXML(t, vendorSigner, x)), &state)
	}
	tests := []struct {
		name   string
		edit   func(*authn)
		reason string // "" means accepted
	}{
		{"Destination is the SSO URL", func(*authn) {}, ""},
		{"no Destination", noDest, "no_destination"},
		{"Destination in another namespace only", func(a *authn) {
			a.Destination = ""
			a.Extra = [][2]string{{"xmlns:x", "urn:example:x"}, {"x:Destination", ssoURL}}
		}, "no_destination"},
		{"empty Destination", func(a *authn) { a.Extra = [][2]string{{"Destination", ""}}; a.Destination = "" }, "destination"},
		{"Destination another IdP", func(a *authn) { a.Destination = "https://other-idp.example.se/sso" }, "destination"},
		{"Destination differs in case", func(a *authn) { a.Destination = strings.ToUpper(ssoURL) }, "destination"},
	}
	for _, who := range []string{"required", "optional"} {
		for _, b := range []struct {
			name string
			send func(testing.TB, string) *http.Request
		}{{"redirect", redirect}, {"post", post}} {
			for _, tc := range tests {
				t.Run(who+"/"+b.name+"/"+tc.name, func(t *testing.T) {
					t.Parallel()
					got, err := fx.idp.ParseRequest(b.send(t, reqs[who].with(tc.edit).xml()))
					if tc.reason != "" {
						if got != nil {
							t.Errorf("refused request returned %+v", got)
						}
						checkRefused(t, err, tc.reason, http.StatusBadRequest)
						return
					}
					if err != nil {
						t.Fatalf("ParseRequest: %v", err)
					}
					want := &samlidp.Request{ID: newAuthn("").ID, VendorEntityID: entity[who], ACSURL: acs[who], RelayState: state}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("request (-want +got):\n%s", diff)
					}
				})
			}
		}
	}

	// Unsigned requests may leave Destination out (the bindings require it
	// only of signed ones); an empty or foreign one is still refused.
	for _, b := range bindings() {
		t.Run("unsigned/"+b.name+"/no Destination accepted", func(t *testing.T) {
			t.Parallel()
			got, err := fx.idp.ParseRequest(b.send(t, newAuthn(optVendor).with(noDest).xml(), nil))
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if got.ACSURL != optACS {
				t.Errorf("ACS %q, want %q", got.ACSURL, optACS)
			}
		})
		t.Run("unsigned/"+b.name+"/empty Destination refused", func(t *testing.T) {
			t.Parallel()
			x := newAuthn(optVendor).with(func(a *authn) { a.Destination = ""; a.Extra = [][2]string{{"Destination", ""}} }).xml()
			got, err := fx.idp.ParseRequest(b.send(t, x, nil))
			if got != nil {
				t.Errorf("refused request returned %+v", got)
			}
			checkRefused(t, err, "destination", http.StatusBadRequest)
		})
	}
}

// RequestedAuthnContext is read (comparison exact by default, the classes
// in order) for the login flow to ask upstream and check; a malformed one
// is refused like any malformed request (case 49).
func TestCase49_RequestedAuthnContextParsed(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	base := newAuthn(plainVendor)
	const twofa = "http://id.skolfederation.se/loa/2fa"
	tests := []struct {
		name   string
		rac    *samlidp.RequestedAuthnContext
		want   *samlidp.RequestedAuthnContext
		refuse bool
	}{
		{"exact by default", &samlidp.RequestedAuthnContext{Classes: []string{twofa}},
			&samlidp.RequestedAuthnContext{Comparison: "exact", Classes: []string{twofa}}, false},
		{"minimum, two classes", &samlidp.RequestedAuthnContext{Comparison: "minimum", Classes: []string{twofa, "urn:x:b"}},
			&samlidp.RequestedAuthnContext{Comparison: "minimum", Classes: []string{twofa, "urn:x:b"}}, false},
		{"a declaration reference is recorded", &samlidp.RequestedAuthnContext{Comparison: "exact", DeclRefs: true},
			&samlidp.RequestedAuthnContext{Comparison: "exact", DeclRefs: true}, false},
		{"unknown comparison", &samlidp.RequestedAuthnContext{Comparison: "sideways", Classes: []string{twofa}}, nil, true},
		{"empty", &samlidp.RequestedAuthnContext{Comparison: "minimum"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			x := base.with(func(a *authn) { a.RAC = tc.rac }).xml()
			got, err := fx.idp.ParseRequest(postRequest(b64(x), nil))
			if tc.refuse {
				checkRefused(t, err, "malformed", http.StatusBadRequest)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.AuthnContext); diff != "" {
				t.Errorf("RequestedAuthnContext (-want +got):\n%s", diff)
			}
		})
	}
}
