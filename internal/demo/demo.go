// Package demo sets up `skolbro demo`: the bridge configured through its
// ordinary configuration file as a hub of two organisers, with their test
// school IdPs and demo vendors mounted beside it, all on one listener.
// "Demo kommun" is served at the root URLs with one SAML school IdP;
// "Grannkommun" is served under /o/grannkommun with two school IdPs (its
// pupils' SAML IdP and its staff's OIDC IdP), so that its logins show the
// discovery page. Every key it makes is generated at start, marked TEST
// ONLY, and deleted on exit.
package demo

import (
	"bytes"
	"crypto/rand"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/admin"
	"github.com/skolbro/skolbro/internal/app"
	"github.com/skolbro/skolbro/internal/assurance"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/demovendor"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/mapping"
	"github.com/skolbro/skolbro/internal/metrics"
	"github.com/skolbro/skolbro/internal/server"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/testidp"
	"github.com/skolbro/skolbro/internal/testop"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

//go:embed policies/*.yaml
var policyFS embed.FS

// Scopes of the demo: the school IdP's and the organiser's (used in the
// pseudonymous EPPNs vendors receive).
const (
	UpstreamScope  = "skolor.demo-kommun.test"
	OrganiserScope = "demo-kommun.test"
)

// The demo's first organiser, served at the root URLs.
const (
	DemoKommunID = "demo-kommun"
	// DemoKommunEntitlement is Demo kommun's admin entitlement.
	DemoKommunEntitlement = "urn:x-skolbro:entitlement:admin"
)

// The demo's second organiser, Grannkommun: its id, URL prefix and scope,
// its upstreams' ids and their scopes (an OIDC login_hint in either
// domain picks that upstream without discovery).
const (
	GrannkommunID         = "grannkommun"
	GrannkommunPrefix     = "/o/" + GrannkommunID
	GrannkommunScope      = "grannkommun.test"
	GrannkommunPupils     = "pupils"
	GrannkommunStaff      = "staff"
	GrannkommunPupilScope = "elev.grannkommun.test"
	GrannkommunStaffScope = "personal.grannkommun.test"
)

// Demo is a prepared demo: files written, parts built.
type Demo struct {
	Base   string
	Dir    string
	Config *config.Config
	// IdP is Demo kommun's school IdP, Vendors its SAML vendors.
	IdP     *testidp.IdP
	Vendors []*demovendor.Vendor
	// OIDCVendor is Demo kommun's OIDC demo vendor.
	OIDCVendor *demovendor.OIDCVendor
	// OIDCIdP is the test OIDC provider; Demo kommun's school IdP when
	// the demo runs with an OIDC upstream.
	OIDCIdP *testop.OP
	// UpstreamOIDC is set when the bridge logs in through OIDCIdP.
	UpstreamOIDC bool
	// Grannkommun is the second organiser's part of the demo; nil with
	// Options.OneOrganiser.
	Grannkommun *Grannkommun
	// SharedVendor is registered once with the hub's entity and served
	// by both organisers, each under its own policy: a login shows the
	// organiser discovery page. Nil with Options.OneOrganiser.
	SharedVendor *demovendor.Vendor
	// Report is the last build's report. An organiser whose files have
	// errors is listed in Report.Disabled and the others serve, as with
	// skolbro serve.
	Report *app.Report
	// Built are the organisers the last build made (for tests that drive
	// a step of the flow directly).
	Built []*server.Organiser
	// Metrics, when set before a Handler is built, observes the bridge
	// (tests read the counters from it).
	Metrics *metrics.Metrics
}

// Grannkommun is the demo's second organiser: its pupils log in at a
// second test SAML IdP, its staff at a second test OIDC provider, and it
// has vendors of its own. Nothing of it is shared with Demo kommun.
type Grannkommun struct {
	// PupilIdP is the pupils' SAML IdP, at /demo/idp2.
	PupilIdP *testidp.IdP
	// StaffOP is the staff's OIDC IdP, at /demo/oidc-idp2, and
	// StaffUsers are its users.
	StaffOP    *testop.OP
	StaffUsers []testidp.User
	// Vendors are its SAML vendors, OIDCVendor its OIDC vendor.
	Vendors    []*demovendor.Vendor
	OIDCVendor *demovendor.OIDCVendor
}

// Options change the demo's set-up.
type Options struct {
	// UpstreamOIDC makes Demo kommun's school IdP an OIDC provider
	// instead of SAML.
	UpstreamOIDC bool
	// OneOrganiser writes Demo kommun alone, with the organiser:
	// shorthand (the load benchmark's world).
	OneOrganiser bool
}

// Setup writes the demo's configuration, TEST ONLY keys, metadata and
// policies under dir, for a bridge reachable at base (e.g.
// http://127.0.0.1:8080).
func Setup(base, dir string, now time.Time) (*Demo, error) {
	return SetupWith(base, dir, now, Options{})
}

// SetupWith is Setup with options. Demo kommun's files are where a
// single-organiser deployment keeps them (keys/, metadata/,
// attribute-release/, audit/); Grannkommun's are the same under
// grannkommun/.
func SetupWith(base, dir string, now time.Time, opts Options) (*Demo, error) {
	d := &Demo{Base: base, Dir: dir, UpstreamOIDC: opts.UpstreamOIDC}
	for _, sub := range []string{"keys", "metadata", "attribute-release", "upstream"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	bridgeKey, err := writeOrganiserKeys(filepath.Join(dir, "keys"), "skolbro demo bridge (TEST ONLY)", "skolbro demo OIDC key (TEST ONLY)", now)
	if err != nil {
		return nil, err
	}

	idpSigner, err := newSigner("skolbro demo school IdP (TEST ONLY)", now)
	if err != nil {
		return nil, err
	}
	d.IdP = testidp.New(base+"/demo/idp/metadata", base+"/demo/idp/sso", UpstreamScope, idpSigner)
	d.IdP.ACSURL = base + "/saml/sp/acs"
	// Single Logout between the test IdP and the bridge's SP, which signs
	// with the bridge's key.
	d.IdP.SLOURL = base + "/demo/idp/slo"
	d.IdP.SP = testidp.SP{EntityID: base + "/saml/sp/metadata", Cert: bridgeKey.Cert, SLOURL: base + "/saml/sp/slo"}
	if err := writeIdPMetadata(d.IdP, filepath.Join(dir, "upstream", "school-idp.xml")); err != nil {
		return nil, err
	}

	for _, name := range []string{"learning-app", "national-tests"} {
		v, err := samlVendor(name, base, dir, now)
		if err != nil {
			return nil, err
		}
		d.Vendors = append(d.Vendors, v)
	}
	// The OIDC vendor, registered with a client secret in a file.
	if d.OIDCVendor, err = oidcVendor("oidc-app", base, base, dir); err != nil {
		return nil, err
	}

	// The test OIDC provider, and the bridge's registration with it.
	rpSecret, err := writeSecret(filepath.Join(dir, "keys", "upstream-oidc.secret"))
	if err != nil {
		return nil, err
	}
	d.OIDCIdP = testop.New(base+"/demo/oidc-idp", testidp.DemoUsers(UpstreamScope), "skolbro", rpSecret, base+"/oidc/rp/callback")
	d.OIDCIdP.SetPostLogoutRedirectURI(base + "/oidc/rp/logout")

	// The test IdPs say "password and one-time code" in REFEDS MFA's
	// words; the mapping makes it the organiser's two-factor level, and
	// asks for it in the same words.
	assuranceCfg := fmt.Sprintf(`
    assurance:
      map:
        %s: %s
        %s: %s
      request:
        %s: %s`, testidp.PasswordProtected, assurance.Bas, testidp.PasswordOTP, assurance.TwoFactor, assurance.TwoFactor, testidp.PasswordOTP)
	upstream := fmt.Sprintf(`    id: school-idp
    type: saml
    metadata: upstream/school-idp.xml
    stable_id: %s
    security_marking: %s`, testidp.AttrEPPN, testidp.AttrSecurityMarking) + assuranceCfg
	if opts.UpstreamOIDC {
		upstream = fmt.Sprintf(`    id: school-oidc-idp
    type: oidc
    issuer: %s/demo/oidc-idp
    client_id: skolbro
    client_secret_file: keys/upstream-oidc.secret
    stable_id: sub
    security_marking: %s
    scopes: [%s]
    attributes:
      %s: sisSchoolUnitCode
      %s: sisSchoolGrade`, base, testop.ClaimSecurityMarking, UpstreamScope, testop.ClaimSchoolUnitCodes, testop.ClaimSchoolGrade) + assuranceCfg
	}
	// Demo kommun's keys stay indented as in a one-organiser file (the
	// list item's keys are at column 2), so that a deployment moving into
	// a hub only wraps its organiser: in a list.
	head, rootURLs := "organisers:\n- ", "  root_urls: true\n"
	if opts.OneOrganiser {
		head, rootURLs = "organiser:\n  ", ""
	}
	organisers := head + fmt.Sprintf(`id: %s
  display_name: Demo kommun
  legal_name: Demo kommun
%s  scope: %s
  upstream:
%s
  keys:
    signing:
      cert: keys/signing.crt
      key: keys/signing.key
    oidc:
      - key: keys/oidc-es256.key
        kid: demo-es256
  pseudonym:
    key_file: keys/pseudonym.key
  audit:
    dir: audit
    key_file: keys/audit.key
  admin:
    entitlement: %s
    privacy_entitlement: %s
  metadata_dir: metadata
  policy_dir: attribute-release
`, DemoKommunID, rootURLs, OrganiserScope, upstream, DemoKommunEntitlement, testidp.EntitlementPrivacy)
	if !opts.OneOrganiser {
		g, section, err := setupGrannkommun(base, dir, now)
		if err != nil {
			return nil, err
		}
		d.Grannkommun = g
		organisers += section
	}
	hubSection := ""
	if !opts.OneOrganiser {
		if hubSection, err = d.setupHub(dir, now); err != nil {
			return nil, err
		}
	}

	cfgText := fmt.Sprintf(`# skolbro demo configuration (TEST ONLY)
external_url: %s
dev_mode: true
log_level: info
store:
  type: memory
%s%s`, base, hubSection, organisers)
	cfgPath := filepath.Join(dir, "skolbro.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return nil, err
	}
	if d.Config, err = config.Load(cfgPath); err != nil {
		return nil, err
	}
	return d, nil
}

// SharedVendorName is the demo vendor shared through the hub's entity.
const SharedVendorName = "shared-app"

// setupHub gives the demo the hub's own entity: its signing key, and the
// shared vendor's metadata in hub/metadata with its policy in both
// organisers' policy directories. It returns the keys: and hub: sections.
func (d *Demo) setupHub(dir string, now time.Time) (string, error) {
	if err := os.MkdirAll(filepath.Join(dir, "hub", "metadata"), 0o700); err != nil {
		return "", err
	}
	hubKey, err := keys.Generate("skolbro demo hub (TEST ONLY)", keys.RSA2048, now)
	if err != nil {
		return "", err
	}
	if err := writePair(filepath.Join(dir, "keys"), "hub-signing", hubKey); err != nil {
		return "", err
	}
	v, err := demovendor.New(SharedVendorName, d.Base+"/demo/vendor/"+SharedVendorName, now)
	if err != nil {
		return "", err
	}
	vmd, err := v.Metadata()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "hub", "metadata", SharedVendorName+".xml"), vmd, 0o600); err != nil {
		return "", err
	}
	for _, pdir := range []string{dir, filepath.Join(dir, GrannkommunID)} {
		if err := writePolicy(SharedVendorName, d.Base, pdir); err != nil {
			return "", err
		}
	}
	// Demo kommun uses the shared vendor at Skola A only: its pupils at
	// Skola B are refused (issue 15's per-unit switch); Grannkommun uses
	// it at every school.
	p := filepath.Join(dir, "attribute-release", SharedVendorName+".yaml")
	pol, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	pol = append(pol, fmt.Sprintf("enabled_for:\n  school_units: [%q]   # Skola A\n", testidp.SchoolA)...)
	if err := os.WriteFile(p, pol, 0o600); err != nil {
		return "", err
	}
	d.SharedVendor = v
	return `keys:
  signing:
    cert: keys/hub-signing.crt
    key: keys/hub-signing.key
hub:
  legal_name: Demo regionen
  display_name: Demo regionens skolinloggning
  metadata_dir: hub/metadata
`, nil
}

// setupGrannkommun writes the second organiser's keys, upstream metadata,
// vendor metadata and policies under dir/grannkommun, and returns its
// entry in the organisers: list. Its pseudonym and audit keys are its
// own: the same person gets other pseudonyms there.
func setupGrannkommun(base, dir string, now time.Time) (*Grannkommun, string, error) {
	gdir := filepath.Join(dir, GrannkommunID)
	for _, sub := range []string{"keys", "metadata", "attribute-release", "upstream"} {
		if err := os.MkdirAll(filepath.Join(gdir, sub), 0o700); err != nil {
			return nil, "", err
		}
	}
	if _, err := writeOrganiserKeys(filepath.Join(gdir, "keys"), "skolbro demo Grannkommun (TEST ONLY)", "skolbro demo Grannkommun OIDC key (TEST ONLY)", now); err != nil {
		return nil, "", err
	}
	g := &Grannkommun{}
	signer, err := newSigner("skolbro demo Grannkommun pupils' IdP (TEST ONLY)", now)
	if err != nil {
		return nil, "", err
	}
	g.PupilIdP = &testidp.IdP{
		EntityID: base + "/demo/idp2/metadata",
		SSOURL:   base + "/demo/idp2/sso",
		Signer:   signer,
		Users:    testidp.GrannkommunPupils(GrannkommunPupilScope),
		Now:      time.Now,
		Rand:     rand.Reader,
		Scope:    GrannkommunPupilScope,
		ACSURL:   base + GrannkommunPrefix + "/saml/sp/" + GrannkommunPupils + "/acs",
	}
	if err := writeIdPMetadata(g.PupilIdP, filepath.Join(gdir, "upstream", "pupil-idp.xml")); err != nil {
		return nil, "", err
	}
	rpSecret, err := writeSecret(filepath.Join(gdir, "keys", "upstream-oidc.secret"))
	if err != nil {
		return nil, "", err
	}
	g.StaffUsers = testidp.GrannkommunStaff(GrannkommunStaffScope)
	g.StaffOP = testop.New(base+"/demo/oidc-idp2", g.StaffUsers, "skolbro-grannkommun", rpSecret,
		base+GrannkommunPrefix+"/oidc/rp/"+GrannkommunStaff+"/callback")
	v, err := samlVendor("grannkommun-app", base, gdir, now)
	if err != nil {
		return nil, "", err
	}
	g.Vendors = append(g.Vendors, v)
	if g.OIDCVendor, err = oidcVendor("grannkommun-oidc-app", base, base+GrannkommunPrefix, gdir); err != nil {
		return nil, "", err
	}
	section := fmt.Sprintf(`- id: %[1]s
  display_name: Grannkommun
  legal_name: Grannkommuns kommun
  scope: %[2]s
  upstreams:
    - id: %[3]s
      type: saml
      display_name: Elever / Pupils
      metadata: %[1]s/upstream/pupil-idp.xml
      stable_id: %[4]s
      security_marking: %[5]s
    - id: %[6]s
      type: oidc
      display_name: Personal / Staff
      issuer: %[7]s/demo/oidc-idp2
      client_id: skolbro-grannkommun
      client_secret_file: %[1]s/keys/upstream-oidc.secret
      stable_id: sub
      security_marking: %[8]s
      scopes: [%[9]s]
      attributes:
        %[10]s: sisSchoolUnitCode
        %[11]s: sisSchoolGrade
  keys:
    signing:
      cert: %[1]s/keys/signing.crt
      key: %[1]s/keys/signing.key
    oidc:
      - key: %[1]s/keys/oidc-es256.key
        kid: grannkommun-es256
  pseudonym:
    key_file: %[1]s/keys/pseudonym.key
  audit:
    dir: %[1]s/audit
    key_file: %[1]s/keys/audit.key
  admin:
    entitlement: %[12]s
    privacy_entitlement: %[13]s
  metadata_dir: %[1]s/metadata
  policy_dir: %[1]s/attribute-release
`, GrannkommunID, GrannkommunScope, GrannkommunPupils, testidp.AttrEPPN, testidp.AttrSecurityMarking,
		GrannkommunStaff, base, testop.ClaimSecurityMarking, GrannkommunStaffScope,
		testop.ClaimSchoolUnitCodes, testop.ClaimSchoolGrade, testidp.GrannkommunEntitlement, testidp.GrannkommunPrivacyEntitlement)
	return g, section, nil
}

// writeOrganiserKeys writes one organiser's TEST ONLY keys into dir: its
// signing pair, its OIDC token key, and its own pseudonym and audit keys.
func writeOrganiserKeys(dir, signingName, oidcName string, now time.Time) (*keys.Pair, error) {
	signing, err := keys.Generate(signingName, keys.RSA2048, now)
	if err != nil {
		return nil, err
	}
	if err := writePair(dir, "signing", signing); err != nil {
		return nil, err
	}
	oidcKey, err := keys.Generate(oidcName, keys.P256, now)
	if err != nil {
		return nil, err
	}
	if err := writePair(dir, "oidc-es256", oidcKey); err != nil {
		return nil, err
	}
	for _, name := range []string{"pseudonym.key", "audit.key"} {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, name), k, 0o600); err != nil {
			return nil, err
		}
	}
	return signing, nil
}

func newSigner(name string, now time.Time) (*xmlsig.Signer, error) {
	p, err := keys.Generate(name, keys.RSA2048, now)
	if err != nil {
		return nil, err
	}
	return xmlsig.NewSigner(p)
}

func writeIdPMetadata(idp *testidp.IdP, path string) error {
	md, err := idp.Metadata()
	if err != nil {
		return err
	}
	return os.WriteFile(path, md, 0o600)
}

// writeSecret writes a fresh random secret (hex) to path and returns it.
func writeSecret(path string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	s := fmt.Sprintf("%x", b)
	return s, os.WriteFile(path, []byte(s), 0o600)
}

// samlVendor makes a demo SAML vendor mounted at /demo/vendor/<name> and
// writes its metadata and release policy into the organiser's dir.
func samlVendor(name, base, dir string, now time.Time) (*demovendor.Vendor, error) {
	v, err := demovendor.New(name, base+"/demo/vendor/"+name, now)
	if err != nil {
		return nil, err
	}
	vmd, err := v.Metadata()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "metadata", name+".xml"), vmd, 0o600); err != nil {
		return nil, err
	}
	return v, writePolicy(name, base, dir)
}

// oidcVendor makes a demo OIDC vendor of the organiser whose issuer is
// issuer, with its client secret in dir/keys and its policy.
func oidcVendor(name, base, issuer, dir string) (*demovendor.OIDCVendor, error) {
	v, err := demovendor.NewOIDC(name, base+"/demo/vendor/"+name, issuer)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", name+".secret"), []byte(v.ClientSecret), 0o600); err != nil {
		return nil, err
	}
	return v, writePolicy(name, base, dir)
}

func writePolicy(name, base, dir string) error {
	tmpl, err := template.ParseFS(policyFS, "policies/"+name+".yaml")
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, map[string]string{"Base": base}); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "attribute-release", name+".yaml"), buf.Bytes(), 0o600)
}

func writePair(dir, name string, p *keys.Pair) error {
	kp, err := p.KeyPEM()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), p.CertPEM(), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".key"), kp, 0o600)
}

// Handler builds the bridge from the demo configuration, exactly as
// `skolbro serve` would, with the test IdPs and the vendors mounted beside
// it.
func (d *Demo) Handler(log zerolog.Logger) (http.Handler, error) {
	return d.HandlerWithStore(log, store.NewMemory(nil))
}

// HandlerWithStore is Handler with a given store. As with serve, an
// organiser whose files have errors is left out (d.Report says which)
// and the others serve.
func (d *Demo) HandlerWithStore(log zerolog.Logger, st store.Store) (http.Handler, error) {
	// Read the configuration again: tests change the demo's files after
	// Setup, exactly as an admin would edit a deployment.
	cfg, err := config.Load(d.Config.File())
	if err != nil {
		return nil, err
	}
	d.Config = cfg
	// The bridge discovers its OIDC upstreams while it is being built,
	// before this process listens: route those calls (and the later
	// token and key requests) to the test providers in-process.
	orgs, hub, rep := app.BuildHub(d.Config, st, app.Options{Now: time.Now, HTTPClient: d.providers()})
	d.Report, d.Built = rep, orgs
	if err := rep.Fatal(len(orgs)); err != nil {
		return nil, err
	}
	for _, id := range rep.Disabled {
		// The problems name files and keys; check prints them.
		log.Error().Str("organiser", id).Msg("organiser disabled by its configuration errors (run skolbro check); the others serve")
	}
	if _, err := app.OpenAudits(d.Config, orgs, time.Now); err != nil {
		return nil, err
	}
	for _, org := range orgs {
		if org.OP != nil {
			// Back-channel logout tokens reach the organiser's OIDC demo
			// vendor in-process, as the bridge's own upstream calls do.
			org.OP.HTTPClient = d.vendorClient(org.ID)
		}
		idpMD, err := org.Metadata.IdPMetadata()
		if err != nil {
			return nil, err
		}
		// Each vendor trusts only its own organiser's IdP.
		for _, v := range d.samlVendors(org.ID) {
			if err := v.SetIdPMetadata(idpMD); err != nil {
				return nil, err
			}
		}
		org.Admin.Identities = d.previewIdentities(org)
	}
	if err := d.trustHub(hub); err != nil {
		return nil, err
	}
	ov := d.overviewData(orgs)
	srv, err := server.New(server.Options{
		Organisers: orgs, Hub: hub, Store: st, Logger: log,
		SecureCookies: strings.HasPrefix(d.Base, "https://"),
		Mounts:        []func(*mux.Router){func(r *mux.Router) { d.mount(r, ov) }},
		Metrics:       d.Metrics,
	})
	if err != nil {
		return nil, err
	}
	return srv.Handler(), nil
}

// sharedNote says where an organiser uses the shared vendor.
func sharedNote(organiser string) string {
	if organiser == DemoKommunID {
		return "Demo kommun uses it at Skola A only, so a pupil at Skola B is refused"
	}
	return "used at every school"
}

// trustHub gives the shared vendor the hub entity's metadata: the one
// IdP it registered with.
func (d *Demo) trustHub(hub *server.Hub) error {
	if hub == nil || d.SharedVendor == nil {
		return nil
	}
	md, err := hub.Metadata.IdPMetadata()
	if err != nil {
		return err
	}
	return d.SharedVendor.SetIdPMetadata(md)
}

// providers routes the bridge's calls to the test OIDC providers (its
// discovery while it is built, before this process listens; then tokens
// and keys) in-process.
func (d *Demo) providers() *http.Client {
	p := inProcess{d.Base + "/demo/oidc-idp": d.OIDCIdP.Handler()}
	if g := d.Grannkommun; g != nil {
		p[d.Base+"/demo/oidc-idp2"] = g.StaffOP.Handler()
	}
	return &http.Client{Transport: p}
}

// vendorClient reaches the organiser's OIDC demo vendor in-process (for
// back-channel logout tokens).
func (d *Demo) vendorClient(organiser string) *http.Client {
	v := d.OIDCVendor
	if organiser == GrannkommunID && d.Grannkommun != nil {
		v = d.Grannkommun.OIDCVendor
	}
	return &http.Client{Transport: inProcess{d.Base + "/demo/vendor/" + v.Name: v}}
}

func (d *Demo) samlVendors(organiser string) []*demovendor.Vendor {
	switch {
	case organiser == DemoKommunID:
		return d.Vendors
	case organiser == GrannkommunID && d.Grannkommun != nil:
		return d.Grannkommun.Vendors
	}
	return nil
}

func (d *Demo) mount(r *mux.Router, ov []overviewOrganiser) {
	mountIdP(r, "/demo/idp", d.IdP)
	for _, v := range d.Vendors {
		mountVendor(r, v.Name, v)
	}
	mountVendor(r, d.OIDCVendor.Name, d.OIDCVendor)
	r.PathPrefix("/demo/oidc-idp/").Handler(http.StripPrefix("/demo/oidc-idp", d.OIDCIdP.Handler()))
	if g := d.Grannkommun; g != nil {
		mountIdP(r, "/demo/idp2", g.PupilIdP)
		for _, v := range g.Vendors {
			mountVendor(r, v.Name, v)
		}
		mountVendor(r, g.OIDCVendor.Name, g.OIDCVendor)
		r.PathPrefix("/demo/oidc-idp2/").Handler(http.StripPrefix("/demo/oidc-idp2", g.StaffOP.Handler()))
	}
	if d.SharedVendor != nil {
		mountVendor(r, d.SharedVendor.Name, d.SharedVendor)
	}
	r.HandleFunc("/demo/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = overviewPage.Execute(w, ov)
	})
	r.Handle("/", http.RedirectHandler("/demo/", http.StatusFound))
}

// mountIdP serves a test SAML IdP's SSO endpoint and metadata under at.
func mountIdP(r *mux.Router, at string, idp *testidp.IdP) {
	r.Handle(at+"/sso", idp).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc(at+"/slo", idp.ServeSLO).Methods(http.MethodGet)
	r.HandleFunc(at+"/metadata", func(w http.ResponseWriter, _ *http.Request) {
		b, err := idp.Metadata()
		if err != nil {
			http.Error(w, "metadata", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Write(b)
	})
}

func mountVendor(r *mux.Router, name string, h http.Handler) {
	prefix := "/demo/vendor/" + name
	r.Handle(prefix, http.StripPrefix(prefix, h))
	r.PathPrefix(prefix + "/").Handler(http.StripPrefix(prefix, h))
}

// overviewOrganiser is one organiser on the overview page.
type overviewOrganiser struct {
	Name, Prefix string
	// Disabled is set when the organiser's files have errors.
	Disabled bool
	// Links are its metadata, discovery document and admin interface.
	Links     []overviewLink
	Vendors   []overviewLink
	Upstreams []overviewUpstream
}

type overviewLink struct{ Text, Href, Note string }

type overviewUpstream struct {
	Name, Protocol string
	Users          []string
}

// overviewData describes each organiser of the configuration for the
// overview page, from what was built.
func (d *Demo) overviewData(orgs []*server.Organiser) []overviewOrganiser {
	built := map[string]*server.Organiser{}
	for _, o := range orgs {
		built[o.ID] = o
	}
	var out []overviewOrganiser
	for _, o := range d.Config.Organisers {
		ov := overviewOrganiser{Name: o.DisplayName, Prefix: o.Prefix()}
		if o.LegalName != "" && o.LegalName != o.DisplayName {
			ov.Name += " (" + o.LegalName + ")"
		}
		p := o.Prefix()
		org := built[o.ID]
		if org == nil {
			ov.Disabled = true
			out = append(out, ov)
			continue
		}
		ov.Links = append(ov.Links, overviewLink{Text: "SAML IdP metadata", Href: p + "/saml/idp/metadata", Note: "for vendors"})
		if org.OP != nil {
			ov.Links = append(ov.Links, overviewLink{Text: "OpenID Connect discovery", Href: p + "/.well-known/openid-configuration", Note: "for OIDC vendors"})
		}
		for _, up := range org.Upstreams {
			if up.SP != nil {
				ov.Links = append(ov.Links, overviewLink{Text: "SAML SP metadata", Href: up.Prefix + "/metadata", Note: "for the school IdP " + up.DisplayName})
			}
		}
		ov.Links = append(ov.Links, overviewLink{Text: "Admin interface", Href: p + "/admin/"})
		for _, v := range d.samlVendors(o.ID) {
			ov.Vendors = append(ov.Vendors, overviewLink{Text: v.Name, Href: "/demo/vendor/" + v.Name + "/", Note: "SAML"})
		}
		if ovn := d.oidcVendor(o.ID); ovn != nil {
			ov.Vendors = append(ov.Vendors, overviewLink{Text: ovn.Name, Href: "/demo/vendor/" + ovn.Name + "/", Note: "OpenID Connect"})
		}
		if sv := d.SharedVendor; sv != nil {
			if _, ok := org.Policies.BySAMLEntityID(d.Base + "/demo/vendor/" + sv.Name + "/metadata"); ok {
				ov.Vendors = append(ov.Vendors, overviewLink{Text: sv.Name, Href: "/demo/vendor/" + sv.Name + "/",
					Note: "SAML, shared by both organisers through the hub's entity (" + server.HubPrefix + "/saml/idp/metadata): shows the organiser choice; " + sharedNote(org.ID)})
			}
		}
		for _, up := range org.Upstreams {
			ou := overviewUpstream{Name: up.DisplayName, Protocol: "SAML"}
			if up.RP != nil {
				ou.Protocol = "OpenID Connect"
			}
			for _, u := range d.upstreamUsers(o.ID, up) {
				ou.Users = append(ou.Users, u.Label)
			}
			ov.Upstreams = append(ov.Upstreams, ou)
		}
		out = append(out, ov)
	}
	return out
}

func (d *Demo) oidcVendor(organiser string) *demovendor.OIDCVendor {
	switch {
	case organiser == DemoKommunID:
		return d.OIDCVendor
	case organiser == GrannkommunID && d.Grannkommun != nil:
		return d.Grannkommun.OIDCVendor
	}
	return nil
}

// upstreamUsers returns the test identities of one of an organiser's
// upstreams.
func (d *Demo) upstreamUsers(organiser string, up *server.Upstream) []testidp.User {
	switch {
	case organiser == DemoKommunID:
		return d.IdP.Users // the same people whether the school IdP speaks SAML or OIDC
	case organiser == GrannkommunID && d.Grannkommun != nil && up.ID == GrannkommunPupils:
		return d.Grannkommun.PupilIdP.Users
	case organiser == GrannkommunID && d.Grannkommun != nil && up.ID == GrannkommunStaff:
		return d.Grannkommun.StaffUsers
	}
	return nil
}

var overviewPage = template.Must(template.New("overview").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>skolbro demo</title><link rel="stylesheet" href="/static/skolbro.css"></head><body><main>
<h1>skolbro demo</h1>
<p>This demo runs in one process: the <strong>skolbro bridge</strong> as a hub of two school organisers, their
<strong>test school IdPs</strong> with invented pupils and teachers, and <strong>demo vendors</strong>. Pick a vendor,
log in as a test identity, and the vendor's page shows exactly what it received. Personal numbers and names stay inside the
bridge unless a vendor's policy allows them; the EPPN a vendor sees is a pseudonym, and the same person gets other
pseudonyms at another organiser.</p>
<p>Each organiser is its own IdP and OpenID Provider towards vendors, with its own keys, vendors, release log and admins.
Grannkommun has two school IdPs, so its logins ask where you log in (the discovery page) unless the vendor gives a hint.</p>
{{range .}}<section class="box"><h2>{{.Name}}</h2>
{{if .Disabled}}<p><strong>Disabled:</strong> its configuration has errors (run <code>skolbro check</code>); the other organisers serve.</p>
{{else}}<p class="muted">Served under <code>{{if .Prefix}}{{.Prefix}}{{else}}/ (the root URLs){{end}}</code>.</p>
<h3>Vendors</h3><ul>
{{range .Vendors}}<li><a href="{{.Href}}">{{.Text}}</a> ({{.Note}})</li>{{end}}
</ul>
<h3>Test identities</h3>
{{range .Upstreams}}<p>{{.Name}} ({{.Protocol}}):</p><ul>
{{range .Users}}<li>{{.}}</li>{{end}}
</ul>{{end}}
<p class="muted">{{range $i, $l := .Links}}{{if $i}} · {{end}}<a href="{{$l.Href}}">{{$l.Text}}</a>{{with $l.Note}} ({{.}}){{end}}{{end}}</p>
{{end}}</section>
{{end}}
<p class="muted">All identities, personal numbers and keys here are invented and for testing only.</p>
</main></body></html>`))

// inProcess is an http.RoundTripper that serves requests below each of
// its URL prefixes (an issuer, e.g. http://127.0.0.1:8080/demo/oidc-idp)
// with that prefix's handler, in this process, the prefix's path
// stripped.
type inProcess map[string]http.Handler

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	for prefix, h := range t {
		if !strings.HasPrefix(req.URL.String(), prefix+"/") {
			continue
		}
		p, err := url.Parse(prefix)
		if err != nil {
			return nil, err
		}
		rec := httptest.NewRecorder()
		http.StripPrefix(p.Path, h).ServeHTTP(rec, req)
		if err := req.Context().Err(); err != nil {
			return nil, err // as a real client gives up when the context ends
		}
		resp := rec.Result()
		resp.Request = req
		return resp, nil
	}
	return nil, fmt.Errorf("demo: in-process client cannot reach %s", req.URL.Host)
}

// previewIdentities maps the organiser's SAML test users into identities
// as a login would, for the admin's release preview.
func (d *Demo) previewIdentities(org *server.Organiser) []admin.PreviewIdentity {
	var out []admin.PreviewIdentity
	for _, up := range org.Upstreams {
		if up.SP == nil {
			continue // an OIDC mapping names claims, not the test IdPs' SAML attributes
		}
		for _, u := range d.upstreamUsers(org.ID, up) {
			friendly := map[string]string{}
			id, err := mapping.Map(up.Mapping, mapping.Input{Subject: u.NameID, Attributes: u.Attributes, FriendlyNames: friendly}, time.Now())
			if err != nil {
				continue
			}
			out = append(out, admin.PreviewIdentity{Login: u.Login, Label: u.Label, Identity: id})
		}
	}
	return out
}

// LiveHandler is HandlerWithStore built as `skolbro serve` builds it,
// through app.Live: the returned Live reloads the demo's files (tests edit
// them, then call Reload, as an admin edits a deployment and sends
// SIGHUP). Reloads count on reloads when it is set.
func (d *Demo) LiveHandler(log zerolog.Logger, st store.Store, reloads *metrics.Reloads) (http.Handler, *app.Live, error) {
	cfg, err := config.Load(d.Config.File())
	if err != nil {
		return nil, nil, err
	}
	d.Config = cfg
	live, rep, err := app.StartLive(cfg, st, app.LiveOptions{Build: app.Options{Now: time.Now, HTTPClient: d.providers(), PinSectors: true}, Logger: log, Reloads: reloads,
		Prepare: func(_ *config.Config, orgs []*server.Organiser) error {
			for _, org := range orgs {
				org.Admin.Identities = d.previewIdentities(org)
			}
			return nil
		}})
	if err == nil {
		err = rep.Fatal(len(live.Organisers()))
	}
	if err != nil {
		if live != nil {
			live.Close()
		}
		return nil, nil, err
	}
	d.Report, d.Built = rep, live.Organisers()
	// The vendors fetch the bridge's metadata once, like vendors that
	// registered it; a reload that changes the bridge's keys needs the
	// rollover in README.
	for _, org := range live.Organisers() {
		idpMD, err := org.Metadata.IdPMetadata()
		if err != nil {
			live.Close()
			return nil, nil, err
		}
		for _, v := range d.samlVendors(org.ID) {
			if err := v.SetIdPMetadata(idpMD); err != nil {
				live.Close()
				return nil, nil, err
			}
		}
	}
	if err := d.trustHub(live.Hub()); err != nil {
		live.Close()
		return nil, nil, err
	}
	ov := d.overviewData(live.Organisers())
	srv, err := server.New(server.Options{
		Organisers: live.Organisers(), Hub: live.Hub(), Store: st, Logger: log,
		SecureCookies: strings.HasPrefix(d.Base, "https://"),
		Mounts:        []func(*mux.Router){func(r *mux.Router) { d.mount(r, ov) }},
		Metrics:       d.Metrics,
	})
	if err != nil {
		live.Close()
		return nil, nil, err
	}
	live.Attach(srv)
	return srv.Handler(), live, nil
}
