package oidcop

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCase26_RedirectURIExactMatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name   string
		change func(url.Values)
	}{
		{"query added", func(v url.Values) { v.Set("redirect_uri", jwtRedirect+"?next=https://evil.example") }},
		{"empty query added", func(v url.Values) { v.Set("redirect_uri", jwtRedirect+"?") }},
		{"trailing slash", func(v url.Values) { v.Set("redirect_uri", jwtRedirect+"/") }},
		{"fragment", func(v url.Values) { v.Set("redirect_uri", jwtRedirect+"#frag") }},
		{"host case", func(v url.Values) { v.Set("redirect_uri", "https://App.Vendor-A.example/callback") }},
		{"path case", func(v url.Values) { v.Set("redirect_uri", "https://app.vendor-a.example/Callback") }},
		{"scheme http", func(v url.Values) { v.Set("redirect_uri", "http://app.vendor-a.example/callback") }},
		{"scheme case", func(v url.Values) { v.Set("redirect_uri", "HTTPS://app.vendor-a.example/callback") }},
		{"explicit port", func(v url.Values) { v.Set("redirect_uri", "https://app.vendor-a.example:443/callback") }},
		{"other client's uri", func(v url.Values) { v.Set("redirect_uri", basicRedir) }},
		{"missing", func(v url.Values) { v.Del("redirect_uri") }},
		{"repeated", func(v url.Values) { v.Add("redirect_uri", jwtRedirect) }},
		{"unknown client", func(v url.Values) { v.Set("client_id", "nobody") }},
		{"missing client", func(v url.Values) { v.Del("client_id") }},
		{"repeated client", func(v url.Values) { v.Add("client_id", basicClient) }},
		// The redirect check comes first: an otherwise bad request with a
		// bad redirect_uri must not redirect either.
		{"bad uri and bad response_type", func(v url.Values) {
			v.Set("redirect_uri", jwtRedirect+"/")
			v.Set("response_type", "token")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := authParams(jwtClientID, jwtRedirect)
			tt.change(v)
			req, perr := f.parse(v)
			if perr == nil {
				t.Fatalf("accepted: %+v", req)
			}
			if perr.Redirect != "" {
				t.Errorf("Redirect = %q, want none (error page)", perr.Redirect)
			}
			if perr.Status != http.StatusBadRequest {
				t.Errorf("Status = %d, want 400", perr.Status)
			}
		})
	}

	t.Run("exact match accepted", func(t *testing.T) {
		req, perr := f.parse(authParams(jwtClientID, jwtRedirect))
		if perr != nil {
			t.Fatal(perr)
		}
		if req.RedirectURI != jwtRedirect || req.VendorID != "vendor-a" {
			t.Errorf("got %+v", req)
		}
	})
}

// Other authorization errors go back to the (verified) redirect URI with
// error, state and iss.
func TestParseAuthorizeRedirectErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name     string
		change   func(url.Values)
		wantCode string
		noState  bool
	}{
		{"response_type token", func(v url.Values) { v.Set("response_type", "token") }, CodeUnsupportedResponseType, false},
		{"response_type id_token", func(v url.Values) { v.Set("response_type", "id_token") }, CodeUnsupportedResponseType, false},
		{"response_type code id_token", func(v url.Values) { v.Set("response_type", "code id_token") }, CodeUnsupportedResponseType, false},
		{"response_type missing", func(v url.Values) { v.Del("response_type") }, CodeUnsupportedResponseType, false},
		{"no openid scope", func(v url.Values) { v.Set("scope", "profile") }, CodeInvalidScope, false},
		{"unsupported scope", func(v url.Values) { v.Set("scope", "openid offline_access") }, CodeInvalidScope, false},
		{"request object", func(v url.Values) { v.Set("request", "eyJhbGciOiJub25lIn0.e30.") }, CodeRequestNotSupported, false},
		{"request_uri", func(v url.Values) { v.Set("request_uri", "https://evil.example/r") }, CodeRequestURINotSupported, false},
		{"registration", func(v url.Values) { v.Set("registration", "{}") }, CodeRegistrationUnsupported, false},
		{"response_mode fragment", func(v url.Values) { v.Set("response_mode", "fragment") }, CodeInvalidRequest, false},
		{"response_mode form_post", func(v url.Values) { v.Set("response_mode", "form_post") }, CodeInvalidRequest, false},
		{"repeated scope", func(v url.Values) { v.Add("scope", "openid") }, CodeInvalidRequest, false},
		{"bad prompt", func(v url.Values) { v.Set("prompt", "none login") }, CodeInvalidRequest, false},
		{"bad max_age", func(v url.Values) { v.Set("max_age", "-1") }, CodeInvalidRequest, false},
		{"state too long", func(v url.Values) { v.Set("state", strings.Repeat("s", maxStateLen+1)) }, CodeInvalidRequest, true},
		{"nonce too long", func(v url.Values) { v.Set("nonce", strings.Repeat("n", maxNonceLen+1)) }, CodeInvalidRequest, false},
		{"claims not JSON", func(v url.Values) { v.Set("claims", "{not json") }, CodeInvalidRequest, false},
		{"acr_values too many", func(v url.Values) { v.Set("acr_values", strings.Repeat("a ", maxACRValues+1)) }, CodeInvalidRequest, false},
		{"repeated acr_values", func(v url.Values) { v.Add("acr_values", "a"); v.Add("acr_values", "b") }, CodeInvalidRequest, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := authParams(jwtClientID, jwtRedirect)
			tt.change(v)
			_, perr := f.parse(v)
			if perr == nil {
				t.Fatal("accepted")
			}
			if perr.Code != tt.wantCode {
				t.Errorf("Code = %q, want %q", perr.Code, tt.wantCode)
			}
			checkErrorRedirect(t, perr, tt.wantCode, !tt.noState)
		})
	}
}

func checkErrorRedirect(t *testing.T, perr *Error, code string, withState bool) {
	t.Helper()
	if perr.Status != http.StatusFound {
		t.Errorf("Status = %d, want 302", perr.Status)
	}
	if !strings.HasPrefix(perr.Redirect, jwtRedirect+"?") {
		t.Fatalf("Redirect = %q, want the registered URI", perr.Redirect)
	}
	q, err := url.ParseQuery(strings.TrimPrefix(perr.Redirect, jwtRedirect+"?"))
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{"error": {code}, "error_description": {perr.Description}, "iss": {testIssuer}}
	if withState {
		want.Set("state", "st-123")
	}
	if diff := cmp.Diff(want, q); diff != "" {
		t.Errorf("error redirect query (-want +got):\n%s", diff)
	}
}

func TestParseAuthorizePOST(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	body := authParams(jwtClientID, jwtRedirect).Encode()
	r := httptest.NewRequest(http.MethodPost, testIssuer+PathAuthorize, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req, perr := f.p.ParseAuthorize(r)
	if perr != nil {
		t.Fatal(perr)
	}
	want := &AuthRequest{
		ClientID: jwtClientID, VendorID: "vendor-a", RedirectURI: jwtRedirect, State: "st-123",
		Nonce: "n-456", CodeChallenge: challengeOf(testVerifier), Scope: "openid profile",
	}
	if diff := cmp.Diff(want, req); diff != "" {
		t.Errorf("AuthRequest (-want +got):\n%s", diff)
	}

	t.Run("too large", func(t *testing.T) {
		big := body + "&pad=" + strings.Repeat("x", maxAuthorizeBody)
		r := httptest.NewRequest(http.MethodPost, testIssuer+PathAuthorize, strings.NewReader(big))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		_, perr := f.p.ParseAuthorize(r)
		if perr == nil || perr.Redirect != "" || perr.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("got %+v, want 413 without redirect", perr)
		}
	})
	t.Run("PUT", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPut, testIssuer+PathAuthorize, strings.NewReader(body))
		_, perr := f.p.ParseAuthorize(r)
		if perr == nil || perr.Redirect != "" || perr.Status != http.StatusMethodNotAllowed {
			t.Errorf("got %+v, want 405 without redirect", perr)
		}
	})
}

func TestCase27_PKCE(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	authTests := []struct {
		name   string
		change func(url.Values)
	}{
		{"no PKCE", func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }},
		{"challenge without method (defaults to plain)", func(v url.Values) { v.Del("code_challenge_method") }},
		{"plain", func(v url.Values) { v.Set("code_challenge_method", "plain"); v.Set("code_challenge", testVerifier) }},
		{"method in lower case", func(v url.Values) { v.Set("code_challenge_method", "s256") }},
		{"method without challenge", func(v url.Values) { v.Del("code_challenge") }},
		{"challenge too short", func(v url.Values) { v.Set("code_challenge", "abc") }},
		{"challenge too long", func(v url.Values) { v.Set("code_challenge", challengeOf(testVerifier)+"A") }},
		{"challenge not base64url", func(v url.Values) { v.Set("code_challenge", strings.Repeat("+", 43)) }},
		{"challenge padded", func(v url.Values) { v.Set("code_challenge", challengeOf(testVerifier)[:42]+"=") }},
	}
	for _, tt := range authTests {
		t.Run("authorize/"+tt.name, func(t *testing.T) {
			v := authParams(jwtClientID, jwtRedirect)
			tt.change(v)
			_, perr := f.parse(v)
			if perr == nil {
				t.Fatal("accepted")
			}
			checkErrorRedirect(t, perr, CodeInvalidRequest, true)
		})
	}

	tokenTests := []struct {
		name     string
		verifier *string // nil: leave the parameter out
		wantErr  string
	}{
		{"right verifier", ptr(testVerifier), ""},
		{"wrong verifier", ptr(testVerifier[:len(testVerifier)-1] + "q"), CodeInvalidGrant},
		{"challenge sent as verifier", ptr(challengeOf(testVerifier)), CodeInvalidGrant},
		{"no verifier", nil, CodeInvalidGrant},
		{"empty verifier", ptr(""), CodeInvalidGrant},
		{"verifier too short", ptr("short"), CodeInvalidGrant},
	}
	for _, tt := range tokenTests {
		t.Run("token/"+tt.name, func(t *testing.T) {
			form := basicTokenForm(f.code(basicClient, basicRedir))
			form.Del("code_verifier")
			if tt.verifier != nil {
				form.Set("code_verifier", *tt.verifier)
			}
			_, code := decodeTokenResponse(t, f.postToken(form, basicClient, basicSecret))
			if code != tt.wantErr {
				t.Errorf("error = %q, want %q", code, tt.wantErr)
			}
		})
	}

	t.Run("token/verifier without challenge", func(t *testing.T) {
		// A request without a challenge never gets a code ...
		req, perr := f.parse(authParams(basicClient, basicRedir))
		if perr != nil {
			t.Fatal(perr)
		}
		req.CodeChallenge = ""
		if _, err := f.p.Complete(context.Background(), req, testRelease("vendor-b", "sub-b")); err == nil {
			t.Fatal("Complete issued a code for a request without a code challenge")
		}
		// ... and a stored grant without one is refused with a verifier.
		g := grant{Request: *req, Sub: "sub-b", ExpiresAt: f.clock.Now().Add(MaxCodeTTL)}
		code := "grant-without-challenge"
		putGrant(t, f, code, g)
		_, errCode := decodeTokenResponse(t, f.postToken(basicTokenForm(code), basicClient, basicSecret))
		if errCode != CodeInvalidGrant {
			t.Errorf("error = %q, want invalid_grant", errCode)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestCase30_IssAndNonce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	t.Run("success response has iss and state", func(t *testing.T) {
		req, perr := f.parse(authParams(jwtClientID, jwtRedirect))
		if perr != nil {
			t.Fatal(perr)
		}
		loc, err := f.p.Complete(context.Background(), req, testRelease("vendor-a", "sub-a"))
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Scheme + "://" + u.Host + u.Path; got != jwtRedirect {
			t.Errorf("redirect to %q, want %q", got, jwtRedirect)
		}
		q := u.Query()
		if q.Get("iss") != testIssuer || q.Get("state") != "st-123" || len(q.Get("code")) != 43 {
			t.Errorf("query = %v: want iss, state and a 256-bit code", q)
		}
		if len(q) != 3 {
			t.Errorf("query has %d parameters, want code, state, iss only", len(q))
		}
	})

	t.Run("error response from the login flow has iss", func(t *testing.T) {
		req, perr := f.parse(authParams(jwtClientID, jwtRedirect))
		if perr != nil {
			t.Fatal(perr)
		}
		checkErrorRedirect(t, f.p.ErrorResponse(req, "access_denied", "the login was cancelled"), "access_denied", true)
	})

	t.Run("registered query is kept", func(t *testing.T) {
		const withQuery = "https://app.vendor-a.example/cb?tenant=skola"
		f.p.Clients[jwtClientID].RedirectURIs = append(f.p.Clients[jwtClientID].RedirectURIs, withQuery)
		t.Cleanup(func() { f.p.Clients[jwtClientID].RedirectURIs = []string{jwtRedirect} })
		req, perr := f.parse(authParams(jwtClientID, withQuery))
		if perr != nil {
			t.Fatal(perr)
		}
		loc, err := f.p.Complete(context.Background(), req, testRelease("vendor-a", "sub-a"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(loc, withQuery+"&") || !strings.Contains(loc, "iss=") {
			t.Errorf("redirect %q does not extend the registered URI", loc)
		}
	})

	for _, tt := range []struct {
		name  string
		nonce string
	}{{"nonce echoed", "n-456"}, {"no nonce, no claim", ""}} {
		t.Run(tt.name, func(t *testing.T) {
			v := authParams(basicClient, basicRedir)
			if tt.nonce == "" {
				v.Del("nonce")
			} else {
				v.Set("nonce", tt.nonce)
			}
			req, perr := f.parse(v)
			if perr != nil {
				t.Fatal(perr)
			}
			loc, err := f.p.Complete(context.Background(), req, testRelease("vendor-b", "sub-b"))
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(loc)
			tr, errCode := decodeTokenResponse(t, f.postToken(basicTokenForm(u.Query().Get("code")), basicClient, basicSecret))
			if errCode != "" {
				t.Fatal(errCode)
			}
			claims, _ := f.idTokenClaims(tr.IDToken)
			got, has := claims["nonce"]
			if tt.nonce == "" && has {
				t.Errorf("nonce claim %v without a nonce in the request", got)
			}
			if tt.nonce != "" && got != tt.nonce {
				t.Errorf("nonce = %v, want %q", got, tt.nonce)
			}
			if claims["iss"] != testIssuer {
				t.Errorf("iss = %v", claims["iss"])
			}
		})
	}
}

func TestCompleteRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	valid := func() *AuthRequest {
		req, perr := f.parse(authParams(jwtClientID, jwtRedirect))
		if perr != nil {
			t.Fatal(perr)
		}
		return req
	}
	tests := []struct {
		name    string
		req     func() *AuthRequest
		rel     *releaseArg
		wantErr error
	}{
		{"empty sub", valid, &releaseArg{"vendor-a", ""}, ErrNoSubject},
		{"release for another vendor", valid, &releaseArg{"vendor-b", "sub"}, nil},
		{"no release", valid, nil, nil},
		{"unknown client", func() *AuthRequest { r := valid(); r.ClientID = "nobody"; return r }, &releaseArg{"vendor-a", "sub"}, nil},
		{"redirect no longer registered", func() *AuthRequest { r := valid(); r.RedirectURI += "/"; return r }, &releaseArg{"vendor-a", "sub"}, nil},
		{"no openid scope", func() *AuthRequest { r := valid(); r.Scope = "profile"; return r }, &releaseArg{"vendor-a", "sub"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var loc string
			var err error
			if tt.rel == nil {
				loc, err = f.p.Complete(context.Background(), tt.req(), nil)
			} else {
				loc, err = f.p.Complete(context.Background(), tt.req(), testRelease(tt.rel.vendor, tt.rel.sub))
			}
			if err == nil {
				t.Fatalf("issued a code: %s", loc)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

type releaseArg struct{ vendor, sub string }

// The login flow keeps the request in its session as JSON.
func TestAuthRequestSurvivesJSON(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	v := authParams(basicClient, basicRedir)
	v.Set("max_age", "0")
	v.Set("prompt", "login")
	v.Set("acr_values", "http://id.skolfederation.se/loa/2fa https://refeds.org/profile/mfa")
	v.Set("claims", `{"id_token":{"acr":{"essential":true,"values":["http://id.elegnamnden.se/loa/1.0/loa2"]},"email":null}}`)
	req, perr := f.parse(v)
	if perr != nil {
		t.Fatal(perr)
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var back AuthRequest
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(req, &back); diff != "" {
		t.Fatalf("round trip (-before +after):\n%s", diff)
	}
	if back.MaxAge == nil || *back.MaxAge != 0 || back.Prompt != "login" {
		t.Errorf("max_age/prompt lost: %+v", back)
	}
	if diff := cmp.Diff([]string{"http://id.skolfederation.se/loa/2fa", "https://refeds.org/profile/mfa"}, back.ACRValues); diff != "" {
		t.Errorf("acr_values (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"http://id.elegnamnden.se/loa/1.0/loa2"}, back.EssentialACR); diff != "" {
		t.Errorf("essential acr (-want +got):\n%s", diff)
	}
	loc, err := f.p.Complete(context.Background(), &back, testRelease("vendor-b", "sub-b"))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(loc)
	if _, e := decodeTokenResponse(t, f.postToken(basicTokenForm(u.Query().Get("code")), basicClient, basicSecret)); e != "" {
		t.Errorf("token: %s", e)
	}
}
