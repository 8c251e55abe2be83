package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/ownmeta"
	"github.com/skolbro/skolbro/internal/samlslo"
	"github.com/skolbro/skolbro/internal/slo"
	"github.com/skolbro/skolbro/internal/store"
)

// HubPrefix is where the hub's own entity is served.
const HubPrefix = "/hub"

// viaHub marks a pending login whose vendor came through the hub's entity:
// the hub's IdP answers it, under the chosen organiser's policy.
const viaHub = "hub"

// hubChoiceCookie keeps the organiser a browser last chose at the hub.
const hubChoiceCookie = "skolbro_organiser"

// Hub is the hub's own IdP entity, for vendors that several organisers
// share through one registration. It holds no person's data and no
// organiser's keys: once the person has picked their organiser, that
// organiser's policy, pseudonyms, protection sources and release log
// apply, and only the answer is issued and signed by the hub's entity.
type Hub struct {
	IdP      *samlidp.IdP
	Metadata *ownmeta.Publisher
	// Organisers are those with a policy for at least one hub vendor.
	Organisers []*Organiser
	// BindingKey authenticates the hub's own binding cookie, which ties
	// a discovery choice to the browser that started the login.
	BindingKey []byte

	binding binder
}

func (s *Server) hubRoutes(r *mux.Router, hub *Hub) {
	r.HandleFunc(HubPrefix+"/saml/idp/sso", func(w http.ResponseWriter, r *http.Request) { s.handleHubSSO(w, r, hub) }).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc(HubPrefix+"/saml/idp/metadata", func(w http.ResponseWriter, r *http.Request) {
		b, err := hub.Metadata.IdPMetadata()
		if err != nil {
			s.fail(w, r, failInternal, "metadata", err)
			return
		}
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Write(b)
	}).Methods(http.MethodGet)
	r.HandleFunc(HubPrefix+pathDiscovery, func(w http.ResponseWriter, r *http.Request) { s.handleHubDiscovery(w, r, hub) }).Methods(http.MethodGet)
	r.HandleFunc(HubPrefix+"/saml/idp/slo", func(w http.ResponseWriter, r *http.Request) { s.handleHubSLO(w, r, hub) }).Methods(http.MethodGet, http.MethodPost)
}

// handleHubSLO is the hub entity's SingleLogoutService towards the shared
// vendors. A vendor's LogoutResponse answers a request the hub's entity
// sent for one organiser's logout (the record names it). A vendor's
// LogoutRequest is for the organiser whose session in this browser holds
// that vendor, logged in through the hub, under the NameID and
// SessionIndex the request names; with none, it is refused as every
// request naming no session is (SECURITY.md case 50).
func (s *Server) handleHubSLO(w http.ResponseWriter, r *http.Request, hub *Hub) {
	in, ok := s.readLogoutMessage(w, r, "vendor_logout")
	if !ok {
		return
	}
	if in.Param == samlslo.ParamResponse {
		s.logoutAnswered(w, r, hub.IdP, s.hubStore(), in, func(sent sentRequest) *Organiser {
			for _, o := range hub.Organisers {
				if o.ID == sent.Org {
					return o
				}
			}
			return nil
		})
		return
	}
	req, v, err := hub.IdP.ParseLogoutRequest(in)
	if err != nil {
		s.logoutMessageRefused(w, r, "vendor_logout", err)
		return
	}
	candidates := hubCandidates(hub, v.EntityID)
	if len(candidates) == 0 {
		s.failLogout(w, r, failLogoutRequest, "vendor_no_policy", nil)
		return
	}
	org := candidates[0]
	for _, o := range candidates {
		if s.holdsHubSession(r, o, v.EntityID, req) {
			org = o
			break
		}
	}
	s.vendorLogoutRequestAt(w, withOrganiser(r, org), org, true, req, v, in)
}

// holdsHubSession reports whether the browser's session at org holds the
// vendor, logged in through the hub, under the request's NameID and
// SessionIndex. It only reads: the logout itself takes the session.
func (s *Server) holdsHubSession(r *http.Request, org *Organiser, entityID string, req *samlslo.LogoutRequest) bool {
	pol, ok := org.Policies.BySAMLEntityID(entityID)
	tok, found := token(r, s.cookieName(org, sessionCookieBase))
	if !ok || !found {
		return false
	}
	var sess slo.Session
	if sessions(org).Get(r.Context(), tok, &sess) != nil {
		return false
	}
	for _, p := range sess.Vendors {
		if p.Vendor == pol.ID && p.Protocol == slo.ProtocolSAML && p.Hub && p.NameID != nil && samlslo.Matches(req, *p.NameID, p.SessionIndex) {
			return true
		}
	}
	return false
}

// hubStore is the hub's own namespace in the store.
func (s *Server) hubStore() store.Store { return store.Namespace(s.store, "hub/") }

// handleHubSSO receives a shared vendor's AuthnRequest at the hub's entity
// and finds the person's organiser: the only one serving the vendor, one
// a hint names, or the person's choice.
func (s *Server) handleHubSSO(w http.ResponseWriter, r *http.Request, hub *Hub) {
	r.Body = http.MaxBytesReader(w, r.Body, maxACSBody)
	req, err := hub.IdP.ParseRequest(r)
	if err != nil {
		var e *samlidp.Error
		if errors.As(err, &e) {
			s.failStatus(w, r, failVendorRequest, e.Status, "vendor_"+e.Reason, err)
			return
		}
		s.fail(w, r, failVendorRequest, "vendor_malformed", err)
		return
	}
	candidates := hubCandidates(hub, req.VendorEntityID)
	if len(candidates) == 0 {
		s.fail(w, r, failVendorRequest, "vendor_no_policy", nil)
		return
	}
	p := pendingLogin{Protocol: audit.ProtocolSAML, Via: viaHub, SAML: req, Login: s.newLoginID()}
	r = withLogin(r, p.Login)
	if org := chooseOrganiser(r, candidates, samlHints(r, req)); org != nil {
		s.startHubLogin(w, r, hub, org, p, samlHints(r, req))
		return
	}
	state, err := json.Marshal(p)
	if err != nil {
		s.fail(w, r, failInternal, "state", err)
		return
	}
	binding, err := s.binding(w, r, hub.binding)
	if err != nil {
		s.fail(w, r, failInternal, "binding", err)
		return
	}
	id, err := s.randomToken()
	if err != nil {
		s.fail(w, r, failInternal, "random", err)
		return
	}
	if err := s.hubStore().Put(r.Context(), discoveryKey(binding, id), state, discoveryTTL); err != nil {
		s.fail(w, r, failUnavailable, "store_unavailable", err)
		return
	}
	s.hubDiscoveryPage(w, r, candidates, id, http.StatusOK)
}

// hubCandidates are the organisers whose policy names the vendor.
func hubCandidates(hub *Hub, entityID string) []*Organiser {
	var out []*Organiser
	for _, org := range hub.Organisers {
		if _, ok := org.Policies.BySAMLEntityID(entityID); ok {
			out = append(out, org)
		}
	}
	return out
}

// chooseOrganiser picks the organiser from the only candidate or a hint:
// idp_hint naming an organiser id, or a Scoping/IDPList entry naming an
// organiser's IdP entity or one of its upstreams. Like every hint it only
// selects among the candidates (case 46).
func chooseOrganiser(r *http.Request, candidates []*Organiser, h loginHints) *Organiser {
	if len(candidates) == 1 {
		return candidates[0]
	}
	var matched []*Organiser
	for _, org := range candidates {
		hit := h.Upstream == org.ID
		for _, id := range h.EntityIDs {
			if id == org.IdP.EntityID {
				hit = true
			}
			for _, up := range org.Upstreams {
				if id == up.EntityID {
					hit = true
				}
			}
		}
		if hit {
			matched = append(matched, org)
		}
	}
	if len(matched) == 1 {
		return matched[0]
	}
	zerolog.Ctx(r.Context()).Debug().Msg("no hint decides the organiser: discovery")
	return nil
}

func (s *Server) hubDiscoveryPage(w http.ResponseWriter, r *http.Request, candidates []*Organiser, id string, status int) {
	href := func(org *Organiser) string {
		return HubPrefix + pathDiscovery + "?" + url.Values{"d": {id}, "organiser": {org.ID}}.Encode()
	}
	var choices []discoveryChoice
	var remembered *discoveryChoice
	c, _ := r.Cookie(hubChoiceCookie)
	for _, org := range candidates {
		ch := discoveryChoice{DisplayName: org.DisplayName, Href: href(org),
			Filter: strings.ToLower(org.DisplayName + " " + org.ID + " " + org.IdP.Scope)}
		choices = append(choices, ch)
		if c != nil && c.Value == org.ID {
			remembered = &ch
		}
	}
	s.renderChoices(w, r, "", choices, remembered, status)
}

// handleHubDiscovery continues a hub login with the chosen organiser. A
// choice of an organiser that does not serve the vendor shows the page
// again; the browser is only ever sent on to that organiser's login.
func (s *Server) handleHubDiscovery(w http.ResponseWriter, r *http.Request, hub *Hub) {
	q := r.URL.Query()
	id := q.Get("d")
	binding, reason := s.completedBinding(r, hub.binding)
	if id == "" || len(id) > 64 || reason != "" {
		s.fail(w, r, failExpired, "discovery_no_login", nil)
		return
	}
	key := discoveryKey(binding, id)
	state, err := s.hubStore().Get(r.Context(), key)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.fail(w, r, failExpired, "discovery_expired", nil)
		} else {
			s.fail(w, r, failUnavailable, "store_unavailable", err)
		}
		return
	}
	var p pendingLogin
	if err := json.Unmarshal(state, &p); err != nil || p.SAML == nil {
		s.fail(w, r, failInternal, "state", errors.New("bad pending hub login"))
		return
	}
	r = withLogin(r, p.Login)
	candidates := hubCandidates(hub, p.SAML.VendorEntityID)
	var org *Organiser
	for _, o := range candidates {
		if o.ID == q.Get("organiser") {
			org = o
		}
	}
	if org == nil {
		s.hubDiscoveryPage(w, r, candidates, id, http.StatusBadRequest)
		return
	}
	if _, err := s.hubStore().Take(r.Context(), key); err != nil {
		s.fail(w, r, failExpired, "discovery_expired", nil)
		return
	}
	s.rememberChoice(w, hubChoiceCookie, org.ID, HubPrefix)
	s.startHubLogin(w, r, hub, org, p, loginHints{})
}

// startHubLogin continues at the chosen organiser under its own policy
// for the vendor, exactly as a login at the organiser's own entity would.
func (s *Server) startHubLogin(w http.ResponseWriter, r *http.Request, hub *Hub, org *Organiser, p pendingLogin, hints loginHints) {
	r = withOrganiser(r, org)
	pol, ok := org.Policies.BySAMLEntityID(p.SAML.VendorEntityID)
	if !ok {
		s.fail(w, r, failVendorRequest, "vendor_no_policy", nil)
		return
	}
	if !pol.AgreementActive(s.now()) {
		s.refuse(w, r, org, "", pol, audit.ProtocolSAML, nil, failAgreement, audit.ReasonAgreementEnded)
		return
	}
	if sub := unmet(p.SAML, pol); sub != "" {
		s.answerStatusWith(w, r, hub.IdP, p.SAML, sub)
		return
	}
	p.Vendor = pol.ID
	s.startLogin(w, r, org, p, hints)
}
