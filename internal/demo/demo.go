// Package demo sets up `skolbro demo`: a built-in test school IdP, the
// bridge configured through its ordinary configuration file, and two demo
// vendors, all on one listener. Every key it makes is generated at start,
// marked TEST ONLY, and deleted on exit.
package demo

import (
	"bytes"
	"crypto/rand"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
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

// Demo is a prepared demo: files written, parts built.
type Demo struct {
	Base    string
	Dir     string
	Config  *config.Config
	IdP     *testidp.IdP
	Vendors []*demovendor.Vendor
	// OIDCVendor is the OIDC demo vendor.
	OIDCVendor *demovendor.OIDCVendor
	// OIDCIdP is the test OIDC provider; the school's IdP when the demo
	// runs with an OIDC upstream.
	OIDCIdP *testop.OP
	// UpstreamOIDC is set when the bridge logs in through OIDCIdP.
	UpstreamOIDC bool
	// Metrics, when set before a Handler is built, observes the bridge
	// (tests read the counters from it).
	Metrics *metrics.Metrics
}

// Options change the demo's set-up.
type Options struct {
	// UpstreamOIDC makes the school IdP an OIDC provider instead of SAML.
	UpstreamOIDC bool
}

// Setup writes the demo's configuration, TEST ONLY keys, metadata and
// policies under dir, for a bridge reachable at base (e.g.
// http://127.0.0.1:8080).
func Setup(base, dir string, now time.Time) (*Demo, error) {
	return SetupWith(base, dir, now, Options{})
}

// SetupWith is Setup with options.
func SetupWith(base, dir string, now time.Time, opts Options) (*Demo, error) {
	d := &Demo{Base: base, Dir: dir, UpstreamOIDC: opts.UpstreamOIDC}
	for _, sub := range []string{"keys", "metadata", "attribute-release", "upstream"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	bridgeKey, err := keys.Generate("skolbro demo bridge (TEST ONLY)", keys.RSA2048, now)
	if err != nil {
		return nil, err
	}
	if err := writePair(filepath.Join(dir, "keys"), "signing", bridgeKey); err != nil {
		return nil, err
	}
	pk := make([]byte, 32)
	if _, err := rand.Read(pk); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", "pseudonym.key"), pk, 0o600); err != nil {
		return nil, err
	}
	ak := make([]byte, 32)
	if _, err := rand.Read(ak); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", "audit.key"), ak, 0o600); err != nil {
		return nil, err
	}

	idpKey, err := keys.Generate("skolbro demo school IdP (TEST ONLY)", keys.RSA2048, now)
	if err != nil {
		return nil, err
	}
	idpSigner, err := xmlsig.NewSigner(idpKey)
	if err != nil {
		return nil, err
	}
	d.IdP = testidp.New(base+"/demo/idp/metadata", base+"/demo/idp/sso", UpstreamScope, idpSigner)
	d.IdP.ACSURL = base + "/saml/sp/acs"
	md, err := d.IdP.Metadata()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "upstream", "school-idp.xml"), md, 0o600); err != nil {
		return nil, err
	}

	for _, name := range []string{"learning-app", "national-tests"} {
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
		d.Vendors = append(d.Vendors, v)
		tmpl, err := template.ParseFS(policyFS, "policies/"+name+".yaml")
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, map[string]string{"Base": base}); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "attribute-release", name+".yaml"), buf.Bytes(), 0o600); err != nil {
			return nil, err
		}
	}

	// The OIDC vendor, registered with a client secret in a file.
	ov, err := demovendor.NewOIDC("oidc-app", base+"/demo/vendor/oidc-app", base)
	if err != nil {
		return nil, err
	}
	d.OIDCVendor = ov
	if err := os.WriteFile(filepath.Join(dir, "keys", "oidc-app.secret"), []byte(ov.ClientSecret), 0o600); err != nil {
		return nil, err
	}
	tmpl, err := template.ParseFS(policyFS, "policies/oidc-app.yaml")
	if err != nil {
		return nil, err
	}
	var pbuf bytes.Buffer
	if err := tmpl.Execute(&pbuf, map[string]string{"Base": base}); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "attribute-release", "oidc-app.yaml"), pbuf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	oidcKey, err := keys.Generate("skolbro demo OIDC key (TEST ONLY)", keys.P256, now)
	if err != nil {
		return nil, err
	}
	if err := writePair(filepath.Join(dir, "keys"), "oidc-es256", oidcKey); err != nil {
		return nil, err
	}

	// The test OIDC provider, and the bridge's registration with it.
	rpSecret := make([]byte, 32)
	if _, err := rand.Read(rpSecret); err != nil {
		return nil, err
	}
	rpSecretText := fmt.Sprintf("%x", rpSecret)
	if err := os.WriteFile(filepath.Join(dir, "keys", "upstream-oidc.secret"), []byte(rpSecretText), 0o600); err != nil {
		return nil, err
	}
	d.OIDCIdP = testop.New(base+"/demo/oidc-idp", testidp.DemoUsers(UpstreamScope), "skolbro", rpSecretText, base+"/oidc/rp/callback")

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

	cfgText := fmt.Sprintf(`# skolbro demo configuration (TEST ONLY)
external_url: %s
dev_mode: true
log_level: info
store:
  type: memory
organiser:
  id: demo-kommun
  display_name: Demo kommun
  scope: %s
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
    entitlement: urn:x-skolbro:entitlement:admin
  metadata_dir: metadata
  policy_dir: attribute-release
`, base, OrganiserScope, upstream)
	cfgPath := filepath.Join(dir, "skolbro.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return nil, err
	}
	if d.Config, err = config.Load(cfgPath); err != nil {
		return nil, err
	}
	return d, nil
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
// `skolbro serve` would, with the test IdP and the vendors mounted beside it.
func (d *Demo) Handler(log zerolog.Logger) (http.Handler, error) {
	return d.HandlerWithStore(log, store.NewMemory(nil))
}

// HandlerWithStore is Handler with a given store.
func (d *Demo) HandlerWithStore(log zerolog.Logger, st store.Store) (http.Handler, error) {
	// Read the configuration again: tests change the demo's files after
	// Setup, exactly as an admin would edit a deployment.
	cfg, err := config.Load(d.Config.File())
	if err != nil {
		return nil, err
	}
	d.Config = cfg
	opts := app.Options{Now: time.Now}
	if d.UpstreamOIDC {
		// The bridge discovers its upstream while it is being built, before
		// this process listens: route those calls to the test provider
		// in-process.
		opts.HTTPClient = &http.Client{Transport: inProcess{prefix: d.Base + "/demo/oidc-idp", h: http.StripPrefix("/demo/oidc-idp", d.OIDCIdP.Handler())}}
	}
	orgs, rep := app.BuildWith(d.Config, st, opts)
	if err := rep.Err(); err != nil {
		return nil, err
	}
	if _, err := app.OpenAudits(d.Config, orgs, time.Now); err != nil {
		return nil, err
	}
	org := orgs[0]
	idpMD, err := org.Metadata.IdPMetadata()
	if err != nil {
		return nil, err
	}
	for _, v := range d.Vendors {
		if err := v.SetIdPMetadata(idpMD); err != nil {
			return nil, err
		}
	}
	org.Admin.Identities = d.previewIdentities(org)
	srv, err := server.New(server.Options{
		Organisers: orgs, Store: st, Logger: log,
		SecureCookies: strings.HasPrefix(d.Base, "https://"),
		Mounts:        []func(*mux.Router){d.mount},
		Metrics:       d.Metrics,
	})
	if err != nil {
		return nil, err
	}
	return srv.Handler(), nil
}

func (d *Demo) mount(r *mux.Router) {
	r.Handle("/demo/idp/sso", d.IdP).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/demo/idp/metadata", func(w http.ResponseWriter, _ *http.Request) {
		b, err := d.IdP.Metadata()
		if err != nil {
			http.Error(w, "metadata", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Write(b)
	})
	for _, v := range d.Vendors {
		prefix := "/demo/vendor/" + v.Name
		r.PathPrefix(prefix).Handler(http.StripPrefix(prefix, v))
	}
	r.PathPrefix("/demo/vendor/" + d.OIDCVendor.Name).Handler(http.StripPrefix("/demo/vendor/"+d.OIDCVendor.Name, d.OIDCVendor))
	r.PathPrefix("/demo/oidc-idp").Handler(http.StripPrefix("/demo/oidc-idp", d.OIDCIdP.Handler()))
	r.HandleFunc("/demo/", d.overview)
	r.Handle("/", http.RedirectHandler("/demo/", http.StatusFound))
}

var overviewPage = template.Must(template.New("overview").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>skolbro demo</title><link rel="stylesheet" href="/static/skolbro.css"></head><body><main>
<h1>skolbro demo</h1>
<p>This demo runs three parts in one process: a <strong>test school IdP</strong> with invented pupils and teachers,
the <strong>skolbro bridge</strong>, and two <strong>demo vendors</strong>. Pick a vendor, log in as a test identity,
and the vendor's page shows exactly what it received. Personal numbers and names stay inside the bridge unless a vendor's
policy allows them; the EPPN a vendor sees is a pseudonym.</p>
<div class="box"><h2>Vendors</h2><ul>
{{range .Vendors}}<li><a href="/demo/vendor/{{.Name}}/">{{.Name}}</a> (SAML)</li>{{end}}
<li><a href="/demo/vendor/{{.OIDC.Name}}/">{{.OIDC.Name}}</a> (OpenID Connect)</li>
</ul></div>
<div class="box"><h2>Test identities at the school IdP</h2><ul>
{{range .Users}}<li>{{.Label}}</li>{{end}}
</ul><p class="muted">All identities, personal numbers and keys here are invented and for testing only.</p></div>
<p class="muted">Bridge metadata: <a href="/saml/idp/metadata">IdP side</a> · <a href="/saml/sp/metadata">SP side</a></p>
</main></body></html>`))

func (d *Demo) overview(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = overviewPage.Execute(w, map[string]any{"Vendors": d.Vendors, "OIDC": d.OIDCVendor, "Users": d.IdP.Users})
}

// inProcess is an http.RoundTripper that serves requests under prefix with
// h, in this process.
type inProcess struct {
	prefix string
	h      http.Handler
}

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(req.URL.String(), t.prefix) {
		return nil, fmt.Errorf("demo: in-process client cannot reach %s", req.URL.Host)
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// previewIdentities maps the test IdP's users into identities as a login
// would, for the admin's release preview.
func (d *Demo) previewIdentities(org *server.Organiser) []admin.PreviewIdentity {
	if d.UpstreamOIDC {
		return nil // the OIDC mapping names claims, not the test IdP's SAML attributes
	}
	var out []admin.PreviewIdentity
	for _, u := range d.IdP.Users {
		friendly := map[string]string{}
		id, err := mapping.Map(org.Upstreams[0].Mapping, mapping.Input{Subject: u.NameID, Attributes: u.Attributes, FriendlyNames: friendly}, time.Now())
		if err != nil {
			continue
		}
		out = append(out, admin.PreviewIdentity{Login: u.Login, Label: u.Label, Identity: id})
	}
	return out
}
