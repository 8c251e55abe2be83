package admin

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCase36_PlainAdminCannotLearnWhoIsProtected: subject access and the
// protection register tell whether a person is protected. An admin
// without the privacy entitlement is not shown them and gets 403 on
// every method, also by direct URL, and nothing is looked up. Without a
// configured privacy entitlement no admin may use them.
func TestCase36_PlainAdminCannotLearnWhoIsProtected(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, e *env, c *http.Cookie, tok string) {
		t.Helper()
		overview := e.get("/admin/", c).Body.String()
		for _, link := range []string{`href="/admin/subject"`, `href="/admin/protection"`, "manuella skyddsmarkeringar"} {
			if strings.Contains(overview, link) {
				t.Errorf("the overview shows %s", link)
			}
		}
		for _, rq := range []request{
			{path: "/admin/subject", cookie: c},
			{method: http.MethodHead, path: "/admin/subject", cookie: c},
			{method: http.MethodPost, path: "/admin/subject", cookie: c, form: form("csrf", tok, "pnr", protectedPNR, "format", "html")},
			{method: http.MethodPost, path: "/admin/subject", cookie: c, form: form("csrf", tok, "stable_id", "stable-elvira", "format", "json")},
			{path: "/admin/protection", cookie: c},
			{method: http.MethodPost, path: "/admin/protection", cookie: c, form: form("csrf", tok, "action", "add", "pnr", protectedPNR)},
			{method: http.MethodPost, path: "/admin/protection", cookie: c, form: form("csrf", tok, "action", "remove", "pnr", protectedPNR)},
		} {
			w := e.do(rq)
			if w.Code != http.StatusForbidden {
				t.Errorf("%s %s: status %d, want 403", rq.method, rq.path, w.Code)
			}
			if body := w.Body.String(); rq.method != http.MethodHead && !strings.Contains(body, "separate entitlement") {
				t.Errorf("%s %s: not the refusal page", rq.method, rq.path)
			}
		}
		if calls, _ := e.subject.state(); calls != 0 {
			t.Errorf("subject access ran %d times", calls)
		}
		if calls, _ := e.prot.count(); calls != 0 {
			t.Errorf("the protection register was used %d times", calls)
		}
		if got := e.actions.all(); len(got) != 0 {
			t.Errorf("actions recorded for refused requests: %+v", got)
		}
		if !strings.Contains(e.logs.String(), `"outcome":"no_privacy_entitlement"`) {
			t.Errorf("the refusals are not logged")
		}
	}
	t.Run("admin without the privacy entitlement", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		c, tok := e.loginAs(plainAdminIdentity(t))
		check(t, e, c, tok)
	})
	t.Run("no privacy entitlement configured", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(d *Deps) { d.PrivacyEntitlement = "" })
		c, tok := e.login() // carries both values; the second is not configured
		check(t, e, c, tok)
	})
	t.Run("privacy admin", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		c, _ := e.login()
		overview := e.get("/admin/", c).Body.String()
		for _, link := range []string{`href="/admin/subject"`, `href="/admin/protection"`} {
			if !strings.Contains(overview, link) {
				t.Errorf("the overview lacks %s", link)
			}
		}
		for _, p := range []string{"/admin/subject", "/admin/protection"} {
			if w := e.get(p, c); w.Code != http.StatusOK {
				t.Errorf("GET %s: %d", p, w.Code)
			}
		}
	})
}

// TestCase37_AdminLookupsRecordedByKeyNotNumber: every subject access
// lookup and every list, addition and removal in the protection register
// is recorded before it is made, with the admin's pseudonymous key and
// the person's subject keys (never the number); when the record cannot
// be written, nothing is looked up or changed.
func TestCase37_AdminLookupsRecordedByKeyNotNumber(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, tok := e.login()
	pn, sid := fakeKey("pnr", protectedPNR), fakeKey("sid", "stable-elvira")
	steps := []struct {
		name   string
		rq     request
		status int
		want   Action
	}{
		{"subject access by both forms", request{method: http.MethodPost, path: "/admin/subject",
			form: form("csrf", tok, "pnr", protectedPNR, "stable_id", " stable-elvira ", "format", "html")}, http.StatusOK,
			Action{Admin: "subj-0123abcd", Action: ActionSubjectAccess, SubjectKeys: []string{pn, sid}}},
		{"subject access by stable id", request{method: http.MethodPost, path: "/admin/subject",
			form: form("csrf", tok, "stable_id", "stable-elvira", "format", "csv")}, http.StatusOK,
			Action{Admin: "subj-0123abcd", Action: ActionSubjectAccess, SubjectKeys: []string{sid}}},
		{"register list", request{path: "/admin/protection"}, http.StatusOK,
			Action{Admin: "subj-0123abcd", Action: ActionProtectionList}},
		{"register add", request{method: http.MethodPost, path: "/admin/protection",
			form: form("csrf", tok, "action", "add", "pnr", protectedPNR[2:8]+"-"+protectedPNR[8:])}, http.StatusOK,
			Action{Admin: "subj-0123abcd", Action: ActionProtectionAdd, SubjectKeys: []string{pn}}},
		{"register remove", request{method: http.MethodPost, path: "/admin/protection",
			form: form("csrf", tok, "action", "remove", "pnr", protectedPNR)}, http.StatusOK,
			Action{Admin: "subj-0123abcd", Action: ActionProtectionRemove, SubjectKeys: []string{pn}}},
	}
	for _, st := range steps {
		before := len(e.actions.all())
		st.rq.cookie = c
		w := e.do(st.rq)
		if w.Code != st.status {
			t.Errorf("%s: status %d, want %d", st.name, w.Code, st.status)
		}
		got := e.actions.all()[before:]
		if diff := cmp.Diff([]Action{st.want}, got); diff != "" {
			t.Errorf("%s: recorded actions (-want +got):\n%s", st.name, diff)
		}
	}
	raw, _ := json.Marshal(e.actions.all())
	for _, f := range append(numberForms(protectedPNR), "stable-elvira", adminGiven) {
		if strings.Contains(string(raw), f) {
			t.Errorf("the recorded actions hold %q", f)
		}
	}

	// The action log is down: nothing is looked up, nothing changes.
	e.actions.setDown(true)
	subjectCalls, _ := e.subject.state()
	registerCalls, entries := e.prot.count()
	for _, rq := range []request{
		{method: http.MethodPost, path: "/admin/subject", cookie: c, form: form("csrf", tok, "pnr", protectedPNR, "format", "json")},
		{method: http.MethodPost, path: "/admin/protection", cookie: c, form: form("csrf", tok, "action", "add", "pnr", protectedPNR)},
		{path: "/admin/protection", cookie: c},
	} {
		w := e.do(rq)
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("%s %s with the action log down: status %d, want 503", rq.method, rq.path, w.Code)
		}
		if strings.Contains(w.Body.String(), "<code>") && rq.method == http.MethodGet {
			t.Errorf("the register was listed without a record")
		}
	}
	if calls, _ := e.subject.state(); calls != subjectCalls {
		t.Errorf("subject access ran without a record")
	}
	if calls, n := e.prot.count(); calls != registerCalls || n != entries {
		t.Errorf("the register changed without a record")
	}
}

// TestCase35_SubjectAccessStatesWhatItCannotCover: the extract says what
// it cannot show, depending on the forms the admin gave, in the page and
// in the JSON download; a lookup needs at least one form, and a bad
// stable id is refused without being echoed.
func TestCase35_SubjectAccessStatesWhatItCannotCover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, tok := e.login()
	page := func(f ...string) string {
		w := e.post("/admin/subject", c, form(append([]string{"csrf", tok}, f...)...))
		if w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
		return w.Body.String()
	}
	byPN := page("pnr", plainPNR, "format", "html")
	for _, want := range []string{`id="not-covered"`, "No stable id (user name) was given", "The log begins on 2025-11-20", "Refusals before the person logged in"} {
		if !strings.Contains(byPN, want) {
			t.Errorf("lookup by number: the statement lacks %q", want)
		}
	}
	if strings.Contains(byPN, "No personal number was given") {
		t.Errorf("lookup by number says no number was given")
	}
	bySID := page("stable_id", "stable-astrid", "format", "html")
	if !strings.Contains(bySID, "No personal number was given") || strings.Contains(bySID, "No stable id") {
		t.Errorf("lookup by stable id: wrong statement")
	}
	if strings.Contains(bySID, "stable-astrid") {
		t.Errorf("the page echoes the stable id")
	}
	var js struct {
		SearchedBy []string `json:"searched_by"`
		NotCovered []string `json:"not_covered"`
	}
	if err := json.Unmarshal([]byte(page("pnr", plainPNR, "stable_id", "stable-astrid", "format", "json")), &js); err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(js.SearchedBy, []string{"personal_number", "stable_id"}) || len(js.NotCovered) < 3 {
		t.Errorf("json: searched_by %v, not_covered %q", js.SearchedBy, js.NotCovered)
	}
	for _, n := range js.NotCovered {
		if strings.Contains(n, "No personal number") || strings.Contains(n, "No stable id") {
			t.Errorf("both forms given, yet: %q", n)
		}
	}

	for _, bad := range []struct{ name, pnr, sid string }{
		{"nothing", "", ""},
		{"a line break in the stable id", "", "a\nb"},
		{"a stable id too long", "", strings.Repeat("x", 300)},
	} {
		calls, _ := e.subject.state()
		w := e.post("/admin/subject", c, form("csrf", tok, "pnr", bad.pnr, "stable_id", bad.sid, "format", "html"))
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d", bad.name, w.Code)
		}
		if after, _ := e.subject.state(); after != calls {
			t.Errorf("%s: looked up", bad.name)
		}
		if bad.sid != "" && strings.Contains(w.Body.String(), bad.sid) {
			t.Errorf("%s: echoed", bad.name)
		}
	}
}
