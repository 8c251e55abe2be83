package oidcop

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/store"
)

func TestUserinfo(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tr, e := decodeTokenResponse(t, f.postToken(basicTokenForm(f.code(basicClient, basicRedir)), basicClient, basicSecret))
	if e != "" {
		t.Fatal(e)
	}

	t.Run("valid token", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			r := httptestGet(testIssuer + PathUserinfo)
			r.Method = method
			r.Header.Set("Authorization", "bearer "+tr.AccessToken)
			w := f.do(r)
			if w.Code != http.StatusOK {
				t.Fatalf("%s: status %d", method, w.Code)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q", w.Header().Get("Cache-Control"))
			}
			want := map[string]any{
				"sub":                          "sub-vendor-b",
				"eduperson_principal_name":     "abc123@skola.example.se",
				"eduperson_scoped_affiliation": []any{"student@skola.example.se"},
				"given_name":                   "Testa",
				"sisSchoolUnitCode":            []any{"12345678", "87654321"},
			}
			if diff := cmp.Diff(want, decodeJSON(t, w.Body.Bytes())); diff != "" {
				t.Errorf("%s userinfo (-want +got):\n%s", method, diff)
			}
		}
	})

	tests := []struct {
		name          string
		header        string
		wantErrorCode bool
	}{
		{"no token", "", false},
		{"basic scheme", "Basic " + tr.AccessToken, false},
		{"unknown token", "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", true},
		{"ID token as access token", "Bearer " + tr.IDToken, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptestGet(testIssuer + PathUserinfo)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			w := f.do(r)
			checkUnauthorized(t, w.Code, w.Header().Get("WWW-Authenticate"), tt.wantErrorCode)
		})
	}

	t.Run("token in the query is not read", func(t *testing.T) {
		w := f.do(httptestGet(testIssuer + PathUserinfo + "?access_token=" + tr.AccessToken))
		checkUnauthorized(t, w.Code, w.Header().Get("WWW-Authenticate"), false)
	})

	t.Run("expired token", func(t *testing.T) {
		f.clock.Advance(DefaultTokenTTL)
		w := f.userinfo(tr.AccessToken)
		checkUnauthorized(t, w.Code, w.Header().Get("WWW-Authenticate"), true)
	})
}

func checkUnauthorized(t *testing.T, status int, challenge string, wantErrorCode bool) {
	t.Helper()
	if status != http.StatusUnauthorized {
		t.Errorf("status %d, want 401", status)
	}
	if !strings.HasPrefix(challenge, "Bearer ") {
		t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", challenge)
	}
	if got := strings.Contains(challenge, `error="invalid_token"`); got != wantErrorCode {
		t.Errorf("WWW-Authenticate = %q: invalid_token %v, want %v", challenge, got, wantErrorCode)
	}
}

// With the store down the provider fails closed: no code, no token.
func TestStoreDown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	code := f.code(basicClient, basicRedir)
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	req, perr := f.parse(authParams(basicClient, basicRedir))
	if perr != nil {
		t.Fatal(perr)
	}
	_, err := f.p.Complete(context.Background(), req, testRelease("vendor-b", "sub"))
	if err == nil || !errorsIs(err, store.ErrBackend) {
		t.Errorf("Complete: %v, want a store.ErrBackend error", err)
	}
	w := f.postToken(basicTokenForm(code), basicClient, basicSecret)
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("token: status %d, want 503", w.Code)
	}
	if w := f.userinfo("AAAA"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("userinfo: status %d, want 503", w.Code)
	}
}
