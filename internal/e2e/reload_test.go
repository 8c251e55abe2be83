package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/app"
	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/browsertest"
	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/metrics"
	"github.com/skolbro/skolbro/internal/store"
)

// liveEnv is the demo served as `skolbro serve` serves it, through
// app.Live, so that tests reload it as SIGHUP does.
type liveEnv struct {
	*env
	lives   []*app.Live
	reloads *metrics.Reloads
	reg     *prometheus.Registry
}

// startLiveEnv starts the demo over TLS with instances bridges on one
// store behind a round-robin balancer, each reloadable.
func startLiveEnv(t *testing.T, instances int, newStore func(t *testing.T) store.Store) *liveEnv {
	t.Helper()
	return startLiveEnvWith(t, instances, newStore, nil)
}

// startLiveEnvWith is startLiveEnv with prepare run on the deployment
// before the bridges are built.
func startLiveEnvWith(t *testing.T, instances int, newStore func(t *testing.T) store.Store, prepare func(d *demo.Demo)) *liveEnv {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "https://" + srv.Listener.Addr().String()
	d, err := demo.Setup(base, t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(d)
	}
	reg := prometheus.NewRegistry()
	reloads, err := metrics.NewReloads(reg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := zerolog.New(logs)
	st := newStore(t)
	le := &liveEnv{reloads: reloads, reg: reg}
	var hs []http.Handler
	for i := 0; i < instances; i++ {
		h, live, err := d.LiveHandler(log.With().Int("instance", i).Logger(), st, reloads)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(live.Close)
		hs = append(hs, h)
		le.lives = append(le.lives, live)
	}
	var n atomic.Uint64
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs[int(n.Add(1)-1)%len(hs)].ServeHTTP(w, r)
	})
	srv.StartTLS()
	t.Cleanup(srv.Close)
	d.OIDCVendor.HTTPClient = srv.Client()
	le.env = &env{t: t, demo: d, srv: srv, logs: logs}
	return le
}

// reloadAll reloads every instance, as SIGHUP sent to each process does.
func (e *liveEnv) reloadAll() error {
	var errs []error
	for _, l := range e.lives {
		if _, err := l.Reload(context.Background()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// editFile rewrites a file of the demo's deployment.
func (e *liveEnv) editFile(rel string, edit func(string) string) {
	e.t.Helper()
	p := filepath.Join(e.demo.Dir, rel)
	b, err := os.ReadFile(p)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(edit(string(b))), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// tryLogin runs one whole login without failing the test, for use from
// several goroutines: nil when the vendor accepted the bridge's answer.
func (e *env) tryLogin(ctx context.Context, vendor, user string) error {
	b := browsertest.New(e.srv.Client().Transport)
	ov := e.demo.OIDCVendor
	var start string
	var err error
	if vendor == ov.Name {
		start, err = ov.LoginURL(ctx)
	} else {
		start, err = e.vendor(vendor).LoginURL("rs")
	}
	if err != nil {
		return err
	}
	p, err := b.Get(ctx, start)
	if err != nil || p.Status != http.StatusOK || p.URL.Path != "/demo/idp/sso" {
		return fmt.Errorf("start: %v %v", p, err)
	}
	if p, err = b.Submit(ctx, p, url.Values{"user": {user}}); err != nil || p.Status != http.StatusOK {
		return fmt.Errorf("school IdP: %v %v", p, err)
	}
	if p, err = b.Submit(ctx, p, nil); err != nil || p.Status != http.StatusOK { // to the bridge's ACS
		return fmt.Errorf("bridge ACS: %v %v", p, err)
	}
	if vendor != ov.Name {
		if p, err = b.Submit(ctx, p, nil); err != nil || p.Status != http.StatusOK { // to the vendor
			return fmt.Errorf("vendor: %v %v", p, err)
		}
	}
	if !strings.HasPrefix(p.URL.Path, "/demo/vendor/"+vendor) || !strings.Contains(p.Body, "<table>") {
		return fmt.Errorf("the vendor did not show a completed login: %v", p)
	}
	return nil
}

// releaseEvents reads the release log's events.
func releaseEvents(t *testing.T, dir string) []audit.Event {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "releases-*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var ev audit.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("%s: a line that is no event: %v", f, err)
			}
			out = append(out, ev)
		}
		fh.Close()
	}
	return out
}

// TestCase51_ReloadUnderLoadNoFailedLogin runs logins without pause from
// four browsers at a time, SAML and OIDC vendors, on two bridge instances
// sharing one store, while both are reloaded 20 times: each reload
// changes a release policy, every fifth one also the release log's
// settings (a new log is opened, the old one closed once idle), and one
// in the middle brings a broken policy, which is refused on both. No
// login may fail, and the release log must hold exactly one event per
// login (none lost across reopened logs), under more than one policy
// version.
func TestCase51_ReloadUnderLoadNoFailedLogin(t *testing.T) {
	e := startLiveEnv(t, 2, memoryStore)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	users := []string{}
	for _, u := range e.demo.IdP.Users {
		users = append(users, u.Login)
	}
	vendors := []string{"learning-app", "national-tests", e.demo.OIDCVendor.Name}
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Go(func() {
			for i := w; ctx.Err() == nil; i++ {
				err := e.tryLogin(ctx, vendors[i%len(vendors)], users[i%len(users)])
				if ctx.Err() != nil {
					return // cut off by the end of the test, not by a reload
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		})
	}
	waitLogins := func(n int64) {
		for deadline := time.Now().Add(60 * time.Second); ok.Load()+failed.Load() < n; {
			if time.Now().After(deadline) {
				t.Fatalf("logins stalled at %d", ok.Load()+failed.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitLogins(4)
	applied, refused := 0, 0
	for round := 1; round <= 20; round++ {
		e.editFile("attribute-release/learning-app.yaml", func(s string) string {
			i := strings.Index(s, "purpose: ")
			j := strings.Index(s[i:], "\n")
			return s[:i] + fmt.Sprintf("purpose: \"Reload round %d: pupils and teachers log in; EPPN keeps their work.\"", round) + s[i+j:]
		})
		if round%5 == 0 {
			e.editFile("skolbro.yaml", func(s string) string {
				if strings.Contains(s, "    max_bytes: ") {
					return strings.Replace(s, "    max_bytes: 50000000\n", "", 1)
				}
				return strings.Replace(s, "    key_file: keys/audit.key\n", "    key_file: keys/audit.key\n    max_bytes: 50000000\n", 1)
			})
		}
		if round == 10 {
			good, err := os.ReadFile(filepath.Join(e.demo.Dir, "attribute-release", "national-tests.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			e.editFile("attribute-release/national-tests.yaml", func(s string) string { return s + "no_such_key: true\n" })
			if err := e.reloadAll(); err == nil {
				t.Fatalf("round %d: a broken policy was applied", round)
			}
			refused++
			waitLogins(ok.Load() + failed.Load() + 2)
			if err := os.WriteFile(filepath.Join(e.demo.Dir, "attribute-release", "national-tests.yaml"), good, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.reloadAll(); err != nil {
			t.Fatalf("round %d: reload refused: %v", round, err)
		}
		applied++
		// Some logins on every configuration, some of them across the swap.
		waitLogins(ok.Load() + failed.Load() + 2)
	}
	cancel()
	wg.Wait()
	t.Logf("%d logins during %d reloads of 2 instances (%d refused), %d failed", ok.Load(), applied, refused, failed.Load())
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d logins failed during reloads; first: %s", n, failures[0])
	}
	if got := testutil.ToFloat64(e.reloads.Total(metrics.ReloadApplied)); got != float64(2*applied) {
		t.Errorf("skolbro_reload_total{result=applied} = %v, want %d", got, 2*applied)
	}
	if got := testutil.ToFloat64(e.reloads.Total(metrics.ReloadRefused)); got != float64(2*refused) {
		t.Errorf("skolbro_reload_total{result=refused} = %v, want %d", got, 2*refused)
	}
	// Every login is in the release log once; none was lost when logs
	// were reopened (tryLogin cut off by cancel may have released without
	// being counted, hence at least).
	var releases int64
	versions := map[string]bool{}
	for _, ev := range releaseEvents(t, filepath.Join(e.demo.Dir, "audit")) {
		if ev.Outcome != audit.OutcomeReleased {
			t.Errorf("event %s for %s: %s", ev.Outcome, ev.Vendor, ev.Reason)
			continue
		}
		releases++
		if ev.Vendor == "learning-app" {
			versions[ev.PolicyVersion] = true
		}
	}
	if releases < ok.Load() || releases > ok.Load()+4 {
		t.Errorf("%d release events for %d logins (+ at most 4 cut off)", releases, ok.Load())
	}
	if len(versions) < 2 {
		t.Errorf("learning-app released under %d policy version(s): the reloads did not take effect", len(versions))
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"reload refused: the running configuration stays (run skolbro check)"`) ||
		!strings.Contains(logs, "no_such_key") {
		t.Errorf("the refused reload and its problem are not in the log")
	}
	checkLogs(t, e.env, strings.ReplaceAll(e.logs.String(), e.demo.Dir, "DIR"))
}

// TestCase51_BrokenConfigurationNotApplied: a reload of a configuration
// with an error changes nothing (the running policy still decides what a
// vendor gets), the error is logged, counted and recorded for check; the
// fixed configuration then applies at once, without a restart.
func TestCase51_BrokenConfigurationNotApplied(t *testing.T) {
	e := startLiveEnv(t, 1, memoryStore)
	b := newBrowser(t, e.srv.Client())
	if got := attrs(e.login(b, "learning-app", "anna.a").received); len(got["givenName"]) != 1 {
		t.Fatalf("before: givenName %q, want the policy's release", got["givenName"])
	}
	dropGivenName := func(s string) string { return strings.Replace(s, "  - name: givenName\n", "", 1) }
	for _, tc := range []struct {
		name   string
		break_ func()
		want   string // in the logged problem
	}{
		{"policy_with_unknown_key", func() {
			e.editFile("attribute-release/learning-app.yaml", func(s string) string { return dropGivenName(s) + "no_such_key: 1\n" })
		}, "no_such_key"},
		{"vendor_metadata_missing", func() {
			e.editFile("attribute-release/learning-app.yaml", dropGivenName)
			if err := os.Rename(filepath.Join(e.demo.Dir, "metadata", "national-tests.xml"), filepath.Join(e.demo.Dir, "national-tests.xml.away")); err != nil {
				t.Fatal(err)
			}
		}, "no metadata for entityID"},
		{"restart_only_setting", func() {
			e.editFile("attribute-release/learning-app.yaml", dropGivenName)
			e.editFile("skolbro.yaml", func(s string) string { return strings.Replace(s, "log_level: info", "log_level: debug", 1) })
		}, "log_level: changed: takes effect only on a restart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			snapshot(t, e.demo.Dir, dir)
			tc.break_()
			before := testutil.ToFloat64(e.reloads.Total(metrics.ReloadRefused))
			if _, err := e.lives[0].Reload(context.Background()); err == nil {
				t.Fatal("a configuration with an error was applied")
			}
			if got := testutil.ToFloat64(e.reloads.Total(metrics.ReloadRefused)); got != before+1 {
				t.Errorf("skolbro_reload_total{result=refused} went from %v to %v", before, got)
			}
			if !strings.Contains(e.logs.String(), tc.want) {
				t.Errorf("the log does not name the problem %q", tc.want)
			}
			// The running policy still decides.
			if got := attrs(e.login(newBrowser(t, e.srv.Client()), "learning-app", "anna.a").received); len(got["givenName"]) != 1 {
				t.Errorf("after the refused reload: givenName %q, want the running policy's release", got["givenName"])
			}
			// Recorded where check reads it (the store the bridge runs on).
			rec, err := app.ReadReloadRecord(context.Background(), e.lives[0].Store())
			if err != nil || rec == nil || rec.Result != metrics.ReloadRefused || !strings.Contains(strings.Join(rec.Problems, "\n"), tc.want) {
				t.Errorf("reload record = %+v, %v; want refused naming %q", rec, err, tc.want)
			}
			restore(t, dir, e.demo.Dir)
		})
	}
	// Fixed: the change applies at the next reload.
	e.editFile("attribute-release/learning-app.yaml", dropGivenName)
	if _, err := e.lives[0].Reload(context.Background()); err != nil {
		t.Fatalf("the fixed configuration was refused: %v", err)
	}
	if got := attrs(e.login(newBrowser(t, e.srv.Client()), "learning-app", "anna.a").received); got["givenName"] != nil {
		t.Errorf("after the applied reload: givenName %q released, the new policy drops it", got["givenName"])
	}
	rec, err := app.ReadReloadRecord(context.Background(), e.lives[0].Store())
	if err != nil || rec == nil || rec.Result != metrics.ReloadApplied {
		t.Errorf("reload record = %+v, %v; want applied", rec, err)
	}
	checkLogs(t, e.env, strings.ReplaceAll(e.logs.String(), e.demo.Dir, "DIR"))
}

// TestCase51_LoginInFlightFinishesAcrossReload starts logins (SAML and
// OIDC vendors), reloads while the person is at the school IdP, and
// finishes them: they complete, answered to what the vendor asked at the
// start, under the policy in force at the release (the reload dropped an
// attribute: a release after the change never carries it). A login whose
// vendor a reload removed is refused, not answered.
func TestCase51_LoginInFlightFinishesAcrossReload(t *testing.T) {
	e := startLiveEnv(t, 1, memoryStore)
	// To the school IdP's form towards the bridge's ACS, for each vendor.
	type inFlight struct {
		b      *browser
		vendor string
		p      page
	}
	start := func(vendor string) inFlight {
		b := newBrowser(t, e.srv.Client())
		var u string
		var err error
		if vendor == e.demo.OIDCVendor.Name {
			u, err = e.demo.OIDCVendor.LoginURL(context.Background())
		} else {
			u, err = e.vendor(vendor).LoginURL("rs-" + vendor)
		}
		if err != nil {
			t.Fatal(err)
		}
		p := b.submit(b.get(u), url.Values{"user": {"anna.a"}})
		if p.status != http.StatusOK {
			t.Fatalf("school IdP: %s", p)
		}
		return inFlight{b, vendor, p}
	}
	saml, oidc, removed := start("learning-app"), start(e.demo.OIDCVendor.Name), start("national-tests")

	e.editFile("attribute-release/learning-app.yaml", func(s string) string { return strings.Replace(s, "  - name: givenName\n", "", 1) })
	e.editFile("attribute-release/oidc-app.yaml", func(s string) string {
		return strings.Replace(s, "  - name: givenName\n", "", 1)
	})
	if err := os.Remove(filepath.Join(e.demo.Dir, "attribute-release", "national-tests.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.lives[0].Reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}

	p := saml.b.submit(saml.p, nil) // the ACS, now on the new configuration
	if p.status != http.StatusOK {
		t.Fatalf("the SAML login in flight failed after the reload: %s: %.300s", p, p.body)
	}
	fs, _ := p.forms()
	if len(fs) != 1 || fs[0].action != e.vendor("learning-app").Base+"/acs" || fs[0].fields.Get("RelayState") != "rs-learning-app" {
		t.Fatalf("not answered to the vendor's request from the start: %v", fs)
	}
	if p = saml.b.submit(p, nil); p.status != http.StatusOK {
		t.Fatalf("the vendor refused the answer: %s", p)
	}
	got := attrs(e.vendor("learning-app").Last())
	if got["givenName"] != nil || len(got["eduPersonPrincipalName"]) != 1 {
		t.Errorf("released %v; want the policy in force at the release (no givenName)", got)
	}

	p = oidc.b.submit(oidc.p, nil)
	if p.status != http.StatusOK || !strings.HasPrefix(p.url.Path, "/demo/vendor/"+e.demo.OIDCVendor.Name) {
		t.Fatalf("the OIDC login in flight failed after the reload: %s: %.300s", p, p.body)
	}
	for _, c := range e.demo.OIDCVendor.Last().Claims {
		if c.Name == "given_name" {
			t.Errorf("given_name released after the reload dropped it")
		}
	}

	p = removed.b.submit(removed.p, nil)
	if p.status == http.StatusOK {
		t.Errorf("a login for a vendor the reload removed was answered: %s", p)
	}
	checkLogs(t, e.env, strings.ReplaceAll(e.logs.String(), e.demo.Dir, "DIR"))
}

// snapshot copies the deployment's files (not the release log) to dir.
func snapshot(t *testing.T, from, to string) {
	t.Helper()
	for _, sub := range []string{"skolbro.yaml", "attribute-release", "metadata"} {
		copyPath(t, filepath.Join(from, sub), filepath.Join(to, sub))
	}
}

// restore puts a snapshot back, removing what was added since.
func restore(t *testing.T, from, to string) {
	t.Helper()
	for _, sub := range []string{"attribute-release", "metadata"} {
		if err := os.RemoveAll(filepath.Join(to, sub)); err != nil {
			t.Fatal(err)
		}
	}
	snapshot(t, from, to)
}

func copyPath(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
