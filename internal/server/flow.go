package server

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/autopost"
	"github.com/skolbro/skolbro/internal/downstream/oidcop"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/mapping"
	"github.com/skolbro/skolbro/internal/metrics"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/protection"
	"github.com/skolbro/skolbro/internal/release"
	"github.com/skolbro/skolbro/internal/samlslo"
	"github.com/skolbro/skolbro/internal/slo"
	"github.com/skolbro/skolbro/internal/upstream/oidcrp"
	"github.com/skolbro/skolbro/internal/upstream/samlsp"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// maxACSBody bounds the ACS POST body (SECURITY.md case 18).
const maxACSBody = 512 << 10

// pendingLogin is what the bridge keeps in the store while the person logs
// in upstream: the vendor's validated request. No personal data.
type pendingLogin struct {
	Protocol string `json:"p"`
	Vendor   string `json:"v"`
	// Via is "hub" when the vendor came through the hub's entity, which
	// then answers; "" when the organiser's own entity does.
	Via string `json:"h,omitempty"`
	// Login is the login's id, logged on every line of the login (random,
	// no personal data).
	Login string              `json:"l,omitempty"`
	SAML  *samlidp.Request    `json:"s,omitempty"`
	OIDC  *oidcop.AuthRequest `json:"o,omitempty"`
	// Demands is what the vendor and its policy ask of the login (fresh,
	// passive, a level); nil for an admin's login.
	Demands *demands `json:"d,omitempty"`
}

// handleSSO receives a vendor's AuthnRequest and sends the browser upstream.
func (s *Server) handleSSO(w http.ResponseWriter, r *http.Request, org *Organiser) {
	r.Body = http.MaxBytesReader(w, r.Body, maxACSBody)
	l := zerolog.Ctx(r.Context())
	req, err := org.IdP.ParseRequest(r)
	if err != nil {
		var e *samlidp.Error
		if errors.As(err, &e) {
			if e.Status == http.StatusRequestEntityTooLarge {
				s.fail(w, r, failTooLarge, "vendor_"+e.Reason, err)
				return
			}
			s.failStatus(w, r, failVendorRequest, e.Status, "vendor_"+e.Reason, err)
			return
		}
		s.fail(w, r, failVendorRequest, "vendor_malformed", err)
		return
	}
	pol, ok := org.Policies.BySAMLEntityID(req.VendorEntityID)
	if !ok {
		s.fail(w, r, failVendorRequest, "vendor_no_policy", nil)
		return
	}
	if !pol.AgreementActive(s.now()) {
		l.Warn().Str("vendor", pol.ID).Msg("data processing agreement has ended")
		s.refuse(w, r, org, "", pol, audit.ProtocolSAML, nil, failAgreement, audit.ReasonAgreementEnded)
		return
	}
	if sub := unmet(req, pol); sub != "" {
		s.answerStatus(w, r, org, req, sub)
		return
	}
	s.startLogin(w, r, org, pendingLogin{Protocol: audit.ProtocolSAML, Vendor: pol.ID, SAML: req}, samlHints(r, req))
}

// unmet says which second-level SAML status answers a valid request the
// bridge cannot meet, or "": a persistent or other NameID format the
// vendor's policy does not give. A passive login is passed to the school
// IdP, whose answer comes back (answerUpstreamStatus).
func unmet(req *samlidp.Request, pol *policy.Policy) string {
	pairwise := pol.SAML != nil && pol.SAML.NameID == policy.NameIDPairwise
	switch req.NameIDFormat {
	case "", samlidp.NameIDUnspecified:
	case samlidp.NameIDPersistent:
		if !pairwise {
			return samlidp.StatusInvalidNameIDPolicy
		}
	case samlidp.NameIDTransient:
		// Always possible: a transient NameID releases less than the
		// policy allows.
	default:
		return samlidp.StatusInvalidNameIDPolicy
	}
	return ""
}

// answerStatus posts a signed status response to the vendor's validated ACS.
func (s *Server) answerStatus(w http.ResponseWriter, r *http.Request, org *Organiser, req *samlidp.Request, sub string) {
	s.answerStatusWith(w, r, org.IdP, req, sub)
}

// answerStatusWith answers with the given IdP entity (an organiser's own,
// or the hub's).
func (s *Server) answerStatusWith(w http.ResponseWriter, r *http.Request, idp *samlidp.IdP, req *samlidp.Request, sub string) {
	top, reason := samlidp.StatusRequester, "vendor_invalid_name_id_policy"
	switch sub {
	case samlidp.StatusNoPassive:
		top, reason = samlidp.StatusResponder, "vendor_passive"
	case samlidp.StatusNoAuthnContext:
		top, reason = samlidp.StatusResponder, "vendor_no_authn_context"
	case samlidp.StatusAuthnFailed:
		top, reason = samlidp.StatusResponder, "vendor_authn_failed"
	}
	resp, err := idp.BuildStatusResponse(req, top, sub)
	if err != nil {
		s.fail(w, r, failInternal, "build_response", err)
		return
	}
	zerolog.Ctx(r.Context()).Info().Str("reason", reason).Msg("answered the vendor with a SAML status")
	s.refusal(reason)
	fields := map[string]string{"SAMLResponse": resp}
	if req.RelayState != "" {
		fields["RelayState"] = req.RelayState
	}
	autopost.Write(w, req.ACSURL, fields)
}

// handleAuthorize receives an OIDC vendor's authorization request.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request, org *Organiser) {
	r.Body = http.MaxBytesReader(w, r.Body, maxACSBody)
	req, oerr := org.OP.ParseAuthorize(r)
	if oerr != nil {
		if oerr.Redirect == "" {
			// The redirect URI cannot be trusted: never redirect (case 26).
			s.failStatus(w, r, failVendorRequest, http.StatusBadRequest, "vendor_"+oerr.Code, nil)
			return
		}
		zerolog.Ctx(r.Context()).Warn().Str("reason", "vendor_"+oerr.Code).Msg("authorization request refused")
		http.Redirect(w, r, oerr.Redirect, http.StatusFound)
		return
	}
	pol, ok := org.Policies.ByID(req.VendorID)
	if !ok {
		s.fail(w, r, failVendorRequest, "vendor_no_policy", nil)
		return
	}
	if !pol.AgreementActive(s.now()) {
		s.refuse(w, r, org, "", pol, audit.ProtocolOIDC, nil, failAgreement, audit.ReasonAgreementEnded)
		return
	}
	s.startLogin(w, r, org, pendingLogin{Protocol: audit.ProtocolOIDC, Vendor: pol.ID, OIDC: req}, oidcHints(r, req))
}

// startLogin keeps the vendor's validated request and sends the browser
// to the school IdP.
func (s *Server) startLogin(w http.ResponseWriter, r *http.Request, org *Organiser, p pendingLogin, hints loginHints) {
	// Before anything is stored: a flood for one vendor must not fill the
	// store or starve the other vendors.
	if s.vendorLimit != nil {
		if ok, retry := s.vendorLimit.Allow(org.ID + "/" + p.Vendor); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
			s.fail(w, r, failBusy, "vendor_rate_limited", nil)
			return
		}
	}
	if p.Login == "" {
		p.Login = s.newLoginID()
	}
	r = withLogin(r, p.Login)
	if p.Protocol != protocolAdmin {
		pol, ok := org.Policies.ByID(p.Vendor)
		if !ok {
			s.fail(w, r, failVendorRequest, "vendor_no_policy", nil)
			return
		}
		d, ok := vendorDemands(p, pol, s.now())
		if !ok {
			s.answerUnmet(w, r, org, p)
			return
		}
		p.Demands = d
	}
	state, err := json.Marshal(p)
	if err != nil {
		s.fail(w, r, failInternal, "state", err)
		return
	}
	binding, err := s.binding(w, r, org.binding)
	if err != nil {
		s.fail(w, r, failInternal, "binding", err)
		return
	}
	up := s.chooseUpstream(r, org, hints)
	if up == nil {
		// The bridge cannot tell which of the organiser's school IdPs the
		// person belongs to: ask (discovery).
		s.showDiscovery(w, r, org, binding, state)
		return
	}
	s.goUpstream(w, r, org, up, binding, state, p.Vendor, p.Protocol)
}

// goUpstream sends the browser to one school IdP with the pending login.
func (s *Server) goUpstream(w http.ResponseWriter, r *http.Request, org *Organiser, up *Upstream, binding string, state []byte, vendor, protocol string) {
	to, err := s.startUpstream(r, up, binding, state)
	if err != nil {
		s.fail(w, r, failUnavailable, "store_unavailable", err)
		return
	}
	zerolog.Ctx(r.Context()).Info().Str("vendor", vendor).Str("protocol", protocol).Str("upstream", up.ID).Msg("login started")
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusFound)
}

// record writes one event to the release log. Nothing is released that
// could not be recorded.
func (s *Server) record(r *http.Request, org *Organiser, ev audit.Event) error {
	if org.Audit == nil {
		return errors.New("server: no release log")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	return org.Audit.Write(ctx, ev)
}

// subjectKeys are every key the release log files an event about id
// under, so that subject access finds it by the number or the stable id.
func (s *Server) subjectKeys(org *Organiser, id *identity.Identity) []string {
	if org.AuditKeys == nil || id == nil {
		return nil
	}
	return org.AuditKeys.Keys(id)
}

// refuse records a refused login for a known vendor and shows the page.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, org *Organiser, upstream string, pol *policy.Policy, protocol string, id *identity.Identity, f failure, reason string) {
	if s.metrics != nil {
		s.metrics.Login(pol.ID, protocol, metrics.OutcomeRefused)
	}
	if err := s.record(r, org, audit.RefusalEvent(s.now(), RequestID(r.Context()), upstream, protocol, pol.ID, pol, reason, s.subjectKeys(org, id)...)); err != nil {
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("release log unavailable")
	}
	s.fail(w, r, f, reason, nil)
}

// decideProtection sets id.Protection from every configured source. A
// source that fails makes the person protected for this login (fail
// closed); the login still completes, masked.
func (s *Server) decideProtection(r *http.Request, up *Upstream, id *identity.Identity, in mapping.Input) {
	res := up.Protection
	if res == nil || len(res.Sources) == 0 {
		if up.AssumeUnprotected {
			id.Protection = identity.ProtectionNone
		} else {
			id.Protection = identity.ProtectionUnknown
		}
		return
	}
	level, failures := res.Resolve(r.Context(), id)
	id.Protection = level
	for _, f := range failures {
		ev := zerolog.Ctx(r.Context()).Warn().Str("source", f.Source).Str("reason", f.Reason)
		if f.Source == protection.SourceUpstreamAttribute && up.Mapping != nil {
			// Which attribute was expected, and whether the IdP sent it
			// at all (a wrong security_marking name masks everyone):
			// names only, never the value.
			ev = ev.Str("attribute", up.Mapping.SecurityMarking).Bool("attribute_sent", mapping.SecurityMarkingSent(up.Mapping, in))
		}
		ev.Msg("protection source failed: treated as protected")
	}
}

// decideGeneration sets id.Generation, starting a new identity when the
// person is newly protected or an admin asked for one (package
// generation). Without the organiser's store the bridge cannot know which
// identifiers the person may still be given, so the login fails closed.
func (s *Server) decideGeneration(w http.ResponseWriter, r *http.Request, org *Organiser, id *identity.Identity) bool {
	gl, err := org.Generations.ForLogin(r.Context(), id, s.now())
	if err != nil {
		s.fail(w, r, failUnavailable, "generation_unavailable", err)
		return false
	}
	id.Generation = gl.Generation
	if gl.Started != "" {
		// The cause and the number only: which person is for the
		// release log's subject key, not for this log.
		zerolog.Ctx(r.Context()).Info().Str("cause", gl.Started).Int("generation", gl.Generation).Msg("new identity issued")
	}
	return true
}

// finishAdmin completes an admin's login: the admin interface checks the
// entitlement and makes a fresh session. Nothing is released.
func (s *Server) finishAdmin(w http.ResponseWriter, r *http.Request, org *Organiser, up *Upstream, in mapping.Input) {
	if org.admin == nil {
		s.fail(w, r, failNotFound, "admin_disabled", nil)
		return
	}
	id, _, err := mapping.MapWithWarnings(up.Mapping, in, s.now())
	if err != nil {
		s.fail(w, r, failUpstream, "mapping", err)
		return
	}
	org.admin.CompleteLogin(w, r, id)
}

// startUpstream sends the login to the school IdP in its own protocol.
func (s *Server) startUpstream(r *http.Request, up *Upstream, binding string, state []byte) (string, error) {
	so, oo := upstreamOptions(up, state)
	if up.RP != nil {
		return up.RP.StartLoginWith(r.Context(), binding, state, oo)
	}
	return up.SP.StartLoginWith(r.Context(), binding, state, "", so)
}

// handleRPCallback receives the school's OIDC IdP's answer and finishes
// the login.
func (s *Server) handleRPCallback(w http.ResponseWriter, r *http.Request, org *Organiser, up *Upstream) {
	binding, reason := s.completedBinding(r, org.binding)
	if reason != "" {
		s.failBindingReason(w, r, reason)
		return
	}
	res, state, err := up.RP.HandleCallback(r.Context(), r, binding)
	if err != nil {
		if s.answerUpstreamStatus(w, r, org, up, err) {
			return
		}
		s.upstreamFailed(w, r, org, up, err)
		return
	}
	if !s.rotateBinding(w, r, org.binding) {
		return
	}
	us := &slo.Upstream{ID: up.ID, Protocol: slo.ProtocolOIDC, Subject: res.Subject}
	if sid := res.Claims["sid"]; len(sid) == 1 && len(sid[0]) <= 256 {
		us.SID = sid[0]
	}
	s.finish(w, withUpstreamSession(r, us), org, up, state, res.Input())
}

// handleACS receives the school IdP's SAML response and finishes the login.
func (s *Server) handleACS(w http.ResponseWriter, r *http.Request, org *Organiser, up *Upstream) {
	r.Body = http.MaxBytesReader(w, r.Body, maxACSBody)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, failTooLarge, "upstream_too_large", nil)
		return
	}
	binding, reason := s.completedBinding(r, org.binding)
	if reason != "" {
		s.failBindingReason(w, r, reason)
		return
	}
	a, state, err := up.SP.HandleResponse(r.Context(), r.PostForm.Get("SAMLResponse"), binding)
	if err != nil {
		if s.answerUpstreamStatus(w, r, org, up, err) {
			return
		}
		s.upstreamFailed(w, r, org, up, err)
		return
	}
	if !s.rotateBinding(w, r, org.binding) {
		return
	}
	r = withUpstreamSession(r, &slo.Upstream{ID: up.ID, Protocol: slo.ProtocolSAML, Subject: a.NameID,
		NameID:       &samlslo.NameID{Value: a.NameID, Format: a.NameIDFormat, NameQualifier: a.NameQualifier, SPNameQualifier: a.SPNameQualifier},
		SessionIndex: a.SessionIndex})
	s.finish(w, r, org, up, state, mapping.Input{
		Subject:       a.NameID,
		Attributes:    a.Attributes,
		FriendlyNames: a.FriendlyNames,
		AuthnInstant:  a.AuthnInstant,
		AuthnContext:  a.AuthnContext,
	})
}

// finish is the protocol-neutral second half of every login: map the
// upstream answer into an identity, decide protection, release what the
// vendor's policy allows, record the release, and answer the vendor in its
// own protocol.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, org *Organiser, up *Upstream, state []byte, in mapping.Input) {
	var p pendingLogin
	if err := json.Unmarshal(state, &p); err != nil || (p.Protocol != protocolAdmin && (p.SAML == nil) == (p.OIDC == nil)) {
		s.fail(w, r, failInternal, "state", errors.New("bad pending login state"))
		return
	}
	r = withLogin(r, p.Login)
	l := zerolog.Ctx(r.Context())
	if p.Protocol == protocolAdmin {
		s.finishAdmin(w, r, org, up, in)
		return
	}
	pol, ok := org.Policies.ByID(p.Vendor)
	if !ok {
		s.fail(w, r, failVendorRequest, "vendor_no_policy", nil)
		return
	}
	if !pol.AgreementActive(s.now()) {
		s.refuse(w, r, org, up.ID, pol, p.Protocol, nil, failAgreement, audit.ReasonAgreementEnded)
		return
	}
	s.noteUpstreamNames(r, org, up, in)
	id, warnings, err := mapping.MapWithWarnings(up.Mapping, in, s.now())
	if err != nil {
		l.Warn().Err(err).Msg("upstream answer could not be mapped")
		s.refuse(w, r, org, up.ID, pol, p.Protocol, nil, failUpstream, "mapping")
		return
	}
	for _, w := range warnings {
		// Attribute names and fixed reasons only: no values.
		l.Warn().Str("attribute", w.Attribute).Str("reason", w.Reason).Msg("upstream attribute dropped")
	}
	s.notePersonalNumbersInValues(r, org, warnings)
	level, ok := s.checkLogin(w, r, org, up, p, pol, id)
	if !ok {
		return
	}
	s.decideProtection(r, up, id, in)
	if !s.decideGeneration(w, r, org, id) {
		return
	}
	if pol, ok = s.enabledFor(w, r, org, up.ID, pol, p.Protocol, id); !ok {
		return
	}
	rel := release.Release(pol, id, org.Deriver)
	// The level the vendor asked for when it asked, proven (checkLogin).
	rel.AuthnContext = level
	if p.OIDC != nil {
		s.answerOIDC(w, r, org, up.ID, p.OIDC, pol, id, rel)
		return
	}
	opts := responseOptions(pol)
	if p.SAML.NameIDFormat == samlidp.NameIDTransient {
		opts.PersistentNameID = false // the vendor asked for less
	}
	idp := s.answeringIdP(org, p)
	if idp == nil {
		s.fail(w, r, failVendorRequest, "vendor_no_policy", nil)
		return
	}
	resp, issued, err := idp.BuildResponseIssued(p.SAML, rel, opts)
	if err != nil {
		s.fail(w, r, failInternal, "build_response", err)
		return
	}
	if !s.rememberLogin(w, r, org, slo.Participant{Vendor: pol.ID, Protocol: slo.ProtocolSAML, Hub: p.Via == viaHub,
		EntityID: p.SAML.VendorEntityID, NameID: &issued.NameID, SessionIndex: issued.SessionIndex}) {
		return
	}
	if !s.recordRelease(w, r, org, up.ID, audit.ProtocolSAML, pol, id, rel) {
		return
	}
	fields := map[string]string{"SAMLResponse": resp}
	if p.SAML.RelayState != "" {
		fields["RelayState"] = p.SAML.RelayState
	}
	autopost.Write(w, p.SAML.ACSURL, fields)
}

func (s *Server) answerOIDC(w http.ResponseWriter, r *http.Request, org *Organiser, upstream string, req *oidcop.AuthRequest, pol *policy.Policy, id *identity.Identity, rel *release.Released) {
	if org.OP == nil {
		s.fail(w, r, failInternal, "no_op", nil)
		return
	}
	sid, err := org.OP.NewSID()
	if err != nil {
		s.fail(w, r, failInternal, "random", err)
		return
	}
	if !s.rememberLogin(w, r, org, slo.Participant{Vendor: pol.ID, Protocol: slo.ProtocolOIDC, ClientID: req.ClientID, Sub: rel.Sub, SID: sid}) {
		return
	}
	// Record first: a code, once issued, can be redeemed.
	if !s.recordRelease(w, r, org, upstream, audit.ProtocolOIDC, pol, id, rel) {
		return
	}
	to, err := org.OP.CompleteSession(r.Context(), req, rel, sid)
	if err != nil {
		s.fail(w, r, failUnavailable, "code_unavailable", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusFound)
}

// recordRelease writes the release event and logs it; it shows the error
// page and returns false when the event could not be written.
func (s *Server) recordRelease(w http.ResponseWriter, r *http.Request, org *Organiser, upstream string, protocol string, pol *policy.Policy, id *identity.Identity, rel *release.Released) bool {
	if err := s.record(r, org, audit.ReleaseEvent(s.now(), RequestID(r.Context()), upstream, protocol, pol, rel, s.subjectKeys(org, id)...)); err != nil {
		s.fail(w, r, failUnavailable, "audit_unavailable", err)
		return false
	}
	zerolog.Ctx(r.Context()).Info().Str("vendor", pol.ID).Str("protocol", protocol).Str("policy_version", pol.Hash).
		Strs("released", rel.Names()).Bool("masked", rel.Masked).Msg("released")
	if s.metrics != nil {
		s.metrics.Login(pol.ID, protocol, metrics.OutcomeSuccess)
		if rel.Masked {
			s.metrics.Masking(pol.ID)
		}
	}
	return true
}

// upstreamFailed shows the page for an answer the upstream side refused
// and, when the bridge can tell which vendor's login it answered, records
// a refusal event for that vendor (see recordUpstreamRefusal).
func (s *Server) upstreamFailed(w http.ResponseWriter, r *http.Request, org *Organiser, up *Upstream, err error) {
	var reason string
	var status int
	var state []byte
	if e := (*samlsp.Error)(nil); errors.As(err, &e) {
		reason, status, state = e.Reason, e.Status, e.State
	} else if e := (*oidcrp.Error)(nil); errors.As(err, &e) {
		reason, status, state = e.Reason, e.Status, e.State
	} else {
		s.fail(w, r, failUpstream, "upstream_malformed", err)
		return
	}
	label := "upstream_" + reason
	s.recordUpstreamRefusal(r, org, up, state, label)
	switch {
	case status == http.StatusServiceUnavailable:
		s.fail(w, r, failUnavailable, label, err)
	case status == http.StatusRequestEntityTooLarge:
		s.fail(w, r, failTooLarge, label, err)
	case reason == "status":
		s.fail(w, r, failCancelled, label, err)
	case reason == "in_response_to" || reason == "binding" || reason == "expired" || reason == "replay" || reason == "state":
		s.failStatus(w, r, failExpired, status, label, err)
	default:
		s.failStatus(w, r, failUpstream, status, label, err)
	}
}

// recordUpstreamRefusal writes a refusal event for an answer refused at
// the upstream (bad signature, replay, audience, expiry, the IdP's own
// error...), against the vendor of the login it answered. state is that
// login's pending state as the upstream package returned it with the
// refusal: it comes from the bridge's own store, found through this
// browser's binding (or, for a replay, through the verified assertion),
// never from what the answer claims. Without it nothing is recorded: the
// vendor is unknown, and an event for an answer anyone can post would be
// free write amplification. The event carries the vendor, the protocol,
// the upstream and the fixed reason: no subject key and nothing from the
// refused answer. At most DefaultRefusalEventsPerMinute (or the
// configured cap) per client are written; the rest are counted as
// refusals_total{reason="refusal_event_capped"} and logged.
func (s *Server) recordUpstreamRefusal(r *http.Request, org *Organiser, up *Upstream, state []byte, reason string) {
	if len(state) == 0 || org.Audit == nil {
		return
	}
	var p pendingLogin
	if err := json.Unmarshal(state, &p); err != nil || p.Vendor == "" ||
		(p.Protocol != audit.ProtocolSAML && p.Protocol != audit.ProtocolOIDC) {
		return // an admin's login, or nothing the bridge wrote
	}
	l := zerolog.Ctx(r.Context())
	if s.metrics != nil {
		s.metrics.Login(p.Vendor, p.Protocol, metrics.OutcomeRefused)
	}
	if ok, _ := s.refusalEvents.Allow(org.ID + "|" + s.clientIP.Key(r)); !ok {
		s.refusal("refusal_event_capped")
		l.Warn().Str("vendor", p.Vendor).Str("reason", reason).Msg("refusal event not recorded: this client's cap is reached")
		return
	}
	pol, _ := org.Policies.ByID(p.Vendor)
	if err := s.record(r, org, audit.RefusalEvent(s.now(), RequestID(r.Context()), up.ID, p.Protocol, p.Vendor, pol, reason, "")); err != nil {
		l.Error().Err(err).Msg("release log unavailable")
	}
}

// replayNote is what the SAML replay cache keeps of an accepted login's
// pending state: the protocol, vendor and entity, so that a replay can be
// recorded against the vendor without keeping the vendor's whole request.
func replayNote(state []byte) []byte {
	var p pendingLogin
	if err := json.Unmarshal(state, &p); err != nil || p.Vendor == "" {
		return nil
	}
	b, err := json.Marshal(pendingLogin{Protocol: p.Protocol, Vendor: p.Vendor, Via: p.Via})
	if err != nil {
		return nil
	}
	return b
}

// responseOptions turns a vendor's policy into how its responses are
// made. By default only the assertion is signed (policy.SignAuto): the
// Response too when the vendor's metadata asks or its policy says so.
func responseOptions(p *policy.Policy) samlidp.ResponseOptions {
	o := samlidp.ResponseOptions{SignAssertion: true, SignResponseIfWanted: true, Encrypt: "auto"}
	if p.SAML == nil {
		return o
	}
	switch p.SAML.Sign {
	case policy.SignAssertionAndResponse:
		o.SignResponse = true
	case policy.SignAssertion:
		o.SignResponseIfWanted = false
	case policy.SignResponse:
		o.SignAssertion, o.SignResponse, o.SignResponseIfWanted = false, true, false
	}
	switch p.SAML.SignatureAlgorithm {
	case "ecdsa-sha256":
		o.SignatureMethod = xmlsig.ECDSASHA256
	case "":
		o.AutoSignatureMethod = true
	}
	if p.SAML.Encrypt != "" {
		o.Encrypt = string(p.SAML.Encrypt)
	}
	o.PersistentNameID = p.SAML.NameID == "pairwise"
	return o
}

// answeringIdP is the entity that answers a SAML login: the organiser's
// own, or the hub's when the vendor came through it. It is nil when the
// vendor came through the hub but a reload since took the organiser out
// of the hub: an answer from the organiser's own entity would reach the
// vendor from an issuer it never asked.
func (s *Server) answeringIdP(org *Organiser, p pendingLogin) *samlidp.IdP {
	if p.Via == viaHub {
		if org.hub == nil {
			return nil
		}
		return org.hub.IdP
	}
	return org.IdP
}
