package oidcop

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/skolbro/skolbro/internal/release"
)

// Bounds on what a client may send to the authorization endpoint.
const (
	maxAuthorizeBody = 32 << 10
	maxStateLen      = 512
	maxNonceLen      = 512
)

// supportedScopes are the scopes accepted. They do not change what is
// released: the vendor's policy alone decides that.
var supportedScopes = []string{"openid", "profile", "email"}

// ErrNoSubject is returned by Complete when the release carries no
// pairwise subject: without one the provider cannot name the person.
var ErrNoSubject = errors.New("oidcop: release has no pairwise subject")

// AuthRequest is a validated authorization request. It holds no personal
// data and survives a JSON round trip, so the login flow can keep it in
// its session while the person logs in upstream.
type AuthRequest struct {
	ClientID string `json:"client_id"`
	// VendorID names the vendor's release policy.
	VendorID      string `json:"vendor_id"`
	RedirectURI   string `json:"redirect_uri"`
	State         string `json:"state,omitempty"`
	Nonce         string `json:"nonce,omitempty"`
	CodeChallenge string `json:"code_challenge"`
	Scope         string `json:"scope"`
	// Prompt is the prompt parameter as sent ("none", "login", ...). With
	// "none" the login flow must answer login_required (see ErrorResponse)
	// unless it can finish without showing anything.
	Prompt string `json:"prompt,omitempty"`
	// MaxAge is the max_age parameter, or nil.
	MaxAge *int64 `json:"max_age,omitempty"`
	// ACRValues are the acr_values the client asked for (voluntary: the
	// login flow enforces those it knows), in order.
	ACRValues []string `json:"acr_values,omitempty"`
	// EssentialACR are the values of an essential acr claim requested
	// through the claims parameter (OIDC Core 5.5.1.1): one of them must
	// be met, or the login fails with unmet_authentication_requirements.
	EssentialACR []string `json:"essential_acr,omitempty"`
	// LoginHintDomain is the domain of a login_hint of the form
	// user@domain, lower-cased: a discovery hint. The rest of the hint
	// names a person and is never kept.
	LoginHintDomain string `json:"login_hint_domain,omitempty"`
}

// ParseAuthorize validates a GET or POST to the authorization endpoint.
//
// An error that makes the redirect URI untrustworthy (unknown client, a
// redirect_uri that is not exactly one of the client's, SECURITY.md case
// 26) has Redirect "": show an error page, never redirect. Every other
// error has Redirect set to the error response (with state and, per RFC
// 9207, iss).
func (p *Provider) ParseAuthorize(r *http.Request) (*AuthRequest, *Error) {
	params, perr := authorizeParams(r)
	if perr != nil {
		return nil, perr
	}
	clientID, ok := single(params, "client_id")
	if !ok || clientID == "" {
		return nil, pageError(http.StatusBadRequest, CodeInvalidRequest, "client_id is missing or repeated")
	}
	client := p.Clients[clientID]
	if client == nil {
		return nil, pageError(http.StatusBadRequest, CodeInvalidRequest, "unknown client")
	}
	redirectURI, ok := single(params, "redirect_uri")
	if !ok || !client.redirectRegistered(redirectURI) {
		return nil, pageError(http.StatusBadRequest, CodeInvalidRequest, "redirect_uri is not registered for this client")
	}

	// From here on errors go back to the client's redirect URI.
	req := &AuthRequest{ClientID: client.ID, VendorID: client.VendorID, RedirectURI: redirectURI}
	state, ok := single(params, "state")
	if ok && len(state) <= maxStateLen {
		req.State = state
	}
	fail := func(code, description string) (*AuthRequest, *Error) {
		return nil, p.ErrorResponse(req, code, description)
	}
	if !ok || len(state) > maxStateLen {
		return fail(CodeInvalidRequest, "state is repeated or too long")
	}
	for _, name := range []string{"response_type", "response_mode", "scope", "nonce", "code_challenge", "code_challenge_method", "prompt", "max_age", "request", "request_uri", "registration", "acr_values", "claims"} {
		if len(params[name]) > 1 {
			return fail(CodeInvalidRequest, "a parameter is repeated")
		}
	}
	switch {
	case params.Has("request"):
		return fail(CodeRequestNotSupported, "request objects are not supported")
	case params.Has("request_uri"):
		return fail(CodeRequestURINotSupported, "request_uri is not supported")
	case params.Has("registration"):
		return fail(CodeRegistrationUnsupported, "registration is not supported")
	}
	if params.Get("response_type") != "code" {
		return fail(CodeUnsupportedResponseType, "only response_type code is supported")
	}
	if rm := params.Get("response_mode"); params.Has("response_mode") && rm != "query" {
		return fail(CodeInvalidRequest, "only response_mode query is supported")
	}
	if desc := checkScope(params.Get("scope")); desc != "" {
		return fail(CodeInvalidScope, desc)
	}
	req.Scope = strings.Join(strings.Fields(params.Get("scope")), " ")
	if params.Get("code_challenge_method") != "S256" {
		return fail(CodeInvalidRequest, "PKCE with code_challenge_method S256 is required")
	}
	req.CodeChallenge = params.Get("code_challenge")
	if !validChallenge(req.CodeChallenge) {
		return fail(CodeInvalidRequest, "code_challenge must be a base64url SHA-256 value")
	}
	req.Nonce = params.Get("nonce")
	if len(req.Nonce) > maxNonceLen {
		return fail(CodeInvalidRequest, "nonce is too long")
	}
	if h := params.Get("login_hint"); len(h) <= 256 {
		if i := strings.LastIndexByte(h, '@'); i >= 0 {
			req.LoginHintDomain = strings.ToLower(h[i+1:])
		}
	}
	req.Prompt = params.Get("prompt")
	if !validPrompt(req.Prompt) {
		return fail(CodeInvalidRequest, "prompt is not valid")
	}
	if params.Has("max_age") {
		n, err := strconv.ParseInt(params.Get("max_age"), 10, 64)
		if err != nil || n < 0 {
			return fail(CodeInvalidRequest, "max_age must be a non-negative integer")
		}
		req.MaxAge = &n
	}
	if v := params.Get("acr_values"); v != "" {
		if req.ACRValues = boundedList(v); req.ACRValues == nil {
			return fail(CodeInvalidRequest, "acr_values is too long")
		}
	}
	if params.Has("claims") {
		acr, ok := essentialACR(params.Get("claims"))
		if !ok {
			return fail(CodeInvalidRequest, "claims is not a valid claims request")
		}
		req.EssentialACR = acr
	}
	return req, nil
}

// Bounds on the assurance a client may ask for.
const (
	maxACRValues  = 16
	maxACRLen     = 1024
	maxClaimsJSON = 8 << 10
)

// boundedList splits a space-separated list, or returns nil when it has
// too many or too long entries.
func boundedList(v string) []string {
	fields := strings.Fields(v)
	if len(fields) > maxACRValues {
		return nil
	}
	for _, f := range fields {
		if len(f) > maxACRLen {
			return nil
		}
	}
	return fields
}

// essentialACR reads the claims parameter (OIDC Core 5.5) for an
// essential acr in the ID token or userinfo request, and returns its
// values ("value" or "values"). The other claims it names change nothing:
// the vendor's policy alone decides what is released. ok is false for a
// parameter that is not a valid claims request.
func essentialACR(raw string) ([]string, bool) {
	if len(raw) > maxClaimsJSON {
		return nil, false
	}
	type claimReq struct {
		Essential bool     `json:"essential"`
		Value     *string  `json:"value"`
		Values    []string `json:"values"`
	}
	var req map[string]map[string]*claimReq
	if err := json.Unmarshal([]byte(raw), &req); err != nil {
		return nil, false
	}
	var out []string
	for _, member := range []string{"id_token", "userinfo"} {
		c := req[member]["acr"]
		if c == nil || !c.Essential {
			continue
		}
		vals := c.Values
		if c.Value != nil {
			vals = append(vals, *c.Value)
		}
		for _, v := range vals {
			if v == "" || len(v) > maxACRLen || len(out) >= maxACRValues {
				return nil, false
			}
			if !contains(out, v) {
				out = append(out, v)
			}
		}
		if len(vals) == 0 {
			// An essential acr without values asks only that acr be
			// present, which it always is.
			continue
		}
	}
	return out, true
}

// authorizeParams reads the request's parameters: the query of a GET, the
// form body of a POST. Malformed input is refused rather than skipped.
func authorizeParams(r *http.Request) (url.Values, *Error) {
	switch r.Method {
	case http.MethodGet:
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, pageError(http.StatusBadRequest, CodeInvalidRequest, "malformed query")
		}
		return q, nil
	case http.MethodPost:
		r.Body = http.MaxBytesReader(nil, r.Body, maxAuthorizeBody)
		if err := r.ParseForm(); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return nil, pageError(http.StatusRequestEntityTooLarge, CodeInvalidRequest, "request too large")
			}
			return nil, pageError(http.StatusBadRequest, CodeInvalidRequest, "malformed form")
		}
		return r.PostForm, nil
	default:
		return nil, pageError(http.StatusMethodNotAllowed, CodeInvalidRequest, "use GET or POST")
	}
}

// single returns the one value of name; ok is false when it is repeated.
// An absent parameter is "" and ok.
func single(v url.Values, name string) (string, bool) {
	switch len(v[name]) {
	case 0:
		return "", true
	case 1:
		return v[name][0], true
	default:
		return "", false
	}
}

func pageError(status int, code, description string) *Error {
	return &Error{Code: code, Description: description, Status: status}
}

// checkScope returns "" for an acceptable scope, or why it is not.
func checkScope(scope string) string {
	hasOpenID := false
	for _, s := range strings.Fields(scope) {
		if s == "openid" {
			hasOpenID = true
		}
		if !contains(supportedScopes, s) {
			return "a requested scope is not supported"
		}
	}
	if !hasOpenID {
		return "the openid scope is required"
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// validChallenge accepts the S256 form: 43 base64url characters that
// decode to 32 bytes.
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	return err == nil && len(b) == 32
}

func validPrompt(prompt string) bool {
	values := strings.Fields(prompt)
	for _, v := range values {
		switch v {
		case "login", "consent", "select_account":
		case "none":
			if len(values) > 1 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// ErrorResponse builds the error redirect for a request ParseAuthorize
// accepted (req must be one it returned), for errors the login flow finds
// later (login_required, access_denied, server_error): error,
// error_description, state and iss. description must be a fixed text.
func (p *Provider) ErrorResponse(req *AuthRequest, code, description string) *Error {
	v := url.Values{"error": {code}, "iss": {p.Issuer}}
	if description != "" {
		v.Set("error_description", description)
	}
	if req.State != "" {
		v.Set("state", req.State)
	}
	return &Error{Code: code, Description: description, Status: http.StatusFound, Redirect: addQuery(req.RedirectURI, v)}
}

// addQuery appends v to the redirect URI, keeping any query it has byte
// for byte (the client registered it that way).
func addQuery(uri string, v url.Values) string {
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
		if strings.HasSuffix(uri, "?") || strings.HasSuffix(uri, "&") {
			sep = ""
		}
	}
	return uri + sep + v.Encode()
}

// grant is what a code stands for, kept in the store under the code's
// hash. It holds the claims already rendered from the release, so the
// token endpoint needs nothing else.
type grant struct {
	Request   AuthRequest    `json:"request"`
	Sub       string         `json:"sub"`
	Claims    map[string]any `json:"claims"`
	AuthTime  int64          `json:"auth_time,omitempty"`
	ACR       string         `json:"acr,omitempty"`
	ExpiresAt time.Time      `json:"expires_at"`

	// SID names the session for logout (Front- and Back-Channel Logout).
	SID string `json:"sid,omitempty"`
}

// Complete issues a code for req, carrying what the release step produced
// for the client's vendor, and returns the redirect URL (code, state, iss).
// It refuses a release without a pairwise subject (ErrNoSubject) or made
// for another vendor.
func (p *Provider) Complete(ctx context.Context, req *AuthRequest, rel *release.Released) (string, error) {
	return p.CompleteSession(ctx, req, rel, "")
}

// CompleteSession is Complete for a login the bridge can log out: sid
// (from NewSID) goes into the ID token, and names the session in
// front- and back-channel logout.
func (p *Provider) CompleteSession(ctx context.Context, req *AuthRequest, rel *release.Released, sid string) (string, error) {
	ttl := p.codeTTL()
	if ttl < 0 || ttl > MaxCodeTTL {
		return "", fmt.Errorf("oidcop: code lifetime %s: must be at most %s", ttl, MaxCodeTTL)
	}
	if req == nil || rel == nil {
		return "", errors.New("oidcop: complete: no request or no release")
	}
	client := p.Clients[req.ClientID]
	if client == nil {
		return "", errors.New("oidcop: complete: unknown client")
	}
	if err := checkRequest(req, client); err != nil {
		return "", err
	}
	if rel.VendorID != client.VendorID {
		return "", errors.New("oidcop: complete: release was made for another vendor")
	}
	if rel.Sub == "" {
		return "", ErrNoSubject
	}
	now := p.now()
	g := grant{
		Request:   *req,
		Sub:       rel.Sub,
		Claims:    attributeClaims(rel),
		ACR:       rel.AuthnContext,
		SID:       sid,
		ExpiresAt: now.Add(ttl),
	}
	if !rel.AuthnInstant.IsZero() {
		g.AuthTime = rel.AuthnInstant.Unix()
	}
	b, err := json.Marshal(g)
	if err != nil {
		return "", fmt.Errorf("oidcop: complete: %w", err)
	}
	code, err := p.newSecret()
	if err != nil {
		return "", err
	}
	// The owner entry only tells the token endpoint that a code it cannot
	// find was issued to another client (counted, case 29).
	if err := p.Store.Put(ctx, hashKey(prefixOwner, code), []byte(client.ID), ttl); err != nil {
		return "", fmt.Errorf("oidcop: store code owner: %w", err)
	}
	if err := p.Store.Put(ctx, prefixCode+grantID(client.ID, code), b, ttl); err != nil {
		return "", fmt.Errorf("oidcop: store code: %w", err)
	}
	v := url.Values{"code": {code}, "iss": {p.Issuer}}
	if req.State != "" {
		v.Set("state", req.State)
	}
	return addQuery(req.RedirectURI, v), nil
}

// checkRequest re-checks a request that may have come back from a
// session: the client may have changed since ParseAuthorize.
func checkRequest(req *AuthRequest, client *Client) error {
	switch {
	case !client.redirectRegistered(req.RedirectURI):
		return errors.New("oidcop: complete: redirect_uri is not registered")
	case req.VendorID != client.VendorID:
		return errors.New("oidcop: complete: request names another vendor")
	case !validChallenge(req.CodeChallenge):
		return errors.New("oidcop: complete: request has no S256 code challenge")
	case checkScope(req.Scope) != "":
		return errors.New("oidcop: complete: request scope is not valid")
	case len(req.State) > maxStateLen || len(req.Nonce) > maxNonceLen:
		return errors.New("oidcop: complete: state or nonce too long")
	}
	return nil
}
