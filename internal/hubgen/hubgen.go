// Package hubgen generates a regional hub's configuration: many
// organisers, each with its own school IdP, keys, vendors and policies,
// shaped like a real hub's. The scale test and `skolbro bench
// --organisers` load it; every key it writes is for testing only.
package hubgen

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/skolbro/skolbro/internal/keys"
)

// Options size the generated hub.
type Options struct {
	// Organisers and VendorsPer are how many organisers are generated and
	// how many SAML vendors each serves.
	Organisers, VendorsPer int
	// Base is the bridge's external URL.
	Base string
}

// Organiser is the YAML of one generated organiser, as it appears in
// organisers:.
type Organiser = map[string]any

// Generate writes the files of opts.Organisers organisers under dir
// (dir/hub/<id>/...) and returns their configuration entries, with paths
// relative to dir. The vendors' SP keys are shared across organisers, as
// one vendor serves many organisers in a real hub; each organiser's IdP
// key, pseudonym key and audit key are its own.
func Generate(dir string, opts Options) ([]Organiser, error) {
	now := time.Now()
	vendorCerts := make([]string, opts.VendorsPer)
	for i := range vendorCerts {
		p, err := keys.Generate(fmt.Sprintf("hubgen vendor %d (TEST ONLY)", i), keys.RSA2048, now)
		if err != nil {
			return nil, err
		}
		vendorCerts[i] = base64.StdEncoding.EncodeToString(p.Cert.Raw)
	}
	var out []Organiser
	for n := 0; n < opts.Organisers; n++ {
		id := fmt.Sprintf("gen-%03d", n)
		rel := filepath.Join("hub", id)
		root := filepath.Join(dir, rel)
		for _, sub := range []string{"keys", "metadata", "attribute-release", "audit", "upstream"} {
			if err := os.MkdirAll(filepath.Join(root, sub), 0o700); err != nil {
				return nil, err
			}
		}
		for _, k := range []string{"pseudonym.key", "audit.key"} {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(root, "keys", k), b, 0o600); err != nil {
				return nil, err
			}
		}
		idpKey, err := keys.Generate(id+" school IdP (TEST ONLY)", keys.P256, now)
		if err != nil {
			return nil, err
		}
		scope := id + ".kommun.test"
		idpEntity := "https://idp." + scope + "/idp"
		if err := write(filepath.Join(root, "upstream", "idp.xml"), idpMetadata, map[string]string{
			"EntityID": idpEntity, "Scope": "skolor." + scope, "SSO": "https://idp." + scope + "/sso",
			"Cert": base64.StdEncoding.EncodeToString(idpKey.Cert.Raw)}); err != nil {
			return nil, err
		}
		for v := 0; v < opts.VendorsPer; v++ {
			name := fmt.Sprintf("vendor-%02d", v)
			entity := fmt.Sprintf("https://%s.edtech.test/sp", name)
			if err := write(filepath.Join(root, "metadata", name+".xml"), spMetadata, map[string]string{
				"EntityID": entity, "ACS": fmt.Sprintf("https://%s.edtech.test/acs", name), "Cert": vendorCerts[v]}); err != nil {
				return nil, err
			}
			if err := write(filepath.Join(root, "attribute-release", name+".yaml"), policy, map[string]string{
				"ID": name, "EntityID": entity}); err != nil {
				return nil, err
			}
		}
		out = append(out, Organiser{
			"id":           id,
			"display_name": fmt.Sprintf("Generated kommun %d", n),
			"legal_name":   fmt.Sprintf("Generated kommun %d (TEST ONLY)", n),
			"scope":        scope,
			"upstream": map[string]any{
				"id": "school-idp", "type": "saml", "metadata": filepath.Join(rel, "upstream", "idp.xml"),
				"stable_id": "urn:oid:1.3.6.1.4.1.5923.1.1.1.6", "security_marking": "urn:x-skolbro:securityMarking",
			},
			"pseudonym":    map[string]any{"key_file": filepath.Join(rel, "keys", "pseudonym.key")},
			"audit":        map[string]any{"dir": filepath.Join(rel, "audit"), "key_file": filepath.Join(rel, "keys", "audit.key")},
			"metadata":     map[string]any{"contacts": []map[string]string{{"type": "technical", "email": "it@" + scope}}},
			"metadata_dir": filepath.Join(rel, "metadata"),
			"policy_dir":   filepath.Join(rel, "attribute-release"),
		})
	}
	return out, nil
}

// AddTo appends the generated organisers to the configuration file at
// path, turning an organiser: shorthand into the first entry of
// organisers: (kept at the root URLs). Generated organisers sign with the
// hub's default key, which is the first organiser's signing key.
func AddTo(path string, orgs []Organiser) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return err
	}
	var list []any
	if one, ok := cfg["organiser"].(map[string]any); ok {
		one["root_urls"] = true
		if one["legal_name"] == nil {
			one["legal_name"] = one["display_name"]
		}
		list = []any{one}
		delete(cfg, "organiser")
	} else if l, ok := cfg["organisers"].([]any); ok {
		list = l
	}
	if len(list) == 0 {
		return fmt.Errorf("%s: no organiser to add to", path)
	}
	first, _ := list[0].(map[string]any)
	if ks, ok := first["keys"].(map[string]any); ok && cfg["keys"] == nil {
		if sig, ok := ks["signing"]; ok {
			cfg["keys"] = map[string]any{"signing": sig}
		}
	}
	for _, o := range orgs {
		list = append(list, o)
	}
	cfg["organisers"] = list
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o600)
}

func write(path string, t *template.Template, data map[string]string) error {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

var idpMetadata = template.Must(template.New("idp").Parse(`<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:shibmd="urn:mace:shibboleth:metadata:1.0" entityID="{{.EntityID}}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:Extensions><shibmd:Scope regexp="false">{{.Scope}}</shibmd:Scope></md:Extensions>
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{{.Cert}}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{{.SSO}}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
`))

var spMetadata = template.Must(template.New("sp").Parse(`<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{{.EntityID}}">
  <md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{{.Cert}}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{{.Cert}}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
      <md:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"/>
      <md:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#rsa-oaep"/>
    </md:KeyDescriptor>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{{.ACS}}" index="0"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
`))

var policy = template.Must(template.New("policy").Parse(`# Generated (TEST ONLY).
id: {{.ID}}
display_name: "Generated vendor {{.ID}}"
saml:
  entity_id: "{{.EntityID}}"
  name_id: transient
purpose: "Pupils and teachers log in to a generated learning service."
legal_basis: "Public interest task (GDPR art. 6.1 e), Skollagen (2010:800)"
agreement:
  reference: "GEN-{{.ID}}"
  ends: 2099-12-31
attributes:
  - name: eduPersonPrincipalName
  - name: eduPersonScopedAffiliation
    values: [student, faculty]
  - name: givenName
  - name: sisSchoolUnitCode
`))
