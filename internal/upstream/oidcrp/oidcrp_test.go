package oidcrp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/mapping"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/testidp"
	"github.com/skolbro/skolbro/internal/testop"
	"github.com/skolbro/skolbro/internal/upstream/oidcrp"
)

func serveEditedDiscovery(w http.ResponseWriter, r *http.Request, h http.Handler, edit func(map[string]any)) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		http.Error(w, "bad discovery", http.StatusInternalServerError)
		return
	}
	edit(doc)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// TestCase34_UpstreamIDToken is SECURITY.md case 34: an ID token with the
// wrong iss, aud or nonce, expired, or not validly signed is refused, with
// nothing returned and no value in the error.
func TestCase34_UpstreamIDToken(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		fault  testop.Fault
		hook   func(map[string]any)
		rpSkew time.Duration // the RP's clock ahead of the IdP's
		reason string
	}{
		{name: "wrong iss", fault: testop.FaultWrongIssuer, reason: oidcrp.ReasonIDToken},
		{name: "wrong aud", fault: testop.FaultWrongAudience, reason: oidcrp.ReasonIDToken},
		{name: "wrong nonce", fault: testop.FaultWrongNonce, reason: oidcrp.ReasonNonce},
		{name: "no nonce", hook: func(c map[string]any) { delete(c, "nonce") }, reason: oidcrp.ReasonNonce},
		{name: "expired", fault: testop.FaultExpired, reason: oidcrp.ReasonExpired},
		{name: "expired by the RP's clock", rpSkew: testop.IDTokenLifetime + time.Second, reason: oidcrp.ReasonExpired},
		{name: "bad signature", fault: testop.FaultOtherKey, reason: oidcrp.ReasonIDToken},
		{name: "alg none", fault: testop.FaultAlgNone, reason: oidcrp.ReasonIDToken},
		{name: "unknown kid", fault: testop.FaultUnknownKID, reason: oidcrp.ReasonIDToken},
		{name: "HS256 keyed with the client secret", fault: testop.FaultHS256, reason: oidcrp.ReasonIDToken},
		{name: "no ID token", fault: testop.FaultNoIDToken, reason: oidcrp.ReasonIDToken},
		{name: "no sub", hook: func(c map[string]any) { delete(c, "sub") }, reason: oidcrp.ReasonIDToken},
		{name: "azp another client", hook: func(c map[string]any) {
			c["aud"] = []string{clientID, "another-client"}
			c["azp"] = "another-client"
		}, reason: oidcrp.ReasonIDToken},
		{name: "azp another client, one audience", hook: func(c map[string]any) { c["azp"] = "another-client" }, reason: oidcrp.ReasonIDToken},
		{name: "two audiences without azp", hook: func(c map[string]any) {
			c["aud"] = []string{clientID, "another-client"}
		}, reason: oidcrp.ReasonIDToken},
		{name: "auth_time not a number", hook: func(c map[string]any) { c["auth_time"] = "yesterday" }, reason: oidcrp.ReasonIDToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.op.SetFault(tc.fault)
			e.op.SetClaimsHook(tc.hook)
			cb := e.login(t, browserA, "anna.a", []byte("s"))
			e.rpClock.advance(tc.rpSkew)
			res, st, err := e.rp.HandleCallback(context.Background(), cb, browserA)
			refusal(t, res, st, err, tc.reason, http.StatusBadRequest, leaks(e.userByLogin(t, "anna.a"), cb)...)
		})
	}

	// The same IdP without a fault logs in: the refusals above are the
	// faults', not the set-up's.
	t.Run("control", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		cb := e.login(t, browserA, "anna.a", []byte("s"))
		e.rpClock.advance(testop.IDTokenLifetime - time.Second)
		if _, _, err := e.rp.HandleCallback(context.Background(), cb, browserA); err != nil {
			t.Fatalf("HandleCallback: %v", err)
		}
	})
}

func TestLoginReturnsClaims(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		login string
	}{
		{name: "pupil", login: "anna.a"},
		{name: "teacher in two schools", login: "david.d"},
		{name: "protected pupil", login: "eva.e"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			u := e.userByLogin(t, tc.login)
			cb := e.login(t, browserA, tc.login, []byte("flow-42"))
			res, st, err := e.rp.HandleCallback(context.Background(), cb, browserA)
			if err != nil {
				t.Fatalf("HandleCallback: %v", err)
			}
			if string(st) != "flow-42" {
				t.Errorf("state = %q, want flow-42", st)
			}
			nonce := res.Claims["nonce"]
			if len(nonce) != 1 || len(nonce[0]) != 43 {
				t.Errorf("nonce claim = %q, want one 43-character value", nonce)
			}
			delete(res.Claims, "nonce")

			at := t0.Unix()
			want := &oidcrp.Result{
				Subject: u.NameID,
				Claims: map[string][]string{
					"iss":                         {e.op.Issuer()},
					"aud":                         {clientID},
					"sub":                         {u.NameID},
					"iat":                         {strconv.FormatInt(at, 10)},
					"exp":                         {strconv.FormatInt(at+int64(testop.IDTokenLifetime/time.Second), 10)},
					"auth_time":                   {strconv.FormatInt(at, 10)},
					"acr":                         {testop.ACR},
					"amr":                         {"pwd"},
					"given_name":                  u.Attributes[testidp.AttrGivenName],
					"family_name":                 u.Attributes[testidp.AttrSurname],
					"name":                        u.Attributes[testidp.AttrDisplayName],
					"email":                       u.Attributes[testidp.AttrMail],
					testop.ClaimPrincipalName:     u.Attributes[testidp.AttrEPPN],
					testop.ClaimScopedAffiliation: u.Attributes[testidp.AttrScopedAffiliation],
					testop.ClaimSchoolUnitCodes:   u.Attributes[testidp.AttrSchoolUnitCode],
					testop.ClaimPersonalNumber:    u.Attributes[testidp.AttrPersonalNumber],
					testop.ClaimSecurityMarking:   u.Attributes[testidp.AttrSecurityMarking],
				},
				AuthnInstant: t0,
				AuthnContext: testop.ACR,
				AMR:          []string{"pwd"},
			}
			if g := u.Attributes[testidp.AttrSchoolGrade]; len(g) > 0 {
				want.Claims[testop.ClaimSchoolGrade] = g
			}
			if diff := cmp.Diff(want, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			in := res.Input()
			wantIn := mapping.Input{Subject: u.NameID, Attributes: res.Claims, AuthnInstant: t0, AuthnContext: testop.ACR, AMR: []string{"pwd"}}
			if diff := cmp.Diff(wantIn, in); diff != "" {
				t.Errorf("Input (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClaimsFlattening(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.op.SetClaimsHook(func(c map[string]any) {
		c["big"] = int64(9007199254740993) // above 2^53: must stay exact
		c["ratio"] = 0.5
		c["verified"] = true
		c["mixed"] = []any{"a", 1, false}
		c["object"] = map[string]any{"k": "v"}
		c["nested"] = []any{"a", map[string]any{"k": "v"}}
		c["null"] = nil
		c["empty"] = []string{}
	})
	cb := e.login(t, browserA, "anna.a", nil)
	res, _, err := e.rp.HandleCallback(context.Background(), cb, browserA)
	if err != nil {
		t.Fatalf("HandleCallback: %v", err)
	}
	got := map[string][]string{}
	for _, k := range []string{"big", "ratio", "verified", "mixed", "object", "nested", "null", "empty"} {
		if v, ok := res.Claims[k]; ok {
			got[k] = v
		}
	}
	want := map[string][]string{
		"big":      {"9007199254740993"},
		"ratio":    {"0.5"},
		"verified": {"true"},
		"mixed":    {"a", "1", "false"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
}

func TestStateReplayRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cb := e.login(t, browserA, "anna.a", nil)
	if _, _, err := e.rp.HandleCallback(context.Background(), cb, browserA); err != nil {
		t.Fatalf("first callback: %v", err)
	}
	res, st, err := e.rp.HandleCallback(context.Background(), cb, browserA)
	refusal(t, res, st, err, oidcrp.ReasonState, http.StatusBadRequest)
}

func TestConcurrentCallbacksOneWins(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cb := e.login(t, browserA, "anna.a", nil)
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, _, err := e.rp.HandleCallback(context.Background(), withQuery(cb, func(url.Values) {}), browserA)
			errs <- err
		}()
	}
	ok := 0
	for range n {
		if err := <-errs; err == nil {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("%d callbacks succeeded, want exactly 1", ok)
	}
}

// TestCase13_OtherBrowserDoesNotBlockVictim: a callback opened in another
// browser is refused without consuming the state (issue 19), so the
// browser that started the login still finishes it, once.
func TestCase13_OtherBrowserDoesNotBlockVictim(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cb := e.login(t, browserA, "anna.a", []byte("victim"))
	res, st, err := e.rp.HandleCallback(context.Background(), cb, browserB)
	refusal(t, res, st, err, oidcrp.ReasonBinding, http.StatusBadRequest)
	res, st, err = e.rp.HandleCallback(context.Background(), cb, browserA)
	if err != nil || res == nil || string(st) != "victim" {
		t.Fatalf("the owner's callback after another browser's: %v", err)
	}
	res, st, err = e.rp.HandleCallback(context.Background(), cb, browserA)
	refusal(t, res, st, err, oidcrp.ReasonState, http.StatusBadRequest)
}

func TestIdPErrorParameter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	authz := e.startLogin(t, browserA, nil)
	cb := e.choose(t, authz, "cancel", "1")
	res, st, err := e.rp.HandleCallback(context.Background(), cb, browserA)
	got := refusal(t, res, st, err, oidcrp.ReasonStatus, http.StatusForbidden)
	if got.UpstreamError != "access_denied" {
		t.Errorf("UpstreamError = %q, want access_denied", got.UpstreamError)
	}

	cases := []struct {
		name, reason, upstream string
		status                 int
		edit                   func(url.Values)
	}{
		{"unregistered code is not echoed", oidcrp.ReasonStatus, "other", http.StatusForbidden,
			func(q url.Values) { q.Set("error", "201203149826") }},
		{"error without state", oidcrp.ReasonStatus, "login_required", http.StatusForbidden,
			func(q url.Values) { q.Del("state"); q.Set("error", "login_required") }},
		{"error with a foreign state", oidcrp.ReasonState, "", http.StatusBadRequest,
			func(q url.Values) { q.Set("state", strings.Repeat("A", 43)); q.Set("error", "access_denied") }},
		{"error without state, iss of another IdP", oidcrp.ReasonIss, "", http.StatusBadRequest,
			func(q url.Values) {
				q.Del("state")
				q.Set("error", "access_denied")
				q.Set("iss", "https://evil.example")
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			cb := e.login(t, browserA, "anna.a", nil)
			res, st, err := e.rp.HandleCallback(context.Background(), withQuery(cb, tc.edit), browserA)
			got := refusal(t, res, st, err, tc.reason, tc.status, "201203149826")
			if got.UpstreamError != tc.upstream {
				t.Errorf("UpstreamError = %q, want %q", got.UpstreamError, tc.upstream)
			}
		})
	}
}

// TestIssParameter is RFC 9207: the iss parameter, when present, is the
// issuer; testop advertises it, so it must be present.
func TestIssParameter(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		edit func(url.Values)
	}{
		{"another issuer", func(q url.Values) { q.Set("iss", "https://evil.example"+opPath) }},
		{"trailing slash", func(q url.Values) { q.Set("iss", q.Get("iss")+"/") }},
		{"missing although advertised", func(q url.Values) { q.Del("iss") }},
		{"repeated", func(q url.Values) { q.Add("iss", q.Get("iss")) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			cb := e.login(t, browserA, "anna.a", nil)
			res, st, err := e.rp.HandleCallback(context.Background(), withQuery(cb, tc.edit), browserA)
			refusal(t, res, st, err, oidcrp.ReasonIss, http.StatusBadRequest)
		})
	}

	t.Run("missing and not advertised", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withDiscovery(func(d map[string]any) {
			delete(d, "authorization_response_iss_parameter_supported")
		}))
		cb := e.login(t, browserA, "anna.a", nil)
		cb = withQuery(cb, func(q url.Values) { q.Del("iss") })
		if _, _, err := e.rp.HandleCallback(context.Background(), cb, browserA); err != nil {
			t.Fatalf("HandleCallback: %v", err)
		}
	})
}

func TestStateParameter(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		edit func(url.Values)
	}{
		{"missing", func(q url.Values) { q.Del("state") }},
		{"malformed", func(q url.Values) { q.Set("state", "../../etc") }},
		{"unknown", func(q url.Values) { q.Set("state", strings.Repeat("A", 43)) }},
		{"repeated", func(q url.Values) { q.Add("state", q.Get("state")) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			cb := e.login(t, browserA, "anna.a", nil)
			res, st, err := e.rp.HandleCallback(context.Background(), withQuery(cb, tc.edit), browserA)
			refusal(t, res, st, err, oidcrp.ReasonState, http.StatusBadRequest)
		})
	}

	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		cb := e.login(t, browserA, "anna.a", nil)
		e.rpClock.advance(oidcrp.DefaultStateTTL)
		res, st, err := e.rp.HandleCallback(context.Background(), cb, browserA)
		refusal(t, res, st, err, oidcrp.ReasonState, http.StatusBadRequest)
	})

	t.Run("made by another RP sharing the store", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		other := newOP(t)
		cfg := other.config()
		cfg.Store = e.store
		cfg.Now = e.rpClock.now
		rp2, err := oidcrp.New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		cb := e.login(t, browserA, "anna.a", nil)
		res, st, err := rp2.HandleCallback(context.Background(), cb, browserA)
		refusal(t, res, st, err, oidcrp.ReasonState, http.StatusBadRequest)
	})
}

func TestCodeExchange(t *testing.T) {
	t.Parallel()
	t.Run("missing code", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		cb := e.login(t, browserA, "anna.a", nil)
		res, st, err := e.rp.HandleCallback(context.Background(), withQuery(cb, func(q url.Values) { q.Del("code") }), browserA)
		refusal(t, res, st, err, oidcrp.ReasonExchange, http.StatusBadRequest)
	})
	// A code from one login injected into another (another browser's
	// code, or a used one): the PKCE verifier does not match and the code
	// is spent.
	t.Run("code of another login", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		first := e.login(t, browserA, "anna.a", nil)
		if _, _, err := e.rp.HandleCallback(context.Background(), first, browserA); err != nil {
			t.Fatal(err)
		}
		second := e.login(t, browserB, "bertil.b", nil)
		code := first.URL.Query().Get("code")
		injected := withQuery(second, func(q url.Values) { q.Set("code", code) })
		res, st, err := e.rp.HandleCallback(context.Background(), injected, browserB)
		refusal(t, res, st, err, oidcrp.ReasonExchange, http.StatusBadRequest, code)
	})
	t.Run("token endpoint down", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		cb := e.login(t, browserA, "anna.a", nil)
		e.srv.CloseClientConnections()
		e.srv.Close()
		res, st, err := e.rp.HandleCallback(context.Background(), cb, browserA)
		refusal(t, res, st, err, oidcrp.ReasonExchange, http.StatusBadGateway)
	})
}

func TestStoreDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cb := e.login(t, browserA, "anna.a", nil)
	e.store.down.Store(true)

	res, st, err := e.rp.HandleCallback(context.Background(), cb, browserA)
	refusal(t, res, st, err, oidcrp.ReasonStoreUnavailable, http.StatusServiceUnavailable)
	if !errors.Is(err, store.ErrBackend) {
		t.Errorf("error %v does not wrap store.ErrBackend", err)
	}

	_, err = e.rp.StartLogin(context.Background(), browserA, nil)
	refusal(t, nil, nil, err, oidcrp.ReasonStoreUnavailable, http.StatusServiceUnavailable)

	// Recovery needs nothing but the store: the pending login is still there.
	e.store.down.Store(false)
	if _, _, err := e.rp.HandleCallback(context.Background(), cb, browserA); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestRequiredClaims(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		hd     any // nil: no hd claim
		reason string
	}{
		{name: "the school's domain", hd: "skola.example.se"},
		{name: "another domain", hd: "gmail.example", reason: oidcrp.ReasonClaim},
		{name: "no hd", reason: oidcrp.ReasonClaim},
		{name: "array containing it", hd: []string{"other.example", "skola.example.se"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, withConfig(func(c *oidcrp.Config) {
				c.RequiredClaims = map[string][]string{"hd": {"skola.example.se"}}
			}))
			e.op.SetClaimsHook(func(c map[string]any) {
				if tc.hd != nil {
					c["hd"] = tc.hd
				}
			})
			cb := e.login(t, browserA, "anna.a", nil)
			res, st, err := e.rp.HandleCallback(context.Background(), cb, browserA)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("HandleCallback: %v", err)
				}
				return
			}
			refusal(t, res, st, err, tc.reason, http.StatusForbidden, "gmail.example")
		})
	}
}

func TestClientAuthFollowsDiscovery(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		methods any // nil: not listed
		want    string
	}{
		{name: "both listed", methods: []string{"client_secret_post", "client_secret_basic"}, want: "basic"},
		{name: "post only", methods: []string{"private_key_jwt", "client_secret_post"}, want: "post"},
		{name: "not listed means basic", want: "basic"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, withDiscovery(func(d map[string]any) {
				delete(d, "token_endpoint_auth_methods_supported")
				if tc.methods != nil {
					d["token_endpoint_auth_methods_supported"] = tc.methods
				}
			}))
			cb := e.login(t, browserA, "anna.a", nil)
			if _, _, err := e.rp.HandleCallback(context.Background(), cb, browserA); err != nil {
				t.Fatalf("HandleCallback: %v", err)
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			if diff := cmp.Diff([]string{tc.want}, e.tokenAuth); diff != "" {
				t.Errorf("token requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStartLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	raw, err := e.rp.StartLogin(context.Background(), browserA, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if got := u.Scheme + "://" + u.Host + u.Path; got != e.op.Issuer()+"/authorize" {
		t.Errorf("endpoint = %q", got)
	}
	want := map[string]string{
		"response_type":         "code",
		"client_id":             clientID,
		"redirect_uri":          redirectURL,
		"scope":                 "openid profile email",
		"code_challenge_method": "S256",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) != 43 {
			t.Errorf("%s has %d characters, want 43", k, len(q.Get(k)))
		}
	}
	if q.Get("state") == q.Get("nonce") {
		t.Error("state and nonce are the same value")
	}
	if _, err := e.rp.StartLogin(context.Background(), "", nil); err == nil {
		t.Error("StartLogin accepted an empty binding")
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		cfg       func(*env, *oidcrp.Config)
		discovery func(map[string]any)
	}{
		{name: "issuer with a trailing slash", cfg: func(_ *env, c *oidcrp.Config) { c.Issuer += "/" }},
		{name: "discovery reports another issuer", discovery: func(d map[string]any) { d["issuer"] = "https://evil.example" }},
		{name: "plain http issuer", cfg: func(_ *env, c *oidcrp.Config) { c.Issuer = "http://idp.example.se" + opPath }},
		{name: "only symmetric and none algorithms", discovery: func(d map[string]any) {
			d["id_token_signing_alg_values_supported"] = []string{"HS256", "none"}
		}},
		{name: "no secret authentication", discovery: func(d map[string]any) {
			d["token_endpoint_auth_methods_supported"] = []string{"private_key_jwt"}
		}},
		{name: "http token endpoint", discovery: func(d map[string]any) {
			d["token_endpoint"] = "http://idp.example/token"
		}},
		{name: "discovery larger than 1 MiB", discovery: func(d map[string]any) {
			d["padding"] = strings.Repeat("x", oidcrp.MaxResponseBytes)
		}},
		{name: "no openid scope", cfg: func(_ *env, c *oidcrp.Config) { c.Scopes = []string{"profile"} }},
		{name: "no client secret", cfg: func(_ *env, c *oidcrp.Config) { c.ClientSecret = "" }},
		{name: "nil store", cfg: func(_ *env, c *oidcrp.Config) { c.Store = nil }},
		{name: "redirect with fragment", cfg: func(_ *env, c *oidcrp.Config) { c.RedirectURL += "#x" }},
		{name: "state TTL too long", cfg: func(_ *env, c *oidcrp.Config) { c.StateTTL = 2 * time.Hour }},
		{name: "discovery not reachable", cfg: func(e *env, c *oidcrp.Config) { e.srv.Close() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newOP(t)
			e.discoverFn = tc.discovery
			e.store = &flakyStore{}
			cfg := e.config()
			if tc.cfg != nil {
				tc.cfg(e, &cfg)
			}
			if _, err := oidcrp.New(context.Background(), cfg); err == nil {
				t.Fatal("New accepted the configuration")
			}
		})
	}
	t.Run("control", func(t *testing.T) {
		t.Parallel()
		e := newOP(t)
		e.store = &flakyStore{}
		if _, err := oidcrp.New(context.Background(), e.config()); err != nil {
			t.Fatalf("New: %v", err)
		}
	})
}

// TestDiscoveryRedirectNotFollowed: the RP's HTTP client follows no
// redirect, so discovery behind one fails instead of trusting another host.
func TestDiscoveryRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	e := newOP(t)
	mux := http.NewServeMux()
	redir := httptest.NewTLSServer(mux)
	t.Cleanup(redir.Close)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, e.op.Issuer()+"/.well-known/openid-configuration", http.StatusFound)
	})
	e.store = &flakyStore{}
	cfg := e.config()
	cfg.Issuer = redir.URL
	cfg.HTTPClient = redir.Client()
	// Were the redirect followed, New would fail on the issuer instead.
	_, err := oidcrp.New(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "302") {
		t.Fatalf("New = %v, want a refusal of the 302", err)
	}
}
