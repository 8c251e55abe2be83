package server

import (
	"errors"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/slo"
	"github.com/skolbro/skolbro/internal/store"
)

// handleEndSession is the OP's end_session_endpoint: an OIDC vendor asks
// to log the person out everywhere. With an id_token_hint naming this
// browser's session at the vendor, the logout runs and ends at the
// vendor's registered post_logout_redirect_uri; a URI that is not
// registered, a hint that is not the provider's, or a session that is not
// this browser's is refused and nothing is logged out (case 50). Without a
// hint the person confirms on the logout page.
func (s *Server) handleEndSession(w http.ResponseWriter, r *http.Request, org *Organiser) {
	ctx := r.Context()
	es, oerr := org.OP.ParseEndSession(r)
	if oerr != nil {
		s.failLogout(w, r, failLogoutRequest, "oidc_logout_"+oerr.Code, errors.New(oerr.Description))
		return
	}
	if es.SID == "" {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, org.Prefix+pathLogout, http.StatusSeeOther)
		return
	}
	c := org.OP.Clients[es.ClientID]
	l := zerolog.Ctx(ctx).With().Str("vendor", c.VendorID).Logger()
	tok, ok := token(r, s.cookieName(org, sessionCookieBase))
	if !ok {
		s.failLogout(w, r, failLogoutExpired, "oidc_logout_no_session", nil)
		return
	}
	var sess slo.Session
	switch err := sessions(org).Get(ctx, tok, &sess); {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, slo.ErrSealed):
		s.failLogout(w, r, failLogoutExpired, "oidc_logout_no_session", nil)
		return
	case err != nil:
		s.failLogout(w, r, failUnavailable, "store_unavailable", err)
		return
	}
	var me *slo.Participant
	for i, p := range sess.Vendors {
		if p.Protocol == slo.ProtocolOIDC && p.ClientID == es.ClientID && p.SID == es.SID && p.Sub == es.Sub {
			me = &sess.Vendors[i]
		}
	}
	if me == nil {
		l.Warn().Str("reason", "oidc_logout_session_mismatch").Msg("end-session request names no session of this browser: nothing logged out")
		s.failLogout(w, r, failLogoutExpired, "oidc_logout_session_mismatch", nil)
		return
	}
	if err := sessions(org).Take(ctx, tok, &sess); err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, slo.ErrSealed) {
			s.failLogout(w, r, failLogoutExpired, "oidc_logout_no_session", nil)
			return
		}
		s.failLogout(w, r, failUnavailable, "store_unavailable", err)
		return
	}
	initiator := *me
	s.startLogout(w, r, org, &sess, &logoutOp{Kind: logoutByOIDC, Vendor: &initiator,
		PostLogout: es.PostLogoutRedirect, State: es.State})
}

// handleRPLogout is where an OIDC school IdP's end_session_endpoint sends
// the browser back after the logout the bridge asked for.
func (s *Server) handleRPLogout(w http.ResponseWriter, r *http.Request, org *Organiser, up *Upstream) {
	state := r.URL.Query().Get("state")
	if !slo.ValidToken(state) {
		s.failLogout(w, r, failLogoutExpired, "upstream_logout_state", nil)
		return
	}
	s.upstreamAnswered(w, r, org, up, prefixUpstreamLogout+"st:"+state, true, "end_session")
}
