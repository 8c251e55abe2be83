package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

func writeJSON(w io.Writer, res *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// tableHeader starts the load table; the smoke test looks for it.
const tableHeader = "mode\tconc\toffered/s\tlogins\terrors\tlogins/s\tp50 ms\tp95 ms\tp99 ms\tbridge p99 ms\tproc CPU ms/login\tbridge CPU ms/login\t÷ signature\tallocs/login\tpeak heap MB"

func writeTables(out io.Writer, res *Result) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	flow := "SAML → SAML"
	if res.Protocol == "oidc" {
		flow = "SAML → OIDC"
	}
	p("skolbro bench: %s logins, %s world, %s store, bridge %s\n", flow, res.World, res.Store, res.Bridge)
	b.WriteString(res.line())
	if res.ServeCPUs > 0 {
		p("the bridge's process is limited to %g CPUs (cgroup CPU quota); the load generator has the rest\n", res.ServeCPUs)
	}
	if res.CheckEvery > 1 && res.Protocol == "saml" {
		p("the vendor checks every %d. response in full (crewjam/saml), the others for status, destination and InResponseTo\n", res.CheckEvery)
	}
	p("\n")

	if s := res.Signature; s != nil {
		p("signature (%s, %s): %.0f µs CPU per signed assertion (%.0f µs wall; private-key operation alone %.0f µs), n=%d",
			s.Key, shortAlg(s.Method), s.CPUMicros, s.WallMicros, s.CryptoMicros, s.N)
		if res.SignaturesPerLogin > 0 {
			p("; the bridge makes %d per login", res.SignaturesPerLogin)
		}
		p("\n")
	}
	if c := res.Calibration; c != nil {
		p("bridge handlers, %d logins one at a time: %.0f µs CPU per login (%.1f× one signature), %.0f µs wall, %.0f allocations, %.0f KB allocated\n",
			c.Logins, c.CPUMicros, c.SignatureRatio, c.WallMicros, c.Allocs, c.AllocBytes/1024)
		eps := make([]string, 0, len(c.Endpoints))
		for e := range c.Endpoints {
			eps = append(eps, e)
		}
		slices.Sort(eps)
		for _, e := range eps {
			ec := c.Endpoints[e]
			p("  %-9s %6.0f µs CPU  %6.0f µs wall  %6.0f allocs  %6.1f KB  per call (%d calls)\n",
				e, ec.CPUMicros, ec.WallMicros, ec.Allocs, ec.AllocBytes/1024, ec.Calls)
		}
	}
	if pc := res.Pending; pc != nil {
		p("store per pending login: %.0f bytes key+value", pc.KeyValueBytes)
		if pc.MemoryStoreBytes > 0 {
			p(", %.0f bytes in the memory store (heap, bookkeeping included)", pc.MemoryStoreBytes)
		}
		if pc.RedisMemoryUsage > 0 {
			p(", %.0f bytes in Redis (MEMORY USAGE)", pc.RedisMemoryUsage)
		}
		p("\n")
	}
	if len(res.StoreRecords) > 0 {
		p("store writes:\n")
		for _, r := range res.StoreRecords {
			p("  %-12s %5.2f per login  key %3.0f B  value %4.0f B  ttl %4.0f s\n", r.Class, r.PerLogin, r.KeyBytes, r.ValueBytes, r.TTLSeconds)
		}
	}
	p("\n")
	if _, err := io.WriteString(out, b.String()); err != nil {
		return err
	}

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, tableHeader+"\t")
	for _, ph := range res.Phases {
		conc, offered := "-", "-"
		if ph.Concurrency > 0 {
			conc = fmt.Sprint(ph.Concurrency)
		}
		if ph.OfferedRate > 0 {
			offered = fmt.Sprintf("%.0f", ph.OfferedRate)
		}
		errs := 0
		for _, n := range ph.Errors {
			errs += n
		}
		bridgeP99 := "-"
		if len(ph.BridgeServer) > 0 {
			var parts []string
			for _, e := range []string{epSSO, epAuthorize, epACS, epToken} {
				if l, ok := ph.BridgeServer[e]; ok {
					parts = append(parts, fmt.Sprintf("%s %.1f", e, l.P99))
				}
			}
			bridgeP99 = strings.Join(parts, ", ")
		}
		bridgeCPU := "-"
		switch {
		case ph.TargetCPUMicros > 0:
			bridgeCPU = fmt.Sprintf("%.2f", ph.TargetCPUMicros/1000)
		case ph.BridgeCPUHighMicros > 0:
			bridgeCPU = fmt.Sprintf("%.2f–%.2f", ph.BridgeCPULowMicros/1000, ph.BridgeCPUHighMicros/1000)
		}
		ratio := "-"
		if ph.SignatureRatio > 0 {
			ratio = fmt.Sprintf("%.1f", ph.SignatureRatio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%.2f\t%s\t%s\t%.0f\t%.0f\t\n",
			ph.Mode, conc, offered, ph.Logins, errs, ph.LoginsPerSecond, ph.Login.P50, ph.Login.P95, ph.Login.P99,
			bridgeP99, ph.ProcessCPUMicros/1000, bridgeCPU, ratio, ph.Allocs, float64(ph.PeakHeap)/(1<<20))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	b.Reset()
	for _, ph := range res.Phases {
		label := ph.Mode
		if ph.Concurrency > 0 {
			label += fmt.Sprintf(" %d", ph.Concurrency)
		} else {
			label += fmt.Sprintf(" %.0f/s", ph.OfferedRate)
		}
		p("\n%s:", label)
		if len(ph.Errors) > 0 {
			p(" errors")
			for _, k := range sortedKeys(ph.Errors) {
				p(" %s=%d", k, ph.Errors[k])
				if msg, ok := ph.FirstErrors[k]; ok {
					p(" (first: %s)", msg)
				}
			}
			p(";")
		}
		if ph.LateLogins > 0 {
			p(" %d logins completed after the window;", ph.LateLogins)
		}
		p(" %d GCs, peak logins in flight %d", ph.GCs, ph.PeakLoginsInFlight)
		if ph.PeakBridgeInFlight > 0 {
			p(", peak bridge requests in flight %d", ph.PeakBridgeInFlight)
		}
		if ph.PeakRSS > 0 {
			p(", peak RSS %.0f MB", float64(ph.PeakRSS)/(1<<20))
		}
		if ph.TargetSwitches > 0 {
			p(", the bridge's process %.1f context switches per login", ph.TargetSwitches)
		}
		if ph.TargetPerGenerator > 0 {
			p(", its CPU per login %.3f × the load generator's (compare runs by this on a noisy machine)", ph.TargetPerGenerator)
		}
		if ph.BridgeCapacity > 0 {
			p("; the bridge alone on %g CPUs: at most about %.0f logins/s", res.bridgeCPUs(), ph.BridgeCapacity)
		}
		p("\n")
		serverSide := "bridge handlers (server side)"
		if ph.BridgeServerFrom == fromHistogram {
			serverSide = "bridge handlers (server side, from its request-duration histogram, interpolated within buckets)"
		}
		for _, side := range []struct {
			name string
			m    map[string]Percentiles
		}{{serverSide, ph.BridgeServer}, {"bridge requests (browser side)", ph.BridgeClient}} {
			if len(side.m) == 0 {
				continue
			}
			p("  %s, ms p50/p95/p99:", side.name)
			for _, e := range sortedKeys(side.m) {
				l := side.m[e]
				p(" %s %.1f/%.1f/%.1f", e, l.P50, l.P95, l.P99)
			}
			p("\n")
		}
		if c := ph.CPU; c != nil {
			p("  CPU profile (%.1f s sampled):", c.Seconds)
			for _, k := range sortedKeys(c.Components) {
				p(" %s %.0f%%", k, 100*c.Components[k])
			}
			p("; bridge by endpoint:")
			for _, k := range sortedKeys(c.BridgeEndpoints) {
				p(" %s %.0f%%", k, 100*c.BridgeEndpoints[k])
			}
			p("\n")
			if len(c.TopBridge) > 0 {
				p("  bridge's top functions (flat):")
				for i, f := range c.TopBridge {
					if i == 8 {
						break
					}
					p(" %s %.1f%%;", shortFunc(f.Func), 100*f.Share)
				}
				p("\n")
			}
		}
	}
	if res.Soak != nil {
		writeSoak(&b, res.Soak)
	}
	for _, n := range res.Notes {
		p("\nnote: %s", n)
	}
	p("\n")
	_, err := io.WriteString(out, b.String())
	return err
}

// writeSoak prints a soak's samples and verdicts.
func writeSoak(b *strings.Builder, s *Soak) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("\nsoak, sampled every %g s (%s):\n", s.EverySeconds, s.Source)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "t s\tlogins/s\terrors\tp99 ms\tbridge p99 ms\tRSS MB\tgoroutines\tthreads\t")
	prev := 0.0
	for _, x := range s.Samples {
		g := "-"
		if x.Goroutines > 0 {
			g = fmt.Sprint(x.Goroutines)
		}
		rate := 0.0
		if x.Seconds > prev {
			rate = float64(x.Logins) / (x.Seconds - prev) // the last sample may be shorter
		}
		prev = x.Seconds
		bp := bridgeP99Cell(x.BridgeP99)
		if bp == "" {
			bp = "-"
		}
		fmt.Fprintf(tw, "%g\t%.1f\t%d\t%.1f\t%s\t%.1f\t%s\t%d\t\n", x.Seconds, rate, x.Errors, x.LoginP99, bp, float64(x.RSS)/(1<<20), g, x.Threads)
	}
	_ = tw.Flush()
	if !s.Judged {
		p("soak not judged: too few samples after the warm-up (%.0f s)\n", s.WarmupSeconds)
		return
	}
	verdict := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "NO"
	}
	p("after a %.0f s warm-up: RSS %.1f MB at the start, between %.1f and %.1f MB throughout (%+.1f%% / %+.1f%%); flat within ±%.0f%%: %s\n",
		s.WarmupSeconds, mb(s.RSSRef), mb(s.RSSMin), mb(s.RSSMax),
		100*(float64(s.RSSMin)/float64(s.RSSRef)-1), 100*(float64(s.RSSMax)/float64(s.RSSRef)-1), 100*soakTolerance, verdict(s.RSSFlat))
	if s.GoroutinesRef > 0 {
		p("goroutines: at most %d at the start, %d (median) in the last tenth; no growth: %s\n", s.GoroutinesRef, s.GoroutinesEnd, verdict(s.GoroutinesFlat))
	} else {
		p("goroutines: not read (give --metrics with --target)\n")
	}
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func shortAlg(uri string) string {
	if i := strings.LastIndexByte(uri, '#'); i >= 0 {
		return uri[i+1:]
	}
	return uri
}

// shortFunc drops the module path of a function name.
func shortFunc(f string) string {
	if i := strings.LastIndexByte(f, '/'); i >= 0 {
		return f[i+1:]
	}
	return f
}
