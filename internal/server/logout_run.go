package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/autopost"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/samlslo"
	"github.com/skolbro/skolbro/internal/slo"
	"github.com/skolbro/skolbro/internal/store"
)

// Paths of the logout flow below the organiser's prefix.
const (
	pathLogout      = "/logout"
	pathLogoutRun   = "/logout/run"
	pathLogoutFrame = "/logout/frame"
	pathLogoutNext  = "/logout/next"
)

// Who asked for a logout.
const (
	logoutByVendor   = "vendor"   // a SAML vendor's LogoutRequest
	logoutByUpstream = "upstream" // the school IdP's LogoutRequest
	logoutByOIDC     = "oidc"     // an OIDC vendor's end-session request
	logoutByPerson   = "page"     // the person, on the logout page
)

// Stages of a logout.
const (
	stageVendors  = "vendors"  // the other vendors are being logged out
	stageUpstream = "upstream" // the school IdP has been asked
	stageDone     = "done"
)

// Outcomes for one participant.
const (
	resultDone        = "done"
	resultFailed      = "failed"      // refused, or no answer in time
	resultUnsupported = "unsupported" // the bridge has no way to reach it
)

// How a vendor is logged out.
const (
	modeSAML  = "saml"  // a LogoutRequest in a frame
	modeFront = "front" // OIDC front-channel: a frame
	modeBack  = "back"  // OIDC back-channel: a logout token, server to server
)

// logoutOp is one logout in progress, sealed in the store under a token
// that only the browser's logout cookie holds (it names the participants'
// NameIDs and subs).
type logoutOp struct {
	Kind string `json:"k"`
	// Vendor is the vendor that asked (SAML or OIDC); it is not sent a
	// logout of its own.
	Vendor *slo.Participant `json:"iv,omitempty"`
	// UpstreamID is the upstream that asked.
	UpstreamID string `json:"iu,omitempty"`
	// RequestID, Binding and RelayState of the LogoutRequest to answer.
	RequestID  string `json:"rq,omitempty"`
	Binding    string `json:"b,omitempty"`
	RelayState string `json:"rs,omitempty"`
	// PostLogout and State: where an OIDC vendor's end-session request
	// asked to go afterwards (already checked against its registration).
	PostLogout string `json:"pl,omitempty"`
	State      string `json:"st,omitempty"`
	// Targets are the vendors to log out.
	Targets []logoutTarget `json:"t,omitempty"`
	// Upstream is the school IdP's session to end, unless it asked.
	Upstream       *slo.Upstream `json:"u,omitempty"`
	UpstreamResult string        `json:"ur,omitempty"`
	Stage          string        `json:"s"`
}

type logoutTarget struct {
	slo.Participant
	Result string `json:"r,omitempty"`
}

// sentRequest is what the store keeps for a LogoutRequest sent to a
// vendor, under its ID: which logout and which of its targets.
type sentRequest struct {
	Op       string `json:"o"`
	N        int    `json:"n"`
	EntityID string `json:"e"`
	// Org is the organiser whose logout it is, for a request the hub's
	// entity sent (its answer reaches the hub's endpoint, not the
	// organiser's).
	Org string `json:"g,omitempty"`
}

// logoutIdP is the entity that logs a SAML vendor out: the one that
// logged it in, the organiser's own or, for a vendor that came through
// the hub, the hub's (nil when a reload took the organiser out of the
// hub).
func logoutIdP(org *Organiser, viaHub bool) *samlidp.IdP {
	if viaHub {
		if org.hub == nil {
			return nil
		}
		return org.hub.IdP
	}
	return org.IdP
}

// startLogout begins a logout of the browser's session (already taken
// from the store, so that it is logged out once): every vendor but the
// one that asked, then the school IdP unless it asked.
func (s *Server) startLogout(w http.ResponseWriter, r *http.Request, org *Organiser, sess *slo.Session, op *logoutOp) {
	for _, p := range sess.Vendors {
		if v := op.Vendor; v != nil && p.Vendor == v.Vendor && p.Protocol == v.Protocol && p.Hub == v.Hub {
			continue
		}
		op.Targets = append(op.Targets, logoutTarget{Participant: p})
	}
	if op.Kind != logoutByUpstream {
		op.Upstream = sess.Upstream
	}
	op.Stage = stageVendors
	tok, err := slo.NewToken(s.rand)
	if err != nil {
		s.failLogout(w, r, failInternal, "random", err)
		return
	}
	if err := logoutOps(org).Put(r.Context(), tok, op, logoutOpTTL); err != nil {
		s.failLogout(w, r, failUnavailable, "store_unavailable", err)
		return
	}
	s.setLogoutCookie(w, s.cookieName(org, logoutCookieBase), tok, int(logoutOpTTL.Seconds()))
	s.setLogoutCookie(w, s.cookieName(org, sessionCookieBase), "", -1)
	ev := zerolog.Ctx(r.Context()).Info().Str("initiator", op.Kind).Int("vendors", len(op.Targets))
	if op.Vendor != nil {
		ev = ev.Str("vendor", op.Vendor.Vendor)
	}
	ev.Msg("logout started")
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, org.Prefix+pathLogoutRun, http.StatusSeeOther)
}

// loadLogout reads the browser's logout in progress; it shows the error
// page and returns false when there is none.
func (s *Server) loadLogout(w http.ResponseWriter, r *http.Request, org *Organiser) (string, *logoutOp, bool) {
	tok, ok := token(r, s.cookieName(org, logoutCookieBase))
	if !ok {
		s.failLogout(w, r, failLogoutExpired, "logout_no_cookie", nil)
		return "", nil, false
	}
	var op logoutOp
	switch err := logoutOps(org).Get(r.Context(), tok, &op); {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, slo.ErrSealed):
		s.failLogout(w, r, failLogoutExpired, "logout_expired", nil)
		return "", nil, false
	case err != nil:
		s.failLogout(w, r, failUnavailable, "store_unavailable", err)
		return "", nil, false
	}
	return tok, &op, true
}

func (s *Server) saveLogout(ctx context.Context, org *Organiser, tok string, op *logoutOp) error {
	return logoutOps(org).Put(ctx, tok, op, logoutOpTTL)
}

// logoutMode says how target t is logged out, or "" when it cannot be.
func logoutMode(org *Organiser, t *logoutTarget) string {
	switch {
	case t.Protocol == slo.ProtocolSAML:
		idp := logoutIdP(org, t.Hub)
		if idp == nil {
			return ""
		}
		if v, ok := idp.Vendor(t.EntityID); ok && len(v.SLO) > 0 && t.NameID != nil && idp.SLOURL != "" {
			return modeSAML
		}
	case t.Protocol == slo.ProtocolOIDC && org.OP != nil:
		c := org.OP.Clients[t.ClientID]
		switch {
		case c == nil:
		case c.BackchannelLogoutURI != "":
			return modeBack
		case c.FrontchannelLogoutURI != "":
			return modeFront
		}
	}
	return ""
}

func (s *Server) vendorName(org *Organiser, id string) string {
	if p, ok := org.Policies.ByID(id); ok && p.DisplayName != "" {
		return p.DisplayName
	}
	return id
}

// handleLogoutRun logs out the vendors reached server to server (OIDC
// back-channel), then shows the page whose frames log out the others.
func (s *Server) handleLogoutRun(w http.ResponseWriter, r *http.Request, org *Organiser) {
	tok, op, ok := s.loadLogout(w, r, org)
	if !ok {
		return
	}
	if op.Stage != stageVendors {
		s.logoutNext(w, r, org, tok, op)
		return
	}
	if s.backchannel(r, org, op) {
		if err := s.saveLogout(r.Context(), org, tok, op); err != nil {
			s.failLogout(w, r, failUnavailable, "store_unavailable", err)
			return
		}
	}
	type frame struct{ Src, Name, Kind string }
	var frames []frame
	origins := map[string]bool{}
	for i := range op.Targets {
		t := &op.Targets[i]
		mode := logoutMode(org, t)
		if t.Result != "" || (mode != modeSAML && mode != modeFront) {
			continue
		}
		frames = append(frames, frame{Src: org.Prefix + pathLogoutFrame + "?n=" + strconv.Itoa(i), Name: s.vendorName(org, t.Vendor), Kind: mode})
		for _, o := range s.frameOrigins(org, t, mode) {
			origins[o] = true
		}
	}
	if len(frames) == 0 {
		s.logoutNext(w, r, org, tok, op)
		return
	}
	src := []string{"'self'"}
	for o := range origins {
		src = append(src, o)
	}
	sort.Strings(src[1:])
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; frame-src "+
		strings.Join(src, " ")+"; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	wait := int(org.Logout.vendorWait().Seconds())
	if wait < 1 {
		wait = 1
	}
	data := struct {
		Frames []frame
		Wait   int
		Next   string
	}{frames, wait, org.Prefix + pathLogoutNext}
	if err := s.tmpl.ExecuteTemplate(w, "logout_progress.html", data); err != nil {
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("logout page")
	}
}

// frameOrigins are the origins a target's frame may be navigated to.
func (s *Server) frameOrigins(org *Organiser, t *logoutTarget, mode string) []string {
	var urls []string
	switch mode {
	case modeSAML:
		if v, ok := logoutIdP(org, t.Hub).Vendor(t.EntityID); ok {
			for _, e := range v.SLO {
				urls = append(urls, e.Location, e.ResponseURL())
			}
		}
	case modeFront:
		urls = append(urls, org.OP.Clients[t.ClientID].FrontchannelLogoutURI)
	}
	var out []string
	for _, u := range urls {
		if pu, err := url.Parse(u); err == nil && pu.Host != "" {
			out = append(out, pu.Scheme+"://"+pu.Host)
		}
	}
	return out
}

// backchannel sends OIDC logout tokens to the targets that take them, all
// at once, each bounded by the vendor wait: a slow vendor does not hold up
// the others. It reports whether any result changed.
func (s *Server) backchannel(r *http.Request, org *Organiser, op *logoutOp) bool {
	var wg sync.WaitGroup
	var mu sync.Mutex
	changed := false
	l := zerolog.Ctx(r.Context())
	for i := range op.Targets {
		t := &op.Targets[i]
		if t.Result != "" || logoutMode(org, t) != modeBack {
			continue
		}
		c := org.OP.Clients[t.ClientID]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), org.Logout.vendorWait())
			defer cancel()
			err := org.OP.BackchannelLogout(ctx, c, t.Sub, t.SID)
			mu.Lock()
			defer mu.Unlock()
			changed = true
			if err != nil {
				t.Result = resultFailed
				l.Warn().Str("vendor", t.Vendor).Str("reason", "backchannel_failed").AnErr("cause", err).Msg("vendor did not confirm logout")
				return
			}
			t.Result = resultDone
			l.Info().Str("vendor", t.Vendor).Msg("vendor confirmed back-channel logout")
		}()
	}
	wg.Wait()
	return changed
}

// handleLogoutFrame is one vendor's frame: it sends the vendor its
// LogoutRequest (SAML) or loads its front-channel logout page (OIDC).
func (s *Server) handleLogoutFrame(w http.ResponseWriter, r *http.Request, org *Organiser) {
	tok, op, ok := s.loadLogout(w, r, org)
	if !ok {
		return
	}
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n < 0 || n >= len(op.Targets) || op.Stage != stageVendors {
		s.failLogout(w, r, failLogoutExpired, "logout_frame", nil)
		return
	}
	t := &op.Targets[n]
	h := w.Header()
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Cache-Control", "no-store")
	switch logoutMode(org, t) {
	case modeSAML:
		idp := logoutIdP(org, t.Hub)
		v, _ := idp.Vendor(t.EntityID)
		id, out, err := idp.LogoutRequestTo(v, *t.NameID, t.SessionIndex, "", logoutOpTTL)
		if err != nil {
			s.failLogout(w, r, failInternal, "logout_request", err)
			return
		}
		sent, st := sentRequest{Op: slo.Handle(tok), N: n, EntityID: v.EntityID}, org.Store
		if t.Hub {
			// The vendor answers at the hub's endpoint.
			sent.Org, st = org.ID, s.hubStore()
		}
		rec, _ := json.Marshal(sent)
		if err := st.Put(r.Context(), prefixLogoutRequest+id, rec, logoutOpTTL); err != nil {
			s.failLogout(w, r, failUnavailable, "store_unavailable", err)
			return
		}
		zerolog.Ctx(r.Context()).Info().Str("vendor", t.Vendor).Str("binding", bindingName(out.Binding)).Msg("logout request sent to vendor")
		if out.URL != "" {
			http.Redirect(w, r, out.URL, http.StatusSeeOther)
			return
		}
		autopost.WriteInFrame(w, out.Action, out.Fields)
	case modeFront:
		// Front-channel logout has no answer: the frame's loading is all
		// there is, so the request counts as the vendor's logout.
		if err := s.putAnswer(r.Context(), org, slo.Handle(tok), n, resultDone); err != nil {
			s.failLogout(w, r, failUnavailable, "store_unavailable", err)
			return
		}
		c := org.OP.Clients[t.ClientID]
		zerolog.Ctx(r.Context()).Info().Str("vendor", t.Vendor).Msg("front-channel logout sent to vendor")
		http.Redirect(w, r, org.OP.FrontchannelURL(c, t.SID), http.StatusSeeOther)
	default:
		s.failLogout(w, r, failLogoutExpired, "logout_frame", nil)
	}
}

func bindingName(b string) string {
	if b == samlslo.BindingPOST {
		return "post"
	}
	return "redirect"
}

func (s *Server) putAnswer(ctx context.Context, org *Organiser, handle string, n int, result string) error {
	return org.Store.Put(ctx, prefixLogoutAnswer+handle+":"+strconv.Itoa(n), []byte(result), logoutOpTTL)
}

// vendorLogoutResponse takes a vendor's answer to the LogoutRequest its
// frame sent, at the organiser's SingleLogoutService.
func (s *Server) vendorLogoutResponse(w http.ResponseWriter, r *http.Request, org *Organiser, in *samlslo.Incoming) {
	s.logoutAnswered(w, r, org.IdP, org.Store, in, func(sent sentRequest) *Organiser {
		if sent.Org != "" {
			return nil // sent by the hub's entity: answered at the hub's endpoint
		}
		return org
	})
}

// logoutAnswered records a vendor's LogoutResponse, checked by idp, for
// the request kept in st; orgOf names the organiser whose logout it is.
func (s *Server) logoutAnswered(w http.ResponseWriter, r *http.Request, idp *samlidp.IdP, st store.Store, in *samlslo.Incoming, orgOf func(sentRequest) *Organiser) {
	resp, v, err := idp.ParseLogoutResponse(in)
	if err != nil {
		s.logoutMessageRefused(w, r, "vendor_logout_response", err)
		return
	}
	b, err := st.Take(r.Context(), prefixLogoutRequest+resp.InResponseTo)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.failLogout(w, r, failLogoutExpired, "vendor_logout_response_unknown", nil)
		} else {
			s.failLogout(w, r, failUnavailable, "store_unavailable", err)
		}
		return
	}
	var sent sentRequest
	if err := json.Unmarshal(b, &sent); err != nil || sent.EntityID != v.EntityID {
		// Signed by one vendor, answering what was sent to another.
		s.failLogout(w, r, failLogoutRequest, "vendor_logout_response_other_vendor", nil)
		return
	}
	org := orgOf(sent)
	if org == nil {
		s.failLogout(w, r, failLogoutExpired, "vendor_logout_response_unknown", nil)
		return
	}
	result := resultDone
	if !resp.Success() {
		result = resultFailed
	}
	if err := s.putAnswer(r.Context(), org, sent.Op, sent.N, result); err != nil {
		s.failLogout(w, r, failUnavailable, "store_unavailable", err)
		return
	}
	zerolog.Ctx(r.Context()).Info().Str("result", result).Str("status", statusName(resp.Status, resp.SubStatus)).Msg("vendor answered logout")
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; frame-ancestors 'self'; base-uri 'none'")
	_ = s.tmpl.ExecuteTemplate(w, "logout_frame_done.html", result)
}

// statusName is a SAML status as a fixed word for the log.
func statusName(top, sub string) string {
	name := func(u string) string {
		const p = "urn:oasis:names:tc:SAML:2.0:status:"
		if strings.HasPrefix(u, p) && len(u) < len(p)+32 {
			return u[len(p):]
		}
		return "other"
	}
	if sub == "" {
		return name(top)
	}
	return name(top) + "/" + name(sub)
}

// handleLogoutNext continues after the vendors: their answers are
// collected (a vendor that did not answer in time is not waited for), and
// the school IdP is asked next.
func (s *Server) handleLogoutNext(w http.ResponseWriter, r *http.Request, org *Organiser) {
	tok, op, ok := s.loadLogout(w, r, org)
	if !ok {
		return
	}
	s.logoutNext(w, r, org, tok, op)
}

func (s *Server) logoutNext(w http.ResponseWriter, r *http.Request, org *Organiser, tok string, op *logoutOp) {
	ctx := r.Context()
	l := zerolog.Ctx(ctx)
	switch op.Stage {
	case stageVendors:
		h := slo.Handle(tok)
		for i := range op.Targets {
			t := &op.Targets[i]
			if t.Result != "" {
				continue
			}
			if logoutMode(org, t) == "" {
				t.Result = resultUnsupported
				l.Warn().Str("vendor", t.Vendor).Str("reason", "no_logout_endpoint").Msg("vendor cannot be logged out")
				continue
			}
			b, err := org.Store.Get(ctx, prefixLogoutAnswer+h+":"+strconv.Itoa(i))
			switch {
			case err == nil && string(b) == resultDone:
				t.Result = resultDone
			case err == nil || errors.Is(err, store.ErrNotFound):
				t.Result = resultFailed
				l.Warn().Str("vendor", t.Vendor).Str("reason", "no_answer").Msg("vendor did not confirm logout")
			default:
				s.failLogout(w, r, failUnavailable, "store_unavailable", err)
				return
			}
		}
		op.Stage = stageDone
		if op.Upstream != nil && s.askUpstream(w, r, org, tok, op) {
			return
		}
	case stageUpstream:
		// Back here without the school IdP's answer.
		op.UpstreamResult = resultFailed
		op.Stage = stageDone
	}
	s.finishLogout(w, r, org, tok, op)
}

// askUpstream sends the browser to the school IdP to end its session
// there. It reports false when it cannot, with op's upstream result set.
func (s *Server) askUpstream(w http.ResponseWriter, r *http.Request, org *Organiser, tok string, op *logoutOp) bool {
	ctx := r.Context()
	var up *Upstream
	for _, u := range org.Upstreams {
		if u.ID == op.Upstream.ID {
			up = u
		}
	}
	h := slo.Handle(tok)
	switch {
	case up != nil && up.SP != nil && up.SP.CanLogout() && op.Upstream.NameID != nil:
		id, out, err := up.SP.LogoutRequestTo(*op.Upstream.NameID, op.Upstream.SessionIndex, "")
		if err != nil {
			s.failLogout(w, r, failInternal, "logout_request", err)
			return true
		}
		if err := org.Store.Put(ctx, prefixUpstreamLogout+id, []byte(h), logoutOpTTL); err != nil {
			s.failLogout(w, r, failUnavailable, "store_unavailable", err)
			return true
		}
		op.Stage = stageUpstream
		if err := s.saveLogout(ctx, org, tok, op); err != nil {
			s.failLogout(w, r, failUnavailable, "store_unavailable", err)
			return true
		}
		zerolog.Ctx(ctx).Info().Str("upstream", up.ID).Msg("logout request sent to the school IdP")
		s.sendLogoutMessage(w, r, out)
		return true
	case up != nil && up.RP != nil && up.RP.CanLogout():
		state, err := slo.NewToken(s.rand)
		if err != nil {
			s.failLogout(w, r, failInternal, "random", err)
			return true
		}
		if err := org.Store.Put(ctx, prefixUpstreamLogout+"st:"+state, []byte(h), logoutOpTTL); err != nil {
			s.failLogout(w, r, failUnavailable, "store_unavailable", err)
			return true
		}
		op.Stage = stageUpstream
		if err := s.saveLogout(ctx, org, tok, op); err != nil {
			s.failLogout(w, r, failUnavailable, "store_unavailable", err)
			return true
		}
		zerolog.Ctx(ctx).Info().Str("upstream", up.ID).Msg("end-session request sent to the school IdP")
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, up.RP.LogoutURL(state), http.StatusSeeOther)
		return true
	}
	op.UpstreamResult = resultUnsupported
	zerolog.Ctx(ctx).Warn().Str("upstream", op.Upstream.ID).Str("reason", "no_logout_endpoint").Msg("the school IdP cannot be logged out")
	return false
}

// sendLogoutMessage sends a logout message through the browser, at the
// top level.
func (s *Server) sendLogoutMessage(w http.ResponseWriter, r *http.Request, out samlslo.Outgoing) {
	w.Header().Set("Cache-Control", "no-store")
	if out.URL != "" {
		http.Redirect(w, r, out.URL, http.StatusSeeOther)
		return
	}
	autopost.Write(w, out.Action, out.Fields)
}

// partial reports whether some participant was not confirmed logged out.
func (op *logoutOp) partial() bool {
	for _, t := range op.Targets {
		if t.Result != resultDone {
			return true
		}
	}
	return op.Upstream != nil && op.UpstreamResult != resultDone
}

// finishLogout answers whoever asked, with PartialLogout when some
// participant was not confirmed, and forgets the logout.
func (s *Server) finishLogout(w http.ResponseWriter, r *http.Request, org *Organiser, tok string, op *logoutOp) {
	ctx := r.Context()
	_ = logoutOps(org).Delete(ctx, tok)
	s.setLogoutCookie(w, s.cookieName(org, logoutCookieBase), "", -1)
	partial := op.partial()
	done := 0
	for _, t := range op.Targets {
		if t.Result == resultDone {
			done++
		}
	}
	zerolog.Ctx(ctx).Info().Str("initiator", op.Kind).Bool("partial", partial).Int("vendors", len(op.Targets)).
		Int("vendors_logged_out", done).Str("upstream_result", op.UpstreamResult).Msg("logout finished")
	if s.metrics != nil && partial {
		s.metrics.Refusal("logout_partial")
	}
	sub := ""
	if partial {
		sub = samlslo.StatusPartialLogout
	}
	switch op.Kind {
	case logoutByVendor:
		idp := logoutIdP(org, op.Vendor.Hub)
		if idp == nil {
			break
		}
		v, ok := idp.Vendor(op.Vendor.EntityID)
		if !ok {
			break
		}
		out, err := idp.LogoutResponseTo(v, op.RequestID, op.Binding, samlslo.StatusSuccess, sub, op.RelayState)
		if err != nil {
			s.failLogout(w, r, failInternal, "logout_response", err)
			return
		}
		s.sendLogoutMessage(w, r, out)
		return
	case logoutByUpstream:
		for _, up := range org.Upstreams {
			if up.ID == op.UpstreamID && up.SP != nil {
				out, err := up.SP.LogoutResponseTo(op.RequestID, op.Binding, samlslo.StatusSuccess, sub, op.RelayState)
				if err != nil {
					s.failLogout(w, r, failInternal, "logout_response", err)
					return
				}
				s.sendLogoutMessage(w, r, out)
				return
			}
		}
	case logoutByOIDC:
		if op.PostLogout != "" {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, org.OP.PostLogoutURL(op.PostLogout, op.State), http.StatusSeeOther)
			return
		}
	}
	s.logoutResult(w, r, org, op)
}

// logoutResult shows the person what was logged out.
func (s *Server) logoutResult(w http.ResponseWriter, r *http.Request, org *Organiser, op *logoutOp) {
	type row struct {
		Name string
		Done bool
	}
	var rows []row
	for _, t := range op.Targets {
		rows = append(rows, row{s.vendorName(org, t.Vendor), t.Result == resultDone})
	}
	if op.Upstream != nil {
		rows = append(rows, row{"Skolans inloggningstjänst / The school's login service", op.UpstreamResult == resultDone})
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	data := struct {
		Partial bool
		Rows    []row
	}{op.partial(), rows}
	if err := s.tmpl.ExecuteTemplate(w, "logout_result.html", data); err != nil {
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("logout page")
	}
}

// handleLogoutPage shows the "log out everywhere" page: what this browser
// is logged in to, and a button. A GET never logs out, so that no other
// site can log a person out with a link or an image.
func (s *Server) handleLogoutPage(w http.ResponseWriter, r *http.Request, org *Organiser) {
	data := struct {
		Organiser, Action, Token string
		Vendors                  []string
	}{Organiser: org.DisplayName, Action: org.Prefix + pathLogout}
	if tok, ok := token(r, s.cookieName(org, sessionCookieBase)); ok {
		var sess slo.Session
		switch err := sessions(org).Get(r.Context(), tok, &sess); {
		case err == nil:
			data.Token = slo.FormToken(tok)
			for _, p := range sess.Vendors {
				data.Vendors = append(data.Vendors, s.vendorName(org, p.Vendor))
			}
			if len(data.Vendors) == 0 {
				data.Vendors = []string{data.Organiser}
			}
		case errors.Is(err, store.ErrNotFound), errors.Is(err, slo.ErrSealed):
		default:
			s.failLogout(w, r, failUnavailable, "store_unavailable", err)
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if err := s.tmpl.ExecuteTemplate(w, "logout_confirm.html", data); err != nil {
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("logout page")
	}
}

// handleLogoutPagePost logs out everywhere: the form must carry the token
// bound to the browser's session (no other site can make it).
func (s *Server) handleLogoutPagePost(w http.ResponseWriter, r *http.Request, org *Organiser) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		s.failLogout(w, r, failLogoutRequest, "logout_form", nil)
		return
	}
	tok, ok := token(r, s.cookieName(org, sessionCookieBase))
	if !ok {
		s.logoutResult(w, r, org, &logoutOp{})
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("t")), []byte(slo.FormToken(tok))) != 1 {
		s.failLogout(w, r, failLogoutRequest, "logout_form_token", nil)
		return
	}
	var sess slo.Session
	switch err := sessions(org).Take(r.Context(), tok, &sess); {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, slo.ErrSealed):
		s.setLogoutCookie(w, s.cookieName(org, sessionCookieBase), "", -1)
		s.logoutResult(w, r, org, &logoutOp{})
		return
	case err != nil:
		s.failLogout(w, r, failUnavailable, "store_unavailable", err)
		return
	}
	s.startLogout(w, r, org, &sess, &logoutOp{Kind: logoutByPerson})
}
