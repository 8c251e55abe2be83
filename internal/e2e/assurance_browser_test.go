package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skolbro/skolbro/internal/assurance"
)

// chromiumBinary finds the browser, or skips the test (fails it under CI).
func chromiumBinary(t *testing.T) string {
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

// TestCase49_DemoTwoFactorInChromium drives the demo in headless Chromium
// as a teacher would: the national-tests vendor (dnp preset) with the
// password only is refused by a page that says two-factor login is
// required; with a password and a one-time code the vendor's page shows
// the two-factor level it received. The browser runs the auto-post
// scripts and enforces the pages' CSP for real.
func TestCase49_DemoTwoFactorInChromium(t *testing.T) {
	path := chromiumBinary(t)
	e := startEnv(t, 1, memoryStore)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
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
		// The test server's certificate is made up for the test.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	dir := t.TempDir()
	if d := os.Getenv("SKOLBRO_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dir = d
	}
	screenshot := func(name string) {
		t.Helper()
		shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", filepath.Join(dir, name))
	}
	vendor := e.srv.URL + "/demo/vendor/national-tests/"
	login := func(button string) {
		t.Helper()
		do("log in as the teacher with "+button,
			chromedp.Navigate(vendor),
			chromedp.Click(chromedp.CSS(`form[action$="/login"] button`)),
			chromedp.WaitVisible(chromedp.CSS(`button[name="`+button+`"][value="david.d"]`)),
			chromedp.Click(chromedp.CSS(`button[name="`+button+`"][value="david.d"]`)),
			chromedp.WaitVisible(chromedp.CSS("main")),
		)
	}

	// 1. The password only: refused, and the page says why.
	login("user")
	do("wait for the refusal page", chromedp.WaitVisible(chromedp.CSS("div.box.err")))
	page := text("main")
	for _, want := range []string{"two-factor login", "två faktorer", "Tillbaka till tjänsten"} {
		if !strings.Contains(page, want) {
			t.Errorf("the refusal page lacks %q:\n%s", want, page)
		}
	}
	screenshot("two-factor-refused.png")

	// 2. A password and a one-time code: the vendor's page shows the
	// two-factor level it received.
	login("user_otp")
	do("wait for the vendor's page", chromedp.WaitVisible(chromedp.CSS("#authn-context")))
	if loc, _ := chromedp.Run(bctx, chromedp.Location()); !strings.HasPrefix(loc, vendor) {
		t.Errorf("ended at %s, not the vendor", loc)
	}
	if got := text("#authn-context"); got != assurance.TwoFactor {
		t.Errorf("the vendor's page shows the class %q, want %q", got, assurance.TwoFactor)
	}
	screenshot("two-factor-vendor.png")
	checkLogs(t, e, e.logs.String())
}
