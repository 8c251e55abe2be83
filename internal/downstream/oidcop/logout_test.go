package oidcop

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const basicPostLogout = "https://vendor-b.example/logged-out"

// idTokenWithSID runs a whole code flow for the basic client with sid and
// returns the ID token.
func (f *fixture) idTokenWithSID(sid string) string {
	f.t.Helper()
	f.p.Clients[basicClient].PostLogoutRedirectURIs = []string{basicPostLogout}
	req, perr := f.parse(authParams(basicClient, basicRedir))
	if perr != nil {
		f.t.Fatal(perr)
	}
	loc, err := f.p.CompleteSession(context.Background(), req, testRelease("vendor-b", "sub-vendor-b"), sid)
	if err != nil {
		f.t.Fatal(err)
	}
	u, _ := url.Parse(loc)
	tr, code := decodeTokenResponse(f.t, f.postToken(basicTokenForm(u.Query().Get("code")), basicClient, basicSecret))
	if code != "" {
		f.t.Fatalf("token: %s", code)
	}
	return tr.IDToken
}

func endSession(q url.Values) *http.Request {
	return httptest.NewRequest(http.MethodGet, testIssuer+PathEndSession+"?"+q.Encode(), nil)
}

func TestIDTokenCarriesSID(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	claims, _ := f.idTokenClaims(f.idTokenWithSID("sid-1"))
	if claims["sid"] != "sid-1" {
		t.Errorf("sid = %v, want the session's", claims["sid"])
	}
}

// TestCase50_EndSessionPostLogoutRedirectExact: the post_logout_redirect_uri
// must be one the client registered, byte for byte, and the hint the
// provider's own ID token.
func TestCase50_EndSessionPostLogoutRedirectExact(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	hint := f.idTokenWithSID("sid-1")
	es, perr := f.p.ParseEndSession(endSession(url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {basicPostLogout}, "state": {"s1"}}))
	if perr != nil {
		t.Fatalf("a valid request was refused: %v", perr)
	}
	if es.ClientID != basicClient || es.SID != "sid-1" || es.Sub != "sub-vendor-b" || es.PostLogoutRedirect != basicPostLogout || es.State != "s1" {
		t.Errorf("parsed %+v", es)
	}
	if got := f.p.PostLogoutURL(es.PostLogoutRedirect, es.State); got != basicPostLogout+"?state=s1" {
		t.Errorf("post-logout URL %q", got)
	}

	other, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: testKey("client-ec"), KeyID: "op-ec-1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := jwt.Signed(other).Claims(map[string]any{"iss": testIssuer, "aud": basicClient, "sub": "sub-vendor-b", "sid": "sid-1"}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		q    url.Values
	}{
		{"other host", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/logged-out"}}},
		{"trailing slash", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {basicPostLogout + "/"}}},
		{"upper case", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {strings.ToUpper(basicPostLogout)}}},
		{"extra query", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {basicPostLogout + "?a=b"}}},
		{"another client's redirect URI", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {jwtRedirect}}},
		{"no client named", url.Values{"post_logout_redirect_uri": {basicPostLogout}}},
		{"client_id not the hint's audience", url.Values{"id_token_hint": {hint}, "client_id": {jwtClientID}}},
		{"hint signed by another key", url.Values{"id_token_hint": {forged}}},
		{"hint not a JWT", url.Values{"id_token_hint": {"x.y.z"}}},
		{"parameter repeated", url.Values{"id_token_hint": {hint, hint}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, perr := f.p.ParseEndSession(endSession(tc.q))
			if perr == nil {
				t.Fatalf("accepted: %+v", es)
			}
			if perr.Redirect != "" {
				t.Errorf("a refused end-session request redirects to %q", perr.Redirect)
			}
		})
	}
}

// TestBackchannelLogoutToken: the logout token is signed, typed
// logout+jwt, for the client, with the back-channel event, sub and sid,
// and no nonce; a vendor that does not confirm, or answers too late, is
// an error.
func TestBackchannelLogoutToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var mu sync.Mutex // the handler runs on the server's goroutines
	var got url.Values
	status := http.StatusOK
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-block:
			case <-r.Context().Done():
			}
			return
		}
		_ = r.ParseForm()
		mu.Lock()
		defer mu.Unlock()
		got = r.PostForm
		w.WriteHeader(status)
	}))
	defer srv.Close()
	defer close(block)
	c := f.p.Clients[basicClient]
	c.BackchannelLogoutURI = srv.URL + "/bc"
	if err := f.p.BackchannelLogout(context.Background(), c, "sub-vendor-b", "sid-1"); err != nil {
		t.Fatalf("a confirmed logout: %v", err)
	}
	mu.Lock()
	token := got.Get("logout_token")
	mu.Unlock()
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if typ := tok.Headers[0].ExtraHeaders["typ"]; typ != "logout+jwt" {
		t.Errorf("typ %v, want logout+jwt", typ)
	}
	claims, _ := f.idTokenClaims(token)
	events, _ := claims["events"].(map[string]any)
	if _, ok := events[BackchannelEvent]; !ok || claims["sid"] != "sid-1" || claims["sub"] != "sub-vendor-b" ||
		claims["aud"] != basicClient || claims["iss"] != testIssuer || claims["jti"] == nil {
		t.Errorf("logout token claims %v", claims)
	}
	if _, ok := claims["nonce"]; ok {
		t.Errorf("a logout token carries a nonce")
	}

	mu.Lock()
	status = http.StatusBadRequest
	mu.Unlock()
	if err := f.p.BackchannelLogout(context.Background(), c, "sub-vendor-b", "sid-1"); err == nil {
		t.Errorf("a vendor answering 400 counted as logged out")
	}
	c.BackchannelLogoutURI = srv.URL + "/slow"
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := f.p.BackchannelLogout(ctx, c, "sub-vendor-b", "sid-1"); err == nil {
		t.Errorf("a vendor that never answers counted as logged out")
	}
}

func TestFrontchannelURL(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := &Client{FrontchannelLogoutURI: "https://vendor-b.example/fc?x=1"}
	u, err := url.Parse(f.p.FrontchannelURL(c, "sid-1"))
	if err != nil {
		t.Fatal(err)
	}
	if q := u.Query(); q.Get("iss") != testIssuer || q.Get("sid") != "sid-1" || q.Get("x") != "1" {
		t.Errorf("front-channel URL %s", u)
	}
}
