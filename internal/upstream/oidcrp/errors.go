package oidcrp

import (
	"errors"
	"net/http"
)

// Reasons a callback is refused. Each is a fixed snake_case word, safe to
// log and to use as a metrics label.
const (
	// ReasonStatus: the IdP answered with an error parameter.
	ReasonStatus = "status"
	// ReasonState: state missing, repeated, malformed, unknown, expired or
	// already used.
	ReasonState = "state"
	// ReasonBinding: the state was issued to another browser.
	ReasonBinding = "binding"
	// ReasonIss: the RFC 9207 iss parameter is not the issuer, or missing
	// although the IdP advertises it.
	ReasonIss = "iss"
	// ReasonExchange: no code, or the code exchange failed.
	ReasonExchange = "exchange"
	// ReasonIDToken: the ID token is missing, malformed, badly signed, by
	// another issuer, for another audience, or lacks sub.
	ReasonIDToken = "id_token"
	// ReasonNonce: the ID token's nonce is not the one sent.
	ReasonNonce = "nonce"
	// ReasonExpired: the ID token has expired.
	ReasonExpired = "expired"
	// ReasonClaim: the ID token lacks a value Config.RequiredClaims
	// requires (such as Google's hd for another domain).
	ReasonClaim = "claim"
	// ReasonStoreUnavailable: the store failed; fail closed with 503.
	ReasonStoreUnavailable = "store_unavailable"
)

// Error is what HandleCallback returns for every refusal.
type Error struct {
	// Reason is one of the Reason constants.
	Reason string
	// Status is the HTTP status to answer with: 400 for refused input, 403
	// for an error from the IdP or a missing required claim, 502 when the
	// token endpoint could not be reached or answered nonsense, 503 when
	// the store is unreachable.
	Status int
	// UpstreamError is the IdP's error code for Reason "status": one of
	// the registered OAuth 2.0 and OIDC codes, or "other" (so that it is
	// safe to log).
	UpstreamError string
	// State is the state given to StartLogin of the login the refused
	// callback answered, once that pending login was redeemed for this
	// browser (the state parameter named it and the binding matched);
	// nil for refusals before that. It is for recording the refusal
	// against the vendor, never for going on with the login. For Reason "status" (the IdP's error answered this browser's
	// pending login) the caller may also answer that login's vendor with
	// it, such as a vendor's passive login.
	State []byte
	err   error
}

// Error returns the reason and the cause; neither carries input text.
func (e *Error) Error() string {
	if e.err != nil {
		return "oidcrp: " + e.Reason + ": " + e.err.Error()
	}
	return "oidcrp: " + e.Reason
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.err }

func refuse(reason string, cause error) *Error {
	status := http.StatusBadRequest
	switch reason {
	case ReasonStoreUnavailable:
		status = http.StatusServiceUnavailable
	case ReasonStatus, ReasonClaim:
		status = http.StatusForbidden
	}
	return &Error{Reason: reason, Status: status, err: cause}
}

// Fixed causes. None carries input.
var (
	errNoState          = errors.New("state parameter missing, repeated or malformed")
	errUnknownState     = errors.New("no pending login for state")
	errPending          = errors.New("pending login does not decode")
	errBinding          = errors.New("pending login belongs to another browser")
	errIssParam         = errors.New("iss parameter is not the issuer")
	errIssMissing       = errors.New("iss parameter missing although the IdP advertises it")
	errUpstream         = errors.New("IdP returned an error")
	errNoCode           = errors.New("code parameter missing or repeated")
	errTokenRefused     = errors.New("token endpoint refused the code")
	errTokenUnreachable = errors.New("token endpoint failed")
	errNoIDToken        = errors.New("token response has no ID token")
	errTokenExpired     = errors.New("ID token expired")
	errTokenInvalid     = errors.New("ID token not valid (signature, algorithm, issuer or audience)")
	errAZP              = errors.New("ID token azp is not this client")
	errNoSubject        = errors.New("ID token has no sub")
	errClaims           = errors.New("ID token claims do not decode")
	errNonce            = errors.New("ID token nonce does not match")
	errRequiredClaim    = errors.New("ID token lacks a required claim value")
)

// safeUpstreamError returns code when it is a registered error code of an
// authorization response (RFC 6749 4.1.2.1, OIDC Core 3.1.2.6), and
// "other" otherwise.
func safeUpstreamError(code string) string {
	switch code {
	case "invalid_request", "unauthorized_client", "access_denied", "unsupported_response_type",
		"invalid_scope", "server_error", "temporarily_unavailable",
		"interaction_required", "login_required", "account_selection_required", "consent_required",
		"invalid_request_uri", "invalid_request_object", "request_not_supported",
		"request_uri_not_supported", "registration_not_supported",
		"unmet_authentication_requirements":
		return code
	}
	return "other"
}
