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
	"html/template"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/admin"
	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/downstream/oidcop"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/fedmeta"
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
// upstream IdP, its IdP side towards vendors with their metadata, its
// release policies and its pseudonym key. A second organiser is a second
// value.
type Organiser struct {
	ID string
	// SP is the upstream side when the school IdP speaks SAML, RP when it
	// speaks OIDC; exactly one is set.
	SP       *samlsp.SP
	RP       *oidcrp.RP
	IdP      *samlidp.IdP
	Policies *policy.Set
	Deriver  *pseudonym.Deriver
	Mapping  *mapping.Config
	// BindingKey authenticates the login binding cookie (at least 32
	// bytes). Every instance behind a load balancer must have the same key:
	// app derives it from the pseudonym key.
	BindingKey []byte
	// AssumeUnprotected marks a person whose protection status no source
	// could determine as unprotected. Off by default (fail closed).
	AssumeUnprotected bool
	// SPMetadata is the bridge's SP metadata towards the upstream IdP.
	SPMetadata []byte
	// UpstreamID names the upstream IdP in the release log.
	UpstreamID string
	// Audit records every release and refusal; AuditKeys makes the
	// subject keys. A release that cannot be recorded is not made.
	Audit     audit.Sink
	AuditKeys *audit.SubjectKeyer
	// Protection decides each login's protection status from every
	// configured source; Register is the manual register, when configured.
	Protection *protection.Resolver
	Register   *protection.Register
	// OP is the OpenID Provider towards OIDC vendors, or nil.
	OP *oidcop.Provider
	// Metadata publishes the bridge's own signed metadata.
	Metadata *ownmeta.Publisher
	// Federation keeps the federation aggregates fresh, or nil.
	Federation *fedmeta.Refresher
	// UpstreamCerts are the SAML school IdP's signing certificates (for
	// expiry alerts).
	UpstreamCerts []*x509.Certificate
}

// Server serves the bridge.
type Server struct {
	org   *Organiser
	store store.Store
	log   zerolog.Logger
	tmpl  *template.Template
	// secureCookies is true when the external URL is https.
	secureCookies bool
	now           func() time.Time
	rand          io.Reader
	// Mount adds extra routes (the demo's test IdP and vendors).
	mounts []func(*mux.Router)
	// draining is set on SIGTERM: readiness fails first so that the load
	// balancer stops sending new logins, while in-flight ones finish.
	draining atomic.Bool
	admin    *admin.Admin

	metrics     *metrics.Metrics
	clientLimit *ratelimit.Limiter
	clientIP    *ratelimit.ClientIP
	vendorLimit *ratelimit.Limiter
	maxInFlight int
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
	Organiser     *Organiser
	Store         store.Store
	Logger        zerolog.Logger
	SecureCookies bool
	Now           func() time.Time
	Rand          io.Reader
	// Mounts add extra routes, e.g. the demo IdP and vendors.
	Mounts []func(*mux.Router)
	// Admin enables the admin web interface when Entitlement is set.
	Admin AdminOptions
	// Metrics, when set, observes requests and counts refusals.
	Metrics *metrics.Metrics
	// ClientLimit limits requests per ClientIP key; VendorLimit limits
	// logins started per vendor; MaxInFlight sheds load (0: no cap).
	ClientLimit *ratelimit.Limiter
	ClientIP    *ratelimit.ClientIP
	VendorLimit *ratelimit.Limiter
	MaxInFlight int
}

// New builds a Server.
func New(o Options) (*Server, error) {
	t, err := web.Templates()
	if err != nil {
		return nil, err
	}
	s := &Server{org: o.Organiser, store: o.Store, log: o.Logger, tmpl: t,
		secureCookies: o.SecureCookies, now: o.Now, rand: o.Rand, mounts: o.Mounts,
		metrics: o.Metrics, clientLimit: o.ClientLimit, clientIP: o.ClientIP, vendorLimit: o.VendorLimit,
		maxInFlight: o.MaxInFlight}
	if s.clientIP == nil {
		s.clientIP = &ratelimit.ClientIP{}
	}
	if s.org == nil || len(s.org.BindingKey) < minBindingKey {
		return nil, errors.New("server: the organiser has no login binding key")
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if o.Admin.Entitlement != "" {
		if s.admin, err = s.newAdmin(o.Admin); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Handler returns the HTTP handler with all routes.
func (s *Server) Handler() http.Handler {
	r := mux.NewRouter()
	if s.metrics != nil {
		r.Use(s.metrics.Middleware)
	}
	r.HandleFunc("/saml/idp/sso", s.handleSSO).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/saml/idp/metadata", s.handleIdPMetadata).Methods(http.MethodGet)
	r.HandleFunc("/saml/sp/acs", s.handleACS).Methods(http.MethodPost)
	r.HandleFunc("/saml/sp/metadata", s.handleSPMetadata).Methods(http.MethodGet)
	r.HandleFunc("/oidc/rp/callback", s.handleRPCallback).Methods(http.MethodGet)
	if s.org.OP != nil {
		r.HandleFunc(oidcop.PathAuthorize, s.handleAuthorize).Methods(http.MethodGet, http.MethodPost)
		s.org.OP.Routes(r)
	}
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	r.HandleFunc("/readyz", s.handleReady)
	r.PathPrefix("/static/").Handler(http.StripPrefix("/static/", http.FileServerFS(web.Static())))
	if s.admin != nil {
		s.admin.Routes(r)
	}
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
	h := s.withRequestID(securityHeaders(r))
	// Outermost the cheapest refusals: shedding and rate limiting come
	// before request ids and access logs, so that a flood costs neither
	// log volume nor work. Health checks are never limited, or an
	// orchestrator would restart a busy bridge. Rejections are counted in
	// metrics (refusals_total{reason="rate_limited"|"overloaded"}).
	if s.clientLimit != nil {
		h = ratelimit.Except(s.clientLimit.Middleware(s.clientIP.Key), "/healthz", "/readyz")(h)
	}
	return ratelimit.Except(ratelimit.MaxInFlight(s.maxInFlight, ratelimit.OnReject(s.refusal)), "/healthz", "/readyz")(h)
}

type ctxKey int

const requestIDKey ctxKey = 0

// RequestID returns the request id of ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
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
		ctx := context.WithValue(l.WithContext(r.Context()), requestIDKey, id)
		w.Header().Set("X-Request-Id", id)
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(rw, r.WithContext(ctx))
		l.Info().Str("method", r.Method).Str("path", r.URL.Path).Int("status", rw.status).
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

func (s *Server) handleIdPMetadata(w http.ResponseWriter, r *http.Request) {
	b, err := s.org.Metadata.IdPMetadata()
	if err != nil {
		s.fail(w, r, failInternal, "metadata", err)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Write(b)
}

func (s *Server) handleSPMetadata(w http.ResponseWriter, r *http.Request) {
	b, err := s.org.Metadata.SPMetadataSigned()
	if err != nil {
		s.fail(w, r, failNotFound, "not_found", nil)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Write(b)
}

// handleReady fails when the store is unreachable: without it no login can
// be checked for replay, so the instance must not take traffic.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
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
	io.WriteString(w, "ready\n")
}
