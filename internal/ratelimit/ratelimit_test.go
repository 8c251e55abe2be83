package ratelimit

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1700000000, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestNew_RefusesBadSettings(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		burst int
		opts  []Option
	}{
		{"zero rate", 0, 1, nil},
		{"negative rate", -1, 1, nil},
		{"NaN rate", nan(), 1, nil},
		{"zero burst", 1, 0, nil},
		{"zero key cap", 1, 1, []Option{WithMaxKeys(0)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if l, err := New(tc.rate, tc.burst, tc.opts...); err == nil {
				t.Fatalf("New = %v, want an error", l)
			}
			if mw, err := Middleware((&ClientIP{}).Key, tc.rate, tc.burst, tc.opts...); err == nil || mw != nil {
				t.Fatal("Middleware accepted bad settings")
			}
		})
	}
}

func nan() float64 { var z float64; return z / z }

// step is one call to Allow after advancing the clock.
type step struct {
	advance   time.Duration
	key       string
	wantOK    bool
	wantRetry time.Duration
}

func TestLimiter_TokenBucket(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		burst int
		steps []step
	}{
		{"burst then refused until a token refills", 1, 3, []step{
			{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0},
			{0, "a", false, time.Second},
			{500 * time.Millisecond, "a", false, 500 * time.Millisecond},
			{500 * time.Millisecond, "a", true, 0},
			{0, "a", false, time.Second},
		}},
		{"keys are independent", 1, 1, []step{
			{0, "a", true, 0}, {0, "a", false, time.Second},
			{0, "b", true, 0}, {0, "b", false, time.Second},
		}},
		{"refill stops at burst", 10, 2, []step{
			{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", false, 100 * time.Millisecond},
			{time.Hour, "a", true, 0}, {0, "a", true, 0}, {0, "a", false, 100 * time.Millisecond},
		}},
		{"fractional rate", 0.5, 1, []step{
			{0, "a", true, 0}, {0, "a", false, 2 * time.Second},
			{time.Second, "a", false, time.Second}, {time.Second, "a", true, 0},
		}},
		{"clock stepping back refills nothing", 1, 1, []step{
			{0, "a", true, 0}, {-time.Minute, "a", false, time.Second},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			l, err := New(tc.rate, tc.burst, WithClock(clock.now))
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				clock.advance(s.advance)
				ok, retry := l.Allow(s.key)
				if ok != s.wantOK || retry != s.wantRetry {
					t.Errorf("step %d (%s): Allow = %v, %v; want %v, %v", i, s.key, ok, retry, s.wantOK, s.wantRetry)
				}
			}
		})
	}
}

func TestLimiter_KeysStayUnderTheCapUnderAFlood(t *testing.T) {
	const maxKeys = 1000
	clock := newFakeClock()
	l, err := New(1, 5, WithClock(clock.now), WithMaxKeys(maxKeys))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	most := 0
	for i := 0; i < 200_000; i++ {
		l.Allow(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		if n := l.Len(); n > most {
			most = n
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if most > maxKeys {
		t.Errorf("tracked %d keys, cap %d", most, maxKeys)
	}
	if most < maxKeys {
		t.Errorf("tracked at most %d keys: the cap of %d was never reached, so the test shows nothing", most, maxKeys)
	}
	// 200 000 tracked keys would hold tens of megabytes; the cap holds
	// well under one. The bound is generous against GC noise.
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 8<<20 {
		t.Errorf("heap grew by %d bytes over a flood of distinct keys", grew)
	}
}

func TestLimiter_EvictsLeastRecentlySeen(t *testing.T) {
	clock := newFakeClock()
	l, err := New(1, 1, WithClock(clock.now), WithMaxKeys(10))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := l.Allow("busy"); !ok {
		t.Fatal("first request refused")
	}
	// A flood of new keys, with the busy client coming back in between:
	// it stays tracked, so its empty bucket stays empty.
	for i := 0; i < 1000; i++ {
		l.Allow(fmt.Sprintf("flood-%d", i))
		if i%5 == 0 {
			if ok, _ := l.Allow("busy"); ok {
				t.Fatalf("after %d flood keys the busy client got a fresh bucket", i)
			}
		}
	}
	// A key idle through a whole cap's worth of others is forgotten.
	if ok, _ := l.Allow("flood-0"); !ok {
		t.Error("an evicted key did not start with a full bucket")
	}
}

func TestLimiter_ConcurrentUse(t *testing.T) {
	l, err := New(1, 100, WithClock(newFakeClock().now), WithMaxKeys(50))
	if err != nil {
		t.Fatal(err)
	}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				if ok, _ := l.Allow("shared"); ok {
					allowed.Add(1)
				}
				l.Allow(fmt.Sprintf("g%d-%d", g, i%40))
			}
		}(g)
	}
	wg.Wait()
	// The clock never moves: exactly the burst is allowed for "shared",
	// unless "shared" was evicted by the other keys in between (then it
	// restarts full). Either way never more than burst per tracking.
	if n := l.Len(); n > 50 {
		t.Errorf("tracked %d keys, cap 50", n)
	}
	if allowed.Load() < 100 {
		t.Errorf("allowed %d of the shared key, want at least the burst of 100", allowed.Load())
	}
}

func TestMiddleware_AnswersTooManyWithRetryAfter(t *testing.T) {
	clock := newFakeClock()
	var rejected []string
	mw, err := Middleware(func(r *http.Request) string { return r.Header.Get("X-Test-Key") }, 2, 3,
		WithClock(clock.now), OnReject(func(reason string) { rejected = append(rejected, reason) }))
	if err != nil {
		t.Fatal(err)
	}
	var served int
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served++
		io.WriteString(w, "ok")
	}))
	do := func(key string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/saml/idp/sso", nil)
		if key != "" {
			req.Header.Set("X-Test-Key", key)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	var codes []int
	for i := 0; i < 10; i++ {
		codes = append(codes, do("a").Code)
	}
	want := []int{200, 200, 200, 429, 429, 429, 429, 429, 429, 429}
	if diff := cmp.Diff(want, codes); diff != "" {
		t.Errorf("status codes (-want +got):\n%s", diff)
	}
	if served != 3 {
		t.Errorf("handler ran %d times, want 3", served)
	}
	rec := do("a")
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1 (0.5 s rounded up)", got)
	}
	if rec.Body.Len() == 0 || rec.Body.Len() > 64 {
		t.Errorf("body of %d bytes, want a short one", rec.Body.Len())
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q", got)
	}
	if len(rejected) != 8 || rejected[0] != ReasonRateLimited {
		t.Errorf("OnReject saw %d rejections (%q), want 8 rate_limited", len(rejected), rejected)
	}
	if c := do("").Code; c != 200 {
		t.Errorf("a request without a key answered %d: an empty key is not limited", c)
	}
	clock.advance(500 * time.Millisecond)
	if c := do("a").Code; c != 200 {
		t.Errorf("after refill: %d, want 200", c)
	}
}

func TestTooMany_RetryAfterRounding(t *testing.T) {
	tests := []struct {
		name  string
		retry time.Duration
		want  string
	}{
		{"zero", 0, "1"},
		{"sub-second", time.Millisecond, "1"},
		{"exact", 2 * time.Second, "2"},
		{"rounded up", 2*time.Second + time.Nanosecond, "3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			TooMany(rec, tc.retry)
			if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != tc.want {
				t.Errorf("got %d Retry-After %q, want 429 %q", rec.Code, rec.Header().Get("Retry-After"), tc.want)
			}
		})
	}
}

func TestMaxInFlight_Sheds(t *testing.T) {
	const n = 3
	var rejected atomic.Int64
	entered := make(chan struct{})
	release := make(chan struct{})
	h := MaxInFlight(n, OnReject(func(reason string) {
		if reason == ReasonOverloaded {
			rejected.Add(1)
		}
	}))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	var wg sync.WaitGroup
	slowCodes := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := http.Get(srv.URL + "/slow")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			slowCodes[i] = resp.StatusCode
		}(i)
	}
	for i := 0; i < n; i++ {
		<-entered // n requests are now inside the handler
	}
	for i := 0; i < 5; i++ {
		resp, err := http.Get(srv.URL + "/fast")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || len(body) > 64 {
			t.Errorf("request beyond the cap: %d Retry-After %q, %d bytes; want a short 503 with Retry-After 1",
				resp.StatusCode, resp.Header.Get("Retry-After"), len(body))
		}
	}
	close(release)
	wg.Wait()
	if diff := cmp.Diff([]int{200, 200, 200}, slowCodes); diff != "" {
		t.Errorf("requests inside the cap (-want +got):\n%s", diff)
	}
	if rejected.Load() != 5 {
		t.Errorf("OnReject saw %d, want 5", rejected.Load())
	}
	// The slots are free again.
	resp, err := http.Get(srv.URL + "/fast")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after the slow requests finished: %d, want 200", resp.StatusCode)
	}
}

func TestMaxInFlight_PanicFreesItsSlot(t *testing.T) {
	h := MaxInFlight(1)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic(http.ErrAbortHandler)
		}
	}))
	func() {
		defer func() { _ = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/panic", nil))
	}()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ok", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("after a panic: %d, want 200 (the slot leaked)", rec.Code)
	}
}

func TestMaxInFlight_DisabledByZero(t *testing.T) {
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	rec := httptest.NewRecorder()
	MaxInFlight(0)(next).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("%d, want 200", rec.Code)
	}
}

func TestExcept(t *testing.T) {
	deny := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	}
	h := Except(deny, "/healthz", "/readyz")(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tests := []struct {
		path string
		want int
	}{
		{"/healthz", 200},
		{"/readyz", 200},
		{"/readyz/", 418},
		{"/saml/idp/sso", 418},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != tc.want {
				t.Errorf("%d, want %d", rec.Code, tc.want)
			}
		})
	}
}

// MaxInFlightNew sheds requests that start new work at newLimit and keeps
// the rest of the cap for requests that carry on work already started.
func TestMaxInFlightNew_ShedsNewWorkFirst(t *testing.T) {
	const n, newLimit = 4, 2
	var rejected atomic.Int64
	entered := make(chan struct{})
	release := make(chan struct{})
	isNew := func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/new") }
	h := MaxInFlightNew(n, newLimit, isNew, OnReject(func(string) { rejected.Add(1) }))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/slow") {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var wg sync.WaitGroup
	hold := func(path string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code := get(path); code != http.StatusOK {
				t.Errorf("held %s: %d, want 200", path, code)
			}
		}()
		<-entered
	}
	hold("/new/slow")
	hold("/cont/slow") // two in flight: new work is at its limit
	if code := get("/new"); code != http.StatusServiceUnavailable {
		t.Errorf("new work at its limit: %d, want 503", code)
	}
	if code := get("/cont"); code != http.StatusOK {
		t.Errorf("work under way, within the cap: %d, want 200", code)
	}
	hold("/cont/slow")
	hold("/cont/slow") // four in flight: the whole cap
	if code := get("/cont"); code != http.StatusServiceUnavailable {
		t.Errorf("work under way beyond the cap: %d, want 503", code)
	}
	close(release)
	wg.Wait()
	if rejected.Load() != 2 {
		t.Errorf("OnReject saw %d, want 2", rejected.Load())
	}
	if code := get("/new"); code != http.StatusOK {
		t.Errorf("new work after the others finished: %d, want 200", code)
	}
}
