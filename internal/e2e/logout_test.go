package e2e

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/demovendor"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/testidp"
)

// Single Logout end to end (issue 14, SECURITY.md case 50): a browser
// logged in to two SAML vendors (crewjam/saml) and one OIDC vendor
// (go-oidc, back-channel logout) through the bridge, and logged out by one
// of them, by the school IdP, by the OIDC vendor or on the bridge's own
// page. The simulated browser runs no scripts: it loads the logout page's
// frames itself, then continues as the page's script would.

// session is one browser's logins at every demo vendor.
type session struct {
	b *browser
	// nameIDs by SAML vendor; sid at the OIDC vendor.
	nameIDs map[string]string
	sid     string
	// claims are what the OIDC vendor received (its ID token included).
	claims *demovendor.Claims
}

// loginEverywhere logs user in to both SAML vendors and the OIDC vendor
// in a fresh browser.
func (e *env) loginEverywhere(user string) *session {
	e.t.Helper()
	return e.loginEverywhereIn(newBrowser(e.t, e.srv.Client()), user)
}

// loginEverywhereIn is loginEverywhere in browser b.
func (e *env) loginEverywhereIn(b *browser, user string) *session {
	e.t.Helper()
	s := &session{b: b, nameIDs: map[string]string{}}
	for _, v := range []string{"learning-app", "national-tests"} {
		g := e.loginAny(s.b, v, user)
		s.nameIDs[v] = g.subject
		if !e.vendor(v).LoggedIn(g.subject) {
			e.t.Fatalf("%s holds no session after login", v)
		}
	}
	e.loginAny(s.b, e.demo.OIDCVendor.Name, user)
	c := e.demo.OIDCVendor.Last()
	if c.SID == "" {
		e.t.Fatal("the OIDC vendor's ID token carries no sid")
	}
	s.sid, s.claims = c.SID, c
	if !e.demo.OIDCVendor.LoggedIn(s.sid) {
		e.t.Fatal("the OIDC vendor holds no session after login")
	}
	return s
}

var iframeSrc = regexp.MustCompile(`<iframe src="([^"]+)"`)

// frameWait is how long the simulated browser lets one vendor's frame
// load; a vendor that takes longer is left behind, as the page's script
// leaves it.
const frameWait = 3 * time.Second

// followLogout drives a logout from page p to its end, as a browser with
// scripts would: it loads the progress page's frames (each to its own
// end), continues, and submits every auto-posting form on the way. It
// returns the last page: a vendor's, the school IdP's, or the bridge's
// result page.
func (e *env) followLogout(b *browser, p page) page {
	e.t.Helper()
	for i := 0; i < 12; i++ {
		switch {
		case strings.HasSuffix(p.url.Path, "/logout/run") && strings.Contains(p.body, `id="next"`):
			for _, m := range iframeSrc.FindAllStringSubmatch(p.body, -1) {
				src, err := p.url.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
				if err != nil {
					e.t.Fatal(err)
				}
				e.loadFrame(b, src.String())
			}
			p = b.submit(p, nil)
		case isAutoPost(p):
			p = b.submit(p, nil)
		default:
			return p
		}
	}
	e.t.Fatalf("logout did not end: at %s", p)
	return p
}

// loadFrame loads one frame to its end (auto-posting forms included),
// giving up after frameWait.
func (e *env) loadFrame(b *browser, src string) {
	ctx, cancel := context.WithTimeout(context.Background(), frameWait)
	defer cancel()
	raw, err := b.b.Get(ctx, src)
	for i := 0; err == nil && i < 4; i++ {
		fp := fromPage(raw)
		if !isAutoPost(fp) {
			return
		}
		raw, err = b.b.Submit(ctx, raw, nil)
	}
}

// isAutoPost reports whether p is a page that posts a SAML message on by
// itself: the bridge's or the test IdP's auto-post, or crewjam's.
func isAutoPost(p page) bool {
	if !strings.Contains(p.body, `id="autopost"`) && !strings.Contains(p.body, `id="SAMLRequestForm"`) && !strings.Contains(p.body, `id="SAMLResponseForm"`) {
		return false
	}
	fs, err := p.forms()
	return err == nil && len(fs) == 1
}

// vendorLogout starts a logout at a SAML demo vendor: its button posts to
// the vendor, whose page posts the signed LogoutRequest to the bridge.
func (e *env) vendorLogout(s *session, vendor string) page {
	e.t.Helper()
	v := e.vendor(vendor)
	p := s.b.post(v.Base+"/logout", nil)
	if !isAutoPost(p) {
		e.t.Fatalf("the vendor's logout page: %s: %.300s", p, p.body)
	}
	return e.followLogout(s.b, s.b.submit(p, nil))
}

// assertLoggedOut checks that every vendor but except (and the school IdP
// unless upstreamToo is false) no longer holds the session.
func (e *env) assertLoggedOut(s *session, user string, upstreamToo bool) {
	e.t.Helper()
	for v, nid := range s.nameIDs {
		if e.vendor(v).LoggedIn(nid) {
			e.t.Errorf("%s still holds the session", v)
		}
	}
	if e.demo.OIDCVendor.LoggedIn(s.sid) {
		e.t.Errorf("the OIDC vendor still holds the session")
	}
	if _, open := e.demo.IdP.Session(user); upstreamToo && open {
		e.t.Errorf("the school IdP's session is still open")
	}
}

// assertLoggedIn checks that the browser's sessions are all still there.
func (e *env) assertLoggedIn(s *session, user string) {
	e.t.Helper()
	for v, nid := range s.nameIDs {
		if !e.vendor(v).LoggedIn(nid) {
			e.t.Errorf("%s lost its session", v)
		}
	}
	if !e.demo.OIDCVendor.LoggedIn(s.sid) {
		e.t.Errorf("the OIDC vendor lost its session")
	}
	if _, open := e.demo.IdP.Session(user); !open {
		e.t.Errorf("the school IdP's session was ended")
	}
}

// logoutStores are the set-ups every logout flow runs in: one instance on
// the memory store, and two instances behind a round-robin balancer on
// one Redis (miniredis always, a real server when SKOLBRO_TEST_REDIS
// names one), so that every step of a logout may land on the other
// instance.
func logoutStores(t *testing.T) map[string]struct {
	instances int
	store     func(t *testing.T) store.Store
} {
	out := map[string]struct {
		instances int
		store     func(t *testing.T) store.Store
	}{"memory": {1, memoryStore}}
	for name, st := range redisStores(t) {
		out[name+"-two-instances"] = struct {
			instances int
			store     func(t *testing.T) store.Store
		}{2, st}
	}
	return out
}

// TestCase50_SAMLVendorLogoutEndsEveryOtherSessionAndTheIdP: logout at one
// SAML vendor logs the browser out at the other SAML vendor (front
// channel), at the OIDC vendor (back channel) and at the school IdP, then
// answers the vendor with Success.
func TestCase50_SAMLVendorLogoutEndsEveryOtherSessionAndTheIdP(t *testing.T) {
	for name, set := range logoutStores(t) {
		t.Run(name, func(t *testing.T) {
			e := startEnv(t, set.instances, set.store)
			s := e.loginEverywhere("anna.a")
			other := e.loginEverywhere("bertil.b") // another pupil, another browser
			p := e.vendorLogout(s, "learning-app")
			if !strings.HasPrefix(p.url.String(), e.vendor("learning-app").Base) || p.status != http.StatusOK {
				t.Fatalf("the logout did not end at the vendor: %s: %.300s", p, p.body)
			}
			if got := e.vendor("learning-app").LastLogoutAnswer(); got != testidp.StatusSuccess {
				t.Errorf("the vendor was answered %q, want Success without PartialLogout", got)
			}
			e.assertLoggedOut(s, "anna.a", true)
			if got := e.demo.IdP.LoggedOut(); len(got) != 1 || got[0] != "anna.a" {
				t.Errorf("the school IdP logged out %q, want only anna.a", got)
			}
			e.assertLoggedIn(other, "bertil.b")
			// The bridge forgot the session: the page offers nothing more.
			if cp := s.b.get(e.srv.URL + "/logout"); !strings.Contains(cp.body, "inte loggat in") {
				t.Errorf("the logout page still lists a session")
			}
			checkLogs(t, e, e.logs.String())
		})
	}
}

// TestCase50_IdPLogoutEndsEveryVendor: the school IdP's LogoutRequest logs
// the browser out at every vendor, and the IdP is answered Success.
func TestCase50_IdPLogoutEndsEveryVendor(t *testing.T) {
	for name, set := range logoutStores(t) {
		t.Run(name, func(t *testing.T) {
			e := startEnv(t, set.instances, set.store)
			s := e.loginEverywhere("anna.a")
			u, id, err := e.demo.IdP.LogoutRequestURL("anna.a")
			must(t, err)
			p := e.followLogout(s.b, s.b.get(u))
			if p.status != http.StatusOK || p.url.Path != "/demo/idp/slo" {
				t.Fatalf("the logout did not end at the school IdP: %s: %.300s", p, p.body)
			}
			if got, _ := e.demo.IdP.Answer(id); got != testidp.StatusSuccess {
				t.Errorf("the school IdP was answered %q, want Success", got)
			}
			e.assertLoggedOut(s, "anna.a", false)
			checkLogs(t, e, e.logs.String())
		})
	}
}

// TestCase50_OIDCVendorLogoutEndsEveryOtherSession: the OIDC vendor's
// end-session request (id_token_hint, registered post_logout_redirect_uri)
// logs the browser out everywhere and returns to the vendor with its
// state.
func TestCase50_OIDCVendorLogoutEndsEveryOtherSession(t *testing.T) {
	for name, set := range logoutStores(t) {
		t.Run(name, func(t *testing.T) {
			e := startEnv(t, set.instances, set.store)
			s := e.loginEverywhere("anna.a")
			ov := e.demo.OIDCVendor
			to, err := ov.EndSessionURL(context.Background(), ov.Last(), "", "st-4711")
			must(t, err)
			p := e.followLogout(s.b, s.b.get(to))
			if p.status != http.StatusOK || !strings.HasSuffix(p.url.Path, "/logged-out") {
				t.Fatalf("the logout did not return to the OIDC vendor: %s: %.300s", p, p.body)
			}
			if _, states := ov.Logouts(); len(states) != 1 || states[0] != "st-4711" {
				t.Errorf("the vendor got states %q back, want its own", states)
			}
			for v, nid := range s.nameIDs {
				if e.vendor(v).LoggedIn(nid) {
					t.Errorf("%s still holds the session", v)
				}
			}
			if _, open := e.demo.IdP.Session("anna.a"); open {
				t.Errorf("the school IdP's session is still open")
			}
			checkLogs(t, e, e.logs.String())
		})
	}
}

// TestCase50_LogoutPageEndsEverySession: the "log out everywhere" page lists
// the vendors, logs out everywhere on its button, and says so.
func TestCase50_LogoutPageEndsEverySession(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	s := e.loginEverywhere("anna.a")
	p := s.b.get(e.srv.URL + "/logout")
	for _, name := range []string{"Demo Learning App", "Demo National Tests", "Demo OIDC Learning App"} {
		if !strings.Contains(p.body, name) {
			t.Errorf("the logout page does not list %s", name)
		}
	}
	p = e.followLogout(s.b, s.b.submit(p, nil))
	if p.status != http.StatusOK || !strings.Contains(p.body, "Du är utloggad") {
		t.Fatalf("no result page: %s: %.400s", p, p.body)
	}
	e.assertLoggedOut(s, "anna.a", true)
	checkLogs(t, e, e.logs.String())
}

// TestCase50_LogoutPageNeedsItsForm: a cross-site POST to the logout page
// (no form token bound to the browser's session) logs nobody out, and a
// GET never does.
func TestCase50_LogoutPageNeedsItsForm(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	s := e.loginEverywhere("anna.a")
	s.b.get(e.srv.URL + "/logout")
	assertLogoutRefused(t, s.b.post(e.srv.URL+"/logout", nil), http.StatusBadRequest)
	assertLogoutRefused(t, s.b.post(e.srv.URL+"/logout", url.Values{"t": {"00" + strings.Repeat("ab", 31)}}), http.StatusBadRequest)
	e.assertLoggedIn(s, "anna.a")
	checkLogs(t, e, e.logs.String())
}

// TestCase50_OIDCUpstreamLoggedOutThroughEndSession: with an OIDC school
// IdP, the bridge ends the IdP's session at its end_session_endpoint and
// continues when the IdP sends the browser back.
func TestCase50_OIDCUpstreamLoggedOutThroughEndSession(t *testing.T) {
	e := startEnvOpts(t, 1, memoryStore, nil, demo.Options{UpstreamOIDC: true})
	b := newBrowser(t, e.srv.Client())
	g := e.loginAny(b, "learning-app", "anna.a")
	p := b.get(e.srv.URL + "/logout")
	p = e.followLogout(b, b.submit(p, nil))
	if p.status != http.StatusOK || !strings.Contains(p.body, "Du är utloggad") {
		t.Fatalf("no result page: %s: %.400s", p, p.body)
	}
	if n := e.demo.OIDCIdP.Logouts(); n != 1 {
		t.Errorf("the OIDC school IdP saw %d end-session requests, want 1", n)
	}
	if e.vendor("learning-app").LoggedIn(g.subject) {
		t.Errorf("the SAML vendor still holds the session")
	}
	checkLogs(t, e, e.logs.String())
}

// assertLogoutRefused checks a refused logout step as every refusal is
// checked: the status, a request id, nothing posted onwards, no internals.
func assertLogoutRefused(t *testing.T, p page, status int) {
	t.Helper()
	assertErrorPage(t, p, status)
}

// TestCase50_MetadataListsSingleLogout: the bridge's IdP metadata (towards
// vendors) and SP metadata (towards the school IdP) list their
// SingleLogoutService in both bindings, and the SP metadata the key its
// logout messages are signed with.
func TestCase50_MetadataListsSingleLogout(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	b := newBrowser(t, e.srv.Client())
	for _, tc := range []struct{ path, slo string }{
		{"/saml/idp/metadata", e.srv.URL + "/saml/idp/slo"},
		{"/saml/sp/metadata", e.srv.URL + "/saml/sp/slo"},
	} {
		p := b.get(e.srv.URL + tc.path)
		for _, binding := range []string{"HTTP-Redirect", "HTTP-POST"} {
			want := `<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:` + binding + `" Location="` + tc.slo + `"`
			if !strings.Contains(p.body, want) {
				t.Errorf("%s lacks the %s SingleLogoutService", tc.path, binding)
			}
		}
	}
	if p := b.get(e.srv.URL + "/saml/sp/metadata"); !strings.Contains(p.body, `<md:KeyDescriptor use="signing">`) {
		t.Errorf("the SP metadata lists no signing key")
	}
}

// TestCase50_OIDCFrontChannelLogout: an OIDC vendor registered for
// front-channel logout is logged out in a frame, with iss and its sid.
func TestCase50_OIDCFrontChannelLogout(t *testing.T) {
	e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
		p := filepath.Join(d.Dir, "attribute-release", "oidc-app.yaml")
		b, err := os.ReadFile(p)
		must(t, err)
		s := strings.Replace(string(b), "backchannel_logout_uri:", "frontchannel_logout_uri:", 1)
		s = strings.Replace(s, "/backchannel", "/frontchannel", 1)
		must(t, os.WriteFile(p, []byte(s), 0o600))
	})
	s := e.loginEverywhere("anna.a")
	p := e.vendorLogout(s, "learning-app")
	if got := e.vendor("learning-app").LastLogoutAnswer(); got != testidp.StatusSuccess {
		t.Errorf("the vendor was answered %q at %s, want Success", got, p)
	}
	e.assertLoggedOut(s, "anna.a", true)
	if ended, _ := e.demo.OIDCVendor.Logouts(); ended != 1 {
		t.Errorf("the OIDC vendor's front-channel page ended %d sessions, want 1", ended)
	}
	checkLogs(t, e, e.logs.String())
}
