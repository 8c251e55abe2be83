package testidp

import (
	"bytes"
	"compress/flate"
	"crypto/x509"
	"encoding/base64"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/samlmeta"
	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

var t0 = time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC)

const (
	entityID = "https://idp.skola.example.se/idp"
	ssoURL   = "https://idp.skola.example.se/sso"
	acs      = "https://bridge.example.se/saml/acs"
	spID     = "https://bridge.example.se/saml/sp"
	scope    = "skola.example.se"
)

func newIdP(t *testing.T) (*IdP, *keys.Pair) {
	t.Helper()
	pair, err := keys.Generate("idp", keys.P256, t0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := xmlsig.NewSigner(pair)
	if err != nil {
		t.Fatal(err)
	}
	idp := New(entityID, ssoURL, scope, s)
	idp.Now = func() time.Time { return t0 }
	idp.ACSURL = acs
	return idp, pair
}

func TestDemoUsers(t *testing.T) {
	users := DemoUsers(scope)
	if len(users) != 6 {
		t.Fatalf("%d users, want 6", len(users))
	}
	seen := map[string]bool{}
	pupils, protected := 0, 0
	schoolUnit := regexp.MustCompile(`^\d{8}$`)
	for _, u := range users {
		for _, k := range []string{"login:" + u.Login, "nameid:" + u.NameID, "label:" + u.Label} {
			if seen[k] {
				t.Errorf("%s not unique", k)
			}
			seen[k] = true
		}
		a := u.Attributes
		pnr := a[AttrPersonalNumber]
		if len(pnr) != 1 {
			t.Fatalf("%s: %d personal numbers", u.Login, len(pnr))
		}
		p, err := identity.ParsePersonalNumber(pnr[0], t0)
		if err != nil || p.RevealPersonalNumber() != pnr[0] {
			t.Errorf("%s: personal number does not parse as 12 digits with a correct check digit", u.Login)
		}
		eppn := a[AttrEPPN]
		if len(eppn) != 1 || !strings.HasSuffix(eppn[0], "@"+scope) || strings.Contains(eppn[0], pnr[0][2:8]) {
			t.Errorf("%s: eduPersonPrincipalName %q", u.Login, eppn)
		}
		for _, v := range a[AttrScopedAffiliation] {
			if !strings.HasSuffix(v, "@"+scope) {
				t.Errorf("%s: scoped affiliation %q out of scope", u.Login, v)
			}
		}
		for _, name := range []string{AttrGivenName, AttrSurname, AttrDisplayName, AttrMail, AttrSchoolUnitCode, AttrSecurityMarking} {
			if len(a[name]) == 0 {
				t.Errorf("%s: no %s", u.Login, name)
			}
		}
		for _, c := range a[AttrSchoolUnitCode] {
			if !schoolUnit.MatchString(c) {
				t.Errorf("%s: school unit code %q", u.Login, c)
			}
		}
		for name := range a {
			if _, ok := attr.Lookup(name); !ok && name != AttrSecurityMarking {
				t.Errorf("%s: attribute %s is not in the attribute table", u.Login, name)
			}
		}
		if strings.HasPrefix(a[AttrScopedAffiliation][0], "student@") {
			pupils++
			if len(a[AttrSchoolGrade]) != 1 {
				t.Errorf("%s: pupil without sisSchoolGrade", u.Login)
			}
		}
		switch m := a[AttrSecurityMarking]; {
		case len(m) == 1 && m[0] == MarkingProtected:
			protected++
		case len(m) != 1 || m[0] != MarkingNone:
			t.Errorf("%s: securityMarking %q", u.Login, m)
		}
	}
	if pupils != 4 || protected != 1 {
		t.Errorf("%d pupils, %d protected; want 4, 1", pupils, protected)
	}
	teacher, _ := (&IdP{Users: users}).User("david.d")
	if len(teacher.Attributes[AttrSchoolUnitCode]) != 2 {
		t.Error("the teacher should work at both schools")
	}
}

func TestMetadata(t *testing.T) {
	idp, pair := newIdP(t)
	b, err := idp.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	ed, err := samlmeta.ParseEntity(b)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := samlmeta.IdPSigningCerts(ed)
	if err != nil || len(certs) != 1 || !certs[0].Equal(pair.Cert) {
		t.Errorf("signing certs = %v, %v", certs, err)
	}
	if u, err := samlmeta.IdPSSORedirectURL(ed); u != ssoURL || err != nil {
		t.Errorf("SSO URL = %q, %v", u, err)
	}
	if s, err := samlmeta.Scopes(b, entityID); err != nil || len(s) != 1 || s[0] != scope {
		t.Errorf("scopes = %q, %v", s, err)
	}
}

// verify checks el's enveloped signature with goxmldsig directly (as an
// independent check of what the IdP signs) and returns the verified copy.
func verify(t *testing.T, el *etree.Element, pair *keys.Pair) *etree.Element {
	t.Helper()
	ctx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		t.Fatal(err)
	}
	det, err := etreeutils.NSDetatch(ctx, el)
	if err != nil {
		t.Fatal(err)
	}
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{pair.Cert}})
	vc.Clock = dsig.NewFakeClockAt(t0)
	out, err := vc.Validate(det)
	if err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	return out
}

func parseResponse(t *testing.T, b64 string) *etree.Document {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := samlxml.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestRespond(t *testing.T) {
	req := Request{ID: "_req1", ACSURL: acs, SPEntityID: spID}
	t.Run("signed_assertion", func(t *testing.T) {
		// An RSA signer, so that goxmldsig (which expects ASN.1 ECDSA
		// signatures) can check the result without conversion.
		pair, err := keys.Generate("idp", keys.RSA2048, t0)
		if err != nil {
			t.Fatal(err)
		}
		idp, _ := newIdP(t)
		idp.Signer, _ = xmlsig.NewSigner(pair)
		u, _ := idp.User("anna.a")
		doc := parseResponse(t, mustRespond(t, idp, req, u, SignResponse()))
		r := doc.Root()
		verify(t, r, pair)
		as := samlxml.Children(r, samlxml.NSAssertion, "Assertion")
		if len(as) != 1 {
			t.Fatalf("%d assertions", len(as))
		}
		a := verify(t, as[0], pair)
		checks := map[string]string{
			"saml:Subject/saml:NameID":                               u.NameID,
			"saml:Conditions/saml:AudienceRestriction/saml:Audience": spID,
			"saml:Issuer": entityID,
		}
		for path, want := range checks {
			if el := a.FindElement(path); el == nil || el.Text() != want {
				t.Errorf("%s wrong", path)
			}
		}
		scd := a.FindElement("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData")
		if scd.SelectAttrValue("Recipient", "") != acs || scd.SelectAttrValue("InResponseTo", "") != "_req1" ||
			scd.SelectAttrValue("NotOnOrAfter", "") != Timestamp(t0.Add(5*time.Minute)) || scd.SelectAttr("Address") != nil {
			t.Errorf("SubjectConfirmationData = %v", scd.Attr)
		}
		if r.SelectAttrValue("Destination", "") != acs || r.SelectAttrValue("InResponseTo", "") != "_req1" {
			t.Error("Response Destination/InResponseTo wrong")
		}
		for _, at := range a.FindElements("saml:AttributeStatement/saml:Attribute") {
			name := at.SelectAttrValue("Name", "")
			var got []string
			for _, v := range at.FindElements("saml:AttributeValue") {
				got = append(got, v.Text())
			}
			if strings.Join(got, "|") != strings.Join(u.Attributes[name], "|") {
				t.Errorf("%s = %q", name, got)
			}
		}
	})
	t.Run("unsigned_and_hooks", func(t *testing.T) {
		idp, _ := newIdP(t)
		u, _ := idp.User("anna.a")
		var order []string
		doc := parseResponse(t, mustRespond(t, idp, req, u, UnsignedAssertion(),
			BeforeSigning(func(*etree.Document) { order = append(order, "before") }),
			AfterSigning(func(*etree.Document) { order = append(order, "after") })))
		if strings.Join(order, ",") != "before,after" {
			t.Errorf("hooks ran %v", order)
		}
		if doc.Root().FindElement(".//ds:Signature") != nil {
			t.Error("unsigned response carries a signature")
		}
	})
	t.Run("status", func(t *testing.T) {
		idp, _ := newIdP(t)
		u, _ := idp.User("anna.a")
		doc := parseResponse(t, mustRespond(t, idp, req, u, Status(StatusResponder, StatusAuthnFailed)))
		sc := doc.Root().FindElement("samlp:Status/samlp:StatusCode")
		if sc.SelectAttrValue("Value", "") != StatusResponder || sc.FindElement("samlp:StatusCode").SelectAttrValue("Value", "") != StatusAuthnFailed {
			t.Error("status codes wrong")
		}
		if doc.Root().FindElement("saml:Assertion") != nil {
			t.Error("error response carries an assertion")
		}
	})
	t.Run("no_signer", func(t *testing.T) {
		idp, _ := newIdP(t)
		idp.Signer = nil
		u, _ := idp.User("anna.a")
		if _, err := idp.Respond(req, u); err == nil {
			t.Error("Respond without a signer succeeded")
		}
	})
}

func mustRespond(t *testing.T, idp *IdP, req Request, u User, opts ...Option) string {
	t.Helper()
	s, err := idp.Respond(req, u, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func deflate(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func authnRequest(id, acsURL, dest string) string {
	a := ""
	if acsURL != "" {
		a = ` AssertionConsumerServiceURL="` + acsURL + `"`
	}
	return `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="` + id +
		`" Version="2.0" IssueInstant="2030-01-15T10:00:00Z" Destination="` + dest + `"` + a + `><saml:Issuer>` + spID + `</saml:Issuer></samlp:AuthnRequest>`
}

var (
	actionRE = regexp.MustCompile(`<form[^>]* action="([^"]*)"`)
	inputRE  = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

func TestServeHTTP(t *testing.T) {
	good := deflate(t, authnRequest("_r1", acs, ssoURL))
	get := func(idp *IdP, q url.Values) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		idp.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, ssoURL+"?"+q.Encode(), nil))
		return rec
	}
	post := func(idp *IdP, f url.Values) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, ssoURL, strings.NewReader(f.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		idp.ServeHTTP(rec, r)
		return rec
	}

	t.Run("picker", func(t *testing.T) {
		idp, _ := newIdP(t)
		idp.Users = append(idp.Users, User{Login: "x", Label: `<script>alert(1)</script>`, NameID: "x"})
		rec := get(idp, url.Values{"SAMLRequest": {good}, "RelayState": {"h1"}})
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		body := rec.Body.String()
		for _, u := range idp.Users[:6] {
			if !strings.Contains(body, html.EscapeString(u.Label)) {
				t.Errorf("picker lacks %q", u.Label)
			}
		}
		if strings.Contains(body, "<script>alert") {
			t.Error("label not escaped")
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "form-action 'self'") {
			t.Errorf("CSP = %q", csp)
		}
		if !strings.Contains(body, `name="RelayState" value="h1"`) {
			t.Error("RelayState not carried")
		}
	})
	t.Run("post_answers_with_autopost", func(t *testing.T) {
		idp, _ := newIdP(t)
		rec := post(idp, url.Values{"SAMLRequest": {good}, "RelayState": {"h1"}, "user": {"cecilia.c"}})
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		body := rec.Body.String()
		if m := actionRE.FindStringSubmatch(body); m == nil || html.UnescapeString(m[1]) != acs {
			t.Fatalf("form action wrong")
		}
		fields := map[string]string{}
		for _, m := range inputRE.FindAllStringSubmatch(body, -1) {
			fields[m[1]] = html.UnescapeString(m[2])
		}
		if fields["RelayState"] != "h1" {
			t.Errorf("RelayState = %q", fields["RelayState"])
		}
		doc := parseResponse(t, fields["SAMLResponse"])
		u, _ := idp.User("cecilia.c")
		if n := doc.Root().FindElement("saml:Assertion/saml:Subject/saml:NameID"); n == nil || n.Text() != u.NameID {
			t.Error("response is not for the chosen user")
		}
		if doc.Root().SelectAttrValue("InResponseTo", "") != "_r1" {
			t.Error("InResponseTo wrong")
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "form-action https://bridge.example.se;") {
			t.Errorf("CSP = %q", csp)
		}
	})
	t.Run("trust_func", func(t *testing.T) {
		idp, _ := newIdP(t)
		idp.ACSURL = ""
		var gotSP, gotACS string
		idp.TrustACS = func(sp, a string) bool { gotSP, gotACS = sp, a; return true }
		other := deflate(t, authnRequest("_r2", "https://other.example.se/acs", ssoURL))
		if rec := get(idp, url.Values{"SAMLRequest": {other}}); rec.Code != http.StatusOK || gotSP != spID || gotACS != "https://other.example.se/acs" {
			t.Errorf("status %d, asked (%q, %q)", rec.Code, gotSP, gotACS)
		}
	})
	t.Run("default_acs_when_request_names_none", func(t *testing.T) {
		idp, _ := newIdP(t)
		rec := post(idp, url.Values{"SAMLRequest": {deflate(t, authnRequest("_r3", "", ssoURL))}, "user": {"anna.a"}})
		if m := actionRE.FindStringSubmatch(rec.Body.String()); rec.Code != http.StatusOK || m == nil || html.UnescapeString(m[1]) != acs {
			t.Errorf("status %d", rec.Code)
		}
	})

	bomb := func() string {
		var b bytes.Buffer
		w, _ := flate.NewWriter(&b, flate.BestCompression)
		_, _ = w.Write(bytes.Repeat([]byte("A"), 64<<20))
		_ = w.Close()
		return base64.StdEncoding.EncodeToString(b.Bytes())
	}()
	refusals := []struct {
		name   string
		method string
		form   url.Values
		status int
	}{
		{"untrusted_acs_get", http.MethodGet, url.Values{"SAMLRequest": {deflate(t, authnRequest("_r", "https://evil.example/acs", ssoURL))}}, http.StatusBadRequest},
		{"untrusted_acs_post", http.MethodPost, url.Values{"SAMLRequest": {deflate(t, authnRequest("_r", "https://evil.example/acs", ssoURL))}, "user": {"anna.a"}}, http.StatusBadRequest},
		{"javascript_acs", http.MethodPost, url.Values{"SAMLRequest": {deflate(t, authnRequest("_r", "javascript:alert(1)", ssoURL))}, "user": {"anna.a"}}, http.StatusBadRequest},
		{"wrong_destination", http.MethodGet, url.Values{"SAMLRequest": {deflate(t, authnRequest("_r", acs, "https://other.example.se/sso"))}}, http.StatusBadRequest},
		{"relay_state_81_bytes", http.MethodGet, url.Values{"SAMLRequest": {good}, "RelayState": {strings.Repeat("r", 81)}}, http.StatusBadRequest},
		{"unknown_user", http.MethodPost, url.Values{"SAMLRequest": {good}, "user": {"nobody"}}, http.StatusBadRequest},
		{"deflate_bomb", http.MethodGet, url.Values{"SAMLRequest": {bomb}}, http.StatusRequestEntityTooLarge},
		{"not_deflate", http.MethodGet, url.Values{"SAMLRequest": {"bm90IGRlZmxhdGU="}}, http.StatusBadRequest},
		{"doctype", http.MethodGet, url.Values{"SAMLRequest": {deflate(t, `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>`+authnRequest("_r", acs, ssoURL))}}, http.StatusBadRequest},
		{"not_authn_request", http.MethodGet, url.Values{"SAMLRequest": {deflate(t, `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r" Version="2.0"/>`)}}, http.StatusBadRequest},
		{"missing", http.MethodGet, url.Values{}, http.StatusBadRequest},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			idp, _ := newIdP(t)
			var rec *httptest.ResponseRecorder
			if tc.method == http.MethodGet {
				rec = get(idp, tc.form)
			} else {
				rec = post(idp, tc.form)
			}
			if rec.Code != tc.status || strings.Contains(rec.Body.String(), "<form") {
				t.Errorf("status %d, want %d; form in body: %v", rec.Code, tc.status, strings.Contains(rec.Body.String(), "<form"))
			}
		})
	}
	t.Run("post_body_too_large", func(t *testing.T) {
		idp, _ := newIdP(t)
		body := "SAMLRequest=" + strings.Repeat("A", 2*samlxml.MaxMessageBytes+1)
		r := httptest.NewRequest(http.MethodPost, ssoURL, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		idp.ServeHTTP(rec, r)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d", rec.Code)
		}
	})
	t.Run("method_not_allowed", func(t *testing.T) {
		idp, _ := newIdP(t)
		rec := httptest.NewRecorder()
		idp.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, ssoURL, nil))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("status %d", rec.Code)
		}
	})
}
