package e2e

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/server"
	"github.com/skolbro/skolbro/internal/testidp"
)

// The hub's own entity (/hub/saml/idp/...): the demo's shared-app vendor
// registered once with it, and both organisers have a policy for it, so a
// login through it asks the person for their organiser (issue 15).

const hubChoiceCookie = "skolbro_organiser"

// hubChoices returns the organiser discovery page's choices by organiser
// id, checking that each is a plain link to the hub's own discovery
// endpoint.
func hubChoices(t *testing.T, p page) map[string]string {
	t.Helper()
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="choices"`) {
		t.Fatalf("expected the organiser discovery page, got %s: %.300s", p, p.body)
	}
	_, list, _ := strings.Cut(p.body, `id="choices"`)
	list, _, _ = strings.Cut(list, "</ul>")
	out := map[string]string{}
	for _, m := range choiceLink.FindAllStringSubmatch(list, -1) {
		href := strings.ReplaceAll(m[1], "&amp;", "&")
		u, err := url.Parse(href)
		if err != nil || u.Host != "" || u.Path != server.HubPrefix+"/discovery" {
			t.Errorf("an organiser choice links to %q, not the hub's own discovery endpoint", href)
			continue
		}
		out[u.Query().Get("organiser")] = href
	}
	return out
}

// TestCase46_HubDiscoveryForSharedVendor: a login at the shared vendor
// shows both organisers as plain links; each choice continues at that
// organiser's own school IdP (Grannkommun's then asks which of its two),
// and the login is that organiser's: its scope, its pseudonyms, its
// release log. The choice is remembered as a suggestion only: the next
// login shows the page again, offering to continue with it.
func TestCase46_HubDiscoveryForSharedVendor(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	if e.demo.SharedVendor == nil {
		t.Fatal("the demo has no vendor shared through the hub")
	}
	const vendor = demo.SharedVendorName

	b := newBrowser(t, e.srv.Client())
	choices := hubChoices(t, b.get(e.startURL(vendor, nil)))
	if len(choices) != 2 || choices[demo.DemoKommunID] == "" || choices[demo.GrannkommunID] == "" {
		t.Fatalf("the hub offers %v, want both organisers", choices)
	}
	p := b.get(e.srv.URL + choices[demo.DemoKommunID])
	if p.url.Path != "/demo/idp/sso" {
		t.Fatalf("choosing Demo kommun led to %s", p)
	}
	a := e.complete(b, p, vendor, "anna.a")
	eppnA := a.values["eduPersonPrincipalName"]
	if len(eppnA) != 1 || !strings.HasSuffix(eppnA[0], "@"+demo.OrganiserScope) {
		t.Fatalf("Demo kommun's pupil got EPPN %q, want one in %s", eppnA, demo.OrganiserScope)
	}

	g := newBrowser(t, e.srv.Client())
	p = g.get(e.srv.URL + hubChoices(t, g.get(e.startURL(vendor, nil)))[demo.GrannkommunID])
	p = g.get(e.srv.URL + discoveryChoice(t, p, demo.GrannkommunPupils)) // Grannkommun has two IdPs
	gr := e.complete(g, p, vendor, "gustav.g")
	eppnG := gr.values["eduPersonPrincipalName"]
	if len(eppnG) != 1 || !strings.HasSuffix(eppnG[0], "@"+demo.GrannkommunScope) {
		t.Fatalf("Grannkommun's pupil got EPPN %q, want one in %s", eppnG, demo.GrannkommunScope)
	}

	// Each organiser's release log holds its own login, and only that.
	for _, tc := range []struct{ dir, eppn string }{{"audit", eppnA[0]}, {filepath.Join(demo.GrannkommunID, "audit"), eppnG[0]}} {
		files, _ := filepath.Glob(filepath.Join(e.demo.Dir, tc.dir, "releases-*"))
		n := 0
		for _, f := range files {
			body, _ := os.ReadFile(f)
			n += strings.Count(string(body), `"vendor":"`+vendor+`"`)
		}
		if n != 1 {
			t.Errorf("%s holds %d events of the shared vendor, want 1", tc.dir, n)
		}
	}

	// The remembered choice is offered, never acted on by itself.
	p = b.get(e.startURL(vendor, nil))
	cont := remembered(p)
	if cont == "" || mustQuery(t, cont).Get("organiser") != demo.DemoKommunID {
		t.Fatalf("the second login: want the page offering to continue with Demo kommun, got %s: %.300s", p, p.body)
	}
	if len(hubChoices(t, p)) != 2 {
		t.Error("with a remembered choice the page no longer offers both organisers")
	}
	// A forged cookie naming an organiser that does not exist, or markup,
	// offers nothing built from it.
	for _, forged := range []string{"no-such-organiser", `"><script>x</script>`} {
		f := newBrowser(t, e.srv.Client())
		u, _ := url.Parse(e.srv.URL + server.HubPrefix + "/")
		f.b.Client.Jar.SetCookies(u, []*http.Cookie{{Name: hubChoiceCookie, Value: url.QueryEscape(forged), Path: server.HubPrefix}})
		p := f.get(e.startURL(vendor, nil))
		if remembered(p) != "" || strings.Contains(p.body, "<script>x") {
			t.Errorf("cookie %q: the page offers or shows it", forged)
		}
	}
	checkLogs(t, e, e.logs.String())
}

// TestCase46_HubHints: a vendor can skip the organiser choice with a hint,
// idp_hint=<organiser id> or a Scoping/IDPList naming the organiser's
// entity or one of its school IdPs. A hint naming no organiser that serves
// the vendor shows the page, not an error, and a hint never reaches an
// organiser without a policy for the vendor.
func TestCase46_HubHints(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	const vendor = demo.SharedVendorName
	b := newBrowser(t, e.srv.Client())
	if p := b.get(e.startURL(vendor, url.Values{"idp_hint": {demo.DemoKommunID}})); p.url.Path != "/demo/idp/sso" {
		t.Errorf("idp_hint=%s: %s", demo.DemoKommunID, p)
	}
	// Grannkommun's own discovery then asks which of its IdPs.
	if p := b.get(e.startURL(vendor, url.Values{"idp_hint": {demo.GrannkommunID}})); len(discoveryChoices(t, p)) != 2 {
		t.Errorf("idp_hint=%s did not lead to Grannkommun's own choice", demo.GrannkommunID)
	}
	for _, unknown := range []string{"no-such-organiser", "https://evil.example/"} {
		p := b.get(e.startURL(vendor, url.Values{"idp_hint": {unknown}}))
		if len(hubChoices(t, p)) != 2 || strings.Contains(p.body, "evil.example") {
			t.Errorf("idp_hint=%q: want the discovery page with both organisers", unknown)
		}
	}
	for _, tc := range []struct{ name, entity, path string }{
		{"the organiser's entity", e.demo.Base + "/saml/idp/metadata", "/demo/idp/sso"},
		{"one of its school IdPs", e.demo.IdP.EntityID, "/demo/idp/sso"},
		{"Grannkommun's pupils' IdP", e.demo.Grannkommun.PupilIdP.EntityID, "/demo/idp2/sso"},
	} {
		start, err := e.demo.SharedVendor.LoginURLWithIDPList("rs", []string{tc.entity})
		must(t, err)
		if p := b.get(start); p.url.Path != tc.path {
			t.Errorf("IDPList naming %s: %s, want %s", tc.name, p, tc.path)
		}
	}
	checkLogs(t, e, e.logs.String())
}

// TestCase47_HubVendorPerUnit: Demo kommun switches the shared vendor on
// for Skola A only, in its own policy, as the demo ships: through the hub
// entity its pupil at Skola B is refused with the clear page and a
// refusal event, while Grannkommun's pupils are untouched.
func TestCase47_HubVendorPerUnit(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	pol, err := os.ReadFile(filepath.Join(e.demo.Dir, "attribute-release", demo.SharedVendorName+".yaml"))
	must(t, err)
	if !strings.Contains(string(pol), testidp.SchoolA) {
		t.Fatal("the demo's shared vendor is not switched on per school unit at Demo kommun")
	}
	const vendor = demo.SharedVendorName
	login := func(user string) page {
		b := newBrowser(t, e.srv.Client())
		p := b.get(e.srv.URL + hubChoices(t, b.get(e.startURL(vendor, nil)))[demo.DemoKommunID])
		p = b.submit(p, url.Values{"user": {user}})
		if fs, _ := p.forms(); len(fs) == 1 && strings.HasSuffix(fs[0].action, "/saml/sp/acs") {
			p = b.submit(p, nil)
		}
		return p
	}
	if fs, _ := login("anna.a").forms(); len(fs) != 1 || !strings.HasPrefix(fs[0].action, e.demo.SharedVendor.Base) {
		t.Fatal("the pupil at Skola A was not sent to the shared vendor")
	}
	before := len(refusals(t, e))
	last := e.demo.SharedVendor.Last()
	assertNotEnabledPage(t, login("cecilia.c"))
	if e.demo.SharedVendor.Last() != last {
		t.Error("the shared vendor received something for a refused login")
	}
	if got := refusals(t, e); len(got) != before+1 || got[len(got)-1]["vendor"] != vendor {
		t.Errorf("refusal events: %d after %d", len(got), before)
	}
	// Grannkommun's policy has no restriction: its pupils get in.
	g := newBrowser(t, e.srv.Client())
	p := g.get(e.srv.URL + hubChoices(t, g.get(e.startURL(vendor, nil)))[demo.GrannkommunID])
	p = g.get(e.srv.URL + discoveryChoice(t, p, demo.GrannkommunPupils))
	if got := e.complete(g, p, vendor, "gustav.g"); len(got.values["eduPersonPrincipalName"]) != 1 {
		t.Error("Grannkommun's pupil did not get in")
	}
	checkLogs(t, e, e.logs.String())
}

// loginShared logs s's browser in at the shared vendor through the hub,
// choosing Demo kommun, and records its NameID in s.
func (e *env) loginShared(s *session, user string) {
	e.t.Helper()
	const vendor = demo.SharedVendorName
	p := s.b.get(e.startURL(vendor, nil))
	if strings.HasSuffix(p.url.Path, "/discovery") || strings.Contains(p.body, `id="choices"`) {
		p = s.b.get(e.srv.URL + hubChoices(e.t, p)[demo.DemoKommunID])
	}
	var g got
	if p.url.Path == "/demo/idp/sso" && strings.Contains(p.body, "<form") && !isAutoPost(p) {
		g = e.complete(s.b, p, vendor, user)
	} else {
		// The school IdP's session answered at once: on to the vendor.
		for i := 0; i < 3 && isAutoPost(p); i++ {
			p = s.b.submit(p, nil)
		}
		rec := e.vendor(vendor).Last()
		g = got{values: attrs(rec), subject: rec.NameID}
	}
	s.nameIDs[vendor] = g.subject
	if !e.vendor(vendor).LoggedIn(g.subject) {
		e.t.Fatalf("%s holds no session after login", vendor)
	}
}

// TestCase50_HubVendorSingleLogout: a vendor that logged in through the
// hub's entity takes part in Single Logout like the organiser's own: a
// logout started at one of Demo kommun's vendors logs it out with a
// LogoutRequest from the hub's entity (answered at the hub's endpoint),
// and its own logout, sent to the hub's entity, ends the organiser's
// session at every other vendor and is answered by the hub's entity.
func TestCase50_HubVendorSingleLogout(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	shared := e.vendor(demo.SharedVendorName)

	s := e.loginEverywhere("anna.a")
	e.loginShared(s, "anna.a")
	before := shared.LogoutsByBridge()
	p := e.vendorLogout(s, "learning-app")
	if got := e.vendor("learning-app").LastLogoutAnswer(); got != testidp.StatusSuccess {
		t.Errorf("learning-app was answered %q, want Success without PartialLogout: %s", got, p)
	}
	e.assertLoggedOut(s, "anna.a", true)
	if shared.LogoutsByBridge() != before+1 {
		t.Errorf("the shared vendor received %d logout requests, want 1", shared.LogoutsByBridge()-before)
	}

	s2 := e.loginEverywhere("bertil.b")
	e.loginShared(s2, "bertil.b")
	p = e.vendorLogout(s2, demo.SharedVendorName)
	if !strings.HasPrefix(p.url.String(), shared.Base) || p.status != http.StatusOK {
		t.Fatalf("the logout did not end at the shared vendor: %s: %.300s", p, p.body)
	}
	if got := shared.LastLogoutAnswer(); got != testidp.StatusSuccess {
		t.Errorf("the shared vendor was answered %q, want Success", got)
	}
	e.assertLoggedOut(s2, "bertil.b", true)
	checkLogs(t, e, e.logs.String())
}
