package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/beevik/etree"
	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/gcpace"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// The floor (issue 13) is what one login costs a Go HTTP server process on
// this machine before any SAML work: the two requests the bridge answers
// per login, at the sizes they have in the realistic world, one line
// appended to a file and fsync'd as the release log does, the four info
// log lines serve writes and one RSA-2048 signature of an assertion, with
// the garbage collector paced as serve paces it. What the bridge costs
// beyond it is its SAML work; what the floor costs is the machine's
// (HTTP, the kernel, the Go runtime) and the signature's.
//
// The sizes were read off the realistic world's logins (2026-12-04).
const (
	floorLocation      = 800   // the bridge's redirect to the school IdP
	floorResponseBytes = 8900  // the school IdP's response, decoded: about 12.6 KB as a posted form
	floorPageBytes     = 14500 // the auto-post page to the vendor
	floorReleaseLine   = 640   // one release log line
)

// FloorOptions configures `skolbro bench --floor`.
type FloorOptions struct {
	Concurrency []int
	Rate        float64 // open loop instead of the closed-loop phases
	Duration    time.Duration
	Timeout     time.Duration // longest a login may take
	Signatures  int
	JSON        bool
	Progress    io.Writer
	// CPUs limits the floor's server as --serve-cpus limits serve, so
	// that it can be measured busy, as the bridge is with --serve-cpus.
	CPUs float64
	// Command runs the floor's server; its address is appended. The
	// default is this executable's `bench --floor-server`.
	Command []string
}

// FloorPhase is one load phase against the floor's server.
type FloorPhase struct {
	Mode            string  `json:"mode"`
	Concurrency     int     `json:"concurrency,omitempty"`
	OfferedPerSec   float64 `json:"offered_per_s,omitempty"`
	Logins          int64   `json:"logins"`
	Errors          int64   `json:"errors"`
	LoginsPerSecond float64 `json:"logins_per_s"`
	// CPUMicros is the server process's CPU time per login, from its
	// own accounting.
	CPUMicros float64 `json:"cpu_us_per_login"`
	// SignatureRatio is CPUMicros divided by one signature's CPU time.
	SignatureRatio float64 `json:"signature_ratio,omitempty"`
	// Switches is the server's context switches per login.
	Switches float64 `json:"context_switches_per_login"`
}

// FloorResult is what --floor reports.
type FloorResult struct {
	Machine
	ServerCPUs float64        `json:"server_cpus,omitempty"`
	Signature  *SignatureCost `json:"signature,omitempty"`
	Phases     []FloorPhase   `json:"phases"`
}

// check refuses options the floor cannot run with.
func (o FloorOptions) check() error {
	var errs []error
	for _, c := range o.Concurrency {
		if c < 1 || c > 100000 {
			errs = append(errs, errors.New("--concurrency must be between 1 and 100000"))
			break
		}
	}
	if o.Duration < 0 || o.Timeout < 0 || o.Rate < 0 || o.CPUs < 0 {
		errs = append(errs, errors.New("--duration, --timeout, --rate and --serve-cpus cannot be negative"))
	}
	return errors.Join(errs...)
}

// RunFloor starts the floor's server in its own process, drives it and
// writes the report to stdout.
func RunFloor(ctx context.Context, o FloorOptions, stdout io.Writer) error {
	if err := o.check(); err != nil {
		return err
	}
	if o.Duration <= 0 {
		o.Duration = DefaultDuration
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if len(o.Concurrency) == 0 {
		o.Concurrency = []int{8}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	command := o.Command
	if command == nil {
		exe, err := os.Executable()
		if err != nil {
			return errors.New("bench: --floor cannot find the skolbro executable: " + err.Error())
		}
		command = []string{exe, "bench", "--floor-server"}
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	base := "http://" + addr
	res := &FloorResult{Machine: thisMachine(), ServerCPUs: o.CPUs}
	fmt.Fprintf(o.Progress, "bench: starting the floor's server at %s\n", base)
	srv, err := startChild(ctx, "the floor's server", append(command[:len(command):len(command)], addr), base)
	if err != nil {
		return err
	}
	unlimit := func() {}
	// The cgroup goes once the process has exited.
	defer func() {
		srv.stop()
		unlimit()
	}()
	if o.CPUs > 0 {
		u, err := limitCPU(srv.pid(), o.CPUs)
		if err != nil {
			return err
		}
		unlimit = u
		fmt.Fprintf(o.Progress, "bench: the floor's server limited to %g CPUs (cgroup CPU quota)\n", o.CPUs)
	}
	if o.Signatures > 0 {
		// The signature is timed here with a key like the server's, so
		// that the floor is given in signatures as the bench's figures are.
		pair, err := keys.Generate("skolbro bench floor (TEST ONLY)", keys.RSA2048, time.Now())
		if err != nil {
			return err
		}
		s, err := xmlsig.NewSigner(pair)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Progress, "bench: timing %d signatures\n", o.Signatures)
		sc, err := measureSignature(s, o.Signatures)
		if err != nil {
			return err
		}
		res.Signature = &sc
	}
	c := newFloorClient(base, o.Timeout)
	if err := c.login(ctx); err != nil {
		return fmt.Errorf("bench: the floor's first login failed: %w", err)
	}
	fmt.Fprintln(o.Progress, "bench: warming up")
	c.run(ctx, o.Concurrency[0], 0, warmUpFor(o.Duration))
	measure := func(mode string, conc int, rate float64) FloorPhase {
		cpu0, ok0 := pidCPU(srv.pid())
		sw0, _ := pidSwitches(srv.pid())
		start := time.Now()
		n, errs := c.run(ctx, conc, rate, o.Duration)
		wall := time.Since(start)
		cpu1, ok1 := pidCPU(srv.pid())
		sw1, _ := pidSwitches(srv.pid())
		p := FloorPhase{Mode: mode, Concurrency: conc, OfferedPerSec: rate, Logins: n, Errors: errs, LoginsPerSecond: float64(n) / wall.Seconds()}
		if n > 0 && ok0 && ok1 {
			p.CPUMicros = float64((cpu1 - cpu0).Microseconds()) / float64(n)
			p.Switches = float64(sw1-sw0) / float64(n)
			if res.Signature != nil && res.Signature.CPUMicros > 0 {
				p.SignatureRatio = p.CPUMicros / res.Signature.CPUMicros
			}
		}
		return p
	}
	if o.Rate > 0 {
		fmt.Fprintf(o.Progress, "bench: open loop at %.0f logins/s for %v\n", o.Rate, o.Duration)
		res.Phases = append(res.Phases, measure("open", 0, o.Rate))
	} else {
		for _, conc := range o.Concurrency {
			fmt.Fprintf(o.Progress, "bench: closed loop, %d clients for %v\n", conc, o.Duration)
			res.Phases = append(res.Phases, measure("closed", conc, 0))
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return writeFloor(stdout, res)
}

func writeFloor(w io.Writer, res *FloorResult) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("skolbro bench --floor: what a login costs a Go HTTP server process on this machine before any SAML work\n")
	p("(the bridge's two requests at their realistic sizes, a %d-byte line appended and fsync'd, four info log lines, one signature)\n", floorReleaseLine)
	b.WriteString(res.line())
	if res.ServerCPUs > 0 {
		p("the floor's server limited to %g CPUs (cgroup CPU quota)\n", res.ServerCPUs)
	}
	if s := res.Signature; s != nil {
		p("signature (%s, %s): %.0f µs CPU per signed assertion, n=%d; the floor makes 1 per login\n", s.Key, shortAlg(s.Method), s.CPUMicros, s.N)
	}
	p("\n%8s %5s %10s %7s %7s %9s %18s %12s %17s\n", "mode", "conc", "offered/s", "logins", "errors", "logins/s", "floor CPU ms/login", "÷ signature", "ctx switches/login")
	for _, ph := range res.Phases {
		conc, offered, ratio := "-", "-", "-"
		if ph.Concurrency > 0 {
			conc = strconv.Itoa(ph.Concurrency)
		}
		if ph.OfferedPerSec > 0 {
			offered = fmt.Sprintf("%.0f", ph.OfferedPerSec)
		}
		if ph.SignatureRatio > 0 {
			ratio = fmt.Sprintf("%.2f", ph.SignatureRatio)
		}
		p("%8s %5s %10s %7d %7d %9.1f %18.3f %12s %17.1f\n", ph.Mode, conc, offered, ph.Logins, ph.Errors, ph.LoginsPerSecond, ph.CPUMicros/1000, ratio, ph.Switches)
	}
	p("\nCompare with the bridge at the same rate: skolbro bench --serve --rate R --check-every 10 (the floor's cost depends on the rate: idle gaps cost the Go runtime more)\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// floorClient drives the floor's server: per login the SSO GET, then the
// ACS POST with the cookie it set.
type floorClient struct {
	base  string
	http  *http.Client
	query string
	form  string
}

func newFloorClient(base string, timeout time.Duration) *floorClient {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	random := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	q := url.Values{
		"SAMLRequest": {random(360)},
		"RelayState":  {random(24)},
		"SigAlg":      {"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"},
		"Signature":   {random(256)},
	}.Encode()
	form := url.Values{"SAMLResponse": {random(floorResponseBytes)}, "RelayState": {random(24)}}.Encode()
	return &floorClient{
		base:  base,
		http:  &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		query: q,
		form:  form,
	}
}

func (c *floorClient) login(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/sso?"+c.query, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || len(resp.Cookies()) != 1 {
		return fmt.Errorf("sso: status %d, %d cookies", resp.StatusCode, len(resp.Cookies()))
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/acs", strings.NewReader(c.form))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(resp.Cookies()[0])
	resp, err = c.http.Do(req)
	if err != nil {
		return err
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || n != floorPageBytes {
		return fmt.Errorf("acs: status %d, %d bytes", resp.StatusCode, n)
	}
	return nil
}

// run drives logins for d: conc clients in a closed loop, or rate logins
// a second in an open loop. It returns the logins and the failures.
func (c *floorClient) run(ctx context.Context, conc int, rate float64, d time.Duration) (int64, int64) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var ok, failed atomic.Int64
	one := func() {
		if err := c.login(ctx); err != nil {
			if ctx.Err() == nil {
				failed.Add(1)
			}
			return
		}
		ok.Add(1)
	}
	var wg sync.WaitGroup
	if rate > 0 {
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		// As the bench's open loop: a server that stops answering does
		// not get the client ever more goroutines, and an arrival not
		// started counts as a failure.
		var inFlight atomic.Int64
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-tick.C:
				if inFlight.Load() >= DefaultMaxOpenInFlight {
					failed.Add(1)
					continue
				}
				inFlight.Add(1)
				wg.Go(func() {
					defer inFlight.Add(-1)
					one()
				})
			}
		}
	} else {
		for range conc {
			wg.Go(func() {
				for ctx.Err() == nil {
					one()
				}
			})
		}
	}
	wg.Wait()
	return ok.Load(), failed.Load()
}

// FloorServer is `skolbro bench --floor-server ADDR`: the floor's server,
// until SIGTERM. Its key is generated for the run and is TEST ONLY.
func FloorServer(addr string, stdout io.Writer) error {
	if pacer := gcpace.Start(gcpace.DefaultHeadroom); pacer != nil {
		defer pacer.Stop()
	}
	pair, err := keys.Generate("skolbro bench floor (TEST ONLY)", keys.RSA2048, time.Now())
	if err != nil {
		return err
	}
	signer, err := xmlsig.NewSigner(pair)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "skolbro-floor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	f, err := os.OpenFile(filepath.Join(dir, "releases.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	h := &floorHandler{
		log:      zerolog.New(stdout).With().Timestamp().Logger(),
		signer:   signer,
		file:     f,
		line:     []byte(strings.Repeat("x", floorReleaseLine-1) + "\n"),
		location: "http://127.0.0.1:1/idp/sso?SAMLRequest=" + strings.Repeat("Q", floorLocation-40),
		page:     []byte(strings.Repeat("p", floorPageBytes)),
		sample:   sampleAssertion(),
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-stop
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type floorHandler struct {
	log      zerolog.Logger
	signer   *xmlsig.Signer
	mu       sync.Mutex // one append and fsync at a time, as the release log's
	file     *os.File
	line     []byte
	location string
	page     []byte
	sample   *etree.Element // read only: SignEnveloped signs a copy
}

func (h *floorHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	rid := hex.EncodeToString(id)
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("Cache-Control", "no-store")
	status := h.serve(w, r, rid)
	h.log.Info().Str("request_id", rid).Str("method", r.Method).Str("path", r.URL.Path).Int("status", status).Dur("duration", time.Since(start)).Msg("request")
}

func (h *floorHandler) serve(w http.ResponseWriter, r *http.Request, rid string) int {
	switch {
	case r.URL.Path == "/readyz":
		return http.StatusOK
	case r.Method == http.MethodGet && r.URL.Path == "/sso":
		q := r.URL.Query()
		if q.Get("SAMLRequest") == "" {
			http.Error(w, "no request", http.StatusBadRequest)
			return http.StatusBadRequest
		}
		http.SetCookie(w, &http.Cookie{Name: "skolbro_login", Value: rid + strings.Repeat("0", 40), Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode, MaxAge: 600})
		h.log.Info().Str("request_id", rid).Str("vendor", "learning-app").Str("upstream", "school-idp").Msg("login started")
		http.Redirect(w, r, h.location, http.StatusFound)
		return http.StatusFound
	case r.Method == http.MethodPost && r.URL.Path == "/acs":
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return http.StatusBadRequest
		}
		if _, err := base64.StdEncoding.DecodeString(r.PostForm.Get("SAMLResponse")); err != nil {
			http.Error(w, "bad response", http.StatusBadRequest)
			return http.StatusBadRequest
		}
		if _, err := r.Cookie("skolbro_login"); err != nil {
			http.Error(w, "no login", http.StatusBadRequest)
			return http.StatusBadRequest
		}
		if _, err := h.signer.SignEnveloped(h.sample); err != nil {
			http.Error(w, "signing failed", http.StatusInternalServerError)
			return http.StatusInternalServerError
		}
		h.mu.Lock()
		_, err := h.file.Write(h.line)
		if err == nil {
			err = h.file.Sync()
		}
		h.mu.Unlock()
		if err != nil {
			http.Error(w, "release log", http.StatusInternalServerError)
			return http.StatusInternalServerError
		}
		h.log.Info().Str("request_id", rid).Str("vendor", "learning-app").Str("outcome", "released").Msg("released")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(h.page)
		return http.StatusOK
	}
	http.NotFound(w, r)
	return http.StatusNotFound
}
