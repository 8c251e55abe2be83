package oidcop

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/store"
)

// serveUserinfo is GET and POST /oidc/userinfo: the access token in the
// Authorization header (RFC 6750 2.1) gives the released claims and sub.
// Tokens in a query or form are not read: they would end up in logs.
func (p *Provider) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	token, ok := bearerToken(r)
	if !ok {
		// No credentials: a bare challenge, no error code (RFC 6750 3.1).
		p.refuseUserinfo(w, r, `Bearer realm="skolbro"`, "no_bearer_token")
		return
	}
	invalid := `Bearer realm="skolbro", error="invalid_token", error_description="the access token is invalid or expired"`
	b, err := p.Store.Get(r.Context(), hashKey(prefixToken, token))
	switch {
	case errors.Is(err, store.ErrNotFound):
		p.refuseUserinfo(w, r, invalid, "unknown_token")
		return
	case err != nil:
		zerolog.Ctx(r.Context()).Warn().Str("reason", "store_get_token").Msg("oidc userinfo request failed")
		writeJSON(w, http.StatusServiceUnavailable, tokenError{Error: CodeTemporarilyUnavailable, Description: "try again later"})
		return
	}
	var rec accessRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		p.refuseUserinfo(w, r, invalid, "record_decode")
		return
	}
	if !p.now().Before(rec.ExpiresAt) {
		p.refuseUserinfo(w, r, invalid, "token_expired")
		return
	}
	if p.Clients[rec.ClientID] == nil {
		// The vendor was removed since: its tokens die with it.
		p.refuseUserinfo(w, r, invalid, "client_removed")
		return
	}
	// The code the token came from was presented again: whatever the
	// order in which the two redemptions reached the store, the token is
	// dead from the moment the reuse was seen (case 28). A record without
	// a grant id predates the check and is refused with it.
	if rec.GrantID == "" {
		p.refuseUserinfo(w, r, invalid, "no_grant_id")
		return
	}
	switch _, err := p.Store.Get(r.Context(), prefixRevoked+rec.GrantID); {
	case err == nil:
		p.refuseUserinfo(w, r, invalid, "grant_revoked")
		return
	case !errors.Is(err, store.ErrNotFound):
		zerolog.Ctx(r.Context()).Warn().Str("reason", "store_get_revoked").Msg("oidc userinfo request failed")
		writeJSON(w, http.StatusServiceUnavailable, tokenError{Error: CodeTemporarilyUnavailable, Description: "try again later"})
		return
	}
	claims := make(map[string]any, len(rec.Claims)+1)
	for k, v := range rec.Claims {
		if !protocolClaims[k] {
			claims[k] = v
		}
	}
	claims["sub"] = rec.Sub
	writeJSON(w, http.StatusOK, claims)
}

func (p *Provider) refuseUserinfo(w http.ResponseWriter, r *http.Request, challenge, reason string) {
	p.refused("userinfo_" + reason)
	zerolog.Ctx(r.Context()).Info().Str("reason", reason).Msg("oidc userinfo request refused")
	w.Header().Set("WWW-Authenticate", challenge)
	writeJSON(w, http.StatusUnauthorized, tokenError{Error: CodeInvalidToken})
}

// bearerToken reads "Authorization: Bearer <token>"; the scheme is
// case-insensitive.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
