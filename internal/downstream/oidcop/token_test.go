package oidcop

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestCase28_CodeRedeemedConcurrently(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	t.Run("concurrent", func(t *testing.T) {
		code := f.code(basicClient, basicRedir)
		const n = 16
		type result struct {
			tr  tokenResponse
			err string
		}
		results := make([]result, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				w := f.postToken(basicTokenForm(code), basicClient, basicSecret)
				var r result
				if w.Code == http.StatusOK {
					_ = json.Unmarshal(w.Body.Bytes(), &r.tr)
				} else {
					var e tokenError
					_ = json.Unmarshal(w.Body.Bytes(), &e)
					r.err = e.Error
				}
				results[i] = r
			}()
		}
		close(start)
		wg.Wait()
		var winners []tokenResponse
		for _, r := range results {
			switch {
			case r.err == "" && r.tr.AccessToken != "":
				winners = append(winners, r.tr)
			case r.err != CodeInvalidGrant:
				t.Errorf("a loser got %q, want invalid_grant", r.err)
			}
		}
		// At most one: the one that took the code withdraws its tokens
		// itself when it sees that the code was presented again meanwhile.
		if len(winners) > 1 {
			t.Fatalf("%d redemptions succeeded, want at most 1", len(winners))
		}
		// A later reuse is refused too.
		if _, e := decodeTokenResponse(t, f.postToken(basicTokenForm(code), basicClient, basicSecret)); e != CodeInvalidGrant {
			t.Errorf("reuse: %q, want invalid_grant", e)
		}
		// The code was presented 16 times: whatever it issued is revoked.
		for _, w := range winners {
			if w := f.userinfo(w.AccessToken); w.Code != http.StatusUnauthorized {
				t.Errorf("userinfo after reuse: %d, want 401", w.Code)
			}
		}
	})

	t.Run("sequential reuse revokes", func(t *testing.T) {
		code := f.code(jwtClientID, jwtRedirect)
		tr, e := decodeTokenResponse(t, f.postToken(f.jwtTokenForm(code), "", ""))
		if e != "" {
			t.Fatal(e)
		}
		if w := f.userinfo(tr.AccessToken); w.Code != http.StatusOK {
			t.Fatalf("userinfo before reuse: %d, want 200", w.Code)
		}
		if _, e := decodeTokenResponse(t, f.postToken(f.jwtTokenForm(code), "", "")); e != CodeInvalidGrant {
			t.Errorf("reuse: %q, want invalid_grant", e)
		}
		if w := f.userinfo(tr.AccessToken); w.Code != http.StatusUnauthorized {
			t.Errorf("userinfo after reuse: %d, want 401", w.Code)
		}
		// A third presentation is still refused and does no harm.
		if _, e := decodeTokenResponse(t, f.postToken(f.jwtTokenForm(code), "", "")); e != CodeInvalidGrant {
			t.Errorf("third use: %q, want invalid_grant", e)
		}
	})

	t.Run("codes are stored only hashed", func(t *testing.T) {
		code := f.code(basicClient, basicRedir)
		for _, k := range []string{prefixCode + code, prefixOwner + code, hashKey(prefixCode, code)} {
			if _, err := f.store.Get(context.Background(), k); err == nil {
				t.Errorf("the code is part of a store key as it is, or its hash alone names the grant: %.20s", k)
			}
		}
		if _, err := f.store.Get(context.Background(), prefixCode+grantID(basicClient, code)); err != nil {
			t.Errorf("no grant under the hash of the client id and the code: %v", err)
		}
	})
}

func TestCase29_CodeExpiredOrOtherClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		run     func(f *fixture) (url.Values, string, string) // form, basic user, basic pass
		wantErr string
	}{
		{"fresh code (control)", func(f *fixture) (url.Values, string, string) {
			return basicTokenForm(f.code(basicClient, basicRedir)), basicClient, basicSecret
		}, ""},
		{"one second before expiry", func(f *fixture) (url.Values, string, string) {
			code := f.code(basicClient, basicRedir)
			f.clock.Advance(DefaultCodeTTL - time.Second)
			return basicTokenForm(code), basicClient, basicSecret
		}, ""},
		{"expired at 60s", func(f *fixture) (url.Values, string, string) {
			code := f.code(basicClient, basicRedir)
			f.clock.Advance(DefaultCodeTTL)
			return basicTokenForm(code), basicClient, basicSecret
		}, CodeInvalidGrant},
		{"expired long ago", func(f *fixture) (url.Values, string, string) {
			code := f.code(basicClient, basicRedir)
			f.clock.Advance(time.Hour)
			return basicTokenForm(code), basicClient, basicSecret
		}, CodeInvalidGrant},
		{"code of another client", func(f *fixture) (url.Values, string, string) {
			form := basicTokenForm(f.code(jwtClientID, jwtRedirect))
			return form, basicClient, basicSecret
		}, CodeInvalidGrant},
		{"another client with the right redirect_uri", func(f *fixture) (url.Values, string, string) {
			form := basicTokenForm(f.code(jwtClientID, jwtRedirect))
			form.Set("redirect_uri", jwtRedirect)
			return form, basicClient, basicSecret
		}, CodeInvalidGrant},
		{"other redirect_uri", func(f *fixture) (url.Values, string, string) {
			form := basicTokenForm(f.code(basicClient, basicRedir))
			form.Set("redirect_uri", basicRedir+"/")
			return form, basicClient, basicSecret
		}, CodeInvalidGrant},
		{"no redirect_uri", func(f *fixture) (url.Values, string, string) {
			form := basicTokenForm(f.code(basicClient, basicRedir))
			form.Del("redirect_uri")
			return form, basicClient, basicSecret
		}, CodeInvalidGrant},
		{"made-up code", func(f *fixture) (url.Values, string, string) {
			return basicTokenForm("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), basicClient, basicSecret
		}, CodeInvalidGrant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			form, user, pass := tt.run(f)
			_, e := decodeTokenResponse(t, f.postToken(form, user, pass))
			if e != tt.wantErr {
				t.Errorf("error = %q, want %q", e, tt.wantErr)
			}
		})
	}

	t.Run("code lifetime over 60s refused", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.p.CodeTTL = 61 * time.Second
		if err := f.p.Validate(); err == nil {
			t.Error("Validate accepted a 61s code lifetime")
		}
		req, perr := f.parse(authParams(basicClient, basicRedir))
		if perr != nil {
			t.Fatal(perr)
		}
		if loc, err := f.p.Complete(context.Background(), req, testRelease("vendor-b", "sub-b")); err == nil {
			t.Errorf("Complete issued a code with a 61s lifetime: %s", loc)
		}
		f.p.CodeTTL = 30 * time.Second
		if err := f.p.Validate(); err != nil {
			t.Errorf("Validate refused 30s: %v", err)
		}
	})

	t.Run("shorter code lifetime honoured", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.p.CodeTTL = 10 * time.Second
		code := f.code(basicClient, basicRedir)
		f.clock.Advance(10 * time.Second)
		if _, e := decodeTokenResponse(t, f.postToken(basicTokenForm(code), basicClient, basicSecret)); e != CodeInvalidGrant {
			t.Errorf("error = %q, want invalid_grant", e)
		}
	})
}

func TestTokenResponse(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := f.postToken(basicTokenForm(f.code(basicClient, basicRedir)), basicClient, basicSecret)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	wantHeaders := map[string]string{"Cache-Control": "no-store", "Pragma": "no-cache", "Content-Type": "application/json"}
	for k, v := range wantHeaders {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	if diff := cmp.Diff([]string{"access_token", "expires_in", "id_token", "scope", "token_type"}, keys, sortStrings); diff != "" {
		t.Errorf("response members (-want +got):\n%s", diff)
	}
	if body["token_type"] != "Bearer" || body["expires_in"] != float64(300) || body["scope"] != "openid profile" {
		t.Errorf("token_type/expires_in/scope = %v/%v/%v", body["token_type"], body["expires_in"], body["scope"])
	}
	claims, kid := f.idTokenClaims(body["id_token"].(string))
	if kid != "op-rsa-1" {
		t.Errorf("kid = %q, want the RS256 key for this client", kid)
	}
	now := f.clock.Now().Unix()
	want := map[string]any{
		"iss":                          testIssuer,
		"sub":                          "sub-vendor-b",
		"aud":                          basicClient,
		"azp":                          basicClient,
		"iat":                          float64(now),
		"exp":                          float64(now + 300),
		"auth_time":                    float64(time.Date(2026, 3, 2, 7, 59, 0, 0, time.UTC).Unix()),
		"nonce":                        "n-456",
		"acr":                          "http://id.skolfederation.se/loa/2fa",
		"at_hash":                      claims["at_hash"],
		"eduperson_principal_name":     "abc123@skola.example.se",
		"eduperson_scoped_affiliation": []any{"student@skola.example.se"},
		"given_name":                   "Testa",
		"sisSchoolUnitCode":            []any{"12345678", "87654321"},
	}
	if diff := cmp.Diff(want, claims); diff != "" {
		t.Errorf("ID token claims (-want +got):\n%s", diff)
	}
	if s, _ := claims["at_hash"].(string); len(s) != 22 {
		t.Errorf("at_hash = %v, want 16 bytes base64url", claims["at_hash"])
	}
}

var sortStrings = cmpopts.SortSlices(func(a, b string) bool { return a < b })

func TestTokenRequestErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name        string
		form        func() url.Values
		contentType string
		user, pass  string
		wantStatus  int
		wantErr     string
	}{
		{"unsupported grant type", func() url.Values {
			v := basicTokenForm("x")
			v.Set("grant_type", "refresh_token")
			return v
		}, "", basicClient, basicSecret, 400, CodeUnsupportedGrantType},
		{"password grant", func() url.Values {
			return url.Values{"grant_type": {"password"}, "username": {"u"}, "password": {"p"}}
		}, "", basicClient, basicSecret, 400, CodeUnsupportedGrantType},
		{"no grant type", func() url.Values {
			v := basicTokenForm("x")
			v.Del("grant_type")
			return v
		}, "", basicClient, basicSecret, 400, CodeInvalidRequest},
		{"no code", func() url.Values {
			v := basicTokenForm("")
			return v
		}, "", basicClient, basicSecret, 400, CodeInvalidRequest},
		{"repeated parameter", func() url.Values {
			v := basicTokenForm("x")
			v.Add("code", "y")
			return v
		}, "", basicClient, basicSecret, 400, CodeInvalidRequest},
		{"JSON body", func() url.Values { return basicTokenForm("x") }, "application/json", basicClient, basicSecret, 400, CodeInvalidRequest},
		{"wrong secret", func() url.Values { return basicTokenForm(f.code(basicClient, basicRedir)) }, "", basicClient, basicSecret + "x", 401, CodeInvalidClient},
		{"unknown client", func() url.Values { return basicTokenForm("x") }, "", "nobody", basicSecret, 401, CodeInvalidClient},
		{"no client authentication", func() url.Values { return basicTokenForm(f.code(basicClient, basicRedir)) }, "", "", "", 401, CodeInvalidClient},
		{"client_secret_post", func() url.Values {
			v := basicTokenForm(f.code(basicClient, basicRedir))
			v.Set("client_id", basicClient)
			v.Set("client_secret", basicSecret)
			return v
		}, "", "", "", 401, CodeInvalidClient},
		{"basic for a private_key_jwt client", func() url.Values { return basicTokenForm("x") }, "", jwtClientID, basicSecret, 401, CodeInvalidClient},
		{"client_id differs from basic user", func() url.Values {
			v := basicTokenForm(f.code(basicClient, basicRedir))
			v.Set("client_id", jwtClientID)
			return v
		}, "", basicClient, basicSecret, 401, CodeInvalidClient},
		{"basic and assertion together", func() url.Values {
			v := f.jwtTokenForm("x")
			return v
		}, "", basicClient, basicSecret, 400, CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := tt.form()
			ct := tt.contentType
			if ct == "" {
				ct = "application/x-www-form-urlencoded"
			}
			r := httptestPost(testIssuer+PathToken, form.Encode(), ct)
			if tt.user != "" {
				r.SetBasicAuth(tt.user, tt.pass)
			}
			w := f.do(r)
			if w.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", w.Code, tt.wantStatus)
			}
			_, e := decodeTokenResponse(t, w)
			if e != tt.wantErr {
				t.Errorf("error %q, want %q", e, tt.wantErr)
			}
			if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Pragma") != "no-cache" {
				t.Errorf("error response without no-store: %v", w.Header())
			}
			if w.Code == http.StatusUnauthorized && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic") {
				t.Errorf("401 without a Basic challenge")
			}
		})
	}

	t.Run("GET is not allowed", func(t *testing.T) {
		w := f.do(httptestGet(testIssuer + PathToken + "?" + basicTokenForm("x").Encode()))
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("status %d, want 405", w.Code)
		}
	})

	t.Run("secret form-encoded per RFC 6749 2.3.1", func(t *testing.T) {
		// postToken query-escapes user and secret, as golang.org/x/oauth2 does.
		w := f.postToken(basicTokenForm(f.code(basicClient, basicRedir)), basicClient, basicSecret)
		if w.Code != http.StatusOK {
			t.Errorf("status %d", w.Code)
		}
	})
}
