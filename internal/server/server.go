// Package server is the bridge's HTTP side: routing, per-request logging
// with a request id, security headers, error pages, and the login flows that
// join the upstream side (a school IdP) to the downstream side (vendors)
// through the release step.
package server

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/admin"
	"github.com/skolbro/skolbro/internal/assurance"
	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/downstream/oidcop"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/fedmeta"
	"github.com/skolbro/skolbro/internal/generation"
	"github.com/skolbro/skolbro/internal/mapping"
	"github.com/skolbro/skolbro/internal/metrics"
	"github.com/skolbro/skolbro/internal/ownmeta"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/protection"
	"github.com/skolbro/skolbro/internal/pseudonym"
	"github.com/skolbro/skolbro/internal/ratelimit"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/upstream/oidcrp"
	"github.com/skolbro/skolbro/internal/upstream/samlsp"
	"github.com/skolbro/skolbro/web"
)

// Organiser is everything that belongs to one school organiser: its
// upstream IdPs, its IdP and OP towards vendors with their metadata, its
// release policies, keys, store namespace, release log and admins. A hub
// is several of these; every handler receives the one it serves, and
// nothing of one organiser is reachable from another's.
type Organiser struct {
	ID          string
	DisplayName string
	// Prefix is the path the organiser is served under: "" at the root
	// URLs, else /o/<id>.
	Prefix string
	// Store is the organiser's namespace in the shared store.
	Store store.Store
	// Upstreams are the organiser's school IdPs; with more than one, the
	// person chooses on the discovery page unless a hint decides.
	Upstreams []*Upstream
	IdP       *samlidp.IdP
	Policies  *policy.Set
	Deriver   *pseudonym.Deriver
	// BindingKey authenticates the organiser's login binding cookie (at
	// least 32 bytes). Every instance behind a load balancer must have the
	// same key: app derives it from the pseudonym key.
	BindingKey []byte
	// Generations keeps which identity generation each person's
	// pseudonyms derive from, in Store; New makes it from Store and
	// Deriver when it is nil.
	Generations *generation.Keeper
	// Audit records every release and refusal; AuditKeys makes the
	// subject keys. Both are required (New refuses an organiser without
	// them): a release that cannot be recorded is not made.
	Audit     audit.Sink
	AuditKeys *audit.SubjectKeyer
	// Register is the manual protection register, when configured.
	Register *protection.Register
	// OP is the OpenID Provider towards OIDC vendors, or nil.
	OP *oidcop.Provider
	// Metadata publishes the organiser's own signed metadata.
	Metadata *ownmeta.Publisher
	// Federation keeps the federation aggregates fresh, or nil.
	Federation *fedmeta.Refresher
	// Admin enables the organiser's admin interface when Entitlement is
	// set; its admins see only this organiser.
	Admin AdminOptions
	// Logout configures Single Logout (see logout.go).
	Logout LogoutOptions
	// AssuranceLevels are the levels the organiser's upstreams can prove,
	// from configuration: published in its metadata and discovery.
	AssuranceLevels []string

	admin   *admin.Admin
	binding binder
	// hub is the hub entity that answers this organiser's logins of
	// shared vendors, when the organiser is one of the hub's.
	hub *Hub
}

// Upstream is one of an organiser's school IdPs.
type Upstream struct {
	ID          string
	DisplayName string
	// Prefix is the path of its SP or RP endpoints (acs, metadata,
	// callback).
	Prefix string
	// SP is set when the school IdP speaks SAML, RP when it speaks OIDC.
	SP *samlsp.SP
	RP *oidcrp.RP
	// EntityID is the IdP's entityID (SAML) or issuer (OIDC), matched
	// against a vendor's Scoping/IDPList hint.
	EntityID string
	// Scopes are the IdP's scopes, matched against a login_hint's domain.
	Scopes  []string
	Mapping *mapping.Config
	// Protection decides each login's protection status from the
	// upstream's attribute and the organiser's sources.
	Protection *protection.Resolver
	// AssumeUnprotected marks a person whose protection status no source
	// could determine as unprotected. Off by default (fail closed).
	AssumeUnprotected bool
	// SPMetadata is the bridge's SP metadata towards this IdP (SAML).
	SPMetadata []byte
	// Certs are the SAML IdP's signing certificates (for expiry alerts).
	Certs []*x509.Certificate
	// Assurance maps the IdP's words for a login's strength to the
	// organiser's levels and back (what to ask it for); nil understands
	// the common words only.
	Assurance *assurance.Map
	// ClockSkew is allowed when a login's age is checked against the
	// vendor's ForceAuthn or max_age (default 2m).
	ClockSkew time.Duration
}

// Server serves the bridge: one or several organisers on one listener.
// What it serves is a routing table built from one configuration; Reload
// swaps in a new one at once, without a restart.
type Server struct {
	// cur is the table new requests are served by.
	cur atomic.Pointer[table]
	// reloadMu makes reloads one at a time.
	reloadMu sync.Mutex
	store    store.Store
	log      zerolog.Logger
	tmpl     *template.Template
	// secureCookies is true when the external URL is https.
	secureCookies bool
	now           func() time.Time
	rand          io.Reader
	// Mount adds extra routes (the demo's test IdP and vendors).
	mounts []func(*mux.Router)
	// names throttles the record of upstream attribute names.
	names namesThrottle
	// draining is set on SIGTERM: readiness fails first so that the load
	// balancer stops sending new logins, while in-flight ones finish.
	draining atomic.Bool

	metrics     *metrics.Metrics
	clientLimit *ratelimit.Limiter
	clientIP    *ratelimit.ClientIP
	vendorLimit *ratelimit.Limiter
	maxInFlight int
	// refusalEvents caps, per client, the refusal events that answers
	// refused at the upstream write to the release log.
	refusalEvents *ratelimit.Limiter
}

func (s *Server) refusal(reason string) {
	if s.metrics != nil {
		s.metrics.Refusal(reason)
	}
}

// StartDrain makes readiness fail from now on (graceful shutdown, SECURITY.md case 41).
func (s *Server) StartDrain() { s.draining.Store(true) }

// Options configure a Server.
type Options struct {
	// Organisers are served each under its Prefix.
	Organisers []*Organiser
	// Hub is the hub's own entity for shared vendors, or nil.
	Hub           *Hub
	Store         store.Store
	Logger        zerolog.Logger
	SecureCookies bool
	Now           func() time.Time
	Rand          io.Reader
	// Mounts add extra routes, e.g. the demo IdP and vendors.
	Mounts []func(*mux.Router)
	// Metrics, when set, observes requests and counts refusals.
	Metrics *metrics.Metrics
	// ClientLimit limits requests per ClientIP key; VendorLimit limits
	// logins started per vendor; MaxInFlight sheds load (0: no cap).
	ClientLimit *ratelimit.Limiter
	ClientIP    *ratelimit.ClientIP
	VendorLimit *ratelimit.Limiter
	MaxInFlight int
	// RefusalEvents caps, per ClientIP key, the release log events of
	// logins refused at the upstream: every bad answer posted for one
	// pending login would otherwise write (and fsync) one event. nil uses
	// DefaultRefusalEventsPerMinute.
	RefusalEvents *ratelimit.Limiter
}

// DefaultRefusalEventsPerMinute is the per-client cap on refusal events
// of answers refused at the upstream when Options.RefusalEvents is nil.
const DefaultRefusalEventsPerMinute = 30

// New builds a Server.
func New(o Options) (*Server, error) {
	t, err := web.Templates()
	if err != nil {
		return nil, err
	}
	s := &Server{store: o.Store, log: o.Logger, tmpl: t,
		secureCookies: o.SecureCookies, now: o.Now, rand: o.Rand, mounts: o.Mounts,
		metrics: o.Metrics, clientLimit: o.ClientLimit, clientIP: o.ClientIP, vendorLimit: o.VendorLimit,
		maxInFlight: o.MaxInFlight, refusalEvents: o.RefusalEvents}
	if s.clientIP == nil {
		s.clientIP = &ratelimit.ClientIP{}
	}
	if s.refusalEvents == nil {
		// Never uncapped: the cap is what keeps refused answers from
		// being a cheap way to fill the release log's disk.
		if s.refusalEvents, err = ratelimit.New(DefaultRefusalEventsPerMinute/60.0, DefaultRefusalEventsPerMinute,
			ratelimit.WithMaxKeys(ratelimit.DefaultMaxKeys)); err != nil {
			return nil, err
		}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	tb, err := s.newTable(o.Organisers, o.Hub)
	if err != nil {
		return nil, err
	}
	s.cur.Store(tb)
	return s, nil
}

// table is what one configuration serves: its organisers, its hub entity
// and the router over them. A request is served from start to end by the
// table it began on; Reload swaps the table for new requests only.
type table struct {
	orgs []*Organiser
	hub  *Hub
	h    http.Handler

	mu      sync.Mutex
	active  int
	retired bool
	idle    chan struct{}
}

// enter counts a request in, unless the table was retired (the request
// then takes the new one).
func (t *table) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.retired {
		return false
	}
	t.active++
	return true
}

func (t *table) leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active--
	if t.retired && t.active == 0 {
		close(t.idle)
	}
}

// retire takes the table out of service; the channel closes when its last
// request has finished.
func (t *table) retire() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.retired = true
	if t.active == 0 {
		close(t.idle)
	}
	return t.idle
}

// newTable prepares freshly built organisers (admin interface, refusal
// metrics, hub membership) and the router over them.
func (s *Server) newTable(orgs []*Organiser, hub *Hub) (*table, error) {
	for _, org := range orgs {
		if org.Audit == nil || org.AuditKeys == nil {
			// Nothing is released that is not recorded.
			return nil, fmt.Errorf("server: organiser %s has no release log (Audit and AuditKeys are required)", org.ID)
		}
		if len(org.BindingKey) < minBindingKey {
			return nil, fmt.Errorf("server: organiser %s has no login binding key", org.ID)
		}
		org.binding = binder{key: org.BindingKey, name: s.bindingName(org.ID, org.Prefix)}
		if org.Generations == nil {
			org.Generations = generation.New(org.Store, org.Deriver)
		}
		for _, up := range org.Upstreams {
			if up.SP != nil {
				// A replayed assertion is then recorded against the
				// vendor of the login it was first used for.
				up.SP.SetReplayNote(replayNote)
			}
		}
		if s.metrics != nil && org.OP != nil && org.OP.OnRefusal == nil {
			// Token and userinfo refusals (a foreign client's code, a reused
			// code) show in refusals_total like the login flows' own.
			org.OP.OnRefusal = s.metrics.Refusal
		}
		org.hub = nil
		if org.Admin.Entitlement != "" {
			a, err := s.newAdmin(org)
			if err != nil {
				return nil, fmt.Errorf("organiser %s: %w", org.ID, err)
			}
			org.admin = a
		}
	}
	if hub != nil {
		if len(hub.BindingKey) < minBindingKey {
			return nil, errors.New("server: the hub has no login binding key")
		}
		hub.binding = binder{key: hub.BindingKey, name: s.bindingName("hub", HubPrefix)}
		for _, org := range hub.Organisers {
			org.hub = hub
		}
	}
	t := &table{orgs: orgs, hub: hub, idle: make(chan struct{})}
	t.h = s.router(t)
	return t, nil
}

// Reload serves orgs and hub from now on, in place of what the server
// served: requests already being served finish on the previous
// organisers, every new request takes the new ones. orgs must be freshly
// built (app.BuildHub), never ones already served. The returned channel
// closes when the last request on the previous organisers has finished,
// after which their release logs may be closed.
func (s *Server) Reload(orgs []*Organiser, hub *Hub) (<-chan struct{}, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	t, err := s.newTable(orgs, hub)
	if err != nil {
		return nil, err
	}
	return s.cur.Swap(t).retire(), nil
}

// Organisers returns the organisers being served now.
func (s *Server) Organisers() []*Organiser { return s.cur.Load().orgs }

// dispatch serves a request by the current table.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	for {
		t := s.cur.Load()
		if !t.enter() {
			continue // swapped just now: take the new table
		}
		defer t.leave()
		t.h.ServeHTTP(w, r)
		return
	}
}

// Handler returns the HTTP handler with all routes. It serves whatever
// table is current, so a Reload takes effect without a new handler.
func (s *Server) Handler() http.Handler {
	h := s.withRequestID(securityHeaders(http.HandlerFunc(s.dispatch)))
	// Outermost the cheapest refusals: shedding and rate limiting come
	// before request ids and access logs, so that a flood costs neither
	// log volume nor work. Health checks are never limited, or an
	// orchestrator would restart a busy bridge. Rejections are counted in
	// metrics (refusals_total{reason="rate_limited"|"overloaded"}).
	if s.clientLimit != nil {
		h = ratelimit.Except(s.clientLimit.Middleware(s.clientIP.Key), "/healthz", "/readyz")(h)
	}
	// New logins are shed first, at three quarters of the cap, so that
	// the last quarter is kept for logins under way: refusing a login's
	// last step would waste the school IdP's and the browser's work too.
	shed := ratelimit.MaxInFlightNew(s.maxInFlight, s.maxInFlight*3/4, startsLogin, ratelimit.OnReject(s.refusal))
	return ratelimit.Except(shed, "/healthz", "/readyz")(h)
}

// startsLogin reports whether r is a vendor's request that starts a
// login: SAML SSO (an organiser's or the hub's) or OIDC authorize.
func startsLogin(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasSuffix(p, "/saml/idp/sso") || strings.HasSuffix(p, oidcop.PathAuthorize)
}

// router routes one table's organisers and hub.
func (s *Server) router(t *table) http.Handler {
	r := mux.NewRouter()
	if s.metrics != nil {
		r.Use(s.metrics.Middleware)
	}
	for _, org := range t.orgs {
		s.organiserRoutes(r, org)
	}
	if t.hub != nil {
		s.hubRoutes(r, t.hub)
	}
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	r.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { s.handleReady(w, r, t.orgs) })
	r.PathPrefix("/static/").Handler(http.StripPrefix("/static/", http.FileServerFS(web.Static())))
	for _, m := range s.mounts {
		m(r)
	}
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, failNotFound, "not_found", nil)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, failMethod, "method", nil)
	})
	if s.metrics != nil {
		r.NotFoundHandler = s.metrics.Middleware(r.NotFoundHandler)
		r.MethodNotAllowedHandler = s.metrics.Middleware(r.MethodNotAllowedHandler)
	}
	return r
}

type ctxKey int

const (
	requestIDKey ctxKey = iota
	requestInfoKey
)

// RequestID returns the request id of ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// requestInfo is what a handler learns about its request that the access
// log line should carry: the login the request belongs to.
type requestInfo struct {
	loginID string
}

// LoginID returns the id of the login ctx's request belongs to, or "".
// A login id is random and carries no personal data; it joins every log
// line of one login, from "login started" to "released" or the refusal,
// across the requests (and instances) the login passes through.
func LoginID(ctx context.Context) string {
	if info, ok := ctx.Value(requestInfoKey).(*requestInfo); ok {
		return info.loginID
	}
	return ""
}

// withLogin marks r as part of login id: every later log line of the
// request, its access log line included, carries login_id.
func withLogin(r *http.Request, id string) *http.Request {
	if id == "" {
		return r
	}
	if info, ok := r.Context().Value(requestInfoKey).(*requestInfo); ok {
		info.loginID = id
	}
	l := zerolog.Ctx(r.Context()).With().Str("login_id", id).Logger()
	return r.WithContext(l.WithContext(r.Context()))
}

// newLoginID is a fresh random login id.
func (s *Server) newLoginID() string {
	b := make([]byte, 12)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return ""
	}
	return hex.EncodeToString(b)
}

// withRequestID gives every request an id, a logger carrying it, and an
// access log line. The query string is never logged: it carries SAML
// messages.
func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 12)
		_, _ = io.ReadFull(s.rand, b)
		id := hex.EncodeToString(b)
		l := s.log.With().Str("request_id", id).Logger()
		info := &requestInfo{}
		ctx := context.WithValue(l.WithContext(r.Context()), requestIDKey, id)
		ctx = context.WithValue(ctx, requestInfoKey, info)
		w.Header().Set("X-Request-Id", id)
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(rw, r.WithContext(ctx))
		ev := l.Info()
		if info.loginID != "" {
			ev = ev.Str("login_id", info.loginID)
		}
		ev.Str("method", r.Method).Str("path", r.URL.Path).Int("status", rw.status).
			Dur("duration", time.Since(start)).Msg("request")
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if h.Get("Content-Security-Policy") == "" {
			h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		}
		next.ServeHTTP(w, r)
	})
}

// organiserRoutes serves one organiser under its prefix. Every handler is
// given the organiser (and upstream) it serves; nothing else is.
func (s *Server) organiserRoutes(r *mux.Router, org *Organiser) {
	p := org.Prefix
	on := func(h func(http.ResponseWriter, *http.Request, *Organiser)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { h(w, withOrganiser(r, org), org) }
	}
	r.HandleFunc(p+"/saml/idp/sso", on(s.handleSSO)).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc(p+"/saml/idp/metadata", on(s.handleIdPMetadata)).Methods(http.MethodGet)
	r.HandleFunc(p+pathDiscovery, on(s.handleDiscovery)).Methods(http.MethodGet)
	if org.IdP.SLOURL != "" {
		r.HandleFunc(p+"/saml/idp/slo", on(s.handleIdPSLO)).Methods(http.MethodGet, http.MethodPost)
	}
	r.HandleFunc(p+pathLogout, on(s.handleLogoutPage)).Methods(http.MethodGet)
	r.HandleFunc(p+pathLogout, on(s.handleLogoutPagePost)).Methods(http.MethodPost)
	r.HandleFunc(p+pathLogoutRun, on(s.handleLogoutRun)).Methods(http.MethodGet)
	r.HandleFunc(p+pathLogoutFrame, on(s.handleLogoutFrame)).Methods(http.MethodGet)
	r.HandleFunc(p+pathLogoutNext, on(s.handleLogoutNext)).Methods(http.MethodGet, http.MethodPost)
	for _, up := range org.Upstreams {
		up := up
		at := func(h func(http.ResponseWriter, *http.Request, *Organiser, *Upstream)) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { h(w, withOrganiser(r, org), org, up) }
		}
		if up.SP != nil {
			r.HandleFunc(up.Prefix+"/acs", at(s.handleACS)).Methods(http.MethodPost)
			r.HandleFunc(up.Prefix+"/metadata", at(s.handleSPMetadata)).Methods(http.MethodGet)
			r.HandleFunc(up.Prefix+"/slo", at(s.handleSPSLO)).Methods(http.MethodGet, http.MethodPost)
		}
		if up.RP != nil {
			r.HandleFunc(up.Prefix+"/callback", at(s.handleRPCallback)).Methods(http.MethodGet)
			r.HandleFunc(up.Prefix+"/logout", at(s.handleRPLogout)).Methods(http.MethodGet)
		}
	}
	if org.OP != nil {
		r.HandleFunc(p+oidcop.PathAuthorize, on(s.handleAuthorize)).Methods(http.MethodGet, http.MethodPost)
		r.HandleFunc(p+oidcop.PathEndSession, on(s.handleEndSession)).Methods(http.MethodGet, http.MethodPost)
		org.OP.Routes(r)
	}
	if org.admin != nil {
		org.admin.Routes(r)
	}
}

// withOrganiser adds the organiser to the request's logger, so that every
// line of a request says whose it is.
func withOrganiser(r *http.Request, org *Organiser) *http.Request {
	l := zerolog.Ctx(r.Context()).With().Str("organiser", org.ID).Logger()
	return r.WithContext(l.WithContext(r.Context()))
}

func (s *Server) handleIdPMetadata(w http.ResponseWriter, r *http.Request, org *Organiser) {
	b, err := org.Metadata.IdPMetadata()
	if err != nil {
		s.fail(w, r, failInternal, "metadata", err)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Write(b)
}

func (s *Server) handleSPMetadata(w http.ResponseWriter, r *http.Request, org *Organiser, up *Upstream) {
	b, err := org.Metadata.SPMetadataSigned(up.ID)
	if err != nil {
		s.fail(w, r, failNotFound, "not_found", nil)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Write(b)
}

// handleReady fails when the store is unreachable: without it no login can
// be checked for replay, so the instance must not take traffic. It also
// fails when the manual protection register cannot answer (unreachable,
// or its data lost): every person would be masked, and the admin must
// restore it or re-initialise it on purpose.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request, orgs []*Organiser) {
	if s.draining.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		zerolog.Ctx(r.Context()).Warn().Err(err).Msg("readiness: store unreachable")
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	// A lost register is a Redis-wide event (a flush, a failover, a
	// restart without persistence), so any organiser's failing makes the
	// instance unready.
	for _, org := range orgs {
		if reg := org.Register; reg != nil {
			if err := reg.Ready(ctx); err != nil {
				zerolog.Ctx(r.Context()).Warn().Err(err).Str("organiser", org.ID).Msg("readiness: protection register not ready")
				http.Error(w, "protection register unavailable", http.StatusServiceUnavailable)
				return
			}
		}
	}
	io.WriteString(w, "ready\n")
}
