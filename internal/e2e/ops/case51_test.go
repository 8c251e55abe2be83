package ops

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/testidp"
)

// TestCase51_SIGHUPReloadUnderBench runs `skolbro bench` against a
// `skolbro serve` process while the configuration is reloaded 20 times
// (SECURITY.md case 51, issue 17): `skolbro reload` checks each change
// and sends SIGHUP; each change edits the bench vendor's release policy,
// every fifth also the release log's settings. One broken policy in the
// middle is refused by `skolbro reload` before any signal, and, sent
// anyway by SIGHUP, refused by the bridge, which keeps serving. The bench
// must report no failed login; the bridge's metrics count 20 applied and
// 1 refused reload.
func TestCase51_SIGHUPReloadUnderBench(t *testing.T) {
	bin := buildSkolbro(t)
	dir := t.TempDir()
	base := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	if out, err := exec.Command(bin, "bench", "--write-config", dir, "--base", base).CombinedOutput(); err != nil {
		t.Fatalf("bench --write-config: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "skolbro.yaml")
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	edit(t, cfg, func(s string) string {
		return s + "metrics_listen: " + metricsAddr + "\n"
	})
	pidFile := filepath.Join(dir, "skolbro.pid")
	p := startBridge(t, "bridge", bin, cfg, "--pid-file", pidFile)

	benchOut, benchErr := &syncBuffer{}, &syncBuffer{}
	bench := exec.Command(bin, "bench", "--target", base, "--config-dir", dir, "--target-pid", fmt.Sprint(p.cmd.Process.Pid),
		"--concurrency", "8", "--duration", "20s", "--json", "--signatures", "-1", "--calibrate", "-1")
	bench.Stdout, bench.Stderr = benchOut, benchErr
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	benchDone := make(chan error, 1)
	go func() { benchDone <- bench.Wait() }()
	t.Cleanup(func() {
		if bench.ProcessState == nil {
			_ = bench.Process.Kill()
		}
	})
	// The reloads start once the measured phase has.
	if !waitFor(60*time.Second, func() bool { return strings.Contains(benchErr.String(), "closed loop") }) {
		t.Fatalf("the bench did not reach its load phase:\n%s", benchErr)
	}

	policy := filepath.Join(dir, "attribute-release", "learning-app.yaml")
	reloaded := func() int { return strings.Count(p.log.String(), `"message":"configuration reloaded"`) }
	reload := func(round int) {
		t.Helper()
		out, err := exec.Command(bin, "reload", "--pid-file", pidFile, "--config", cfg).CombinedOutput()
		if err != nil {
			t.Fatalf("round %d: skolbro reload: %v\n%s", round, err, out)
		}
	}
	start := time.Now()
	for round := 1; round <= 20; round++ {
		edit(t, policy, func(s string) string {
			return regexp.MustCompile(`(?m)^purpose: .*$`).ReplaceAllString(s, fmt.Sprintf("purpose: \"Bench reload round %d: pupils and teachers log in.\"", round))
		})
		if round%5 == 0 {
			edit(t, cfg, func(s string) string {
				if strings.Contains(s, "    max_bytes: 50000000\n") {
					return strings.Replace(s, "    max_bytes: 50000000\n", "", 1)
				}
				return strings.Replace(s, "    key_file: keys/audit.key\n", "    key_file: keys/audit.key\n    max_bytes: 50000000\n", 1)
			})
		}
		if round == 10 {
			good, err := os.ReadFile(policy)
			if err != nil {
				t.Fatal(err)
			}
			edit(t, policy, func(s string) string { return s + "no_such_key: 1\n" })
			out, err := exec.Command(bin, "reload", "--pid-file", pidFile, "--config", cfg).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "not sent") {
				t.Fatalf("skolbro reload sent a broken configuration: %v\n%s", err, out)
			}
			if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			if !waitFor(30*time.Second, func() bool { return strings.Contains(p.log.String(), "reload refused") }) {
				t.Fatalf("the bridge did not refuse the broken configuration")
			}
			writeFile(t, policy, good)
		}
		want := reloaded() + 1
		reload(round)
		if !waitFor(30*time.Second, func() bool { return reloaded() >= want }) {
			t.Fatalf("round %d: the bridge did not reload:\n%s", round, tail(p.log.String(), 20))
		}
	}
	took := time.Since(start)
	select {
	case <-benchDone:
		t.Fatalf("the bench ended before the 20 reloads did (they took %v): raise --duration", took)
	default:
	}
	if err := <-benchDone; err != nil {
		t.Fatalf("bench: %v\n%s", err, benchErr)
	}
	var res struct {
		Phases []struct {
			Mode            string         `json:"mode"`
			Logins          int            `json:"logins"`
			Errors          map[string]int `json:"errors"`
			LoginsPerSecond float64        `json:"logins_per_s"`
			Login           struct {
				P50 float64 `json:"p50_ms"`
				P99 float64 `json:"p99_ms"`
			} `json:"login"`
		} `json:"phases"`
	}
	if err := json.Unmarshal([]byte(benchOut.String()), &res); err != nil || len(res.Phases) != 1 {
		t.Fatalf("bench output: %v\n%s", err, benchOut)
	}
	ph := res.Phases[0]
	t.Logf("bench during 20 reloads in %v (1 refused): %d logins, %.1f logins/s, p50 %.0f ms, p99 %.0f ms, errors %v",
		took.Round(time.Millisecond), ph.Logins, ph.LoginsPerSecond, ph.Login.P50, ph.Login.P99, ph.Errors)
	if len(ph.Errors) > 0 {
		t.Errorf("logins failed during the reloads: %v", ph.Errors)
	}
	if ph.Logins == 0 {
		t.Errorf("no login completed")
	}
	m := scrape(t, "http://"+metricsAddr+"/metrics")
	for _, want := range []string{`skolbro_reload_total{result="applied"} 20`, `skolbro_reload_total{result="refused"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(m, "skolbro_protection_lookups_total") {
		t.Errorf("the build's own metrics (protection lookups) are not served")
	}
	assertNoPersonalData(t, "the bridge's log", p.log.String(), testidp.DemoUsers(demo.UpstreamScope))
}

func edit(t *testing.T, path string, f func(string) string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, []byte(f(string(b))))
}

func scrape(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
