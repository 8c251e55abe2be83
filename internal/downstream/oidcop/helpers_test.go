package oidcop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/gorilla/mux"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/release"
	"github.com/skolbro/skolbro/internal/store"
)

const (
	testIssuer   = "https://bro.skola.example.se"
	jwtClientID  = "vendor-a-client"
	basicClient  = "vendor-b-client"
	jwtRedirect  = "https://app.vendor-a.example/callback"
	basicRedir   = "https://vendor-b.example/oidc/cb"
	basicSecret  = "s3cret-s3cret-s3cret-s3cret-s3cret-0123"
	testVerifier = "skolbro-test-verifier-0123456789-abcdefghijklmnop"
)

// Test keys are made once: RSA generation is slow under -race. They are
// never changed after creation.
var testKeys = sync.OnceValue(func() map[string]crypto.Signer {
	m := map[string]crypto.Signer{}
	for _, name := range []string{"op-ec", "op-ec-next", "client-ec", "client-ec-other"} {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		m[name] = k
	}
	for _, name := range []string{"op-rsa", "client-rsa"} {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		m[name] = k
	}
	return m
})

func testKey(name string) crypto.Signer { return testKeys()[name] }

// clock is a settable clock for one test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a provider with two clients: one authenticating with
// private_key_jwt (EC and RSA keys), one with client_secret_basic.
type fixture struct {
	t      *testing.T
	clock  *clock
	store  *store.Memory
	p      *Provider
	router *mux.Router
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	c := newClock()
	keys, err := NewKeySet([]KeySpec{
		{KID: "op-ec-1", Signer: testKey("op-ec"), Alg: jose.ES256, UseFrom: c.Now().Add(-time.Hour)},
		{KID: "op-rsa-1", Signer: testKey("op-rsa"), Alg: jose.RS256, UseFrom: c.Now().Add(-time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	secretHash := sha256.Sum256([]byte(basicSecret))
	st := store.NewMemory(c.Now)
	p := &Provider{
		Issuer: testIssuer,
		Keys:   keys,
		Clients: map[string]*Client{
			jwtClientID: {
				ID: jwtClientID, VendorID: "vendor-a", RedirectURIs: []string{jwtRedirect},
				Auth: policy.PrivateKeyJWT, IDTokenAlg: jose.ES256,
				JWKS: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
					{Key: testKey("client-ec").Public(), KeyID: "a-ec", Use: "sig"},
					{Key: testKey("client-rsa").Public(), KeyID: "a-rsa"},
				}},
			},
			basicClient: {
				ID: basicClient, VendorID: "vendor-b", RedirectURIs: []string{basicRedir},
				Auth: policy.ClientSecretBasic, IDTokenAlg: jose.RS256, SecretHash: secretHash[:],
			},
		},
		Store: st,
		Now:   c.Now,
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	p.Routes(r)
	return &fixture{t: t, clock: c, store: st, p: p, router: r}
}

func challengeOf(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authParams are valid authorization request parameters for client.
func authParams(client, redirect string) url.Values {
	return url.Values{
		"client_id":             {client},
		"redirect_uri":          {redirect},
		"response_type":         {"code"},
		"scope":                 {"openid profile"},
		"state":                 {"st-123"},
		"nonce":                 {"n-456"},
		"code_challenge":        {challengeOf(testVerifier)},
		"code_challenge_method": {"S256"},
	}
}

func (f *fixture) parse(v url.Values) (*AuthRequest, *Error) {
	r := httptest.NewRequest(http.MethodGet, testIssuer+PathAuthorize+"?"+v.Encode(), nil)
	return f.p.ParseAuthorize(r)
}

func testRelease(vendor, sub string) *release.Released {
	def := func(name string) attr.Def {
		d, ok := attr.Lookup(name)
		if !ok {
			panic(name)
		}
		return d
	}
	return &release.Released{
		VendorID: vendor,
		Sub:      sub,
		Attributes: []release.Attribute{
			{Def: def(attr.EPPN), Values: []string{"abc123@skola.example.se"}},
			{Def: def(attr.ScopedAffiliation), Values: []string{"student@skola.example.se"}},
			{Def: def(attr.GivenName), Values: []string{"Testa"}},
			{Def: def(attr.SchoolUnitCode), Values: []string{"12345678", "87654321"}},
		},
		AuthnInstant: time.Date(2026, 3, 2, 7, 59, 0, 0, time.UTC),
		AuthnContext: "http://id.skolfederation.se/loa/2fa",
		Masked:       true,
	}
}

// code runs ParseAuthorize and Complete for client and returns the code.
func (f *fixture) code(client, redirect string) string {
	f.t.Helper()
	req, perr := f.parse(authParams(client, redirect))
	if perr != nil {
		f.t.Fatalf("ParseAuthorize: %v", perr)
	}
	vendor := f.p.Clients[client].VendorID
	loc, err := f.p.Complete(context.Background(), req, testRelease(vendor, "sub-"+vendor))
	if err != nil {
		f.t.Fatalf("Complete: %v", err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		f.t.Fatal(err)
	}
	return u.Query().Get("code")
}

// assertion makes a client assertion for the JWT client, signed by key
// under kid with alg; mutate changes the claims first.
func (f *fixture) assertion(key crypto.Signer, kid string, alg jose.SignatureAlgorithm, mutate func(map[string]any)) string {
	f.t.Helper()
	now := f.clock.Now()
	claims := map[string]any{
		"iss": jwtClientID,
		"sub": jwtClientID,
		"aud": testIssuer + PathToken,
		"exp": now.Add(2 * time.Minute).Unix(),
		"iat": now.Unix(),
		"jti": randomID(f.t),
	}
	if mutate != nil {
		mutate(claims)
	}
	return signJWT(f.t, jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, claims)
}

func signJWT(t *testing.T, key jose.SigningKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomID(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// tokenForm is a valid code exchange form for the JWT client.
func (f *fixture) jwtTokenForm(code string) url.Values {
	return url.Values{
		"grant_type":            {"authorization_code"},
		"code":                  {code},
		"redirect_uri":          {jwtRedirect},
		"code_verifier":         {testVerifier},
		"client_assertion_type": {JWTBearerAssertion},
		"client_assertion":      {f.assertion(testKey("client-ec"), "a-ec", jose.ES256, nil)},
	}
}

func basicTokenForm(code string) url.Values {
	return url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {basicRedir},
		"code_verifier": {testVerifier},
	}
}

// do sends a request through the provider's routes.
func (f *fixture) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.router.ServeHTTP(w, r)
	return w
}

func (f *fixture) postToken(form url.Values, basicUser, basicPass string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, testIssuer+PathToken, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		r.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	return f.do(r)
}

func (f *fixture) userinfo(token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, testIssuer+PathUserinfo, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return f.do(r)
}

// decodeTokenResponse returns the token response or the error code.
func decodeTokenResponse(t *testing.T, w *httptest.ResponseRecorder) (tokenResponse, string) {
	t.Helper()
	if w.Code != http.StatusOK {
		var e tokenError
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
			t.Fatalf("status %d, body not JSON: %v", w.Code, err)
		}
		return tokenResponse{}, e.Error
	}
	var tr tokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil {
		t.Fatal(err)
	}
	return tr, ""
}

// idTokenClaims verifies an ID token against the provider's JWKS at the
// fixture's current time and returns its claims and kid.
func (f *fixture) idTokenClaims(raw string) (map[string]any, string) {
	f.t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		f.t.Fatal(err)
	}
	kid := tok.Headers[0].KeyID
	set := f.p.Keys.JWKS(f.clock.Now())
	keys := set.Key(kid)
	if len(keys) != 1 {
		f.t.Fatalf("kid %q not in the JWKS", kid)
	}
	var claims map[string]any
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		f.t.Fatal(err)
	}
	return claims, kid
}

// putGrant stores g under code as Complete would.
func putGrant(t *testing.T, f *fixture, code string, g grant) {
	t.Helper()
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Put(context.Background(), prefixCode+grantID(g.Request.ClientID, code), b, MaxCodeTTL); err != nil {
		t.Fatal(err)
	}
}

func httptestPost(target, body, contentType string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	return r
}

func httptestGet(target string) *http.Request {
	return httptest.NewRequest(http.MethodGet, target, nil)
}

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return m
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func newRouter(p *Provider) *mux.Router {
	r := mux.NewRouter()
	p.Routes(r)
	return r
}

func doWith(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}
