package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/samlslo"
	"github.com/skolbro/skolbro/internal/slo"
	"github.com/skolbro/skolbro/internal/store"
)

// logoutSeenTTL is how long a logout message's ID is remembered: longer
// than any message stays acceptable (the request age bounds of both sides
// plus their clock skew).
const logoutSeenTTL = 2 * time.Hour

var (
	failLogoutRequest = failure{http.StatusBadRequest,
		"Utloggningsbegäran kunde inte godkännas.",
		"Stäng webbläsaren för att vara säker på att du är utloggad. Om felet kvarstår, kontakta skolans IT-support.",
		"The logout request could not be accepted.",
		"Close the browser to be sure that you are logged out. If it keeps happening, contact your school's IT support."}
	failLogoutExpired = failure{http.StatusBadRequest,
		"Utloggningen har tagit för lång tid, är redan klar, eller startades i en annan webbläsare.",
		"Stäng webbläsaren för att vara säker på att du är utloggad.",
		"The logout took too long, has already finished, or was started in another browser.",
		"Close the browser to be sure that you are logged out."}
)

// failLogout is fail for the logout flow: the same fixed messages and
// request id, under a heading about logging out.
func (s *Server) failLogout(w http.ResponseWriter, r *http.Request, f failure, reason string, cause error) {
	l := zerolog.Ctx(r.Context())
	ev := l.Warn()
	if f.status >= 500 {
		ev = l.Error()
	}
	ev.Str("reason", reason).Int("status", f.status).AnErr("cause", cause).Msg("logout refused")
	s.refusal(reason)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(f.status)
	_ = s.tmpl.ExecuteTemplate(w, "logout_error.html", map[string]string{
		"MessageSV": f.messageSV, "NextSV": f.nextSV,
		"MessageEN": f.messageEN, "NextEN": f.nextEN,
		"RequestID": RequestID(r.Context()),
	})
}

// logoutMessageRefused shows the error page for a logout message that
// cannot be trusted: nothing is answered to it, since its sender is not
// known to have sent it.
func (s *Server) logoutMessageRefused(w http.ResponseWriter, r *http.Request, label string, err error) {
	reason := label + "_malformed"
	f := failLogoutRequest
	var e *samlslo.Error
	if errors.As(err, &e) {
		reason = label + "_" + e.Reason
		if e.Status == http.StatusRequestEntityTooLarge {
			f = failTooLarge
		}
	}
	s.failLogout(w, r, f, reason, err)
}

// readLogoutMessage reads a SAML logout message from r, its body bounded;
// one that cannot be read is refused here, under reason, and ok is false.
func (s *Server) readLogoutMessage(w http.ResponseWriter, r *http.Request, reason string) (in *samlslo.Incoming, ok bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxACSBody)
	in, err := samlslo.Read(r)
	if err != nil {
		s.logoutMessageRefused(w, r, reason, err)
		return nil, false
	}
	return in, true
}

// handleIdPSLO is the organiser's SAML SingleLogoutService towards
// vendors: a vendor's LogoutRequest starts a logout; a vendor's
// LogoutResponse answers one the bridge sent.
func (s *Server) handleIdPSLO(w http.ResponseWriter, r *http.Request, org *Organiser) {
	in, ok := s.readLogoutMessage(w, r, "vendor_logout")
	if !ok {
		return
	}
	if in.Param == samlslo.ParamResponse {
		s.vendorLogoutResponse(w, r, org, in)
		return
	}
	s.vendorLogoutRequest(w, r, org, in)
}

// vendorLogoutRequest starts the logout a vendor asked for. The request
// must be signed by the vendor, fresh and new, and name the session this
// browser has at the vendor (its NameID and SessionIndex); otherwise no
// session is touched (SECURITY.md case 50).
func (s *Server) vendorLogoutRequest(w http.ResponseWriter, r *http.Request, org *Organiser, in *samlslo.Incoming) {
	req, v, err := org.IdP.ParseLogoutRequest(in)
	if err != nil {
		s.logoutMessageRefused(w, r, "vendor_logout", err)
		return
	}
	s.vendorLogoutRequestAt(w, r, org, false, req, v, in)
}

// vendorLogoutRequestAt is vendorLogoutRequest for a request that idp
// (logoutIdP(org, viaHub)) has parsed and verified: the session's vendor
// must have come through that same entity.
func (s *Server) vendorLogoutRequestAt(w http.ResponseWriter, r *http.Request, org *Organiser, viaHub bool, req *samlslo.LogoutRequest, v *samlidp.Vendor, in *samlslo.Incoming) {
	ctx := r.Context()
	l := zerolog.Ctx(ctx)
	idp := logoutIdP(org, viaHub)
	pol, ok := org.Policies.BySAMLEntityID(v.EntityID)
	if !ok {
		s.failLogout(w, r, failLogoutRequest, "vendor_no_policy", nil)
		return
	}
	fresh, err := seenLogout(ctx, org, v.EntityID, req.ID, logoutSeenTTL)
	if err != nil {
		s.failLogout(w, r, failUnavailable, "store_unavailable", err)
		return
	}
	if !fresh {
		s.failLogout(w, r, failLogoutRequest, "vendor_logout_replay", nil)
		return
	}
	l = withVendor(l, pol.ID)
	// From here on the request is the vendor's own: it is answered, also
	// when it names no session of this browser.
	refuse := func(reason string) {
		l.Warn().Str("reason", reason).Msg("logout request names no session of this browser: nothing logged out")
		s.refusal(reason)
		out, err := idp.LogoutResponseTo(v, req.ID, in.Binding, samlslo.StatusRequester, samlslo.StatusUnknownPrincipal, in.RelayState)
		if err != nil {
			s.failLogout(w, r, failLogoutRequest, reason, err)
			return
		}
		s.sendLogoutMessage(w, r, out)
	}
	tok, ok := token(r, s.cookieName(org, sessionCookieBase))
	if !ok {
		refuse("vendor_logout_no_session")
		return
	}
	var sess slo.Session
	switch err := sessions(org).Get(ctx, tok, &sess); {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, slo.ErrSealed):
		refuse("vendor_logout_no_session")
		return
	case err != nil:
		s.failLogout(w, r, failUnavailable, "store_unavailable", err)
		return
	}
	var me *slo.Participant
	for i, p := range sess.Vendors {
		if p.Vendor == pol.ID && p.Protocol == slo.ProtocolSAML && p.Hub == viaHub && p.NameID != nil &&
			samlslo.Matches(req, *p.NameID, p.SessionIndex) {
			me = &sess.Vendors[i]
		}
	}
	if me == nil {
		refuse("vendor_logout_session_mismatch")
		return
	}
	// Taken, not read: of two logouts of one session, one runs.
	if err := sessions(org).Take(ctx, tok, &sess); err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, slo.ErrSealed) {
			refuse("vendor_logout_no_session")
			return
		}
		s.failLogout(w, r, failUnavailable, "store_unavailable", err)
		return
	}
	initiator := *me
	s.startLogout(w, r, org, &sess, &logoutOp{Kind: logoutByVendor, Vendor: &initiator,
		RequestID: req.ID, Binding: in.Binding, RelayState: in.RelayState})
}

func withVendor(l *zerolog.Logger, vendor string) *zerolog.Logger {
	ll := l.With().Str("vendor", vendor).Logger()
	return &ll
}

// handleSPSLO is the SAML SingleLogoutService towards one school IdP: its
// LogoutRequest logs the browser out of every vendor; its LogoutResponse
// answers the request the bridge sent it.
func (s *Server) handleSPSLO(w http.ResponseWriter, r *http.Request, org *Organiser, up *Upstream) {
	in, ok := s.readLogoutMessage(w, r, "upstream_logout")
	if !ok {
		return
	}
	if in.Param == samlslo.ParamResponse {
		s.upstreamLogoutResponse(w, r, org, up, in)
		return
	}
	s.upstreamLogoutRequest(w, r, org, up, in)
}

// upstreamLogoutRequest starts the logout the school IdP asked for, under
// the same rules as a vendor's (case 50).
func (s *Server) upstreamLogoutRequest(w http.ResponseWriter, r *http.Request, org *Organiser, up *Upstream, in *samlslo.Incoming) {
	ctx := r.Context()
	req, err := up.SP.ParseLogoutRequest(in)
	if err != nil {
		s.logoutMessageRefused(w, r, "upstream_logout", err)
		return
	}
	fresh, err := seenLogout(ctx, org, up.EntityID, req.ID, logoutSeenTTL)
	if err != nil {
		s.failLogout(w, r, failUnavailable, "store_unavailable", err)
		return
	}
	if !fresh {
		s.failLogout(w, r, failLogoutRequest, "upstream_logout_replay", nil)
		return
	}
	refuse := func(reason string) {
		zerolog.Ctx(ctx).Warn().Str("upstream", up.ID).Str("reason", reason).Msg("logout request names no session of this browser: nothing logged out")
		s.refusal(reason)
		out, err := up.SP.LogoutResponseTo(req.ID, in.Binding, samlslo.StatusRequester, samlslo.StatusUnknownPrincipal, in.RelayState)
		if err != nil {
			s.failLogout(w, r, failLogoutRequest, reason, err)
			return
		}
		s.sendLogoutMessage(w, r, out)
	}
	tok, ok := token(r, s.cookieName(org, sessionCookieBase))
	if !ok {
		refuse("upstream_logout_no_session")
		return
	}
	var sess slo.Session
	switch err := sessions(org).Get(ctx, tok, &sess); {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, slo.ErrSealed):
		refuse("upstream_logout_no_session")
		return
	case err != nil:
		s.failLogout(w, r, failUnavailable, "store_unavailable", err)
		return
	}
	u := sess.Upstream
	if u == nil || u.ID != up.ID || u.NameID == nil || !samlslo.Matches(req, *u.NameID, u.SessionIndex) {
		refuse("upstream_logout_session_mismatch")
		return
	}
	if err := sessions(org).Take(ctx, tok, &sess); err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, slo.ErrSealed) {
			refuse("upstream_logout_no_session")
			return
		}
		s.failLogout(w, r, failUnavailable, "store_unavailable", err)
		return
	}
	s.startLogout(w, r, org, &sess, &logoutOp{Kind: logoutByUpstream, UpstreamID: up.ID,
		RequestID: req.ID, Binding: in.Binding, RelayState: in.RelayState})
}

// upstreamLogoutResponse takes the school IdP's answer and finishes the
// logout of the browser that asked.
func (s *Server) upstreamLogoutResponse(w http.ResponseWriter, r *http.Request, org *Organiser, up *Upstream, in *samlslo.Incoming) {
	resp, err := up.SP.ParseLogoutResponse(in)
	if err != nil {
		s.logoutMessageRefused(w, r, "upstream_logout_response", err)
		return
	}
	s.upstreamAnswered(w, r, org, up, prefixUpstreamLogout+resp.InResponseTo, resp.Success(), statusName(resp.Status, resp.SubStatus))
}

// upstreamAnswered finishes a logout the school IdP has answered: key
// names the logout (by the request sent, or the end-session state), and
// must be this browser's.
func (s *Server) upstreamAnswered(w http.ResponseWriter, r *http.Request, org *Organiser, up *Upstream, key string, success bool, status string) {
	ctx := r.Context()
	b, err := org.Store.Take(ctx, key)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.failLogout(w, r, failLogoutExpired, "upstream_logout_response_unknown", nil)
		} else {
			s.failLogout(w, r, failUnavailable, "store_unavailable", err)
		}
		return
	}
	tok, op, ok := s.loadLogout(w, r, org)
	if !ok {
		return
	}
	if slo.Handle(tok) != string(b) || op.Stage != stageUpstream {
		s.failLogout(w, r, failLogoutExpired, "upstream_logout_response_other_browser", nil)
		return
	}
	op.UpstreamResult = resultDone
	if !success {
		op.UpstreamResult = resultFailed
	}
	op.Stage = stageDone
	zerolog.Ctx(ctx).Info().Str("upstream", up.ID).Str("result", op.UpstreamResult).Str("status", status).Msg("the school IdP answered logout")
	s.finishLogout(w, r, org, tok, op)
}
