package samlsp

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/testidp"
)

func TestNew(t *testing.T) {
	k := mustKeys(t)
	valid := func() Config {
		return Config{
			EntityID: spEntityID, ACSURL: acsURL, IdPEntityID: idpEntityID, IdPSSOURL: idpSSOURL,
			IdPCerts: []*x509.Certificate{k.idp.Cert}, Store: newMemStore(time.Now),
		}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"valid", func(*Config) {}, true},
		{"skew_at_max", func(c *Config) { c.ClockSkew = MaxClockSkew }, true},
		{"skew_above_max", func(c *Config) { c.ClockSkew = MaxClockSkew + time.Second }, false},
		{"negative_skew", func(c *Config) { c.ClockSkew = -time.Second }, false},
		{"negative_request_ttl", func(c *Config) { c.RequestTTL = -time.Second }, false},
		{"request_ttl_above_max", func(c *Config) { c.RequestTTL = 2 * time.Hour }, false},
		{"no_entity_id", func(c *Config) { c.EntityID = "" }, false},
		{"relative_acs", func(c *Config) { c.ACSURL = "/saml/acs" }, false},
		{"javascript_acs", func(c *Config) { c.ACSURL = "javascript:alert(1)" }, false},
		{"no_idp_entity_id", func(c *Config) { c.IdPEntityID = "" }, false},
		{"bad_sso_url", func(c *Config) { c.IdPSSOURL = "ftp://idp.example.se/sso" }, false},
		{"no_certs", func(c *Config) { c.IdPCerts = nil }, false},
		{"nil_cert", func(c *Config) { c.IdPCerts = []*x509.Certificate{nil} }, false},
		{"no_store", func(c *Config) { c.Store = nil }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			tc.mutate(&cfg)
			sp, err := New(cfg)
			if (err == nil) != tc.ok || (sp != nil) != tc.ok {
				t.Fatalf("New: sp=%v err=%v, want ok=%v", sp != nil, err, tc.ok)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		sp, err := New(valid())
		if err != nil {
			t.Fatal(err)
		}
		if sp.skew != DefaultClockSkew || sp.requestTTL != DefaultRequestTTL {
			t.Errorf("skew, ttl = %v, %v; want %v, %v", sp.skew, sp.requestTTL, DefaultClockSkew, DefaultRequestTTL)
		}
	})
}

func TestStartLogin(t *testing.T) {
	t.Run("request", func(t *testing.T) {
		f := newFixture(t)
		redirect, err := f.sp.StartLogin(context.Background(), browserA, []byte("downstream"), "h1")
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(redirect)
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Scheme + "://" + u.Host + u.Path; got != idpSSOURL {
			t.Errorf("redirect to %q, want %q", got, idpSSOURL)
		}
		if got := u.Query().Get("RelayState"); got != "h1" {
			t.Errorf("RelayState = %q", got)
		}
		raw, err := samlxml.Inflate(u.Query().Get("SAMLRequest"))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := samlxml.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		r := doc.Root()
		if !samlxml.Is(r, samlxml.NSProtocol, "AuthnRequest") {
			t.Fatalf("root is %s", r.Tag)
		}
		id := r.SelectAttrValue("ID", "")
		if !requestIDPattern.MatchString(id) {
			t.Errorf("ID %q is not _ and 32 hex digits", id)
		}
		got := map[string]string{}
		for _, a := range []string{"Version", "IssueInstant", "Destination", "AssertionConsumerServiceURL", "ProtocolBinding"} {
			got[a] = r.SelectAttrValue(a, "")
		}
		want := map[string]string{
			"Version":                     "2.0",
			"IssueInstant":                "2030-01-15T10:00:00.000Z",
			"Destination":                 idpSSOURL,
			"AssertionConsumerServiceURL": acsURL,
			"ProtocolBinding":             HTTPPostBinding,
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("AuthnRequest attributes (-want +got):\n%s", d)
		}
		iss, _ := samlxml.Child(r, samlxml.NSAssertion, "Issuer")
		if iss == nil || iss.Text() != spEntityID {
			t.Errorf("Issuer missing or wrong")
		}
		pol, _ := samlxml.Child(r, samlxml.NSProtocol, "NameIDPolicy")
		if pol == nil || pol.SelectAttrValue("AllowCreate", "") != "true" {
			t.Errorf("NameIDPolicy AllowCreate missing")
		}

		// The store holds the request under its ID for RequestTTL, with a
		// hash of the binding and never the binding itself.
		key := requestKeyPrefix + id
		if got := f.store.ttl(key); got != DefaultRequestTTL {
			t.Errorf("pending TTL = %v, want %v", got, DefaultRequestTTL)
		}
		v, err := f.store.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(v), browserA) {
			t.Error("the store holds the browser binding in clear")
		}
		h := sha256.Sum256([]byte(browserA))
		if !strings.Contains(string(v), encodeStd(h[:])) {
			t.Error("the store does not hold the binding's SHA-256")
		}
	})
	t.Run("sso_url_query_kept", func(t *testing.T) {
		f := newFixture(t)
		sp, err := New(Config{
			EntityID: spEntityID, ACSURL: acsURL, IdPEntityID: idpEntityID, IdPSSOURL: idpSSOURL + "?tenant=a",
			IdPCerts: []*x509.Certificate{f.keys.idp.Cert}, Store: f.store, Now: f.clock.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		redirect, err := sp.StartLogin(context.Background(), browserA, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(redirect)
		if u.Query().Get("tenant") != "a" || u.Query().Get("SAMLRequest") == "" || u.Query().Has("RelayState") {
			t.Errorf("query = %v", u.Query())
		}
	})
	t.Run("ids_differ", func(t *testing.T) {
		f := newFixture(t)
		if a, b := f.login(browserA), f.login(browserA); a.ID == b.ID {
			t.Error("two requests got the same ID")
		}
	})
	refusals := []struct {
		name, binding, relayState string
	}{
		{"empty_binding", "", "h"},
		{"relay_state_81_bytes", browserA, strings.Repeat("r", 81)},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if u, err := f.sp.StartLogin(context.Background(), tc.binding, nil, tc.relayState); err == nil || u != "" {
				t.Fatalf("StartLogin = %q, %v; want an error", u, err)
			}
			if n := len(f.store.keys()); n != 0 {
				t.Errorf("store holds %d keys after a refused StartLogin", n)
			}
		})
	}
	t.Run("relay_state_80_bytes", func(t *testing.T) {
		f := newFixture(t)
		if _, err := f.sp.StartLogin(context.Background(), browserA, nil, strings.Repeat("r", 80)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("store_down", func(t *testing.T) {
		f := newFixture(t)
		f.store.setFail(errors.New("connection refused"))
		_, err := f.sp.StartLogin(context.Background(), browserA, nil, "")
		var e *Error
		if !errors.As(err, &e) || e.Reason != ReasonStoreUnavailable || e.Status != http.StatusServiceUnavailable {
			t.Fatalf("err = %v, want store_unavailable/503", err)
		}
	})
}

func encodeStd(b []byte) string { return encode(string(b)) }

func TestMetadata(t *testing.T) {
	f := newFixture(t)
	b, err := f.sp.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := samlxml.Parse(b); err != nil {
		t.Fatalf("metadata does not pass the bridge's own parser: %v", err)
	}
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal(b, &ed); err != nil {
		t.Fatal(err)
	}
	if ed.EntityID != spEntityID || len(ed.SPSSODescriptors) != 1 {
		t.Fatalf("entityID %q, %d SPSSODescriptors", ed.EntityID, len(ed.SPSSODescriptors))
	}
	d := ed.SPSSODescriptors[0]
	if d.AuthnRequestsSigned == nil || *d.AuthnRequestsSigned || d.WantAssertionsSigned == nil || !*d.WantAssertionsSigned {
		t.Errorf("AuthnRequestsSigned/WantAssertionsSigned wrong")
	}
	if len(d.AssertionConsumerServices) != 1 || d.AssertionConsumerServices[0].Binding != HTTPPostBinding ||
		d.AssertionConsumerServices[0].Location != acsURL {
		t.Errorf("ACS = %+v", d.AssertionConsumerServices)
	}
	if len(d.KeyDescriptors) != 0 {
		t.Errorf("metadata lists keys the SP does not have")
	}
}

// restyle rewrites the test IdP's document before signing into the shapes
// other IdPs write, so that the SP is not only tested against one writer.
func restyle(style string) func(*etree.Document) {
	return func(doc *etree.Document) {
		a := assertionOf(doc)
		switch style {
		case "adfs_default_namespace":
			// ADFS: <Assertion xmlns="urn:...:assertion"> with unprefixed
			// children, inside a samlp:Response.
			for _, el := range append([]*etree.Element{a}, descendants(a)...) {
				if el.Space == "saml" {
					el.Space = ""
				}
			}
			a.RemoveAttr("xmlns:saml")
			a.CreateAttr("xmlns", samlxml.NSAssertion)
		case "shibboleth_saml2_prefix":
			// saml2p/saml2 prefixes as Shibboleth writes them, and xsd/xsi
			// declared on each AttributeValue as some IdPs do.
			r := doc.Root()
			for _, el := range append([]*etree.Element{r}, descendants(r)...) {
				switch el.Space {
				case "saml":
					el.Space = "saml2"
				case "samlp":
					el.Space = "saml2p"
				}
			}
			r.RemoveAttr("xmlns:samlp")
			r.RemoveAttr("xmlns:saml")
			r.CreateAttr("xmlns:saml2p", samlxml.NSProtocol)
			r.CreateAttr("xmlns:saml2", samlxml.NSAssertion)
			a.RemoveAttr("xmlns:saml")
			a.RemoveAttr("xmlns:xs")
			a.RemoveAttr("xmlns:xsi")
			a.CreateAttr("xmlns:saml2", samlxml.NSAssertion)
			for _, av := range a.FindElements(".//saml2:AttributeValue") {
				av.CreateAttr("xmlns:xsd", "http://www.w3.org/2001/XMLSchema")
				av.CreateAttr("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
				av.CreateAttr("xsi:type", "xsd:string")
			}
		case "inherited_from_response":
			// The assertion uses the saml prefix declared on the Response.
			a.RemoveAttr("xmlns:saml")
		case "indented":
			doc.Indent(2)
		}
	}
}

func descendants(el *etree.Element) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		out = append(out, c)
		out = append(out, descendants(c)...)
	}
	return out
}

func TestValidLogin(t *testing.T) {
	wantAttrs := func(u testidp.User) map[string][]string {
		out := map[string][]string{}
		for k, v := range u.Attributes {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name     string
		fixture  []fixtureOpt
		userOpts func(f *fixture) []testidp.Option
	}{
		{name: "rsa_assertion_signed"},
		{name: "rsa_response_and_assertion_signed", userOpts: func(*fixture) []testidp.Option {
			return []testidp.Option{testidp.SignResponse()}
		}},
		{name: "ecdsa_p256_raw_signature", fixture: []fixtureOpt{
			func(c *Config, idp *testidp.IdP) {
				k := mustKeys(t)
				c.IdPCerts = []*x509.Certificate{k.idpEC.Cert}
				idp.Signer = signer(t, k.idpEC)
			},
		}, userOpts: func(*fixture) []testidp.Option { return []testidp.Option{testidp.SignResponse()} }},
		{name: "adfs_default_namespace", userOpts: func(*fixture) []testidp.Option {
			return []testidp.Option{testidp.BeforeSigning(restyle("adfs_default_namespace"))}
		}},
		{name: "shibboleth_saml2_prefix", userOpts: func(*fixture) []testidp.Option {
			return []testidp.Option{testidp.BeforeSigning(restyle("shibboleth_saml2_prefix")), testidp.SignResponse()}
		}},
		{name: "namespaces_inherited_from_response", userOpts: func(*fixture) []testidp.Option {
			// Signing declares them on the assertion again; take them off
			// afterwards, as an IdP that signs in place leaves them.
			return []testidp.Option{testidp.AfterSigning(func(doc *etree.Document) {
				a := assertionOf(doc)
				a.RemoveAttr("xmlns:saml")
			})}
		}},
		{name: "indented_before_signing", userOpts: func(*fixture) []testidp.Option {
			return []testidp.Option{testidp.BeforeSigning(restyle("indented"))}
		}},
		{name: "no_keyinfo", userOpts: func(*fixture) []testidp.Option {
			return []testidp.Option{testidp.AfterSigning(func(doc *etree.Document) {
				sig := mustFind(t, assertionOf(doc), "ds:Signature")
				sig.RemoveChild(mustFind(t, sig, "ds:KeyInfo"))
			})}
		}},
		// KeyInfo is a hint at most: a KeyName only, or another
		// certificate than the one that signed, changes nothing.
		{name: "keyinfo_keyname_only", userOpts: func(*fixture) []testidp.Option {
			return []testidp.Option{testidp.AfterSigning(func(doc *etree.Document) {
				ki := mustFind(t, assertionOf(doc), "ds:Signature/ds:KeyInfo")
				ki.RemoveChild(mustFind(t, ki, "ds:X509Data"))
				ki.CreateElement("ds:KeyName").SetText("idp")
			})}
		}},
		{name: "keyinfo_names_other_cert", userOpts: func(f *fixture) []testidp.Option {
			return []testidp.Option{testidp.AfterSigning(func(doc *etree.Document) {
				mustFind(t, assertionOf(doc), "ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate").
					SetText(encodeStd(f.keys.attacker.Cert.Raw))
			})}
		}},
		{name: "response_issuer_absent", userOpts: func(*fixture) []testidp.Option {
			return []testidp.Option{testidp.AfterSigning(func(doc *etree.Document) {
				doc.Root().RemoveChild(mustFind(t, doc.Root(), "saml:Issuer"))
			})}
		}},
		{name: "audience_among_others", userOpts: func(*fixture) []testidp.Option {
			return []testidp.Option{testidp.BeforeSigning(func(doc *etree.Document) {
				ar := mustFind(t, assertionOf(doc), "saml:Conditions/saml:AudienceRestriction")
				other := etree.NewElement("saml:Audience")
				other.SetText("https://other.example.se/sp")
				ar.InsertChildAt(0, other)
			})}
		}},
		{name: "one_time_use_condition", userOpts: func(*fixture) []testidp.Option {
			return []testidp.Option{testidp.BeforeSigning(func(doc *etree.Document) {
				mustFind(t, assertionOf(doc), "saml:Conditions").CreateElement("saml:OneTimeUse")
			})}
		}},
		// SECURITY.md case 40: key rollover with two certificates in the
		// metadata; the IdP signs with the new one, with or without KeyInfo.
		{name: "rollover_new_key", fixture: []fixtureOpt{
			func(c *Config, idp *testidp.IdP) {
				k := mustKeys(t)
				c.IdPCerts = []*x509.Certificate{k.idp.Cert, k.idpNext.Cert}
				idp.Signer = signer(t, k.idpNext)
			},
		}},
		{name: "rollover_new_key_no_keyinfo", fixture: []fixtureOpt{
			func(c *Config, idp *testidp.IdP) {
				k := mustKeys(t)
				c.IdPCerts = []*x509.Certificate{k.idp.Cert, k.idpNext.Cert}
				idp.Signer = signer(t, k.idpNext)
			},
		}, userOpts: func(*fixture) []testidp.Option {
			return []testidp.Option{testidp.AfterSigning(func(doc *etree.Document) {
				sig := mustFind(t, assertionOf(doc), "ds:Signature")
				sig.RemoveChild(mustFind(t, sig, "ds:KeyInfo"))
			})}
		}},
		{name: "rollover_old_key_still_accepted", fixture: []fixtureOpt{
			func(c *Config, idp *testidp.IdP) {
				k := mustKeys(t)
				c.IdPCerts = []*x509.Certificate{k.idpNext.Cert, k.idp.Cert}
			},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.fixture...)
			req := f.login(browserA)
			var opts []testidp.Option
			if tc.userOpts != nil {
				opts = tc.userOpts(f)
			}
			a := f.expectSuccess(t, f.sp, f.respond(req, opts...), browserA)
			if !requestIDPattern.MatchString(a.ID) {
				t.Errorf("assertion ID %q not the test IdP's form", a.ID)
			}
			want := &Assertion{
				ID:            a.ID,
				Issuer:        idpEntityID,
				NameID:        f.user.NameID,
				NameIDFormat:  testidp.NameIDPersistent,
				SessionIndex:  a.SessionIndex,
				AuthnInstant:  t0,
				AuthnContext:  testidp.PasswordProtected,
				Attributes:    wantAttrs(f.user),
				FriendlyNames: a.FriendlyNames,
				// The NameID's qualifiers as the IdP wrote them (Single
				// Logout names the NameID exactly).
				NameQualifier:   idpEntityID,
				SPNameQualifier: f.sp.entityID,
			}
			if d := cmp.Diff(want, a); d != "" {
				t.Errorf("assertion (-want +got):\n%s", d)
			}
			if a.SessionIndex == "" {
				t.Error("SessionIndex empty")
			}
			wantFN := map[string]string{
				testidp.AttrEPPN:            "eduPersonPrincipalName",
				testidp.AttrGivenName:       "givenName",
				testidp.AttrSecurityMarking: "securityMarking",
			}
			for k, v := range wantFN {
				if a.FriendlyNames[k] != v {
					t.Errorf("FriendlyNames[%s] = %q, want %q", k, a.FriendlyNames[k], v)
				}
			}
			// The pending request is gone; the replay key is set.
			for _, k := range f.store.keys() {
				if strings.HasPrefix(k, requestKeyPrefix) {
					t.Errorf("pending request %s left in the store", k)
				}
			}
		})
	}
}

// TestStructuredAttributeValueSkipped: an AttributeValue holding an element
// (eduPersonTargetedID's NameID) is left out rather than read as text.
func TestStructuredAttributeValueSkipped(t *testing.T) {
	f := newFixture(t)
	req := f.login(browserA)
	const tid = "urn:oid:1.3.6.1.4.1.5923.1.1.1.10"
	resp := f.respond(req, testidp.BeforeSigning(func(doc *etree.Document) {
		st := mustFind(t, assertionOf(doc), "saml:AttributeStatement")
		at := st.CreateElement("saml:Attribute")
		at.CreateAttr("Name", tid)
		av := at.CreateElement("saml:AttributeValue")
		nid := av.CreateElement("saml:NameID")
		nid.SetText("opaque")
		at.CreateElement("saml:AttributeValue").SetText("plain")
	}))
	a := f.expectSuccess(t, f.sp, resp, browserA)
	if d := cmp.Diff([]string{"plain"}, a.Attributes[tid]); d != "" {
		t.Errorf("values (-want +got):\n%s", d)
	}
}

// TestEndToEndThroughTestIdP runs a login through the test IdP's HTTP
// handler: redirect, picker, auto-post form, ACS.
func TestEndToEndThroughTestIdP(t *testing.T) {
	f := newFixture(t)
	redirect, err := f.sp.StartLogin(context.Background(), browserA, []byte("state-for-"+browserA), "h42")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(redirect)
	form := url.Values{
		"SAMLRequest": {u.Query().Get("SAMLRequest")},
		"RelayState":  {u.Query().Get("RelayState")},
		"user":        {"eva.e"},
	}
	rec := postForm(t, f.idp, form)
	if rec.Code != http.StatusOK {
		t.Fatalf("IdP POST status %d", rec.Code)
	}
	fields := formFields(t, rec.Body.String())
	if fields["action"] != acsURL || fields["RelayState"] != "h42" {
		t.Fatalf("form posts to %q with RelayState %q", fields["action"], fields["RelayState"])
	}
	a, state, err := f.sp.HandleResponse(context.Background(), fields["SAMLResponse"], browserA)
	if err != nil {
		t.Fatal(err)
	}
	if string(state) != "state-for-"+browserA {
		t.Errorf("state = %q", state)
	}
	eva, _ := f.idp.User("eva.e")
	if a.NameID != eva.NameID || a.Attributes[testidp.AttrSecurityMarking][0] != testidp.MarkingProtected {
		t.Errorf("wrong user or marking")
	}
}

// TestConcurrentReplay: the same response posted at once by many
// goroutines, to two instances: exactly one succeeds.
func TestConcurrentReplay(t *testing.T) {
	f := newFixture(t)
	sp2 := f.secondSP()
	resp := f.respond(f.login(browserA))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, replays, other := 0, 0, 0
	for i := range 16 {
		sp := f.sp
		if i%2 == 1 {
			sp = sp2
		}
		wg.Go(func() {
			_, _, err := sp.HandleResponse(context.Background(), resp, browserA)
			mu.Lock()
			defer mu.Unlock()
			var e *Error
			switch {
			case err == nil:
				ok++
			case errors.As(err, &e) && e.Reason == ReasonReplay:
				replays++
			default:
				other++
			}
		})
	}
	wg.Wait()
	if ok != 1 || replays != 15 || other != 0 {
		t.Errorf("ok=%d replays=%d other=%d; want 1, 15, 0", ok, replays, other)
	}
}

// TestStoreUnavailable (SECURITY.md case 38): a store that fails makes the
// login fail closed with 503.
func TestStoreUnavailable(t *testing.T) {
	f := newFixture(t)
	resp := f.respond(f.login(browserA))
	f.store.setFail(errors.New("dial tcp: connection refused"))
	f.expectRefusal(t, f.sp, resp, browserA, ReasonStoreUnavailable, http.StatusServiceUnavailable)
	f.store.setFail(nil)
	// Recovery is automatic: the same response now succeeds.
	f.expectSuccess(t, f.sp, resp, browserA)
}

func TestErrorShape(t *testing.T) {
	cause := errors.New("cause")
	e := refuse(ReasonAudience, cause)
	if e.Error() != "samlsp: audience: cause" || !errors.Is(e, cause) || e.Status != http.StatusBadRequest {
		t.Errorf("Error() = %q, Is = %v, Status = %d", e.Error(), errors.Is(e, cause), e.Status)
	}
	for code, want := range map[string]string{
		"urn:oasis:names:tc:SAML:2.0:status:Responder": "urn:oasis:names:tc:SAML:2.0:status:Responder",
		"urn:oasis:names:tc:SAML:2.0:status:Anna":      "other",
		"Anna Andersson": "other",
		"":               "",
	} {
		if got := safeStatus(code); got != want {
			t.Errorf("safeStatus(%q) = %q, want %q", code, got, want)
		}
	}
}
