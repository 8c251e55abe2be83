package testop_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/testidp"
	"github.com/skolbro/skolbro/internal/testop"
)

var t0 = time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC)

const (
	clientID     = "bridge"
	clientSecret = "client-secret-for-tests-0123456789"
	redirectURI  = "https://bridge.example.se/oidc/rp/callback"
	path         = "/demo/oidc-idp"
	verifier     = "verifier-verifier-verifier-verifier-verifier-0123"
)

func challenge(v string) string {
	s := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

type fixture struct {
	op     *testop.OP
	srv    *httptest.Server
	client *http.Client
	offset atomic.Int64
}

// newFixture serves an OP below path; strip mounts it behind
// http.StripPrefix, as a mux might.
func newFixture(t *testing.T, strip bool) *fixture {
	t.Helper()
	f := &fixture{}
	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.op = testop.New(f.srv.URL+path, testidp.DemoUsers("skola.example.se"), clientID, clientSecret, redirectURI)
	f.op.Now = func() time.Time { return t0.Add(time.Duration(f.offset.Load())) }
	h := f.op.Handler()
	if strip {
		h = http.StripPrefix(path, h)
	}
	mux.Handle(path+"/", h)
	c := *f.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	f.client = &c
	return f
}

func authzParams() url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {redirectURI},
		"scope":                 {"openid profile"},
		"state":                 {"st"},
		"nonce":                 {"n-1"},
		"code_challenge":        {challenge(verifier)},
		"code_challenge_method": {"S256"},
	}
}

// authorize posts the picker form with params and returns the response.
func (f *fixture) authorize(t *testing.T, params url.Values) *http.Response {
	t.Helper()
	resp, err := f.client.PostForm(f.op.Issuer()+"/authorize", params)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// code logs user in and returns the code.
func (f *fixture) code(t *testing.T, user string) string {
	t.Helper()
	p := authzParams()
	p.Set("user", user)
	resp := f.authorize(t, p)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("authorize: status %d", resp.StatusCode)
	}
	q := loc.Query()
	if q.Get("state") != "st" || q.Get("iss") != f.op.Issuer() || q.Get("code") == "" {
		t.Fatalf("authorization response %v lacks state, iss or code", q)
	}
	return q.Get("code")
}

func (f *fixture) token(t *testing.T, form url.Values, basic bool) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.op.Issuer()+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(clientSecret))
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token response: %v", err)
	}
	return resp.StatusCode, body, resp.Header
}

func tokenForm(code string) url.Values {
	return url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
	}
}

func TestDiscoveryAndJWKS(t *testing.T) {
	t.Parallel()
	for _, strip := range []bool{false, true} {
		t.Run(map[bool]string{false: "full path", true: "prefix stripped"}[strip], func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, strip)
			resp, err := f.client.Get(f.op.Issuer() + "/.well-known/openid-configuration")
			if err != nil {
				t.Fatal(err)
			}
			var d struct {
				Issuer    string   `json:"issuer"`
				Authorize string   `json:"authorization_endpoint"`
				Token     string   `json:"token_endpoint"`
				JWKS      string   `json:"jwks_uri"`
				Algs      []string `json:"id_token_signing_alg_values_supported"`
				PKCE      []string `json:"code_challenge_methods_supported"`
				Iss       bool     `json:"authorization_response_iss_parameter_supported"`
			}
			err = json.NewDecoder(resp.Body).Decode(&d)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			iss := f.op.Issuer()
			want := struct {
				Issuer    string   `json:"issuer"`
				Authorize string   `json:"authorization_endpoint"`
				Token     string   `json:"token_endpoint"`
				JWKS      string   `json:"jwks_uri"`
				Algs      []string `json:"id_token_signing_alg_values_supported"`
				PKCE      []string `json:"code_challenge_methods_supported"`
				Iss       bool     `json:"authorization_response_iss_parameter_supported"`
			}{iss, iss + "/authorize", iss + "/token", iss + "/jwks", []string{"ES256"}, []string{"S256"}, true}
			if diff := cmp.Diff(want, d); diff != "" {
				t.Errorf("discovery (-want +got):\n%s", diff)
			}

			resp, err = f.client.Get(d.JWKS)
			if err != nil {
				t.Fatal(err)
			}
			var set jose.JSONWebKeySet
			err = json.NewDecoder(resp.Body).Decode(&set)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if len(set.Keys) != 1 || set.Keys[0].KeyID != f.op.KeyID() || set.Keys[0].Algorithm != "ES256" || !set.Keys[0].IsPublic() {
				t.Errorf("JWKS = %+v, want one public ES256 key with the OP's kid", set.Keys)
			}
		})
	}
}

// TestAuthorizeRedirectURIExact is SECURITY.md case 26 for the test OP: a
// redirect_uri that differs in any way gets an error page, no redirect.
func TestAuthorizeRedirectURIExact(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"query":          redirectURI + "?x=1",
		"trailing slash": redirectURI + "/",
		"fragment":       redirectURI + "#f",
		"case":           strings.Replace(redirectURI, "callback", "Callback", 1),
		"scheme":         strings.Replace(redirectURI, "https:", "http:", 1),
		"missing":        "",
	}
	for name, uri := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, false)
			p := authzParams()
			p.Set("redirect_uri", uri)
			p.Set("user", "anna.a")
			resp := f.authorize(t, p)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("status %d, Location %q; want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}

func TestAuthorizeErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		edit     func(url.Values)
		wantErr  string // error parameter; "" means an error page
		wantCode int
	}{
		{"unknown client", func(p url.Values) { p.Set("client_id", "other") }, "", http.StatusBadRequest},
		{"repeated parameter", func(p url.Values) { p.Add("state", "again") }, "", http.StatusBadRequest},
		{"no PKCE", func(p url.Values) { p.Del("code_challenge"); p.Del("code_challenge_method") }, "invalid_request", http.StatusFound},
		{"plain PKCE", func(p url.Values) { p.Set("code_challenge_method", "plain"); p.Set("code_challenge", verifier) }, "invalid_request", http.StatusFound},
		{"challenge without method", func(p url.Values) { p.Del("code_challenge_method") }, "invalid_request", http.StatusFound},
		{"implicit flow", func(p url.Values) { p.Set("response_type", "id_token token") }, "unsupported_response_type", http.StatusFound},
		{"no openid scope", func(p url.Values) { p.Set("scope", "profile") }, "invalid_scope", http.StatusFound},
		{"cancel", func(p url.Values) { p.Set("cancel", "1") }, "access_denied", http.StatusFound},
		{"unknown user", func(p url.Values) { p.Set("user", "mallory") }, "", http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, false)
			p := authzParams()
			p.Set("user", "anna.a")
			tc.edit(p)
			resp := f.authorize(t, p)
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantCode)
			}
			if tc.wantErr == "" {
				if resp.Header.Get("Location") != "" {
					t.Error("redirected on an error page")
				}
				return
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			q := loc.Query()
			want := url.Values{"error": {tc.wantErr}, "state": {"st"}, "iss": {f.op.Issuer()}}
			if diff := cmp.Diff(want, q); diff != "" {
				t.Errorf("error response (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPicker(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	resp, err := f.client.Get(f.op.Issuer() + "/authorize?" + authzParams().Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	page := string(body)
	for _, want := range []string{`value="anna.a"`, `value="eva.e"`, `name="code_challenge" value="` + challenge(verifier) + `"`, `name="cancel"`} {
		if !strings.Contains(page, want) {
			t.Errorf("picker lacks %s", want)
		}
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Error("picker lacks no-store or frame protection")
	}
}

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		basic   bool
		edit    func(url.Values)
		advance time.Duration
		status  int
		errCode string
	}{
		{name: "basic", basic: true, status: http.StatusOK},
		{name: "post", edit: func(f url.Values) { f.Set("client_id", clientID); f.Set("client_secret", clientSecret) }, status: http.StatusOK},
		{name: "both methods", basic: true, edit: func(f url.Values) { f.Set("client_secret", clientSecret) }, status: http.StatusUnauthorized, errCode: "invalid_client"},
		{name: "wrong secret", edit: func(f url.Values) { f.Set("client_id", clientID); f.Set("client_secret", "guess") }, status: http.StatusUnauthorized, errCode: "invalid_client"},
		{name: "no authentication", status: http.StatusUnauthorized, errCode: "invalid_client"},
		{name: "wrong verifier", basic: true, edit: func(f url.Values) { f.Set("code_verifier", strings.Repeat("x", 43)) }, status: http.StatusBadRequest, errCode: "invalid_grant"},
		{name: "no verifier", basic: true, edit: func(f url.Values) { f.Del("code_verifier") }, status: http.StatusBadRequest, errCode: "invalid_grant"},
		{name: "challenge as verifier", basic: true, edit: func(f url.Values) { f.Set("code_verifier", challenge(verifier)) }, status: http.StatusBadRequest, errCode: "invalid_grant"},
		{name: "other redirect_uri", basic: true, edit: func(f url.Values) { f.Set("redirect_uri", redirectURI+"/") }, status: http.StatusBadRequest, errCode: "invalid_grant"},
		{name: "expired code", basic: true, advance: testop.CodeLifetime, status: http.StatusBadRequest, errCode: "invalid_grant"},
		{name: "unknown code", basic: true, edit: func(f url.Values) { f.Set("code", "forged") }, status: http.StatusBadRequest, errCode: "invalid_grant"},
		{name: "other grant type", basic: true, edit: func(f url.Values) { f.Set("grant_type", "password") }, status: http.StatusBadRequest, errCode: "unsupported_grant_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, false)
			form := tokenForm(f.code(t, "anna.a"))
			if tc.edit != nil {
				tc.edit(form)
			}
			f.offset.Add(int64(tc.advance))
			status, body, h := f.token(t, form, tc.basic)
			if status != tc.status {
				t.Fatalf("status %d (%v), want %d", status, body["error"], tc.status)
			}
			if h.Get("Cache-Control") != "no-store" {
				t.Error("token response without Cache-Control: no-store")
			}
			if tc.errCode != "" {
				if body["error"] != tc.errCode {
					t.Errorf("error = %v, want %s", body["error"], tc.errCode)
				}
				if _, ok := body["id_token"]; ok {
					t.Error("an error response carries an ID token")
				}
			}
		})
	}
}

func TestCodeSingleUse(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	code := f.code(t, "anna.a")
	if status, _, _ := f.token(t, tokenForm(code), true); status != http.StatusOK {
		t.Fatalf("first redemption: %d", status)
	}
	status, body, _ := f.token(t, tokenForm(code), true)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("second redemption: %d %v, want 400 invalid_grant", status, body["error"])
	}

	// A failed redemption spends the code too.
	code = f.code(t, "anna.a")
	bad := tokenForm(code)
	bad.Set("code_verifier", strings.Repeat("y", 43))
	f.token(t, bad, true)
	if status, _, _ := f.token(t, tokenForm(code), true); status != http.StatusBadRequest {
		t.Errorf("code usable after a failed redemption: %d", status)
	}
}

// TestIDToken checks the ID token against the JWKS with go-jose and the
// claims against UserClaims.
func TestIDToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	status, body, _ := f.token(t, tokenForm(f.code(t, "david.d")), true)
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	raw, _ := body["id_token"].(string)
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if jws.Signatures[0].Header.KeyID != f.op.KeyID() {
		t.Errorf("kid = %q", jws.Signatures[0].Header.KeyID)
	}
	resp, err := f.client.Get(f.op.Issuer() + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	err = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(set.Keys[0])
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(payload, &got); err != nil {
		t.Fatal(err)
	}

	var david testidp.User
	for _, u := range testidp.DemoUsers("skola.example.se") {
		if u.Login == "david.d" {
			david = u
		}
	}
	wantClaims := testop.UserClaims(david)
	wantClaims["iss"] = f.op.Issuer()
	wantClaims["aud"] = clientID
	wantClaims["nonce"] = "n-1"
	wantClaims["acr"] = testop.ACR
	wantClaims["amr"] = []string{"pwd"}
	wantClaims["iat"] = t0.Unix()
	wantClaims["auth_time"] = t0.Unix()
	wantClaims["exp"] = t0.Add(testop.IDTokenLifetime).Unix()
	b, _ := json.Marshal(wantClaims)
	var want map[string]any
	_ = json.Unmarshal(b, &want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
}

func TestUserClaims(t *testing.T) {
	t.Parallel()
	if testop.ClaimPersonalNumber != "https://id.oidc.se/claim/personalIdentityNumber" {
		t.Errorf("personal number claim = %q", testop.ClaimPersonalNumber)
	}
	u := testidp.User{
		NameID: "id-1",
		Attributes: map[string][]string{
			testidp.AttrGivenName:         {"Given"},
			testidp.AttrSchoolUnitCode:    {"12345678", "87654321"},
			testidp.AttrScopedAffiliation: {"student@s"},
			testidp.AttrSecurityMarking:   {testidp.MarkingProtected},
		},
	}
	want := map[string]any{
		"sub":                         "id-1",
		"given_name":                  "Given",
		testop.ClaimSchoolUnitCodes:   []string{"12345678", "87654321"},
		testop.ClaimScopedAffiliation: []string{"student@s"},
		testop.ClaimSecurityMarking:   testidp.MarkingProtected,
	}
	if diff := cmp.Diff(want, testop.UserClaims(u)); diff != "" {
		t.Errorf("UserClaims (-want +got):\n%s", diff)
	}
}
