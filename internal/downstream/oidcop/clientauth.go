package oidcop

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/store"
)

// Client assertion rules (SECURITY.md case 31).
const (
	// JWTBearerAssertion is the client_assertion_type of private_key_jwt.
	JWTBearerAssertion = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// maxAssertionLifetime bounds exp - now, and so how long a jti is kept.
	maxAssertionLifetime = 5 * time.Minute
	// assertionSkew tolerates clients whose clocks run a little ahead
	// (iat, nbf); exp is never extended.
	assertionSkew   = 30 * time.Second
	maxAssertionLen = 16 << 10
	maxJTILen       = 256
)

// failure is a refused token or userinfo request: the status and OAuth
// error code for the client, a fixed description, and a fixed reason for
// the log.
type failure struct {
	status      int
	code        string
	description string
	reason      string
}

func clientFailure(reason string) *failure {
	// One description for every cause: the client learns only that
	// authentication failed, the log says why.
	return &failure{status: http.StatusUnauthorized, code: CodeInvalidClient, description: "client authentication failed", reason: reason}
}

func unavailable(reason string) *failure {
	return &failure{status: http.StatusServiceUnavailable, code: CodeTemporarilyUnavailable, description: "try again later", reason: reason}
}

// authenticateClient authenticates the client of a token request by the
// one method it used, which must be the method registered for it.
func (p *Provider) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (*Client, *failure) {
	_, _, basic := r.BasicAuth()
	hasAuthz := r.Header.Get("Authorization") != ""
	hasAssertion := form.Has("client_assertion") || form.Has("client_assertion_type")
	switch {
	case form.Has("client_secret"):
		return nil, clientFailure("client_secret_post_unsupported")
	case hasAuthz && hasAssertion:
		return nil, &failure{status: http.StatusBadRequest, code: CodeInvalidRequest, description: "use one client authentication method", reason: "two_auth_methods"}
	case basic:
		return p.authenticateBasic(r, form)
	case hasAuthz:
		return nil, clientFailure("authorization_scheme_unsupported")
	case hasAssertion:
		return p.authenticateAssertion(ctx, form)
	default:
		return nil, clientFailure("no_client_authentication")
	}
}

// authenticateBasic checks client_secret_basic. RFC 6749 2.3.1 has the
// client form-encode id and secret before Basic encoding; the secret is
// accepted decoded or as sent, as clients differ, each compared in
// constant time by its SHA-256.
func (p *Provider) authenticateBasic(r *http.Request, form url.Values) (*Client, *failure) {
	rawID, rawSecret, _ := r.BasicAuth()
	id := unescapeForm(rawID)
	secret := unescapeForm(rawSecret)
	client := p.Clients[id]
	if client == nil {
		return nil, clientFailure("unknown_client")
	}
	if client.Auth != policy.ClientSecretBasic {
		return nil, clientFailure("auth_method_not_registered")
	}
	if form.Has("client_id") && form.Get("client_id") != client.ID {
		return nil, clientFailure("client_id_mismatch")
	}
	h1 := sha256.Sum256([]byte(secret))
	h2 := sha256.Sum256([]byte(rawSecret))
	ok := subtle.ConstantTimeCompare(h1[:], client.SecretHash) | subtle.ConstantTimeCompare(h2[:], client.SecretHash)
	if ok != 1 {
		return nil, clientFailure("bad_secret")
	}
	return client, nil
}

func unescapeForm(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// assertionClaims are the claims of a client assertion.
type assertionClaims struct {
	jwt.Claims
}

// authenticateAssertion checks private_key_jwt (RFC 7523, OIDC Core 9).
func (p *Provider) authenticateAssertion(ctx context.Context, form url.Values) (*Client, *failure) {
	if form.Get("client_assertion_type") != JWTBearerAssertion {
		return nil, clientFailure("assertion_type")
	}
	assertion := form.Get("client_assertion")
	if assertion == "" || len(assertion) > maxAssertionLen {
		return nil, clientFailure("assertion_missing_or_long")
	}
	// Only asymmetric algorithms: alg none and HS256 keyed with a public
	// key fail here, before any key is looked at.
	tok, err := jwt.ParseSigned(assertion, assertionAlgs)
	if err != nil {
		return nil, clientFailure("assertion_malformed_or_alg")
	}
	if len(tok.Headers) != 1 {
		return nil, clientFailure("assertion_signatures")
	}
	header := tok.Headers[0]

	// The client is named by iss (= sub); its key then verifies that.
	var unverified assertionClaims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, clientFailure("assertion_claims")
	}
	client := p.Clients[unverified.Issuer]
	if client == nil {
		return nil, clientFailure("unknown_client")
	}
	if client.Auth != policy.PrivateKeyJWT || client.JWKS == nil {
		return nil, clientFailure("auth_method_not_registered")
	}
	if form.Has("client_id") && form.Get("client_id") != client.ID {
		return nil, clientFailure("client_id_mismatch")
	}
	if header.KeyID == "" {
		return nil, clientFailure("assertion_no_kid")
	}
	keys := client.JWKS.Key(header.KeyID)
	if len(keys) != 1 {
		return nil, clientFailure("assertion_unknown_kid")
	}
	key := keys[0]
	if !keyFitsAlg(key, jose.SignatureAlgorithm(header.Algorithm)) {
		return nil, clientFailure("assertion_key_alg_mismatch")
	}
	var claims assertionClaims
	if err := tok.Claims(key.Key, &claims); err != nil {
		return nil, clientFailure("assertion_signature")
	}

	now := p.now()
	switch {
	case claims.Issuer != client.ID || claims.Subject != client.ID:
		return nil, clientFailure("assertion_iss_sub")
	case !p.audienceOK(claims.Audience):
		return nil, clientFailure("assertion_aud")
	case claims.Expiry == nil:
		return nil, clientFailure("assertion_no_exp")
	case !now.Before(claims.Expiry.Time()):
		return nil, clientFailure("assertion_expired")
	case claims.Expiry.Time().Sub(now) > maxAssertionLifetime:
		return nil, clientFailure("assertion_lifetime")
	case claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(assertionSkew)):
		return nil, clientFailure("assertion_nbf")
	case claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(assertionSkew)):
		return nil, clientFailure("assertion_iat_future")
	case claims.IssuedAt != nil && now.Sub(claims.IssuedAt.Time()) > maxAssertionLifetime+assertionSkew:
		return nil, clientFailure("assertion_iat_old")
	case claims.ID == "" || len(claims.ID) > maxJTILen:
		return nil, clientFailure("assertion_jti")
	}
	// The jti is single-use until the assertion expires; the skew keeps it
	// a little longer than any instance could accept the assertion.
	ttl := claims.Expiry.Time().Sub(now) + assertionSkew
	err = p.Store.Add(ctx, hashKey(prefixJTI, client.ID+"\x00"+claims.ID), []byte{1}, ttl)
	switch {
	case errors.Is(err, store.ErrExists):
		return nil, clientFailure("assertion_jti_reused")
	case err != nil:
		return nil, unavailable("store_jti")
	}
	return client, nil
}

// audienceOK accepts an aud whose every value is the token endpoint or
// the issuer, and nothing else.
func (p *Provider) audienceOK(aud jwt.Audience) bool {
	if len(aud) == 0 {
		return false
	}
	for _, a := range aud {
		if a != p.endpoint(PathToken) && a != p.Issuer {
			return false
		}
	}
	return true
}
