package admin

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/units"
)

// Unit codes for these tests; the test identities' own codes must not
// appear in logs and are kept out of the forms.
const (
	unitOne = "11112222"
	unitTwo = "33334444"
	unitTre = "55556666"
)

// withUnits gives the admin the store-kept choices, and restricts
// learning-app in its file to unitOne and to students.
func withUnits() envOption {
	return func(d *Deps) {
		d.Units = units.New(d.Store, "testkommunen")
		ps := d.Policies()
		out := make([]*policy.Policy, len(ps))
		for i, p := range ps {
			if p.ID == "learning-app" {
				c := *p
				c.EnabledFor = policy.EnabledFor{SchoolUnits: []string{unitOne}, Affiliations: []string{"student"}}
				p = &c
			}
			out[i] = p
		}
		d.Policies = func() []*policy.Policy { return out }
	}
}

func (e *env) effective(vendor string) *policy.Policy {
	e.t.Helper()
	for _, p := range e.admin.d.Policies() {
		if p.ID == vendor {
			eff, err := e.admin.d.Units.Effective(e.t.Context(), p)
			if err != nil {
				e.t.Fatal(err)
			}
			return eff
		}
	}
	e.t.Fatalf("no vendor %s", vendor)
	return nil
}

// vendorSection returns the vendors page's section of one vendor.
func vendorSection(t *testing.T, body, vendor string) string {
	t.Helper()
	i := strings.Index(body, `id="v-`+vendor+`"`)
	if i < 0 {
		t.Fatalf("no section for %s", vendor)
	}
	s := body[i:]
	if j := strings.Index(s, "</section>"); j >= 0 {
		s = s[:j]
	}
	return s
}

// The admin shows and toggles the enabled units per vendor. A POST
// without the session's CSRF token changes nothing; a change takes effect
// for the next lookup, is logged with the admin's subject key, and the
// vendor page shows it with who and when.
func TestCase47_AdminTogglesUnitsWithCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withUnits())
	c, tok := e.login()

	page := vendorSection(t, e.get("/admin/vendors", c).Body.String(), "learning-app")
	for _, want := range []string{"<code>" + unitOne + "</code>", "policyfil / policy file", "<code>student</code>",
		`action="/admin/units"`, `name="unit" value="` + unitOne + `" checked`} {
		if !strings.Contains(page, want) {
			t.Errorf("vendor section lacks %q", want)
		}
	}

	set := form("vendor", "learning-app", "action", "set", "unit", unitOne, "add", unitTwo+", "+unitTre)
	// Without, or with a wrong, token: refused, nothing changed.
	for _, tokVal := range []string{"", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		f := form("vendor", "learning-app", "action", "set", "add", unitTwo)
		if tokVal != "" {
			f.Set("csrf", tokVal)
		}
		if w := e.post("/admin/units", c, f); w.Code != http.StatusForbidden {
			t.Errorf("POST with token %q: status %d, want 403", tokVal, w.Code)
		}
	}
	if w := e.do(request{method: http.MethodPost, path: "/admin/units", cookie: c, form: withCSRF(set, tok),
		header: http.Header{"Sec-Fetch-Site": {"cross-site"}}}); w.Code != http.StatusForbidden {
		t.Errorf("cross-site POST: status %d, want 403", w.Code)
	}
	if w := e.get("/admin/units?vendor=learning-app&action=all&csrf="+tok, c); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /admin/units: status %d, want 405", w.Code)
	}
	if diff := cmp.Diff([]string{unitOne}, e.effective("learning-app").EnabledFor.SchoolUnits); diff != "" {
		t.Fatalf("a refused request changed the units (-want +got):\n%s", diff)
	}

	// With the token: saved, effective at once.
	w := e.post("/admin/units", c, withCSRF(set, tok))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/admin/vendors?saved=learning-app#v-learning-app" {
		t.Fatalf("set: status %d, location %q", w.Code, w.Header().Get("Location"))
	}
	eff := e.effective("learning-app")
	if diff := cmp.Diff(policy.EnabledFor{SchoolUnits: []string{unitOne, unitTwo, unitTre}, Affiliations: []string{"student"}}, eff.EnabledFor); diff != "" {
		t.Errorf("after set (-want +got):\n%s", diff)
	}
	if !strings.Contains(e.logs.String(), `"admin_subject":"subj-0123abcd","vendor":"learning-app","page":"units","action":"set","outcome":"ok"`) {
		t.Errorf("the change is not logged with the admin's subject key:\n%s", e.logs.String())
	}

	// Uncheck one: a toggle.
	e.clock.Add(time.Minute)
	if w := e.post("/admin/units", c, withCSRF(form("vendor", "learning-app", "action", "set", "unit", unitOne, "unit", unitTre), tok)); w.Code != http.StatusSeeOther {
		t.Fatalf("toggle off: status %d", w.Code)
	}
	if diff := cmp.Diff([]string{unitOne, unitTre}, e.effective("learning-app").EnabledFor.SchoolUnits); diff != "" {
		t.Errorf("after toggling %s off (-want +got):\n%s", unitTwo, diff)
	}

	page = vendorSection(t, e.get("/admin/vendors?saved=learning-app", c).Body.String(), "learning-app")
	for _, want := range []string{
		"The change is saved", "<code>" + unitOne + ", " + unitTre + "</code>", "administratörens val / admin's choice",
		`name="unit" value="` + unitTwo + `">`, // still offered, unchecked
		"Recent changes", "<code>subj-0123abcd</code>",
		testStart.Format("2006-01-02 15:04:05 MST"), testStart.Add(time.Minute).Format("2006-01-02 15:04:05 MST"),
		"Reset to the policy file",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("vendor section after the change lacks %q", want)
		}
	}
	if strings.Index(page, testStart.Add(time.Minute).Format("15:04:05")) > strings.Index(page, testStart.Format("15:04:05")) {
		t.Errorf("recent changes are not newest first")
	}

	// Reset: the file's list again; the log keeps all three changes.
	if w := e.post("/admin/units", c, withCSRF(form("vendor", "learning-app", "action", "reset"), tok)); w.Code != http.StatusSeeOther {
		t.Fatalf("reset: status %d", w.Code)
	}
	if diff := cmp.Diff([]string{unitOne}, e.effective("learning-app").EnabledFor.SchoolUnits); diff != "" {
		t.Errorf("after reset (-want +got):\n%s", diff)
	}
	st, _ := e.admin.d.Units.Get(t.Context(), "learning-app")
	if len(st.Changes) != 3 || st.Changes[2].Action != units.ActionReset || st.Changes[0].By != "subj-0123abcd" {
		t.Errorf("change log: %+v", st.Changes)
	}
}

func withCSRF(f map[string][]string, tok string) map[string][]string {
	out := map[string][]string{"csrf": {tok}}
	for k, v := range f {
		out[k] = v
	}
	return out
}

// Malformed changes are refused with a page and change nothing.
func TestCase47_AdminRefusesBadUnitChanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withUnits())
	c, tok := e.login()
	tests := []struct {
		name   string
		form   map[string][]string
		status int
	}{
		{"not 8 digits", form("vendor", "learning-app", "action", "set", "add", "1234567"), http.StatusBadRequest},
		{"letters", form("vendor", "learning-app", "action", "set", "unit", "1111222x"), http.StatusBadRequest},
		{"empty set", form("vendor", "learning-app", "action", "set"), http.StatusBadRequest},
		{"unknown action", form("vendor", "learning-app", "action", "drop"), http.StatusBadRequest},
		{"unknown vendor", form("vendor", "no-such-vendor", "action", "all"), http.StatusNotFound},
	}
	for _, tc := range tests {
		w := e.post("/admin/units", c, withCSRF(tc.form, tok))
		if w.Code != tc.status || !strings.Contains(w.Body.String(), "Nothing was changed") {
			t.Errorf("%s: status %d, want %d with a page saying nothing changed", tc.name, w.Code, tc.status)
		}
	}
	if st, _ := e.admin.d.Units.Get(t.Context(), "learning-app"); st.Override || len(st.Changes) != 0 {
		t.Errorf("a refused change was stored: %+v", st)
	}
}

// Without a way to name the admin, no change is made: every change must
// say who made it.
func TestCase47_AdminChangeNeedsSubject(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withUnits(), func(d *Deps) { d.AdminSubject = nil })
	c, tok := e.login()
	if strings.Contains(e.get("/admin/vendors", c).Body.String(), `action="/admin/units"`) {
		t.Errorf("the vendors page offers changes that cannot be recorded")
	}
	if w := e.post("/admin/units", c, withCSRF(form("vendor", "learning-app", "action", "all"), tok)); w.Code != http.StatusForbidden {
		t.Errorf("status %d, want 403", w.Code)
	}
	if st, _ := e.admin.d.Units.Get(t.Context(), "learning-app"); st.Override {
		t.Errorf("a change without an admin subject was stored")
	}
}

// The register page shows the enabled units per vendor.
func TestCase47_RegisterPageShowsEnabledUnits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(d *Deps) {
		d.RegisterRows = func() []RegisterRow {
			return []RegisterRow{
				{VendorID: "learning-app", Released: []string{}, EnabledSchoolUnits: unitOne + "; " + unitTwo, EnabledAffiliations: "student"},
				{VendorID: "classroom", Released: []string{}, EnabledSchoolUnits: "all", EnabledAffiliations: "all"},
			}
		}
	})
	c, _ := e.login()
	body := e.get("/admin/register", c).Body.String()
	for _, want := range []string{"Enabled for", "<code>" + unitOne + "; " + unitTwo + "</code>", "<code>student</code>", "school units: alla / all"} {
		if !strings.Contains(body, want) {
			t.Errorf("register page lacks %q", want)
		}
	}
}
