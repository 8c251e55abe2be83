package oidcop

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/attr"
)

func TestDiscovery(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := f.do(httptestGet(testIssuer + PathDiscovery))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	got := decodeJSON(t, w.Body.Bytes())
	strs := func(s ...string) []any {
		out := make([]any, len(s))
		for i, v := range s {
			out[i] = v
		}
		return out
	}
	var claims []any
	for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "azp", "at_hash", "sid"} {
		claims = append(claims, c)
	}
	for _, d := range attr.All() {
		claims = append(claims, d.Claim())
	}
	want := map[string]any{
		"issuer":                                           testIssuer,
		"authorization_endpoint":                           testIssuer + "/oidc/authorize",
		"token_endpoint":                                   testIssuer + "/oidc/token",
		"userinfo_endpoint":                                testIssuer + "/oidc/userinfo",
		"jwks_uri":                                         testIssuer + "/oidc/jwks",
		"scopes_supported":                                 strs("openid", "profile", "email"),
		"response_types_supported":                         strs("code"),
		"response_modes_supported":                         strs("query"),
		"grant_types_supported":                            strs("authorization_code"),
		"subject_types_supported":                          strs("pairwise"),
		"id_token_signing_alg_values_supported":            strs("ES256", "RS256"),
		"token_endpoint_auth_methods_supported":            strs("private_key_jwt", "client_secret_basic"),
		"token_endpoint_auth_signing_alg_values_supported": strs("ES256", "PS256", "RS256"),
		"code_challenge_methods_supported":                 strs("S256"),
		"claims_supported":                                 claims,
		"claim_types_supported":                            strs("normal"),
		"authorization_response_iss_parameter_supported":   true,
		"claims_parameter_supported":                       true,
		"request_parameter_supported":                      false,
		"request_uri_parameter_supported":                  false,
		// Logout (issue 14): RP-initiated, front- and back-channel, each
		// with sid.
		"end_session_endpoint":                  testIssuer + "/oidc/logout",
		"frontchannel_logout_supported":         true,
		"frontchannel_logout_session_supported": true,
		"backchannel_logout_supported":          true,
		"backchannel_logout_session_supported":  true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("discovery (-want +got):\n%s", diff)
	}
}

func TestRoutesBelowIssuerPath(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.p.Issuer = "https://bro.skola.example.se/kommun"
	if err := f.p.Validate(); err != nil {
		t.Fatal(err)
	}
	r := newRouter(f.p)
	for _, path := range []string{"/kommun" + PathDiscovery, "/kommun" + PathJWKS} {
		w := doWith(r, httptestGet("https://bro.skola.example.se"+path))
		if w.Code != http.StatusOK {
			t.Errorf("%s: status %d", path, w.Code)
		}
	}
}

// Discovery lists the levels the organiser's upstreams can prove, from
// configuration (case 49).
func TestCase49_DiscoveryListsACRValues(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.p.ACRValues = []string{"http://id.skolfederation.se/loa/bas", "http://id.skolfederation.se/loa/2fa"}
	got := decodeJSON(t, f.do(httptestGet(testIssuer+PathDiscovery)).Body.Bytes())
	want := []any{"http://id.skolfederation.se/loa/bas", "http://id.skolfederation.se/loa/2fa"}
	if diff := cmp.Diff(want, got["acr_values_supported"]); diff != "" {
		t.Errorf("acr_values_supported (-want +got):\n%s", diff)
	}
}
