package e2e

import (
	"context"
	"encoding/base64"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/testidp"
)

// Fresh and passive logins through the bridge (SECURITY.md case 48), SAML
// in × SAML out and OIDC in × OIDC out: what the vendor asks reaches the
// school IdP, a login older than asked is refused with the vendor
// protocol's error and a page, and a passive login works with and without
// a session at the school IdP.

// samlStart sends the vendor's AuthnRequest, changed by change, and
// returns the page the browser lands on: the school IdP's picker, or what
// the IdP answered at once.
func (e *env) samlStart(b *browser, vendor string, change func(*saml.AuthnRequest)) page {
	e.t.Helper()
	start, err := e.vendor(vendor).LoginURLWith("rs-fresh", change)
	if err != nil {
		e.t.Fatal(err)
	}
	return b.get(start)
}

// upstreamRequest is the bridge's AuthnRequest to the school IdP, read
// from the URL of the IdP's page.
func upstreamRequest(t *testing.T, p page) testidp.Request {
	t.Helper()
	req, err := testidp.ParseAuthnRequest(p.url.Query().Get("SAMLRequest"))
	if err != nil {
		t.Fatalf("no AuthnRequest at %s: %v", p, err)
	}
	return req
}

// pick chooses user at the school IdP's picker (button "user" for a
// password, "user_otp" for a password and a one-time code) and returns
// the page the bridge answers with.
func pick(b *browser, p page, button, user string) page {
	b.t.Helper()
	if p.status != http.StatusOK || !strings.Contains(p.body, `name="user_otp"`) {
		b.t.Fatalf("expected the school IdP's picker, got %s: %.300s", p, p.body)
	}
	p = b.submit(p, url.Values{button: {user}})
	if fs, _ := p.forms(); len(fs) == 1 && strings.HasSuffix(fs[0].action, "/saml/sp/acs") {
		p = b.submit(p, nil) // the SAML IdP's auto-post to the bridge
	}
	return p
}

// toVendor submits the bridge's auto-post to the SAML vendor and returns
// what the vendor received.
func (e *env) toVendor(b *browser, vendor string, p page) *result {
	e.t.Helper()
	fs, err := p.forms()
	if p.status != http.StatusOK || err != nil || len(fs) != 1 || fs[0].action != e.vendor(vendor).Base+"/acs" {
		e.t.Fatalf("expected the bridge's auto-post to %s, got %s: %.400s", vendor, p, p.body)
	}
	raw, err := base64.StdEncoding.DecodeString(fs[0].fields.Get("SAMLResponse"))
	if err != nil {
		e.t.Fatal(err)
	}
	before := e.vendor(vendor).Last()
	next := b.submit(p, nil)
	rec := e.vendor(vendor).Last()
	if next.status != http.StatusOK || rec == nil || rec == before {
		e.t.Fatalf("the vendor refused the response: %s: %.300s", next, next.body)
	}
	return &result{received: rec, samlResponse: string(raw), relayState: fs[0].fields.Get("RelayState")}
}

// samlStatusAt returns the second-level status of the SAML response the
// page's only form carries to the vendor's ACS (auto-post or button).
func (e *env) samlStatusAt(p page, vendor string) string {
	e.t.Helper()
	fs, err := p.forms()
	if err != nil || len(fs) != 1 || fs[0].action != e.vendor(vendor).Base+"/acs" {
		e.t.Fatalf("expected a form to %s's ACS, got %s: %.400s", vendor, p, p.body)
	}
	raw, err := base64.StdEncoding.DecodeString(fs[0].fields.Get("SAMLResponse"))
	if err != nil {
		e.t.Fatal(err)
	}
	if strings.Contains(string(raw), "Assertion") {
		e.t.Errorf("a refusal carries an assertion")
	}
	m := regexp.MustCompile(`StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:[A-Za-z]+"><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:([A-Za-z]+)"`).FindStringSubmatch(string(raw))
	if m == nil {
		e.t.Fatalf("no second-level status in %.400s", raw)
	}
	return m[1]
}

// oidcStart starts the OIDC vendor's login with extra parameters and
// returns the page the browser lands on.
func (e *env) oidcStart(b *browser, extra map[string]string) page {
	e.t.Helper()
	start, err := e.demo.OIDCVendor.LoginURLWith(context.Background(), extra)
	if err != nil {
		e.t.Fatal(err)
	}
	return b.get(start)
}

// backLink is the refusal page's link back to the OIDC vendor: the error
// response the vendor receives.
func backLink(t *testing.T, p page, e *env) url.Values {
	t.Helper()
	m := regexp.MustCompile(`<a href="([^"]+)">Tillbaka till tjänsten`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("the refusal page has no link back to the service: %.600s", p.body)
	}
	u, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil || !strings.HasPrefix(u.String(), e.demo.OIDCVendor.RedirectURL()+"?") {
		t.Fatalf("the link goes to %q, not the vendor's redirect URI", m[1])
	}
	return u.Query()
}

func TestCase48_FreshLoginSAML(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	e.demo.IdP.SetSessions(true)
	forceAuthn := func(r *saml.AuthnRequest) { t := true; r.ForceAuthn = &t }

	t.Run("ForceAuthn reaches the school IdP, and only when asked", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		if upstreamRequest(t, e.samlStart(b, "learning-app", nil)).ForceAuthn {
			t.Errorf("ForceAuthn sent upstream although the vendor did not ask")
		}
		p := e.samlStart(b, "learning-app", forceAuthn)
		if !upstreamRequest(t, p).ForceAuthn {
			t.Fatalf("the vendor's ForceAuthn did not reach the school IdP")
		}
		before := time.Now().Add(-time.Second)
		res := e.toVendor(b, "learning-app", pick(b, p, "user", "anna.a"))
		if at := res.received.AuthnInstant; at.Before(before) || at.After(time.Now().Add(time.Second)) {
			t.Errorf("AuthnInstant %v is not the school IdP's fresh login", at)
		}
	})

	t.Run("a session at the school IdP is not reused when a fresh login is asked", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		e.toVendor(b, "learning-app", pick(b, e.samlStart(b, "learning-app", nil), "user", "bertil.b"))
		// Without ForceAuthn: single sign-on, no picker.
		if p := e.samlStart(b, "learning-app", nil); strings.Contains(p.body, `name="user_otp"`) {
			t.Fatalf("the school IdP did not keep the session")
		}
		// With it: the picker again.
		p := e.samlStart(b, "learning-app", forceAuthn)
		if !strings.Contains(p.body, `name="user_otp"`) {
			t.Fatalf("ForceAuthn: the school IdP reused its session: %s", p)
		}
	})

	t.Run("a stale upstream login is refused", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		p := e.samlStart(b, "learning-app", forceAuthn)
		req := upstreamRequest(t, p)
		// A school IdP that ignored ForceAuthn and answered with a login
		// from ten minutes ago.
		u, _ := e.demo.IdP.User("anna.a")
		resp, err := e.demo.IdP.Respond(req, u, testidp.AuthnAt(time.Now().Add(-10*time.Minute)))
		must(t, err)
		page := b.post(req.ACSURL, url.Values{"SAMLResponse": {resp}})
		if page.status != http.StatusForbidden || !strings.Contains(page.body, "loggar in på nytt") {
			t.Fatalf("a stale login: %s: %.400s", page, page.body)
		}
		if got := e.samlStatusAt(page, "learning-app"); got != "AuthnFailed" {
			t.Errorf("the vendor's answer is %s, want AuthnFailed", got)
		}
		if !requestIDOnPage.MatchString(page.body) {
			t.Errorf("the refusal page shows no request id")
		}
		if evs := events(t, e); len(evs) == 0 || evs[len(evs)-1]["reason"] != "login_not_fresh" || evs[len(evs)-1]["outcome"] != "refused" {
			t.Errorf("no refusal event: %v", evs)
		}
	})

	t.Run("passive login without a session: NoPassive", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		passive := func(r *saml.AuthnRequest) { t := true; r.IsPassive = &t }
		p := e.samlStart(b, "learning-app", passive)
		if fs, _ := p.forms(); len(fs) != 1 || !strings.HasSuffix(fs[0].action, "/saml/sp/acs") {
			t.Fatalf("the school IdP did not answer the passive request at once: %s", p)
		}
		p = b.submit(p, nil)
		if got := e.samlStatusAt(p, "learning-app"); got != "NoPassive" {
			t.Errorf("the vendor's answer is %s, want NoPassive", got)
		}
	})

	t.Run("passive login with a session: single sign-on", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		first := e.toVendor(b, "learning-app", pick(b, e.samlStart(b, "learning-app", nil), "user", "cecilia.c"))
		passive := func(r *saml.AuthnRequest) { t := true; r.IsPassive = &t }
		p := e.samlStart(b, "learning-app", passive)
		if !upstreamRequest(t, p).IsPassive {
			t.Errorf("IsPassive did not reach the school IdP")
		}
		res := e.toVendor(b, "learning-app", b.submit(p, nil))
		if got, want := attrs(res.received)["eduPersonPrincipalName"], attrs(first.received)["eduPersonPrincipalName"]; len(got) != 1 || got[0] != want[0] {
			t.Errorf("passive login released %q, want the same person %q", got, want)
		}
		if !res.received.AuthnInstant.Equal(first.received.AuthnInstant) {
			t.Errorf("AuthnInstant %v, want the school IdP's earlier login %v", res.received.AuthnInstant, first.received.AuthnInstant)
		}
	})
	checkLogs(t, e, e.logs.String())
}

func TestCase48_FreshLoginOIDC(t *testing.T) {
	e := startEnvOpts(t, 1, memoryStore, nil, demo.Options{UpstreamOIDC: true})
	ov := e.demo.OIDCVendor

	t.Run("prompt=login and max_age reach the school IdP", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		p := e.oidcStart(b, nil)
		for _, k := range []string{"prompt", "max_age"} {
			if p.url.Query().Has(k) {
				t.Errorf("%s sent upstream although the vendor did not ask", k)
			}
		}
		p = e.oidcStart(b, map[string]string{"prompt": "login", "max_age": "300"})
		q := p.url.Query()
		if q.Get("prompt") != "login" || q.Get("max_age") != "300" {
			t.Fatalf("upstream authorization request: prompt %q max_age %q", q.Get("prompt"), q.Get("max_age"))
		}
		before := time.Now().Add(-time.Second)
		p = pick(b, p, "user", "anna.a")
		c := ov.Last()
		if p.status != http.StatusOK || c == nil || c.AuthTime.Before(before.Truncate(time.Second)) {
			t.Fatalf("login: %s; auth_time %v", p, c)
		}
	})

	t.Run("a stale upstream login is refused", func(t *testing.T) {
		for _, extra := range []map[string]string{{"max_age": "60"}, {"prompt": "login"}} {
			b := newBrowser(t, e.srv.Client())
			old := time.Now().Add(-10 * time.Minute).Unix()
			e.demo.OIDCIdP.SetClaimsHook(func(c map[string]any) { c["auth_time"] = old })
			p := pick(b, e.oidcStart(b, extra), "user", "anna.a")
			e.demo.OIDCIdP.SetClaimsHook(nil)
			if p.status != http.StatusForbidden || !strings.Contains(p.body, "log in again") {
				t.Fatalf("%v: a stale login: %s: %.400s", extra, p, p.body)
			}
			if q := backLink(t, p, e); q.Get("error") != "login_required" || q.Get("iss") != e.srv.URL {
				t.Errorf("%v: the vendor's answer: %v", extra, q)
			}
		}
	})

	t.Run("passive login without a session: login_required", func(t *testing.T) {
		e.demo.OIDCIdP.SetSessions(true)
		b := newBrowser(t, e.srv.Client())
		p := e.oidcStart(b, map[string]string{"prompt": "none"})
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "login_required") {
			t.Fatalf("the vendor should have received login_required: %s: %.300s", p, p.body)
		}
		// The school IdP was asked, and said so; the bridge did not answer
		// on its own.
		if !strings.Contains(e.logs.String(), "passive login: the school IdP has no session") {
			t.Errorf("prompt=none was not passed to the school IdP")
		}
	})

	t.Run("passive login with a session: single sign-on", func(t *testing.T) {
		e.demo.OIDCIdP.SetSessions(true)
		b := newBrowser(t, e.srv.Client())
		pick(b, e.oidcStart(b, nil), "user", "bertil.b")
		first := ov.Last()
		p := e.oidcStart(b, map[string]string{"prompt": "none"})
		c := ov.Last()
		if p.status != http.StatusOK || c == first {
			t.Fatalf("passive login: %s: %.300s", p, p.body)
		}
		if c.Subject != first.Subject || !c.AuthTime.Equal(first.AuthTime) {
			t.Errorf("passive login: sub %q auth_time %v; want the earlier login's %q %v", c.Subject, c.AuthTime, first.Subject, first.AuthTime)
		}
	})
	checkLogs(t, e, e.logs.String())
}
