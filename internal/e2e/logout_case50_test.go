package e2e

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/browsertest"
	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/samlslo"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/testidp"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// SECURITY.md case 50: a LogoutRequest that is unsigned, for another
// browser's session, replayed, or with a NameID or SessionIndex that does
// not match is refused and logs nobody out; post_logout_redirect_uri is
// matched exactly; a slow vendor does not block the others.

// vendorLogoutForm returns the signed LogoutRequest form the SAML vendor
// makes for the session s has there, without posting it.
func (e *env) vendorLogoutForm(s *session, vendor string) form {
	e.t.Helper()
	p := s.b.post(e.vendor(vendor).Base+"/logout", nil)
	if !isAutoPost(p) {
		e.t.Fatalf("the vendor's logout page: %s", p)
	}
	return onlyForm(e.t, p)
}

// refusedIn checks that the logs hold a refusal with reason.
func refusedIn(t *testing.T, e *env, reason string) {
	t.Helper()
	if !strings.Contains(e.logs.String(), `"reason":"`+reason+`"`) {
		t.Errorf("no refusal with reason %s was logged", reason)
	}
}

func TestCase50_UnsignedLogoutRequestRefused(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	s := e.loginEverywhere("anna.a")

	t.Run("from the school IdP", func(t *testing.T) {
		u, _, err := e.demo.IdP.LogoutRequestURL("anna.a", testidp.Unsigned())
		must(t, err)
		assertLogoutRefused(t, s.b.get(u), http.StatusBadRequest)
		refusedIn(t, e, "upstream_logout_unsigned")
	})
	t.Run("from the school IdP, signed by a key not in its metadata", func(t *testing.T) {
		other, err := keys.Generate("not the school IdP (TEST ONLY)", keys.RSA2048, time.Now())
		must(t, err)
		signer, err := xmlsig.NewSigner(other)
		must(t, err)
		old := e.demo.IdP.Signer
		e.demo.IdP.Signer = signer
		u, _, err := e.demo.IdP.LogoutRequestURL("anna.a")
		e.demo.IdP.Signer = old
		must(t, err)
		assertLogoutRefused(t, s.b.get(u), http.StatusBadRequest)
		refusedIn(t, e, "upstream_logout_bad_signature")
	})
	t.Run("from a vendor", func(t *testing.T) {
		v := e.vendor("learning-app")
		unsigned := *v.SP
		unsigned.SignatureMethod = "" // crewjam then leaves the request unsigned
		page, err := unsigned.MakePostLogoutRequest(s.nameIDs["learning-app"], "")
		must(t, err)
		f := onlyForm(t, page2(v.Base, page))
		assertLogoutRefused(t, s.b.post(f.action, f.fields), http.StatusBadRequest)
		refusedIn(t, e, "vendor_logout_unsigned")
	})
	t.Run("from a vendor, changed after signing", func(t *testing.T) {
		f := e.vendorLogoutForm(s, "learning-app")
		raw := decodeB64(t, f.fields.Get("SAMLRequest"))
		nid := s.nameIDs["learning-app"]
		tampered := strings.Replace(raw, nid, s.nameIDs["national-tests"], 1)
		if tampered == raw {
			t.Fatal("test did not tamper")
		}
		f.fields.Set("SAMLRequest", encodeB64(tampered))
		assertLogoutRefused(t, s.b.post(f.action, f.fields), http.StatusBadRequest)
		refusedIn(t, e, "vendor_logout_bad_signature")
	})
	e.assertLoggedIn(s, "anna.a")
	checkLogs(t, e, e.logs.String())
}

func TestCase50_LogoutRequestForAnotherBrowserRefused(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	a := e.loginEverywhere("anna.a")
	b := e.loginEverywhere("bertil.b")
	stranger := newBrowser(t, e.srv.Client()) // no session at the bridge at all

	t.Run("a vendor's request", func(t *testing.T) {
		f := e.vendorLogoutForm(a, "learning-app")
		for _, other := range []*browser{stranger, b.b} {
			p := other.post(f.action, f.fields)
			// The vendor's own request is answered, with a refusal: the
			// vendor learns that nothing was logged out.
			if !isAutoPost(p) {
				t.Fatalf("the vendor was not answered: %s", p)
			}
			resp := decodeB64(t, onlyForm(t, p).fields.Get("SAMLResponse"))
			if !strings.Contains(resp, samlslo.StatusUnknownPrincipal) || strings.Contains(resp, samlslo.StatusSuccess) {
				t.Errorf("the vendor was not answered UnknownPrincipal")
			}
			// The replay cache has the request now: make a fresh one.
			f = e.vendorLogoutForm(a, "learning-app")
		}
		refusedIn(t, e, "vendor_logout_no_session")
		refusedIn(t, e, "vendor_logout_session_mismatch")
	})
	t.Run("the school IdP's request", func(t *testing.T) {
		u, id, err := e.demo.IdP.LogoutRequestURL("anna.a")
		must(t, err)
		p := e.followLogout(b.b, b.b.get(u))
		if p.url.Path != "/demo/idp/slo" {
			t.Fatalf("the school IdP was not answered: %s", p)
		}
		if got, _ := e.demo.IdP.Answer(id); got != samlslo.StatusRequester+" "+samlslo.StatusUnknownPrincipal {
			t.Errorf("the school IdP was answered %q, want Requester/UnknownPrincipal", got)
		}
		refusedIn(t, e, "upstream_logout_session_mismatch")
	})
	t.Run("an OIDC vendor's end-session request", func(t *testing.T) {
		ov := e.demo.OIDCVendor
		// The ID token anna.a's browser got; bertil.b's was issued later.
		to, err := ov.EndSessionURL(context.Background(), a.claims, "", "st")
		must(t, err)
		for _, other := range []*browser{stranger, b.b} {
			p := other.get(to)
			assertLogoutRefused(t, p, http.StatusBadRequest)
			if p.url.Path != "/oidc/logout" {
				t.Errorf("the browser was sent on to %s", p.url.Path)
			}
		}
		refusedIn(t, e, "oidc_logout_no_session")
		refusedIn(t, e, "oidc_logout_session_mismatch")
	})
	e.assertLoggedIn(a, "anna.a")
	e.assertLoggedIn(b, "bertil.b")
	checkLogs(t, e, e.logs.String())
}

func TestCase50_MismatchingNameIDOrSessionIndexRefused(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	s := e.loginEverywhere("anna.a")
	bertil, _ := e.demo.IdP.User("bertil.b")
	for _, tc := range []struct {
		name string
		opt  testidp.LogoutOption
	}{
		{"another NameID", testidp.WithNameID(bertil.NameID)},
		{"another SessionIndex", testidp.WithSessionIndex("_00000000000000000000000000000000")},
	} {
		t.Run("school IdP, "+tc.name, func(t *testing.T) {
			u, id, err := e.demo.IdP.LogoutRequestURL("anna.a", tc.opt)
			must(t, err)
			p := e.followLogout(s.b, s.b.get(u))
			if p.url.Path != "/demo/idp/slo" {
				t.Fatalf("the school IdP was not answered: %s", p)
			}
			if got, _ := e.demo.IdP.Answer(id); got != samlslo.StatusRequester+" "+samlslo.StatusUnknownPrincipal {
				t.Errorf("the school IdP was answered %q, want Requester/UnknownPrincipal", got)
			}
		})
	}
	t.Run("vendor, another NameID", func(t *testing.T) {
		v := e.vendor("learning-app")
		page, err := v.SP.MakePostLogoutRequest(s.nameIDs["national-tests"], "")
		must(t, err)
		f := onlyForm(t, page2(v.Base, page))
		p := s.b.post(f.action, f.fields)
		if !isAutoPost(p) || !strings.Contains(decodeB64(t, onlyForm(t, p).fields.Get("SAMLResponse")), samlslo.StatusUnknownPrincipal) {
			t.Errorf("the vendor was not answered UnknownPrincipal: %s", p)
		}
	})
	refusedIn(t, e, "upstream_logout_session_mismatch")
	refusedIn(t, e, "vendor_logout_session_mismatch")
	e.assertLoggedIn(s, "anna.a")
	checkLogs(t, e, e.logs.String())
}

func TestCase50_ReplayedLogoutRequestRefused(t *testing.T) {
	for name, set := range logoutStores(t) {
		t.Run(name, func(t *testing.T) {
			e := startEnv(t, set.instances, set.store)
			s := e.loginEverywhere("anna.a")
			u, _, err := e.demo.IdP.LogoutRequestURL("anna.a")
			must(t, err)
			e.followLogout(s.b, s.b.get(u))
			e.assertLoggedOut(s, "anna.a", false)

			// Logged in again in the same browser: the old request, sent
			// again (to whichever instance), must not end the new session.
			s = e.loginEverywhereIn(s.b, "anna.a")
			assertLogoutRefused(t, s.b.get(u), http.StatusBadRequest)
			refusedIn(t, e, "upstream_logout_replay")

			f := e.vendorLogoutForm(s, "learning-app")
			p := e.followLogout(s.b, s.b.post(f.action, f.fields))
			if !strings.HasPrefix(p.url.String(), e.vendor("learning-app").Base) {
				t.Fatalf("the vendor's logout did not end at the vendor: %s", p)
			}
			s = e.loginEverywhereIn(s.b, "anna.a")
			assertLogoutRefused(t, s.b.post(f.action, f.fields), http.StatusBadRequest)
			refusedIn(t, e, "vendor_logout_replay")
			e.assertLoggedIn(s, "anna.a")
			checkLogs(t, e, e.logs.String())
		})
	}
}

func TestCase50_UnregisteredPostLogoutRedirectRefused(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	s := e.loginEverywhere("anna.a")
	ov := e.demo.OIDCVendor
	reg := ov.LoggedOutRedirect()
	u, _ := url.Parse(reg)
	for _, tc := range []struct{ name, uri string }{
		{"another host", "https://evil.example/logged-out"},
		{"trailing slash", reg + "/"},
		{"upper case", strings.Replace(reg, "logged-out", "Logged-Out", 1)},
		{"extra query", reg + "?next=https://evil.example/"},
		{"fragment", reg + "#x"},
		{"plain http", "http://" + u.Host + u.Path},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to, err := ov.EndSessionURL(context.Background(), ov.Last(), tc.uri, "st")
			must(t, err)
			p := s.b.get(to)
			assertLogoutRefused(t, p, http.StatusBadRequest)
			if p.url.Path != "/oidc/logout" {
				t.Errorf("the browser was redirected to %s", p.url)
			}
		})
	}
	t.Run("forged id_token_hint", func(t *testing.T) {
		to, err := ov.EndSessionURL(context.Background(), ov.Last(), "", "st")
		must(t, err)
		q, _ := url.Parse(to)
		v := q.Query()
		hint := v.Get("id_token_hint")
		v.Set("id_token_hint", hint[:len(hint)-4]+"AAAA")
		q.RawQuery = v.Encode()
		assertLogoutRefused(t, s.b.get(q.String()), http.StatusBadRequest)
	})
	refusedIn(t, e, "oidc_logout_invalid_request")
	e.assertLoggedIn(s, "anna.a")
	checkLogs(t, e, e.logs.String())
}

// TestCase50_SlowVendorDoesNotBlockTheOthers: a SAML vendor whose logout
// endpoint never answers and an OIDC vendor whose back-channel endpoint
// never answers do not hold up the logout: the school IdP is logged out,
// and the vendor that asked is answered PartialLogout.
func TestCase50_SlowVendorDoesNotBlockTheOthers(t *testing.T) {
	e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
		setLogoutConfig(t, d, "    vendor_wait: 1s\n")
	})
	s := e.loginEverywhere("anna.a")
	release := make(chan struct{})
	defer close(release)
	e.vendor("national-tests").SetSLOHang(release)
	e.demo.OIDCVendor.SetBackchannelDelay(time.Hour)
	defer e.demo.OIDCVendor.SetBackchannelDelay(0)

	p := e.vendorLogout(s, "learning-app")
	if !strings.HasPrefix(p.url.String(), e.vendor("learning-app").Base) {
		t.Fatalf("the logout did not end at the vendor: %s: %.300s", p, p.body)
	}
	if got, want := e.vendor("learning-app").LastLogoutAnswer(), samlslo.StatusSuccess+" "+samlslo.StatusPartialLogout; got != want {
		t.Errorf("the vendor was answered %q, want %q", got, want)
	}
	if _, open := e.demo.IdP.Session("anna.a"); open {
		t.Errorf("the school IdP's session is still open: the slow vendors held up the logout")
	}
	logs := e.logs.String()
	for _, want := range []string{`"vendor":"national-tests","reason":"no_answer"`, `"vendor":"oidc-app","reason":"backchannel_failed"`, `"partial":true`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	checkLogs(t, e, logs)
}

// TestCase50_PartialLogoutShownOnThePage: on the logout page, a vendor that
// could not be logged out is named, and the person is told to close the
// browser.
func TestCase50_PartialLogoutShownOnThePage(t *testing.T) {
	e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
		setLogoutConfig(t, d, "    vendor_wait: 1s\n")
	})
	s := e.loginEverywhere("anna.a")
	e.demo.OIDCVendor.SetBackchannelDelay(time.Hour)
	defer e.demo.OIDCVendor.SetBackchannelDelay(0)
	p := s.b.get(e.srv.URL + "/logout")
	p = e.followLogout(s.b, s.b.submit(p, nil))
	if !strings.Contains(p.body, "Stäng webbläsaren") || !strings.Contains(p.body, "inte bekräftad") {
		t.Errorf("the page does not say the logout was partial: %.500s", p.body)
	}
	checkLogs(t, e, e.logs.String())
}

// TestCase50_LogoutSessionHoldsNoPersonalData: what the bridge keeps for
// logout names no person: neither the school IdP's NameID nor a vendor's
// NameID or sid, nor a personal number or a name, nor the browser's
// token, appears in any logout record written to the store; and the
// browser's token changes at every login.
func TestCase50_LogoutSessionHoldsNoPersonalData(t *testing.T) {
	rec := &recordingStore{Store: store.NewMemory(nil)}
	e := startEnv(t, 1, func(*testing.T) store.Store { return rec })
	b := newBrowser(t, e.srv.Client())
	var tokens []string
	s := &session{b: b, nameIDs: map[string]string{}}
	for _, v := range []string{"learning-app", "national-tests"} {
		s.nameIDs[v] = e.loginAny(b, v, "anna.a").subject
		tokens = append(tokens, sessionToken(t, e, b))
	}
	e.loginAny(b, e.demo.OIDCVendor.Name, "anna.a")
	s.sid = e.demo.OIDCVendor.Last().SID
	tokens = append(tokens, sessionToken(t, e, b))
	if tokens[0] == tokens[1] || tokens[1] == tokens[2] {
		t.Errorf("the logout cookie was not renewed at a login")
	}
	u, _ := e.demo.IdP.User("anna.a")
	secrets := []string{u.NameID, s.nameIDs["learning-app"], s.nameIDs["national-tests"], s.sid,
		u.Attributes[testidp.AttrPersonalNumber][0], u.Attributes[testidp.AttrGivenName][0]}
	secrets = append(secrets, tokens...)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	sawSession := false
	for k, v := range rec.writes {
		if strings.HasPrefix(k, "slo:s:") {
			sawSession = true
		}
		if !strings.HasPrefix(k, "slo:") {
			continue // the login flows' own records are checked elsewhere
		}
		for _, sec := range secrets {
			if strings.Contains(k, sec) || strings.Contains(string(v), sec) {
				t.Errorf("the store holds an identifier or token in the clear (key class %s)", keyClass(k))
			}
		}
	}
	if !sawSession {
		t.Fatal("no logout session was written")
	}
}

// TestCase50_LogoutCookieIsHostOnlySecureHttpOnly: the logout cookie is
// __Host- prefixed (Secure, Path=/, no Domain), HttpOnly, and
// SameSite=None: a school IdP's or vendor's logout message arrives as a
// cross-site POST.
func TestCase50_LogoutCookieIsHostOnlySecureHttpOnly(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	spy := &cookieSpy{rt: e.srv.Client().Transport}
	b := &browser{t: t, b: browsertest.New(spy)}
	e.loginAny(b, "learning-app", "anna.a")
	spy.mu.Lock()
	defer spy.mu.Unlock()
	found := false
	for _, c := range spy.cookies {
		if c.Name != "__Host-skolbro_sess" {
			continue
		}
		found = true
		if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteNoneMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("logout cookie: Secure=%v HttpOnly=%v SameSite=%v Path=%q Domain=%q", c.Secure, c.HttpOnly, c.SameSite, c.Path, c.Domain)
		}
		if len(c.Value) != 43 {
			t.Errorf("logout cookie value is not a 256-bit token")
		}
	}
	if !found {
		t.Fatal("no __Host-skolbro_sess cookie was set at the login")
	}
}

// cookieSpy records every cookie the bridge sets.
type cookieSpy struct {
	rt      http.RoundTripper
	mu      sync.Mutex
	cookies []*http.Cookie
}

func (c *cookieSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err == nil {
		c.mu.Lock()
		c.cookies = append(c.cookies, resp.Cookies()...)
		c.mu.Unlock()
	}
	return resp, err
}

// page2 is an HTML page a test made (a crewjam form), as if loaded from base.
func page2(base string, html []byte) page {
	u, _ := url.Parse(base + "/")
	return page{status: http.StatusOK, url: u, body: string(html)}
}

func decodeB64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	must(t, err)
	return string(b)
}

func encodeB64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func keyClass(k string) string {
	if i := strings.LastIndexByte(k, ':'); i > 0 {
		return k[:i]
	}
	return "?"
}

// recordingStore keeps every value written, for checking what the store
// sees.
type recordingStore struct {
	store.Store
	mu     sync.Mutex
	writes map[string][]byte
}

func (r *recordingStore) note(k string, v []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.writes == nil {
		r.writes = map[string][]byte{}
	}
	r.writes[k] = append([]byte(nil), v...)
}

func (r *recordingStore) Put(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	r.note(k, v)
	return r.Store.Put(ctx, k, v, ttl)
}

func (r *recordingStore) Add(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	r.note(k, v)
	return r.Store.Add(ctx, k, v, ttl)
}

// sessionToken is the browser's logout cookie.
func sessionToken(t *testing.T, e *env, b *browser) string {
	t.Helper()
	u, _ := url.Parse(e.srv.URL)
	for _, c := range b.b.Client.Jar.Cookies(u) {
		if c.Name == "__Host-skolbro_sess" {
			return c.Value
		}
	}
	t.Fatal("no logout cookie")
	return ""
}

// setLogoutConfig adds lines under the organiser's logout: key.
func setLogoutConfig(t *testing.T, d *demo.Demo, lines string) {
	t.Helper()
	p := d.Config.File()
	b, err := os.ReadFile(p)
	must(t, err)
	s := strings.Replace(string(b), "  policy_dir: attribute-release\n", "  policy_dir: attribute-release\n  logout:\n"+lines, 1)
	must(t, os.WriteFile(filepath.Clean(p), []byte(s), 0o600))
}
