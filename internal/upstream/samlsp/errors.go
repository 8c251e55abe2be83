package samlsp

import (
	"net/http"
	"strings"
)

// Reasons a response is refused. Each is a fixed snake_case word, safe to
// log and to use as a metrics label.
const (
	ReasonUnsigned             = "unsigned"
	ReasonBadSignature         = "bad_signature"
	ReasonSHA1                 = "sha1"
	ReasonBadAlgorithm         = "bad_algorithm"
	ReasonSignaturePlacement   = "signature_placement"
	ReasonAssertionCount       = "assertion_count"
	ReasonWrapped              = "wrapped"
	ReasonDuplicateID          = "duplicate_id"
	ReasonAudience             = "audience"
	ReasonRecipient            = "recipient"
	ReasonDestination          = "destination"
	ReasonInResponseTo         = "in_response_to"
	ReasonBinding              = "binding"
	ReasonExpired              = "expired"
	ReasonNotYetValid          = "not_yet_valid"
	ReasonReplay               = "replay"
	ReasonIssuer               = "issuer"
	ReasonStatus               = "status"
	ReasonSubjectConfirmation  = "subject_confirmation"
	ReasonAuthnStatement       = "authn_statement"
	ReasonComment              = "comment"
	ReasonMalformed            = "malformed"
	ReasonRoundTrip            = "round_trip"
	ReasonDTD                  = "dtd"
	ReasonTooLarge             = "too_large"
	ReasonTooDeep              = "too_deep"
	ReasonTooManyNamespaces    = "too_many_namespaces"
	ReasonTooManyNodes         = "too_many_nodes"
	ReasonEncryptedUnsupported = "encrypted_unsupported"
	// ReasonEncryptionRefused: an encryption algorithm the bridge never
	// accepts (RSA-1_5, unknown), or AES-CBC outside a signed response.
	ReasonEncryptionRefused = "encryption_refused"
	// ReasonDecrypt: an encrypted assertion that does not decrypt, with
	// any of the SP's keys, to one well-formed assertion. One reason for
	// every such failure, so that no answer tells them apart.
	ReasonDecrypt = "decrypt_failed"
	// ReasonUnencrypted: a plain assertion from an IdP that must encrypt.
	ReasonUnencrypted      = "unencrypted"
	ReasonStoreUnavailable = "store_unavailable"
)

// Error is what HandleResponse returns for every refusal.
type Error struct {
	// Reason is one of the Reason constants.
	Reason string
	// Status is the HTTP status to answer with: 400 for refused input, 413
	// for an oversized message, 403 for a non-Success status from the IdP,
	// 503 when the store is unreachable.
	Status int
	// UpstreamStatus is the IdP's top-level status code URI for Reason
	// "status": one of the SAML 2.0 status codes, or "other" for a code
	// that is not one (so that it is safe to log).
	UpstreamStatus string
	// UpstreamSubStatus is the second-level status code, if any, under the
	// same rule.
	UpstreamSubStatus string
	// State is the state given to StartLogin of the login the refused
	// response answered, when the SP can tell without trusting the
	// response: the pending request it names was started by this same
	// browser (the binding matches; the request is not consumed by a
	// refusal the browser could still recover from), or, for Reason
	// "replay", the verified assertion was first accepted for that login
	// (what SetReplayNote kept). nil otherwise. It is for recording the
	// refusal against the vendor, never for going on with the login.
	// For Reason "status" the caller may also answer that login's vendor
	// with it, such as a vendor's passive login.
	State []byte
	err   error
}

// Error returns the reason and the cause; neither carries input text.
func (e *Error) Error() string {
	if e.err != nil {
		return "samlsp: " + e.Reason + ": " + e.err.Error()
	}
	return "samlsp: " + e.Reason
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.err }

func refuse(reason string, cause error) *Error {
	status := http.StatusBadRequest
	switch reason {
	case ReasonTooLarge:
		status = http.StatusRequestEntityTooLarge
	case ReasonStoreUnavailable:
		status = http.StatusServiceUnavailable
	case ReasonStatus:
		status = http.StatusForbidden
	}
	return &Error{Reason: reason, Status: status, err: cause}
}

// safeStatus returns s when it is one of the SAML 2.0 status codes
// (saml-core 3.2.2.2), and "other" otherwise, so that it is safe to log.
func safeStatus(s string) string {
	const prefix = "urn:oasis:names:tc:SAML:2.0:status:"
	if s == "" {
		return ""
	}
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return "other"
	}
	switch rest {
	case "Success", "Requester", "Responder", "VersionMismatch", "AuthnFailed",
		"InvalidAttrNameOrValue", "InvalidNameIDPolicy", "NoAuthnContext", "NoAvailableIDP",
		"NoPassive", "NoSupportedIDP", "PartialLogout", "ProxyCountExceeded", "RequestDenied",
		"RequestUnsupported", "RequestVersionDeprecated", "RequestVersionTooHigh",
		"RequestVersionTooLow", "ResourceNotRecognized", "TooManyResponses",
		"UnknownAttrProfile", "UnknownPrincipal", "UnsupportedBinding":
		return s
	}
	return "other"
}
