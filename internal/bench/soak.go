package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultSoakEvery is how often a soak samples the bridge.
const DefaultSoakEvery = 10 * time.Second

// modeSoak is the Phase.Mode of a soak.
const modeSoak = "soak"

// soakTolerance is how far the bridge's resident memory may stray from
// its level after warm-up and still count as flat (issue 13: ±10%).
const soakTolerance = 0.10

// Soak is what a soak run (an open-loop phase at a fixed rate, sampled
// as it goes) saw of the bridge over time: whether it holds a steady
// state, not how fast it is.
type Soak struct {
	// EverySeconds is the sampling interval.
	EverySeconds float64 `json:"sample_every_s"`
	// Samples, one per interval, in order; the last may be shorter.
	Samples []SoakSample `json:"samples"`
	// Source says whose memory and goroutines were sampled: the bridge's
	// own process, or this process when the bridge runs in it (then the
	// IdP, vendors and browsers are counted too).
	Source string `json:"source"`
	// WarmupSeconds: samples before this are not judged (caches fill,
	// the heap finds its size).
	WarmupSeconds float64 `json:"warmup_s"`
	// RSSRef is the median resident set of the reference window (the
	// samples of the tenth of the run after warm-up); RSSMin/RSSMax the
	// extremes after warm-up. RSSFlat: every one within ±10% of RSSRef.
	RSSRef  uint64 `json:"rss_ref_bytes"`
	RSSMin  uint64 `json:"rss_min_bytes"`
	RSSMax  uint64 `json:"rss_max_bytes"`
	RSSFlat bool   `json:"rss_flat"`
	// GoroutinesRef is the most goroutines in the reference window,
	// GoroutinesEnd the median of the last tenth of the run. No growth:
	// End ≤ Ref (logins in flight make the count move; a leak moves it one
	// way only). Zero when goroutines could not be read.
	GoroutinesRef  int  `json:"goroutines_ref,omitempty"`
	GoroutinesEnd  int  `json:"goroutines_end,omitempty"`
	GoroutinesFlat bool `json:"goroutines_flat"`
	Judged         bool `json:"judged"`
}

// SoakSample is one interval of a soak.
type SoakSample struct {
	Seconds float64 `json:"t_s"`
	// Logins completed and failed during the interval, and the p99 of
	// those completed.
	Logins   int     `json:"logins"`
	Errors   int     `json:"errors"`
	LoginP99 float64 `json:"login_p99_ms"`
	// RSS of the bridge's process; Goroutines and Threads likewise (0
	// when unknown).
	RSS        uint64 `json:"rss_bytes"`
	Goroutines int    `json:"goroutines,omitempty"`
	Threads    int    `json:"threads,omitempty"`
	// BridgeP99 is the p99 of the bridge's handlers during the interval,
	// by endpoint, from its request-duration histogram (a bridge in its
	// own process with a known /metrics URL only): whether a slow
	// interval was slow in the bridge or in the load generator.
	BridgeP99 map[string]float64 `json:"bridge_p99_ms,omitempty"`
}

// soakProbe reads the bridge's memory and goroutines.
type soakProbe struct {
	self       bool   // the bridge runs in this process
	pid        int    // else its process id, if known
	metricsURL string // the bridge's /metrics, for go_goroutines; "" in-process or unknown
	client     *http.Client
}

// read samples the bridge; last is the previous sample's scrape of its
// /metrics, for the handlers' p99 in between.
func (p soakProbe) read(ctx context.Context, s *SoakSample, last *scrape) {
	if p.self || p.pid > 0 {
		s.RSS, _, _ = rss(p.pid)
		s.Threads = procThreads(p.pid)
	}
	switch {
	case p.self:
		s.Goroutines = runtime.NumGoroutine()
	case p.metricsURL != "":
		now, ok := scrapeMetrics(ctx, p.client, p.metricsURL)
		if !ok {
			*last = scrape{}
			return
		}
		s.Goroutines = now.goroutines
		if last.handlers != nil {
			for ep, pc := range handlerPercentiles(*last, now) {
				if s.BridgeP99 == nil {
					s.BridgeP99 = map[string]float64{}
				}
				s.BridgeP99[ep] = pc.P99
			}
		}
		*last = now
	}
}

// procThreads is the Threads line of /proc/PID/status (0 if unknown).
func procThreads(pid int) int {
	p := "/proc/self/status"
	if pid > 0 {
		p = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// soakSampler samples out and the bridge every interval until stop is
// closed, then sends what it saw.
func (r *runner) soakSampler(ctx context.Context, out *outcome, every time.Duration, stop <-chan struct{}, done chan<- []SoakSample) {
	probe := r.soakProbe()
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	var samples []SoakSample
	var lastOK, lastErr int
	var last scrape
	probe.read(ctx, &SoakSample{}, &last) // the histogram's counts at the start
	take := func(at float64) {
		ok, errs, win := out.window()
		s := SoakSample{Seconds: at, Logins: ok - lastOK, Errors: errs - lastErr, LoginP99: percentiles(win).P99}
		lastOK, lastErr = ok, errs
		probe.read(ctx, &s, &last)
		samples = append(samples, s)
		r.progress("soak %4.0fs: %d logins, %d errors, p99 %.1f ms%s, RSS %.1f MB, %d goroutines, %d threads",
			s.Seconds, s.Logins, s.Errors, s.LoginP99, bridgeP99Text(s.BridgeP99), float64(s.RSS)/(1<<20), s.Goroutines, s.Threads)
	}
	for i := 1; ; i++ {
		select {
		case <-stop:
			// The logins that ended after the last tick (the phase
			// waits for those in flight) go in a last, shorter sample,
			// so that every login is in exactly one.
			if ok, errs := out.counts(); ok > lastOK || errs > lastErr {
				take(math.Round(time.Since(start).Seconds()*10) / 10)
			}
			done <- samples
			return
		case <-t.C:
		}
		take((time.Duration(i) * every).Seconds())
	}
}

// bridgeP99Text is ", bridge p99 sso X acs Y ms" for a soak line, or "".
func bridgeP99Text(m map[string]float64) string {
	if len(m) == 0 {
		return ""
	}
	return ", bridge p99 " + bridgeP99Cell(m) + " ms"
}

// bridgeP99Cell is "sso X acs Y", the p99 of each endpoint in m in ms,
// for a soak line and the soak table's column.
func bridgeP99Cell(m map[string]float64) string {
	var parts []string
	for _, ep := range endpoints {
		if v, ok := m[ep]; ok {
			parts = append(parts, fmt.Sprintf("%s %.1f", ep, v))
		}
	}
	return strings.Join(parts, " ")
}

func (r *runner) soakSource() string {
	switch {
	case r.br != nil:
		return "this process: the bridge, the IdP, the vendors and the browsers"
	case r.opts.MetricsURL != "":
		return "the bridge's process (goroutines from its /metrics)"
	default:
		return "the bridge's process (goroutines unknown: no --metrics URL)"
	}
}

func (r *runner) soakProbe() soakProbe {
	if r.br != nil {
		return soakProbe{self: true}
	}
	return soakProbe{pid: r.opts.TargetPID, metricsURL: r.opts.MetricsURL, client: metricsClient}
}

// judgeSoak fills in the verdicts from the samples of a run of total
// length d: samples before warm-up (a tenth of the run, at least one
// interval) are not judged; the next tenth is the reference.
func judgeSoak(s *Soak, d time.Duration) {
	tenth := d.Seconds() / 10
	warm := max(tenth, s.EverySeconds)
	s.WarmupSeconds = warm
	var ref, after, end []SoakSample
	for _, x := range s.Samples {
		switch {
		case x.Seconds <= warm:
			continue
		case x.Seconds <= warm+tenth+s.EverySeconds/2:
			ref = append(ref, x)
		}
		after = append(after, x)
		if x.Seconds > d.Seconds()-tenth-s.EverySeconds/2 {
			end = append(end, x)
		}
	}
	if len(ref) == 0 || len(end) == 0 {
		return
	}
	s.Judged = true
	rssRef := make([]uint64, len(ref))
	for i, x := range ref {
		rssRef[i] = x.RSS
	}
	s.RSSRef = medianU(rssRef)
	s.RSSMin, s.RSSMax = after[0].RSS, after[0].RSS
	for _, x := range after {
		s.RSSMin, s.RSSMax = min(s.RSSMin, x.RSS), max(s.RSSMax, x.RSS)
	}
	lo, hi := float64(s.RSSRef)*(1-soakTolerance), float64(s.RSSRef)*(1+soakTolerance)
	s.RSSFlat = s.RSSRef > 0 && float64(s.RSSMin) >= lo && float64(s.RSSMax) <= hi

	var gEnd []uint64
	for _, x := range ref {
		s.GoroutinesRef = max(s.GoroutinesRef, x.Goroutines)
	}
	for _, x := range end {
		gEnd = append(gEnd, uint64(x.Goroutines))
	}
	s.GoroutinesEnd = int(medianU(gEnd))
	s.GoroutinesFlat = s.GoroutinesRef > 0 && s.GoroutinesEnd <= s.GoroutinesRef
}

func medianU(v []uint64) uint64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}
