package ops

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/ratelimit"
	"github.com/skolbro/skolbro/internal/store"
)

// exempt are the paths neither limited nor shed: an orchestrator must see
// a busy bridge as alive.
var exempt = []string{"/healthz", "/readyz"}

// guard wraps the bridge as proposed for server.Handler: the in-flight cap
// outermost (it sheds before any work is done, logging included), then
// the per-client limiter, the health endpoints exempt from both.
func guard(h http.Handler, lim *ratelimit.Limiter, clientIP *ratelimit.ClientIP, maxInFlight int, onReject func(string)) http.Handler {
	h = ratelimit.Except(lim.Middleware(clientIP.Key), exempt...)(h)
	return ratelimit.Except(ratelimit.MaxInFlight(maxInFlight, ratelimit.OnReject(onReject)), exempt...)(h)
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

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

// heldBody is a request body whose first Read reports on started and then
// waits for release: a slow client, holding its request in flight.
type heldBody struct {
	started chan<- struct{}
	release <-chan struct{}
	data    io.Reader
	once    sync.Once
}

func (b *heldBody) Read(p []byte) (int, error) {
	b.once.Do(func() {
		b.started <- struct{}{}
		<-b.release
	})
	return b.data.Read(p)
}

// TestCase42_BurstGets429 floods the bridge, built in-process from the
// demo configuration and wrapped in the proposed limits, from one client
// beyond its rate, then from a great many clients, then with slow requests
// filling the in-flight cap (SECURITY.md case 42): the excess gets 429 or
// a quick 503, never a 5xx from the bridge itself or a crash, the tracked
// clients stay under the cap, the heap stays bounded, and service resumes.
func TestCase42_BurstGets429(t *testing.T) {
	const (
		rate, burst = 5, 10
		maxClients  = 1000
		maxInFlight = 4
	)
	d, err := demo.Setup("http://127.0.0.1:8080", t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bridge, err := d.HandlerWithStore(zerolog.New(io.Discard), store.NewMemory(nil))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	var rejected sync.Map // reason -> *atomic.Int64
	onReject := func(reason string) {
		c, _ := rejected.LoadOrStore(reason, new(atomic.Int64))
		c.(*atomic.Int64).Add(1)
	}
	rejections := func(reason string) int64 {
		if c, ok := rejected.Load(reason); ok {
			return c.(*atomic.Int64).Load()
		}
		return 0
	}
	lim, err := ratelimit.New(rate, burst, ratelimit.WithClock(clock.now), ratelimit.WithMaxKeys(maxClients), ratelimit.OnReject(onReject))
	if err != nil {
		t.Fatal(err)
	}
	clientIP, err := ratelimit.NewClientIP(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	h := guard(bridge, lim, clientIP, maxInFlight, onReject)
	v := demoVendor(t, d, "learning-app")
	serve := func(method, target, remote string, body io.Reader) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, body)
		r.RemoteAddr = remote
		if body != nil {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	ssoTarget := func() string {
		u, err := url.Parse(mustLoginURL(t, v))
		if err != nil {
			t.Fatal(err)
		}
		return u.RequestURI()
	}

	t.Run("one client beyond its rate", func(t *testing.T) {
		const client = "192.0.2.10:40000"
		codes := map[int]int{}
		for i := 0; i < 100; i++ {
			w := serve(http.MethodGet, ssoTarget(), client, nil)
			codes[w.Code]++
			if w.Code == http.StatusTooManyRequests {
				if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 {
					t.Fatalf("429 without a usable Retry-After: %q", w.Header().Get("Retry-After"))
				}
				if w.Body.Len() > 128 {
					t.Fatalf("429 body of %d bytes, want a short one", w.Body.Len())
				}
			}
		}
		want := map[int]int{http.StatusFound: burst, http.StatusTooManyRequests: 100 - burst}
		if fmt.Sprint(codes) != fmt.Sprint(want) {
			t.Errorf("answers %v, want %v (the burst through, the rest 429)", codes, want)
		}
		if got := rejections(ratelimit.ReasonRateLimited); got != 100-burst {
			t.Errorf("%d rejections reported, want %d", got, 100-burst)
		}
		for _, p := range exempt {
			if w := serve(http.MethodGet, p, client, nil); w.Code != http.StatusOK {
				t.Errorf("%s from the limited client: %d, want 200 (health checks are never limited)", p, w.Code)
			}
		}
		if w := serve(http.MethodGet, ssoTarget(), "192.0.2.11:40000", nil); w.Code != http.StatusFound {
			t.Errorf("another client: %d, want 302", w.Code)
		}
		clock.advance(time.Second / rate)
		if w := serve(http.MethodGet, ssoTarget(), client, nil); w.Code != http.StatusFound {
			t.Errorf("after one refill interval: %d, want 302", w.Code)
		}
	})

	t.Run("a flood of distinct clients", func(t *testing.T) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		const flood = 20_000
		codes := map[int]int{}
		for i := 0; i < flood; i++ {
			remote := fmt.Sprintf("10.%d.%d.%d:5000", i>>16&255, i>>8&255, i&255)
			// No SAMLRequest: the bridge refuses it cheaply, after the
			// limiter has tracked the client.
			codes[serve(http.MethodGet, "/saml/idp/sso", remote, nil).Code]++
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if codes[http.StatusBadRequest] != flood {
			t.Errorf("answers %v, want %d × 400", codes, flood)
		}
		if n := lim.Len(); n > maxClients {
			t.Errorf("the limiter tracks %d clients, cap %d", n, maxClients)
		}
		// Generous against GC noise; an unbounded limiter or anything kept
		// per request would exceed it.
		if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 16<<20 {
			t.Errorf("heap grew by %d bytes over %d requests", grew, flood)
		}
	})

	t.Run("slow requests fill the in-flight cap", func(t *testing.T) {
		started := make(chan struct{})
		release := make(chan struct{})
		var wg sync.WaitGroup
		slow := make([]int, maxInFlight)
		for i := 0; i < maxInFlight; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				body := &heldBody{started: started, release: release, data: strings.NewReader("SAMLResponse=x")}
				slow[i] = serve(http.MethodPost, "/saml/sp/acs", fmt.Sprintf("198.51.100.%d:6000", i+1), body).Code
			}(i)
		}
		for i := 0; i < maxInFlight; i++ {
			<-started
		}
		before := rejections(ratelimit.ReasonOverloaded)
		for i := 0; i < 10; i++ {
			w := serve(http.MethodGet, ssoTarget(), fmt.Sprintf("203.0.113.%d:7000", i+1), nil)
			if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
				t.Errorf("request beyond the in-flight cap: %d (Retry-After %q), want a quick 503", w.Code, w.Header().Get("Retry-After"))
			}
		}
		if w := serve(http.MethodGet, "/readyz", "203.0.113.99:7000", nil); w.Code != http.StatusOK {
			t.Errorf("/readyz while shedding: %d, want 200", w.Code)
		}
		if got := rejections(ratelimit.ReasonOverloaded) - before; got != 10 {
			t.Errorf("%d overload rejections reported, want 10", got)
		}
		close(release)
		wg.Wait()
		for i, c := range slow {
			if c >= 500 {
				t.Errorf("slow request %d answered %d", i, c)
			}
		}
		if w := serve(http.MethodGet, ssoTarget(), "203.0.113.50:7000", nil); w.Code != http.StatusFound {
			t.Errorf("after the slow requests: %d, want 302", w.Code)
		}
	})
}

// TestCase42_BurstGets429_Process floods a `skolbro serve` process
// configured with limits: from one client address beyond its rate, then
// from many loopback addresses at one vendor beyond the vendor's rate:
// 429s with Retry-After, no 5xx, the process alive and ready, and its
// resident memory bounded. It skips until cmd/skolbro accepts limits:.
func TestCase42_BurstGets429_Process(t *testing.T) {
	const (
		clientRPS, burst = 5, 10
		vendorRPS        = 20
	)
	bin := buildSkolbro(t)
	rr := &roundRobin{}
	proxy := httptest.NewServer(rr)
	t.Cleanup(proxy.Close)
	env := setupProcEnv(t, proxy.URL, memoryStoreYAML, fmt.Sprintf(`limits:
  per_client_rps: %d
  burst: %d
  per_vendor_rps: %d
  max_in_flight: 64
`, clientRPS, burst, vendorRPS))
	if out, err := exec.Command(bin, "check", "--config", env.cfg).CombinedOutput(); err != nil {
		if strings.Contains(string(out), "field limits not found") {
			// The in-process test above covers the behaviour; this one
			// turns on when cmd/skolbro wires internal/ratelimit.
			t.Skip("skolbro does not accept the limits: section yet (config.Config has no Limits)")
		}
		t.Fatalf("skolbro check: %v\n%s", err, out)
	}
	p := startBridge(t, "bridge", bin, env.cfg)
	rr.setBackends(p.url())
	env.trustBridge(t, proxy.URL)
	rssBefore := rssBytes(t, p.cmd.Process.Pid)

	// get sends one SSO request from src (nil: the default address) and
	// returns the status and Retry-After.
	get := func(src net.IP) (int, string) {
		u, err := url.Parse(mustLoginURL(t, env.vendor))
		if err != nil {
			t.Fatal(err)
		}
		d := &net.Dialer{}
		if src != nil {
			d.LocalAddr = &net.TCPAddr{IP: src}
		}
		c := &http.Client{
			Transport:     &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       10 * time.Second,
		}
		resp, err := c.Get(p.url() + u.RequestURI())
		if err != nil {
			t.Fatalf("SSO request: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	check := func(phase string, codes map[int]int, retryAfters map[string]bool, started time.Time, rps int) {
		t.Helper()
		t.Logf("%s: answers %v", phase, codes)
		if codes[http.StatusTooManyRequests] == 0 {
			t.Errorf("%s: no 429: %v", phase, codes)
		}
		if retryAfters[""] {
			t.Errorf("%s: a 429 without Retry-After", phase)
		}
		// The tokens there were: the burst plus the refill over the time
		// the flood took (an upper bound, whatever the machine's speed).
		if most := burst + int(float64(rps)*time.Since(started).Seconds()) + 1; codes[http.StatusFound] > most {
			t.Errorf("%s: %d logins started, the limit allows at most %d: %v", phase, codes[http.StatusFound], most, codes)
		}
		for c, n := range codes {
			if c >= 500 {
				t.Errorf("%s: %d answers with status %d", phase, n, c)
			}
		}
	}

	codes, retryAfters, started := map[int]int{}, map[string]bool{}, time.Now()
	for i := 0; i < 200; i++ {
		c, ra := get(nil)
		codes[c]++
		if c == http.StatusTooManyRequests {
			retryAfters[ra] = true
		}
	}
	check("one client", codes, retryAfters, started, clientRPS)

	// Many clients at one vendor: each address sends one request, so only
	// the vendor's limit can engage. 127.0.0.0/8 is all loopback on Linux.
	const clients = 1000
	codes, retryAfters, started = map[int]int{}, map[string]bool{}, time.Now()
	for i := 0; i < clients; i++ {
		c, ra := get(net.IPv4(127, 1, byte(i>>8), byte(i&255)))
		codes[c]++
		if c == http.StatusTooManyRequests {
			retryAfters[ra] = true
		}
	}
	check("many clients, one vendor", codes, retryAfters, started, vendorRPS)

	if !p.running() {
		t.Fatal("the process died under the flood")
	}
	if got := status(p.url() + "/readyz"); got != http.StatusOK {
		t.Errorf("/readyz after the flood: %d, want 200", got)
	}
	if grew := rssBytes(t, p.cmd.Process.Pid) - rssBefore; grew > 64<<20 {
		t.Errorf("resident memory grew by %d bytes", grew)
	}
	assertNoPersonalData(t, "the bridge's log", p.log.String(), env.idp.Users)
}

// rssBytes reads a process's resident set size from /proc (Linux); it
// skips the test elsewhere.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS: %v", err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}
