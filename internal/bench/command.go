package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

const usage = `usage:
  skolbro bench [flags]                          the bridge in this process
  skolbro bench --serve [flags]                  skolbro serve in its own process, started by the bench
  skolbro bench --write-config DIR --base URL    prepare DIR for: skolbro serve --config DIR/skolbro.yaml
  skolbro bench --target URL --config-dir DIR    drive that bridge from outside
  skolbro bench --floor [--rate R | --concurrency C]
                                                 the floor: what a login costs a Go HTTP server
                                                 process here before any SAML work

Every key the bench makes is generated for the run and is TEST ONLY.

flags:
`

// floorFlags are the flags --floor takes: the others describe the bridge's
// world, which the floor's server does not have.
var floorFlags = map[string]bool{"floor": true, "concurrency": true, "rate": true, "duration": true, "timeout": true,
	"signatures": true, "serve-cpus": true, "json": true, "quiet": true}

// Command is `skolbro bench`. It returns the process exit code: 0 when the
// bench ran, 1 when it failed, 2 for bad flags.
func Command(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	var o Options
	var conc, writeDir, base, metricsListen string
	var quiet, floor bool
	var floorServer string
	fs.StringVar(&o.World, "world", WorldRealistic, "realistic (a school IdP signing Response and Assertion of 8–9 KB responses, vendors with encryption keys and signed requests, the release log fsync'd per event) or light (the demo: small responses signed once, no encryption)")
	fs.StringVar(&o.Protocol, "protocol", "saml", "the vendor's protocol: saml or oidc (the school IdP speaks SAML)")
	fs.StringVar(&o.Store, "store", "memory", "memory or redis (with --target the configuration decides)")
	fs.StringVar(&o.RedisAddr, "redis-addr", DefaultRedisAddr, "Redis address for --store redis")
	fs.StringVar(&o.SignatureAlgorithm, "sign-alg", "rsa", "the SAML vendor's signature algorithm: rsa (RSA-2048) or ecdsa (P-256)")
	fs.StringVar(&o.Sign, "sign", "", "the SAML vendor's saml.sign: auto (default: the assertion, the Response too if the vendor's metadata asks), assertion_and_response, assertion or response")
	fs.BoolVar(&o.KeepLimits, "keep-limits", false, "keep the default per-client and per-vendor rate limits (the bench is one address and one vendor, so they are raised otherwise)")
	fs.IntVar(&o.Organisers, "organisers", 1, "organisers the bridge serves (a hub: the others are generated, 30 vendors each; logins go to the first)")
	fs.StringVar(&conc, "concurrency", "8", "simulated browsers; a comma-separated list runs one phase each (e.g. 8,32,128)")
	fs.DurationVar(&o.Duration, "duration", DefaultDuration, "length of each load phase")
	fs.Float64Var(&o.Rate, "rate", 0, "open loop: start this many logins per second instead of the closed-loop phases")
	fs.BoolVar(&o.Overload, "overload", false, "then offer twice the measured capacity, open loop, and report what the bridge serves")
	fs.IntVar(&o.CheckEvery, "check-every", 1, "the SAML vendor checks every Nth response in full (crewjam/saml), the others for status, destination and InResponseTo only: spares the load generator's CPU for the bridge")
	fs.BoolVar(&o.Soak, "soak", false, "with --rate: sample the bridge's resident memory and goroutines every --soak-every and judge whether they hold steady (e.g. --rate 150 --duration 10m --soak)")
	fs.DurationVar(&o.SoakEvery, "soak-every", DefaultSoakEvery, "with --soak: the sampling interval")
	fs.StringVar(&o.MetricsURL, "metrics", "", "with --target: the bridge's internal /metrics URL (metrics_listen), for its handlers' latency and, in a soak, its goroutines")
	fs.DurationVar(&o.Timeout, "timeout", DefaultTimeout, "longest a login may take")
	fs.StringVar(&o.Target, "target", "", "URL of a bridge running from a --write-config directory")
	fs.StringVar(&o.ConfigDir, "config-dir", "", "with --target: the directory --write-config prepared")
	fs.BoolVar(&o.Serve, "serve", false, "start skolbro serve in its own process from a configuration written for the run, and report its CPU per login")
	fs.Float64Var(&o.ServeCPUs, "serve-cpus", 0, "with --serve (or --floor): limit the serve process (the floor's server) to this many CPUs (cgroup CPU quota; needs root), so that the load generator can overload it on a machine they share (--overload)")
	fs.IntVar(&o.TargetPID, "target-pid", 0, "with --target: the bridge's process id, for its CPU time and memory")
	fs.BoolVar(&o.JSON, "json", false, "print JSON instead of tables")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write the load phases' CPU profile to this file")
	fs.IntVar(&o.Signatures, "signatures", DefaultSignatures, "signatures to time (negative: none)")
	fs.IntVar(&o.Calibration, "calibrate", DefaultCalibration, "logins to run one at a time for the handlers' own cost (negative: none)")
	fs.StringVar(&writeDir, "write-config", "", "write the bridge's configuration for --base to this directory and exit")
	fs.StringVar(&metricsListen, "metrics-listen", "", "with --write-config: the bridge's internal /metrics address (metrics_listen), e.g. 127.0.0.1:9090")
	fs.StringVar(&base, "base", "", "with --write-config: the URL the bridge will listen at, e.g. http://127.0.0.1:8080")
	fs.BoolVar(&quiet, "quiet", false, "no progress lines on stderr")
	fs.BoolVar(&floor, "floor", false, "drive the floor's server in its own process instead of the bridge: the bridge's two requests per login at their realistic sizes, an fsync'd release line, its log lines and one signature, without the SAML work (takes --concurrency, --rate, --duration, --timeout, --signatures, --serve-cpus, --json and --quiet)")
	fs.StringVar(&floorServer, "floor-server", "", "serve the floor at this address until SIGTERM (--floor starts it)")
	fs.SetOutput(io.Discard) // each message is written below where it belongs
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		// Asked for: the usage goes to stdout, and it is no failure.
		fs.SetOutput(stdout)
		fs.Usage()
		return 0
	}
	fs.SetOutput(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro bench: %v\n", err)
		fs.Usage()
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["soak-every"] && !o.Soak {
		fmt.Fprintln(stderr, "skolbro bench: --soak-every goes with --soak")
		return 2
	}
	if set["metrics-listen"] && writeDir == "" {
		fmt.Fprintln(stderr, "skolbro bench: --metrics-listen goes with --write-config")
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "skolbro bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if floorServer != "" {
		if len(set) > 1 {
			fmt.Fprintln(stderr, "skolbro bench: --floor-server takes no other flag")
			return 2
		}
		if err := FloorServer(floorServer, stdout); err != nil {
			fmt.Fprintf(stderr, "skolbro bench: %v\n", err)
			return 1
		}
		return 0
	}
	if writeDir != "" {
		if base == "" {
			fmt.Fprintln(stderr, "skolbro bench: --write-config needs --base")
			return 2
		}
		co := ConfigOptions{World: o.World, Store: o.Store, RedisAddr: o.RedisAddr, SignatureAlgorithm: o.SignatureAlgorithm, Sign: o.Sign, KeepLimits: o.KeepLimits, Organisers: o.Organisers, MetricsListen: metricsListen}
		if err := WriteConfig(writeDir, base, co); err != nil {
			fmt.Fprintf(stderr, "skolbro bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "Wrote a TEST ONLY bridge configuration to %s.\nRun:  skolbro serve --config %s/skolbro.yaml\nThen: skolbro bench --target %s --config-dir %s [--target-pid PID]\n",
			writeDir, writeDir, strings.TrimRight(base, "/"), writeDir)
		return 0
	}
	for _, c := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil {
			fmt.Fprintf(stderr, "skolbro bench: --concurrency: %q is not a number\n", c)
			return 2
		}
		o.Concurrency = append(o.Concurrency, n)
	}
	if !quiet {
		o.Progress = stderr
	}
	if floor {
		for _, name := range slices.Sorted(maps.Keys(set)) {
			if !floorFlags[name] {
				fmt.Fprintf(stderr, "skolbro bench: --%s does not go with --floor\n", name)
				return 2
			}
		}
		fo := FloorOptions{Concurrency: o.Concurrency, Rate: o.Rate, Duration: o.Duration, Timeout: o.Timeout, Signatures: o.Signatures, JSON: o.JSON, Progress: o.Progress, CPUs: o.ServeCPUs}
		if err := fo.check(); err != nil {
			fmt.Fprintf(stderr, "skolbro bench: %v\n", err)
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := RunFloor(ctx, fo, stdout); err != nil {
			fmt.Fprintf(stderr, "skolbro bench: %v\n", err)
			return 1
		}
		return 0
	}
	if err := o.defaults(); err != nil {
		fmt.Fprintf(stderr, "skolbro bench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, o, stdout); err != nil {
		fmt.Fprintf(stderr, "skolbro bench: %v\n", err)
		return 1
	}
	return 0
}
