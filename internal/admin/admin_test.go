package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/store"
)

func TestNewRefusesIncompleteDeps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*Deps)
		want   string
	}{
		{"no entitlement", func(d *Deps) { d.Entitlement = " " }, "Entitlement"},
		{"no store", func(d *Deps) { d.Store = nil }, "Store"},
		{"no login", func(d *Deps) { d.StartLogin = nil }, "StartLogin"},
		{"no policies", func(d *Deps) { d.Policies = nil }, "Policies"},
		{"no release", func(d *Deps) { d.Release = nil }, "Release"},
		{"no register export", func(d *Deps) { d.RegisterCSV = nil }, "RegisterCSV"},
		{"partial protection", func(d *Deps) { d.Protection = &ProtectionDeps{} }, "Protection"},
		{"lookups without an action log", func(d *Deps) { d.RecordAction = nil }, "RecordAction"},
		{"lookups without subject keys", func(d *Deps) { d.SubjectKeys = nil }, "SubjectKeys"},
		{"protection without an action log", func(d *Deps) { d.SubjectAccess, d.RecordAction = nil, nil }, "RecordAction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			d := e.admin.d
			tt.change(&d)
			_, err := New(d)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestNoSessionRedirectsToLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	garbage := &http.Cookie{Name: CookieName, Value: "not-a-session"}
	unknown := &http.Cookie{Name: CookieName, Value: strings.Repeat("A", 43)}
	tests := []struct {
		name     string
		rq       request
		status   int
		location string
	}{
		{"overview", request{path: "/admin/"}, http.StatusSeeOther, "/admin/login"},
		{"vendors", request{path: "/admin/vendors"}, http.StatusSeeOther, "/admin/login"},
		{"preview", request{path: "/admin/preview?vendor=learning-app"}, http.StatusSeeOther, "/admin/login"},
		{"subject", request{path: "/admin/subject"}, http.StatusSeeOther, "/admin/login"},
		{"register", request{path: "/admin/register"}, http.StatusSeeOther, "/admin/login"},
		{"register csv", request{path: "/admin/register.csv"}, http.StatusSeeOther, "/admin/login"},
		{"register json", request{path: "/admin/register.json"}, http.StatusSeeOther, "/admin/login"},
		{"protection", request{path: "/admin/protection"}, http.StatusSeeOther, "/admin/login"},
		{"unknown page", request{path: "/admin/nothing-here"}, http.StatusSeeOther, "/admin/login"},
		{"garbage cookie", request{path: "/admin/", cookie: garbage}, http.StatusSeeOther, "/admin/login"},
		{"unknown session", request{path: "/admin/vendors", cookie: unknown}, http.StatusSeeOther, "/admin/login"},
		{"no trailing slash", request{path: "/admin"}, http.StatusSeeOther, "/admin/"},
		{"post subject", request{method: http.MethodPost, path: "/admin/subject", form: form("pnr", plainPNR, "format", "html", "csrf", "x")}, http.StatusForbidden, ""},
		{"post protection", request{method: http.MethodPost, path: "/admin/protection", form: form("pnr", plainPNR, "action", "add", "csrf", "x")}, http.StatusForbidden, ""},
		{"post logout", request{method: http.MethodPost, path: "/admin/logout", form: form("csrf", "x")}, http.StatusForbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(tt.rq)
			if w.Code != tt.status || w.Header().Get("Location") != tt.location {
				t.Errorf("status %d location %q, want %d %q", w.Code, w.Header().Get("Location"), tt.status, tt.location)
			}
			if strings.Contains(w.Body.String(), "<nav") {
				t.Errorf("page without a session shows the admin navigation")
			}
		})
	}
	if calls, _ := e.prot.count(); calls != 0 {
		t.Errorf("protection register called %d times without a session", calls)
	}
	if calls, _ := e.subject.state(); calls != 0 {
		t.Errorf("subject access called %d times without a session", calls)
	}
	if n := e.store.sessionPuts(); n != 0 {
		t.Errorf("%d sessions stored without a login", n)
	}

	// The login page is the only one that needs no session: it starts
	// the upstream login.
	w := e.get("/admin/login", nil)
	if w.Code != http.StatusFound || w.Header().Get("Location") != "https://idp.example/sso" || e.startCount() != 1 {
		t.Errorf("login: status %d location %q starts %d", w.Code, w.Header().Get("Location"), e.startCount())
	}
}

func TestLoginPageWithSessionGoesToOverview(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.login()
	w := e.get("/admin/login", c)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/admin/" || e.startCount() != 0 {
		t.Errorf("status %d location %q starts %d", w.Code, w.Header().Get("Location"), e.startCount())
	}
	if w := e.post("/admin/login", c, form()); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /admin/login: status %d", w.Code)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	endpoints := []struct {
		name string
		path string
		form url.Values
	}{
		{"subject", "/admin/subject", form("pnr", plainPNR, "format", "html")},
		{"protection add", "/admin/protection", form("pnr", plainPNR, "action", "add", "note", "")},
		{"logout", "/admin/logout", form()},
	}
	tokens := []struct {
		name   string
		token  func(own, other string) (body, query string)
		header http.Header
		ok     bool
	}{
		{"missing", func(string, string) (string, string) { return "", "" }, nil, false},
		{"wrong", func(string, string) (string, string) { return "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "" }, nil, false},
		{"truncated", func(own, _ string) (string, string) { return own[:len(own)-1], "" }, nil, false},
		{"other session's", func(_, other string) (string, string) { return other, "" }, nil, false},
		{"in the URL only", func(own, _ string) (string, string) { return "", own }, nil, false},
		{"cross-site", func(own, _ string) (string, string) { return own, "" }, http.Header{"Sec-Fetch-Site": {"cross-site"}}, false},
		{"correct", func(own, _ string) (string, string) { return own, "" }, nil, true},
	}
	for _, ep := range endpoints {
		for _, tk := range tokens {
			t.Run(ep.name+"/"+tk.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				c, own := e.login()
				_, other := e.login()
				f := url.Values{}
				for k, v := range ep.form {
					f[k] = v
				}
				body, query := tk.token(own, other)
				if body != "" {
					f.Set("csrf", body)
				}
				path := ep.path
				if query != "" {
					path += "?csrf=" + url.QueryEscape(query)
				}
				w := e.do(request{method: http.MethodPost, path: path, cookie: c, form: f, header: tk.header})

				subjectCalls, _ := e.subject.state()
				protCalls, entries := e.prot.count()
				stillIn := e.get("/admin/", c).Code == http.StatusOK
				if !tk.ok {
					if w.Code != http.StatusForbidden {
						t.Errorf("status %d, want 403", w.Code)
					}
					if subjectCalls != 0 || protCalls != 0 || entries != 0 || !stillIn {
						t.Errorf("something changed: subject calls %d, register calls %d, entries %d, session kept %v",
							subjectCalls, protCalls, entries, stillIn)
					}
					return
				}
				if w.Code != http.StatusOK {
					t.Errorf("status %d, want 200", w.Code)
				}
				switch ep.name {
				case "subject":
					if subjectCalls != 1 {
						t.Errorf("subject access not called")
					}
				case "protection add":
					if entries != 1 {
						t.Errorf("marking not added")
					}
				case "logout":
					if stillIn {
						t.Errorf("session survived the logout")
					}
				}
			})
		}
	}
}

func TestNoGETChangesAnything(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, tok := e.login()
	for _, path := range []string{
		"/admin/logout?csrf=" + tok,
		"/admin/protection?action=add&pnr=" + plainPNR + "&csrf=" + tok,
		"/admin/subject?format=csv&pnr=" + plainPNR + "&csrf=" + tok,
	} {
		e.get(path, c)
	}
	subjectCalls, _ := e.subject.state()
	protCalls, _ := e.prot.count()
	if subjectCalls != 0 || protCalls != 0 || e.get("/admin/", c).Code != http.StatusOK {
		t.Errorf("a GET acted: subject calls %d, register calls %d", subjectCalls, protCalls)
	}
}

func TestEntitlementRequired(t *testing.T) {
	t.Parallel()
	withEntitlement := func(values ...string) *identity.Identity {
		id := adminIdentity(t)
		id.Attributes = identity.Attributes{attr.GivenName: {adminGiven}}
		if values != nil {
			id.Attributes[attr.Entitlement] = values
		}
		return id
	}
	tests := []struct {
		name string
		id   *identity.Identity
		ok   bool
	}{
		{"no identity", nil, false},
		{"no entitlement", withEntitlement(), false},
		{"other entitlement", withEntitlement("urn:x-skolbro:entitlement:teacher"), false},
		{"prefix of the entitlement", withEntitlement(testEntitlement[:len(testEntitlement)-1]), false},
		{"entitlement with suffix", withEntitlement(testEntitlement + ":extra"), false},
		{"entitlement in another attribute", func() *identity.Identity {
			id := withEntitlement()
			id.Attributes[attr.Affiliation] = []string{testEntitlement}
			return id
		}(), false},
		{"entitled", withEntitlement("urn:x-other", testEntitlement), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			w := e.complete(tt.id, nil, nil)
			c := sessionCookie(w)
			if !tt.ok {
				if w.Code != http.StatusForbidden || c != nil || e.store.sessionPuts() != 0 {
					t.Errorf("status %d, cookie %v, sessions stored %d; want 403 and no session", w.Code, c, e.store.sessionPuts())
				}
				if !strings.Contains(e.logs.String(), `"outcome":"refused"`) {
					t.Errorf("refusal not logged: %s", e.logs.String())
				}
				return
			}
			if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/admin/" || c == nil {
				t.Fatalf("status %d location %q cookie %v", w.Code, w.Header().Get("Location"), c)
			}
			if got := e.get("/admin/", c).Code; got != http.StatusOK {
				t.Errorf("overview with the new session: %d", got)
			}
		})
	}
}

func TestRefusedLoginEndsEarlierSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.login()
	w := e.complete(&identity.Identity{}, c, nil)
	if w.Code != http.StatusForbidden {
		t.Fatalf("status %d", w.Code)
	}
	if got := e.get("/admin/", c).Code; got != http.StatusSeeOther {
		t.Errorf("earlier session still valid after a refused login: %d", got)
	}
}

func TestSessionFixation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		plant func(e *env) *http.Cookie
	}{
		{"planted random id", func(*env) *http.Cookie {
			return &http.Cookie{Name: CookieName, Value: "fixedfixedfixedfixedfixedfixedfixedfixedfix"}
		}},
		{"planted valid session", func(e *env) *http.Cookie {
			// The attacker's own session, planted in the victim's browser.
			c, _ := e.login()
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			planted := tt.plant(e)
			w := e.complete(adminIdentity(t), planted, nil)
			fresh := sessionCookie(w)
			if fresh == nil || fresh.Value == planted.Value {
				t.Fatalf("login kept the planted id: %v", fresh)
			}
			if got := e.get("/admin/", planted).Code; got != http.StatusSeeOther {
				t.Errorf("planted cookie after login: status %d, want 303 to login", got)
			}
			if got := e.get("/admin/", fresh).Code; got != http.StatusOK {
				t.Errorf("fresh cookie: status %d", got)
			}
		})
	}
}

func TestSessionCookie(t *testing.T) {
	t.Parallel()
	for _, secure := range []bool{false, true} {
		e := newEnv(t, func(d *Deps) { d.SecureCookies = secure })
		c := sessionCookie(e.complete(adminIdentity(t), nil, nil))
		if c == nil {
			t.Fatal("no cookie")
		}
		got := struct {
			Path      string
			HttpOnly  bool
			Secure    bool
			SameSite  http.SameSite
			Persisted bool
			Len       int
		}{c.Path, c.HttpOnly, c.Secure, c.SameSite, c.MaxAge > 0 || !c.Expires.IsZero(), len(c.Value)}
		want := got
		want.Path, want.HttpOnly, want.Secure, want.SameSite, want.Persisted, want.Len = "/admin/", true, secure, http.SameSiteStrictMode, false, 43
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("secure=%v cookie (-want +got):\n%s", secure, diff)
		}
		// Only a hash of the id is a store key.
		if _, err := e.store.Get(t.Context(), c.Value); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session id itself is a store key: %v", err)
		}
		if _, err := e.store.Get(t.Context(), sessionKeyPrefix+c.Value); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session id itself is in a store key: %v", err)
		}
	}
}

func TestCrossSiteLoginMovesOnSameSite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.complete(adminIdentity(t), nil, http.Header{"Sec-Fetch-Site": {"cross-site"}})
	body := w.Body.String()
	if w.Code != http.StatusOK || sessionCookie(w) == nil ||
		!strings.Contains(body, `<meta http-equiv="refresh" content="0;url=/admin/">`) ||
		!strings.Contains(body, `href="/admin/"`) {
		t.Errorf("status %d cookie %v body:\n%s", w.Code, sessionCookie(w), body)
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	type step struct {
		advance time.Duration
		want    int
	}
	tests := []struct {
		name string
		// storeOnRealClock keeps the store's own TTL out of the way, so
		// that the session's recorded times alone must end it.
		storeOnRealClock bool
		steps            []step
	}{
		{"idle just under the limit", false, []step{{IdleTimeout - time.Second, 200}, {IdleTimeout - time.Second, 200}}},
		{"idle limit", false, []step{{IdleTimeout, 303}}},
		{"idle limit, store on another clock", true, []step{{IdleTimeout, 303}}},
		{"idle after activity", true, []step{{20 * time.Minute, 200}, {20 * time.Minute, 200}, {IdleTimeout, 303}}},
		{"absolute limit despite activity", true, func() []step {
			var s []step
			for elapsed := time.Duration(0); elapsed+25*time.Minute < AbsoluteTimeout; elapsed += 25 * time.Minute {
				s = append(s, step{25 * time.Minute, 200})
			}
			// 19 steps of 25 minutes is 7h55m: 5 more minutes end it.
			return append(s, step{5*time.Minute - time.Second, 200}, step{time.Second, 303})
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if tt.storeOnRealClock {
				e = newEnv(t, func(d *Deps) { d.Store = store.NewMemory(nil) })
			}
			c, _ := e.login()
			for i, s := range tt.steps {
				e.clock.Add(s.advance)
				w := e.get("/admin/vendors", c)
				if w.Code != s.want {
					t.Fatalf("step %d (+%v): status %d, want %d", i, s.advance, w.Code, s.want)
				}
				if s.want == http.StatusSeeOther && w.Header().Get("Location") != "/admin/login" {
					t.Errorf("expired session sent to %q", w.Header().Get("Location"))
				}
			}
		})
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, tok := e.login()
	w := e.post("/admin/logout", c, form("csrf", tok))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `href="/admin/login"`) {
		t.Fatalf("status %d body:\n%s", w.Code, w.Body.String())
	}
	cleared := false
	for _, ck := range w.Result().Cookies() {
		cleared = cleared || (ck.Name == CookieName && ck.MaxAge < 0)
	}
	if !cleared {
		t.Errorf("cookie not cleared")
	}
	if got := e.get("/admin/", c).Code; got != http.StatusSeeOther {
		t.Errorf("session valid after logout: %d", got)
	}
	if got := e.get("/admin/logout", c).Code; got != http.StatusSeeOther {
		t.Errorf("GET logout after logout: %d", got)
	}
}

func TestMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, tok := e.login()
	tests := []struct {
		name   string
		rq     request
		status int
	}{
		{"GET logout", request{path: "/admin/logout", cookie: c}, http.StatusMethodNotAllowed},
		{"PUT subject", request{method: http.MethodPut, path: "/admin/subject", cookie: c, form: form("csrf", tok)}, http.StatusMethodNotAllowed},
		{"POST vendors", request{method: http.MethodPost, path: "/admin/vendors", cookie: c, form: form("csrf", tok)}, http.StatusMethodNotAllowed},
		{"HEAD overview", request{method: http.MethodHead, path: "/admin/", cookie: c}, http.StatusOK},
		{"unknown page", request{path: "/admin/nothing-here", cookie: c}, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if w := e.do(tt.rq); w.Code != tt.status {
				t.Errorf("status %d, want %d", w.Code, tt.status)
			}
		})
	}
}

// wantHeaders are the security headers every admin response carries.
var wantHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	"Cache-Control":           "no-store",
	"Referrer-Policy":         "no-referrer",
	"X-Frame-Options":         "DENY",
	"X-Content-Type-Options":  "nosniff",
}

func TestSecurityHeadersOnEveryPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, tok := e.login()
	requests := []struct {
		name string
		rq   request
	}{
		{"overview", request{path: "/admin/", cookie: c}},
		{"vendors", request{path: "/admin/vendors", cookie: c}},
		{"preview", request{path: "/admin/preview?vendor=learning-app", cookie: c}},
		{"preview unknown vendor", request{path: "/admin/preview?vendor=nope", cookie: c}},
		{"subject form", request{path: "/admin/subject", cookie: c}},
		{"subject result", request{method: http.MethodPost, path: "/admin/subject", cookie: c, form: form("csrf", tok, "pnr", plainPNR, "format", "html")}},
		{"subject csv", request{method: http.MethodPost, path: "/admin/subject", cookie: c, form: form("csrf", tok, "pnr", plainPNR, "format", "csv")}},
		{"subject json", request{method: http.MethodPost, path: "/admin/subject", cookie: c, form: form("csrf", tok, "pnr", plainPNR, "format", "json")}},
		{"register", request{path: "/admin/register", cookie: c}},
		{"register csv", request{path: "/admin/register.csv", cookie: c}},
		{"register json", request{path: "/admin/register.json", cookie: c}},
		{"protection", request{path: "/admin/protection", cookie: c}},
		{"protection add", request{method: http.MethodPost, path: "/admin/protection", cookie: c, form: form("csrf", tok, "pnr", plainPNR, "action", "add")}},
		{"not found", request{path: "/admin/nothing", cookie: c}},
		{"method not allowed", request{path: "/admin/logout", cookie: c}},
		{"csrf refused", request{method: http.MethodPost, path: "/admin/protection", cookie: c, form: form("pnr", plainPNR, "action", "add")}},
		{"redirect to login", request{path: "/admin/vendors"}},
		{"slashless redirect", request{path: "/admin"}},
		{"login", request{path: "/admin/login"}},
		{"logout", request{method: http.MethodPost, path: "/admin/logout", cookie: c, form: form("csrf", tok)}},
	}
	check := func(t *testing.T, h http.Header) {
		t.Helper()
		got := map[string]string{}
		for k := range wantHeaders {
			got[k] = h.Get(k)
		}
		if diff := cmp.Diff(wantHeaders, got); diff != "" {
			t.Errorf("headers (-want +got):\n%s", diff)
		}
	}
	for _, tt := range requests {
		t.Run(tt.name, func(t *testing.T) { check(t, e.do(tt.rq).Header()) })
	}
	t.Run("login completed", func(t *testing.T) { check(t, e.complete(adminIdentity(t), nil, nil).Header()) })
	t.Run("login refused", func(t *testing.T) { check(t, e.complete(nil, nil, nil).Header()) })
}

// previewSection returns the preview section of one test identity.
func previewSection(t *testing.T, body, login string) string {
	t.Helper()
	for _, s := range strings.Split(body, `<section class="box preview`)[1:] {
		s = s[:strings.Index(s, "</section>")]
		if strings.Contains(s, "<code>"+login+"</code>") {
			return s
		}
	}
	t.Fatalf("no preview section for %s in:\n%s", login, body)
	return ""
}

func TestPreviewShowsMaskedRelease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.login()
	ids := testIdentities(t)
	protEPPN := e.deriver.EPPN(ids[1].Identity.StableID)
	plainEPPN := e.deriver.EPPN(ids[0].Identity.StableID)
	const maskedTag = "Skyddad identitet – maskerad"
	tests := []struct {
		name, vendor, login string
		present, absent     []string
	}{
		{"protected pupil, default masking", "learning-app", "elvira.h",
			[]string{maskedTag, protEPPN, "student@" + scope,
				"givenName, sisSchoolUnitCode"},
			append([]string{protectedGiven, protectedSurname, protSchool}, numberForms(protectedPNR)...)},
		{"unprotected pupil", "learning-app", "astrid.l",
			[]string{plainEPPN, "student@" + scope, plainGiven, plainSchool},
			[]string{maskedTag, plainSurname}},
		{"protected pupil, replacement rule", "classroom", "elvira.h",
			[]string{maskedTag, "00000000", "ersatt / replaced", protEPPN},
			[]string{protectedGiven, protSchool}},
		{"personal number opt-in, unprotected", "exam-records", "astrid.l",
			[]string{plainPNR, "personnummer / personal number"},
			[]string{maskedTag}},
		{"personal number opt-in, protected", "exam-records", "elvira.h",
			[]string{maskedTag, protEPPN},
			numberForms(protectedPNR)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.get("/admin/preview?vendor="+tt.vendor, c)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			s := previewSection(t, w.Body.String(), tt.login)
			if masked := strings.Contains(tt.login, "elvira"); strings.HasPrefix(s, " masked\"") != masked {
				t.Errorf("section marked masked: %v, want %v", !masked, masked)
			}
			for _, p := range tt.present {
				if !strings.Contains(s, p) {
					t.Errorf("missing %q in:\n%s", p, s)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(s, a) {
					t.Errorf("shows %q in:\n%s", a, s)
				}
			}
		})
	}
	t.Run("unknown vendor", func(t *testing.T) {
		w := e.get("/admin/preview?vendor=nope", c)
		if w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), `class="box preview`) {
			t.Errorf("status %d", w.Code)
		}
	})
	t.Run("no vendor chosen", func(t *testing.T) {
		w := e.get("/admin/preview", c)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `<option value="classroom"`) {
			t.Errorf("status %d", w.Code)
		}
	})
}

func TestSubjectNeverEchoesNumber(t *testing.T) {
	t.Parallel()
	typed := []struct {
		name, input string
	}{
		{"12 digits", plainPNR},
		{"12 digits with dash", plainPNR[:8] + "-" + plainPNR[8:]},
		{"10 digits with dash", plainPNR[2:8] + "-" + plainPNR[8:]},
		{"10 digits", plainPNR[2:]},
		{"with spaces", "  " + plainPNR + " "},
	}
	for _, format := range []string{"html", "csv", "json"} {
		for _, tt := range typed {
			t.Run(format+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				c, tok := e.login()
				w := e.post("/admin/subject", c, form("csrf", tok, "pnr", tt.input, "format", format))
				if w.Code != http.StatusOK {
					t.Fatalf("status %d", w.Code)
				}
				if _, got := e.subject.state(); !cmp.Equal(got, []string{fakeKey("pnr", plainPNR)}) {
					t.Errorf("lookup for the wrong number")
				}
				everything := w.Body.String()
				for k, v := range w.Header() {
					everything += "\n" + k + ": " + strings.Join(v, ",")
				}
				for _, f := range append(numberForms(plainPNR), strings.TrimSpace(tt.input)) {
					if strings.Contains(everything, f) {
						t.Errorf("response echoes the number as %q", f)
					}
				}
				if w.Header().Get("Location") != "" {
					t.Errorf("redirect after a lookup")
				}
				switch format {
				case "html":
					body := w.Body.String()
					for _, want := range []string{"<code>learning-app</code>", "Test Learning App", "<code>givenName</code>", "2026-02-18, 2026-02-19", "1 nekade"} {
						if !strings.Contains(body, want) {
							t.Errorf("result lacks %q", want)
						}
					}
					if !strings.Contains(body, `name="pnr" type="text"`) || strings.Contains(body, `name="pnr" type="text" value`) {
						t.Errorf("form not shown empty")
					}
				case "csv":
					if !strings.HasPrefix(w.Header().Get("Content-Disposition"), `attachment; filename="subject-access-20260220`) ||
						!strings.HasPrefix(w.Body.String(), "time,vendor,protocol,attributes,masked,outcome,reason,generation\n2026-02-18T10:00:00Z,learning-app,saml,eduPersonPrincipalName; givenName,false,released,") {
						t.Errorf("csv: %q\n%s", w.Header().Get("Content-Disposition"), w.Body.String())
					}
				case "json":
					var got struct {
						Records []struct {
							Vendor     string   `json:"vendor"`
							Attributes []string `json:"attributes"`
						} `json:"records"`
					}
					if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || len(got.Records) != 3 || got.Records[0].Vendor != "learning-app" {
						t.Errorf("json: %v %+v", err, got)
					}
				}
			})
		}
	}
}

func TestSubjectRefusesBadInput(t *testing.T) {
	t.Parallel()
	bad := plainPNR[:11] + string('0'+(plainPNR[11]-'0'+1)%10)
	tests := []struct {
		name, pnr, format string
	}{
		{"wrong control digit", bad, "html"},
		{"letters", "abc", "csv"},
		{"empty", "", "json"},
		{"unknown format", plainPNR, "xml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			c, tok := e.login()
			w := e.post("/admin/subject", c, form("csrf", tok, "pnr", tt.pnr, "format", tt.format))
			if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `role="alert"`) {
				t.Errorf("status %d", w.Code)
			}
			if tt.pnr != "" && strings.Contains(w.Body.String(), tt.pnr) {
				t.Errorf("input echoed")
			}
			if calls, _ := e.subject.state(); calls != 0 {
				t.Errorf("lookup ran for bad input")
			}
		})
	}
}

func TestSubjectAccessOptional(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(d *Deps) { d.SubjectAccess = nil; d.Protection = nil })
	c, tok := e.login()
	if strings.Contains(e.get("/admin/", c).Body.String(), `href="/admin/subject"`) {
		t.Errorf("navigation links to a page that is not configured")
	}
	for _, rq := range []request{
		{path: "/admin/subject", cookie: c},
		{method: http.MethodPost, path: "/admin/subject", cookie: c, form: form("csrf", tok, "pnr", plainPNR, "format", "html")},
		{path: "/admin/protection", cookie: c},
	} {
		if w := e.do(rq); w.Code != http.StatusNotFound {
			t.Errorf("%s %s: status %d", rq.method, rq.path, w.Code)
		}
	}
}

func TestProtectionRegister(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, tok := e.login()
	key := shortKey(mustPNR(t, protectedPNR))
	steps := []struct {
		name       string
		form       url.Values
		down       bool
		status     int
		message    string
		entries    int
		registerOp bool
	}{
		{"add", form("action", "add", "pnr", protectedPNR, "note", "ärende 12"), false, http.StatusOK, "The marking was added.", 1, true},
		{"add again, other form", form("action", "add", "pnr", protectedPNR[2:8]+"-"+protectedPNR[8:]), false, http.StatusConflict, "already marked", 1, true},
		{"bad note", form("action", "add", "pnr", plainPNR, "note", "bad"), false, http.StatusBadRequest, "The note was refused", 1, true},
		{"bad number", form("action", "add", "pnr", "19000101-0000"), false, http.StatusBadRequest, "not a valid", 1, false},
		{"unknown action", form("action", "purge", "pnr", protectedPNR), false, http.StatusBadRequest, "Unknown action", 1, false},
		{"register down", form("action", "add", "pnr", plainPNR), true, http.StatusServiceUnavailable, "could not be reached", 1, true},
		{"remove", form("action", "remove", "pnr", protectedPNR), false, http.StatusOK, "The marking was removed.", 0, true},
		{"remove again", form("action", "remove", "pnr", protectedPNR), false, http.StatusNotFound, "not marked", 0, true},
	}
	for _, s := range steps {
		before, _ := e.prot.count()
		e.prot.mu.Lock()
		e.prot.down = s.down
		e.prot.mu.Unlock()
		s.form.Set("csrf", tok)
		w := e.post("/admin/protection", c, s.form)
		e.prot.mu.Lock()
		e.prot.down = false
		e.prot.mu.Unlock()
		after, entries := e.prot.count()
		body := w.Body.String()
		if w.Code != s.status || !strings.Contains(body, s.message) || entries != s.entries || (after > before) != s.registerOp {
			t.Errorf("%s: status %d entries %d register called %v; want %d %d %v and %q",
				s.name, w.Code, entries, after > before, s.status, s.entries, s.registerOp, s.message)
		}
		for _, f := range append(numberForms(protectedPNR), numberForms(plainPNR)...) {
			if strings.Contains(body, f) {
				t.Errorf("%s: page shows a number", s.name)
			}
		}
	}
	// The list shows the key, date and note, never the number.
	e.post("/admin/protection", c, form("csrf", tok, "action", "add", "pnr", protectedPNR, "note", "ärende 13"))
	body := e.get("/admin/protection", c).Body.String()
	if !strings.Contains(body, "<code>"+key+"</code>") || !strings.Contains(body, "ärende 13") || !strings.Contains(body, "2026-02-20") {
		t.Errorf("list lacks the entry:\n%s", body)
	}
	if !strings.Contains(e.logs.String(), `"page":"protection","action":"add","outcome":"ok"`) {
		t.Errorf("admin action not logged:\n%s", e.logs.String())
	}
}

func TestVendorsPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.login()
	body := e.get("/admin/vendors", c).Body.String()
	for _, want := range []string{
		`id="v-learning-app"`, "Pupils log in; the given name greets them", "Skollagen (2010:800)", "PUB-TEST-001", "2099-12-31",
		"<code>https://learning.example/saml</code>", "<code>sisSchoolUnitCode</code>",
		// Masking rules and the default.
		"The teacher must recognise the pupil", "<code>00000000</code>", "sekretessmarkering",
		"undanhålls / withheld: <code>givenName, sisSchoolUnitCode</code>",
		// The personal number opt-in is highlighted.
		`<section class="box vendor pn" id="v-exam-records">`, "Personal numbers are released", "The national register is keyed by personal number",
		"agreement ended", "agreement ending",
		`href="/admin/preview?vendor=classroom"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("vendors page lacks %q", want)
		}
	}
	if strings.Contains(body, `<section class="box vendor pn" id="v-learning-app">`) {
		t.Errorf("vendor without opt-in highlighted")
	}
}

func TestOverview(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.login()
	e.prot.deps().Add(t.Context(), mustPNR(t, protectedPNR), "")
	body := e.get("/admin/", c).Body.String()
	for _, want := range []string{"Testkommunen", `<p class="num">3</p>`, `<p class="num">2</p>`, `<p class="num">1</p>`,
		"Ended agreements", "exam-records", "ending within 30 days", "Test Classroom", "Vendors receiving personal numbers"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.login()
	page := e.get("/admin/register", c).Body.String()
	for _, want := range []string{`href="/admin/register.csv"`, `href="/admin/register.json"`, "Test Learning App", "2099-12-31", "eduPersonPrincipalName, givenName"} {
		if !strings.Contains(page, want) {
			t.Errorf("register page lacks %q", want)
		}
	}
	tests := []struct {
		path, ctype, disposition, body string
	}{
		{"/admin/register.csv", "text/csv; charset=utf-8", `attachment; filename="release-register-20260220.csv"`, "vendor_id,display_name\nlearning-app,Test Learning App\n"},
		{"/admin/register.json", "application/json", `attachment; filename="release-register-20260220.json"`, `[{"vendor_id":"learning-app"}]` + "\n"},
	}
	for _, tt := range tests {
		w := e.get(tt.path, c)
		got := []string{w.Header().Get("Content-Type"), w.Header().Get("Content-Disposition"), w.Body.String()}
		if diff := cmp.Diff([]string{tt.ctype, tt.disposition, tt.body}, got); w.Code != http.StatusOK || diff != "" {
			t.Errorf("%s: status %d (-want +got):\n%s", tt.path, w.Code, diff)
		}
	}
	e2 := newEnv(t, func(d *Deps) { d.RegisterCSV = func(io.Writer) error { return errors.New("boom") } })
	c2, _ := e2.login()
	if w := e2.get("/admin/register.csv", c2); w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "boom") {
		t.Errorf("failed export: status %d", w.Code)
	}
}

func TestStoreDownFailsClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.login()
	e2 := newEnv(t, func(d *Deps) { d.Store = downStore{} })
	if w := e2.complete(adminIdentity(t), nil, nil); w.Code != http.StatusServiceUnavailable || sessionCookie(w) != nil {
		t.Errorf("login with the store down: status %d", w.Code)
	}
	if w := e2.get("/admin/", c); w.Code != http.StatusServiceUnavailable {
		t.Errorf("page with the store down: status %d", w.Code)
	}
}

type downStore struct{}

func (downStore) Put(context.Context, string, []byte, time.Duration) error { return store.ErrBackend }
func (downStore) Add(context.Context, string, []byte, time.Duration) error { return store.ErrBackend }
func (downStore) Get(context.Context, string) ([]byte, error)              { return nil, store.ErrBackend }
func (downStore) Take(context.Context, string) ([]byte, error)             { return nil, store.ErrBackend }
func (downStore) Delete(context.Context, string) error                     { return store.ErrBackend }
func (downStore) Ping(context.Context) error                               { return store.ErrBackend }

func TestOversizedFormRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, tok := e.login()
	w := e.post("/admin/protection", c, form("csrf", tok, "action", "add", "pnr", plainPNR, "note", string(bytes.Repeat([]byte("x"), maxForm))))
	if calls, _ := e.prot.count(); w.Code != http.StatusRequestEntityTooLarge || calls != 0 {
		t.Errorf("status %d, register calls %d", w.Code, calls)
	}
}
