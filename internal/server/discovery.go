package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/downstream/oidcop"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/store"
)

// Discovery: when a login cannot tell which of an organiser's school IdPs
// a person belongs to, the bridge asks. A vendor can skip the question
// with a hint; the browser's last choice is remembered as a suggestion.
// Every hint and the remembered choice only select among the organiser's
// own upstreams: none is an authorisation (SECURITY.md case 46), since the
// chosen IdP still has to log the person in.

const (
	pathDiscovery = "/discovery"
	// ParamIdPHint names an upstream by its id; vendors may add it to the
	// SSO or authorization URL to skip discovery.
	ParamIdPHint = "idp_hint"
	// discoveryTTL bounds how long a pending login waits for a choice.
	discoveryTTL = 10 * time.Minute
	// rememberCookie keeps the last choice, per organiser.
	rememberCookie = "skolbro_idp_"
)

// loginHints are what a vendor's request says about where the person
// belongs.
type loginHints struct {
	// Upstream is an idp_hint naming an upstream id.
	Upstream string
	// EntityIDs are the Scoping/IDPList entries of a SAML request.
	EntityIDs []string
	// Domain is the domain of an OIDC login_hint.
	Domain string
}

func hintsFromQuery(r *http.Request) loginHints {
	h := r.URL.Query().Get(ParamIdPHint)
	if len(h) > 64 {
		h = ""
	}
	return loginHints{Upstream: h}
}

func samlHints(r *http.Request, req *samlidp.Request) loginHints {
	h := hintsFromQuery(r)
	h.EntityIDs = req.IDPList
	return h
}

func oidcHints(r *http.Request, req *oidcop.AuthRequest) loginHints {
	h := hintsFromQuery(r)
	if v := r.Form.Get(ParamIdPHint); h.Upstream == "" && len(v) <= 64 {
		h.Upstream = v // a POSTed authorization request
	}
	h.Domain = req.LoginHintDomain
	return h
}

// chooseUpstream picks the upstream a login goes to: the only one, or the
// one a vendor's hint names. It returns nil when the person must choose.
// A hint naming no upstream of this organiser is ignored, so that the
// person sees the discovery page rather than an error.
func (s *Server) chooseUpstream(r *http.Request, org *Organiser, h loginHints) *Upstream {
	if len(org.Upstreams) == 1 {
		return org.Upstreams[0]
	}
	if up := org.upstream(h.Upstream); up != nil {
		return up
	}
	var matched []*Upstream
	for _, up := range org.Upstreams {
		for _, id := range h.EntityIDs {
			if id == up.EntityID {
				matched = append(matched, up)
				break
			}
		}
	}
	if len(matched) == 1 {
		return matched[0]
	}
	if h.Domain != "" {
		matched = matched[:0]
		for _, up := range org.Upstreams {
			for _, sc := range up.Scopes {
				if h.Domain == sc || strings.HasSuffix(h.Domain, "."+sc) {
					matched = append(matched, up)
					break
				}
			}
		}
		if len(matched) == 1 {
			return matched[0]
		}
	}
	zerolog.Ctx(r.Context()).Debug().Msg("no hint decides the upstream: discovery")
	return nil
}

func (org *Organiser) upstream(id string) *Upstream {
	for _, up := range org.Upstreams {
		if id != "" && up.ID == id {
			return up
		}
	}
	return nil
}

// discoveryKey is where a login waiting for the person's choice is kept:
// bound to the browser, so that a discovery link works only in the
// browser that started the login.
func discoveryKey(binding, id string) string { return "discovery:" + binding + ":" + id }

type discoveryChoice struct {
	DisplayName, Href, Filter string
}

// showDiscovery keeps the pending login and asks the person to choose.
func (s *Server) showDiscovery(w http.ResponseWriter, r *http.Request, org *Organiser, binding string, state []byte) {
	id, err := s.randomToken()
	if err != nil {
		s.fail(w, r, failInternal, "random", err)
		return
	}
	if err := org.Store.Put(r.Context(), discoveryKey(binding, id), state, discoveryTTL); err != nil {
		s.fail(w, r, failUnavailable, "store_unavailable", err)
		return
	}
	s.discoveryPage(w, r, org, id, http.StatusOK)
}

func (s *Server) discoveryPage(w http.ResponseWriter, r *http.Request, org *Organiser, id string, status int) {
	href := func(up *Upstream) string {
		return org.Prefix + pathDiscovery + "?" + url.Values{"d": {id}, "upstream": {up.ID}}.Encode()
	}
	var choices []discoveryChoice
	for _, up := range org.Upstreams {
		choices = append(choices, discoveryChoice{DisplayName: up.DisplayName, Href: href(up),
			Filter: strings.ToLower(up.DisplayName + " " + up.ID + " " + strings.Join(up.Scopes, " "))})
	}
	var remembered *discoveryChoice
	if c, err := r.Cookie(rememberCookie + org.ID); err == nil {
		if up := org.upstream(c.Value); up != nil {
			remembered = &discoveryChoice{DisplayName: up.DisplayName, Href: href(up)}
		}
	}
	s.renderChoices(w, r, org.DisplayName, choices, remembered, status)
}

// renderChoices shows the discovery page: the remembered choice, if any,
// above the full list.
func (s *Server) renderChoices(w http.ResponseWriter, r *http.Request, heading string, choices []discoveryChoice, remembered *discoveryChoice, status int) {
	data := struct {
		Organiser  string
		Remembered *discoveryChoice
		Choices    []discoveryChoice
	}{heading, remembered, choices}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// The filter script is the page's own, from /static.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	if err := s.tmpl.ExecuteTemplate(w, "discovery.html", data); err != nil {
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("discovery page")
	}
}

// rememberChoice keeps a discovery choice in a cookie, as a suggestion
// for next time.
func (s *Server) rememberChoice(w http.ResponseWriter, name, value, path string) {
	if path == "" {
		path = "/"
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path,
		MaxAge: 365 * 24 * 3600, HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteLaxMode})
}

// handleDiscovery continues a login with the person's choice. An unknown
// upstream shows the page again; the only place it ever sends the browser
// is the chosen upstream's login, never a URL from the request (case 46).
func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request, org *Organiser) {
	q := r.URL.Query()
	id := q.Get("d")
	if id == "" || len(id) > 64 {
		s.fail(w, r, failExpired, "discovery_no_login", nil)
		return
	}
	binding, reason := s.completedBinding(r, org.binding)
	if reason != "" {
		s.failBindingReason(w, r, reason)
		return
	}
	up := org.upstream(q.Get("upstream"))
	if up == nil {
		s.discoveryPage(w, r, org, id, http.StatusBadRequest)
		return
	}
	state, err := org.Store.Take(r.Context(), discoveryKey(binding, id))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.fail(w, r, failExpired, "discovery_expired", nil)
		} else {
			s.fail(w, r, failUnavailable, "store_unavailable", err)
		}
		return
	}
	var p pendingLogin
	_ = json.Unmarshal(state, &p) // only for the log: finish checks the state
	r = withLogin(r, p.Login)
	s.rememberChoice(w, rememberCookie+org.ID, up.ID, org.Prefix)
	s.goUpstream(w, r, org, up, binding, state, p.Vendor, p.Protocol)
}

// randomToken is a fresh 128-bit URL-safe random value.
func (s *Server) randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
