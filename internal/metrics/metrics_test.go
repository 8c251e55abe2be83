package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/skolbro/skolbro/internal/store"
)

// stepClock advances by step on every call, so that every measured
// duration is exactly step.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func newMetrics(t *testing.T, opts ...Option) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func familyNames(t *testing.T, g prometheus.Gatherer) []string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		out = append(out, mf.GetName())
	}
	sort.Strings(out)
	return out
}

func TestNew_RegistersEveryFamilyOnTheGivenRegistryOnly(t *testing.T) {
	m, reg := newMetrics(t)
	m.Login("learning-app", "saml", OutcomeSuccess)
	m.Refusal("upstream_signature")
	m.Masking("learning-app")
	m.SetKeyExpiry("signing", time.Unix(2000000000, 0))
	m.httpDuration.WithLabelValues("/x", "200").Observe(0)

	want := []string{NameHTTPDuration, NameKeyExpiry, NameLogins, NameMaskings,
		NameRefusals, NameStoreErrors, NameStoreLatency}
	sort.Strings(want)
	if diff := cmp.Diff(want, familyNames(t, reg)); diff != "" {
		t.Errorf("families (-want +got):\n%s", diff)
	}
	for _, n := range familyNames(t, prometheus.DefaultGatherer) {
		if strings.HasPrefix(n, "skolbro_") {
			t.Errorf("%s is on the global registry", n)
		}
	}
}

func TestNew_Errors(t *testing.T) {
	tests := []struct {
		name string
		reg  func() prometheus.Registerer
		opts []Option
	}{
		{"nil registerer", func() prometheus.Registerer { return nil }, nil},
		{"registerer that is no gatherer", func() prometheus.Registerer {
			return prometheus.WrapRegistererWith(prometheus.Labels{"organiser": "x"}, prometheus.NewRegistry())
		}, nil},
		{"registered twice", func() prometheus.Registerer {
			reg := prometheus.NewRegistry()
			if _, err := New(reg); err != nil {
				t.Fatal(err)
			}
			return reg
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if m, err := New(tc.reg(), tc.opts...); err == nil || m != nil {
				t.Fatalf("New = %v, %v; want an error", m, err)
			}
		})
	}
	t.Run("wrapped registerer with a gatherer", func(t *testing.T) {
		inner := prometheus.NewRegistry()
		wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"organiser": "x"}, inner)
		m, err := New(wrapped, WithGatherer(inner))
		if err != nil {
			t.Fatal(err)
		}
		m.Refusal("r")
		if got := testutil.ToFloat64(m.refusals.WithLabelValues("r")); got != 1 {
			t.Errorf("refusal count %v, want 1", got)
		}
	})
}

func TestCounters(t *testing.T) {
	m, _ := newMetrics(t)
	m.Login("learning-app", "saml", OutcomeSuccess)
	m.Login("learning-app", "saml", OutcomeSuccess)
	m.Login("learning-app", "oidc", OutcomeUnavailable)
	m.Login("learning-app", "saml", "something new")
	m.Login("", "saml", OutcomeRefused)
	m.Refusal("rate_limited")
	m.Masking("national-tests")
	tests := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"success", m.logins.WithLabelValues("learning-app", "saml", OutcomeSuccess), 2},
		{"unavailable", m.logins.WithLabelValues("learning-app", "oidc", OutcomeUnavailable), 1},
		{"unknown outcome is other", m.logins.WithLabelValues("learning-app", "saml", Other), 1},
		{"empty vendor is unknown", m.logins.WithLabelValues(Unknown, "saml", OutcomeRefused), 1},
		{"refusal", m.refusals.WithLabelValues("rate_limited"), 1},
		{"masking", m.maskings.WithLabelValues("national-tests"), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := testutil.ToFloat64(tc.c); got != tc.want {
				t.Errorf("= %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGauges(t *testing.T) {
	m, _ := newMetrics(t)
	notAfter := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	m.SetKeyExpiry("signing", notAfter)
	if got := testutil.ToFloat64(m.keyExpiry.WithLabelValues("signing")); got != float64(notAfter.Unix()) {
		t.Errorf("key expiry %v, want %v", got, notAfter.Unix())
	}
}

func TestLabels_CardinalityAndValidityBounded(t *testing.T) {
	m, _ := newMetrics(t)
	for i := 0; i < 3*maxLabelValues; i++ {
		m.Refusal(fmt.Sprintf("reason-%d", i))
	}
	m.Refusal("bad \xff utf-8")                   // would panic in the client library
	m.Refusal(strings.Repeat("r", maxLabelLen+1)) // too long
	m.Masking(string([]byte{0xc3}))               // truncated rune
	if n := testutil.CollectAndCount(m.refusals); n != maxLabelValues+1 {
		t.Errorf("%d refusal series, want %d (the cap plus %q)", n, maxLabelValues+1, Other)
	}
	if got := testutil.ToFloat64(m.refusals.WithLabelValues(Other)); got != float64(2*maxLabelValues+2) {
		t.Errorf("other = %v, want %d", got, 2*maxLabelValues+2)
	}
	if got := testutil.ToFloat64(m.maskings.WithLabelValues(Other)); got != 1 {
		t.Errorf("masking other = %v, want 1", got)
	}
	// A value seen before the cap keeps its own series.
	m.Refusal("reason-0")
	if got := testutil.ToFloat64(m.refusals.WithLabelValues("reason-0")); got != 2 {
		t.Errorf("reason-0 = %v, want 2", got)
	}
}

func TestMiddleware_LabelsByRouteTemplateNeverRawPath(t *testing.T) {
	clock := &stepClock{t: time.Unix(1700000000, 0), step: 250 * time.Millisecond}
	m, reg := newMetrics(t, WithClock(clock.now))
	r := mux.NewRouter()
	r.Use(m.Middleware)
	r.HandleFunc("/saml/idp/sso", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", "/x")
		w.WriteHeader(http.StatusFound)
	})
	r.HandleFunc("/people/{id}", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusNotFound)
	})
	r.HandleFunc("/plain", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	r.HandleFunc("/empty", func(http.ResponseWriter, *http.Request) {})
	r.NotFoundHandler = m.Middleware(http.NotFoundHandler())

	tests := []struct {
		name, path  string
		route, code string
	}{
		{"redirect", "/saml/idp/sso?SAMLRequest=abc", "/saml/idp/sso", "302"},
		{"template with a variable", "/people/19121212-1212", "/people/{id}", "404"},
		{"write without WriteHeader", "/plain", "/plain", "200"},
		{"nothing written", "/empty", "/empty", "200"},
		{"no route", "/nowhere/19121212-1212", Unmatched, "404"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, tc.path, nil))
			out := gatherText(t, reg)
			want := fmt.Sprintf(`%s_sum{code=%q,route=%q} 0.25`, NameHTTPDuration, tc.code, tc.route)
			if !strings.Contains(out, want) {
				t.Errorf("exposition lacks %s", want)
			}
		})
	}
	out := gatherText(t, reg)
	for _, leak := range []string{"19121212", "SAMLRequest", "abc", "nowhere"} {
		if strings.Contains(out, leak) {
			t.Errorf("exposition contains %q from a request", leak)
		}
	}
}

func gatherText(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	m := &Metrics{gatherer: reg}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics answered %d", rec.Code)
	}
	return rec.Body.String()
}

func TestHandler_ServesTheRegistry(t *testing.T) {
	m, _ := newMetrics(t)
	m.Refusal("store_unavailable")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	for _, want := range []string{
		NameRefusals + `{reason="store_unavailable"} 1`,
		NameStoreErrors + `{op="take"} 0`, // pre-declared, so alerts work before the first error
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// fakeStore answers every call with err (and value v for Get/Take).
type fakeStore struct {
	err   error
	v     []byte
	calls []string
	close int
}

func (f *fakeStore) Put(context.Context, string, []byte, time.Duration) error {
	f.calls = append(f.calls, "put")
	return f.err
}
func (f *fakeStore) Add(context.Context, string, []byte, time.Duration) error {
	f.calls = append(f.calls, "add")
	return f.err
}
func (f *fakeStore) Get(context.Context, string) ([]byte, error) {
	f.calls = append(f.calls, "get")
	return f.v, f.err
}
func (f *fakeStore) Take(context.Context, string) ([]byte, error) {
	f.calls = append(f.calls, "take")
	return f.v, f.err
}
func (f *fakeStore) Delete(context.Context, string) error {
	f.calls = append(f.calls, "delete")
	return f.err
}
func (f *fakeStore) Ping(context.Context) error {
	f.calls = append(f.calls, "ping")
	return f.err
}
func (f *fakeStore) Close() error { f.close++; return nil }

func TestInstrumentStore(t *testing.T) {
	backend := fmt.Errorf("store: redis get: %w: connection refused", store.ErrBackend)
	ops := map[string]func(s store.Store) error{
		"put":    func(s store.Store) error { return s.Put(context.Background(), "k", []byte("v"), time.Minute) },
		"add":    func(s store.Store) error { return s.Add(context.Background(), "k", []byte("v"), time.Minute) },
		"get":    func(s store.Store) error { _, err := s.Get(context.Background(), "k"); return err },
		"take":   func(s store.Store) error { _, err := s.Take(context.Background(), "k"); return err },
		"delete": func(s store.Store) error { return s.Delete(context.Background(), "k") },
		"ping":   func(s store.Store) error { return s.Ping(context.Background()) },
	}
	tests := []struct {
		name       string
		err        error
		wantCounts bool
	}{
		{"success", nil, false},
		{"miss is an answer", store.ErrNotFound, false},
		{"existing key is an answer", store.ErrExists, false},
		{"backend down", backend, true},
		{"other failure", errors.New("boom"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &stepClock{t: time.Unix(1700000000, 0), step: 10 * time.Millisecond}
			m, reg := newMetrics(t, WithClock(clock.now))
			fs := &fakeStore{err: tc.err, v: []byte("value")}
			s := m.InstrumentStore(fs)
			for op, call := range ops {
				if err := call(s); err != tc.err {
					t.Errorf("%s returned %v, want %v unchanged", op, err, tc.err)
				}
				want := 0.0
				if tc.wantCounts {
					want = 1
				}
				if got := testutil.ToFloat64(m.storeErrors.WithLabelValues(op)); got != want {
					t.Errorf("%s errors = %v, want %v", op, got, want)
				}
			}
			out := gatherText(t, reg)
			for op := range ops {
				for _, want := range []string{
					fmt.Sprintf(`%s_count{op=%q} 1`, NameStoreLatency, op),
					fmt.Sprintf(`%s_sum{op=%q} 0.01`, NameStoreLatency, op),
				} {
					if !strings.Contains(out, want) {
						t.Errorf("exposition lacks %s", want)
					}
				}
			}
			if len(fs.calls) != len(ops) {
				t.Errorf("inner store called %d times, want %d", len(fs.calls), len(ops))
			}
		})
	}
	t.Run("values, Unwrap and Close pass through", func(t *testing.T) {
		m, _ := newMetrics(t)
		fs := &fakeStore{v: []byte("value")}
		s := m.InstrumentStore(fs)
		if v, err := s.Take(context.Background(), "k"); err != nil || string(v) != "value" {
			t.Errorf("Take = %q, %v", v, err)
		}
		if u, ok := s.(interface{ Unwrap() store.Store }); !ok || u.Unwrap() != store.Store(fs) {
			t.Error("Unwrap does not return the wrapped store")
		}
		if err := s.(io.Closer).Close(); err != nil || fs.close != 1 {
			t.Errorf("Close = %v, inner closed %d times", err, fs.close)
		}
	})
	t.Run("get_many", func(t *testing.T) {
		for _, tc := range []struct {
			err        error
			wantErrors float64
		}{{nil, 0}, {store.ErrNotFound, 0}, {backend, 1}} {
			m, reg := newMetrics(t)
			fs := &fakeStore{err: tc.err, v: []byte("value")}
			v, err := store.GetMany(context.Background(), m.InstrumentStore(fs), "a", "b")
			switch {
			case tc.err == nil && (err != nil || len(v) != 2 || string(v[1]) != "value"):
				t.Errorf("GetMany = %q, %v", v, err)
			case tc.err == store.ErrNotFound && (err != nil || v[0] != nil || v[1] != nil):
				t.Errorf("GetMany of absent keys = %q, %v; want nil values", v, err)
			case tc.err == backend && !errors.Is(err, store.ErrBackend):
				t.Errorf("GetMany with the backend down = %v", err)
			}
			if got := testutil.ToFloat64(m.storeErrors.WithLabelValues("get_many")); got != tc.wantErrors {
				t.Errorf("%v: get_many errors = %v, want %v", tc.err, got, tc.wantErrors)
			}
			if want := fmt.Sprintf(`%s_count{op="get_many"} 1`, NameStoreLatency); !strings.Contains(gatherText(t, reg), want) {
				t.Errorf("exposition lacks %s", want)
			}
		}
	})
	t.Run("with the memory store", func(t *testing.T) {
		m, _ := newMetrics(t)
		s := m.InstrumentStore(store.NewMemory(nil))
		if err := s.Add(context.Background(), "k", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.Add(context.Background(), "k", []byte("v"), time.Minute); !errors.Is(err, store.ErrExists) {
			t.Fatalf("second Add = %v, want ErrExists", err)
		}
		if _, err := s.Take(context.Background(), "missing"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Take = %v, want ErrNotFound", err)
		}
		if err := s.Put(context.Background(), "k", []byte("v"), 0); err == nil {
			t.Fatal("Put with ttl 0 succeeded")
		}
		for op, want := range map[string]float64{"add": 0, "take": 0, "put": 1} {
			if got := testutil.ToFloat64(m.storeErrors.WithLabelValues(op)); got != want {
				t.Errorf("%s errors = %v, want %v", op, got, want)
			}
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	m, _ := newMetrics(t)
	s := m.InstrumentStore(store.NewMemory(nil))
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				m.Login(fmt.Sprintf("v%d", j%5), "saml", OutcomeSuccess)
				m.Refusal(fmt.Sprintf("r%d", j%300))
				_, _ = s.Get(context.Background(), "k")
			}
		}(i)
	}
	wg.Wait()
	var total float64
	for j := 0; j < 5; j++ {
		total += testutil.ToFloat64(m.logins.WithLabelValues(fmt.Sprintf("v%d", j), "saml", OutcomeSuccess))
	}
	if total != 8*200 {
		t.Errorf("logins = %v, want %d", total, 8*200)
	}
}

// The request-duration buckets keep every one of Prometheus's default
// bounds, which dashboards and alerts may name, and are sorted.
func TestHTTPDurationBucketsKeepDefaults(t *testing.T) {
	if !slices.IsSorted(HTTPDurationBuckets) {
		t.Errorf("buckets not sorted: %v", HTTPDurationBuckets)
	}
	for _, b := range prometheus.DefBuckets {
		if !slices.Contains(HTTPDurationBuckets, b) {
			t.Errorf("default bound %g is gone", b)
		}
	}
	if !slices.Contains(HTTPDurationBuckets, 0.02) {
		t.Error("no 20 ms bound")
	}
}
