package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/assurance"
	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/downstream/oidcop"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/metrics"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/upstream/oidcrp"
	"github.com/skolbro/skolbro/internal/upstream/samlsp"
)

// Fresh, passive and stronger logins (SECURITY.md cases 48 and 49). What
// a vendor asks of a login (ForceAuthn, prompt=login, max_age, IsPassive,
// prompt=none, a RequestedAuthnContext, acr_values, an essential acr) and
// what its policy requires (assurance:) are kept with the pending login,
// asked of the school IdP in its own words, and checked on return: a
// login older than asked, or weaker than required, is refused with the
// vendor protocol's error and a page that says why.

// Refusal labels of the release log.
const (
	// reasonNotFresh: the upstream login was older than the vendor's
	// request or its max_age (case 48).
	reasonNotFresh = "login_not_fresh"
	// reasonAssurance: the login proved less than the vendor's request or
	// policy requires (case 49).
	reasonAssurance = "assurance_too_low"
)

// demands is what the vendor and its policy ask of one login. It holds no
// personal data.
type demands struct {
	// At is when the bridge accepted the vendor's request.
	At time.Time `json:"t"`
	// Fresh asks for a new login (ForceAuthn, prompt=login, max_age=0).
	Fresh bool `json:"f,omitempty"`
	// MaxAge bounds the login's age in seconds (OIDC max_age).
	MaxAge *int64 `json:"m,omitempty"`
	// Passive asks for no interaction (IsPassive, prompt=none).
	Passive bool `json:"p,omitempty"`
	// Requested is the vendor's requested levels, in the organiser's
	// vocabulary; one must be proven.
	Requested assurance.Requested `json:"r,omitzero"`
	// Ask are the levels to ask the school IdP for: the requested ones
	// and the policy's minimum when it applies to everyone (a minimum for
	// some affiliations cannot be asked before the person is known).
	Ask []string `json:"a,omitempty"`
}

// vendorDemands reads what the vendor's request and policy ask of the
// login. ok is false when the vendor asks for a level the bridge cannot
// prove at all (an unknown class, a declaration reference): such a request
// is answered at once with NoAuthnContext or
// unmet_authentication_requirements.
func vendorDemands(p pendingLogin, pol *policy.Policy, now time.Time) (*demands, bool) {
	d := &demands{At: now}
	ok := true
	switch {
	case p.SAML != nil:
		d.Fresh, d.Passive = p.SAML.ForceAuthn, p.SAML.IsPassive
		if rac := p.SAML.AuthnContext; rac != nil {
			d.Requested, ok = assurance.FromClasses(rac.Classes, rac.Comparison)
			// Declaration references name no level the bridge knows.
			ok = ok && len(rac.Classes) > 0
		}
	case p.OIDC != nil:
		prompt := strings.Fields(p.OIDC.Prompt)
		d.Fresh = slices.Contains(prompt, "login")
		d.Passive = slices.Contains(prompt, "none")
		if m := p.OIDC.MaxAge; m != nil {
			v := *m
			d.MaxAge = &v
			d.Fresh = d.Fresh || v == 0
		}
		if len(p.OIDC.EssentialACR) > 0 {
			// An essential acr must be met (OIDC Core 5.5.1.1).
			d.Requested, ok = assurance.FromClasses(p.OIDC.EssentialACR, assurance.Minimum)
		} else {
			// acr_values are voluntary: those the bridge knows are
			// enforced, the others ignored.
			d.Requested, _ = assurance.FromClasses(p.OIDC.ACRValues, assurance.Minimum)
		}
	}
	d.Ask = append(d.Ask, d.Requested.Asked()...)
	if a := pol.Assurance; a != nil && a.For == nil {
		for _, l := range a.Minimum {
			if !slices.Contains(d.Ask, l) {
				d.Ask = append(d.Ask, l)
			}
		}
	}
	return d, ok
}

// upstreamOptions turns the pending login's demands into the school
// IdP's words.
func upstreamOptions(up *Upstream, state []byte) (samlsp.LoginOptions, oidcrp.LoginOptions) {
	var p pendingLogin
	if err := json.Unmarshal(state, &p); err != nil || p.Demands == nil {
		return samlsp.LoginOptions{}, oidcrp.LoginOptions{}
	}
	d := p.Demands
	classes := up.Assurance.Request(d.Ask)
	so := samlsp.LoginOptions{
		// SAML cannot say max_age: a fresh login meets every max_age.
		ForceAuthn:            d.Fresh || d.MaxAge != nil,
		IsPassive:             d.Passive,
		AuthnContextClassRefs: classes,
	}
	oo := oidcrp.LoginOptions{MaxAge: d.MaxAge, ACRValues: classes}
	switch {
	case d.Passive:
		oo.Prompt = "none"
	case d.Fresh:
		oo.Prompt = "login"
	}
	return so, oo
}

// freshnessSkew is allowed between the bridge's clock and the school
// IdP's when a login's age is checked.
func freshnessSkew(up *Upstream) time.Duration {
	if up.ClockSkew > 0 {
		return up.ClockSkew
	}
	return samlsp.DefaultClockSkew
}

// fresh reports whether the upstream login at instant meets d: not
// before the vendor's request when a fresh login was asked, not older
// than max_age. An upstream that does not say when the person logged in
// cannot meet either.
func fresh(d *demands, instant, now time.Time, skew time.Duration) bool {
	if d == nil || (!d.Fresh && d.MaxAge == nil) {
		return true
	}
	if instant.IsZero() {
		return false
	}
	if d.Fresh && instant.Before(d.At.Add(-skew)) {
		return false
	}
	if d.MaxAge != nil && now.Sub(instant) > time.Duration(*d.MaxAge)*time.Second+skew {
		return false
	}
	return true
}

// checkLogin applies the vendor's demands and its policy's minimum to a
// mapped login. It returns the level to name in the answer, or refuses
// (page, vendor protocol error, refusal event) and returns false.
func (s *Server) checkLogin(w http.ResponseWriter, r *http.Request, org *Organiser, up *Upstream, p pendingLogin, pol *policy.Policy, id *identity.Identity) (string, bool) {
	l := zerolog.Ctx(r.Context())
	if !fresh(p.Demands, id.AuthnInstant, s.now(), freshnessSkew(up)) {
		l.Warn().Str("vendor", pol.ID).Str("upstream", up.ID).Msg("the school IdP's login is older than the vendor allows")
		s.refuseToVendor(w, r, org, up.ID, p, pol, id, failNotFresh, reasonNotFresh, samlidp.StatusAuthnFailed, oidcop.CodeLoginRequired)
		return "", false
	}
	proven := assurance.Closure(id.Assurance)
	if a := pol.Assurance; a.Applies(id.Attributes[attr.Affiliation]) && !assurance.Satisfies(proven, a.Minimum) {
		l.Warn().Str("vendor", pol.ID).Str("upstream", up.ID).Str("proven", assurance.Primary(proven)).
			Msg("the login proved less than the vendor's policy requires")
		s.refuseToVendor(w, r, org, up.ID, p, pol, id, assuranceFailure(a.Minimum), reasonAssurance, samlidp.StatusNoAuthnContext, oidcop.CodeUnmetAuthenticationRequirements)
		return "", false
	}
	var req assurance.Requested
	if p.Demands != nil {
		req = p.Demands.Requested
	}
	level, ok := req.Choose(proven)
	if !ok {
		l.Warn().Str("vendor", pol.ID).Str("upstream", up.ID).Str("proven", assurance.Primary(proven)).
			Msg("the login proved less than the vendor asked for")
		s.refuseToVendor(w, r, org, up.ID, p, pol, id, assuranceFailure(req.Levels), reasonAssurance, samlidp.StatusNoAuthnContext, oidcop.CodeUnmetAuthenticationRequirements)
		return "", false
	}
	return level, true
}

// assuranceFailure is the page for a login too weak for levels: it says
// two-factor login is needed when one of them needs two factors.
func assuranceFailure(levels []string) failure {
	if slices.ContainsFunc(levels, assurance.MultiFactor) {
		return failTwoFactor
	}
	return failAssurance
}

// answerUnmet answers a request the bridge cannot meet at all at once, in
// the vendor's protocol.
func (s *Server) answerUnmet(w http.ResponseWriter, r *http.Request, org *Organiser, p pendingLogin) {
	zerolog.Ctx(r.Context()).Info().Str("vendor", p.Vendor).Msg("the vendor asked for an authentication context the bridge cannot prove")
	if p.OIDC != nil {
		s.refusal("vendor_no_authn_context")
		http.Redirect(w, r, org.OP.ErrorResponse(p.OIDC, oidcop.CodeUnmetAuthenticationRequirements, "the requested authentication level cannot be met").Redirect, http.StatusFound)
		return
	}
	s.answerStatusWith(w, r, s.answeringIdP(org, p), p.SAML, samlidp.StatusNoAuthnContext)
}

// answerUpstreamStatus handles a school IdP's answer that ends a login
// the vendor should hear about in its own protocol: no session for a
// passive login (NoPassive, login_required), or no way to give the level
// asked for (NoAuthnContext, unmet_authentication_requirements). It
// returns false for every other error, which gets the usual page.
func (s *Server) answerUpstreamStatus(w http.ResponseWriter, r *http.Request, org *Organiser, up *Upstream, err error) bool {
	var state []byte
	var noSession, noContext bool
	if e := (*samlsp.Error)(nil); errors.As(err, &e) && e.Reason == samlsp.ReasonStatus {
		state = e.State
		noSession = e.UpstreamSubStatus == samlidp.StatusNoPassive
		noContext = e.UpstreamSubStatus == samlidp.StatusNoAuthnContext
	} else if e := (*oidcrp.Error)(nil); errors.As(err, &e) && e.Reason == oidcrp.ReasonStatus {
		state = e.State
		switch e.UpstreamError {
		case "login_required", "interaction_required", "consent_required", "account_selection_required":
			noSession = true
		case "unmet_authentication_requirements":
			noContext = true
		}
	}
	if state == nil || !(noSession || noContext) {
		return false
	}
	var p pendingLogin
	if json.Unmarshal(state, &p) != nil || p.Demands == nil || (p.SAML == nil) == (p.OIDC == nil) {
		return false
	}
	pol, ok := org.Policies.ByID(p.Vendor)
	if !ok {
		return false
	}
	switch {
	case noSession && p.Demands.Passive:
		zerolog.Ctx(r.Context()).Info().Str("vendor", pol.ID).Str("upstream", up.ID).Msg("passive login: the school IdP has no session")
		if p.OIDC != nil {
			s.refusal("vendor_passive")
			http.Redirect(w, r, org.OP.ErrorResponse(p.OIDC, oidcop.CodeLoginRequired, "no session at the school's login service").Redirect, http.StatusFound)
			return true
		}
		s.answerStatusWith(w, r, s.answeringIdP(org, p), p.SAML, samlidp.StatusNoPassive)
		return true
	case noContext && len(p.Demands.Ask) > 0:
		zerolog.Ctx(r.Context()).Warn().Str("vendor", pol.ID).Str("upstream", up.ID).Msg("the school IdP cannot give the level asked for")
		s.refuseToVendor(w, r, org, up.ID, p, pol, nil, assuranceFailure(p.Demands.Ask), reasonAssurance, samlidp.StatusNoAuthnContext, oidcop.CodeUnmetAuthenticationRequirements)
		return true
	}
	return false
}

// vendorAnswer is a protocol error for the vendor, carried by the refusal
// page's button: a SAML status response posted to the vendor's ACS, or an
// OIDC error redirect.
type vendorAnswer struct {
	Action string
	Fields []formField
	Link   string
	origin string
}

type formField struct{ Name, Value string }

// refuseToVendor records a refused login, and shows the page that says why
// with a button that takes the vendor protocol's error back to the vendor
// (SAML samlStatus under Responder, OIDC oidcCode): the person learns what
// happened, and the vendor is not left waiting.
func (s *Server) refuseToVendor(w http.ResponseWriter, r *http.Request, org *Organiser, upstream string, p pendingLogin, pol *policy.Policy, id *identity.Identity, f failure, reason, samlStatus, oidcCode string) {
	if s.metrics != nil {
		s.metrics.Login(pol.ID, p.Protocol, metrics.OutcomeRefused)
	}
	if err := s.record(r, org, audit.RefusalEvent(s.now(), RequestID(r.Context()), upstream, p.Protocol, pol.ID, pol, reason, s.subjectKeys(org, id)...)); err != nil {
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("release log unavailable")
	}
	if p.Demands != nil && p.Demands.Passive {
		// A passive login must not show the person anything: the vendor
		// gets its protocol's error at once.
		zerolog.Ctx(r.Context()).Info().Str("reason", reason).Msg("passive login refused: answered the vendor")
		s.refusal(reason)
		if p.OIDC != nil && org.OP != nil {
			http.Redirect(w, r, org.OP.ErrorResponse(p.OIDC, oidcCode, f.messageEN).Redirect, http.StatusFound)
			return
		}
		if p.SAML != nil {
			s.answerStatusWith(w, r, s.answeringIdP(org, p), p.SAML, samlStatus)
			return
		}
	}
	var ans *vendorAnswer
	switch {
	case p.OIDC != nil && org.OP != nil:
		ans = &vendorAnswer{Link: org.OP.ErrorResponse(p.OIDC, oidcCode, f.messageEN).Redirect}
	case p.SAML != nil:
		resp, err := s.answeringIdP(org, p).BuildStatusResponse(p.SAML, samlidp.StatusResponder, samlStatus)
		if err != nil {
			s.fail(w, r, failInternal, "build_response", err)
			return
		}
		u, err := url.Parse(p.SAML.ACSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			s.fail(w, r, failInternal, "vendor_acs", nil)
			return
		}
		ans = &vendorAnswer{Action: p.SAML.ACSURL, Fields: []formField{{"SAMLResponse", resp}}, origin: u.Scheme + "://" + u.Host}
		if p.SAML.RelayState != "" {
			ans.Fields = append(ans.Fields, formField{"RelayState", p.SAML.RelayState})
		}
	}
	s.failPage(w, r, f, f.status, reason, nil, ans)
}
