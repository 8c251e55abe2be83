package oidcop

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The fuzz targets below run the provider's hostile-input surfaces
// (SECURITY.md case 19 for the OP): the authorization request, the token
// request, and client assertions. Each builds a fresh fixture per input,
// so no input depends on state left by another.
//
// Seeds must stay valid in every fuzz worker process, and the worker
// processes generate their own testKeys. So the inputs that are meant to
// succeed use what is the same in every process: a client key derived from
// a fixed string, the fixture's fixed clock and a deterministic Rand that
// makes the issued codes predictable.

// fuzzJTI is the jti of the valid seed assertions; every input gets a
// fresh store, so it is never a replay.
const fuzzJTI = "fuzz-jti-0001"

// fuzzClientKey is the JWT client's P-256 key, derived from a fixed string
// so that seeds signed with it verify in every process. TEST ONLY.
func fuzzClientKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	d := sha256.Sum256([]byte("skolbro oidcop fuzz client key, TEST ONLY"))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// detRand is a deterministic byte stream (SHA-256 of a counter): as the
// provider's Rand it makes the codes a fixture issues the same in every
// process.
type detRand struct {
	ctr uint64
	buf []byte
}

func (r *detRand) Read(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(r.buf) == 0 {
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], r.ctr)
			r.ctr++
			sum := sha256.Sum256(b[:])
			r.buf = sum[:]
		}
		c := copy(p, r.buf)
		r.buf = r.buf[c:]
		p = p[c:]
	}
	return n, nil
}

// expectedCodes returns the first n codes a provider with a fresh detRand
// issues, in order (newSecret: 32 bytes, base64url).
func expectedCodes(n int) []string {
	r := &detRand{}
	out := make([]string, n)
	for i := range out {
		b := make([]byte, 32)
		_, _ = r.Read(b)
		out[i] = base64.RawURLEncoding.EncodeToString(b)
	}
	return out
}

// newFuzzFixture is newFixture with a deterministic Rand and the JWT
// client's EC key under kid "a-ec" replaced by fuzzClientKey. The client
// is copied, not changed in place.
func newFuzzFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	f.p.Rand = &detRand{}
	c := *f.p.Clients[jwtClientID]
	c.JWKS = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: fuzzClientKey(t).Public(), KeyID: "a-ec", Use: "sig"},
		{Key: testKey("client-rsa").Public(), KeyID: "a-rsa"},
	}}
	f.p.Clients[jwtClientID] = &c
	if err := f.p.Validate(); err != nil {
		t.Fatal(err)
	}
	return f
}

// fuzzAssertionClaims are valid client assertion claims at the fixture
// clock's time.
func fuzzAssertionClaims() map[string]any {
	now := newClock().Now()
	return map[string]any{
		"iss": jwtClientID, "sub": jwtClientID, "aud": testIssuer + PathToken,
		"exp": now.Add(2 * time.Minute).Unix(), "iat": now.Unix(), "jti": fuzzJTI,
	}
}

// signFuzzJWT signs claims like signJWT, for a testing.F as well.
func signFuzzJWT(tb testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	tb.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// noneJWT is an alg none token, built by hand as unsignedJWT does.
func noneJWT(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	h, err := json.Marshal(map[string]string{"alg": "none", "kid": "a-ec", "typ": "JWT"})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

// FuzzAuthorize fuzzes GET /oidc/authorize: the parameters one by one,
// plus a raw query appended to them and on its own. An accepted request
// names a registered client, exactly one of its redirect URIs, an S256
// challenge; an error redirects only to a registered URI of the client the
// request names, adding only error, error_description, state and iss.
func FuzzAuthorize(f *testing.F) {
	challenge := challengeOf(testVerifier)
	type params struct {
		clientID, redirectURI, responseType, scope, state, nonce, challenge, method, prompt, raw string
	}
	valid := func(client, redirect string) params {
		return params{client, redirect, "code", "openid profile", "st-123", "n-456", challenge, "S256", "", ""}
	}
	seeds := []params{
		valid(jwtClientID, jwtRedirect),
		valid(basicClient, basicRedir),
	}
	change := func(p params, fn func(*params)) params { fn(&p); return p }
	seeds = append(seeds,
		change(valid(jwtClientID, jwtRedirect), func(p *params) { p.prompt = "none" }),
		change(valid(jwtClientID, basicRedir), func(p *params) {}),
		change(valid(jwtClientID, jwtRedirect+"/"), func(p *params) {}),
		change(valid(jwtClientID, jwtRedirect+"?next=https://evil.example"), func(p *params) {}),
		change(valid("nobody", jwtRedirect), func(p *params) {}),
		change(valid(jwtClientID, jwtRedirect), func(p *params) { p.method = "plain"; p.challenge = testVerifier }),
		change(valid(jwtClientID, jwtRedirect), func(p *params) { p.method = "" }),
		change(valid(jwtClientID, jwtRedirect), func(p *params) { p.responseType = "code id_token" }),
		change(valid(jwtClientID, jwtRedirect), func(p *params) { p.scope = "profile" }),
		change(valid(jwtClientID, jwtRedirect), func(p *params) { p.state = "a&iss=https://evil.example&b" }),
		change(valid(jwtClientID, jwtRedirect), func(p *params) { p.raw = "redirect_uri=https://evil.example/cb" }),
		change(valid(jwtClientID, jwtRedirect), func(p *params) { p.raw = "client_id=" + basicClient }),
		change(valid(jwtClientID, jwtRedirect), func(p *params) { p.raw = "request=eyJhbGciOiJub25lIn0.e30." }),
		change(valid(jwtClientID, jwtRedirect), func(p *params) { p.raw = "max_age=-1&response_mode=fragment" }),
		change(valid(jwtClientID, jwtRedirect), func(p *params) { p.raw = "%zz" }),
		params{raw: url.Values{"client_id": {jwtClientID}, "redirect_uri": {jwtRedirect}, "response_type": {"code"},
			"scope": {"openid"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}.Encode()},
	)
	for _, s := range seeds {
		f.Add(s.clientID, s.redirectURI, s.responseType, s.scope, s.state, s.nonce, s.challenge, s.method, s.prompt, s.raw)
	}

	f.Fuzz(func(t *testing.T, clientID, redirectURI, responseType, scope, state, nonce, challenge, method, prompt, raw string) {
		fx := newFixture(t)
		v := url.Values{}
		for name, value := range map[string]string{
			"client_id": clientID, "redirect_uri": redirectURI, "response_type": responseType,
			"scope": scope, "state": state, "nonce": nonce, "code_challenge": challenge,
			"code_challenge_method": method, "prompt": prompt,
		} {
			// Empty means absent here; the raw query reaches present-but-empty.
			if value != "" {
				v.Set(name, value)
			}
		}
		queries := []string{v.Encode()}
		if raw != "" {
			queries = append(queries, joinQuery(v.Encode(), raw), raw)
		}
		for _, q := range queries {
			checkAuthorize(t, fx, q)
		}
	})
}

func joinQuery(a, b string) string {
	if a == "" {
		return b
	}
	return a + "&" + b
}

// checkAuthorize runs ParseAuthorize on one raw query and checks the
// invariants against an independent reading of the same query.
func checkAuthorize(t *testing.T, fx *fixture, rawQuery string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, testIssuer+PathAuthorize, nil)
	r.URL.RawQuery = rawQuery
	req, perr := fx.p.ParseAuthorize(r)

	// What the request names, read independently: a client and a redirect
	// URI are trusted only when each is given once and registered.
	q, qerr := url.ParseQuery(rawQuery)
	var client *Client
	trusted := false
	if qerr == nil && len(q["client_id"]) == 1 {
		client = fx.p.Clients[q.Get("client_id")]
		if client != nil && len(q["redirect_uri"]) == 1 {
			trusted = registeredCount(client, q.Get("redirect_uri")) == 1
		}
	}

	if perr == nil {
		if req == nil {
			t.Fatal("no request and no error")
		}
		if !trusted || client.ID != req.ClientID || req.RedirectURI != q.Get("redirect_uri") {
			t.Fatalf("accepted a request for client %q / redirect %q that does not name them once", req.ClientID, req.RedirectURI)
		}
		if registeredCount(client, req.RedirectURI) != 1 {
			t.Fatalf("accepted redirect %q is not exactly one registered URI", req.RedirectURI)
		}
		if req.VendorID != client.VendorID {
			t.Fatalf("vendor %q, want %q", req.VendorID, client.VendorID)
		}
		if len(q["code_challenge_method"]) != 1 || q.Get("code_challenge_method") != "S256" {
			t.Fatalf("accepted without code_challenge_method S256: %q", q["code_challenge_method"])
		}
		if b, err := base64.RawURLEncoding.Strict().DecodeString(req.CodeChallenge); err != nil || len(b) != sha256.Size || req.CodeChallenge != q.Get("code_challenge") {
			t.Fatalf("accepted challenge %q is not the request's S256 value", req.CodeChallenge)
		}
		if !strings.Contains(" "+req.Scope+" ", " openid ") || len(q["response_type"]) != 1 || q.Get("response_type") != "code" {
			t.Fatalf("accepted scope %q / response_type %q", req.Scope, q["response_type"])
		}
		// What was accepted must also be completable: Complete re-checks it.
		loc, err := fx.p.Complete(context.Background(), req, testRelease(client.VendorID, "sub-fuzz"))
		if err != nil {
			t.Fatalf("Complete refused an accepted request: %v", err)
		}
		checkRedirectTarget(t, fx, client, req.RedirectURI, loc, []string{"code", "state", "iss"}, q["state"])
		return
	}

	if req != nil {
		t.Fatal("both a request and an error")
	}
	if perr.Redirect == "" {
		if trusted {
			t.Fatalf("error %q for a registered client and redirect URI shows a page instead of redirecting", perr.Code)
		}
		if perr.Status < 400 || perr.Status > 499 {
			t.Fatalf("error page with status %d", perr.Status)
		}
		return
	}
	if !trusted {
		t.Fatalf("redirected to %q for an untrusted client or redirect URI", perr.Redirect)
	}
	if perr.Status != http.StatusFound {
		t.Fatalf("error redirect with status %d", perr.Status)
	}
	checkRedirectTarget(t, fx, client, q.Get("redirect_uri"), perr.Redirect, []string{"error", "error_description", "state", "iss"}, q["state"])
	if got := mustQuery(t, perr.Redirect, q.Get("redirect_uri")).Get("error"); got != perr.Code {
		t.Fatalf("redirect error %q, Code %q", got, perr.Code)
	}
}

func registeredCount(c *Client, uri string) int {
	n := 0
	for _, r := range c.RedirectURIs {
		if r == uri {
			n++
		}
	}
	return n
}

// checkRedirectTarget checks that loc is the registered URI redirect with
// a query of only the allowed parameters, each once, iss the issuer and
// state one the request sent.
func checkRedirectTarget(t *testing.T, fx *fixture, client *Client, redirect, loc string, allowed []string, sentStates []string) {
	t.Helper()
	if registeredCount(client, redirect) != 1 {
		t.Fatalf("redirect base %q is not registered for %s", redirect, client.ID)
	}
	added := mustQuery(t, loc, redirect)
	for name, vals := range added {
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok || len(vals) != 1 {
			t.Fatalf("redirect adds parameter %q (%d values)", name, len(vals))
		}
	}
	if added.Get("iss") != fx.p.Issuer {
		t.Fatalf("redirect iss %q", added.Get("iss"))
	}
	if st, ok := added["state"]; ok {
		found := false
		for _, s := range sentStates {
			found = found || s == st[0]
		}
		if !found {
			t.Fatalf("redirect state %q was not sent", st[0])
		}
	}
}

// mustQuery returns the parameters loc adds to the registered redirect.
func mustQuery(t *testing.T, loc, redirect string) url.Values {
	t.Helper()
	rest, ok := strings.CutPrefix(loc, redirect+"?")
	if !ok {
		t.Fatalf("redirect %q does not start with the registered URI", loc)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("redirect does not parse: %v", err)
	}
	ru, err := url.Parse(redirect)
	if err != nil || u.Scheme != ru.Scheme || u.Host != ru.Host || u.Path != ru.Path || u.Fragment != "" {
		t.Fatalf("redirect %q leaves the registered URI", loc)
	}
	v, err := url.ParseQuery(rest)
	if err != nil {
		t.Fatalf("redirect query does not parse: %v", err)
	}
	return v
}

// FuzzTokenRequest fuzzes the form body and Authorization header of POST
// /oidc/token. Each input meets a provider that has issued two codes
// (known in advance, thanks to detRand): one to the basic client, one to
// the JWT client. The endpoint never answers 200 for any other code, or
// for a code presented by another client, and every answer is JSON that
// must not be cached.
func FuzzTokenRequest(f *testing.F) {
	codes := expectedCodes(2)
	codeBasic, codeJWT := codes[0], codes[1]
	basicAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(basicClient+":"+basicSecret))
	assertion := signFuzzJWT(f, jose.ES256, fuzzClientKey(f), "a-ec", fuzzAssertionClaims())
	jwtForm := func(code string) url.Values {
		return url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {jwtRedirect},
			"code_verifier": {testVerifier}, "client_assertion_type": {JWTBearerAssertion},
			"client_assertion": {assertion},
		}
	}
	// The two valid requests are controls: they must succeed, so that the
	// near misses after them fail for what they change.
	controls := map[[2]string]bool{
		{basicTokenForm(codeBasic).Encode(), basicAuth}: true,
		{jwtForm(codeJWT).Encode(), ""}:                 true,
	}
	for c := range controls {
		f.Add(c[0], c[1])
	}
	f.Add(basicTokenForm(codeJWT).Encode(), basicAuth)
	f.Add(jwtForm(codeBasic).Encode(), "")
	f.Add(basicTokenForm(codeBasic+"x").Encode(), basicAuth)
	f.Add(basicTokenForm(codeBasic).Encode()+"&code="+codeBasic, basicAuth)
	f.Add(basicTokenForm(codeBasic).Encode(), "Bearer "+codeBasic)
	f.Add(jwtForm(codeJWT).Encode(), basicAuth)
	f.Add(strings.Replace(basicTokenForm(codeBasic).Encode(), "code_verifier=", "code_verifier=x", 1), basicAuth)
	f.Add("grant_type=refresh_token&refresh_token=x", basicAuth)
	f.Add("%zz", "Basic %zz")
	f.Add("", "")

	f.Fuzz(func(t *testing.T, body, authorization string) {
		fx := newFuzzFixture(t)
		if got := fx.code(basicClient, basicRedir); got != codeBasic {
			t.Fatalf("issued code is not the expected one: detRand or newSecret changed")
		}
		if got := fx.code(jwtClientID, jwtRedirect); got != codeJWT {
			t.Fatalf("issued code is not the expected one: detRand or newSecret changed")
		}
		r := httptestPost(testIssuer+PathToken, body, "application/x-www-form-urlencoded")
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		w := fx.do(r)

		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("Cache-Control %q, want no-store", w.Header().Get("Cache-Control"))
		}
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("body is not a JSON object: %v", err)
		}
		if controls[[2]string{body, authorization}] && w.Code != http.StatusOK {
			t.Fatalf("a valid control request failed: %d %v", w.Code, m["error"])
		}
		switch w.Code {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusUnauthorized:
			if e, _ := m["error"].(string); e == "" {
				t.Fatalf("status %d without an error code", w.Code)
			}
			return
		default:
			t.Fatalf("status %d", w.Code)
		}

		form, err := url.ParseQuery(body)
		if err != nil {
			t.Fatalf("200 for a body that does not parse: %v", err)
		}
		var wantAud string
		switch form.Get("code") {
		case codeBasic:
			wantAud = basicClient
		case codeJWT:
			wantAud = jwtClientID
		default:
			t.Fatalf("200 for a code that was not issued")
		}
		if m["token_type"] != "Bearer" || m["access_token"] == "" {
			t.Fatalf("200 without a bearer access token")
		}
		raw, _ := m["id_token"].(string)
		tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
		if err != nil {
			t.Fatalf("id_token does not parse: %v", err)
		}
		var claims jwt.Claims
		if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
			t.Fatal(err)
		}
		if !claims.Audience.Contains(wantAud) || len(claims.Audience) != 1 {
			t.Fatalf("tokens for the code of %s went to %v", wantAud, claims.Audience)
		}
	})
}

// FuzzClientAssertion fuzzes the client_assertion of a token request that
// is otherwise valid for the JWT client. Only the valid seeds
// authenticate: any input that does must carry exactly their header and
// claims. (Byte-different spellings of the same JWS can verify: go-jose
// decodes base64url leniently, ignoring CR/LF and the unused bits of the
// last character, and ECDSA signatures are malleable. The claims, jti
// included, are the same, so these are not new credentials.)
func FuzzClientAssertion(f *testing.F) {
	key := fuzzClientKey(f)
	claims := fuzzAssertionClaims()
	valid := signFuzzJWT(f, jose.ES256, key, "a-ec", claims)
	pubJWK, err := jose.JSONWebKey{Key: key.Public()}.MarshalJSON()
	if err != nil {
		f.Fatal(err)
	}
	pubPoint, err := key.PublicKey.Bytes()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(noneJWT(f, claims))
	// HS256 keyed with public material the attacker has: the JWK as
	// published, and the raw public point.
	f.Add(signFuzzJWT(f, jose.HS256, pubJWK, "a-ec", claims))
	f.Add(signFuzzJWT(f, jose.HS256, pubPoint, "a-ec", claims))
	// Correctly signed, wrong claims or header.
	with := func(name string, v any) map[string]any {
		c := map[string]any{}
		for k, x := range claims {
			c[k] = x
		}
		c[name] = v
		return c
	}
	f.Add(signFuzzJWT(f, jose.ES256, key, "a-ec", with("aud", "https://other.example/token")))
	f.Add(signFuzzJWT(f, jose.ES256, key, "a-ec", with("exp", claims["exp"].(int64)-600)))
	f.Add(signFuzzJWT(f, jose.ES256, key, "a-ec-2", claims))
	f.Add(signFuzzJWT(f, jose.ES256, key, "a-rsa", claims))
	f.Add(signFuzzJWT(f, jose.ES256, key, "a-ec", with("iss", basicClient)))
	parts := strings.Split(valid, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"vendor-a-client"}`)) + "." + parts[2])
	f.Add(valid + "." + parts[2])

	wantHeader, wantPayload := jwsContent(valid)

	f.Fuzz(func(t *testing.T, assertion string) {
		fx := newFuzzFixture(t)
		form := fx.jwtTokenForm(fx.code(jwtClientID, jwtRedirect))
		form.Set("client_assertion", assertion)
		r := httptestPost(testIssuer+PathToken, form.Encode(), "application/x-www-form-urlencoded")
		w := fx.do(r)

		if assertion == valid {
			if w.Code != http.StatusOK {
				t.Fatalf("the valid seed did not authenticate: status %d %s", w.Code, w.Body.Bytes())
			}
			return
		}
		if w.Code == http.StatusOK {
			h, p := jwsContent(assertion)
			if h == nil || !bytes.Equal(h, wantHeader) || !bytes.Equal(p, wantPayload) {
				t.Fatalf("a mutated assertion authenticated")
			}
			return
		}
		var e tokenError
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
			t.Fatalf("body is not JSON: %v", err)
		}
		if len(assertion) <= maxAssertionLen && (w.Code != http.StatusUnauthorized || e.Error != CodeInvalidClient) {
			t.Fatalf("refused with %d %q, want 401 invalid_client", w.Code, e.Error)
		}
	})
}

// jwsContent decodes a compact JWS's header and payload as go-jose does
// (leniently); nil when it is not three parts that decode.
func jwsContent(s string) (header, payload []byte) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, nil
	}
	h, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	p, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil {
		return nil, nil
	}
	return h, p
}
