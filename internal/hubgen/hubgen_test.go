package hubgen_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/app"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/hubgen"
	"github.com/skolbro/skolbro/internal/store"
)

// hub writes the demo's one-organiser configuration and adds n generated organisers of
// vendors vendors each.
func hub(tb testing.TB, n, vendors int) string {
	tb.Helper()
	dir := tb.TempDir()
	// The demo's first organiser alone: its second has an OIDC upstream
	// that the demo serves in-process, which a plain Build cannot reach.
	d, err := demo.SetupWith("https://hub.example.test", dir, time.Now(), demo.Options{OneOrganiser: true})
	if err != nil {
		tb.Fatal(err)
	}
	orgs, err := hubgen.Generate(dir, hubgen.Options{Organisers: n, VendorsPer: vendors, Base: "https://hub.example.test"})
	if err != nil {
		tb.Fatal(err)
	}
	if err := hubgen.AddTo(d.Config.File(), orgs); err != nil {
		tb.Fatal(err)
	}
	return d.Config.File()
}

// The generated hub builds with every organiser serving.
func TestGeneratedHubBuilds(t *testing.T) {
	path := hub(t, 3, 4)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	orgs, rep := app.Build(cfg, store.NewMemory(nil), time.Now)
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if len(orgs) != 4 {
		t.Fatalf("%d organisers built, want 4", len(orgs))
	}
	for _, o := range orgs[1:] {
		if got := len(o.Policies.All()); got != 4 {
			t.Errorf("%s: %d policies, want 4", o.ID, got)
		}
		if o.Prefix != "/o/"+o.ID {
			t.Errorf("%s served at %q", o.ID, o.Prefix)
		}
	}
}

// BenchmarkLoadHub50x30 loads a hub of 50 organisers with 30 vendors each
// (issue 15: under 2 s and 200 MB resident). It reports the time per load
// and the heap in use after it, with the whole hub held.
//
//	go test -run '^$' -bench LoadHub -benchtime 3x ./internal/hubgen
func BenchmarkLoadHub50x30(b *testing.B) {
	path := hub(b, 49, 30) // with the demo's organiser: 50
	b.ResetTimer()
	var held []any
	for i := 0; i < b.N; i++ {
		cfg, err := config.Load(path)
		if err != nil {
			b.Fatal(err)
		}
		orgs, rep := app.Build(cfg, store.NewMemory(nil), time.Now)
		if err := rep.Err(); err != nil {
			b.Fatal(err)
		}
		if len(orgs) != 50 {
			b.Fatalf("%d organisers", len(orgs))
		}
		held = append(held[:0], orgs)
	}
	b.StopTimer()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MB-heap-held")
	if rss, ok := vmRSS(); ok {
		b.ReportMetric(rss, "MB-rss")
	}
	_ = held
}

func vmRSS() (float64, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", "self", "status"))
	if err != nil {
		return 0, false
	}
	var kb float64
	for _, line := range splitLines(string(b)) {
		if _, err := fmt.Sscanf(line, "VmRSS: %f kB", &kb); err == nil {
			return kb / 1024, true
		}
	}
	return 0, false
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}
