package ops

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestTwoProcessesRoundRobin runs two `skolbro serve` processes on one
// Redis behind a round-robin reverse proxy, so that every step of a login
// lands on the other process than the step before: the pending request
// stored by one must be found by the other, and the vendor must receive
// the same EPPN from either.
func TestTwoProcessesRoundRobin(t *testing.T) {
	redisAddr := redisForProcesses(t)
	bin := buildSkolbro(t)

	rr := &roundRobin{}
	proxy := httptest.NewServer(rr)
	t.Cleanup(proxy.Close)
	env := setupProcEnv(t, proxy.URL, redisStoreYAML(redisAddr, "skolbro-ops-"+randomHex(t, 6)+":"), "")
	a := startBridge(t, "bridge A", bin, env.cfg)
	b := startBridge(t, "bridge B", bin, env.cfg)
	for _, p := range []*bridgeProc{a, b} {
		if got := status(p.url() + "/readyz"); got != http.StatusOK {
			t.Fatalf("%s: /readyz = %d, want 200", p.name, got)
		}
	}
	rr.setBackends(a.url(), b.url())
	env.trustBridge(t, proxy.URL)

	const logins = 4
	var eppns []string
	for i := 0; i < logins; i++ {
		before := len(rr.hits())
		eppns = append(eppns, login(newBrowser(t), env.vendor, "anna.a"))
		steps := rr.hits()[before:]
		if len(steps) != 2 || steps[0].path != "/saml/idp/sso" || steps[1].path != "/saml/sp/acs" {
			t.Fatalf("login %d went through the proxy as %v, want the SSO step then the ACS step", i, steps)
		}
		if steps[0].backend == steps[1].backend {
			t.Errorf("login %d: both steps on one process: the test shows nothing", i)
		}
		// One extra request shifts the rotation, so that each process
		// serves each step in turn.
		if got := status(proxy.URL + "/healthz"); got != http.StatusOK {
			t.Fatalf("/healthz through the proxy = %d", got)
		}
	}
	served := map[[2]int]bool{}
	for _, h := range rr.hits() {
		if h.path == "/saml/idp/sso" {
			served[[2]int{0, h.backend}] = true
		}
		if h.path == "/saml/sp/acs" {
			served[[2]int{1, h.backend}] = true
		}
	}
	if len(served) != 4 {
		t.Errorf("not every process served every step: %v", served)
	}
	for i, e := range eppns {
		if e != eppns[0] {
			t.Errorf("login %d: EPPN %q, the first login got %q", i, e, eppns[0])
		}
	}
	if other := login(newBrowser(t), env.vendor, "bertil.b"); other == eppns[0] {
		t.Errorf("two pupils got the same EPPN")
	}
	for _, p := range []*bridgeProc{a, b} {
		assertNoPersonalData(t, "the log of "+p.name, p.log.String(), env.idp.Users)
	}
}
