package ops

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestQuickRestart_NewProcessBindsWhileOldDrains stops a `skolbro serve`
// process (SIGTERM: it drains for a while, still listening) and starts
// the next one on the same address at once, as a restart does (issue
// 17): the new process must bind (SO_REUSEPORT) instead of failing with
// "address already in use", serve while the old one drains, and serve a
// whole login alone once the old one has gone.
func TestQuickRestart_NewProcessBindsWhileOldDrains(t *testing.T) {
	bin := buildSkolbro(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	env := setupProcEnv(t, "http://"+addr, memoryStoreYAML, "")
	edit(t, env.cfg, func(s string) string { return strings.Replace(s, "listen: 127.0.0.1:0\n", "listen: "+addr+"\n", 1) })

	old := startBridge(t, "old", bin, env.cfg, "--drain-delay", "4s")
	if got := status("http://" + addr + "/readyz"); got != http.StatusOK {
		t.Fatalf("/readyz = %d, want 200", got)
	}
	if err := old.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool { return strings.Contains(old.log.String(), "draining") }) {
		t.Fatal("the old process did not start draining")
	}

	next := startBridge(t, "new", bin, env.cfg) // fails here with "address already in use" without SO_REUSEPORT
	if !old.running() {
		t.Fatalf("the old process ended before the new one listened: the test shows nothing (raise --drain-delay)")
	}
	// While both listen, the kernel spreads connections over them: the
	// new one answers ready, the draining one not.
	if !waitFor(10*time.Second, func() bool { return status("http://"+addr+"/readyz") == http.StatusOK }) {
		t.Errorf("no ready answer on %s while the old process drained", addr)
	}
	if code := old.exitCode(40 * time.Second); code != 0 {
		t.Errorf("the old process exited %d, want 0", code)
	}
	if !next.running() {
		t.Fatal("the new process ended")
	}
	env.trustBridge(t, "http://"+addr)
	if e := login(newBrowser(t), env.vendor, "anna.a"); !strings.HasSuffix(e, "@"+organiserScope) {
		t.Errorf("EPPN %q is not in the organiser's scope", e)
	}
	assertNoPersonalData(t, "the new process's log", next.log.String(), env.idp.Users)
}
