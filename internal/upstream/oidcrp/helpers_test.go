package oidcrp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/testidp"
	"github.com/skolbro/skolbro/internal/testop"
	"github.com/skolbro/skolbro/internal/upstream/oidcrp"
)

// t0 is the fixed time the tests run at.
var t0 = time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC)

const (
	clientID     = "skolbro-bridge"
	clientSecret = "s3cret-for-tests-only-0123456789abcdef"
	redirectURL  = "https://bridge.example.se/oidc/rp/callback"
	scope        = "skola.example.se"
	opPath       = "/demo/oidc-idp"
	browserA     = "browser-binding-A"
	browserB     = "browser-binding-B"
)

// clock is a settable clock, safe for concurrent use.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return t0.Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// flakyStore is a Memory store that can be switched off, like a Redis
// that went away.
type flakyStore struct {
	*store.Memory
	down atomic.Bool
}

var errDown = fmt.Errorf("test: connection refused: %w", store.ErrBackend)

func (s *flakyStore) Put(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	if s.down.Load() {
		return errDown
	}
	return s.Memory.Put(ctx, k, v, ttl)
}

func (s *flakyStore) Take(ctx context.Context, k string) ([]byte, error) {
	if s.down.Load() {
		return nil, errDown
	}
	return s.Memory.Take(ctx, k)
}

// env is one IdP (testop over TLS) and one RP, with their own store and
// clocks: every test gets a fresh one and may run in parallel.
type env struct {
	op      *testop.OP
	srv     *httptest.Server
	rp      *oidcrp.RP
	store   *flakyStore
	opClock *clock
	rpClock *clock
	browser *http.Client
	users   []testidp.User

	mu         sync.Mutex
	tokenAuth  []string // "basic" or "post", per token request
	discoverFn func(map[string]any)
}

type envOption func(*env, *oidcrp.Config)

// withDiscovery edits the discovery document the IdP serves.
func withDiscovery(edit func(map[string]any)) envOption {
	return func(e *env, _ *oidcrp.Config) { e.discoverFn = edit }
}

func withConfig(edit func(*oidcrp.Config)) envOption {
	return func(_ *env, c *oidcrp.Config) { edit(c) }
}

// newOP starts testop on a TLS server below opPath. The test server's
// mux also records how the client authenticated at the token endpoint
// and lets tests edit discovery.
func newOP(t *testing.T) *env {
	t.Helper()
	e := &env{opClock: &clock{}, rpClock: &clock{}, users: testidp.DemoUsers(scope)}
	mux := http.NewServeMux()
	e.srv = httptest.NewTLSServer(mux)
	t.Cleanup(e.srv.Close)
	e.op = testop.New(e.srv.URL+opPath, e.users, clientID, clientSecret, redirectURL)
	e.op.Now = e.opClock.now
	h := e.op.Handler()
	mux.HandleFunc(opPath+"/", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case opPath + "/token":
			how := "post"
			if _, _, ok := r.BasicAuth(); ok {
				how = "basic"
			}
			e.mu.Lock()
			e.tokenAuth = append(e.tokenAuth, how)
			e.mu.Unlock()
		case opPath + "/.well-known/openid-configuration":
			e.mu.Lock()
			edit := e.discoverFn
			e.mu.Unlock()
			if edit != nil {
				serveEditedDiscovery(w, r, h, edit)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
	b := *e.srv.Client()
	b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	e.browser = &b
	return e
}

// config returns the RP configuration for e.
func (e *env) config() oidcrp.Config {
	return oidcrp.Config{
		Issuer:       e.op.Issuer(),
		ClientID:     clientID,
		ClientSecret: clientSecret,
		RedirectURL:  redirectURL,
		Store:        e.store,
		HTTPClient:   e.srv.Client(),
		Now:          e.rpClock.now,
	}
}

// newEnv starts an IdP and an RP for it.
func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	e := newOP(t)
	e.store = &flakyStore{Memory: store.NewMemory(e.rpClock.now)}
	cfg := e.config()
	for _, o := range opts {
		o(e, &cfg)
	}
	rp, err := oidcrp.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.rp = rp
	return e
}

// startLogin runs StartLogin for binding and fetches the IdP's picker; it
// returns the authorization URL.
func (e *env) startLogin(t *testing.T, binding string, state []byte) *url.URL {
	t.Helper()
	raw, err := e.rp.StartLogin(context.Background(), binding, state)
	if err != nil {
		t.Fatalf("StartLogin: %v", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.browser.Get(raw)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `name="user"`) {
		t.Fatalf("authorize GET: status %d, no picker", resp.StatusCode)
	}
	return u
}

// choose posts the picker's form (the authorization parameters plus the
// button) and returns the callback request the browser would send.
func (e *env) choose(t *testing.T, authz *url.URL, button, value string) *http.Request {
	t.Helper()
	form := authz.Query()
	form.Set(button, value)
	target := *authz
	target.RawQuery = ""
	resp, err := e.browser.PostForm(target.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, redirectURL+"?") {
		t.Fatalf("authorize POST: status %d, Location %q", resp.StatusCode, loc)
	}
	return httptest.NewRequest(http.MethodGet, loc, nil)
}

// login runs a login of user for binding up to the callback request.
func (e *env) login(t *testing.T, binding, user string, state []byte) *http.Request {
	t.Helper()
	return e.choose(t, e.startLogin(t, binding, state), "user", user)
}

// withQuery returns a copy of r with its query edited.
func withQuery(r *http.Request, edit func(url.Values)) *http.Request {
	u := *r.URL
	q := u.Query()
	edit(q)
	u.RawQuery = q.Encode()
	return httptest.NewRequest(http.MethodGet, u.String(), nil)
}

// refusal checks that err is an *oidcrp.Error with reason and status, that
// nothing was returned with it, and that its text carries none of leak.
func refusal(t *testing.T, res *oidcrp.Result, state []byte, err error, reason string, status int, leak ...string) *oidcrp.Error {
	t.Helper()
	if res != nil || state != nil {
		t.Errorf("refusal returned a result or state")
	}
	var e *oidcrp.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *oidcrp.Error", err)
	}
	if e.Reason != reason || e.Status != status {
		t.Errorf("refused with %q/%d (%v), want %q/%d", e.Reason, e.Status, err, reason, status)
	}
	for _, s := range leak {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error text carries %q", s)
		}
	}
	return e
}

// userByLogin returns the demo user login.
func (e *env) userByLogin(t *testing.T, login string) testidp.User {
	t.Helper()
	for _, u := range e.users {
		if u.Login == login {
			return u
		}
	}
	t.Fatalf("no demo user %q", login)
	return testidp.User{}
}

// leaks lists what no error text may carry for a callback: the code, the
// user's attribute values, the issuer and the values the faults write.
func leaks(u testidp.User, cb *http.Request) []string {
	out := []string{cb.URL.Query().Get("code"), u.NameID, "another-client", "/other"}
	for _, vs := range u.Attributes {
		out = append(out, vs...)
	}
	return out
}
