// Package bench is `skolbro bench`: a load test of the whole login chain.
// It runs the demo's test school IdP and vendors (internal/demo) and the
// bridge, and drives simulated browsers (each with its own cookie jar,
// following redirects and auto-posted forms) through complete logins:
// vendor request, bridge, school IdP, bridge ACS, vendor. It reports
// logins per second, latency of whole logins and of the bridge's own
// handlers, the bridge's CPU time and allocations per login, what the
// store holds per login, and the cost of one XML signature measured in
// the same run.
//
// The bridge runs in this process by default, built from its
// configuration as `skolbro serve` builds it; with Options.Target it is
// another process (see WriteConfig), and the bench plays only the IdP,
// the vendors and the browsers. No figure is asserted anywhere: the bench
// prints what it measured and how.
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// Defaults of Options.
const (
	DefaultRedisAddr   = "127.0.0.1:6379"
	DefaultDuration    = 10 * time.Second
	DefaultSignatures  = 200
	DefaultCalibration = 50
	DefaultTimeout     = 10 * time.Second
	// DefaultMaxOpenInFlight bounds the logins an open-loop phase keeps
	// in flight, so that an overloaded bridge cannot take the bench down
	// with it; arrivals beyond it are counted as dropped.
	DefaultMaxOpenInFlight = 10000
)

// Options configure a run.
type Options struct {
	// World is WorldRealistic (the default) or WorldLight; with Target
	// the directory in ConfigDir says which.
	World string
	// Protocol is the vendor's protocol: "saml" (SAML in, SAML out; the
	// default) or "oidc" (SAML in, OIDC out).
	Protocol string
	// Store is "memory" (default) or "redis" at RedisAddr; with Target the
	// configuration in ConfigDir decides instead.
	Store     string
	RedisAddr string
	// SignatureAlgorithm ("rsa" or "ecdsa") and Sign (the policy's
	// saml.sign) for the SAML vendor; see ConfigOptions.
	SignatureAlgorithm string
	Sign               string
	// Organisers makes the bridge a hub of this many organisers (the
	// others generated, 30 vendors each); logins go to the first. 0 or 1:
	// the demo's one organiser.
	Organisers int
	// KeepLimits keeps the default per-client and per-vendor request
	// limits in the bridge's configuration (see ConfigOptions).
	KeepLimits bool
	// Concurrency lists closed-loop phases: that many browsers, each
	// starting its next login when the last one ends, for Duration.
	Concurrency []int
	Duration    time.Duration
	// Rate, when positive, replaces the closed-loop phases with one
	// open-loop phase: logins start at Rate per second whatever the
	// bridge's answers, each in a fresh browser.
	Rate float64
	// Overload measures capacity (the best closed-loop rate), then offers
	// twice that rate open-loop for Duration.
	Overload bool
	// Soak makes the Rate phase a soak: the bridge's resident memory and
	// goroutines are sampled every SoakEvery (default 10s) and judged for
	// a steady state. MetricsURL is a target bridge's /metrics, for its
	// goroutines and its handlers' latency histogram (--serve sets it).
	Soak       bool
	SoakEvery  time.Duration
	MetricsURL string
	// CheckEvery, above 1, has the SAML vendor check only every
	// CheckEvery-th response in full (crewjam/saml: decryption,
	// signatures, audience, times) and glance at the others (status,
	// destination, InResponseTo), to leave more CPU to the bridge when
	// the load generator shares its machine.
	CheckEvery int
	// MaxOpenInFlight bounds the logins an open-loop phase keeps in
	// flight (default DefaultMaxOpenInFlight); arrivals beyond it are
	// counted as "dropped" errors, in the phase and in its soak sample.
	MaxOpenInFlight int
	// Timeout bounds one login (default 10s).
	Timeout time.Duration
	// Target is the URL of a bridge running in another process from the
	// configuration WriteConfig wrote to ConfigDir. TargetPID, when set,
	// is that process's id, for its CPU time and memory.
	Target    string
	ConfigDir string
	TargetPID int
	// Serve starts `skolbro serve` in its own process from a configuration
	// written for the run, drives it as with Target and reports its CPU
	// time per login from its own accounting. ServeCommand replaces the
	// command that starts it (default: this executable, "serve"); the
	// bench appends --config and --drain-delay.
	Serve        bool
	ServeCommand []string
	// ServeCPUs, with Serve, limits the serve process to this many CPUs
	// (a cgroup CPU quota), so that the load generator, which costs more
	// per login than the bridge, can still overload it on a machine they
	// share: for --overload. Needs a writable cgroup (root).
	ServeCPUs float64
	// JSON prints the result as JSON instead of tables.
	JSON bool
	// CPUProfile writes the CPU profile of the load phases to this file
	// (one file per phase, numbered, when there are several).
	CPUProfile string
	// Signatures is how many signatures to time; Calibration how many
	// logins to run one at a time for the per-handler cost (in-process
	// only). Zero means the default; negative skips.
	Signatures  int
	Calibration int
	// Progress receives one line per step while the bench runs.
	Progress io.Writer
}

func (o *Options) defaults() error {
	if o.Protocol == "" {
		o.Protocol = "saml"
	}
	if o.World == "" {
		o.World = WorldRealistic
	}
	if o.Store == "" {
		o.Store = "memory"
	}
	if o.RedisAddr == "" {
		o.RedisAddr = DefaultRedisAddr
	}
	if len(o.Concurrency) == 0 {
		o.Concurrency = []int{8}
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Signatures == 0 {
		o.Signatures = DefaultSignatures
	}
	if o.Calibration == 0 {
		o.Calibration = DefaultCalibration
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.SoakEvery == 0 {
		o.SoakEvery = DefaultSoakEvery
	}
	if o.MaxOpenInFlight <= 0 {
		o.MaxOpenInFlight = DefaultMaxOpenInFlight
	}
	var errs []error
	if o.Soak && o.Rate <= 0 {
		errs = append(errs, errors.New("--soak needs --rate: a soak offers a fixed rate"))
	}
	if o.Soak && o.Overload {
		errs = append(errs, errors.New("--soak and --overload are separate runs"))
	}
	if o.SoakEvery < 0 || (o.Soak && o.SoakEvery*3 > o.Duration) {
		errs = append(errs, errors.New("--soak-every must be positive and at most a third of --duration"))
	}
	if o.Protocol != "saml" && o.Protocol != "oidc" {
		errs = append(errs, errors.New("--protocol must be saml or oidc"))
	}
	for _, c := range o.Concurrency {
		if c < 1 || c > 100000 {
			errs = append(errs, errors.New("--concurrency must be between 1 and 100000"))
			break
		}
	}
	if o.ServeCPUs < 0 || (o.ServeCPUs > 0 && !o.Serve) {
		errs = append(errs, errors.New("--serve-cpus goes with --serve and must be positive"))
	}
	if o.CheckEvery < 0 {
		errs = append(errs, errors.New("--check-every cannot be negative"))
	}
	if o.CheckEvery > 1 && o.Protocol == "oidc" {
		errs = append(errs, errors.New("--check-every is for the SAML vendor: the OIDC vendor checks every login in full"))
	}
	if o.MetricsURL != "" && o.Target == "" {
		errs = append(errs, errors.New("--metrics goes with --target (--serve finds the bridge's /metrics itself)"))
	}
	if o.Duration < 0 || o.Timeout < 0 || o.Rate < 0 {
		errs = append(errs, errors.New("--duration, --timeout and --rate cannot be negative"))
	}
	if o.Target != "" && o.ConfigDir == "" {
		errs = append(errs, errors.New("--target needs --config-dir (the directory --write-config prepared)"))
	}
	if o.Target == "" && o.TargetPID != 0 {
		errs = append(errs, errors.New("--target-pid needs --target"))
	}
	if o.Serve && o.Target != "" {
		errs = append(errs, errors.New("--serve starts its own bridge: leave out --target"))
	}
	if err := (ConfigOptions{World: o.World, Store: o.Store, SignatureAlgorithm: o.SignatureAlgorithm, Sign: o.Sign}).check(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Result is everything a run measured.
type Result struct {
	// World is the world the logins ran in (WorldRealistic or WorldLight).
	World    string `json:"world"`
	Protocol string `json:"protocol"`
	Store    string `json:"store"`
	// Bridge is "in-process" or the target URL.
	Bridge string `json:"bridge"`
	Machine
	LoadAfter float64 `json:"load_avg_after"`
	// ServeCPUs is Options.ServeCPUs when set.
	ServeCPUs float64 `json:"serve_cpus,omitempty"`
	// CheckEvery is Options.CheckEvery when above 1.
	CheckEvery int `json:"vendor_check_every,omitempty"`

	Signature *SignatureCost `json:"signature,omitempty"`
	// SignaturesPerLogin is how many XML signatures the bridge makes per
	// login for the SAML vendor (its policy's saml.sign); 0 for OIDC.
	SignaturesPerLogin int          `json:"signatures_per_login"`
	Calibration        *Calibration `json:"calibration,omitempty"`
	// StoreRecords are the records the bridge wrote during the run
	// (in-process only).
	StoreRecords []StoreRecord `json:"store_records,omitempty"`
	Pending      *PendingCost  `json:"pending,omitempty"`
	Phases       []Phase       `json:"phases"`
	// Soak is the soak's samples and verdicts (with Options.Soak).
	Soak  *Soak    `json:"soak,omitempty"`
	Notes []string `json:"notes,omitempty"`
}

// Calibration is the bridge handlers' own cost, measured with logins run
// one at a time: CPU time of the handler's thread and allocations around
// each handler call (in-process only).
type Calibration struct {
	Logins         int                     `json:"logins"`
	CPUMicros      float64                 `json:"cpu_us_per_login"`
	WallMicros     float64                 `json:"wall_us_per_login"`
	Allocs         float64                 `json:"allocs_per_login"`
	AllocBytes     float64                 `json:"alloc_bytes_per_login"`
	SignatureRatio float64                 `json:"cpu_per_signature"`
	Endpoints      map[string]EndpointCost `json:"endpoints"`
	CPUAvailable   bool                    `json:"cpu_available"`
}

// EndpointCost is one bridge endpoint's cost per call.
type EndpointCost struct {
	Calls      int     `json:"calls"`
	CPUMicros  float64 `json:"cpu_us"`
	WallMicros float64 `json:"wall_us"`
	Allocs     float64 `json:"allocs"`
	AllocBytes float64 `json:"alloc_bytes"`
}

// PendingCost is what one login waiting for the school IdP holds in the
// store.
type PendingCost struct {
	// KeyValueBytes is the key and value as written.
	KeyValueBytes float64 `json:"key_value_bytes"`
	// MemoryStoreBytes is the live heap one such record takes in the
	// memory store, bookkeeping included.
	MemoryStoreBytes float64 `json:"memory_store_bytes,omitempty"`
	// RedisMemoryUsage is Redis's MEMORY USAGE of pending keys (average).
	RedisMemoryUsage float64 `json:"redis_memory_usage,omitempty"`
}

// Phase is one load phase.
type Phase struct {
	// Mode is "closed" (fixed concurrency), "open" (fixed arrival rate) or
	// "overload" (open at twice the measured capacity).
	Mode        string  `json:"mode"`
	Concurrency int     `json:"concurrency,omitempty"`
	OfferedRate float64 `json:"offered_per_s,omitempty"`
	Seconds     float64 `json:"seconds"`
	// Logins completed successfully, and failures by class (429, 503,
	// 4xx, 5xx, timeout, transport, bad_page, dropped).
	Logins int            `json:"logins"`
	Errors map[string]int `json:"errors,omitempty"`
	// FirstErrors holds, for each failure class but the HTTP statuses
	// (transport, timeout, bad_page...), the first such error's text: the
	// step it failed at and the cause, without the request's URL.
	FirstErrors     map[string]string `json:"first_errors,omitempty"`
	LoginsPerSecond float64           `json:"logins_per_s"`
	// LateLogins completed after an open-loop phase's window (not counted
	// in LoginsPerSecond).
	LateLogins int `json:"late_logins,omitempty"`
	// Login is the latency of whole successful logins.
	Login Percentiles `json:"login"`
	// BridgeServer is the time spent in the bridge's handlers, measured
	// server-side: in-process by the bench's own meter; for a bridge in
	// its own process (with its /metrics URL) from the bridge's request
	// duration histogram, interpolated within its buckets and without Max
	// (BridgeServerFrom says which). BridgeClient is the time to the
	// response headers of each bridge request, measured by the browsers.
	BridgeServer     map[string]Percentiles `json:"bridge_server,omitempty"`
	BridgeServerFrom string                 `json:"bridge_server_from,omitempty"`
	BridgeClient     map[string]Percentiles `json:"bridge_client,omitempty"`
	// ProcessCPUMicros is this process's CPU time per login (bridge, IdP,
	// vendors and browsers when in-process).
	ProcessCPUMicros float64 `json:"process_cpu_us_per_login"`
	// BridgeCPULow/High estimate the bridge's CPU time per login from
	// the profile: Low counts only samples labelled as the bridge's, High
	// also gives the bridge its proportional part of unattributed runtime
	// work (mostly garbage collection).
	BridgeCPULowMicros  float64 `json:"bridge_cpu_us_low,omitempty"`
	BridgeCPUHighMicros float64 `json:"bridge_cpu_us_high,omitempty"`
	// TargetCPUMicros is the target process's CPU time per login (with
	// TargetPID).
	TargetCPUMicros float64 `json:"target_cpu_us_per_login,omitempty"`
	// TargetSwitches is the target process's context switches per login,
	// all its threads together: the Go runtime's thread hand-offs
	// (blocking syscalls such as the release log's fsync, network wake-
	// ups, sysmon) cost much in a virtual machine.
	TargetSwitches float64 `json:"target_context_switches_per_login,omitempty"`
	// TargetPerGenerator is TargetCPU divided by this process's CPU per
	// login, the load generator's alone when the bridge is a process of
	// its own. The generator does the same work per login in every run,
	// so the quotient compares runs across a machine's drift (a shared
	// virtual machine varies by ±15% between identical runs; this
	// quotient by about ±1%).
	TargetPerGenerator float64 `json:"target_per_generator_cpu,omitempty"`
	// SignatureRatio is the bridge's CPU per login (TargetCPU, else
	// BridgeCPUHigh) divided by the CPU of one signature.
	SignatureRatio float64 `json:"cpu_per_signature,omitempty"`
	// BridgeCapacity estimates the logins per second the bridge alone
	// could serve on all of this machine's CPUs: CPUs divided by its CPU
	// per login (TargetCPU, else BridgeCPUHigh). An upper bound: it
	// assumes perfect scaling and nothing else running.
	BridgeCapacity float64   `json:"bridge_capacity_estimate_per_s,omitempty"`
	CPU            *CPUShare `json:"cpu_profile,omitempty"`
	// Allocs and AllocBytes per login, for this whole process.
	Allocs     float64 `json:"allocs_per_login"`
	AllocBytes float64 `json:"alloc_bytes_per_login"`
	GCs        uint32  `json:"gcs"`
	// PeakHeap is this process's largest sampled heap; PeakRSS the largest
	// sampled resident set of the bridge's process (this one in-process).
	PeakHeap uint64 `json:"peak_heap_bytes"`
	PeakRSS  uint64 `json:"peak_rss_bytes,omitempty"`
	// PeakBridgeInFlight is the most requests inside the bridge's handler
	// at once (in-process); PeakLoginsInFlight the most logins under way.
	PeakBridgeInFlight int64 `json:"peak_bridge_in_flight,omitempty"`
	PeakLoginsInFlight int64 `json:"peak_logins_in_flight"`
}

// Run runs the bench and prints the result to stdout.
func Run(ctx context.Context, opts Options, stdout io.Writer) error {
	res, err := run(ctx, opts)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(stdout, res)
	}
	return writeTables(stdout, res)
}

// runner holds a run's parts.
type runner struct {
	opts   Options
	w      *world
	br     *bridge // nil with Target
	signer *xmlsig.Signer
	res    *Result
}

func (r *runner) progress(format string, args ...any) {
	fmt.Fprintf(r.opts.Progress, "bench: "+format+"\n", args...)
}

func run(ctx context.Context, opts Options) (*Result, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	r := &runner{opts: opts, res: &Result{
		World: opts.World, Protocol: opts.Protocol, Store: opts.Store, Bridge: "in-process",
		Machine: thisMachine(),
	}}
	if opts.CheckEvery > 1 {
		r.res.CheckEvery = opts.CheckEvery
	}
	r.res.ServeCPUs = opts.ServeCPUs
	cleanup, err := r.setup(ctx)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		return nil, err
	}
	if err := r.w.connect(ctx); err != nil {
		return nil, err
	}
	if opts.Protocol == "saml" {
		n, err := r.w.signaturesPerLogin()
		if err != nil {
			return nil, err
		}
		r.res.SignaturesPerLogin = n
	}
	// One login first: a bench that cannot log in has nothing to measure.
	if err := r.w.login(ctx, newBrowser(r.w.rt), opts.Protocol); err != nil {
		return nil, fmt.Errorf("bench: the first login failed: %w", err)
	}
	r.progress("warming up")
	r.closedLoop(ctx, opts.Concurrency[0], warmUpFor(opts.Duration))
	if r.br != nil && opts.Calibration > 0 {
		r.progress("calibrating: %d logins one at a time", opts.Calibration)
		if err := r.calibrate(ctx); err != nil {
			return nil, err
		}
	}
	if err := r.measurePending(ctx); err != nil {
		r.res.Notes = append(r.res.Notes, "store per pending login not measured: "+err.Error())
	}
	if opts.Signatures > 0 {
		r.progress("timing %d signatures", opts.Signatures)
		sc, err := measureSignature(r.signer, opts.Signatures)
		if err != nil {
			return nil, fmt.Errorf("bench: signature: %w", err)
		}
		r.res.Signature = &sc
		if c := r.res.Calibration; c != nil && sc.CPUMicros > 0 {
			c.SignatureRatio = c.CPUMicros / sc.CPUMicros
		}
	}

	if r.br != nil {
		// Count store writes of the measured phases only.
		r.br.store.resetCounts()
	}
	var best float64
	if opts.Rate > 0 {
		mode := "open"
		if opts.Soak {
			mode = modeSoak
			r.progress("soak: open loop at %.0f logins/s for %v, sampling the bridge every %v", opts.Rate, opts.Duration, opts.SoakEvery)
		} else {
			r.progress("open loop at %.0f logins/s for %v", opts.Rate, opts.Duration)
		}
		p := r.phase(ctx, mode, 0, opts.Rate)
		r.res.Phases = append(r.res.Phases, p)
		best = p.LoginsPerSecond
	} else {
		for _, c := range opts.Concurrency {
			r.progress("closed loop, %d browsers for %v", c, opts.Duration)
			p := r.phase(ctx, "closed", c, 0)
			r.res.Phases = append(r.res.Phases, p)
			best = max(best, p.LoginsPerSecond)
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if opts.Overload {
		if best <= 0 {
			return nil, errors.New("bench: no capacity measured: no login succeeded")
		}
		r.progress("overload: offering %.0f logins/s (twice the capacity of %.0f) for %v", 2*best, best, opts.Duration)
		r.res.Phases = append(r.res.Phases, r.phase(ctx, "overload", 0, 2*best))
	}
	if r.br != nil {
		total := 0
		for _, p := range r.res.Phases {
			total += p.Logins + p.LateLogins
		}
		r.res.StoreRecords = r.br.store.records(total)
	}
	r.res.LoadAfter = loadAvg()
	r.notes()
	return r.res, ctx.Err()
}

// setup builds the world, and the bridge when it runs in this process.
func (r *runner) setup(ctx context.Context) (func(), error) {
	if r.opts.Serve {
		return r.setupServe(ctx)
	}
	return r.setupWorld()
}

// setupServe writes a configuration, starts `skolbro serve` from it and
// points the run at it as --target and --target-pid would.
func (r *runner) setupServe(ctx context.Context) (func(), error) {
	o := r.opts
	command := o.ServeCommand
	if len(command) == 0 {
		c, err := serveCommand()
		if err != nil {
			return nil, err
		}
		command = c
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "skolbro-bench-")
	if err != nil {
		return nil, err
	}
	maddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	base := "http://" + addr
	r.progress("starting skolbro serve at %s (TEST ONLY keys in %s)", base, dir)
	co := ConfigOptions{World: o.World, Store: o.Store, RedisAddr: o.RedisAddr, SignatureAlgorithm: o.SignatureAlgorithm, Sign: o.Sign,
		KeepLimits: o.KeepLimits, Organisers: o.Organisers, MetricsListen: maddr}
	if err := WriteConfig(dir, base, co); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	srv, err := startServe(ctx, command, dir, base)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	unlimit := func() {}
	if o.ServeCPUs > 0 {
		if unlimit, err = limitCPU(srv.pid(), o.ServeCPUs); err != nil {
			srv.stop()
			os.RemoveAll(dir)
			return nil, err
		}
		r.progress("serve limited to %g CPUs (cgroup CPU quota)", o.ServeCPUs)
	}
	cleanup := func() {
		srv.stop()
		unlimit()
		os.RemoveAll(dir)
	}
	r.opts.Target, r.opts.ConfigDir, r.opts.TargetPID = base, dir, srv.pid()
	r.opts.MetricsURL = "http://" + maddr + "/metrics"
	if _, err := r.setupWorld(); err != nil {
		return cleanup, err
	}
	r.res.Bridge = base + " (skolbro serve started by the bench)"
	return cleanup, nil
}

// setupWorld builds the world, and the bridge when it runs in this
// process.
func (r *runner) setupWorld() (func(), error) {
	o := r.opts
	if o.Target != "" {
		t, err := url.Parse(o.Target)
		if err != nil || (t.Scheme != "http" && t.Scheme != "https") || t.Host == "" {
			return nil, errors.New("bench: --target must be an http(s) URL")
		}
		w, err := loadWorld(o.ConfigDir, t)
		if err != nil {
			return nil, err
		}
		r.w = w
		w.checkEvery = uint64(max(o.CheckEvery, 1))
		r.res.World = w.kind
		r.res.Bridge = t.Scheme + "://" + t.Host
		r.res.Store = w.cfg.Store.Type
		keyPair := w.cfg.Organisers[0].Keys.Signing
		if k := w.cfg.Organisers[0].Keys.SigningECDSA; k != nil {
			keyPair = *k
		}
		p, err := keys.Load(w.cfg.Path(keyPair.Cert), w.cfg.Path(keyPair.Key))
		if err != nil {
			return nil, fmt.Errorf("bench: the bridge's signing key: %w", err)
		}
		r.signer, err = xmlsig.NewSigner(p)
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "skolbro-bench-")
	if err != nil {
		ln.Close()
		return nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	base := "http://" + ln.Addr().String()
	r.progress("setting up the IdP, the vendors and the bridge at %s (TEST ONLY keys in %s)", base, dir)
	co := ConfigOptions{World: o.World, Store: o.Store, RedisAddr: o.RedisAddr, SignatureAlgorithm: o.SignatureAlgorithm, Sign: o.Sign, KeepLimits: o.KeepLimits, Organisers: o.Organisers}
	if err := WriteConfig(dir, base, co); err != nil {
		ln.Close()
		return cleanup, err
	}
	if r.w, err = loadWorld(dir, nil); err != nil {
		ln.Close()
		return cleanup, err
	}
	r.w.checkEvery = uint64(max(o.CheckEvery, 1))
	if r.br, err = startBridge(r.w.cfg, ln); err != nil {
		ln.Close()
		return cleanup, err
	}
	r.signer = r.br.signer
	return func() {
		r.br.close()
		cleanup()
	}, nil
}

// outcome collects a phase's logins.
type outcome struct {
	lat      latencies
	mu       sync.Mutex
	ok, late int
	errs     map[string]int
	first    map[string]string // the first error of each class without a status
	nerrs    int
	// win holds the latencies since the last window call (soak only).
	win      []time.Duration
	windowed bool
	inFlight atomic.Int64
	peak     atomic.Int64
}

func newOutcome() *outcome { return &outcome{errs: map[string]int{}, first: map[string]string{}} }

func (o *outcome) begin() {
	n := o.inFlight.Add(1)
	for {
		p := o.peak.Load()
		if n <= p || o.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (o *outcome) end(d time.Duration, err error, late bool) {
	o.inFlight.Add(-1)
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case err != nil:
		class := errorClass(err)
		o.errs[class]++
		o.nerrs++
		var se *stepError
		if _, seen := o.first[class]; !seen && (!errors.As(err, &se) || se.status == 0) {
			o.first[class] = err.Error()
		}
	case late:
		o.late++
	default:
		o.ok++
	}
	if err == nil {
		o.lat.add(d)
		if o.windowed {
			o.win = append(o.win, d)
		}
	}
}

// drop records a login the open loop did not start (too many in flight),
// as an error of its own class that the soak's samples count too.
func (o *outcome) drop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.errs["dropped"]++
	o.nerrs++
}

// counts returns the logins completed and failed so far.
func (o *outcome) counts() (ok, errs int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ok + o.late, o.nerrs
}

// window returns the logins completed and failed so far, and the
// latencies of those completed since the last call.
func (o *outcome) window() (ok, errs int, win []time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	win, o.win = o.win, nil
	return o.ok + o.late, o.nerrs, win
}

// one runs one login in b and records it.
func (r *runner) one(ctx context.Context, b *browser, out *outcome, windowEnd time.Time) {
	out.begin()
	lctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	start := time.Now()
	err := r.w.login(lctx, b, r.opts.Protocol)
	cancel()
	end := time.Now()
	out.end(end.Sub(start), err, !windowEnd.IsZero() && end.After(windowEnd))
}

// closedLoop runs n browsers, each starting its next login as soon as the
// last one ended, until d has passed.
func (r *runner) closedLoop(ctx context.Context, n int, d time.Duration) *outcome {
	out := newOutcome()
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			pprof.Do(ctx, pprof.Labels(labelComponent, compClient), func(ctx context.Context) {
				b := newBrowser(r.w.rt)
				for ctx.Err() == nil && time.Now().Before(deadline) {
					r.one(ctx, b, out, time.Time{})
				}
			})
		})
	}
	wg.Wait()
	return out
}

// openLoop starts logins at rate per second for d, each in a fresh
// browser, whatever the bridge answers, records them in out, and waits
// for them to end.
func (r *runner) openLoop(ctx context.Context, out *outcome, rate float64, d time.Duration) {
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	pprof.Do(ctx, pprof.Labels(labelComponent, compClient), func(ctx context.Context) {
		t := time.NewTimer(0)
		defer t.Stop()
		for i := 0; ctx.Err() == nil; i++ {
			at := start.Add(time.Duration(i) * interval)
			if !at.Before(end) {
				break
			}
			if wait := time.Until(at); wait > 0 {
				t.Reset(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					continue
				}
			}
			if out.inFlight.Load() >= int64(r.opts.MaxOpenInFlight) {
				out.drop()
				continue
			}
			wg.Go(func() { r.one(ctx, newBrowser(r.w.rt), out, end) })
		}
	})
	wg.Wait()
}

// phase runs one load phase and measures it.
func (r *runner) phase(ctx context.Context, mode string, conc int, rate float64) Phase {
	p := Phase{Mode: mode, Concurrency: conc, OfferedRate: rate}
	r.w.rt.hops.reset()
	if r.br != nil {
		r.br.meter.lat.reset()
		r.br.meter.peak.Store(0)
	}
	runtime.GC()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var prof bytes.Buffer
	profiling := pprof.StartCPUProfile(&prof) == nil
	cpu0, cpuOK0 := processCPU()
	pid0, pidOK0 := pidCPU(r.opts.TargetPID)
	sw0, swOK0 := pidSwitches(r.opts.TargetPID)
	hist0, histOK0 := r.scrapeBridge(ctx)
	stop := make(chan struct{})
	peaks := make(chan [2]uint64, 1)
	go r.samplePeaks(stop, peaks)

	var soakStop chan struct{}
	var soakDone chan []SoakSample
	out := newOutcome()
	if mode == modeSoak {
		out.windowed = true
		soakStop, soakDone = make(chan struct{}), make(chan []SoakSample, 1)
		go r.soakSampler(ctx, out, r.opts.SoakEvery, soakStop, soakDone)
	}
	start := time.Now()
	if rate > 0 {
		r.openLoop(ctx, out, rate, r.opts.Duration)
	} else {
		out = r.closedLoop(ctx, conc, r.opts.Duration)
	}
	elapsed := time.Since(start)
	if soakStop != nil {
		close(soakStop)
		s := &Soak{EverySeconds: r.opts.SoakEvery.Seconds(), Samples: <-soakDone, Source: r.soakSource()}
		judgeSoak(s, r.opts.Duration)
		r.res.Soak = s
	}

	cpu1, cpuOK1 := processCPU()
	pid1, pidOK1 := pidCPU(r.opts.TargetPID)
	sw1, swOK1 := pidSwitches(r.opts.TargetPID)
	hist1, histOK1 := r.scrapeBridge(ctx)
	if profiling {
		pprof.StopCPUProfile()
	}
	close(stop)
	pk := <-peaks
	runtime.ReadMemStats(&ms1)

	p.Seconds = elapsed.Seconds()
	window := elapsed
	if rate > 0 {
		window = r.opts.Duration
	}
	p.Logins, p.LateLogins, p.Errors, p.FirstErrors = out.ok, out.late, out.errs, out.first
	if len(p.Errors) == 0 {
		p.Errors = nil
	}
	if len(p.FirstErrors) == 0 {
		p.FirstErrors = nil
	}
	p.LoginsPerSecond = float64(out.ok) / window.Seconds()
	p.Login = out.lat.summary()
	p.PeakLoginsInFlight = out.peak.Load()
	p.PeakHeap, p.PeakRSS = pk[0], pk[1]
	switch {
	case r.br != nil:
		p.BridgeServer, p.BridgeServerFrom = r.br.meter.lat.summary(), fromMeter
		p.PeakBridgeInFlight = r.br.meter.peak.Load()
	case histOK0 && histOK1:
		if h := handlerPercentiles(hist0, hist1); len(h) > 0 {
			p.BridgeServer, p.BridgeServerFrom = h, fromHistogram
		}
	}
	p.BridgeClient = r.w.rt.hops.summary()
	p.GCs = ms1.NumGC - ms0.NumGC
	done := out.ok + out.late
	if done == 0 {
		return p
	}
	n := float64(done)
	p.Allocs = float64(ms1.Mallocs-ms0.Mallocs) / n
	p.AllocBytes = float64(ms1.TotalAlloc-ms0.TotalAlloc) / n
	proc := time.Duration(0)
	if cpuOK0 && cpuOK1 {
		proc = cpu1 - cpu0
		p.ProcessCPUMicros = float64(proc.Microseconds()) / n
	}
	if profiling {
		if r.opts.CPUProfile != "" {
			if err := os.WriteFile(r.profileFile(), prof.Bytes(), 0o600); err != nil {
				r.res.Notes = append(r.res.Notes, "CPU profile not written: "+err.Error())
			}
		}
		if cp, err := parseProfile(prof.Bytes()); err == nil {
			s := cp.shares(15)
			p.CPU = &s
			if b := s.Components[compBridge]; r.br != nil && b > 0 && proc > 0 {
				un := s.Components[unattributed]
				p.BridgeCPULowMicros = float64(proc.Microseconds()) * b / n
				if un < 1 {
					p.BridgeCPUHighMicros = float64(proc.Microseconds()) * b / (1 - un) / n
				}
			}
		}
	}
	if pidOK0 && pidOK1 {
		p.TargetCPUMicros = float64((pid1 - pid0).Microseconds()) / n
		if p.ProcessCPUMicros > 0 {
			p.TargetPerGenerator = p.TargetCPUMicros / p.ProcessCPUMicros
		}
	}
	if swOK0 && swOK1 && sw1 >= sw0 {
		p.TargetSwitches = float64(sw1-sw0) / n
	}
	bridgeCPU := p.BridgeCPUHighMicros
	if p.TargetCPUMicros > 0 {
		bridgeCPU = p.TargetCPUMicros
	}
	if bridgeCPU > 0 {
		p.BridgeCapacity = r.res.bridgeCPUs() * 1e6 / bridgeCPU
		if sig := r.res.Signature; sig != nil && sig.CPUMicros > 0 {
			p.SignatureRatio = bridgeCPU / sig.CPUMicros
		}
	}
	return p
}

// bridgeCPUs is how many CPUs the bridge may use: all of the machine's,
// or its limit.
func (res *Result) bridgeCPUs() float64 {
	if res.ServeCPUs > 0 {
		return min(res.ServeCPUs, float64(res.CPUs))
	}
	return float64(res.CPUs)
}

func (r *runner) profileFile() string {
	n := len(r.res.Phases) + 1
	if n == 1 {
		return r.opts.CPUProfile
	}
	ext := filepath.Ext(r.opts.CPUProfile)
	return fmt.Sprintf("%s.%d%s", strings.TrimSuffix(r.opts.CPUProfile, ext), n, ext)
}

// samplePeaks samples this process's heap and the bridge process's
// resident set every 100 ms until stop is closed.
func (r *runner) samplePeaks(stop <-chan struct{}, out chan<- [2]uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var heap, res uint64
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			heap = max(heap, sample[0].Value.Uint64())
		}
		if r.br != nil || r.opts.TargetPID != 0 {
			if cur, _, ok := rss(r.opts.TargetPID); ok {
				res = max(res, cur)
			}
		}
		select {
		case <-stop:
			out <- [2]uint64{heap, res}
			return
		case <-t.C:
		}
	}
}

// calibrate runs logins one at a time with the meter measuring each
// bridge handler call.
func (r *runner) calibrate(ctx context.Context) error {
	m := r.br.meter
	m.calibrate.Store(true)
	defer m.calibrate.Store(false)
	b := newBrowser(r.w.rt)
	for range r.opts.Calibration {
		lctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
		err := r.w.login(lctx, b, r.opts.Protocol)
		cancel()
		if err != nil {
			return fmt.Errorf("bench: calibration login: %w", err)
		}
	}
	costs := m.calibration()
	c := &Calibration{Logins: r.opts.Calibration, Endpoints: map[string]EndpointCost{}}
	_, c.CPUAvailable = threadCPU()
	n := float64(r.opts.Calibration)
	for ep, hc := range costs {
		calls := float64(hc.n)
		c.Endpoints[ep] = EndpointCost{Calls: hc.n, CPUMicros: us(hc.cpu) / calls, WallMicros: us(hc.wall) / calls,
			Allocs: float64(hc.mallocs) / calls, AllocBytes: float64(hc.bytes) / calls}
		c.CPUMicros += us(hc.cpu) / n
		c.WallMicros += us(hc.wall) / n
		c.Allocs += float64(hc.mallocs) / n
		c.AllocBytes += float64(hc.bytes) / n
	}
	r.res.Calibration = c
	return nil
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

// measurePending measures what one pending login holds in the store.
func (r *runner) measurePending(ctx context.Context) error {
	pc := &PendingCost{}
	if r.br != nil {
		v, keyLen := r.br.store.pendingSample()
		if v == nil {
			return errors.New("no pending login was written")
		}
		pc.KeyValueBytes = float64(keyLen + len(v))
		if r.br.redis == nil {
			b, err := memoryBytesPerEntry(v, keyLen, 20000)
			if err != nil {
				return err
			}
			pc.MemoryStoreBytes = b
		}
	}
	var rs *store.Redis
	switch {
	case r.br != nil && r.br.redis != nil:
		rs = r.br.redis
	case r.br == nil && r.w.cfg.Store.Type == "redis":
		c := r.w.cfg.Store.Redis
		s, err := store.NewRedisFromConfig(c.Addrs, "", "", c.DB, "", nil, c.Prefix)
		if err != nil {
			return err
		}
		defer s.Close()
		rs = s
	}
	if rs != nil {
		usage, kv, err := r.redisPending(ctx, rs)
		if err != nil {
			return err
		}
		pc.RedisMemoryUsage = usage
		if pc.KeyValueBytes == 0 {
			pc.KeyValueBytes = kv
		}
	}
	if pc.KeyValueBytes == 0 {
		return errors.New("only measurable in-process or with Redis")
	}
	r.res.Pending = pc
	return nil
}

// redisPending starts a few logins without finishing them and asks Redis
// what their pending records take (MEMORY USAGE: key, value, expiry and
// Redis's own overhead).
func (r *runner) redisPending(ctx context.Context, rs *store.Redis) (usage, keyValue float64, err error) {
	const n = 10
	b := newBrowser(r.w.rt)
	for range n {
		if err := r.w.startOnly(ctx, b, r.opts.Protocol); err != nil {
			return 0, 0, err
		}
	}
	c := rs.Client()
	var keys []string
	iter := c.Scan(ctx, 0, rs.Prefix()+pendingClass+":*", 1000).Iterator()
	for iter.Next(ctx) && len(keys) < 50 {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return 0, 0, err
	}
	if len(keys) == 0 {
		return 0, 0, errors.New("no pending key found in Redis")
	}
	var total, kv int64
	for _, k := range keys {
		u, err := c.MemoryUsage(ctx, k).Result()
		if err != nil {
			return 0, 0, err
		}
		l, err := c.StrLen(ctx, k).Result()
		if err != nil {
			return 0, 0, err
		}
		total += u
		kv += l + int64(len(k)-len(rs.Prefix()))
	}
	return float64(total) / float64(len(keys)), float64(kv) / float64(len(keys)), nil
}

// Machine is what a report says of the machine it ran on.
type Machine struct {
	CPUs       int     `json:"cpus"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	GoVersion  string  `json:"go_version"`
	LoadBefore float64 `json:"load_avg_before"`
}

// thisMachine describes this machine now, before a run.
func thisMachine() Machine {
	return Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), LoadBefore: loadAvg()}
}

// line is the report's "machine:" line.
func (m Machine) line() string {
	return fmt.Sprintf("machine: %d CPUs (GOMAXPROCS %d), %s, load average %.2f before the run\n", m.CPUs, m.GOMAXPROCS, m.GoVersion, m.LoadBefore)
}

// warmUpFor is how long the load runs unmeasured before phases of d:
// connections are opened and caches filled.
func warmUpFor(d time.Duration) time.Duration {
	return min(max(d/5, 500*time.Millisecond), 3*time.Second)
}

func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	fmt.Sscanf(string(b), "%f", &l)
	return l
}

// notes say what the figures include and what they do not.
func (r *runner) notes() {
	add := func(s string) { r.res.Notes = append(r.res.Notes, s) }
	if r.br != nil {
		add("The bridge shares this process, and its CPUs, with the IdP, the vendors and the browsers: logins/s is what the whole chain achieves on this machine, not the bridge alone. The bridge's CPU per login is estimated from profiler labels (low: labelled samples only; high: plus its proportional part of unattributed runtime work such as garbage collection); calibration measures its handlers' thread CPU with one login at a time.")
		add("Allocations per login and peak heap are for the whole process.")
	} else if r.opts.TargetPID == 0 {
		add("The bridge is another process: pass --target-pid for its CPU time and resident memory.")
	}
	// The load average after a run includes the run itself: only the one
	// before says whether others were using the machine.
	if l := r.res.LoadBefore; l > 0.5*float64(r.res.CPUs) {
		add(fmt.Sprintf("The machine was busy before the run (load average %.2f on %d CPUs): figures are lower than on a quiet machine.", l, r.res.CPUs))
	}
}
