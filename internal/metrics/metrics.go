// Package metrics is the bridge's Prometheus instrumentation: logins,
// refusals, maskings, store health, HTTP latency per route, and the expiry
// of keys and metadata. Everything is registered on a Registerer the caller
// gives (never the global registry), so that tests and several bridges in
// one process each have their own.
//
// Label values are names the bridge itself chose (vendor ids from release
// policies, fixed refusal reasons, route templates, key names): never a
// personal number, an attribute value, a raw path or anything else a
// request carries. As a second line of defence every label is capped in how
// many distinct values it takes; later values are counted as "other".
package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names.
const (
	NameLogins       = "skolbro_logins_total"
	NameRefusals     = "skolbro_refusals_total"
	NameMaskings     = "skolbro_maskings_total"
	NameStoreErrors  = "skolbro_store_errors_total"
	NameStoreLatency = "skolbro_store_latency_seconds"
	NameHTTPDuration = "skolbro_http_request_duration_seconds"
	NameKeyExpiry    = "skolbro_key_expiry_timestamp_seconds"
)

// Outcomes of a login, the values of the outcome label.
const (
	// OutcomeSuccess: the vendor was answered with a released identity.
	OutcomeSuccess = "success"
	// OutcomeRefused: the login was refused (a 4xx page).
	OutcomeRefused = "refused"
	// OutcomeUnavailable: the bridge could not serve it (store down, 503).
	OutcomeUnavailable = "unavailable"
	// OutcomeError: an internal error (500).
	OutcomeError = "error"
)

// Special label values.
const (
	// Other replaces a label value beyond the cap, or one that is not a
	// short, valid UTF-8 string.
	Other = "other"
	// Unknown replaces an empty label value.
	Unknown = "unknown"
	// Unmatched is the route label of a request no route matched.
	Unmatched = "unmatched"
)

// Bounds on label values. Vendors, refusal reasons, routes and keys are
// few in any real configuration; the cap only stops a bug (or input that
// reached a label by mistake) from growing the registry without bound.
const (
	maxLabelValues = 256
	maxLabelLen    = 128
)

// storeOps are the Store methods, pre-declared so that their series exist
// (at zero) from the start and rate() alerts work before the first error.
var storeOps = []string{"put", "add", "get", "take", "delete", "ping"}

// Metrics holds the bridge's collectors, registered on one registry.
type Metrics struct {
	now      func() time.Time
	gatherer prometheus.Gatherer

	logins       *prometheus.CounterVec
	refusals     *prometheus.CounterVec
	maskings     *prometheus.CounterVec
	storeErrors  *prometheus.CounterVec
	storeLatency *prometheus.HistogramVec
	httpDuration *prometheus.HistogramVec
	keyExpiry    *prometheus.GaugeVec

	vendors, protocols, reasons, routes, keys *guard

	values valueMetrics
}

// Option configures New.
type Option func(*Metrics)

// WithClock sets the clock durations are measured with (time.Now by
// default); tests pass a fake one.
func WithClock(now func() time.Time) Option {
	return func(m *Metrics) { m.now = now }
}

// WithGatherer sets where Handler reads metrics from, for a Registerer that
// is not itself a Gatherer (e.g. one from prometheus.WrapRegistererWith).
func WithGatherer(g prometheus.Gatherer) Option {
	return func(m *Metrics) { m.gatherer = g }
}

// New creates the bridge's collectors and registers them on reg. Handler
// serves reg when it is also a Gatherer (a *prometheus.Registry is);
// otherwise WithGatherer is required.
func New(reg prometheus.Registerer, opts ...Option) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: nil registerer")
	}
	m := &Metrics{
		now: time.Now,
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameLogins,
			Help: "Logins that reached a vendor decision, by vendor, protocol and outcome (success, refused, unavailable, error).",
		}, []string{"vendor", "protocol", "outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameRefusals,
			Help: "Requests the bridge refused, by fixed reason.",
		}, []string{"reason"}),
		maskings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameMaskings,
			Help: "Releases masked because the person has a protected identity, by vendor.",
		}, []string{"vendor"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameStoreErrors,
			Help: "Store operations that failed (a miss or an existing key is not a failure), by operation.",
		}, []string{"op"}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameStoreLatency,
			Help:    "Store operation latency in seconds, by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameHTTPDuration,
			Help:    "HTTP request duration in seconds, by route template and status code.",
			Buckets: HTTPDurationBuckets,
		}, []string{"route", "code"}),
		keyExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameKeyExpiry,
			Help: "When each key's certificate expires, as a Unix time.",
		}, []string{"key"}),
		vendors:   newGuard(maxLabelValues),
		protocols: newGuard(8),
		reasons:   newGuard(maxLabelValues),
		routes:    newGuard(maxLabelValues),
		keys:      newGuard(maxLabelValues),
	}
	for _, o := range opts {
		o(m)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.gatherer == nil {
		g, ok := reg.(prometheus.Gatherer)
		if !ok {
			return nil, errors.New("metrics: the registerer is not a gatherer: use WithGatherer")
		}
		m.gatherer = g
	}
	for _, c := range []prometheus.Collector{m.logins, m.refusals, m.maskings, m.storeErrors,
		m.storeLatency, m.httpDuration, m.keyExpiry} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	if err := m.values.register(reg); err != nil {
		return nil, err
	}
	for _, op := range storeOps {
		m.storeErrors.WithLabelValues(op)
		m.storeLatency.WithLabelValues(op)
	}
	return m, nil
}

// Handler serves the registry in the Prometheus exposition format, for
// /metrics. Serve it on an internal listener: the counts are operational
// data about the organiser's vendors.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// Login counts one login decision for vendor (a release policy id) over
// protocol (saml or oidc) with one of the Outcome constants.
func (m *Metrics) Login(vendor, protocol, outcome string) {
	switch outcome {
	case OutcomeSuccess, OutcomeRefused, OutcomeUnavailable, OutcomeError:
	default:
		outcome = Other
	}
	m.logins.WithLabelValues(m.vendors.value(vendor), m.protocols.value(protocol), outcome).Inc()
}

// Refusal counts one refused request by its fixed reason (the reason the
// bridge logs, e.g. "upstream_signature", "rate_limited").
func (m *Metrics) Refusal(reason string) {
	m.refusals.WithLabelValues(m.reasons.value(reason)).Inc()
}

// Masking counts one release to vendor that was masked for a protected
// identity.
func (m *Metrics) Masking(vendor string) {
	m.maskings.WithLabelValues(m.vendors.value(vendor)).Inc()
}

// SetKeyExpiry records when key's certificate expires (its NotAfter), e.g.
// key "signing" or "oidc:<kid>", for an alert some weeks ahead.
func (m *Metrics) SetKeyExpiry(key string, notAfter time.Time) {
	m.keyExpiry.WithLabelValues(m.keys.value(key)).Set(unixSeconds(notAfter))
}

func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}

// HTTPDurationBuckets are the upper bounds of NameHTTPDuration:
// Prometheus's defaults (prometheus.DefBuckets, which dashboards and
// alerts may name), with finer bounds added where a login's requests fall
// (a few to a few tens of milliseconds), so that a p99 can be told
// against 20 ms.
var HTTPDurationBuckets = []float64{.001, .0025, .005, .0075, .01, .015, .02, .025, .03, .05, .075, .1, .25, .5, 1, 2.5, 5, 10}

// Middleware observes each request's duration by route template and status
// code. Install it with (*mux.Router).Use, so that mux.CurrentRoute names
// the template (e.g. "/saml/idp/sso"); the raw path is never a label, as it
// could carry anything a client sends. mux runs Use middleware only on a
// match: wrap NotFoundHandler and MethodNotAllowedHandler with it as well
// to count those under route "unmatched".
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := m.now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := Unmatched
		if cr := mux.CurrentRoute(r); cr != nil {
			if t, err := cr.GetPathTemplate(); err == nil {
				route = m.routes.value(t)
			}
		}
		m.httpDuration.WithLabelValues(route, statusLabel(sw.status)).Observe(m.now().Sub(start).Seconds())
	})
}

func statusLabel(code int) string {
	switch {
	case code == 0:
		return "200" // nothing written: net/http answers 200
	case code < 100 || code > 599:
		return Other
	}
	return strconv.Itoa(code)
}

// statusWriter remembers the status code. Unwrap lets
// http.ResponseController reach the underlying writer's Flush and
// deadlines.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// guard caps the distinct values of one label.
type guard struct {
	mu   sync.Mutex
	seen map[string]struct{}
	max  int
}

func newGuard(max int) *guard {
	return &guard{seen: map[string]struct{}{}, max: max}
}

// value returns v when it is a short valid string among the first max
// distinct values, Unknown for "", and Other otherwise. (The Prometheus
// client panics on a label value that is not valid UTF-8.)
func (g *guard) value(v string) string {
	switch {
	case v == "":
		return Unknown
	case len(v) > maxLabelLen || !utf8.ValidString(v):
		return Other
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.seen[v]; ok {
		return v
	}
	if len(g.seen) >= g.max {
		return Other
	}
	g.seen[v] = struct{}{}
	return v
}
