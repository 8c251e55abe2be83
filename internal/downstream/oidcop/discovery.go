package oidcop

import (
	"encoding/json"
	"net/http"
)

// discovery is the provider metadata (OIDC Discovery 1.0 section 3, RFC
// 8414, RFC 9207). It lists only what the provider does.
type discovery struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgs      []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	ACRValuesSupported                []string `json:"acr_values_supported,omitempty"`
	ClaimTypesSupported               []string `json:"claim_types_supported"`
	IssParameterSupported             bool     `json:"authorization_response_iss_parameter_supported"`
	ClaimsParameterSupported          bool     `json:"claims_parameter_supported"`
	RequestParameterSupported         bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	logoutDiscovery
}

// discovery returns the provider metadata served at PathDiscovery.
func (p *Provider) discovery() discovery {
	authAlgs := make([]string, len(assertionAlgs))
	for i, a := range assertionAlgs {
		authAlgs[i] = string(a)
	}
	return discovery{
		Issuer:                            p.Issuer,
		AuthorizationEndpoint:             p.endpoint(PathAuthorize),
		TokenEndpoint:                     p.endpoint(PathToken),
		UserinfoEndpoint:                  p.endpoint(PathUserinfo),
		JWKSURI:                           p.endpoint(PathJWKS),
		ScopesSupported:                   append([]string(nil), supportedScopes...),
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               []string{"authorization_code"},
		SubjectTypesSupported:             []string{"pairwise"},
		IDTokenSigningAlgValuesSupported:  p.Keys.algs(),
		TokenEndpointAuthMethodsSupported: []string{"private_key_jwt", "client_secret_basic"},
		TokenEndpointAuthSigningAlgs:      authAlgs,
		CodeChallengeMethodsSupported:     []string{"S256"},
		ClaimsSupported:                   supportedClaims(),
		ClaimTypesSupported:               []string{"normal"},
		IssParameterSupported:             true,
		logoutDiscovery:                   p.logoutDiscovery(),
		ACRValuesSupported:                append([]string(nil), p.ACRValues...),
		// Only an essential acr in it changes anything (see AuthRequest).
		ClaimsParameterSupported: true,
	}
}

func (p *Provider) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	writePublic(w, p.discovery())
}

// serveJWKS publishes the keys at the current time, the next key included
// before it signs anything (SECURITY.md case 32).
func (p *Provider) serveJWKS(w http.ResponseWriter, r *http.Request) {
	writePublic(w, p.Keys.JWKS(p.now()))
}

// writePublic writes public, cacheable metadata. The cache time is short
// so that a retired key or changed metadata is noticed soon; RPs refetch
// the JWKS anyway when they meet an unknown kid.
func writePublic(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(b)
}
