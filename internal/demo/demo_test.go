package demo

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func startDemo(t *testing.T, opts Options) (*Demo, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	d, err := SetupWith("http://"+srv.Listener.Addr().String(), t.TempDir(), time.Now(), opts)
	if err != nil {
		t.Fatal(err)
	}
	h, err := d.Handler(zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return d, srv
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

var href = regexp.MustCompile(`href="(/[^"]*)"`)

// The overview lists both organisers, each with its IdP metadata, OIDC
// discovery document, SP metadata, vendors and test identities, and every
// link on it answers.
func TestOverviewListsBothOrganisers(t *testing.T) {
	d, srv := startDemo(t, Options{})
	if len(d.Report.Disabled) != 0 || len(d.Built) != 2 {
		t.Fatalf("built %d organisers, disabled %q", len(d.Built), d.Report.Disabled)
	}
	status, page := get(t, srv.URL+"/demo/")
	if status != http.StatusOK {
		t.Fatalf("overview: %d", status)
	}
	for _, want := range []string{
		"Demo kommun", "Grannkommun (Grannkommuns kommun)",
		`href="/saml/idp/metadata"`, `href="/.well-known/openid-configuration"`,
		`href="/o/grannkommun/saml/idp/metadata"`, `href="/o/grannkommun/.well-known/openid-configuration"`,
		`href="/o/grannkommun/saml/sp/pupils/metadata"`,
		`href="/demo/vendor/learning-app/"`, `href="/demo/vendor/grannkommun-app/"`, `href="/demo/vendor/grannkommun-oidc-app/"`,
		"Elever / Pupils (SAML)", "Personal / Staff (OpenID Connect)", "Elev, Skola C", "Lärare och administratör, Skola C",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the overview lacks %s", want)
		}
	}
	for _, m := range href.FindAllStringSubmatch(page, -1) {
		if strings.HasSuffix(m[1], "/admin/") {
			continue // the admin interface sends the browser to log in
		}
		if status, _ := get(t, srv.URL+m[1]); status != http.StatusOK {
			t.Errorf("%s: %d", m[1], status)
		}
	}
	// Each organiser's IdP metadata names the organiser itself.
	_, md := get(t, srv.URL+"/o/grannkommun/saml/idp/metadata")
	for _, want := range []string{"Grannkommuns kommun", `<shibmd:Scope regexp="false">grannkommun.test</shibmd:Scope>`, srv.URL + "/o/grannkommun/saml/idp/metadata"} {
		if !strings.Contains(md, want) {
			t.Errorf("Grannkommun's IdP metadata lacks %s", want)
		}
	}
	_, oidc := get(t, srv.URL+"/o/grannkommun/.well-known/openid-configuration")
	if !strings.Contains(oidc, `"issuer":"`+srv.URL+`/o/grannkommun"`) {
		t.Errorf("Grannkommun's OIDC issuer: %s", oidc)
	}
}

// Grannkommun's keys and files are its own, apart from Demo kommun's,
// which stay where a one-organiser deployment keeps them.
func TestOrganisersOwnTheirFiles(t *testing.T) {
	d, err := Setup("http://127.0.0.1:8080", t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !d.Config.ListsOrganisers() || len(d.Config.Organisers) != 2 {
		t.Fatalf("the demo is not a hub of two organisers")
	}
	a, b := d.Config.OrganiserByID(DemoKommunID), d.Config.OrganiserByID(GrannkommunID)
	if a == nil || b == nil || !a.RootURLs || b.Prefix() != GrannkommunPrefix {
		t.Fatalf("organisers: %+v, %+v", a, b)
	}
	if a.PolicyDir != "attribute-release" || a.MetadataDir != "metadata" || a.Audit.Dir != "audit" {
		t.Errorf("Demo kommun's files moved: %s, %s, %s", a.PolicyDir, a.MetadataDir, a.Audit.Dir)
	}
	for _, p := range []string{b.PolicyDir, b.MetadataDir, b.Audit.Dir, b.Pseudonym.KeyFile, b.Audit.KeyFile, b.Keys.Signing.Key} {
		if !strings.HasPrefix(p, GrannkommunID+"/") {
			t.Errorf("Grannkommun's %s is not under grannkommun/", p)
		}
	}
	if b.Admin.Entitlement == a.Admin.Entitlement || b.Scope == a.Scope {
		t.Errorf("the organisers share an admin entitlement or a scope")
	}
	if err := d.Config.Validate(); err != nil {
		t.Errorf("the demo configuration: %v", err)
	}
}

// The bench's world is Demo kommun alone, with the one-organiser
// shorthand at the root URLs.
func TestOneOrganiser(t *testing.T) {
	d, srv := startDemo(t, Options{OneOrganiser: true})
	if d.Config.ListsOrganisers() || len(d.Built) != 1 || d.Grannkommun != nil {
		t.Fatalf("OneOrganiser built %d organisers", len(d.Built))
	}
	if status, _ := get(t, srv.URL+"/o/grannkommun/saml/idp/metadata"); status != http.StatusNotFound {
		t.Errorf("Grannkommun is served: %d", status)
	}
	if status, _ := get(t, srv.URL+"/saml/idp/metadata"); status != http.StatusOK {
		t.Errorf("Demo kommun's metadata: %d", status)
	}
}
