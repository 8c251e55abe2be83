package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/testidp"
)

// toBridgeACS drives a login up to the test IdP's auto-post form towards
// the bridge's ACS, and returns that page without submitting it.
func (e *env) toBridgeACS(b *browser, vendorName, user string) page {
	e.t.Helper()
	start, err := e.vendor(vendorName).LoginURL("rs")
	if err != nil {
		e.t.Fatal(err)
	}
	p := b.get(start)
	if p.status != http.StatusOK {
		e.t.Fatalf("picker: %s", p)
	}
	return b.submit(p, url.Values{"user": {user}})
}

func onlyForm(t *testing.T, p page) form {
	t.Helper()
	fs, err := p.forms()
	if err != nil || len(fs) != 1 {
		t.Fatalf("expected one form at %s", p)
	}
	return fs[0]
}

var requestIDOnPage = regexp.MustCompile(`<code>([0-9a-f]{24})</code>`)

// assertErrorPage checks a refusal: the status, a request id on the page,
// no form (nothing is posted onwards), and no internals.
func assertErrorPage(t *testing.T, p page, status int) {
	t.Helper()
	if p.status != status {
		t.Errorf("status %d, want %d", p.status, status)
	}
	if !requestIDOnPage.MatchString(p.body) {
		t.Errorf("error page shows no request id")
	}
	if fs, _ := p.forms(); len(fs) != 0 {
		t.Errorf("error page carries a form: something would be posted onwards")
	}
	for _, internal := range []string{"saml", "xml", "signature", "goroutine", "panic", "redis"} {
		if strings.Contains(strings.ToLower(p.body), internal) {
			t.Errorf("error page mentions %q: internals must go to the log only", internal)
		}
	}
}

// TestCase37_LogsHoldNoPersonalData runs successful logins and every kind
// of failure the flows have, captures every log line the bridge wrote, and
// fails on anything that looks like a personal number, a test identity's
// name, an upstream identifier, an assertion or a SAML message
// (SECURITY.md case 37).
func TestCase37_LogsHoldNoPersonalData(t *testing.T) {
	e := startEnv(t, 1, memoryStore)

	// Successful logins, protected pupil included. Staff log in to the
	// national tests with two factors, as its dnp policy requires.
	for _, u := range e.demo.IdP.Users {
		e.login(newBrowser(t, e.srv.Client()), "learning-app", u.Login)
		button := "user"
		if strings.Contains(strings.Join(u.Attributes[testidp.AttrScopedAffiliation], " "), "faculty@") {
			button = "user_otp"
		}
		e.loginWith(newBrowser(t, e.srv.Client()), "national-tests", u.Login, button)
	}

	// The second organiser's people, through the discovery page, at its
	// SAML and OIDC vendors, and the hub's refusals.
	t.Run("second organiser through discovery", func(t *testing.T) {
		g := e.grann()
		for _, up := range []struct {
			id    string
			users []testidp.User
		}{{demo.GrannkommunPupils, g.PupilIdP.Users}, {demo.GrannkommunStaff, g.StaffUsers}} {
			for _, u := range up.users {
				for _, vendor := range []string{"grannkommun-app", "grannkommun-oidc-app"} {
					b := newBrowser(t, e.srv.Client())
					href := discoveryChoice(t, b.get(e.startURL(vendor, nil)), up.id)
					e.complete(b, b.get(e.srv.URL+href), vendor, u.Login)
				}
			}
		}
		b := newBrowser(t, e.srv.Client())
		assertErrorPage(t, b.get(e.srv.URL+grannPrefix+"/discovery?d=unknown&upstream=pupils"), http.StatusBadRequest)
		req := pickerRequest(t, b.get(e.startURL("learning-app", nil)))
		assertErrorPage(t, b.post(req.ACSURL, url.Values{"SAMLResponse": {respond(t, g.PupilIdP, req, "ingrid.i")}}), http.StatusBadRequest)
	})
	// Fresh, passive and stronger logins (cases 48 and 49).
	t.Run("a teacher without two factors at the national tests", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		p := pick(b, e.samlStart(b, "national-tests", nil), "user", "david.d")
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "två faktorer") {
			t.Fatalf("expected the two-factor refusal, got %s", p)
		}
	})
	t.Run("a stale login when a fresh one was asked", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		req := upstreamRequest(t, e.samlStart(b, "learning-app", func(r *saml.AuthnRequest) { f := true; r.ForceAuthn = &f }))
		u, _ := e.demo.IdP.User("bertil.b")
		resp, err := e.demo.IdP.Respond(req, u, testidp.AuthnAt(time.Now().Add(-time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		if p := b.post(req.ACSURL, url.Values{"SAMLResponse": {resp}}); p.status != http.StatusForbidden {
			t.Fatalf("expected the refusal of a stale login, got %s", p)
		}
	})
	t.Run("a passive login without a session upstream", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		p := b.submit(e.samlStart(b, "learning-app", func(r *saml.AuthnRequest) { f := true; r.IsPassive = &f }), nil)
		if got := e.samlStatusAt(p, "learning-app"); got != "NoPassive" {
			t.Fatalf("expected NoPassive, got %s", got)
		}
	})

	t.Run("replayed upstream response", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		p := e.toBridgeACS(b, "learning-app", "anna.a")
		f := onlyForm(t, p)
		if first := b.post(f.action, f.fields); first.status != http.StatusOK {
			t.Fatalf("first post: %s", first)
		}
		assertErrorPage(t, b.post(f.action, f.fields), http.StatusBadRequest)
	})

	t.Run("upstream response changed after signing", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		p := e.toBridgeACS(b, "learning-app", "cecilia.c")
		f := onlyForm(t, p)
		raw, err := base64.StdEncoding.DecodeString(f.fields.Get("SAMLResponse"))
		if err != nil {
			t.Fatal(err)
		}
		u, _ := e.demo.IdP.User("cecilia.c")
		given := u.Attributes[testidp.AttrGivenName][0]
		tampered := strings.Replace(string(raw), ">"+given+"<", ">Mallory<", 1)
		if tampered == string(raw) {
			t.Fatal("test did not tamper")
		}
		f.fields.Set("SAMLResponse", base64.StdEncoding.EncodeToString([]byte(tampered)))
		assertErrorPage(t, b.post(f.action, f.fields), http.StatusBadRequest)
	})

	t.Run("response posted from another browser", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		p := e.toBridgeACS(b, "learning-app", "bertil.b")
		f := onlyForm(t, p)
		other := newBrowser(t, e.srv.Client())
		assertErrorPage(t, other.post(f.action, f.fields), http.StatusBadRequest) // no login cookie at all
		e.toBridgeACS(other, "learning-app", "david.d")                           // its own login in flight
		assertErrorPage(t, other.post(f.action, f.fields), http.StatusBadRequest)
		// The other browser's post consumed nothing: the rightful browser
		// still completes its login (issue 19).
		if p := b.post(f.action, f.fields); p.status != http.StatusOK {
			t.Errorf("the rightful browser's post: %s", p)
		}
	})

	t.Run("binding cookie forged, planted or duplicated", func(t *testing.T) {
		f, v := e.attackerResponse()
		victim := newBrowser(t, e.srv.Client())
		e.plant(victim, bareCookie, v, "/")
		assertErrorPage(t, victim.post(f.action, f.fields), http.StatusBadRequest)
		e.plant(victim, bindingCookie, attackerValue, "/")
		assertErrorPage(t, victim.post(f.action, f.fields), http.StatusBadRequest)
		e.toBridgeACS(victim, "learning-app", "anna.a") // replaces the forged value
		e.plant(victim, bindingCookie, v, "/saml/sp")
		assertErrorPage(t, victim.post(f.action, f.fields), http.StatusBadRequest)
	})

	t.Run("upstream refused the login", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		start, _ := e.vendor("learning-app").LoginURL("rs")
		p := b.get(start) // the picker; its URL carries the bridge's AuthnRequest
		req, err := testidp.ParseAuthnRequest(p.url.Query().Get("SAMLRequest"))
		if err != nil {
			t.Fatal(err)
		}
		req.ACSURL = e.srv.URL + "/saml/sp/acs"
		u, _ := e.demo.IdP.User("anna.a")
		resp, err := e.demo.IdP.Respond(req, u, testidp.Status("urn:oasis:names:tc:SAML:2.0:status:Responder", "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"))
		if err != nil {
			t.Fatal(err)
		}
		assertErrorPage(t, b.post(req.ACSURL, url.Values{"SAMLResponse": {resp}}), http.StatusForbidden)
	})

	t.Run("garbage at every endpoint", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		assertErrorPage(t, b.get(e.srv.URL+"/saml/idp/sso?SAMLRequest=bm90IHNhbWw%3D"), http.StatusBadRequest)
		b.get(e.srv.URL + "/saml/idp/sso?SAMLRequest=x") // sets nothing
		p := e.toBridgeACS(b, "learning-app", "anna.a")
		f := onlyForm(t, p)
		f.fields.Set("SAMLResponse", base64.StdEncoding.EncodeToString([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "`+strings.Repeat("A", 100)+`">]><x>&a;</x>`)))
		assertErrorPage(t, b.post(f.action, f.fields), http.StatusBadRequest)
	})

	t.Run("admin subject access by number and stable id", func(t *testing.T) {
		b := e.adminLogin("fredrik.f")
		anna, _ := e.demo.IdP.User("anna.a")
		pnr, eppn := anna.Attributes[testidp.AttrPersonalNumber][0], anna.Attributes[testidp.AttrEPPN][0]
		if p := e.subjectLookup(b, pnr, eppn); p.status != http.StatusOK {
			t.Errorf("lookup: %s", p)
		}
		if p := e.subjectLookup(b, pnr[:11]+"x", eppn+"\x01"); p.status != http.StatusBadRequest {
			t.Errorf("bad input: %s", p)
		}
	})
	t.Run("new identity on request", func(t *testing.T) {
		admin := e.adminBrowser()
		for _, action := range []string{"request", "status"} {
			if p := e.adminForm(admin, "/admin/identity", action, url.Values{"pnr": {personalNumberOf(e, "anna.a")}}); p.status != http.StatusOK {
				t.Errorf("admin identity %s: %s", action, p)
			}
		}
		e.login(newBrowser(t, e.srv.Client()), "learning-app", "anna.a") // issues it
	})

	logs := e.logs.String()
	for _, reason := range []string{"upstream_replay", "upstream_binding", "upstream_no_binding", "upstream_binding_unrecognised", "upstream_binding_duplicate", "binding_unrecognised"} {
		if !strings.Contains(logs, `"reason":"`+reason+`"`) {
			t.Errorf("the refusal %s was not logged with its reason", reason)
		}
	}
	if !strings.Contains(logs, `"cause":"protected"`) || !strings.Contains(logs, `"cause":"requested"`) {
		t.Errorf("the new identities were not logged")
	}
	checkLogs(t, e, logs)
	// The upstream refusals are in the release log as well, held to the
	// same rule.
	for _, reason := range []string{"upstream_replay", "upstream_bad_signature", "upstream_status"} {
		if len(refusalsWith(t, e, reason)) == 0 {
			t.Errorf("no refusal event %s in the release log", reason)
		}
	}
	assertReleaseLogClean(t, e)
}

var (
	personalNumberPattern = regexp.MustCompile(`\d{6,8}[-+]?\d{4}`)
	hexValue              = regexp.MustCompile(`^[0-9a-f]{24,64}$`)
)

func checkLogs(t *testing.T, e *env, logs string) {
	t.Helper()
	if strings.Count(logs, "\n") < 5 {
		t.Fatalf("only %d log lines captured: the capture is not working", strings.Count(logs, "\n"))
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Errorf("a log line is not JSON")
			continue
		}
		for k, v := range fields {
			s := fmt.Sprint(v)
			// Hashes and ids are lower-case hex; a personal number has no
			// letters around it.
			if hexValue.MatchString(s) {
				continue
			}
			if personalNumberPattern.MatchString(s) {
				t.Errorf("log field %q holds something shaped like a personal number", k)
			}
		}
	}
	if os.Getenv("SKOLBRO_DUMP_LOGS") != "" {
		os.WriteFile(os.Getenv("SKOLBRO_DUMP_LOGS"), []byte(logs), 0o600)
	}
	var secrets []string
	users := e.demo.IdP.Users
	if g := e.demo.Grannkommun; g != nil {
		// The second organiser's people, whose logins take the hub's
		// other paths (discovery, a second upstream of each protocol).
		users = append(append(append([]testidp.User(nil), users...), g.PupilIdP.Users...), g.StaffUsers...)
	}
	for _, u := range users {
		secrets = append(secrets, u.NameID)
		for _, n := range []string{testidp.AttrGivenName, testidp.AttrSurname, testidp.AttrDisplayName, testidp.AttrMail, testidp.AttrEPPN} {
			secrets = append(secrets, u.Attributes[n]...)
		}
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain a test identity's name or identifier")
		}
	}
	for _, s := range []string{"SAMLResponse", "SAMLRequest", "<saml", "Assertion", "PHNhbWxw" /* base64 of <samlp */} {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain %q: a SAML message or its name leaked", s)
		}
	}
}
