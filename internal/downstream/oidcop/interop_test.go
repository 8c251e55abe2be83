package oidcop

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
)

// TestInteropGoOIDC runs the code flow with an OIDC client library the
// project did not write (coreos/go-oidc with golang.org/x/oauth2) as the
// vendor: discovery over TLS, PKCE, the code exchange with either client
// authentication, and verification of the ID token's signature, iss, aud,
// nonce and at_hash. The login itself is replaced by a fixed release.
func TestInteropGoOIDC(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	router := f.router
	srv := httptest.NewUnstartedServer(router)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.p.Issuer = srv.URL
	if err := f.p.Validate(); err != nil {
		t.Fatal(err)
	}
	// The lead's login flow, reduced to what the provider needs.
	router.HandleFunc(PathAuthorize, func(w http.ResponseWriter, r *http.Request) {
		req, perr := f.p.ParseAuthorize(r)
		if perr != nil {
			if perr.Redirect == "" {
				http.Error(w, perr.Description, perr.Status)
				return
			}
			http.Redirect(w, r, perr.Redirect, perr.Status)
			return
		}
		loc, err := f.p.Complete(r.Context(), req, testRelease(req.VendorID, "sub-"+req.VendorID))
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, loc, http.StatusFound)
	}).Methods("GET", "POST")

	ctx := oidc.ClientContext(context.Background(), srv.Client())
	provider, err := oidc.NewProvider(ctx, srv.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var meta struct {
		Iss bool `json:"authorization_response_iss_parameter_supported"`
	}
	if err := provider.Claims(&meta); err != nil || !meta.Iss {
		t.Errorf("discovery: iss parameter support %v (%v)", meta.Iss, err)
	}

	browser := *srv.Client()
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	tests := []struct {
		name     string
		clientID string
		redirect string
		secret   string
		style    oauth2.AuthStyle
		extra    func() []oauth2.AuthCodeOption
		wantKID  string
	}{
		{name: "client_secret_basic, RS256", clientID: basicClient, redirect: basicRedir, secret: basicSecret,
			style: oauth2.AuthStyleInHeader, wantKID: "op-rsa-1"},
		{name: "private_key_jwt, ES256", clientID: jwtClientID, redirect: jwtRedirect,
			style: oauth2.AuthStyleInParams, wantKID: "op-ec-1",
			extra: func() []oauth2.AuthCodeOption {
				a := f.assertion(testKey("client-ec"), "a-ec", jose.ES256, func(c map[string]any) { c["aud"] = srv.URL + PathToken })
				return []oauth2.AuthCodeOption{
					oauth2.SetAuthURLParam("client_assertion_type", JWTBearerAssertion),
					oauth2.SetAuthURLParam("client_assertion", a),
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := provider.Endpoint()
			ep.AuthStyle = tt.style
			conf := oauth2.Config{
				ClientID: tt.clientID, ClientSecret: tt.secret, Endpoint: ep,
				RedirectURL: tt.redirect, Scopes: []string{oidc.ScopeOpenID, "profile"},
			}
			verifier := oauth2.GenerateVerifier()
			state, nonce := randomID(t), randomID(t)
			resp, err := browser.Get(conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("authorize: status %d", resp.StatusCode)
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			// What a careful client checks before redeeming (RFC 9207).
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != tt.redirect {
				t.Errorf("redirected to %q", got)
			}
			if loc.Query().Get("state") != state || loc.Query().Get("iss") != srv.URL {
				t.Errorf("state/iss = %q/%q", loc.Query().Get("state"), loc.Query().Get("iss"))
			}

			xctx := context.WithValue(ctx, oauth2.HTTPClient, srv.Client())
			opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}
			if tt.extra != nil {
				opts = append(opts, tt.extra()...)
			}
			tok, err := conf.Exchange(xctx, loc.Query().Get("code"), opts...)
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			rawID, _ := tok.Extra("id_token").(string)
			if tokenKID(t, rawID) != tt.wantKID {
				t.Errorf("kid %q, want %q", tokenKID(t, rawID), tt.wantKID)
			}
			idt, err := provider.Verifier(&oidc.Config{ClientID: tt.clientID, Now: f.clock.Now}).Verify(ctx, rawID)
			if err != nil {
				t.Fatalf("go-oidc refuses the ID token: %v", err)
			}
			if idt.Nonce != nonce {
				t.Errorf("nonce %q, want %q", idt.Nonce, nonce)
			}
			if idt.Issuer != srv.URL || !cmp.Equal(idt.Audience, []string{tt.clientID}) {
				t.Errorf("iss %q aud %v", idt.Issuer, idt.Audience)
			}
			vendor := f.p.Clients[tt.clientID].VendorID
			if idt.Subject != "sub-"+vendor {
				t.Errorf("sub %q", idt.Subject)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("at_hash: %v", err)
			}
			var claims struct {
				GivenName   string   `json:"given_name"`
				Affiliation []string `json:"eduperson_scoped_affiliation"`
				SchoolUnits []string `json:"sisSchoolUnitCode"`
			}
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if claims.GivenName != "Testa" || !cmp.Equal(claims.Affiliation, []string{"student@skola.example.se"}) || len(claims.SchoolUnits) != 2 {
				t.Errorf("claims %+v", claims)
			}

			// The token is for this client only, and bound to this provider.
			if _, err := provider.Verifier(&oidc.Config{ClientID: "someone-else", Now: f.clock.Now}).Verify(ctx, rawID); err == nil {
				t.Error("go-oidc accepted the ID token for another audience")
			}
			tampered := rawID[:strings.LastIndexByte(rawID, '.')+1] + "AAAA"
			if _, err := provider.Verifier(&oidc.Config{ClientID: tt.clientID, Now: f.clock.Now}).Verify(ctx, tampered); err == nil {
				t.Error("go-oidc accepted a tampered signature")
			}

			ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			if ui.Subject != idt.Subject {
				t.Errorf("userinfo sub %q, ID token sub %q", ui.Subject, idt.Subject)
			}
		})
	}

	t.Run("token response headers over TLS", func(t *testing.T) {
		req, perr := f.parse(authParams(basicClient, basicRedir))
		if perr != nil {
			t.Fatal(perr)
		}
		locStr, err := f.p.Complete(ctx, req, testRelease("vendor-b", "sub-b"))
		if err != nil {
			t.Fatal(err)
		}
		loc, _ := url.Parse(locStr)
		r, err := http.NewRequest(http.MethodPost, srv.URL+PathToken, strings.NewReader(basicTokenForm(loc.Query().Get("code")).Encode()))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth(basicClient, basicSecret)
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Pragma") != "no-cache" {
			t.Errorf("status %d, Cache-Control %q, Pragma %q", resp.StatusCode, resp.Header.Get("Cache-Control"), resp.Header.Get("Pragma"))
		}
	})

	t.Run("unregistered redirect is an error page", func(t *testing.T) {
		conf := oauth2.Config{ClientID: basicClient, Endpoint: provider.Endpoint(), RedirectURL: basicRedir + "/evil", Scopes: []string{"openid"}}
		resp, err := browser.Get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}
