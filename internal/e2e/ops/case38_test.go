package ops

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/demovendor"
	"github.com/skolbro/skolbro/internal/store"
)

// TestCase38_StoreDownFailsClosedAndRecovers runs the bridge on a real
// redis-server of its own, then kills Redis (and later freezes it) in the
// middle of logins: each login step that needs the store answers 503 with
// an error page, readiness fails, and once Redis is back logins succeed
// again on the same bridge, without a rebuild or restart (SECURITY.md
// case 38).
func TestCase38_StoreDownFailsClosedAndRecovers(t *testing.T) {
	rs := startRedis(t)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	d, err := demo.Setup(base, t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.NewRedisFromConfig([]string{rs.addr()}, "", "", 0, "", nil, "skolbro-ops-"+randomHex(t, 4)+":")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &syncBuffer{}
	h, err := d.HandlerWithStore(zerolog.New(logs), st)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	v := demoVendor(t, d, "learning-app")
	ready := func() int { return status(base + "/readyz") }

	if got := ready(); got != http.StatusOK {
		t.Fatalf("/readyz = %d before any fault, want 200", got)
	}
	first := login(newBrowser(t), v, "anna.a")

	// faults are the two ways a store fails: gone (connection refused)
	// and hanging (connected, no answer until the client's timeout).
	faults := []struct {
		name     string
		down, up func()
	}{
		{"redis killed", rs.kill, rs.start},
		{"redis frozen", func() { rs.signal(syscall.SIGSTOP) }, func() { rs.signal(syscall.SIGCONT) }},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			// A login in progress: its pending request is in the store.
			inProgress := newBrowser(t)
			atACS := toACS(inProgress, v, "bertil.b")

			f.down()
			upAgain := false
			defer func() {
				if !upAgain {
					f.up()
				}
			}()

			// The SSO step of a new login: the pending request cannot be
			// stored.
			p := newBrowser(t).get(mustLoginURL(t, v))
			assertUnavailable(t, "SSO", p, "/saml/idp/sso")

			// The ACS step of the login in progress: neither the replay
			// cache nor the pending request can be checked.
			p = inProgress.submit(atACS, nil)
			assertUnavailable(t, "ACS", p, "/saml/sp/acs")

			if got := ready(); got != http.StatusServiceUnavailable {
				t.Errorf("/readyz = %d with the store down, want 503", got)
			}

			f.up()
			upAgain = true
			// Recovery is automatic: the same bridge, the same client.
			if !waitFor(20*time.Second, func() bool { return ready() == http.StatusOK }) {
				t.Fatalf("/readyz did not recover after Redis came back")
			}
			if got := login(newBrowser(t), v, "anna.a"); got != first {
				t.Errorf("after recovery the EPPN is %q, before it was %q", got, first)
			}
		})
	}
	out := logs.String()
	if n := strings.Count(out, `store_unavailable"`); n < 2*len(faults) {
		t.Errorf("the log has %d store_unavailable refusals, want at least %d", n, 2*len(faults))
	}
	assertNoPersonalData(t, "the bridge's log", out, d.IdP.Users)
}

func demoVendor(t *testing.T, d *demo.Demo, name string) *demovendor.Vendor {
	t.Helper()
	for _, v := range d.Vendors {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("the demo has no vendor %q", name)
	return nil
}

func mustLoginURL(t *testing.T, v *demovendor.Vendor) string {
	t.Helper()
	u, err := v.LoginURL("rs-ops")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// assertUnavailable checks a fail-closed answer: 503 from the bridge at
// path, an error page with a request id, no form that would post anything
// onwards, and no internals.
func assertUnavailable(t *testing.T, step string, p page, path string) {
	t.Helper()
	if p.status != http.StatusServiceUnavailable || p.url.Path != path {
		t.Errorf("%s step: %s, want 503 at %s", step, p, path)
		return
	}
	if len(p.forms()) != 0 {
		t.Errorf("%s step: the 503 page carries a form", step)
	}
	if p.header.Get("X-Request-Id") == "" || !strings.Contains(p.body, p.header.Get("X-Request-Id")) {
		t.Errorf("%s step: the 503 page shows no request id", step)
	}
	if strings.Contains(strings.ToLower(p.body), "redis") {
		t.Errorf("%s step: the 503 page names the backend", step)
	}
}
