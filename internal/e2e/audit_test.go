package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/testidp"
)

// events reads every release log line the demo bridge wrote.
func events(t *testing.T, e *env) []map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(e.demo.Dir, "audit", "*.jsonl"))
	var out []map[string]any
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("a release log line does not parse: %v", err)
			}
			out = append(out, ev)
		}
		fh.Close()
	}
	return out
}

func keyer(t *testing.T, e *env) *audit.SubjectKeyer {
	t.Helper()
	k, err := audit.LoadSubjectKeyer(filepath.Join(e.demo.Dir, "keys", "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pnrOf(t *testing.T, e *env, login string) identity.PersonalNumber {
	t.Helper()
	u, _ := e.demo.IdP.User(login)
	p, err := identity.ParsePersonalNumber(u.Attributes[testidp.AttrPersonalNumber][0], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Every release writes one event with the right fields and no values.
func TestAudit_OneEventPerReleaseWithoutPersonalData(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	e.login(newBrowser(t, e.srv.Client()), "learning-app", "anna.a")
	e.login(newBrowser(t, e.srv.Client()), "learning-app", protectedLogin(t, e))
	evs := events(t, e)
	if len(evs) != 2 {
		t.Fatalf("%d events for 2 logins", len(evs))
	}
	want := map[string]any{
		"upstream": "school-idp", "vendor": "learning-app", "protocol": "saml", "outcome": "released",
		"masked": false, "attributes": []any{"eduPersonPrincipalName", "eduPersonScopedAffiliation", "givenName", "sisSchoolUnitCode"},
	}
	for k, v := range want {
		if diff := cmp.Diff(v, evs[0][k]); diff != "" {
			t.Errorf("event field %s (-want +got):\n%s", k, diff)
		}
	}
	if evs[1]["masked"] != true || len(evs[1]["attributes"].([]any)) != 2 {
		t.Errorf("the protected pupil's event: masked=%v attributes=%v", evs[1]["masked"], evs[1]["attributes"])
	}
	if evs[0]["subject_key"] != keyer(t, e).KeyForPersonalNumber(pnrOf(t, e, "anna.a")) {
		t.Errorf("the event's subject key is not the pupil's")
	}
	if evs[0]["txn_id"] == "" || evs[0]["policy_version"] == "" {
		t.Errorf("event lacks txn_id or policy_version")
	}
	raw, _ := json.Marshal(evs)
	u, _ := e.demo.IdP.User("anna.a")
	for _, v := range append(u.Attributes[testidp.AttrGivenName], u.Attributes[testidp.AttrSchoolUnitCode]...) {
		if strings.Contains(string(raw), `"`+v+`"`) {
			t.Errorf("the release log holds an attribute value")
		}
	}
}

// Subject access: two logins of one pupil to two vendors show up for that
// pupil's personal number and not for a classmate's.
func TestAudit_SubjectAccess(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	e.login(newBrowser(t, e.srv.Client()), "learning-app", "anna.a")
	e.login(newBrowser(t, e.srv.Client()), "national-tests", "anna.a")
	e.login(newBrowser(t, e.srv.Client()), "learning-app", "bertil.b")
	k := keyer(t, e)
	recs, err := audit.Query(filepath.Join(e.demo.Dir, "audit"), k.KeyForPersonalNumber(pnrOf(t, e, "anna.a")))
	if err != nil {
		t.Fatal(err)
	}
	var vendors []string
	for _, r := range recs {
		vendors = append(vendors, r.Vendor)
	}
	if diff := cmp.Diff([]string{"learning-app", "national-tests"}, vendors, sortStrings); diff != "" {
		t.Errorf("vendors for the pupil (-want +got):\n%s", diff)
	}
	classmate, _ := audit.Query(filepath.Join(e.demo.Dir, "audit"), k.KeyForPersonalNumber(pnrOf(t, e, "cecilia.c")))
	if len(classmate) != 0 {
		t.Errorf("a classmate who never logged in has %d records", len(classmate))
	}
}

// A login to a vendor whose agreement has ended is refused and logged.
func TestAudit_AgreementEndedIsRefusedAndLogged(t *testing.T) {
	e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
		p := filepath.Join(d.Dir, "attribute-release", "national-tests.yaml")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(p, []byte(strings.Replace(string(b), "ends: 2099-12-31", "ends: 2020-01-31", 1)), 0o600)
	})
	b := newBrowser(t, e.srv.Client())
	start, _ := e.vendor("national-tests").LoginURL("rs")
	p := b.get(start)
	assertErrorPage(t, p, http.StatusForbidden)
	evs := events(t, e)
	if len(evs) != 1 || evs[0]["outcome"] != "refused" || evs[0]["reason"] != "agreement_ended" || evs[0]["vendor"] != "national-tests" {
		t.Errorf("refusal events: %v", evs)
	}
	if !strings.Contains(e.logs.String(), `"reason":"agreement_ended"`) {
		t.Errorf("the refusal is not in the log")
	}
}

func parsePNR(s string) (identity.PersonalNumber, error) {
	return identity.ParsePersonalNumber(s, time.Now())
}
