package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/demovendor"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/release"
	"github.com/skolbro/skolbro/internal/server"
	"github.com/skolbro/skolbro/internal/testidp"
)

// The demo is a hub of two organisers (internal/demo): Demo kommun ("A")
// at the root URLs with one SAML school IdP, and Grannkommun ("B") under
// /o/grannkommun with two, its pupils' SAML IdP and its staff's OIDC IdP.
// These tests show that nothing of one reaches the other (SECURITY.md
// cases 44 and 45).

const (
	grannPrefix   = demo.GrannkommunPrefix
	grannPupilACS = grannPrefix + "/saml/sp/" + demo.GrannkommunPupils + "/acs"
)

// grann returns the demo's second organiser.
func (e *env) grann() *demo.Grannkommun {
	e.t.Helper()
	if e.demo.Grannkommun == nil {
		e.t.Fatal("the demo has no second organiser")
	}
	return e.demo.Grannkommun
}

// oidcVendor returns the demo OIDC vendor with name, of either organiser,
// or nil.
func (e *env) oidcVendor(name string) *demovendor.OIDCVendor {
	if e.demo.OIDCVendor.Name == name {
		return e.demo.OIDCVendor
	}
	if g := e.demo.Grannkommun; g != nil && g.OIDCVendor.Name == name {
		return g.OIDCVendor
	}
	return nil
}

// startURL is where a vendor sends the browser to log in (a SAML
// AuthnRequest on the redirect binding, or an OIDC authorization
// request), with extra query parameters such as idp_hint.
func (e *env) startURL(vendor string, extra url.Values) string {
	e.t.Helper()
	var start string
	var err error
	if ov := e.oidcVendor(vendor); ov != nil {
		start, err = ov.LoginURL(context.Background())
	} else {
		start, err = e.vendor(vendor).LoginURL("rs-" + vendor)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	if len(extra) > 0 {
		start += "&" + extra.Encode()
	}
	return start
}

// complete drives a login on from a school IdP's picker (a test SAML IdP
// or a test OIDC provider) as user, through the bridge, to vendor, and
// returns what the vendor received. It fails the test on any other page.
func (e *env) complete(b *browser, p page, vendor, user string) got {
	e.t.Helper()
	if p.status != http.StatusOK || !strings.HasPrefix(p.url.Path, "/demo/") {
		e.t.Fatalf("expected a school IdP's picker, got %s: %.300s", p, p.body)
	}
	p = b.submit(p, url.Values{"user": {user}})
	if fs, _ := p.forms(); len(fs) == 1 && strings.Contains(fs[0].action, "/saml/sp/") {
		p = b.submit(p, nil) // the SAML school IdP's auto-post to the bridge
	}
	if ov := e.oidcVendor(vendor); ov != nil {
		if p.status != http.StatusOK || !strings.HasPrefix(p.url.Path, "/demo/vendor/"+vendor) {
			e.t.Fatalf("OIDC vendor %s did not complete: %s: %.300s", vendor, p, p.body)
		}
		c := ov.Last()
		out := got{values: map[string][]string{}, subject: c.Subject}
		for _, cl := range c.Claims {
			out.values[cl.Name] = cl.Values
		}
		return out
	}
	v := e.vendor(vendor)
	if fs, _ := p.forms(); len(fs) != 1 || fs[0].action != v.Base+"/acs" {
		e.t.Fatalf("expected the bridge's auto-post to %s, got %s: %.300s", vendor, p, p.body)
	}
	p = b.submit(p, nil)
	if p.status != http.StatusOK || !strings.HasPrefix(p.url.String(), v.Base) {
		e.t.Fatalf("vendor %s refused the response: %s", vendor, p)
	}
	rec := v.Last()
	return got{values: attrs(rec), subject: rec.NameID}
}

// loginAt runs one whole login at vendor with an idp_hint (empty for
// Demo kommun, whose one upstream needs none).
func (e *env) loginAt(vendor, hint, user string) got {
	e.t.Helper()
	extra := url.Values{}
	if hint != "" {
		extra.Set("idp_hint", hint)
	}
	b := newBrowser(e.t, e.srv.Client())
	return e.complete(b, b.get(e.startURL(vendor, extra)), vendor, user)
}

// orgEvents reads every event of one organiser's release log.
func orgEvents(t *testing.T, e *env, organiser string) []map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(auditDir(e, organiser), "*.jsonl"))
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

func auditDir(e *env, organiser string) string {
	if organiser == demo.GrannkommunID {
		return filepath.Join(e.demo.Dir, demo.GrannkommunID, "audit")
	}
	return filepath.Join(e.demo.Dir, "audit")
}

// pickerRequest reads the bridge's AuthnRequest from a test SAML IdP's
// picker page (its URL carries it).
func pickerRequest(t *testing.T, p page) testidp.Request {
	t.Helper()
	req, err := testidp.ParseAuthnRequest(p.url.Query().Get("SAMLRequest"))
	if err != nil {
		t.Fatalf("no AuthnRequest at %s: %v", p, err)
	}
	return req
}

func respond(t *testing.T, idp *testidp.IdP, req testidp.Request, login string) string {
	t.Helper()
	u, ok := idp.User(login)
	if !ok {
		t.Fatalf("no user %s", login)
	}
	resp, err := idp.Respond(req, u)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// assertNothingReleased checks that neither organiser's release log
// holds a release and that no vendor of either received a login.
func assertNothingReleased(t *testing.T, e *env) {
	t.Helper()
	for _, org := range []string{demo.DemoKommunID, demo.GrannkommunID} {
		for _, ev := range orgEvents(t, e, org) {
			if ev["outcome"] == "released" {
				t.Errorf("%s released to %v", org, ev["vendor"])
			}
		}
	}
	for _, v := range append(append([]*demovendor.Vendor(nil), e.demo.Vendors...), e.grann().Vendors...) {
		if v.Last() != nil {
			t.Errorf("vendor %s received a login", v.Name)
		}
	}
}

// TestCase44_AssertionFromAnotherOrganiserRefused: a school IdP's
// assertion logs people in only under its own organiser. An answer of
// Grannkommun's IdP to a login started at Demo kommun, even one that
// claims to come from Demo kommun's IdP, is refused at Demo kommun's ACS;
// Demo kommun's IdP's answer is refused at Grannkommun's; and a login
// started at Demo kommun cannot be finished at Grannkommun's ACS. Nothing
// is released by any of them, and the refused attempts leave Demo
// kommun's own login in flight intact.
func TestCase44_AssertionFromAnotherOrganiserRefused(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	g := e.grann()

	t.Run("Grannkommun's IdP answers a login started at Demo kommun", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		req := pickerRequest(t, b.get(e.startURL("learning-app", nil)))
		acs := e.srv.URL + "/saml/sp/acs"
		if req.ACSURL != acs {
			t.Fatalf("the AuthnRequest names ACS %q, want Demo kommun's %q", req.ACSURL, acs)
		}
		assertErrorPage(t, b.post(acs, url.Values{"SAMLResponse": {respond(t, g.PupilIdP, req, "gustav.g")}}), http.StatusBadRequest)
		// The same, claiming to be Demo kommun's IdP: its signature is
		// still Grannkommun's IdP's key, which Demo kommun does not trust.
		forged := impersonate(g.PupilIdP, e.demo.IdP.EntityID)
		assertErrorPage(t, b.post(acs, url.Values{"SAMLResponse": {respond(t, forged, req, "gustav.g")}}), http.StatusBadRequest)
	})

	t.Run("Demo kommun's IdP answers a login started at Grannkommun", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		p := b.get(e.startURL("grannkommun-app", url.Values{"idp_hint": {demo.GrannkommunPupils}}))
		if p.url.Path != "/demo/idp2/sso" {
			t.Fatalf("idp_hint=pupils did not lead to Grannkommun's pupils' IdP: %s", p)
		}
		req := pickerRequest(t, p)
		acs := e.srv.URL + grannPupilACS
		assertErrorPage(t, b.post(acs, url.Values{"SAMLResponse": {respond(t, e.demo.IdP, req, "anna.a")}}), http.StatusBadRequest)
		forged := impersonate(e.demo.IdP, g.PupilIdP.EntityID)
		assertErrorPage(t, b.post(acs, url.Values{"SAMLResponse": {respond(t, forged, req, "anna.a")}}), http.StatusBadRequest)
	})

	t.Run("a login started at Demo kommun is not finished at Grannkommun's ACS", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		p := e.toBridgeACS(b, "learning-app", "anna.a")
		f := onlyForm(t, p)
		assertErrorPage(t, b.post(e.srv.URL+grannPupilACS, f.fields), http.StatusBadRequest)
		// Grannkommun's IdP answering Demo kommun's request id, addressed
		// to Grannkommun: the pending request is Demo kommun's alone.
		req := pickerRequest(t, b.get(e.startURL("learning-app", nil)))
		req.ACSURL, req.SPEntityID = e.srv.URL+grannPupilACS, e.srv.URL+grannPrefix+"/saml/sp/"+demo.GrannkommunPupils+"/metadata"
		assertErrorPage(t, b.post(req.ACSURL, url.Values{"SAMLResponse": {respond(t, g.PupilIdP, req, "gustav.g")}}), http.StatusBadRequest)
		assertNothingReleased(t, e)

		// Demo kommun's own response still completes its login at its own
		// ACS: Grannkommun's refusal consumed nothing of Demo kommun's.
		p = b.post(f.action, f.fields)
		if fs, _ := p.forms(); p.status != http.StatusOK || len(fs) != 1 || fs[0].action != e.vendor("learning-app").Base+"/acs" {
			t.Fatalf("Demo kommun's own response after the refusals: %s: %.300s", p, p.body)
		}
	})

	// Grannkommun may record refusals of its own pending logins (issue
	// 18), never a release.
	for _, ev := range orgEvents(t, e, demo.GrannkommunID) {
		if ev["outcome"] != "refused" || ev["subject_key"] != nil && ev["subject_key"] != "" {
			t.Errorf("Grannkommun's release log holds an event other than a refusal naming no one: %v", ev)
		}
	}
	for _, v := range e.grann().Vendors {
		if v.Last() != nil {
			t.Errorf("Grannkommun's vendor %s received a login", v.Name)
		}
	}
	logs := e.logs.String()
	// Another IdP's issuer, a forged issuer (the key does not match), a
	// response addressed elsewhere, a request id that is not Grannkommun's.
	// (Grannkommun's ACS checks its own binding cookie first: a browser
	// that started only Demo kommun's login has none.)
	for _, reasons := range [][]string{{`"reason":"upstream_issuer"`, `"reason":"upstream_no_binding"`}, {`"reason":"upstream_bad_signature"`, `"reason":"upstream_no_binding"`},
		{`"reason":"upstream_destination"`, `"reason":"upstream_no_binding"`}, {`"reason":"upstream_in_response_to"`, `"reason":"upstream_no_binding"`}} {
		if !strings.Contains(logs, reasons[0]) && !strings.Contains(logs, reasons[1]) {
			t.Errorf("the refusals were not logged with %s", reasons[0])
		}
	}
	checkLogs(t, e, logs)
}

// TestCase44_PseudonymsDifferAcrossOrganisers: the same stable id gets
// unrelated pseudonyms at the two organisers. End to end, both school IdPs
// know one person by the same NameID (the stable id of both upstreams
// here): the EPPN each organiser's vendor receives differs in its opaque
// part, not only in its scope. Directly through the built organisers, the
// EPPN, subject-id, pairwise-id and OIDC pairwise sub of one stable id
// differ between the organisers for the same vendor and sector.
func TestCase44_PseudonymsDifferAcrossOrganisers(t *testing.T) {
	e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
		cfg := filepath.Join(d.Dir, "skolbro.yaml")
		b, err := os.ReadFile(cfg)
		must(t, err)
		changed := strings.ReplaceAll(string(b), "stable_id: "+testidp.AttrEPPN, "stable_id: NameID")
		if strings.Count(string(b), "stable_id: "+testidp.AttrEPPN) != 2 {
			t.Fatal("the demo's two SAML upstreams do not use the EPPN as stable id")
		}
		must(t, os.WriteFile(cfg, []byte(changed), 0o600))
		// Anna, at Demo kommun, is known at Grannkommun's IdP by the same
		// NameID, as if both were fed from one source.
		anna, _ := d.IdP.User("anna.a")
		twin, _ := d.Grannkommun.PupilIdP.User("gustav.g")
		twin.Login, twin.NameID = "anna.twin", anna.NameID
		d.Grannkommun.PupilIdP.Users = append(d.Grannkommun.PupilIdP.Users, twin)
	})
	atA := e.loginAt("learning-app", "", "anna.a").values["eduPersonPrincipalName"]
	atB := e.loginAt("grannkommun-app", demo.GrannkommunPupils, "anna.twin").values["eduPersonPrincipalName"]
	if len(atA) != 1 || len(atB) != 1 {
		t.Fatalf("EPPNs: %q at Demo kommun, %q at Grannkommun", atA, atB)
	}
	localA, scopeA, _ := strings.Cut(atA[0], "@")
	localB, scopeB, _ := strings.Cut(atB[0], "@")
	if scopeA != demo.OrganiserScope || scopeB != demo.GrannkommunScope {
		t.Errorf("EPPN scopes %q, %q: each organiser releases in its own scope", scopeA, scopeB)
	}
	if localA == localB {
		t.Errorf("one stable id got the same pseudonym %q at both organisers", localA)
	}
	// And a Grannkommun pupil's own EPPN differs from the twin's: the
	// stable id alone decides the pseudonym within an organiser.
	if own := e.loginAt("grannkommun-app", demo.GrannkommunPupils, "gustav.g").values["eduPersonPrincipalName"]; len(own) != 1 || own[0] == atB[0] {
		t.Errorf("two people got one EPPN at Grannkommun: %q", own)
	}

	a, b := builtOrganiser(t, e, demo.DemoKommunID), builtOrganiser(t, e, demo.GrannkommunID)
	stable := identity.NewSecret("8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a51")
	const sector = "https://vendor.example/sp"
	pairs := map[string][2]string{
		"EPPN":         {a.Deriver.EPPN(stable), b.Deriver.EPPN(stable)},
		"subject-id":   {a.Deriver.SubjectID(stable), b.Deriver.SubjectID(stable)},
		"pairwise-id":  {a.Deriver.PairwiseID(stable, sector), b.Deriver.PairwiseID(stable, sector)},
		"pairwise sub": {a.Deriver.PairwiseSub(stable, sector), b.Deriver.PairwiseSub(stable, sector)},
	}
	for kind, p := range pairs {
		opaqueA, _, _ := strings.Cut(p[0], "@")
		opaqueB, _, _ := strings.Cut(p[1], "@")
		if opaqueA == "" || opaqueA == opaqueB {
			t.Errorf("%s: %q at Demo kommun, %q at Grannkommun: want different pseudonyms", kind, p[0], p[1])
		}
	}
	// The release step itself, for one policy and one identity, under each
	// organiser's deriver.
	pol, ok := a.Policies.ByID("learning-app")
	if !ok {
		t.Fatal("no learning-app policy")
	}
	id := &identity.Identity{StableID: stable, Protection: identity.ProtectionNone, Attributes: identity.Attributes{}}
	relA, relB := release.Release(pol, id, a.Deriver), release.Release(pol, id, b.Deriver)
	if eA, eB := eppnOf(relA), eppnOf(relB); eA == "" || eA == eB {
		t.Errorf("the release step gave EPPN %q at Demo kommun and %q at Grannkommun", eA, eB)
	}
}

func eppnOf(r *release.Released) string {
	for _, a := range r.Attributes {
		if a.Def.Name == "eduPersonPrincipalName" && len(a.Values) == 1 {
			return a.Values[0]
		}
	}
	return ""
}

func builtOrganiser(t *testing.T, e *env, id string) *server.Organiser {
	t.Helper()
	for _, o := range e.demo.Built {
		if o.ID == id {
			return o
		}
	}
	t.Fatalf("organiser %s was not built", id)
	return nil
}

// TestCase44_ReleaseLogPerOrganiser: after logins at both organisers,
// each release log holds only its own organiser's events (its vendors, its
// upstreams, subject keys under its own audit key), and subject access at
// one organiser finds nothing of a person who logged in at the other.
func TestCase44_ReleaseLogPerOrganiser(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	e.loginAt("learning-app", "", "anna.a")
	e.loginAt("oidc-app", "", "bertil.b")
	e.loginAt("grannkommun-app", demo.GrannkommunPupils, "gustav.g")
	e.loginAt("grannkommun-oidc-app", demo.GrannkommunStaff, "johanna.j")

	own := map[string]struct{ vendors, upstreams map[any]bool }{
		demo.DemoKommunID: {
			vendors:   map[any]bool{"learning-app": true, "national-tests": true, "oidc-app": true},
			upstreams: map[any]bool{"school-idp": true},
		},
		demo.GrannkommunID: {
			vendors:   map[any]bool{"grannkommun-app": true, "grannkommun-oidc-app": true},
			upstreams: map[any]bool{demo.GrannkommunPupils: true, demo.GrannkommunStaff: true},
		},
	}
	for org, o := range own {
		evs := orgEvents(t, e, org)
		if len(evs) != 2 {
			t.Errorf("%s's release log holds %d events, want its own 2", org, len(evs))
		}
		for _, ev := range evs {
			if !o.vendors[ev["vendor"]] || !o.upstreams[ev["upstream"]] {
				t.Errorf("%s's release log holds an event of vendor %v from upstream %v", org, ev["vendor"], ev["upstream"])
			}
		}
	}

	// Subject access: each organiser's audit key finds its own pupil in
	// its own log, and nothing in the other's.
	keyA, err := audit.LoadSubjectKeyer(filepath.Join(e.demo.Dir, "keys", "audit.key"))
	must(t, err)
	keyB, err := audit.LoadSubjectKeyer(filepath.Join(e.demo.Dir, demo.GrannkommunID, "keys", "audit.key"))
	must(t, err)
	anna := pnrOf(t, e, "anna.a")
	gustavU, _ := e.grann().PupilIdP.User("gustav.g")
	gustav, err := parsePNR(gustavU.Attributes[testidp.AttrPersonalNumber][0])
	must(t, err)
	count := func(org string, k *audit.SubjectKeyer, p identity.PersonalNumber) int {
		recs, err := audit.Query(auditDir(e, org), k.KeyForPersonalNumber(p))
		must(t, err)
		return len(recs)
	}
	if n := count(demo.DemoKommunID, keyA, anna); n != 1 {
		t.Errorf("Demo kommun's subject access finds %d records of its own pupil, want 1", n)
	}
	if n := count(demo.GrannkommunID, keyB, gustav); n != 1 {
		t.Errorf("Grannkommun's subject access finds %d records of its own pupil, want 1", n)
	}
	for _, c := range []struct {
		org string
		k   *audit.SubjectKeyer
		p   identity.PersonalNumber
	}{{demo.DemoKommunID, keyA, gustav}, {demo.DemoKommunID, keyB, gustav}, {demo.GrannkommunID, keyB, anna}, {demo.GrannkommunID, keyA, anna}} {
		if n := count(c.org, c.k, c.p); n != 0 {
			t.Errorf("%s's release log holds %d records of the other organiser's pupil", c.org, n)
		}
	}
	checkLogs(t, e, e.logs.String())
}

// adminSession returns the admin session cookie a browser holds.
func adminSession(t *testing.T, e *env, b *browser, prefix string) string {
	t.Helper()
	u, _ := url.Parse(e.srv.URL + prefix + "/admin/")
	for _, c := range b.b.Client.Jar.Cookies(u) {
		if c.Name == adminCookie(prefix) && c.Value != "" {
			return c.Value
		}
	}
	t.Fatal("the browser holds no admin session")
	return ""
}

// adminCookie is the admin session cookie of the organiser at prefix: each
// organiser's admin has its own.
func adminCookie(prefix string) string {
	if prefix == "" {
		return "skolbro_admin"
	}
	return "skolbro_admin_" + strings.TrimPrefix(prefix, "/o/")
}

// adminGet fetches an admin page with a session cookie, without
// following redirects, as the handlers answer it.
func adminGet(t *testing.T, e *env, path, session string) (int, string, string) {
	t.Helper()
	c := &http.Client{Transport: e.srv.Client().Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	must(t, err)
	prefix := ""
	if strings.HasPrefix(path, grannPrefix+"/") {
		prefix = grannPrefix
	}
	req.AddCookie(&http.Cookie{Name: adminCookie(prefix), Value: session})
	resp, err := c.Do(req)
	must(t, err)
	defer resp.Body.Close()
	var sb strings.Builder
	_, err = copyBody(&sb, resp)
	must(t, err)
	return resp.StatusCode, resp.Header.Get("Location"), sb.String()
}

// TestCase44_AdminSeesOnlyOwnOrganiser: Demo kommun's admin (at /admin/)
// and Grannkommun's (at /o/grannkommun/admin/) each see only their own
// vendors, register and preview identities, and one's session does not
// open the other's admin interface. Grannkommun's admin logs in through
// its staff IdP (OIDC), found by idp_hint or on the discovery page.
func TestCase44_AdminSeesOnlyOwnOrganiser(t *testing.T) {
	e := startEnv(t, 1, memoryStore)

	// Demo kommun's admin.
	ba := newBrowser(t, e.srv.Client())
	p := ba.get(e.srv.URL + "/admin/")
	p = ba.submit(p, url.Values{"user": {"fredrik.f"}})
	p = ba.submit(p, nil)
	if p.status != http.StatusOK || p.url.Path != "/admin/" {
		t.Fatalf("Demo kommun's admin did not reach /admin/: %s", p)
	}
	sessA := adminSession(t, e, ba, "")

	// Grannkommun's admin, at its own prefix.
	bb := newBrowser(t, e.srv.Client())
	p = bb.get(e.srv.URL + grannPrefix + "/admin/login")
	if p.status != http.StatusOK || !strings.Contains(p.body, "upstream="+demo.GrannkommunStaff) {
		t.Fatalf("Grannkommun's admin login without a hint should show the discovery page: %s", p)
	}
	p = bb.get(e.srv.URL + grannPrefix + "/admin/login?idp_hint=" + demo.GrannkommunStaff)
	if p.url.Path != "/demo/oidc-idp2/authorize" {
		t.Fatalf("idp_hint=staff did not lead to Grannkommun's staff IdP: %s", p)
	}
	p = bb.submit(p, url.Values{"user": {"karl.k"}})
	if p.status != http.StatusOK || p.url.Path != grannPrefix+"/admin/" || strings.Contains(p.body, `href="/admin`) {
		t.Fatalf("Grannkommun's admin login ended at %s, or its page links outside its prefix: %.300s", p, p.body)
	}
	sessB := adminSession(t, e, bb, grannPrefix)
	if sessA == sessB {
		t.Fatal("two admins share one session id")
	}

	vendorsA := []string{"learning-app", "national-tests", "oidc-app"}
	vendorsB := []string{"grannkommun-app", "grannkommun-oidc-app"}
	pages := []struct {
		name, prefix, session string
		own, others           []string
	}{
		{"Demo kommun", "", sessA, vendorsA, vendorsB},
		{"Grannkommun", grannPrefix, sessB, vendorsB, vendorsA},
	}
	for _, pg := range pages {
		for _, path := range []string{"/admin/vendors", "/admin/register", "/admin/register.csv"} {
			status, _, body := adminGet(t, e, pg.prefix+path, pg.session)
			if status != http.StatusOK {
				t.Errorf("%s's admin %s: %d", pg.name, path, status)
				continue
			}
			for _, v := range pg.own {
				if !strings.Contains(body, v) {
					t.Errorf("%s's admin %s does not list its vendor %s", pg.name, path, v)
				}
			}
			for _, v := range pg.others {
				hay := body
				if v == "oidc-app" {
					hay = strings.ReplaceAll(body, "grannkommun-oidc-app", "") // its own, whose name contains the other's
				}
				if strings.Contains(hay, v) {
					t.Errorf("%s's admin %s lists the other organiser's vendor %s", pg.name, path, v)
				}
			}
		}
		// The other organiser's vendor is unknown to the preview.
		status, _, body := adminGet(t, e, pg.prefix+"/admin/preview?vendor="+pg.others[0], pg.session)
		if status == http.StatusOK && strings.Contains(body, "eduPersonPrincipalName") {
			t.Errorf("%s's admin previews the other organiser's vendor %s", pg.name, pg.others[0])
		}
	}
	// Preview identities are the organiser's own people.
	_, _, body := adminGet(t, e, grannPrefix+"/admin/preview?vendor=grannkommun-app", sessB)
	if !strings.Contains(body, "gustav.g") || strings.Contains(body, "anna.a") {
		t.Errorf("Grannkommun's preview does not show exactly its own test identities")
	}
	_, _, body = adminGet(t, e, "/admin/preview?vendor=learning-app", sessA)
	if !strings.Contains(body, "anna.a") || strings.Contains(body, "gustav.g") {
		t.Errorf("Demo kommun's preview does not show exactly its own test identities")
	}

	// One organiser's session opens nothing at the other's admin: the
	// handler sends the browser to log in.
	for _, c := range []struct{ name, path, session, login string }{
		{"Demo kommun's session at Grannkommun", grannPrefix + "/admin/vendors", sessA, grannPrefix + "/admin/login"},
		{"Grannkommun's session at Demo kommun", "/admin/vendors", sessB, "/admin/login"},
	} {
		status, loc, body := adminGet(t, e, c.path, c.session)
		if status != http.StatusSeeOther || loc != c.login || strings.Contains(body, "-app") {
			t.Errorf("%s: %d to %q, want 303 to the login", c.name, status, loc)
		}
	}
	// Demo kommun's admin session is still good at Demo kommun: the other
	// organiser's refusal did not end it.
	if status, _, _ := adminGet(t, e, "/admin/vendors", sessA); status != http.StatusOK {
		t.Errorf("Demo kommun's admin session no longer works at Demo kommun: %d", status)
	}

	// A Grannkommun pupil is not its admin.
	bp := newBrowser(t, e.srv.Client())
	bp.b.Client.CheckRedirect = bb.b.Client.CheckRedirect
	p = bp.get(e.srv.URL + grannPrefix + "/admin/login?idp_hint=" + demo.GrannkommunPupils)
	p = bp.submit(p, url.Values{"user": {"gustav.g"}})
	if p = bp.submit(p, nil); p.status != http.StatusForbidden {
		t.Errorf("a Grannkommun pupil at its admin login got %s", p)
	}
	checkLogs(t, e, e.logs.String())
}

// TestCase44_PendingLoginsPerOrganiser: what one organiser keeps in the
// shared store for a login in flight is not found under the other. A
// discovery choice Grannkommun is waiting for is unknown at Demo kommun's
// discovery endpoint (and still good at Grannkommun afterwards); Demo
// kommun's pending AuthnRequest, answered by Grannkommun's IdP to
// Grannkommun's ACS, is unknown there (and Demo kommun's login still
// completes). The store's own namespacing is TestCase44_StoreKeysPerOrganiser
// in internal/store.
func TestCase44_PendingLoginsPerOrganiser(t *testing.T) {
	for name, newStore := range redisStores(t) {
		t.Run(name, func(t *testing.T) {
			e := startEnv(t, 1, newStore)
			g := e.grann()

			b := newBrowser(t, e.srv.Client())
			p := b.get(e.startURL("grannkommun-app", nil))
			href := discoveryChoice(t, p, demo.GrannkommunPupils)
			d := mustQuery(t, href).Get("d")
			assertErrorPage(t, b.get(e.srv.URL+"/discovery?"+url.Values{"d": {d}, "upstream": {"school-idp"}}.Encode()), http.StatusBadRequest)
			if p := b.get(e.srv.URL + href); p.url.Path != "/demo/idp2/sso" {
				t.Fatalf("Grannkommun's discovery link after Demo kommun refused it: %s", p)
			}

			b = newBrowser(t, e.srv.Client())
			req := pickerRequest(t, b.get(e.startURL("learning-app", nil)))
			mine := req
			req.ACSURL, req.SPEntityID = e.srv.URL+grannPupilACS, e.srv.URL+grannPrefix+"/saml/sp/"+demo.GrannkommunPupils+"/metadata"
			assertErrorPage(t, b.post(req.ACSURL, url.Values{"SAMLResponse": {respond(t, g.PupilIdP, req, "gustav.g")}}), http.StatusBadRequest)
			p = b.post(mine.ACSURL, url.Values{"SAMLResponse": {respond(t, e.demo.IdP, mine, "anna.a")}, "RelayState": {""}})
			if fs, _ := p.forms(); p.status != http.StatusOK || len(fs) != 1 || !strings.HasSuffix(fs[0].action, "/demo/vendor/learning-app/acs") {
				t.Fatalf("Demo kommun's login after Grannkommun refused its request id: %s: %.300s", p, p.body)
			}
			if l := e.logs.String(); !strings.Contains(l, `"reason":"upstream_in_response_to"`) && !strings.Contains(l, `"reason":"upstream_no_binding"`) {
				t.Errorf("Grannkommun's refusal was not logged as an unknown request")
			}
			checkLogs(t, e, e.logs.String())
		})
	}
}

func mustQuery(t *testing.T, href string) url.Values {
	t.Helper()
	u, err := url.Parse(href)
	must(t, err)
	return u.Query()
}

// TestCase45_BrokenOrganiserLeavesOthersServing: a broken policy or
// metadata file of Grannkommun disables Grannkommun, with a problem that
// names the file (and its line or key), while Demo kommun keeps logging
// people in end to end. Grannkommun's URLs answer a plain not-found page,
// and the demo overview shows it disabled. (`skolbro check` on the same
// files: TestCase45_CheckNamesBrokenOrganiserFile in cmd/skolbro.)
func TestCase45_BrokenOrganiserLeavesOthersServing(t *testing.T) {
	cases := []struct {
		name, file, content string
		want                *regexp.Regexp
	}{
		{"policy with invalid YAML", "attribute-release/grannkommun-app.yaml",
			"id: grannkommun-app\nattributes: [eduPersonPrincipalName\n",
			regexp.MustCompile(`grannkommun/attribute-release/grannkommun-app\.yaml:\d+: invalid YAML`)},
		{"policy with an unknown key", "attribute-release/grannkommun-app.yaml", "",
			regexp.MustCompile(`grannkommun/attribute-release/grannkommun-app\.yaml:\d+: attributes\[0\]\.name: .*favouriteColour`)},
		{"vendor metadata that is not XML", "metadata/grannkommun-app.xml", "<md:EntityDescriptor",
			regexp.MustCompile(`grannkommun/metadata/grannkommun-app\.xml`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
				path := filepath.Join(d.Dir, demo.GrannkommunID, tc.file)
				content := tc.content
				if content == "" {
					b, err := os.ReadFile(path)
					must(t, err)
					content = strings.Replace(string(b), "  - name: eduPersonPrincipalName", "  - name: favouriteColour", 1)
				}
				must(t, os.WriteFile(path, []byte(content), 0o600))
			})
			rep := e.demo.Report
			if len(rep.Disabled) != 1 || rep.Disabled[0] != demo.GrannkommunID {
				t.Fatalf("disabled organisers %q, want [grannkommun]", rep.Disabled)
			}
			if !tc.want.MatchString(strings.Join(rep.Errors, "\n")) {
				t.Errorf("the report does not name the file: want %s in\n%s", tc.want, strings.Join(rep.Errors, "\n"))
			}

			// Demo kommun serves, SAML and OIDC, end to end.
			if eppn := e.loginAt("learning-app", "", "anna.a").values["eduPersonPrincipalName"]; len(eppn) != 1 {
				t.Errorf("Demo kommun's SAML login released no EPPN")
			}
			if sub := e.loginAt("oidc-app", "", "bertil.b").subject; sub == "" {
				t.Errorf("Demo kommun's OIDC login gave no sub")
			}
			// Grannkommun is not served at all: no metadata, no login.
			b := newBrowser(t, e.srv.Client())
			assertErrorPage(t, b.get(e.srv.URL+grannPrefix+"/saml/idp/metadata"), http.StatusNotFound)
			for _, path := range []string{"/saml/idp/sso?SAMLRequest=x", "/discovery?d=x&upstream=pupils", "/.well-known/openid-configuration", "/admin/"} {
				assertErrorPage(t, b.get(e.srv.URL+grannPrefix+path), http.StatusNotFound)
			}
			if _, err := e.vendor("grannkommun-app").LoginURL("rs"); err == nil {
				t.Errorf("Grannkommun's vendor got the IdP metadata of a disabled organiser")
			}
			if ov := b.get(e.srv.URL + "/demo/"); !strings.Contains(ov.body, "Disabled:") {
				t.Errorf("the demo overview does not show Grannkommun disabled")
			}
			if !strings.Contains(e.logs.String(), `"organiser":"grannkommun"`) {
				t.Errorf("the disabled organiser was not logged")
			}
			checkLogs(t, e, e.logs.String())
		})
	}
}

// impersonate is idp's keys and people under another IdP's entityID: an
// IdP claiming to be another.
func impersonate(idp *testidp.IdP, entityID string) *testidp.IdP {
	f := testidp.New(entityID, idp.SSOURL, idp.Scope, idp.Signer)
	f.Users, f.Now, f.Rand, f.ACSURL, f.TrustACS = idp.Users, idp.Now, idp.Rand, idp.ACSURL, idp.TrustACS
	return f
}
