package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crewjam/saml"
	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/assurance"
	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/testidp"
)

// A vendor's minimum level and requested levels through the bridge
// (SECURITY.md case 49), SAML in × SAML out and OIDC in × OIDC out: the
// school IdP is asked for the level, a login that proved less (or a
// context the bridge does not know) is refused, and the vendor gets the
// level proven, never more.

// requireTwoFactor makes the vendor's policy require two-factor login of
// everyone and release eduPersonAssurance.
func requireTwoFactor(t *testing.T, d *demo.Demo, vendor string) {
	t.Helper()
	p := filepath.Join(d.Dir, "attribute-release", vendor+".yaml")
	b, err := os.ReadFile(p)
	must(t, err)
	s := string(b)
	if !strings.HasSuffix(s, "  - name: sisSchoolUnitCode\n") {
		t.Fatalf("%s no longer ends with its attribute list", p)
	}
	s += "  - name: eduPersonAssurance\nassurance:\n  minimum: " + assurance.TwoFactor + "\n"
	must(t, os.WriteFile(p, []byte(s), 0o600))
}

var twoFactorProven = []string{assurance.Bas, assurance.REFEDSMFA, assurance.TwoFactor}

func TestCase49_AssuranceSAML(t *testing.T) {
	e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) { requireTwoFactor(t, d, "learning-app") })

	t.Run("the school IdP is asked for the level the policy requires", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		req := upstreamRequest(t, e.samlStart(b, "learning-app", nil))
		if diff := cmp.Diff([]string{testidp.PasswordOTP}, req.AuthnContextClassRefs); diff != "" || req.Comparison != "exact" {
			t.Errorf("RequestedAuthnContext %s (-want +got):\n%s", req.Comparison, diff)
		}
		// A minimum for some affiliations cannot be asked before the
		// person is known: national-tests (dnp, staff only) asks nothing.
		if req := upstreamRequest(t, e.samlStart(b, "national-tests", nil)); len(req.AuthnContextClassRefs) != 0 {
			t.Errorf("national-tests asked the school IdP for %q", req.AuthnContextClassRefs)
		}
	})

	t.Run("upstream bas when two-factor is required is refused", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		p := pick(b, e.samlStart(b, "learning-app", nil), "user", "anna.a")
		assertTwoFactorRefusal(t, e, p)
		if got := e.samlStatusAt(p, "learning-app"); got != "NoAuthnContext" {
			t.Errorf("the vendor's answer is %s, want NoAuthnContext", got)
		}
	})

	t.Run("an unknown upstream context is the lowest level", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		req := upstreamRequest(t, e.samlStart(b, "learning-app", nil))
		u, _ := e.demo.IdP.User("anna.a")
		resp, err := e.demo.IdP.Respond(req, u, testidp.AuthnClass("urn:x:vendor-specific:very-strong"))
		must(t, err)
		p := b.post(req.ACSURL, map[string][]string{"SAMLResponse": {resp}})
		assertTwoFactorRefusal(t, e, p)
	})

	t.Run("the level released equals the level proven", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		res := e.toVendor(b, "learning-app", pick(b, e.samlStart(b, "learning-app", nil), "user_otp", "anna.a"))
		if res.received.AuthnContext != assurance.TwoFactor {
			t.Errorf("AuthnContextClassRef %q, want %q", res.received.AuthnContext, assurance.TwoFactor)
		}
		if diff := cmp.Diff(twoFactorProven, attrs(res.received)["eduPersonAssurance"]); diff != "" {
			t.Errorf("eduPersonAssurance (-want +got):\n%s", diff)
		}

		b = newBrowser(t, e.srv.Client())
		res = e.toVendor(b, "national-tests", pick(b, e.samlStart(b, "national-tests", nil), "user", "anna.a"))
		if res.received.AuthnContext != assurance.Bas {
			t.Errorf("a password login: AuthnContextClassRef %q, want %q", res.received.AuthnContext, assurance.Bas)
		}
	})

	t.Run("dnp: a teacher needs two factors, a pupil does not", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		p := pick(b, e.samlStart(b, "national-tests", nil), "user", "david.d")
		assertTwoFactorRefusal(t, e, p)
		b = newBrowser(t, e.srv.Client())
		res := e.toVendor(b, "national-tests", pick(b, e.samlStart(b, "national-tests", nil), "user_otp", "david.d"))
		if res.received.AuthnContext != assurance.TwoFactor {
			t.Errorf("teacher with two factors: %q", res.received.AuthnContext)
		}
	})

	t.Run("the vendor's RequestedAuthnContext", func(t *testing.T) {
		ask := func(comparison, class string) func(*saml.AuthnRequest) {
			return func(r *saml.AuthnRequest) {
				r.RequestedAuthnContext = &saml.RequestedAuthnContext{Comparison: comparison, AuthnContextClassRef: class}
			}
		}
		// Asked upstream in the school IdP's words, and enforced.
		b := newBrowser(t, e.srv.Client())
		p := e.samlStart(b, "national-tests", ask("minimum", assurance.TwoFactor))
		if req := upstreamRequest(t, p); len(req.AuthnContextClassRefs) != 1 || req.AuthnContextClassRefs[0] != testidp.PasswordOTP {
			t.Errorf("upstream RequestedAuthnContext %q", req.AuthnContextClassRefs)
		}
		p = pick(b, p, "user", "anna.a")
		if got := e.samlStatusAt(p, "national-tests"); got != "NoAuthnContext" {
			t.Errorf("a downgrade: the vendor's answer is %s, want NoAuthnContext", got)
		}
		// Exact REFEDS MFA: the class named as asked.
		b = newBrowser(t, e.srv.Client())
		res := e.toVendor(b, "national-tests", pick(b, e.samlStart(b, "national-tests", ask("exact", assurance.REFEDSMFA)), "user_otp", "anna.a"))
		if res.received.AuthnContext != assurance.REFEDSMFA {
			t.Errorf("exact REFEDS MFA: AuthnContextClassRef %q", res.received.AuthnContext)
		}
		// A class the bridge cannot prove at all: answered at once.
		b = newBrowser(t, e.srv.Client())
		p = e.samlStart(b, "national-tests", ask("exact", "urn:x:vendor-specific"))
		if got := e.samlStatusAt(p, "national-tests"); got != "NoAuthnContext" {
			t.Errorf("an unknown class: the vendor's answer is %s, want NoAuthnContext", got)
		}
	})
	t.Run("a passive login too weak is answered without a page", func(t *testing.T) {
		e.demo.IdP.SetSessions(true)
		defer e.demo.IdP.SetSessions(false)
		b := newBrowser(t, e.srv.Client())
		e.toVendor(b, "national-tests", pick(b, e.samlStart(b, "national-tests", nil), "user", "bertil.b"))
		p := e.samlStart(b, "learning-app", func(r *saml.AuthnRequest) { f := true; r.IsPassive = &f })
		p = b.submit(p, nil) // the school IdP's single sign-on, with a password
		if p.status != http.StatusOK || strings.Contains(p.body, "Tillbaka till tjänsten") {
			t.Fatalf("a passive login showed a page: %s", p)
		}
		if got := e.samlStatusAt(p, "learning-app"); got != "NoAuthnContext" {
			t.Errorf("the vendor's answer is %s, want NoAuthnContext", got)
		}
	})
	checkLogs(t, e, e.logs.String())
}

// assertTwoFactorRefusal checks the refusal page of a login too weak for a
// vendor that requires two factors, and its refusal event.
func assertTwoFactorRefusal(t *testing.T, e *env, p page) {
	t.Helper()
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "two-factor login") || !strings.Contains(p.body, "två faktorer") {
		t.Fatalf("expected the two-factor refusal page, got %s: %.500s", p, p.body)
	}
	if !requestIDOnPage.MatchString(p.body) {
		t.Errorf("the refusal page shows no request id")
	}
	evs := events(t, e)
	if len(evs) == 0 || evs[len(evs)-1]["outcome"] != "refused" || evs[len(evs)-1]["reason"] != "assurance_too_low" {
		t.Errorf("no refusal event: %v", evs)
	}
}

func TestCase49_AssuranceOIDC(t *testing.T) {
	e := startEnvOpts(t, 1, memoryStore, func(d *demo.Demo) { requireTwoFactor(t, d, "oidc-app") }, demo.Options{UpstreamOIDC: true})
	ov := e.demo.OIDCVendor

	t.Run("the school IdP is asked for the level", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		if got := e.oidcStart(b, nil).url.Query().Get("acr_values"); got != testidp.PasswordOTP {
			t.Errorf("upstream acr_values %q, want %q", got, testidp.PasswordOTP)
		}
	})

	t.Run("upstream bas when two-factor is required is refused", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		p := pick(b, e.oidcStart(b, nil), "user", "anna.a")
		assertTwoFactorRefusal(t, e, p)
		if q := backLink(t, p, e); q.Get("error") != "unmet_authentication_requirements" {
			t.Errorf("the vendor's answer: %v", q)
		}
	})

	t.Run("an unknown upstream acr is the lowest level", func(t *testing.T) {
		e.demo.OIDCIdP.SetClaimsHook(func(c map[string]any) {
			c["acr"] = "urn:x:vendor-specific:very-strong"
			c["amr"] = []string{"pwd"}
		})
		defer e.demo.OIDCIdP.SetClaimsHook(nil)
		b := newBrowser(t, e.srv.Client())
		assertTwoFactorRefusal(t, e, pick(b, e.oidcStart(b, nil), "user_otp", "anna.a"))
	})

	t.Run("the level released equals the level proven", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		p := pick(b, e.oidcStart(b, nil), "user_otp", "anna.a")
		c := ov.Last()
		if p.status != http.StatusOK || c == nil {
			t.Fatalf("login: %s: %.300s", p, p.body)
		}
		if c.ACR != assurance.TwoFactor {
			t.Errorf("acr %q, want %q", c.ACR, assurance.TwoFactor)
		}
		var epa []string
		for _, cl := range c.Claims {
			if cl.Name == "eduperson_assurance" {
				epa = cl.Values
			}
		}
		if diff := cmp.Diff(twoFactorProven, epa); diff != "" {
			t.Errorf("eduperson_assurance (-want +got):\n%s", diff)
		}
	})

	t.Run("an essential acr the login cannot prove", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		claims := `{"id_token":{"acr":{"essential":true,"values":["` + assurance.LoA3 + `"]}}}`
		p := pick(b, e.oidcStart(b, map[string]string{"claims": claims}), "user_otp", "anna.a")
		if p.status != http.StatusForbidden {
			t.Fatalf("expected a refusal, got %s", p)
		}
		if q := backLink(t, p, e); q.Get("error") != "unmet_authentication_requirements" {
			t.Errorf("the vendor's answer: %v", q)
		}
	})
	checkLogs(t, e, e.logs.String())
}

// The IdP metadata and OIDC discovery list the levels the organiser's
// upstreams can prove, from configuration (case 49).
func TestCase49_LevelsPublished(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	get := func(path string) string {
		t.Helper()
		resp, err := e.srv.Client().Get(e.srv.URL + path)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	md := get("/saml/idp/metadata")
	i := strings.Index(md, `Name="urn:oasis:names:tc:SAML:attribute:assurance-certification"`)
	if i < 0 {
		t.Fatalf("no assurance-certification entity attribute in the IdP metadata")
	}
	for _, l := range twoFactorProven {
		if !strings.Contains(md[i:], "<saml:AttributeValue>"+l+"</saml:AttributeValue>") {
			t.Errorf("assurance-certification lacks %s", l)
		}
	}
	if strings.Contains(md[i:], assurance.LoA3) {
		t.Errorf("assurance-certification claims a level no upstream can prove")
	}
	var disc map[string]any
	must(t, json.Unmarshal([]byte(get("/.well-known/openid-configuration")), &disc))
	want := []any{assurance.Bas, assurance.REFEDSMFA, assurance.TwoFactor}
	if diff := cmp.Diff(want, disc["acr_values_supported"]); diff != "" {
		t.Errorf("acr_values_supported (-want +got):\n%s", diff)
	}
}
