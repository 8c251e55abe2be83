package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/skolbro/skolbro/web"
)

// chromiumPath finds the browser, or skips the test (fails it under CI).
func chromiumPath(t *testing.T) string {
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

// artifactDir is where the screenshot goes: $SKOLBRO_ARTIFACTS when set.
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("SKOLBRO_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestBrowser drives the admin interface in headless Chromium, as an
// admin would: log in (a fake upstream login that completes at once),
// open the release preview, check the protected pupil's masked release,
// export the register, run a subject access lookup, and log out. The
// browser enforces the pages' CSP and SameSite=Strict cookie for real.
func TestBrowser(t *testing.T) {
	path := chromiumPath(t)
	e := newEnv(t)
	// StartLogin stands in for the upstream round trip: the "IdP" answers
	// at once with an entitled admin, on the same request.
	e.admin.d.StartLogin = func(w http.ResponseWriter, r *http.Request) {
		e.admin.CompleteLogin(w, r, adminIdentity(t))
	}
	router := e.router
	router.PathPrefix("/static/").Handler(http.StripPrefix("/static/", http.FileServerFS(web.Static())))
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
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
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	dir := artifactDir(t)
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

	// 1. Log in: /admin/ sends the browser to /admin/login, which logs in
	// and comes back to the overview.
	do("open the overview", chromedp.Navigate(srv.URL+"/admin/"), chromedp.WaitVisible(chromedp.CSS("nav")))
	if loc, _ := chromedp.Run(bctx, chromedp.Location()); loc != srv.URL+"/admin/" {
		t.Errorf("after login at %s", loc)
	}
	if h := text("h1"); !strings.Contains(h, "Overview") {
		t.Errorf("overview heading %q", h)
	}
	screenshot("admin-overview.png")
	// The session cookie is HttpOnly: script on the page cannot read it.
	if cookies, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.cookie`)); err != nil || cookies != "" {
		t.Errorf("cookies visible to script: %q (%v)", cookies, err)
	}

	// 2. The release preview, reached through the vendor form.
	do("open the preview",
		chromedp.Click(chromedp.CSS(`nav a[href="/admin/preview"]`)),
		chromedp.WaitVisible(chromedp.CSS("select#vendor")),
		chromedp.SetValue(chromedp.CSS("select#vendor"), "learning-app"),
		chromedp.Click(chromedp.CSS(`form.inline button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("section.preview.masked")),
	)
	masked := text("section.preview.masked")
	for _, want := range []string{"elvira.h", "Skyddad identitet – maskerad", e.deriver.EPPN(testIdentities(t)[1].Identity.StableID), "student@" + scope} {
		if !strings.Contains(masked, want) {
			t.Errorf("masked preview lacks %q:\n%s", want, masked)
		}
	}
	for _, never := range []string{protectedGiven, protectedSurname, protSchool} {
		if strings.Contains(masked, never) {
			t.Errorf("masked preview shows %q", never)
		}
	}
	// The stylesheet loaded under the CSP: the masked section is coloured.
	bg, err := chromedp.Run(bctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("section.preview.masked")).backgroundColor`))
	if err != nil || bg != "rgb(255, 248, 197)" {
		t.Errorf("masked section background %q (%v): stylesheet not applied", bg, err)
	}
	screenshot("admin-preview.png")

	// 3. Export the register as CSV, as a real download.
	downloads := t.TempDir()
	progress := chromedp.BrowserEvents(bctx, browser.DownloadProgress)
	do("export the register",
		chromedp.Click(chromedp.CSS(`nav a[href="/admin/register"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/admin/register.csv"]`)),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior:      browser.SetDownloadBehaviorBehaviorAllowAndName,
				DownloadPath:  downloads,
				EventsEnabled: new(true),
			})
			return err
		}),
		chromedp.Click(chromedp.CSS(`a[href="/admin/register.csv"]`)),
	)
	var guid string
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("download: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("download cancelled")
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			guid = ev.GUID
			break
		}
	}
	csv, err := os.ReadFile(filepath.Join(downloads, guid))
	if err != nil || string(csv) != "vendor_id,display_name\nlearning-app,Test Learning App\n" {
		t.Errorf("downloaded register %q (%v)", csv, err)
	}

	// 4. Subject access: the number goes in a POST with the CSRF token,
	// and the page that comes back does not show it.
	do("subject access",
		chromedp.Click(chromedp.CSS(`nav a[href="/admin/subject"]`)),
		chromedp.WaitVisible(chromedp.CSS("#pnr")),
		chromedp.SendKeys(chromedp.CSS("#pnr"), plainPNR[:8]+"-"+plainPNR[8:]),
		chromedp.Click(chromedp.CSS(`button[value=html]`)),
		chromedp.WaitVisible(chromedp.CSS("#result")),
	)
	screenshot("admin-subject.png")
	html, err := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range numberForms(plainPNR) {
		if strings.Contains(html, f) {
			t.Errorf("subject access page shows the number as %q", f)
		}
	}
	if loc, _ := chromedp.Run(bctx, chromedp.Location()); loc != srv.URL+"/admin/subject" {
		t.Errorf("subject access result at %s", loc)
	}
	if _, got := e.subject.state(); len(got) != 1 || got[0] != fakeKey("pnr", plainPNR) {
		t.Errorf("lookup for the wrong number")
	}

	// 5. Log out with the form's CSRF token: the session is gone.
	do("log out",
		chromedp.Click(chromedp.CSS(`form.logout button`)),
		chromedp.WaitVisible(chromedp.CSS(`main a[href="/admin/login"]`)),
	)
	if h := text("h1"); !strings.Contains(h, "Logged out") {
		t.Errorf("after logout: %q", h)
	}
}
