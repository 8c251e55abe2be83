package e2e

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/protection"
	"github.com/skolbro/skolbro/internal/testidp"
)

// identityEnv starts the demo with the manual register as the only
// protection source (so that the test sets and lifts a marking between
// logins) and with every kind of identifier added to the national-tests
// (SAML, pairwise NameID) and oidc-app (OIDC, pairwise sub) policies.
func identityEnv(t *testing.T, instances int) (*env, *protection.Register) {
	t.Helper()
	var reg *protection.Register
	e := startEnvWith(t, instances, memoryStore, func(d *demo.Demo) {
		registerOnly(t, d)
		var err error
		reg, err = protection.NewRegister(protection.NewFileRegister(filepath.Join(d.Dir, "register.json")), registerKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := protection.Command(context.Background(), "init", reg, strings.NewReader(""), io.Discard, time.Now()); err != nil {
			t.Fatal(err)
		}
		appendTo := func(file, text string) {
			p := filepath.Join(d.Dir, "attribute-release", file)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, append(b, text...), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		appendTo("national-tests.yaml", "attributes:\n  - name: eduPersonPrincipalName\n  - name: eduPersonUniqueID\n  - name: subject-id\n  - name: pairwise-id\n")
		appendTo("oidc-app.yaml", "  - name: eduPersonUniqueID\n  - name: subject-id\n  - name: pairwise-id\n")
	})
	return e, reg
}

// identifierNames are, per vendor, the identifiers it receives besides
// the OIDC sub.
var identifierNames = map[string][]string{
	"national-tests": {"eduPersonPrincipalName", "eduPersonUniqueID", "subject-id", "pairwise-id"},
	"oidc-app":       {"eduperson_principal_name", "eduperson_unique_id", "subject-id", "pairwise-id"},
}

// identifiers logs user in at vendor and returns every identifier the
// vendor received, with its subject.
func (e *env) identifiers(vendor, user string) map[string]string {
	e.t.Helper()
	g := e.loginAny(newBrowser(e.t, e.srv.Client()), vendor, user)
	out := map[string]string{}
	for _, n := range identifierNames[vendor] {
		if len(g.values[n]) != 1 {
			e.t.Fatalf("%s received %s = %q; received %v", vendor, n, g.values[n], names(g))
		}
		out[n] = g.values[n][0]
	}
	// The demo's SAML vendors ask for a transient NameID (new at every
	// login); the OIDC sub is pairwise.
	if vendor == e.demo.OIDCVendor.Name {
		if g.subject == "" {
			e.t.Fatalf("%s received no sub", vendor)
		}
		out["sub"] = g.subject
	}
	return out
}

// assertAllNew fails unless every identifier differs from its value in
// each earlier set.
func assertAllNew(t *testing.T, step string, got map[string]string, earlier ...map[string]string) {
	t.Helper()
	for _, old := range earlier {
		for n, v := range got {
			if old[n] == v {
				t.Errorf("%s: %s is an identifier the vendor had before", step, n)
			}
		}
	}
}

func assertSame(t *testing.T, step string, got, want map[string]string) {
	t.Helper()
	for n, v := range want {
		if got[n] != v {
			t.Errorf("%s: %s changed", step, n)
		}
	}
}

// adminBrowser logs the demo admin in through the school IdP.
func (e *env) adminBrowser() *browser {
	e.t.Helper()
	b := newBrowser(e.t, e.srv.Client())
	p := b.get(e.srv.URL + "/admin/")
	p = b.submit(p, url.Values{"user": {"fredrik.f"}})
	p = b.submit(p, nil)
	if p.status != http.StatusOK || p.url.Path != "/admin/" {
		e.t.Fatalf("admin login: %s", p)
	}
	return b
}

// adminForm posts the form of page path whose hidden action (or submit
// target) matches, with fields added.
func (e *env) adminForm(b *browser, path, action string, fields url.Values) page {
	e.t.Helper()
	p := b.get(e.srv.URL + path)
	fs, err := p.forms()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range fs {
		if !strings.HasSuffix(f.action, path) || (action != "" && f.fields.Get("action") != action) {
			continue
		}
		for k, v := range fields {
			f.fields[k] = v
		}
		return b.post(f.action, f.fields)
	}
	e.t.Fatalf("no %s form with action %q at %s", path, action, p)
	return page{}
}

func personalNumberOf(e *env, login string) string {
	u, _ := e.demo.IdP.User(login)
	return u.Attributes[testidp.AttrPersonalNumber][0]
}

// newIdentitySequence is the whole story of one pupil at one vendor:
// unprotected logins keep the original identifiers; the marking set
// between two logins changes every one of them; a second login while
// protected keeps the new ones; lifting the marking does not bring the
// old ones back; an admin's new identity changes them all again; a
// marking after that (the vendor saw the pupil unmasked) changes them
// once more; subject access finds every generation.
func newIdentitySequence(t *testing.T, instances int, vendor string) {
	e, reg := identityEnv(t, instances)
	ctx := context.Background()
	pn := pnrOf(t, e, "anna.a")

	gen0 := e.identifiers(vendor, "anna.a")
	assertSame(t, "second unprotected login", e.identifiers(vendor, "anna.a"), gen0)
	classmate := e.identifiers(vendor, "bertil.b")

	if err := reg.Add(ctx, pn, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	gen1 := e.identifiers(vendor, "anna.a")
	assertAllNew(t, "first login as protected", gen1, gen0)
	assertSame(t, "second login while protected", e.identifiers(vendor, "anna.a"), gen1)
	assertSame(t, "a classmate", e.identifiers(vendor, "bertil.b"), classmate)

	if err := reg.Remove(ctx, pn); err != nil {
		t.Fatal(err)
	}
	assertSame(t, "login after the marking was lifted", e.identifiers(vendor, "anna.a"), gen1)

	admin := e.adminBrowser()
	p := e.adminForm(admin, "/admin/identity", "request", url.Values{"pnr": {personalNumberOf(e, "anna.a")}})
	today := time.Now().UTC().Format(time.DateOnly)
	if p.status != http.StatusOK || !strings.Contains(p.body, "The request is recorded") || !strings.Contains(p.body, today) {
		t.Fatalf("admin request for a new identity: %s: %.500s", p, p.body)
	}
	gen2 := e.identifiers(vendor, "anna.a")
	assertAllNew(t, "login after an admin's new identity", gen2, gen0, gen1)
	assertSame(t, "second login after it", e.identifiers(vendor, "anna.a"), gen2)
	p = e.adminForm(admin, "/admin/identity", "status", url.Values{"pnr": {personalNumberOf(e, "anna.a")}})
	if !strings.Contains(p.body, "New identity issued: <strong>"+today+"</strong> (på begäran / on request)") {
		t.Errorf("the identity page does not show the date the new identity was issued: %.800s", p.body)
	}

	if err := reg.Add(ctx, pn, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	gen3 := e.identifiers(vendor, "anna.a")
	assertAllNew(t, "marked again after logins unmasked", gen3, gen0, gen1, gen2)

	// Subject access: one subject key across every generation.
	recs, err := audit.Query(filepath.Join(e.demo.Dir, "audit"), keyer(t, e).KeyForPersonalNumber(pn))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	for _, r := range recs {
		if r.Outcome == audit.OutcomeReleased && r.Vendor == vendor {
			seen[r.Generation]++
		}
	}
	if seen[0] != 2 || seen[1] != 3 || seen[2] != 2 || seen[3] != 1 {
		t.Errorf("subject access found releases per generation %v, want 0:2 1:3 2:2 3:1", seen)
	}
	p = e.adminForm(admin, "/admin/subject", "", url.Values{"pnr": {personalNumberOf(e, "anna.a")}, "format": {"html"}})
	for _, want := range []string{"Ursprunglig identitet / Original identity: från / from " + today, "New identity 3: från / from " + today} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the subject access page lacks %q", want)
		}
	}
	logs := e.logs.String()
	if strings.Count(logs, `"message":"new identity issued"`) != 3 {
		t.Errorf("want 3 \"new identity issued\" log lines")
	}
	checkLogs(t, e, logs)
}

// TestCase36_NewIdentitySAML: the story for a SAML vendor (EPPN,
// eduPersonUniqueID, subject-id, pairwise-id), on two bridge instances
// sharing the store behind a round-robin balancer.
func TestCase36_NewIdentitySAML(t *testing.T) {
	newIdentitySequence(t, 2, "national-tests")
}

// TestCase36_NewIdentityOIDC: the story for an OIDC vendor (pairwise sub
// and the same identifiers as claims).
func TestCase36_NewIdentityOIDC(t *testing.T) {
	newIdentitySequence(t, 1, "oidc-app")
}
