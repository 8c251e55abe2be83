// Package oidcop is the bridge as an OpenID Provider towards vendors: the
// authorization code flow with PKCE (S256 only), private_key_jwt and
// client_secret_basic client authentication, pairwise subjects, signed ID
// tokens and a userinfo endpoint. It is written directly on go-jose v4 so
// that every check SECURITY.md asks for (cases 26 to 33) is visible here.
//
// A vendor receives only what the release step produced for it: the
// provider never sees an identity.Identity, and it sends no claim that is
// not in a release.Released (its Masked flag is never sent).
//
// The provider keeps its state (codes, access tokens, client assertion
// ids) in a store.Store, so several instances sharing one backend behave
// as one. It never logs codes, tokens or claims.
package oidcop

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/skolbro/skolbro/internal/store"
)

// Limits and defaults.
const (
	// MaxCodeTTL is the longest authorization code lifetime (case 29).
	MaxCodeTTL = 60 * time.Second
	// DefaultCodeTTL is used when Provider.CodeTTL is zero.
	DefaultCodeTTL = 60 * time.Second
	// DefaultTokenTTL is the lifetime of access and ID tokens when
	// Provider.TokenTTL is zero.
	DefaultTokenTTL = 5 * time.Minute
	// MaxTokenTTL bounds Provider.TokenTTL: tokens cannot be revoked once
	// a vendor has them, so they stay short-lived.
	MaxTokenTTL = time.Hour
)

// Paths below the issuer. The authorization endpoint is served by the
// bridge's login flow, which calls ParseAuthorize and Complete.
const (
	PathDiscovery = "/.well-known/openid-configuration"
	PathAuthorize = "/oidc/authorize"
	PathToken     = "/oidc/token"
	PathUserinfo  = "/oidc/userinfo"
	PathJWKS      = "/oidc/jwks"
)

// Store key prefixes. Codes and tokens are stored under a hash, never as
// they are: whoever reads the store cannot redeem them. A code's entries
// are keyed by its grant id, the hash of the client id and the code, so
// that another client presenting the code finds nothing to take (case 29).
const (
	prefixCode    = "oidcop:code:"    // grant id -> grant
	prefixUsed    = "oidcop:used:"    // grant id -> store key of the access token issued
	prefixRevoked = "oidcop:revoked:" // grant id -> marker: the code was presented again
	prefixOwner   = "oidcop:owner:"   // hash of the code -> client id, to tell a foreign client
	prefixToken   = "oidcop:at:"
	prefixJTI     = "oidcop:jti:"
)

// Provider is the bridge's OpenID Provider. Fill in the fields, call
// Validate once at start-up, then Routes. It is safe for concurrent use as
// long as its fields are not changed.
type Provider struct {
	// Issuer is the bridge's base URL, e.g. https://bro.skola.example.se,
	// without a trailing slash. Every endpoint lies below it.
	Issuer string
	// Keys signs ID tokens.
	Keys *KeySet
	// Clients by client id.
	Clients map[string]*Client
	// Store holds codes, access tokens and client assertion ids.
	Store store.Store
	// CodeTTL is the authorization code lifetime: at most 60s, 60s if zero.
	CodeTTL time.Duration
	// TokenTTL is the access and ID token lifetime, 5m if zero.
	TokenTTL time.Duration
	// Now and Rand default to time.Now and crypto/rand.Reader.
	Now  func() time.Time
	Rand io.Reader
	// HTTPClient posts back-channel logout tokens to vendors; nil means
	// http.DefaultClient. Each call is bounded by its context.
	HTTPClient *http.Client
	// ACRValues are the authentication levels the organiser's upstreams
	// can prove (from configuration), listed in discovery as
	// acr_values_supported.
	ACRValues []string
	// OnRefusal, when set, counts every refused token and userinfo
	// request by its fixed reason (e.g. "oidc_code_other_client"), for
	// metrics. It must not block.
	OnRefusal func(reason string)
}

// Validate reports every configuration problem at once. It changes
// nothing. The handlers assume a provider that passed it.
func (p *Provider) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := checkIssuer(p.Issuer); err != nil {
		add("oidcop: issuer: %w", err)
	}
	if p.Keys == nil {
		add("oidcop: no signing keys")
	}
	if p.Store == nil {
		add("oidcop: no store")
	}
	if p.CodeTTL < 0 || p.CodeTTL > MaxCodeTTL {
		add("oidcop: code lifetime %s: must be at most %s", p.CodeTTL, MaxCodeTTL)
	}
	if p.TokenTTL < 0 || p.TokenTTL > MaxTokenTTL {
		add("oidcop: token lifetime %s: must be at most %s", p.TokenTTL, MaxTokenTTL)
	}
	for id, c := range p.Clients {
		if c == nil {
			add("oidcop: client %q: nil", id)
			continue
		}
		if c.ID != id {
			add("oidcop: client %q: registered under %q", c.ID, id)
		}
		if err := c.validate(); err != nil {
			add("oidcop: client %q: %w", id, err)
		}
		if p.Keys != nil && !p.Keys.hasAlg(c.IDTokenAlg) {
			add("oidcop: client %q: no signing key for %s", id, c.IDTokenAlg)
		}
	}
	if p.Keys != nil {
		if err := p.Keys.checkRetirement(p.tokenTTL()); err != nil {
			add("oidcop: %w", err)
		}
	}
	return errors.Join(errs...)
}

// checkIssuer accepts an absolute https URL (http on a loopback host, for
// development) without query, fragment, user info or trailing slash; RPs
// compare the issuer as a string.
func checkIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return errors.New("must be an absolute URL")
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(issuer, "#") || strings.HasSuffix(issuer, "?"):
		return errors.New("must have no query, fragment or user info")
	case strings.HasSuffix(u.Path, "/"):
		return errors.New("must not end with a slash")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	default:
		return errors.New("must be https")
	}
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// Routes registers discovery, JWKS, token and userinfo below the issuer's
// path. The authorization endpoint belongs to the login flow.
func (p *Provider) Routes(r *mux.Router) {
	base := ""
	if u, err := url.Parse(p.Issuer); err == nil {
		base = strings.TrimSuffix(u.Path, "/")
	}
	r.HandleFunc(base+PathDiscovery, p.serveDiscovery).Methods("GET", "HEAD")
	r.HandleFunc(base+PathJWKS, p.serveJWKS).Methods("GET", "HEAD")
	r.HandleFunc(base+PathToken, p.serveToken).Methods("POST")
	r.HandleFunc(base+PathUserinfo, p.serveUserinfo).Methods("GET", "POST")
}

func (p *Provider) endpoint(path string) string { return p.Issuer + path }

func (p *Provider) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Provider) rand() io.Reader {
	if p.Rand != nil {
		return p.Rand
	}
	return rand.Reader
}

func (p *Provider) codeTTL() time.Duration {
	if p.CodeTTL == 0 {
		return DefaultCodeTTL
	}
	return p.CodeTTL
}

func (p *Provider) tokenTTL() time.Duration {
	if p.TokenTTL == 0 {
		return DefaultTokenTTL
	}
	return p.TokenTTL
}

// newSecret returns 256 random bits, base64url without padding: the form
// of codes and access tokens.
func (p *Provider) newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(p.rand(), b); err != nil {
		return "", fmt.Errorf("oidcop: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// hashKey names a secret in the store by its SHA-256.
func hashKey(prefix, secret string) string {
	h := sha256.Sum256([]byte(secret))
	return prefix + hex.EncodeToString(h[:])
}

// grantID names what a code stands for: the SHA-256 of the client id
// (length-prefixed, so that no two pairs collide) and the code.
func grantID(clientID, code string) string {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(clientID)))
	h.Write(n[:])
	h.Write([]byte(clientID))
	h.Write([]byte(code))
	return hex.EncodeToString(h.Sum(nil))
}

func (p *Provider) refused(reason string) {
	if p.OnRefusal != nil {
		p.OnRefusal("oidc_" + reason)
	}
}
