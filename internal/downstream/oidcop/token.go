package oidcop

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/store"
)

const maxTokenBody = 64 << 10

// tokenResponse is the successful token endpoint answer (RFC 6749 5.1,
// OIDC Core 3.1.3.3).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	IDToken     string `json:"id_token"`
	Scope       string `json:"scope,omitempty"`
}

// accessRecord is what an access token stands for, kept under the
// token's hash for userinfo.
type accessRecord struct {
	ClientID string `json:"client_id"`
	// GrantID names the code the token was issued for: a reuse of the
	// code revokes the token through it.
	GrantID   string         `json:"grant_id"`
	Sub       string         `json:"sub"`
	Claims    map[string]any `json:"claims"`
	ExpiresAt time.Time      `json:"expires_at"`
}

// serveToken is POST /oidc/token: the authorization code grant only.
func (p *Provider) serveToken(w http.ResponseWriter, r *http.Request) {
	form, f := tokenForm(w, r)
	if f != nil {
		p.refused(f.reason)
		writeTokenError(w, r, "", f.status, f.code, f.description, f.reason)
		return
	}
	client, f := p.authenticateClient(r.Context(), r, form)
	if f != nil {
		p.refused(f.reason)
		writeTokenError(w, r, "", f.status, f.code, f.description, f.reason)
		return
	}
	resp, f := p.redeem(r.Context(), client, form)
	if f != nil {
		p.refused(f.reason)
		writeTokenError(w, r, client.ID, f.status, f.code, f.description, f.reason)
		return
	}
	zerolog.Ctx(r.Context()).Info().Str("client_id", client.ID).Msg("oidc tokens issued")
	writeJSON(w, http.StatusOK, resp)
}

// tokenForm reads and checks the form of a token request: form-encoded,
// bounded, no parameter repeated (RFC 6749 3.2), the code grant.
func tokenForm(w http.ResponseWriter, r *http.Request) (url.Values, *failure) {
	bad := func(reason string) (url.Values, *failure) {
		return nil, &failure{status: http.StatusBadRequest, code: CodeInvalidRequest, description: "malformed token request", reason: reason}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return bad("content_type")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenBody)
	if err := r.ParseForm(); err != nil {
		return bad("form")
	}
	form := r.PostForm
	for _, v := range form {
		if len(v) > 1 {
			return bad("repeated_parameter")
		}
	}
	switch gt := form.Get("grant_type"); {
	case gt == "":
		return bad("no_grant_type")
	case gt != "authorization_code":
		return nil, &failure{status: http.StatusBadRequest, code: CodeUnsupportedGrantType, description: "only authorization_code is supported", reason: "grant_type"}
	}
	if form.Get("code") == "" {
		return bad("no_code")
	}
	return form, nil
}

func invalidGrant(reason string) *failure {
	// One description for every cause, as for client authentication.
	return &failure{status: http.StatusBadRequest, code: CodeInvalidGrant, description: "the code is invalid, expired or already used", reason: reason}
}

// redeem exchanges a code for tokens. The code's grant is stored under
// the client's id and the code, and taken from the store atomically, so of
// concurrent redemptions at most one gets it (case 28) and another client
// finds nothing to take (case 29). Once taken by its client the grant is
// gone whatever the outcome, so a wrong verifier cannot try again.
//
// A reuse revokes what the code issued, in every interleaving with the
// redemption that took it: the reuse writes a revocation marker for the
// grant before it looks for the issued token; the redemption looks for the
// marker after it has stored its token (and withdraws it if the marker is
// there); and userinfo checks the marker on every request.
func (p *Provider) redeem(ctx context.Context, client *Client, form url.Values) (*tokenResponse, *failure) {
	code := form.Get("code")
	gid := grantID(client.ID, code)
	b, err := p.Store.Take(ctx, prefixCode+gid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, p.codeNotFound(ctx, client, code, gid)
	case err != nil:
		return nil, unavailable("store_take_code")
	}
	var g grant
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, &failure{status: http.StatusInternalServerError, code: CodeServerError, description: "internal error", reason: "grant_decode"}
	}
	now := p.now()
	switch {
	case !now.Before(g.ExpiresAt):
		return nil, invalidGrant("code_expired")
	case g.Request.ClientID != client.ID:
		// Cannot happen with the key bound to the client; kept as a guard.
		return nil, invalidGrant("code_other_client")
	case form.Get("redirect_uri") != g.Request.RedirectURI:
		return nil, invalidGrant("redirect_uri_mismatch")
	case g.Sub == "":
		return nil, invalidGrant("no_subject")
	}
	if reason := checkVerifier(g.Request.CodeChallenge, form.Get("code_verifier"), form.Has("code_verifier")); reason != "" {
		return nil, invalidGrant(reason)
	}

	accessToken, err := p.newSecret()
	if err != nil {
		return nil, &failure{status: http.StatusInternalServerError, code: CodeServerError, description: "internal error", reason: "random"}
	}
	ttl := p.tokenTTL()
	idToken, err := p.signIDToken(client, &g, accessToken, now, ttl)
	if err != nil {
		return nil, &failure{status: http.StatusInternalServerError, code: CodeServerError, description: "internal error", reason: "sign_id_token"}
	}
	rec, err := json.Marshal(accessRecord{ClientID: client.ID, GrantID: gid, Sub: g.Sub, Claims: g.Claims, ExpiresAt: now.Add(ttl)})
	if err != nil {
		return nil, &failure{status: http.StatusInternalServerError, code: CodeServerError, description: "internal error", reason: "record_encode"}
	}
	tokenKey := hashKey(prefixToken, accessToken)
	if err := p.Store.Put(ctx, tokenKey, rec, ttl); err != nil {
		return nil, unavailable("store_put_token")
	}
	// The marker names the token (by its store key) so that a later
	// presentation of the code can revoke it; it lives as long as the token.
	if err := p.Store.Put(ctx, prefixUsed+gid, []byte(tokenKey), ttl); err != nil {
		_ = p.Store.Delete(ctx, tokenKey)
		return nil, unavailable("store_put_used")
	}
	// A presentation of the code that came after the Take above but before
	// the used marker was stored found no token to revoke: it left the
	// revocation marker, which is looked for only now.
	switch _, err := p.Store.Get(ctx, prefixRevoked+gid); {
	case err == nil:
		_ = p.Store.Delete(ctx, tokenKey)
		return nil, invalidGrant("code_reused_during_redemption")
	case !errors.Is(err, store.ErrNotFound):
		_ = p.Store.Delete(ctx, tokenKey)
		return nil, unavailable("store_get_revoked")
	}
	return &tokenResponse{
		AccessToken: accessToken,
		TokenType:   "Bearer",
		ExpiresIn:   int64(ttl / time.Second),
		IDToken:     idToken,
		Scope:       g.Request.Scope,
	}, nil
}

// codeNotFound answers a code the client has no grant under: issued to
// another client (refused, counted, and left for its own client), or
// unknown, expired or already taken. In the last case the code may have
// been stolen (RFC 6749 4.1.2): whatever it issued is revoked.
func (p *Provider) codeNotFound(ctx context.Context, client *Client, code, gid string) *failure {
	owner, err := p.Store.Get(ctx, hashKey(prefixOwner, code))
	switch {
	case err == nil && string(owner) != client.ID:
		// Nothing of the owner's is touched: a registered client that
		// learnt another's code must not be able to burn it.
		return invalidGrant("code_other_client")
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return unavailable("store_get_owner")
	}
	// The marker first, then the token: a redemption still between its
	// Take and its used marker sees the marker when it checks (see redeem).
	// It lives as long as any token the code can have issued.
	if err := p.Store.Put(ctx, prefixRevoked+gid, []byte{1}, p.tokenTTL()); err != nil {
		return unavailable("store_put_revoked")
	}
	v, err := p.Store.Get(ctx, prefixUsed+gid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return invalidGrant("unknown_or_used_code")
	case err != nil:
		return unavailable("store_get_used")
	}
	tokenKey := string(v)
	if !strings.HasPrefix(tokenKey, prefixToken) {
		return invalidGrant("unknown_or_used_code")
	}
	if err := p.Store.Delete(ctx, tokenKey); err != nil {
		return unavailable("store_revoke")
	}
	return invalidGrant("code_reused_token_revoked")
}

// checkVerifier checks PKCE (RFC 7636 4.6) and returns "" or a reason. A
// code whose request had no challenge is refused even with a verifier.
func checkVerifier(challenge, verifier string, present bool) string {
	switch {
	case challenge == "":
		return "no_code_challenge"
	case !present || verifier == "":
		return "no_code_verifier"
	case !validVerifier(verifier):
		return "malformed_code_verifier"
	}
	sum := sha256.Sum256([]byte(verifier))
	computed := base64.RawURLEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(computed), []byte(challenge)) != 1 {
		return "wrong_code_verifier"
	}
	return ""
}

// validVerifier accepts 43 to 128 unreserved characters (RFC 7636 4.1).
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// signIDToken makes the ID token: the protocol claims and the released
// attributes, nothing else.
func (p *Provider) signIDToken(client *Client, g *grant, accessToken string, now time.Time, ttl time.Duration) (string, error) {
	if g.Sub == "" {
		return "", ErrNoSubject
	}
	key, err := p.Keys.signer(client.IDTokenAlg, now)
	if err != nil {
		return "", err
	}
	claims := make(map[string]any, len(g.Claims)+10)
	for k, v := range g.Claims {
		if !protocolClaims[k] {
			claims[k] = v
		}
	}
	claims["iss"] = p.Issuer
	claims["sub"] = g.Sub
	claims["aud"] = client.ID
	claims["azp"] = client.ID
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(ttl).Unix()
	if g.AuthTime != 0 {
		claims["auth_time"] = g.AuthTime
	}
	if g.Request.Nonce != "" {
		claims["nonce"] = g.Request.Nonce
	}
	if g.ACR != "" {
		claims["acr"] = g.ACR
	}
	if g.SID != "" {
		claims["sid"] = g.SID
	}
	// Both accepted algorithms hash with SHA-256 (OIDC Core 3.1.3.6).
	sum := sha256.Sum256([]byte(accessToken))
	claims["at_hash"] = base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
	s, err := jwt.Signed(key.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("oidcop: sign id token: %w", err)
	}
	return s, nil
}
