package ops

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServePacesTheCollector: skolbro serve lets its small live heap grow
// by a headroom before the collector runs (GOGC above Go's 100, as its
// own /metrics reports), and leaves an operator's GOGC alone.
func TestServePacesTheCollector(t *testing.T) {
	bin := buildSkolbro(t)
	if v, set := os.LookupEnv("GOGC"); set {
		os.Unsetenv("GOGC")
		t.Cleanup(func() { os.Setenv("GOGC", v) })
	}
	cases := []struct {
		name string
		gogc string // "" leaves GOGC unset
		want func(float64) bool
		says string
	}{
		{"unset: paced", "", func(p float64) bool { return p > 100 }, "above 100"},
		{"an operator's GOGC is kept", "150", func(p float64) bool { return p == 150 }, "150"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.gogc != "" {
				t.Setenv("GOGC", c.gogc)
			}
			metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			env := setupProcEnv(t, "http://127.0.0.1:1", memoryStoreYAML, "metrics_listen: "+metrics+"\n")
			p := startBridge(t, "bridge", bin, env.cfg)
			var got float64
			var seen bool
			waitFor(10*time.Second, func() bool {
				got, seen = gogcPercent("http://" + metrics + "/metrics")
				return seen
			})
			if !seen {
				t.Fatalf("no go_gc_gogc_percent on the bridge's /metrics")
			}
			if !c.want(got) {
				t.Errorf("go_gc_gogc_percent = %v, want %s", got, c.says)
			}
			if paced := strings.Contains(p.log.String(), "garbage collector paced"); paced != (c.gogc == "") {
				t.Errorf("the log says paced: %v, want %v:\n%s", paced, c.gogc == "", p.log)
			}
		})
	}
}

// gogcPercent reads go_gc_gogc_percent from a Prometheus text page.
func gogcPercent(url string) (float64, bool) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_gc_gogc_percent "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}
