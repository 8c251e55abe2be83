package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/samlslo"
)

// requireChromium finds headless Chromium, or skips the test (fails it
// when CI=true).
func requireChromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("SKOLBRO_CHROMIUM"), "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found, and CI=true: the browser test must run")
	}
	t.Skip("chromium not found")
	return ""
}

// TestCase50_LogoutInChromium runs Single Logout in a real browser, which
// enforces what the simulated one cannot: the logout page's Content
// Security Policy and frame rules, its script waiting for the vendors'
// answers (postMessage from the frames, well before its 30-second bound),
// the cookies' SameSite rules, and every auto-posting page. A pupil logs in to two SAML vendors and the
// OIDC vendor, and logs out at one SAML vendor: the other SAML vendor
// answers in its frame in time (so the answer is Success, not
// PartialLogout), the OIDC vendor by back channel, and the school IdP
// ends its session.
func TestCase50_LogoutInChromium(t *testing.T) {
	path := requireChromium(t)
	// The page's own wait is long: coming back well before it shows the
	// page continued on the frames' answers, not on its timer.
	e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
		setLogoutConfig(t, d, "    vendor_wait: 30s\n")
	})
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// The test server's certificate is made per run.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			loc, _ := chromedp.Run(bctx, chromedp.Location())
			t.Fatalf("%s: %v (at %s)", what, err, loc)
		}
	}
	login := func(vendorPath string) {
		t.Helper()
		do("log in at "+vendorPath,
			chromedp.Navigate(e.srv.URL+vendorPath),
			chromedp.Click(chromedp.CSS(`form[action$="/login"] button`)),
			chromedp.Click(chromedp.CSS(`button[name="user"][value="anna.a"]`)),
			chromedp.WaitVisible(chromedp.CSS(`form[action$="/logout"] button`)),
		)
	}
	login("/demo/vendor/learning-app/")
	login("/demo/vendor/national-tests/")
	login("/demo/vendor/oidc-app/")
	nid := e.vendor("national-tests").Last().NameID
	sid := e.demo.OIDCVendor.Last().SID
	if !e.vendor("national-tests").LoggedIn(nid) || !e.demo.OIDCVendor.LoggedIn(sid) {
		t.Fatal("the vendors hold no sessions after the logins")
	}

	do("log out at the learning app",
		chromedp.Navigate(e.srv.URL+"/demo/vendor/learning-app/"),
		chromedp.Click(chromedp.CSS(`form[action$="/logout"] button`)),
	)
	// Back at the vendor, logged out: its page has only the login form.
	back := `location.pathname === "/demo/vendor/learning-app/" && document.readyState === "complete" && !document.querySelector('form[action$="/logout"]')`
	for deadline := time.Now().Add(20 * time.Second); ; {
		if done, err := chromedp.Run(bctx, chromedp.Evaluate[bool](back)); err == nil && done {
			break
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(bctx, chromedp.Location())
			t.Fatalf("the logout did not come back to the vendor (at %s)", loc)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if loc, _ := chromedp.Run(bctx, chromedp.Location()); !strings.HasPrefix(loc, e.vendor("learning-app").Base) {
		t.Errorf("the logout ended at %s, not at the vendor", loc)
	}
	if got := e.vendor("learning-app").LastLogoutAnswer(); got != samlslo.StatusSuccess {
		t.Errorf("the vendor was answered %q, want Success: a frame did not answer in the browser", got)
	}
	if e.vendor("national-tests").LoggedIn(nid) {
		t.Errorf("the other SAML vendor still holds the session")
	}
	if e.demo.OIDCVendor.LoggedIn(sid) {
		t.Errorf("the OIDC vendor still holds the session")
	}
	if _, open := e.demo.IdP.Session("anna.a"); open {
		t.Errorf("the school IdP's session is still open")
	}
	checkLogs(t, e, e.logs.String())
}
