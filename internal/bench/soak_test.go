package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// judgeSoak is the soak's verdict: resident memory within ±10% of its
// level after warm-up, and no more goroutines at the end than at the
// start. Samples every 10 s over 100 s: warm-up to 10 s, reference
// 20 s, end 90–100 s.
func TestJudgeSoak(t *testing.T) {
	const mbs = 1 << 20
	mk := func(rss func(i int) uint64, g func(i int) int) []SoakSample {
		var s []SoakSample
		for i := 1; i <= 10; i++ {
			s = append(s, SoakSample{Seconds: float64(10 * i), RSS: rss(i), Goroutines: g(i)})
		}
		return s
	}
	flatRSS := func(i int) uint64 { return uint64(40+i%2) * mbs }
	flatG := func(i int) int { return 20 + i%3 }
	cases := []struct {
		name             string
		samples          []SoakSample
		rssFlat, gorFlat bool
	}{
		{"steady", mk(flatRSS, flatG), true, true},
		// A start-up heap larger than the steady state is warm-up, not judged.
		{"big warm-up", mk(func(i int) uint64 {
			if i == 1 {
				return 80 * mbs
			}
			return flatRSS(i)
		}, flatG), true, true},
		{"memory grows 2 MB per sample", mk(func(i int) uint64 { return uint64(40+2*i) * mbs }, flatG), false, true},
		{"memory shrinks by a fifth", mk(func(i int) uint64 {
			if i >= 8 {
				return 32 * mbs
			}
			return 40 * mbs
		}, flatG), false, true},
		{"goroutines leak", mk(flatRSS, func(i int) int { return 20 + 5*i }), true, false},
		{"goroutines unknown", mk(flatRSS, func(int) int { return 0 }), true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &Soak{EverySeconds: 10, Samples: tc.samples}
			judgeSoak(s, 100*time.Second)
			if !s.Judged {
				t.Fatal("not judged")
			}
			if s.RSSFlat != tc.rssFlat || s.GoroutinesFlat != tc.gorFlat {
				t.Errorf("RSS flat %v (ref %d, %d–%d), goroutines flat %v (ref %d, end %d); want %v, %v",
					s.RSSFlat, s.RSSRef/mbs, s.RSSMin/mbs, s.RSSMax/mbs, s.GoroutinesFlat, s.GoroutinesRef, s.GoroutinesEnd, tc.rssFlat, tc.gorFlat)
			}
		})
	}
	t.Run("too short", func(t *testing.T) {
		s := &Soak{EverySeconds: 10, Samples: []SoakSample{{Seconds: 10, RSS: mbs}}}
		judgeSoak(s, 20*time.Second)
		if s.Judged || s.RSSFlat {
			t.Errorf("one sample judged: %+v", s)
		}
	})
}

// soakRun runs a short in-process soak and returns its result.
func soakRun(t *testing.T, o Options) *Result {
	t.Helper()
	o.Soak, o.SoakEvery, o.Signatures, o.Calibration, o.JSON = true, 500*time.Millisecond, -1, -1, true
	var out bytes.Buffer
	if err := Run(context.Background(), o, &out); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Phases) != 1 || res.Phases[0].Mode != modeSoak || res.Soak == nil {
		t.Fatalf("phases %+v, soak %v: want one soak phase and its samples", res.Phases, res.Soak)
	}
	return &res
}

// sampledErrors returns the errors the soak's samples count.
func sampledErrors(s *Soak) int {
	n := 0
	for _, x := range s.Samples {
		n += x.Errors
	}
	return n
}

// TestSoakCountsDropped has the open loop drop arrivals (one login in
// flight at most, offered far faster than one browser logs in): the
// samples must count them as the phase does.
func TestSoakCountsDropped(t *testing.T) {
	res := soakRun(t, Options{Rate: 400, Duration: 1500 * time.Millisecond, MaxOpenInFlight: 1})
	ph := res.Phases[0]
	if ph.Errors["dropped"] == 0 {
		t.Fatalf("no arrival dropped with one login in flight at 400/s: errors %v", ph.Errors)
	}
	phaseErrs := 0
	for _, n := range ph.Errors {
		phaseErrs += n
	}
	if got := sampledErrors(res.Soak); got != phaseErrs {
		t.Errorf("samples count %d errors, the phase %v", got, ph.Errors)
	}
}

// A short soak in this process samples every interval, counts every
// login in exactly one sample, and prints its verdict.
func TestSoakRun(t *testing.T) {
	res := soakRun(t, Options{Rate: 20, Duration: 3 * time.Second})
	s, ph := res.Soak, res.Phases[0]
	// Sampling goes on until the logins in flight have ended, which takes
	// longer on a loaded machine: at least the 3 s of arrivals are
	// sampled, every 0.5 s, and a last, shorter sample may follow.
	if len(s.Samples) < 5 {
		t.Errorf("%d samples in 3 s every 0.5 s, want at least 5", len(s.Samples))
	}
	for i, x := range s.Samples {
		tick := float64(i+1) * 0.5
		if last := i == len(s.Samples)-1; x.Seconds != tick && (!last || x.Seconds < tick-0.5) {
			t.Errorf("sample %d at %.1f s, want %.1f s", i, x.Seconds, tick)
		}
	}
	logins, errs := 0, sampledErrors(s)
	for _, x := range s.Samples {
		logins += x.Logins
		if x.RSS == 0 || x.Goroutines == 0 {
			t.Errorf("sample at %.1f s without memory or goroutines: %+v", x.Seconds, x)
		}
	}
	phaseErrs := 0
	for _, n := range ph.Errors {
		phaseErrs += n
	}
	if errs != phaseErrs {
		t.Errorf("samples count %d errors, the phase %v", errs, ph.Errors)
	}
	// The logins that end after the last tick are in a last sample.
	if done := ph.Logins + ph.LateLogins; logins != done {
		t.Errorf("samples count %d logins, the phase %d", logins, done)
	}
	if !strings.Contains(s.Source, "this process") {
		t.Errorf("source %q: in-process the harness is counted too, and must say so", s.Source)
	}

	var table bytes.Buffer
	if err := writeTables(&table, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"soak, sampled every 0.5 s", "RSS MB", "goroutines: at most"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

// Options that would have no effect are refused, not ignored.
func TestSoakNeedsRate(t *testing.T) {
	for _, o := range []Options{
		{Soak: true},
		{Soak: true, Rate: 10, Overload: true},
		{Soak: true, Rate: 10, Duration: 10 * time.Second, SoakEvery: 5 * time.Second},
		{Protocol: "oidc", CheckEvery: 10},
		{MetricsURL: "http://127.0.0.1:9090/metrics"},
	} {
		if err := o.defaults(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestCommandRefusesFlagsWithoutEffect(t *testing.T) {
	for _, args := range [][]string{
		{"--soak-every", "5s", "--rate", "10"},
		{"--metrics-listen", "127.0.0.1:9090"},
	} {
		var out, errb bytes.Buffer
		if code := Command(args, &out, &errb); code != 2 || !strings.Contains(errb.String(), "goes with") {
			t.Errorf("%v: exit %d, %q; want 2 and what the flag goes with", args, code, errb.String())
		}
	}
}
