package oidcop

import (
	"encoding/json"
	"net/http"

	"github.com/rs/zerolog"
)

// OAuth 2.0 and OpenID Connect error codes the provider uses.
const (
	CodeInvalidRequest          = "invalid_request"
	CodeInvalidClient           = "invalid_client"
	CodeInvalidGrant            = "invalid_grant"
	CodeUnsupportedGrantType    = "unsupported_grant_type"
	CodeUnsupportedResponseType = "unsupported_response_type"
	CodeInvalidScope            = "invalid_scope"
	CodeInvalidToken            = "invalid_token"
	CodeRequestNotSupported     = "request_not_supported"
	CodeRequestURINotSupported  = "request_uri_not_supported"
	CodeRegistrationUnsupported = "registration_not_supported"
	CodeServerError             = "server_error"
	CodeTemporarilyUnavailable  = "temporarily_unavailable"
	// CodeLoginRequired answers prompt=none without a session upstream,
	// and a login older than the client allowed (OIDC Core 3.1.2.6).
	CodeLoginRequired = "login_required"
	// CodeUnmetAuthenticationRequirements answers a request for an
	// authentication level the login did not prove (OpenID Connect Core
	// Unmet Authentication Requirements 1.0).
	CodeUnmetAuthenticationRequirements = "unmet_authentication_requirements"
)

// Error is a protocol error. Description is a short fixed text that never
// repeats the request's values.
//
// From ParseAuthorize: Redirect is "" when the redirect URI cannot be
// trusted (unknown client, unregistered redirect_uri); the caller then
// shows an error page with Status and must not redirect. Otherwise
// Redirect is the complete error response URL (error, error_description,
// state, iss) to send the browser to with Status.
type Error struct {
	Code, Description string
	Redirect          string
	Status            int
}

// Error returns the code and the fixed description.
func (e *Error) Error() string {
	return "oidcop: " + e.Code + ": " + e.Description
}

// tokenError is the JSON error body of the token endpoint (RFC 6749 5.2).
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// writeJSON writes v with the headers every token and userinfo response
// carries: their bodies are credentials or personal data, never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeTokenError answers the token endpoint with an RFC 6749 error.
// invalid_client is 401 with a challenge, as RFC 6749 5.2 asks.
// reason is a fixed word for the log; clientID is "" when unknown.
func writeTokenError(w http.ResponseWriter, r *http.Request, clientID string, status int, code, description, reason string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="skolbro"`)
	}
	zerolog.Ctx(r.Context()).Info().
		Str("client_id", clientID).Str("oidc_error", code).Str("reason", reason).
		Msg("oidc token request refused")
	writeJSON(w, status, tokenError{Error: code, Description: description})
}
