package e2e

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/skolbro/skolbro/internal/demo"
)

// Discovery (SECURITY.md case 46): Grannkommun has two school IdPs, its
// pupils' (SAML) and its staff's (OIDC), so a login that no hint decides
// asks the person where they log in.

const rememberCookie = "skolbro_idp_" + demo.GrannkommunID

var choiceLink = regexp.MustCompile(`<a class="button" href="([^"]+)"`)

// discoveryChoices returns the discovery page's choice links by upstream
// id, checking that they are plain links to the bridge's own discovery
// endpoint (no script needed to follow them).
func discoveryChoices(t *testing.T, p page) map[string]string {
	t.Helper()
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="choices"`) {
		t.Fatalf("expected the discovery page, got %s: %.300s", p, p.body)
	}
	_, list, _ := strings.Cut(p.body, `id="choices"`)
	list, _, _ = strings.Cut(list, "</ul>")
	out := map[string]string{}
	for _, m := range choiceLink.FindAllStringSubmatch(list, -1) {
		href := strings.ReplaceAll(m[1], "&amp;", "&")
		u, err := url.Parse(href)
		if err != nil || u.Host != "" || u.Path != grannPrefix+"/discovery" {
			t.Errorf("a discovery choice links to %q, not the bridge's own discovery endpoint", href)
			continue
		}
		out[u.Query().Get("upstream")] = href
	}
	return out
}

func discoveryChoice(t *testing.T, p page, upstream string) string {
	t.Helper()
	href, ok := discoveryChoices(t, p)[upstream]
	if !ok {
		t.Fatalf("the discovery page offers no %s", upstream)
	}
	return href
}

var rememberedLink = regexp.MustCompile(`<a class="button" href="([^"]+)" id="remembered">`)

// remembered returns the "Continue with" link of a discovery page, or "".
func remembered(p page) string {
	m := rememberedLink.FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return strings.ReplaceAll(m[1], "&amp;", "&")
}

// TestCase46_DiscoveryPageAndRememberedChoice: a Grannkommun login with
// no hint shows the discovery page: both upstreams as plain links, in
// Swedish and English, no error. Following a choice logs the person in;
// the choice is remembered in a cookie scoped to the organiser, and the
// next discovery page offers "Continue with" it, which also logs in.
func TestCase46_DiscoveryPageAndRememberedChoice(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	for _, vendor := range []string{"grannkommun-app", "grannkommun-oidc-app"} {
		t.Run(vendor, func(t *testing.T) {
			b := newBrowser(t, e.srv.Client())
			p := b.get(e.startURL(vendor, nil))
			if p.url.Path != grannPrefix+"/saml/idp/sso" && p.url.Path != grannPrefix+"/oidc/authorize" {
				t.Fatalf("the login did not stay at the bridge: %s", p)
			}
			choices := discoveryChoices(t, p)
			if len(choices) != 2 || choices[demo.GrannkommunPupils] == "" || choices[demo.GrannkommunStaff] == "" {
				t.Fatalf("discovery choices %v, want pupils and staff", choices)
			}
			for _, text := range []string{`lang="sv"`, "Välj var du loggar in", "Choose where you log in", "Elever / Pupils", "Personal / Staff"} {
				if !strings.Contains(p.body, text) {
					t.Errorf("the discovery page lacks %q", text)
				}
			}
			if remembered(p) != "" {
				t.Errorf("a first login offers a remembered choice")
			}
			g := e.complete(b, b.get(e.srv.URL+choices[demo.GrannkommunPupils]), vendor, "gustav.g")
			if want := []string{"student@" + demo.GrannkommunScope}; !equal(g.values[affiliationName(vendor)], want) {
				t.Errorf("after discovery the vendor got affiliation %q, want %q", g.values[affiliationName(vendor)], want)
			}
			u, _ := url.Parse(e.srv.URL + grannPrefix + "/")
			var cookie *http.Cookie
			for _, c := range b.b.Client.Jar.Cookies(u) {
				if c.Name == rememberCookie {
					cookie = c
				}
			}
			if cookie == nil || cookie.Value != demo.GrannkommunPupils {
				t.Fatalf("the choice was not remembered: %v", cookie)
			}
			root, _ := url.Parse(e.srv.URL + "/")
			for _, c := range b.b.Client.Jar.Cookies(root) {
				if c.Name == rememberCookie {
					t.Errorf("the remembered choice is sent outside Grannkommun's URLs")
				}
			}

			// The next login offers the remembered choice first, and the
			// full list still.
			p = b.get(e.startURL(vendor, nil))
			cont := remembered(p)
			if cont == "" || !strings.Contains(p.body, "Continue with Elever / Pupils") || !strings.Contains(p.body, "Fortsätt med Elever / Pupils") {
				t.Fatalf("the second discovery page does not offer to continue with the remembered choice: %.600s", p.body)
			}
			if len(discoveryChoices(t, p)) != 2 {
				t.Errorf("with a remembered choice the full list is gone")
			}
			if mustQuery(t, cont).Get("upstream") != demo.GrannkommunPupils {
				t.Errorf("continue link %q is not the remembered upstream", cont)
			}
			e.complete(b, b.get(e.srv.URL+cont), vendor, "hanna.h")
		})
	}
	checkLogs(t, e, e.logs.String())
}

func affiliationName(vendor string) string {
	if strings.Contains(vendor, "oidc") {
		return "eduperson_scoped_affiliation"
	}
	return "eduPersonScopedAffiliation"
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestCase46_HintsSkipDiscovery: a vendor that knows where the person
// belongs skips the page: idp_hint naming an upstream id (SAML and OIDC),
// a SAML AuthnRequest whose Scoping/IDPList names the upstream's
// entityID, and an OIDC login_hint in an upstream's domain.
func TestCase46_HintsSkipDiscovery(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	g := e.grann()
	const pupilsPicker, staffPicker = "/demo/idp2/sso", "/demo/oidc-idp2/authorize"
	idpList := func(ids ...string) string {
		u, err := e.vendor("grannkommun-app").LoginURLWithIDPList("rs", ids)
		must(t, err)
		return u
	}
	oidcWith := func(extra url.Values) string { return e.startURL("grannkommun-oidc-app", extra) }
	cases := []struct {
		name, start, picker, vendor, user string
	}{
		{"idp_hint=pupils, SAML", e.startURL("grannkommun-app", url.Values{"idp_hint": {demo.GrannkommunPupils}}), pupilsPicker, "grannkommun-app", "gustav.g"},
		{"idp_hint=staff, SAML", e.startURL("grannkommun-app", url.Values{"idp_hint": {demo.GrannkommunStaff}}), staffPicker, "grannkommun-app", "johanna.j"},
		{"idp_hint=staff, OIDC", oidcWith(url.Values{"idp_hint": {demo.GrannkommunStaff}}), staffPicker, "grannkommun-oidc-app", "johanna.j"},
		{"IDPList naming the pupils' IdP", idpList(g.PupilIdP.EntityID), pupilsPicker, "grannkommun-app", "hanna.h"},
		{"IDPList naming the staff's IdP", idpList("https://unknown.example/idp", g.StaffOP.Issuer()), staffPicker, "grannkommun-app", "karl.k"},
		{"login_hint in the staff's domain", oidcWith(url.Values{"login_hint": {"johanna.j@" + demo.GrannkommunStaffScope}}), staffPicker, "grannkommun-oidc-app", "johanna.j"},
		{"login_hint in the pupils' domain", oidcWith(url.Values{"login_hint": {"someone@" + demo.GrannkommunPupilScope}}), pupilsPicker, "grannkommun-oidc-app", "gustav.g"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, e.srv.Client())
			p := b.get(tc.start)
			if p.url.Path != tc.picker {
				t.Fatalf("the hint did not skip discovery: at %s, want %s: %.300s", p, tc.picker, p.body)
			}
			if got := e.complete(b, p, tc.vendor, tc.user); len(got.values) == 0 {
				t.Errorf("the vendor received nothing")
			}
		})
	}
	checkLogs(t, e, e.logs.String())
}

// TestCase46_UnknownHintShowsDiscovery: a hint that names no upstream of
// this organiser (an unknown id, another organiser's upstream or IdP, a
// login_hint in no upstream's domain or the organiser's own) shows the
// discovery page, not an error and not another organiser's IdP; a choice
// naming no upstream shows the page again, with no internals.
func TestCase46_UnknownHintShowsDiscovery(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	idpList := func(ids ...string) string {
		u, err := e.vendor("grannkommun-app").LoginURLWithIDPList("rs", ids)
		must(t, err)
		return u
	}
	cases := map[string]string{
		"idp_hint unknown":                         e.startURL("grannkommun-app", url.Values{"idp_hint": {"no-such-idp"}}),
		"idp_hint of Demo kommun's upstream":       e.startURL("grannkommun-app", url.Values{"idp_hint": {"school-idp"}}),
		"idp_hint too long":                        e.startURL("grannkommun-app", url.Values{"idp_hint": {strings.Repeat("p", 65)}}),
		"idp_hint with markup":                     e.startURL("grannkommun-app", url.Values{"idp_hint": {`"><script>alert(1)</script>`}}),
		"IDPList naming Demo kommun's IdP":         idpList(e.demo.IdP.EntityID),
		"IDPList naming both of its IdPs":          idpList(e.grann().PupilIdP.EntityID, e.grann().StaffOP.Issuer()),
		"login_hint in another organiser's domain": e.startURL("grannkommun-oidc-app", url.Values{"login_hint": {"anna.a@" + demo.UpstreamScope}}),
		"login_hint in the organiser's own domain": e.startURL("grannkommun-oidc-app", url.Values{"login_hint": {"x@" + demo.GrannkommunScope}}),
		"idp_hint unknown, OIDC":                   e.startURL("grannkommun-oidc-app", url.Values{"idp_hint": {"nope"}}),
	}
	for name, start := range cases {
		t.Run(name, func(t *testing.T) {
			b := newBrowser(t, e.srv.Client())
			p := b.get(start)
			if len(discoveryChoices(t, p)) != 2 {
				t.Errorf("the discovery page does not offer both upstreams")
			}
			if strings.Contains(p.body, "<script>alert") {
				t.Errorf("the hint is echoed into the page")
			}
		})
	}

	t.Run("a choice naming no upstream", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		href := discoveryChoice(t, b.get(e.startURL("grannkommun-app", nil)), demo.GrannkommunPupils)
		for _, bad := range []string{"no-such-idp", "school-idp", "", "https://evil.example/"} {
			q := mustQuery(t, href)
			q.Set("upstream", bad)
			p := b.get(e.srv.URL + grannPrefix + "/discovery?" + q.Encode())
			if p.status != http.StatusBadRequest || len(discoveryChoices(t, page{status: http.StatusOK, url: p.url, body: p.body})) != 2 {
				t.Errorf("upstream=%q: %s, want the discovery page again with 400", bad, p)
			}
			for _, internal := range []string{"store", "redis", "panic", "evil.example"} {
				if strings.Contains(strings.ToLower(p.body), internal) {
					t.Errorf("upstream=%q: the page mentions %q", bad, internal)
				}
			}
		}
		// The pending login survived the bad choices.
		e.complete(b, b.get(e.srv.URL+href), "grannkommun-app", "gustav.g")
	})
	checkLogs(t, e, e.logs.String())
}

// TestCase46_RememberedChoiceIsOnlyAHint: the remembered-choice cookie
// never logs anyone in by itself: with a cookie naming the staff IdP the
// login still stops at the discovery page (offering to continue), and
// the person can pick the other upstream; a forged cookie naming no
// upstream of the organiser (another organiser's, a URL, markup) is
// ignored, and the page offers nothing built from it.
func TestCase46_RememberedChoiceIsOnlyAHint(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	withCookie := func(value string) *browser {
		b := newBrowser(t, e.srv.Client())
		u, _ := url.Parse(e.srv.URL + grannPrefix + "/")
		b.b.Client.Jar.SetCookies(u, []*http.Cookie{{Name: rememberCookie, Value: value, Path: grannPrefix}})
		return b
	}

	b := withCookie(demo.GrannkommunStaff)
	p := b.get(e.startURL("grannkommun-app", nil))
	cont := remembered(p)
	if cont == "" || mustQuery(t, cont).Get("upstream") != demo.GrannkommunStaff {
		t.Fatalf("a cookie naming the staff IdP: want the discovery page offering to continue with it, got %s: %.300s", p, p.body)
	}
	assertNothingReleased(t, e)
	// The person is a pupil: the list is still there, and the pupils' IdP
	// logs them in; the cookie decided nothing.
	g := e.complete(b, b.get(e.srv.URL+discoveryChoice(t, p, demo.GrannkommunPupils)), "grannkommun-app", "gustav.g")
	if len(g.values["eduPersonPrincipalName"]) != 1 {
		t.Errorf("the pupil's login after ignoring the suggestion released no EPPN")
	}

	for _, forged := range []string{"school-idp", "no-such-idp", "https://evil.example/", `"><script>x</script>`, strings.Repeat("s", 200)} {
		b := withCookie(url.QueryEscape(forged))
		p := b.get(e.startURL("grannkommun-oidc-app", nil))
		if remembered(p) != "" {
			t.Errorf("cookie %q: the page offers to continue with it", forged)
		}
		if len(discoveryChoices(t, p)) != 2 {
			t.Errorf("cookie %q: the page does not offer both upstreams", forged)
		}
		for _, leak := range []string{"evil.example", "<script>x", "school-idp"} {
			if strings.Contains(p.body, leak) {
				t.Errorf("cookie %q: the page shows %q", forged, leak)
			}
		}
	}
	// Demo kommun, with one upstream, is not touched by Grannkommun's
	// cookie: its logins go straight to its own IdP.
	b = withCookie(demo.GrannkommunStaff)
	if p := b.get(e.startURL("learning-app", nil)); p.url.Path != "/demo/idp/sso" {
		t.Errorf("a Demo kommun login with Grannkommun's cookie: %s", p)
	}
	checkLogs(t, e, e.logs.String())
}

// TestCase46_DiscoveryLinkBoundToBrowser: a discovery link works only in
// the browser that started the login (another browser, with or without a
// login of its own, is refused and does not use it up), and choosing
// sends the browser only to the chosen upstream: parameters added to the
// link that look like return URLs are never followed.
func TestCase46_DiscoveryLinkBoundToBrowser(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	owner := newBrowser(t, e.srv.Client())
	href := discoveryChoice(t, owner.get(e.startURL("grannkommun-app", nil)), demo.GrannkommunPupils)

	stranger := newBrowser(t, e.srv.Client())
	assertErrorPage(t, stranger.get(e.srv.URL+href), http.StatusBadRequest)
	discoveryChoice(t, stranger.get(e.startURL("grannkommun-app", nil)), demo.GrannkommunPupils) // its own login in flight
	assertErrorPage(t, stranger.get(e.srv.URL+href), http.StatusBadRequest)

	// The rightful browser's link still works, and goes to the chosen
	// upstream only, whatever else the link carries.
	q := mustQuery(t, href)
	for k, v := range map[string]string{"return": "https://evil.example/", "return_to": "https://evil.example/", "redirect_uri": "https://evil.example/cb", "RelayState": "https://evil.example/", "next": "//evil.example"} {
		q.Set(k, v)
	}
	c := &http.Client{Transport: e.srv.Client().Transport, Jar: owner.b.Client.Jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(e.srv.URL + grannPrefix + "/discovery?" + q.Encode())
	must(t, err)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || loc.Path != "/demo/idp2/sso" || strings.Contains(loc.String(), "evil") {
		t.Fatalf("the choice answered %d to %q, want the pupils' IdP only", resp.StatusCode, resp.Header.Get("Location"))
	}
	e.complete(owner, owner.get(loc.String()), "grannkommun-app", "gustav.g")
	// Used once: the same link again is refused.
	assertErrorPage(t, owner.get(e.srv.URL+href), http.StatusBadRequest)
	checkLogs(t, e, e.logs.String())
}

// chromiumContext starts headless Chromium for the env's TLS test server (whose
// certificate it is told to accept) and returns a browser context.
func chromiumContext(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
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
		chromedp.IgnoreCertErrors,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 800),
	)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	return bctx
}

// screenshot keeps a picture of the page in $SKOLBRO_ARTIFACTS, if set.
func screenshot(t *testing.T, bctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("SKOLBRO_ARTIFACTS")
	if dir == "" {
		return
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name), shot, 0o644)
	}
	if err != nil {
		t.Errorf("screenshot: %v", err)
	}
}

// waitLocation waits until the browser is at u (a click's navigation
// has happened).
func waitLocation(t *testing.T, bctx context.Context, u string) {
	t.Helper()
	var loc string
	for i := 0; i < 200; i++ {
		loc, _ = chromedp.Run(bctx, chromedp.Location())
		if loc == u {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the browser is at %s, want %s", loc, u)
}

// TestCase46_NoJavaScriptDiscoveryInChromium: with scripts disabled in a
// real browser, a pupil opens Grannkommun's vendor, gets the discovery
// page (the filter stays hidden: it needs the script), clicks a choice,
// picks themself at the pupils' IdP, continues through the auto-post
// pages by their buttons, and the vendor shows the release.
func TestCase46_NoJavaScriptDiscoveryInChromium(t *testing.T) {
	bctx := chromiumContext(t)
	e := startEnv(t, 1, memoryStore)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	do("disable scripts", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}))
	do("open Grannkommun's vendor and log in",
		chromedp.Navigate(e.srv.URL+"/demo/vendor/grannkommun-app/"),
		chromedp.Click(chromedp.CSS(`form[action$="/login"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#choices")),
	)
	if loc, _ := chromedp.Run(bctx, chromedp.Location()); !strings.HasPrefix(loc, e.srv.URL+grannPrefix+"/saml/idp/sso") {
		t.Errorf("the discovery page is at %s", loc)
	}
	filter, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS("p.filter"), "hidden"))
	if err != nil || !filter.Exists {
		t.Errorf("without scripts the filter is shown (hidden=%v, %v)", filter, err)
	}
	screenshot(t, bctx, "discovery-no-js.png")
	do("choose the pupils' IdP",
		chromedp.Click(chromedp.CSS(`#choices a[href*="upstream=pupils"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[value="gustav.g"]`)),
		chromedp.Click(chromedp.CSS(`button[value="gustav.g"]`)),
		// The IdP's auto-post to the bridge, by its button.
		chromedp.WaitVisible(chromedp.CSS(`#autopost button`)),
		chromedp.Click(chromedp.CSS(`#autopost button`)),
	)
	waitLocation(t, bctx, e.srv.URL+grannPupilACS)
	do("continue to the vendor",
		chromedp.WaitVisible(chromedp.CSS(`#autopost button`)),
		chromedp.Click(chromedp.CSS(`#autopost button`)),
		chromedp.WaitVisible(chromedp.CSS("table")),
	)
	text, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("table")))
	if err != nil || !strings.Contains(text, "student@"+demo.GrannkommunScope) || !strings.Contains(text, "Gustav") {
		t.Errorf("the vendor page shows %q (%v)", text, err)
	}
	if e.vendor("grannkommun-app").Last() == nil {
		t.Errorf("the vendor recorded no login")
	}
	checkLogs(t, e, e.logs.String())
}

// TestCase46_DiscoveryFilterInChromium: with scripts on, the discovery
// page's filter appears, typing narrows the list (and says when nothing
// matches), and a choice is followed from the keyboard.
func TestCase46_DiscoveryFilterInChromium(t *testing.T) {
	bctx := chromiumContext(t)
	e := startEnv(t, 1, memoryStore)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	hidden := func() string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](
			`[...document.querySelectorAll("#choices li")].filter(li => li.hidden).map(li => li.querySelector("a").textContent).join(",") + "|" + document.getElementById("none").hidden`))
		if err != nil {
			t.Fatalf("read the list: %v", err)
		}
		return s
	}
	do("open Grannkommun's OIDC vendor and log in",
		chromedp.Navigate(e.srv.URL+"/demo/vendor/grannkommun-oidc-app/"),
		chromedp.Click(chromedp.CSS(`form[action$="/login"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#filter")),
	)
	if got := hidden(); got != "|true" {
		t.Errorf("before typing, hidden items %q", got)
	}
	do("type", chromedp.SendKeys(chromedp.CSS("#filter"), "pers"))
	if got := hidden(); got != "Elever / Pupils|true" {
		t.Errorf("after typing \"pers\", hidden items %q, want the pupils' IdP only", got)
	}
	screenshot(t, bctx, "discovery-filter.png")
	do("type more", chromedp.SendKeys(chromedp.CSS("#filter"), "zzz"))
	if got := hidden(); got != "Elever / Pupils,Personal / Staff|false" {
		t.Errorf("after typing \"perszzz\", hidden items %q, want all and the no-match note", got)
	}
	do("empty the filter and choose the staff IdP from the keyboard",
		chromedp.SendKeys(chromedp.CSS("#filter"), strings.Repeat(kb.Backspace, len("perszzz"))),
		chromedp.Focus(chromedp.CSS(`#choices a[href*="upstream=staff"]`)),
		chromedp.SendKeys(chromedp.CSS(`#choices a[href*="upstream=staff"]`), kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`button[value="johanna.j"]`)),
		chromedp.Click(chromedp.CSS(`button[value="johanna.j"]`)),
		chromedp.WaitVisible(chromedp.CSS("table")),
	)
	if c := e.grann().OIDCVendor.Last(); c == nil || c.Subject == "" {
		t.Errorf("the OIDC vendor recorded no login")
	}
	checkLogs(t, e, e.logs.String())
}
