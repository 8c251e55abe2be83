package bench

import (
	"context"
	"net/http"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skolbro/skolbro/internal/downstream/oidcop"
)

// Percentiles summarises a set of durations, in milliseconds.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// latencies collects durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) reset() {
	l.mu.Lock()
	l.d = l.d[:0]
	l.mu.Unlock()
}

func (l *latencies) summary() Percentiles {
	l.mu.Lock()
	d := slices.Clone(l.d)
	l.mu.Unlock()
	return percentiles(d)
}

// percentiles uses the nearest-rank method: p99 of 100 samples is the
// 99th smallest, so a single slow outlier in 100 shows only in Max.
func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	rank := func(p float64) float64 {
		i := int(p*float64(len(d))+0.999999) - 1
		i = max(0, min(i, len(d)-1))
		return ms(d[i])
	}
	return Percentiles{N: len(d), P50: rank(0.50), P95: rank(0.95), P99: rank(0.99), Max: ms(d[len(d)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// latencySet is latencies by name, for a fixed set of names known in
// advance (the map is never written after construction).
type latencySet map[string]*latencies

func newLatencySet(names ...string) latencySet {
	s := latencySet{}
	for _, n := range names {
		s[n] = &latencies{}
	}
	return s
}

func (s latencySet) add(name string, d time.Duration) {
	if l, ok := s[name]; ok {
		l.add(d)
	}
}

func (s latencySet) reset() {
	for _, l := range s {
		l.reset()
	}
}

func (s latencySet) summary() map[string]Percentiles {
	out := map[string]Percentiles{}
	for n, l := range s {
		if p := l.summary(); p.N > 0 {
			out[n] = p
		}
	}
	return out
}

// Bridge endpoints the meter times. Everything else the bridge serves
// (metadata, JWKS, discovery) is counted as "other".
const (
	epSSO       = "sso"
	epACS       = "acs"
	epAuthorize = "authorize"
	epToken     = "token"
	epOther     = "other"
)

var endpoints = []string{epSSO, epACS, epAuthorize, epToken, epOther}

// endpointPaths are the paths of the endpoints the meter times.
var endpointPaths = []struct{ path, name string }{
	{"/saml/idp/sso", epSSO}, {"/saml/sp/acs", epACS}, {oidcop.PathAuthorize, epAuthorize}, {oidcop.PathToken, epToken},
}

func endpointOf(path string) string {
	for _, ep := range endpointPaths {
		if path == ep.path {
			return ep.name
		}
	}
	return epOther
}

// Profiler label values: every goroutine of the bench process does its
// work under one of these, so that a CPU profile splits by component.
const (
	labelComponent = "component"
	labelEndpoint  = "endpoint"
	compBridge     = "bridge"
	compClient     = "client"
	compIdP        = "idp"
	compVendor     = "vendor"
)

// meter wraps the bridge's handler (in-process runs only): it times the
// bridge's own handlers server-side, labels their work for the CPU
// profile, and in calibration measures each handler's CPU time and
// allocations.
type meter struct {
	next      http.Handler
	lat       latencySet
	calibrate atomic.Bool
	inFlight  atomic.Int64
	peak      atomic.Int64

	mu  sync.Mutex
	cal map[string]*handlerCost
}

// handlerCost accumulates what one endpoint cost in calibration.
type handlerCost struct {
	n       int
	cpu     time.Duration
	wall    time.Duration
	mallocs uint64
	bytes   uint64
}

func newMeter(next http.Handler) *meter {
	return &meter{next: next, lat: newLatencySet(endpoints...), cal: map[string]*handlerCost{}}
}

func (m *meter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ep := endpointOf(r.URL.Path)
	n := m.inFlight.Add(1)
	defer m.inFlight.Add(-1)
	for {
		p := m.peak.Load()
		if n <= p || m.peak.CompareAndSwap(p, n) {
			break
		}
	}
	if m.calibrate.Load() {
		m.serveCalibrated(w, r, ep)
		return
	}
	start := time.Now()
	pprof.Do(r.Context(), pprof.Labels(labelComponent, compBridge, labelEndpoint, ep), func(context.Context) {
		m.next.ServeHTTP(w, r)
	})
	m.lat.add(ep, time.Since(start))
}

// serveCalibrated runs the handler on a locked OS thread and measures that
// thread's CPU time and the process's allocations around it. It is only
// meaningful when logins run one at a time: then nothing else allocates
// while the handler runs (the browser is waiting for the answer). Work the
// handler leaves to the garbage collector's background workers is not
// included; the CPU profile of the load phases accounts for it.
func (m *meter) serveCalibrated(w http.ResponseWriter, r *http.Request, ep string) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0, ok0 := threadCPU()
	start := time.Now()
	m.next.ServeHTTP(w, r)
	wall := time.Since(start)
	cpu1, ok1 := threadCPU()
	runtime.ReadMemStats(&after)
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.cal[ep]
	if c == nil {
		c = &handlerCost{}
		m.cal[ep] = c
	}
	c.n++
	c.wall += wall
	if ok0 && ok1 {
		c.cpu += cpu1 - cpu0
	}
	c.mallocs += after.Mallocs - before.Mallocs
	c.bytes += after.TotalAlloc - before.TotalAlloc
}

func (m *meter) calibration() map[string]handlerCost {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]handlerCost{}
	for k, v := range m.cal {
		out[k] = *v
	}
	return out
}

// keyClass names a store key by its first two colon-separated parts
// ("sp:req", "sp:replay", "op:code"): the kind of record, without the id.
func keyClass(key string) string {
	i := strings.IndexByte(key, ':')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], ':')
	if j < 0 {
		return key
	}
	return key[:i+1+j]
}
