package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/protection"
	"github.com/skolbro/skolbro/internal/testidp"
)

// Extra test identities for subject access, added to the demo's IdP:
//   - annaDropped is anna.a logging in on a day her directory entry
//     carries two different personal numbers (after a change of number),
//     so the bridge drops both and knows her only by her stable id;
//   - plainAdmin has the admin entitlement but not the privacy one.
const (
	annaDropped = "anna.a.two-numbers"
	plainAdmin  = "helga.h"
)

// luhn12 completes an 11-digit YYYYMMDDNNN with its control digit.
func luhn12(first11 string) string {
	sum := 0
	for i, c := range first11[2:] {
		d := int(c - '0')
		if i%2 == 0 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return first11 + fmt.Sprint((10-sum%10)%10)
}

// subjectEnv starts the demo with the extra identities and the manual
// protection register configured.
func subjectEnv(t *testing.T) *env {
	t.Helper()
	return startEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
		anna, _ := d.IdP.User("anna.a")
		two := testidp.User{Login: annaDropped, Label: "Elev 1, Skola A, två personnummer", NameID: anna.NameID, Attributes: map[string][]string{}}
		for k, v := range anna.Attributes {
			two.Attributes[k] = append([]string(nil), v...)
		}
		two.Attributes[testidp.AttrPersonalNumber] = append(two.Attributes[testidp.AttrPersonalNumber], luhn12("20120314983"))
		fredrik, _ := d.IdP.User("fredrik.f")
		helga := testidp.User{Login: plainAdmin, Label: "Skoladministratör utan integritetsbehörighet", NameID: "8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a57", Attributes: map[string][]string{}}
		for k, v := range fredrik.Attributes {
			if k != testidp.AttrPersonalNumber {
				helga.Attributes[k] = append([]string(nil), v...)
			}
		}
		at := "@" + demo.UpstreamScope
		helga.Attributes[testidp.AttrEPPN] = []string{plainAdmin + at}
		helga.Attributes[testidp.AttrMail] = []string{plainAdmin + at}
		helga.Attributes[testidp.AttrGivenName], helga.Attributes[testidp.AttrSurname], helga.Attributes[testidp.AttrDisplayName] = []string{"Helga"}, []string{"Holm"}, []string{"Helga Holm"}
		helga.Attributes[testidp.AttrEntitlement] = []string{testidp.EntitlementAdmin}
		d.IdP.Users = append(d.IdP.Users, two, helga)

		if err := os.WriteFile(filepath.Join(d.Dir, "keys", "register.key"), registerKey, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(d.Dir, "skolbro.yaml")
		b, _ := os.ReadFile(cfg)
		section := "  protection:\n    register:\n      key_file: keys/register.key\n      file: register.json\n  metadata_dir: metadata"
		if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "  metadata_dir: metadata", section, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		reg, err := protection.NewRegister(protection.NewFileRegister(filepath.Join(d.Dir, "register.json")), registerKey)
		if err != nil {
			t.Fatal(err)
		}
		eva, _ := d.IdP.User("eva.e")
		p, _ := parsePNR(eva.Attributes[testidp.AttrPersonalNumber][0])
		if err := reg.Add(context.Background(), p, "", time.Now()); err != nil {
			t.Fatal(err)
		}
	})
}

// adminLogin logs user in to the admin interface and returns the browser.
func (e *env) adminLogin(user string) *browser {
	e.t.Helper()
	b := newBrowser(e.t, e.srv.Client())
	p := b.get(e.srv.URL + "/admin/")
	if p.url.Path != "/demo/idp/sso" {
		e.t.Fatalf("/admin/ without a session should lead to the school IdP, got %s", p)
	}
	p = b.submit(b.submit(p, url.Values{"user": {user}}), nil)
	if p.status != http.StatusOK || p.url.Path != "/admin/" {
		e.t.Fatalf("%s did not reach /admin/: %s", user, p)
	}
	return b
}

// csrfOf returns the CSRF token of the page's forms.
func csrfOf(t *testing.T, p page) string {
	t.Helper()
	fs, err := p.forms()
	if err != nil || len(fs) == 0 || fs[0].fields.Get("csrf") == "" {
		t.Fatalf("no form with a CSRF token at %s", p)
	}
	return fs[0].fields.Get("csrf")
}

// subjectLookup runs one subject access lookup as b (format html) and
// returns the result page.
func (e *env) subjectLookup(b *browser, pnr, stableID string) page {
	e.t.Helper()
	form := b.get(e.srv.URL + "/admin/subject")
	if form.status != http.StatusOK {
		e.t.Fatalf("subject access form: %s", form)
	}
	return b.post(e.srv.URL+"/admin/subject", url.Values{"csrf": {csrfOf(e.t, form)}, "pnr": {pnr}, "stable_id": {stableID}, "format": {"html"}})
}

var vendorOnPage = regexp.MustCompile(`<h3>[^<]*<code>([a-z-]+)</code>`)

func vendorsOn(p page) []string {
	var out []string
	for _, m := range vendorOnPage.FindAllStringSubmatch(p.body, -1) {
		out = append(out, m[1])
	}
	return out
}

// actionLines reads the admin action log the demo bridge wrote.
func actionLines(t *testing.T, e *env) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(e.demo.Dir, "audit", "admin-actions-*.jsonl"))
	var out []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			out = append(out, sc.Text())
		}
		fh.Close()
	}
	return out
}

// numberForms are the ways a 12-digit personal number can be written.
func numberForms(pnr string) []string {
	return []string{pnr, pnr[:8] + "-" + pnr[8:], pnr[2:], pnr[2:8] + "-" + pnr[8:], pnr[2:8] + "+" + pnr[8:]}
}

// TestCase35_SubjectAccessByNumberAndStableID: anna.a logs in to one
// vendor with her personal number, and on a day her number is dropped
// (two numbers in the directory) to another. Her classmate logs in to the
// second vendor. Subject access by her number finds the first release
// only and says so; by her stable id, both; by both, both; never the
// classmate's. The release log holds every key of the first login. Each
// lookup is recorded in the admin action log by subject key, with the
// admin's pseudonymous key and the request id, and the number appears in
// no form there; the bridge's log scan (case 37) covers these paths.
func TestCase35_SubjectAccessByNumberAndStableID(t *testing.T) {
	e := subjectEnv(t)
	e.login(newBrowser(t, e.srv.Client()), "learning-app", "anna.a")
	e.login(newBrowser(t, e.srv.Client()), "national-tests", annaDropped)
	e.login(newBrowser(t, e.srv.Client()), "national-tests", "bertil.b")

	anna, _ := e.demo.IdP.User("anna.a")
	pnr := anna.Attributes[testidp.AttrPersonalNumber][0]
	eppn := anna.Attributes[testidp.AttrEPPN][0]
	k := keyer(t, e)
	pnKey, sidKey := k.KeyForPersonalNumber(pnrOf(t, e, "anna.a")), k.KeyForStableID(identity.NewSecret(eppn))

	evs := events(t, e)
	if len(evs) != 3 {
		t.Fatalf("%d events for 3 logins", len(evs))
	}
	if diff := cmp.Diff([]any{pnKey, sidKey}, evs[0]["subject_keys"]); diff != "" {
		t.Errorf("the login with a number is not logged under both keys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{sidKey}, evs[1]["subject_keys"]); diff != "" || evs[1]["subject_key"] != sidKey {
		t.Errorf("the login with the number dropped (-want +got):\n%s", diff)
	}

	b := e.adminLogin("fredrik.f")
	byPN := e.subjectLookup(b, pnr[:8]+"-"+pnr[8:], "")
	if byPN.status != http.StatusOK {
		t.Fatalf("lookup by number: %s", byPN)
	}
	if diff := cmp.Diff([]string{"learning-app"}, vendorsOn(byPN)); diff != "" {
		t.Errorf("by number: vendors (-want +got):\n%s", diff)
	}
	if !strings.Contains(byPN.body, "No stable id (user name) was given") {
		t.Errorf("by number: the extract does not say that logins without a number are missed")
	}
	for _, tc := range []struct{ name, pnr, sid string }{
		{"by stable id", "", eppn},
		{"by both", pnr, eppn},
	} {
		p := e.subjectLookup(b, tc.pnr, tc.sid)
		if diff := cmp.Diff([]string{"learning-app", "national-tests"}, vendorsOn(p)); diff != "" {
			t.Errorf("%s: vendors (-want +got):\n%s", tc.name, diff)
		}
		if !strings.Contains(p.body, `id="not-covered"`) || !strings.Contains(p.body, "The log begins on") {
			t.Errorf("%s: the extract does not state what it cannot cover", tc.name)
		}
		if !strings.Contains(p.body, "2 händelser / events; 0 nekade") {
			t.Errorf("%s: not exactly her two releases", tc.name)
		}
		for _, f := range append(numberForms(pnr), eppn) {
			if strings.Contains(p.body, f) {
				t.Errorf("%s: the page echoes what was typed", tc.name)
			}
		}
	}

	// The admin action log: one line per lookup, keyed by subject keys.
	lines := actionLines(t, e)
	if len(lines) != 3 {
		t.Fatalf("%d admin actions for 3 lookups", len(lines))
	}
	wantKeys := [][]any{{pnKey}, {sidKey}, {pnKey, sidKey}}
	adminKey := k.KeyForPersonalNumber(pnrOf(t, e, "fredrik.f"))
	for i, l := range lines {
		var a map[string]any
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatal(err)
		}
		if a["action"] != "subject_access" || a["channel"] != "web" || a["admin"] != adminKey || !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(fmt.Sprint(a["txn_id"])) {
			t.Errorf("action %d: %v", i, a)
		}
		if diff := cmp.Diff(wantKeys[i], a["subject_keys"]); diff != "" {
			t.Errorf("action %d: subject keys (-want +got):\n%s", i, diff)
		}
	}
	all := strings.Join(lines, "\n")
	fredrik, _ := e.demo.IdP.User("fredrik.f")
	secrets := append(numberForms(pnr), eppn, fredrik.Attributes[testidp.AttrGivenName][0], fredrik.Attributes[testidp.AttrEPPN][0])
	secrets = append(secrets, numberForms(fredrik.Attributes[testidp.AttrPersonalNumber][0])...)
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("the admin action log holds %q", s)
		}
	}
	if personalNumberPattern.MatchString(regexp.MustCompile(`[0-9a-f]{24,64}`).ReplaceAllString(all, "")) {
		t.Errorf("the admin action log holds something shaped like a personal number")
	}
	checkLogs(t, e, e.logs.String())
}

// TestCase36_PlainAdminGets403OnSubjectAccessAndRegister: an admin
// without the privacy entitlement sees neither page and gets 403 on both,
// GET and POST, by direct URL; nothing is looked up or recorded. The
// privacy admin can use both, and listing the register is recorded.
func TestCase36_PlainAdminGets403OnSubjectAccessAndRegister(t *testing.T) {
	e := subjectEnv(t)
	eva, _ := e.demo.IdP.User("eva.e")
	evaPNR := eva.Attributes[testidp.AttrPersonalNumber][0]

	b := e.adminLogin(plainAdmin)
	overview := b.get(e.srv.URL + "/admin/")
	if strings.Contains(overview.body, `href="/admin/subject"`) || strings.Contains(overview.body, `href="/admin/protection"`) {
		t.Errorf("the plain admin's overview links to subject access or the register")
	}
	tok := csrfOf(t, overview)
	for _, rq := range []struct {
		method, path string
		form         url.Values
	}{
		{http.MethodGet, "/admin/subject", nil},
		{http.MethodPost, "/admin/subject", url.Values{"csrf": {tok}, "pnr": {evaPNR}, "format": {"html"}}},
		{http.MethodGet, "/admin/protection", nil},
		{http.MethodPost, "/admin/protection", url.Values{"csrf": {tok}, "action": {"remove"}, "pnr": {evaPNR}}},
		{http.MethodPost, "/admin/protection", url.Values{"csrf": {tok}, "action": {"add"}, "pnr": {evaPNR}}},
	} {
		var p page
		if rq.method == http.MethodGet {
			p = b.get(e.srv.URL + rq.path)
		} else {
			p = b.post(e.srv.URL+rq.path, rq.form)
		}
		if p.status != http.StatusForbidden {
			t.Errorf("%s %s: %s, want 403", rq.method, rq.path, p)
		}
		if !requestIDOnPage.MatchString(p.body) || strings.Contains(p.body, evaPNR[2:8]) {
			t.Errorf("%s %s: no request id, or the number echoed", rq.method, rq.path)
		}
	}
	if lines := actionLines(t, e); len(lines) != 0 {
		t.Errorf("refused requests were recorded as lookups: %d", len(lines))
	}

	priv := e.adminLogin("fredrik.f")
	if p := priv.get(e.srv.URL + "/admin/protection"); p.status != http.StatusOK || !strings.Contains(p.body, "<code>") {
		t.Errorf("the privacy admin's register page: %s", p)
	}
	if p := priv.get(e.srv.URL + "/admin/subject"); p.status != http.StatusOK {
		t.Errorf("the privacy admin's subject access page: %s", p)
	}
	lines := actionLines(t, e)
	if len(lines) != 1 || !strings.Contains(lines[0], `"action":"protection_list"`) || strings.Contains(lines[0], "subject_keys") {
		t.Errorf("listing the register: %q", lines)
	}
	checkLogs(t, e, e.logs.String())
}
