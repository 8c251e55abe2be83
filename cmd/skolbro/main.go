// Command skolbro is the identity bridge between a school organiser's IdP
// and its vendors. Subcommands: serve, check, demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/app"
	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/bench"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/metrics"
	"github.com/skolbro/skolbro/internal/protection"
	"github.com/skolbro/skolbro/internal/ratelimit"
	"github.com/skolbro/skolbro/internal/server"
	"github.com/skolbro/skolbro/internal/store"
)

const usage = `skolbro: an identity bridge for schools

Usage:
  skolbro serve --config FILE   run the bridge
  skolbro check --config FILE   check configuration, metadata and release policies
  skolbro demo [--addr ADDR]    run a self-contained demo (test IdP, bridge, vendors)
  skolbro register --config FILE [--format csv|json]
                                the release register: what each vendor receives, and why
  skolbro audit subject --config FILE [--format csv|json]
                                what was released about one person (personal number on stdin)
  skolbro metadata --config FILE --out DIR
                                write the bridge's signed metadata (idp.xml, sp.xml) for a federation
  skolbro bench [--concurrency 8,32,128] [--duration 10s] [--store memory|redis] [--protocol saml|oidc]
                                load benchmark of whole logins (see README, Performance)
  skolbro protect add|remove|list|init --config FILE
                                the manual protection register (personal number on stdin)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return cmdServe(args[1:], stdout, stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "register":
		return cmdRegister(args[1:], stdout, stderr)
	case "metadata":
		return cmdMetadata(args[1:], stdout, stderr)
	case "bench":
		return bench.Command(args[1:], stdout, stderr)
	case "protect":
		if len(args) < 2 {
			fmt.Fprint(stderr, "usage: skolbro protect add|remove|list|init --config FILE\n")
			return 2
		}
		return cmdProtect(args[1], args[2:], os.Stdin, stdout, stderr)
	case "audit":
		if len(args) < 2 || args[1] != "subject" {
			fmt.Fprint(stderr, "usage: skolbro audit subject --config FILE [--format csv|json]\n")
			return 2
		}
		return cmdAuditSubject(args[2:], os.Stdin, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "skolbro: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "skolbro check: --config is required")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stdout, "error: %v\n", err)
		return 1
	}
	// check opens no store: a memory store stands in, so that the same
	// Build that serve runs checks everything else.
	_, rep := app.Build(cfg, store.NewMemory(nil), time.Now)
	for _, n := range rep.Notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(stdout, "error: %s\n", e)
	}
	if len(rep.Errors) > 0 {
		fmt.Fprintf(stdout, "%d error(s), %d warning(s)\n", len(rep.Errors), len(rep.Warnings))
		return 1
	}
	fmt.Fprintf(stdout, "ok: %d warning(s)\n", len(rep.Warnings))
	return 0
}

func newLogger(w io.Writer, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

func cmdServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file")
	drain := fs.Duration("drain-delay", 5*time.Second, "on SIGTERM, how long readiness fails before the listener closes")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "skolbro serve: --config is required")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %v\n", err)
		return 1
	}
	log := newLogger(stdout, cfg.LogLevel)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := metrics.New(reg)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %v\n", err)
		return 1
	}
	raw, err := app.OpenStore(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %v\n", err)
		return 1
	}
	// Whatever needs the Redis client itself (the protection register)
	// takes it from raw; the flows use the instrumented store.
	st := m.InstrumentStore(raw)
	lim := cfg.Limits
	clientIP, err := ratelimit.NewClientIP(lim.TrustedProxies, lim.ClientIPHeader)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %s: limits.trusted_proxies: %v\n", cfg.File(), err)
		return 1
	}
	clientLimit, err := ratelimit.New(lim.PerClientRPS, lim.Burst, ratelimit.WithMaxKeys(lim.MaxTrackedClients), ratelimit.OnReject(m.Refusal))
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %s: limits: %v\n", cfg.File(), err)
		return 1
	}
	vendorLimit, err := ratelimit.New(lim.PerVendorRPS, lim.Burst)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %s: limits: %v\n", cfg.File(), err)
		return 1
	}
	org, rep := app.Build(cfg, st, time.Now)
	if err := rep.Err(); err != nil {
		fmt.Fprintf(stderr, "skolbro: configuration has errors (run skolbro check):\n%v\n", err)
		return 1
	}
	for _, w := range rep.Warnings {
		log.Warn().Str("problem", w).Msg("configuration warning")
	}
	if org.Federation != nil {
		fedCtx, stopFed := context.WithCancel(context.Background())
		defer stopFed()
		go org.Federation.Run(fedCtx)
	}
	sink, err := app.OpenAudit(cfg, time.Now)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %s: organiser.audit: %v\n", cfg.File(), err)
		return 1
	}
	if sink != nil {
		defer sink.Close()
		org.Audit = sink
	}
	adminOpts := server.AdminOptions{Entitlement: cfg.Organiser.Admin.Entitlement}
	if cfg.Organiser.Audit.Dir != "" {
		adminOpts.AuditDir = cfg.Path(cfg.Organiser.Audit.Dir)
	}
	srv, err := server.New(server.Options{Organiser: org, Store: st, Logger: log,
		SecureCookies: strings.HasPrefix(cfg.ExternalURL, "https://"), Admin: adminOpts,
		Metrics: m, ClientLimit: clientLimit, ClientIP: clientIP, VendorLimit: vendorLimit,
		MaxInFlight: lim.MaxInFlight})
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %v\n", err)
		return 1
	}
	// Days left of each vendor's data processing agreement, for an alert
	// before logins to it are refused.
	daysLeft := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: audit.MetricAgreementDaysLeft,
		Help: "Days until the vendor's data processing agreement ends (negative: ended)."}, []string{"vendor"})
	reg.MustRegister(daysLeft)
	updateDaysLeft := func() {
		audit.UpdateAgreementGauge(func(v string, d float64) { daysLeft.WithLabelValues(v).Set(d) }, org.Policies.All(), time.Now())
	}
	updateDaysLeft()
	go func() {
		for range time.Tick(time.Hour) {
			updateDaysLeft()
		}
	}()
	// Key and metadata expiry, for alerts before they stop logins.
	m.SetKeyExpiry("signing", org.IdP.Signer.Pair().Cert.NotAfter)
	if org.IdP.NextSigningCert != nil {
		m.SetKeyExpiry("next_signing", org.IdP.NextSigningCert.NotAfter)
	}
	for i, c := range org.UpstreamCerts {
		m.SetKeyExpiry(fmt.Sprintf("upstream_signing_%d", i), c.NotAfter)
	}
	if cfg.MetricsListen != "" {
		// Internal only: /metrics is never on the public listener.
		ms := &http.Server{Addr: cfg.MetricsListen, Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := ms.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error().Err(err).Msg("metrics listener failed")
			}
		}()
	}
	return listenAndServe(cfg.Listen, srv.Handler(), log, nil, func() {
		srv.StartDrain()
		log.Info().Dur("drain_delay", *drain).Msg("draining: readiness fails, in-flight logins finish")
		time.Sleep(*drain)
	})
}

// listenAndServe runs h until SIGINT/SIGTERM, then shuts down gracefully:
// drain runs first (readiness fails while the listener still serves), then
// the listener closes and in-flight requests finish (up to 20 s).
func listenAndServe(addr string, h http.Handler, log zerolog.Logger, ready func(net.Addr), drain func()) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error().Err(err).Str("addr", addr).Msg("cannot listen")
		return 1
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Msg("listening")
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("server failed")
			return 1
		}
	case <-ctx.Done():
		log.Info().Msg("shutting down")
		if drain != nil {
			drain()
		}
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			log.Error().Err(err).Msg("shutdown")
			return 1
		}
	}
	return 0
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro demo: --addr: %v\n", err)
		return 2
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	base := "http://" + net.JoinHostPort(host, port)
	dir, err := os.MkdirTemp("", "skolbro-demo-")
	if err != nil {
		fmt.Fprintf(stderr, "skolbro demo: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	log := newLogger(stderr, "info")
	d, err := demo.Setup(base, dir, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "skolbro demo: %v\n", err)
		return 1
	}
	h, err := d.Handler(log)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro demo: %v\n", err)
		return 1
	}
	return listenAndServe(*addr, h, log, func(net.Addr) {
		fmt.Fprintf(stdout, "\nskolbro demo is running. Open %s/demo/ in your browser.\n", base)
		fmt.Fprintf(stdout, "Admin interface: %s/admin/ (log in as the test identity \"Lärare och administratör\").\n", base)
		fmt.Fprintf(stdout, "Test keys and configuration (TEST ONLY, deleted on exit): %s\n\n", dir)
	}, nil)
}

// loadForCommand loads and builds the configuration for a one-shot
// command, printing problems to stderr.
func loadForCommand(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*config.Config, *server.Organiser, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, false
	}
	if *path == "" {
		fmt.Fprintf(stderr, "skolbro %s: --config is required\n", name)
		return nil, nil, false
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %v\n", err)
		return nil, nil, false
	}
	org, rep := app.Build(cfg, store.NewMemory(nil), time.Now)
	if err := rep.Err(); err != nil {
		fmt.Fprintf(stderr, "skolbro: configuration has errors (run skolbro check):\n%v\n", err)
		return nil, nil, false
	}
	return cfg, org, true
}

func cmdRegister(args []string, stdout, stderr io.Writer) int {
	format := "csv"
	_, org, ok := loadForCommand("register", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "csv", "csv or json")
	})
	if !ok {
		return 2
	}
	requested := map[string][]string{}
	for id, v := range org.IdP.Vendors {
		requested[id] = v.RequestedAttributes
	}
	rows := audit.BuildRegister(org.Policies.All(), requested)
	var err error
	switch format {
	case "csv":
		err = audit.WriteRegisterCSV(stdout, rows)
	case "json":
		err = audit.WriteRegisterJSON(stdout, rows)
	default:
		fmt.Fprintln(stderr, "skolbro register: --format must be csv or json")
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "skolbro register: %v\n", err)
		return 1
	}
	return 0
}

func cmdAuditSubject(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	format := "csv"
	cfg, org, ok := loadForCommand("audit subject", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "csv", "csv or json")
	})
	if !ok {
		return 2
	}
	if org.AuditKeys == nil {
		fmt.Fprintf(stderr, "skolbro audit subject: %s: organiser.audit is not configured\n", cfg.File())
		return 2
	}
	dir := cfg.Path(cfg.Organiser.Audit.Dir)
	if err := audit.SubjectCommand(context.Background(), dir, org.AuditKeys, stdin, stdout, format, time.Now()); err != nil {
		fmt.Fprintf(stderr, "skolbro audit subject: %v\n", err)
		return 1
	}
	return 0
}

// cmdProtect manages the manual protection register. The personal number
// is read from standard input, never from the command line, where it
// would end up in shell history and process listings.
func cmdProtect(op string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := configFromArgs("protect "+op, args, stderr)
	if err != nil {
		return 2
	}
	if cfg.Organiser.Protection.Register == nil {
		fmt.Fprintf(stderr, "skolbro protect: %s: organiser.protection.register is not configured\n", cfg.File())
		return 2
	}
	st, err := app.OpenStore(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro protect: %v\n", err)
		return 1
	}
	org, rep := app.Build(cfg, st, time.Now)
	if err := rep.Err(); err != nil {
		fmt.Fprintf(stderr, "skolbro: configuration has errors (run skolbro check):\n%v\n", err)
		return 2
	}
	if err := protection.Command(context.Background(), op, org.Register, stdin, stdout, time.Now()); err != nil {
		fmt.Fprintf(stderr, "skolbro protect %s: %v\n", op, err)
		return 1
	}
	return 0
}

func configFromArgs(name string, args []string, stderr io.Writer) (*config.Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *path == "" {
		fmt.Fprintf(stderr, "skolbro %s: --config is required\n", name)
		return nil, errors.New("no config")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %v\n", err)
		return nil, err
	}
	return cfg, nil
}

func cmdMetadata(args []string, stdout, stderr io.Writer) int {
	out := ""
	_, org, ok := loadForCommand("metadata", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "", "directory to write idp.xml and sp.xml to")
	})
	if !ok {
		return 2
	}
	if out == "" {
		fmt.Fprintln(stderr, "skolbro metadata: --out is required")
		return 2
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		fmt.Fprintf(stderr, "skolbro metadata: %v\n", err)
		return 1
	}
	idp, err := org.Metadata.IdPMetadata()
	if err != nil {
		fmt.Fprintf(stderr, "skolbro metadata: %v\n", err)
		return 1
	}
	files := map[string][]byte{"idp.xml": idp}
	if sp, err := org.Metadata.SPMetadataSigned(); err == nil {
		files["sp.xml"] = sp
	}
	for name, b := range files {
		p := filepath.Join(out, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			fmt.Fprintf(stderr, "skolbro metadata: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	return 0
}
