package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/app"
	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/gcpace"
	"github.com/skolbro/skolbro/internal/metrics"
	"github.com/skolbro/skolbro/internal/ratelimit"
	"github.com/skolbro/skolbro/internal/server"
)

func cmdServe(args []string, stdout, stderr io.Writer) int {
	// SIGHUP reloads; caught from the start, so that one sent while the
	// bridge starts does not end it (it is applied once serving).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	fs := newFlagSet("serve", stdout, stderr, "skolbro serve --config FILE [--drain-delay 5s] [--pid-file FILE]",
		"Runs the bridge. SIGHUP (or skolbro reload) re-reads the configuration, policies, metadata and keys; SIGTERM drains and stops.")
	path := fs.String("config", "", "configuration file")
	drain := fs.Duration("drain-delay", 5*time.Second, "on SIGTERM, how long readiness fails before the listener closes")
	pidFile := fs.String("pid-file", "", "write the process id here, for skolbro reload --pid-file")
	if code, ok := parseFlags(fs, args); !ok {
		return code
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
	// A small live heap would otherwise be collected every few logins.
	if pacer := gcpace.Start(gcpace.DefaultHeadroom); pacer != nil {
		defer pacer.Stop()
		log.Info().Int("headroom_mb", gcpace.DefaultHeadroom>>20).Msg("garbage collector paced: the heap may grow this far past its live size (set GOGC to choose yourself; GOMEMLIMIT caps it)")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := metrics.New(reg)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %v\n", err)
		return 1
	}
	reloads, err := metrics.NewReloads(reg)
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
	refusalEvents, err := ratelimit.New(float64(lim.RefusalEventsPerMinute)/60, lim.RefusalEventsPerMinute, ratelimit.WithMaxKeys(lim.MaxTrackedClients))
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %s: limits.refusal_events_per_minute: %v\n", cfg.File(), err)
		return 1
	}
	// Days left of each vendor's data processing agreement, for an alert
	// before logins to it are refused.
	daysLeft := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: audit.MetricAgreementDaysLeft,
		Help: "Days until the vendor's data processing agreement ends (negative: ended)."}, []string{"organiser", "vendor"})
	reg.MustRegister(daysLeft)
	updateDaysLeft := func(orgs []*server.Organiser) {
		daysLeft.Reset()
		for _, org := range orgs {
			audit.UpdateAgreementGauge(func(v string, d float64) { daysLeft.WithLabelValues(org.ID, v).Set(d) }, org.Policies.All(), time.Now())
		}
	}
	// Key and metadata expiry, for alerts before they stop logins; set
	// again by every reload.
	applied := func(orgs []*server.Organiser) {
		updateDaysLeft(orgs)
		m.ResetKeyExpiry()
		for _, org := range orgs {
			m.SetKeyExpiry(org.ID+"/signing", org.IdP.Signer.Pair().Cert.NotAfter)
			if org.IdP.NextSigningCert != nil {
				m.SetKeyExpiry(org.ID+"/next_signing", org.IdP.NextSigningCert.NotAfter)
			}
			for _, up := range org.Upstreams {
				for i, c := range up.Certs {
					m.SetKeyExpiry(fmt.Sprintf("%s/%s/upstream_signing_%d", org.ID, up.ID, i), c.NotAfter)
				}
			}
		}
	}
	live, rep, err := app.StartLive(cfg, st, app.LiveOptions{Build: app.Options{Now: time.Now, PinSectors: true},
		Logger: log, Reloads: reloads, Applied: applied})
	if err != nil {
		if rep != nil && rep.Fatal(0) != nil {
			fmt.Fprintf(stderr, "skolbro: configuration has errors (run skolbro check):\n%v\n", err)
		} else {
			fmt.Fprintf(stderr, "skolbro: %v\n", err)
		}
		return 1
	}
	defer live.Close()
	reg.MustRegister(live.Collector())
	for _, w := range rep.Warnings {
		log.Warn().Str("problem", w).Msg("configuration warning")
	}
	for _, e := range rep.Errors {
		log.Error().Str("problem", e).Msg("configuration error")
	}
	orgs := live.Organisers()
	for _, org := range orgs {
		if org.Register == nil {
			continue
		}
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := org.Register.Ready(rctx); err != nil {
			log.Error().Err(err).Str("organiser", org.ID).Msg("protection register not ready: every person is masked and readiness fails until it is restored or re-initialised (skolbro protect init)")
		}
		cancel()
	}
	for _, id := range rep.Disabled {
		// One organiser's broken file must not stop the others (case 45).
		log.Error().Str("organiser", id).Msg("organiser disabled by its configuration errors (run skolbro check); the others serve")
	}
	srv, err := server.New(server.Options{Organisers: orgs, Hub: live.Hub(), Store: st, Logger: log,
		SecureCookies: strings.HasPrefix(cfg.ExternalURL, "https://"),
		Metrics:       m, ClientLimit: clientLimit, ClientIP: clientIP, VendorLimit: vendorLimit,
		MaxInFlight: lim.MaxInFlight, RefusalEvents: refusalEvents})
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %v\n", err)
		return 1
	}
	live.Attach(srv)
	go func() {
		for range hup {
			log.Info().Msg("SIGHUP: reloading the configuration")
			_, _ = live.Reload(context.Background())
		}
	}()
	go func() {
		for range time.Tick(time.Hour) {
			updateDaysLeft(srv.Organisers())
		}
	}()
	if cfg.MetricsListen != "" {
		// Internal only: /metrics is never on the public listener.
		ms := &http.Server{Addr: cfg.MetricsListen, Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := ms.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error().Err(err).Msg("metrics listener failed")
			}
		}()
	}
	if *pidFile != "" {
		if err := writePIDFile(*pidFile); err != nil {
			fmt.Fprintf(stderr, "skolbro serve: --pid-file: %v\n", err)
			return 1
		}
		defer removePIDFile(*pidFile)
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
	// SO_REUSEPORT: a new process binds while the old one drains, so a
	// restart right after a stop does not fail with "address already in
	// use" (only a process of the same user can share the port).
	ln, err := listenReusePort(context.Background(), addr)
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
