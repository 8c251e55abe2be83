package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/testidp"
)

// The vendors of these tests, one per protocol, and the name each gives
// the school unit code.
var unitVendors = []struct{ name, unitClaim string }{
	{"learning-app", "sisSchoolUnitCode"},
	{"oidc-app", "sisSchoolUnitCode"},
}

// enableFor returns a prepare hook that adds enabled_for to both test
// vendors' policy files.
func enableFor(t *testing.T, yaml string) func(d *demo.Demo) {
	return func(d *demo.Demo) {
		for _, v := range unitVendors {
			p := filepath.Join(d.Dir, "attribute-release", v.name+".yaml")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, append(b, []byte("\n"+yaml)...), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// toBridge runs a login at vendor up to the bridge's answer after the
// school IdP, and returns that page without following it to the vendor.
func (e *env) toBridge(b *browser, vendor, user string) page {
	e.t.Helper()
	var start string
	var err error
	if vendor == e.demo.OIDCVendor.Name {
		start, err = e.demo.OIDCVendor.LoginURL(context.Background())
	} else {
		start, err = e.vendor(vendor).LoginURL("rs")
	}
	if err != nil {
		e.t.Fatal(err)
	}
	p := b.get(start)
	if p.status != http.StatusOK {
		e.t.Fatalf("expected the school IdP's picker, got %s", p)
	}
	p = b.submit(p, url.Values{"user": {user}})
	if fs, _ := p.forms(); len(fs) == 1 && strings.HasSuffix(fs[0].action, "/saml/sp/acs") {
		p = b.submit(p, nil)
	}
	return p
}

// assertNotEnabledPage checks the refusal of case 47: 403, the fixed
// Swedish and English text, the request id, nothing posted onwards.
func assertNotEnabledPage(t *testing.T, p page) string {
	t.Helper()
	assertErrorPage(t, p, http.StatusForbidden)
	for _, want := range []string{"Din skola använder inte den här tjänsten.", "Your school does not use this service."} {
		if !strings.Contains(p.body, want) {
			t.Errorf("refusal page lacks %q", want)
		}
	}
	m := requestIDOnPage.FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return m[1]
}

// refusals returns the release log's not_enabled_for_unit events.
func refusals(t *testing.T, e *env) []map[string]any {
	var out []map[string]any
	for _, ev := range events(t, e) {
		if ev["outcome"] == "refused" && ev["reason"] == "not_enabled_for_unit" {
			out = append(out, ev)
		}
	}
	return out
}

// A pupil at an enabled unit gets in and receives only enabled unit
// codes; a pupil at another unit is refused with the page and a refusal
// event, and the vendor receives nothing; for SAML and OIDC vendors.
func TestCase47_OnlyEnabledUnitsGetIn(t *testing.T) {
	e := startEnvWith(t, 1, memoryStore, enableFor(t, "enabled_for:\n  school_units: [\""+testidp.SchoolA+"\"]\n"))
	k := keyer(t, e)
	for _, v := range unitVendors {
		t.Run(v.name, func(t *testing.T) {
			before := len(events(t, e))
			g := e.loginAny(newBrowser(t, e.srv.Client()), v.name, "anna.a")
			if diff := cmp.Diff([]string{testidp.SchoolA}, g.values[v.unitClaim]); diff != "" {
				t.Errorf("pupil at Skola A: %s (-want +got):\n%s", v.unitClaim, diff)
			}

			// The protected pupil at Skola A gets in, masked as before.
			g = e.loginAny(newBrowser(t, e.srv.Client()), v.name, protectedLogin(t, e))
			if codes := g.values[v.unitClaim]; len(codes) != 0 {
				t.Errorf("protected pupil: unit codes %q reached the vendor", codes)
			}

			lastSAML, lastOIDC := e.vendor("learning-app").Last(), e.demo.OIDCVendor.Last()
			p := e.toBridge(newBrowser(t, e.srv.Client()), v.name, "cecilia.c")
			rid := assertNotEnabledPage(t, p)
			if e.vendor("learning-app").Last() != lastSAML || e.demo.OIDCVendor.Last() != lastOIDC {
				t.Errorf("the vendor received something for a refused login")
			}

			evs := events(t, e)[before:]
			if len(evs) != 3 {
				t.Fatalf("%d events for 3 logins", len(evs))
			}
			ref := evs[2]
			want := map[string]any{"outcome": "refused", "reason": "not_enabled_for_unit", "vendor": v.name,
				"txn_id": rid, "attributes": []any{}, "subject_key": k.KeyForPersonalNumber(pnrOf(t, e, "cecilia.c"))}
			for f, w := range want {
				if diff := cmp.Diff(w, ref[f]); diff != "" {
					t.Errorf("refusal event %s (-want +got):\n%s", f, diff)
				}
			}
			if evs[0]["outcome"] != "released" || evs[1]["outcome"] != "released" {
				t.Errorf("the pupils at Skola A were not released: %v, %v", evs[0]["outcome"], evs[1]["outcome"])
			}
		})
	}
	if !strings.Contains(e.logs.String(), `"reason":"not_enabled_for_unit"`) {
		t.Errorf("the refusal is not in the log")
	}
	checkLogs(t, e, e.logs.String())
}

// A teacher in two units passes when one of them is enabled, and the
// vendor receives only that unit's code.
func TestCase47_TeacherInTwoUnitsGetsOnlyTheEnabledOne(t *testing.T) {
	e := startEnvWith(t, 1, memoryStore, enableFor(t, "enabled_for:\n  school_units: [\""+testidp.SchoolB+"\"]\n"))
	u, _ := e.demo.IdP.User("david.d")
	if diff := cmp.Diff([]string{testidp.SchoolA, testidp.SchoolB}, u.Attributes[testidp.AttrSchoolUnitCode]); diff != "" {
		t.Fatalf("the test teacher is not in both schools (-want +got):\n%s", diff)
	}
	for _, v := range unitVendors {
		t.Run(v.name, func(t *testing.T) {
			g := e.loginAny(newBrowser(t, e.srv.Client()), v.name, "david.d")
			if diff := cmp.Diff([]string{testidp.SchoolB}, g.values[v.unitClaim]); diff != "" {
				t.Errorf("teacher's %s (-want +got):\n%s", v.unitClaim, diff)
			}
			// A pupil at Skola A only is refused.
			assertNotEnabledPage(t, e.toBridge(newBrowser(t, e.srv.Client()), v.name, "anna.a"))
		})
	}
	checkLogs(t, e, e.logs.String())
}

// An affiliation restriction: teachers only. The teacher gets in, the
// pupil at the same school is refused.
func TestCase47_AffiliationRestriction(t *testing.T) {
	e := startEnvWith(t, 1, memoryStore, enableFor(t, "enabled_for:\n  affiliations: [faculty]\n"))
	for _, v := range unitVendors {
		t.Run(v.name, func(t *testing.T) {
			g := e.loginAny(newBrowser(t, e.srv.Client()), v.name, "fredrik.f")
			if diff := cmp.Diff([]string{testidp.SchoolA}, g.values[v.unitClaim]); diff != "" {
				t.Errorf("teacher's %s (-want +got):\n%s", v.unitClaim, diff)
			}
			assertNotEnabledPage(t, e.toBridge(newBrowser(t, e.srv.Client()), v.name, "anna.a"))
		})
	}
	if n := len(refusals(t, e)); n != 2 {
		t.Errorf("%d refusal events, want 2", n)
	}
	checkLogs(t, e, e.logs.String())
}

var (
	csrfOnPage      = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	changeRowOnPage = regexp.MustCompile(`<tr><td>(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z]+)</td><td><code>([0-9a-f]+)</code></td><td>set</td><td><code>` + testidp.SchoolA + `</code></td></tr>`)
)

// adminLogin logs the demo admin in and returns the browser and the
// session's CSRF token.
func adminLogin(t *testing.T, e *env) (*browser, string) {
	t.Helper()
	b := newBrowser(t, e.srv.Client())
	p := b.get(e.srv.URL + "/admin/")
	p = b.submit(p, url.Values{"user": {"fredrik.f"}})
	p = b.submit(p, nil)
	if p.status != http.StatusOK || p.url.Path != "/admin/" {
		t.Fatalf("admin login: %s", p)
	}
	m := csrfOnPage.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatal("no CSRF token on the admin page")
	}
	return b, m[1]
}

// The admin's toggle, CSRF-protected, changes the outcome of the next
// login on every instance sharing the store, is recorded with who and
// when, and shows in the register.
func TestCase47_AdminToggleChangesNextLogin(t *testing.T) {
	for name, newStore := range redisStores(t) {
		t.Run(name, func(t *testing.T) {
			testAdminToggle(t, newStore)
		})
	}
}

func testAdminToggle(t *testing.T, newStore func(t *testing.T) store.Store) {
	e := startEnv(t, 2, newStore) // two instances, round robin
	for _, v := range unitVendors {
		g := e.loginAny(newBrowser(t, e.srv.Client()), v.name, "cecilia.c")
		if diff := cmp.Diff([]string{testidp.SchoolB}, g.values[v.unitClaim]); diff != "" {
			t.Fatalf("%s before the change (-want +got):\n%s", v.name, diff)
		}
	}

	b, tok := adminLogin(t, e)
	vendors := b.get(e.srv.URL + "/admin/vendors")
	if vendors.status != http.StatusOK || !strings.Contains(vendors.body, `action="/admin/units"`) {
		t.Fatalf("vendors page: %s, no units form", vendors)
	}
	set := func(vendor, token string) page {
		f := url.Values{"vendor": {vendor}, "action": {"set"}, "add": {testidp.SchoolA}}
		if token != "" {
			f.Set("csrf", token)
		}
		return b.post(e.srv.URL+"/admin/units", f)
	}
	// Without the token: refused, and logins go on as before.
	if p := set("learning-app", ""); p.status != http.StatusForbidden {
		t.Errorf("POST without the CSRF token: %s, want 403", p)
	}
	e.loginAny(newBrowser(t, e.srv.Client()), "learning-app", "cecilia.c")

	for _, v := range unitVendors {
		if p := set(v.name, tok); p.status != http.StatusOK || p.url.Path != "/admin/vendors" || !strings.Contains(p.body, "The change is saved") {
			t.Fatalf("set %s: %s", v.name, p)
		}
	}
	// The next logins, on either instance: Skola B refused, Skola A in.
	for _, v := range unitVendors {
		for range 2 {
			assertNotEnabledPage(t, e.toBridge(newBrowser(t, e.srv.Client()), v.name, "cecilia.c"))
		}
		g := e.loginAny(newBrowser(t, e.srv.Client()), v.name, "david.d")
		if diff := cmp.Diff([]string{testidp.SchoolA}, g.values[v.unitClaim]); diff != "" {
			t.Errorf("%s: teacher after the change (-want +got):\n%s", v.name, diff)
		}
	}
	if n := len(refusals(t, e)); n != 4 {
		t.Errorf("%d refusal events, want 4", n)
	}

	// Who and when, on the vendor page of either instance.
	adminKey := keyer(t, e).KeyForPersonalNumber(pnrOf(t, e, "fredrik.f"))
	for range 2 {
		page := b.get(e.srv.URL + "/admin/vendors").body
		rows := changeRowOnPage.FindAllStringSubmatch(page, -1)
		if len(rows) != 2 {
			t.Fatalf("%d change rows on the vendors page, want one per vendor", len(rows))
		}
		for _, r := range rows {
			if r[2] != adminKey {
				t.Errorf("change recorded by %q, want the admin's subject key", r[2])
			}
		}
	}
	if !strings.Contains(e.logs.String(), `"admin_subject":"`+adminKey+`","vendor":"learning-app","page":"units","action":"set","outcome":"ok"`) {
		t.Errorf("the change is not in the log with the admin's subject key")
	}

	// The register shows the units.
	reg := b.get(e.srv.URL + "/admin/register.json")
	// The two changed vendors show Skola A; national-tests is unchanged.
	var entries []map[string]any
	if err := json.Unmarshal([]byte(reg.body), &entries); err != nil {
		t.Fatalf("register export: %v", err)
	}
	units := map[string]any{}
	for _, en := range entries {
		units[en["vendor_id"].(string)] = en["enabled_school_units"]
	}
	if units["learning-app"] != testidp.SchoolA || units["oidc-app"] != testidp.SchoolA || units["national-tests"] != "all" {
		t.Errorf("register export does not show the units: %v", units)
	}
	if page := b.get(e.srv.URL + "/admin/register").body; !strings.Contains(page, "<code>"+testidp.SchoolA+"</code>") {
		t.Errorf("register page does not show the units")
	}

	// Reset: the policy file (every unit) applies again.
	if p := b.post(e.srv.URL+"/admin/units", url.Values{"csrf": {tok}, "vendor": {"oidc-app"}, "action": {"reset"}}); p.status != http.StatusOK {
		t.Fatalf("reset: %s", p)
	}
	g := e.loginAny(newBrowser(t, e.srv.Client()), "oidc-app", "cecilia.c")
	if diff := cmp.Diff([]string{testidp.SchoolB}, g.values["sisSchoolUnitCode"]); diff != "" {
		t.Errorf("after reset (-want +got):\n%s", diff)
	}
	checkLogs(t, e, e.logs.String())
}
