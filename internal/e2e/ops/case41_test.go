package ops

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCase41_SIGTERMDuringLogin sends SIGTERM to a `skolbro serve` process
// while a login's ACS POST is in flight (its body held back), and checks
// the order of a graceful shutdown (SECURITY.md case 41): readiness fails
// first while the listener still serves, then the listener closes, the
// in-flight request still completes and the login succeeds, and the
// process exits 0.
func TestCase41_SIGTERMDuringLogin(t *testing.T) {
	bin := buildSkolbro(t)
	rr := &roundRobin{}
	proxy := httptest.NewServer(rr)
	t.Cleanup(proxy.Close)
	env := setupProcEnv(t, proxy.URL, memoryStoreYAML, "")
	p := startBridge(t, "bridge", bin, env.cfg, "--drain-delay", "2s")
	rr.setBackends(p.url())
	env.trustBridge(t, proxy.URL)
	if got := status(p.url() + "/readyz"); got != http.StatusOK {
		t.Fatalf("/readyz = %d before SIGTERM, want 200", got)
	}

	b := newBrowser(t)
	atACS := toACS(b, env.vendor, "anna.a")
	f := b.onlyForm(atACS)
	acsURL, err := url.Parse(f.action)
	if err != nil {
		t.Fatal(err)
	}
	body := f.fields.Encode()

	// The ACS POST, straight to the process on a connection of its own.
	// Expect: 100-continue makes the server say when the handler starts
	// reading the body: from then on the request is in flight.
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var cookies []string
	for _, c := range b.b.Client.Jar.Cookies(acsURL) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
		"Content-Length: %d\r\nCookie: %s\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
		acsURL.Path, acsURL.Host, len(body), strings.Join(cookies, "; "))
	br := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	cont, err := http.ReadResponse(br, nil)
	if err != nil || cont.StatusCode != http.StatusContinue {
		t.Fatalf("expected 100 Continue from the ACS handler, got %v, %v", cont, err)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Readiness must fail while the listener still accepts (so that the
	// load balancer stops sending logins); only then may it close.
	sawNotReady := false
	closed := waitFor(30*time.Second, func() bool {
		switch status(p.url() + "/readyz") {
		case http.StatusServiceUnavailable:
			sawNotReady = true
		case 0:
			return true // nothing answers: the listener has closed
		case http.StatusOK:
			if sawNotReady {
				t.Errorf("/readyz answered 200 again after 503")
			}
		}
		return false
	})
	if !sawNotReady {
		t.Fatalf("/readyz never answered 503 after SIGTERM before the listener closed")
	}
	if !closed {
		t.Fatalf("the listener did not close after the drain delay")
	}
	if !p.running() {
		t.Fatalf("the process exited with a request in flight")
	}

	// Now the rest of the request: it must still be served.
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatalf("writing the held-back body: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the in-flight request got no answer: %v", err)
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the in-flight ACS request answered %d, want 200", resp.StatusCode)
	}
	got := toVendor(b, env.vendor, page{status: resp.StatusCode, url: acsURL, header: resp.Header, body: string(respBody)})
	if e := eppn(t, got); !strings.HasSuffix(e, "@"+organiserScope) {
		t.Errorf("EPPN %q is not in the organiser's scope", e)
	}

	if code := p.exitCode(30 * time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	log := p.log.String()
	if !strings.Contains(log, `"shutting down"`) {
		t.Errorf("the log does not show the shutdown")
	}
	assertNoPersonalData(t, "the bridge's log", log, env.idp.Users)
}
