// Package oidcrp is the bridge as an OpenID Connect relying party towards a
// school IdP that speaks OIDC (Microsoft Entra ID, Google Workspace, or any
// OpenID Provider with discovery). It has the shape of package samlsp:
// StartLogin stores a pending login bound to the browser and returns the
// IdP's URL; HandleCallback redeems it once and returns what the IdP said
// about the person, or an *Error with a fixed Reason.
//
// The flow is the authorization code flow with PKCE (S256) and a nonce, the
// response in the query. The callback is checked in this order: state
// (taken from the store atomically, so it is single use), the browser
// binding (constant-time compare of SHA-256), the RFC 9207 iss parameter
// (required when the IdP advertises authorization_response_iss_parameter_
// supported, compared exactly when present), the error parameter, then the
// code is exchanged with the PKCE verifier and the ID token verified with
// go-oidc (signature by a key from the IdP's JWKS with one of the
// asymmetric algorithms its discovery lists, iss, aud = client id, exp on
// the injected clock), then azp, the nonce and RequiredClaims. No error
// text carries a token, a code or a claim value.
//
// Discovery must report exactly Config.Issuer (no trailing-slash
// forgiveness). The HTTP client follows no redirects and reads at most
// 1 MiB of any response.
//
// # Example configurations
//
// Microsoft Entra ID (one tenant). Use the tenant id (a GUID), not a
// domain name: discovery reports the GUID and the issuer must match it.
// sub is pairwise per application; the stable identifier of a person in
// the tenant is oid. Given and family names and email need the profile and
// email scopes, and optional claims configured on the app registration.
//
//	Issuer:       "https://login.microsoftonline.com/<tenant-id>/v2.0"
//	ClientID:     "<application (client) id>"
//	ClientSecret: <read from a file>
//	RedirectURL:  "https://bridge.example.se/oidc/rp/callback"
//	Scopes:       openid profile email
//	mapping:      StableID "oid"
//
// Google Workspace. An OAuth client whose app is not limited to the
// organisation accepts any Google account, and the issuer is the same for
// all of them, so RequiredClaims should always pin hd, the Workspace
// domain. sub is stable and never reassigned.
//
//	Issuer:         "https://accounts.google.com"
//	ClientID:       "<client id>.apps.googleusercontent.com"
//	ClientSecret:   <read from a file>
//	RedirectURL:    "https://bridge.example.se/oidc/rp/callback"
//	RequiredClaims: {"hd": ["skola.example.se"]}
//	mapping:        StableID "sub"
//
// A generic OpenID Provider (Keycloak, an eID broker, internal/testop):
//
//	Issuer:       "https://idp.example.se/realms/skola"
//	ClientID:     "skolbro"
//	ClientSecret: <read from a file>
//	RedirectURL:  "https://bridge.example.se/oidc/rp/callback"
//	mapping:      StableID "sub" (or the claim the IdP documents as stable)
package oidcrp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/skolbro/skolbro/internal/store"
)

// Defaults and bounds of Config.
const (
	DefaultStateTTL    = 10 * time.Minute
	MaxStateTTL        = time.Hour
	DefaultHTTPTimeout = 10 * time.Second
	// MaxResponseBytes is the most the RP reads of any response from the
	// IdP (discovery, JWKS, token).
	MaxResponseBytes = 1 << 20
)

// stateKeyPrefix prefixes the store keys of pending logins.
const stateKeyPrefix = "rp:state:"

// DefaultScopes returns the scopes used when Config.Scopes is empty.
func DefaultScopes() []string { return []string{oidc.ScopeOpenID, "profile", "email"} }

// asymmetricAlgs are the ID token signature algorithms the RP can accept;
// of these, only those the IdP's discovery lists are accepted.
var asymmetricAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.EdDSA,
}

// Config configures an RP for one upstream OpenID Provider.
type Config struct {
	// Issuer is the IdP's issuer identifier; discovery must report it
	// exactly. https, or http for a loopback host (development).
	Issuer string
	// ClientID is the bridge's client id at the IdP, the ID token audience.
	ClientID string
	// ClientSecret is read from a file by the caller. It is sent with
	// client_secret_basic, or client_secret_post when the IdP's discovery
	// lists only that.
	ClientSecret string
	// RedirectURL is the bridge's callback, e.g.
	// https://bridge/oidc/rp/callback, registered at the IdP exactly.
	RedirectURL string
	// Scopes must include openid; empty means DefaultScopes().
	Scopes []string
	// RequiredClaims names claims the ID token must carry with one of the
	// listed values, such as Google's hd: {"hd": {"skola.example.se"}}.
	// A string claim must equal a listed value; an array claim must
	// contain one.
	RequiredClaims map[string][]string
	Store          store.Store
	// StateTTL is how long a pending login can be completed. Zero means
	// DefaultStateTTL.
	StateTTL time.Duration
	// HTTPClient is used for discovery, JWKS and token calls. The RP uses
	// a copy that follows no redirects and reads at most MaxResponseBytes;
	// a zero Timeout becomes DefaultHTTPTimeout. nil means a client with
	// DefaultHTTPTimeout.
	HTTPClient *http.Client
	// Now is the clock (ID token expiry too); nil means time.Now.
	Now func() time.Time
	// Rand is the source of state, nonce and PKCE verifier; nil means
	// crypto/rand.
	Rand io.Reader
	// PostLogoutRedirectURL is where the IdP's end_session_endpoint sends
	// the browser back after a logout the bridge asked for (register it
	// at the IdP). Empty: the IdP is not asked to log out.
	PostLogoutRedirectURL string
}

// RP is the bridge's OIDC relying party for one upstream IdP. It is safe
// for concurrent use.
type RP struct {
	issuer       string
	clientID     string
	oauth        oauth2.Config
	verifier     *oidc.IDTokenVerifier
	issAdvertise bool
	required     map[string][]string
	store        store.Store
	stateTTL     time.Duration
	client       *http.Client
	now          func() time.Time
	rand         io.Reader
	endSession   string
	postLogout   string
}

// discovered is what the RP reads from the IdP's discovery document.
type discovered struct {
	Issuer        string   `json:"issuer"`
	AuthURL       string   `json:"authorization_endpoint"`
	TokenURL      string   `json:"token_endpoint"`
	JWKSURL       string   `json:"jwks_uri"`
	Algs          []string `json:"id_token_signing_alg_values_supported"`
	AuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
	IssParameter  bool     `json:"authorization_response_iss_parameter_supported"`
	ResponseTypes []string `json:"response_types_supported"`
	EndSession    string   `json:"end_session_endpoint"`
}

// New checks cfg, fetches the IdP's discovery document through
// cfg.HTTPClient and returns an RP. ctx bounds discovery only.
func New(ctx context.Context, cfg Config) (*RP, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = DefaultScopes()
	}
	if cfg.StateTTL == 0 {
		cfg.StateTTL = DefaultStateTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	client := hardenClient(cfg.HTTPClient)

	pctx := oidc.ClientContext(ctx, client)
	provider, err := oidc.NewProvider(pctx, cfg.Issuer)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, errors.New("oidcrp: the issuer in the discovery document is not Issuer")
		}
		return nil, fmt.Errorf("oidcrp: discovery: %w", shortError{err})
	}
	var md discovered
	if err := provider.Claims(&md); err != nil {
		return nil, fmt.Errorf("oidcrp: discovery document: %w", err)
	}
	// go-oidc checks this too; the bridge relies on it, so it says so here.
	if md.Issuer != cfg.Issuer {
		return nil, errors.New("oidcrp: the issuer in the discovery document is not Issuer")
	}
	var errs []error
	for name, u := range map[string]string{"authorization_endpoint": md.AuthURL, "token_endpoint": md.TokenURL, "jwks_uri": md.JWKSURL} {
		if !secureURL(u) {
			errs = append(errs, fmt.Errorf("oidcrp: discovery: %s must be an https URL", name))
		}
	}
	if md.EndSession != "" && !secureURL(md.EndSession) {
		errs = append(errs, errors.New("oidcrp: discovery: end_session_endpoint must be an https URL"))
	}
	if len(md.ResponseTypes) > 0 && !slices.Contains(md.ResponseTypes, "code") {
		errs = append(errs, errors.New("oidcrp: discovery: the IdP does not support response_type code"))
	}
	var algs []string
	for _, a := range md.Algs {
		if slices.Contains(asymmetricAlgs, a) && !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		errs = append(errs, errors.New("oidcrp: discovery lists no asymmetric ID token signing algorithm"))
	}
	style, err := authStyle(md.AuthMethods)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	endpoint := provider.Endpoint()
	endpoint.AuthStyle = style
	// The key set keeps the client for its later JWKS fetches; it ignores
	// ctx's cancellation.
	verifier := provider.VerifierContext(pctx, &oidc.Config{
		ClientID:             cfg.ClientID,
		SupportedSigningAlgs: algs,
		Now:                  cfg.Now,
	})
	required := make(map[string][]string, len(cfg.RequiredClaims))
	for k, v := range cfg.RequiredClaims {
		required[k] = append([]string(nil), v...)
	}
	return &RP{
		issuer:   cfg.Issuer,
		clientID: cfg.ClientID,
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     endpoint,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       append([]string(nil), cfg.Scopes...),
		},
		verifier:     verifier,
		issAdvertise: md.IssParameter,
		required:     required,
		store:        cfg.Store,
		stateTTL:     cfg.StateTTL,
		client:       client,
		now:          cfg.Now,
		rand:         cfg.Rand,
		endSession:   md.EndSession,
		postLogout:   cfg.PostLogoutRedirectURL,
	}, nil
}

// CanLogout reports whether the IdP has an end_session_endpoint and the
// RP a post-logout redirect URL.
func (rp *RP) CanLogout() bool { return rp.endSession != "" && rp.postLogout != "" }

// LogoutURL is the IdP's end_session_endpoint for an RP-initiated logout
// (OpenID Connect RP-Initiated Logout 1.0) with client_id, the
// post-logout redirect URL and state. No id_token_hint is sent: the bridge
// keeps no upstream ID token, since it carries the person's claims.
func (rp *RP) LogoutURL(state string) string {
	u, err := url.Parse(rp.endSession)
	if err != nil {
		return rp.endSession
	}
	q := u.Query()
	q.Set("client_id", rp.clientID)
	q.Set("post_logout_redirect_uri", rp.postLogout)
	q.Set("state", state)
	u.RawQuery = q.Encode()
	return u.String()
}

// shortError bounds the text of a library error that may quote a whole
// response body (go-oidc does for a failed discovery); the chain is kept.
type shortError struct{ err error }

const maxErrorText = 200

func (e shortError) Error() string {
	s := e.err.Error()
	if len(s) > maxErrorText {
		return s[:maxErrorText] + "…"
	}
	return s
}

func (e shortError) Unwrap() error { return e.err }

// validate reports every problem of cfg at once.
func (cfg *Config) validate() error {
	var errs []error
	if !secureURL(cfg.Issuer) {
		errs = append(errs, errors.New("oidcrp: Issuer must be an https URL without query or fragment"))
	}
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("oidcrp: ClientID is empty"))
	}
	if cfg.ClientSecret == "" {
		errs = append(errs, errors.New("oidcrp: ClientSecret is empty"))
	}
	if u, err := url.Parse(cfg.RedirectURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") ||
		u.Host == "" || u.User != nil || u.Fragment != "" {
		errs = append(errs, errors.New("oidcrp: RedirectURL must be an absolute http(s) URL without fragment"))
	}
	if pl := cfg.PostLogoutRedirectURL; pl != "" {
		if u, err := url.Parse(pl); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
			errs = append(errs, errors.New("oidcrp: PostLogoutRedirectURL must be an absolute http(s) URL without fragment"))
		}
	}
	if len(cfg.Scopes) > 0 && !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		errs = append(errs, errors.New("oidcrp: Scopes must include openid"))
	}
	for k, v := range cfg.RequiredClaims {
		if k == "" || len(v) == 0 {
			errs = append(errs, errors.New("oidcrp: RequiredClaims needs a claim name and at least one value"))
			break
		}
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("oidcrp: Store is nil"))
	}
	if cfg.StateTTL < 0 || cfg.StateTTL > MaxStateTTL {
		errs = append(errs, fmt.Errorf("oidcrp: StateTTL must be between 0 and %v", MaxStateTTL))
	}
	return errors.Join(errs...)
}

// secureURL reports whether s is an absolute https URL, or http on a
// loopback host, without user info, query or fragment.
func secureURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		if h == "localhost" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	return false
}

// authStyle picks client_secret_basic when discovery allows it (absent
// means only it, OIDC Discovery 3), else client_secret_post.
func authStyle(methods []string) (oauth2.AuthStyle, error) {
	switch {
	case len(methods) == 0 || slices.Contains(methods, "client_secret_basic"):
		return oauth2.AuthStyleInHeader, nil
	case slices.Contains(methods, "client_secret_post"):
		return oauth2.AuthStyleInParams, nil
	}
	return 0, errors.New("oidcrp: discovery: the token endpoint takes neither client_secret_basic nor client_secret_post")
}

// hardenClient returns a copy of c (or a new client) that follows no
// redirects, so that neither the code nor the secret is ever sent on, and
// reads bounded responses.
func hardenClient(c *http.Client) *http.Client {
	var cp http.Client
	if c != nil {
		cp = *c
	}
	if cp.Timeout == 0 {
		cp.Timeout = DefaultHTTPTimeout
	}
	base := cp.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cp.Transport = limitTransport{base: base}
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

type limitTransport struct{ base http.RoundTripper }

// RoundTrip bounds the response body to MaxResponseBytes.
func (t limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: MaxResponseBytes}
	return resp, nil
}

var errResponseTooLarge = errors.New("oidcrp: response from the IdP too large")

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte tells a body of exactly the limit from a longer one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errResponseTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// pending is what the store holds for a login on its way to the IdP.
type pending struct {
	// Issuer ties the state to this RP when several share a store.
	Issuer string `json:"i"`
	// BindingHash is SHA-256 of the browser binding: the store never holds
	// the binding itself.
	BindingHash []byte `json:"b"`
	Nonce       string `json:"n"`
	Verifier    string `json:"v"`
	State       []byte `json:"s,omitempty"`
}

// StartLogin returns the IdP's authorization URL for the browser. The
// pending login is stored under a fresh random state for StateTTL, with
// SHA-256 of binding (an opaque string the server derives from a browser
// cookie), the nonce, the PKCE verifier, and state (opaque bytes returned
// by HandleCallback; not personal data).
func (rp *RP) StartLogin(ctx context.Context, binding string, state []byte) (string, error) {
	return rp.StartLoginWith(ctx, binding, state, LoginOptions{})
}

// LoginOptions are what a login asks of the IdP beyond identification.
type LoginOptions struct {
	// Prompt is sent as prompt: "login" for a fresh login, "none" for a
	// login without interaction; "" sends none.
	Prompt string
	// MaxAge, when set, is sent as max_age (seconds).
	MaxAge *int64
	// ACRValues, when set, are sent as acr_values.
	ACRValues []string
}

// StartLoginWith is StartLogin with what the login asks of the IdP.
func (rp *RP) StartLoginWith(ctx context.Context, binding string, state []byte, o LoginOptions) (string, error) {
	if binding == "" {
		return "", errors.New("oidcrp: empty browser binding")
	}
	var vals [3]string
	for i := range vals {
		b := make([]byte, 32)
		if _, err := io.ReadFull(rp.rand, b); err != nil {
			return "", fmt.Errorf("oidcrp: random: %w", err)
		}
		vals[i] = base64.RawURLEncoding.EncodeToString(b)
	}
	stateID, nonce, verifier := vals[0], vals[1], vals[2]

	bh := sha256.Sum256([]byte(binding))
	val, err := json.Marshal(pending{Issuer: rp.issuer, BindingHash: bh[:], Nonce: nonce, Verifier: verifier, State: state})
	if err != nil {
		return "", fmt.Errorf("oidcrp: pending login: %w", err)
	}
	if err := rp.store.Put(ctx, stateKeyPrefix+stateID, val, rp.stateTTL); err != nil {
		return "", refuse(ReasonStoreUnavailable, fmt.Errorf("store pending login: %w", err))
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}
	if o.Prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", o.Prompt))
	}
	if o.MaxAge != nil {
		opts = append(opts, oauth2.SetAuthURLParam("max_age", strconv.FormatInt(*o.MaxAge, 10)))
	}
	if len(o.ACRValues) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", strings.Join(o.ACRValues, " ")))
	}
	return rp.oauth.AuthCodeURL(stateID, opts...), nil
}

// Issuer returns the IdP's issuer identifier.
func (rp *RP) Issuer() string { return rp.issuer }
