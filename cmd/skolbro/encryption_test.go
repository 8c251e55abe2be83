package main

import (
	"encoding/base64"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/keys"
)

// oldSPMetadata is a vendor's SP metadata with an encryption key whose
// KeyDescriptor lists methods (none when empty).
func oldSPMetadata(t *testing.T, methods ...string) string {
	t.Helper()
	p, err := keys.Generate("old sp", keys.RSA2048, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var ms strings.Builder
	for _, m := range methods {
		ms.WriteString(`<md:EncryptionMethod Algorithm="` + m + `"/>`)
	}
	return `<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://old-sp.example.com/shibboleth">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="encryption">
      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + base64.StdEncoding.EncodeToString(p.Cert.Raw) + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
      ` + ms.String() + `
    </md:KeyDescriptor>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://old-sp.example.com/Shibboleth.sso/SAML2/POST" index="0"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
`
}

// oldSPPolicy is the vendor's release policy with the given saml.encrypt
// ("" leaves the key out: auto).
func oldSPPolicy(encrypt string) string {
	s := "id: old-sp\ndisplay_name: Old SP\nsaml:\n  entity_id: https://old-sp.example.com/shibboleth\n"
	if encrypt != "" {
		s += "  encrypt: " + encrypt + "\n"
	}
	return s + "purpose: p\nlegal_basis: l\nagreement:\n  reference: r\n  ends: 2099-01-01\nattributes:\n  - name: eduPersonPrincipalName\n"
}

// TestCase25_CheckRefusesCBCOnlyVendorWithoutChoice: a vendor whose
// metadata lists only AES-CBC cannot decrypt the AES-GCM the bridge sends
// by default, and CBC is never sent unasked. check reports it as an error
// naming the policy file and key and the metadata file, until the policy
// chooses encrypt: never or encrypt: cbc; choosing CBC stays visible as a
// warning, and so does a CBC choice the metadata does not need.
func TestCase25_CheckRefusesCBCOnlyVendorWithoutChoice(t *testing.T) {
	const (
		aes128CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
		aes256CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
		aes256GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
		oaepMGF1P = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
	)
	cbcOnly := []string{aes128CBC, aes256CBC, oaepMGF1P}
	tests := []struct {
		name    string
		methods []string
		encrypt string
		ok      bool
		want    *regexp.Regexp // nil: no line about saml.encrypt
	}{
		{"only CBC, auto: error", cbcOnly, "", false,
			regexp.MustCompile(`error: \S*old-sp\.yaml: saml\.encrypt: the metadata in \S*old-sp\.xml lists only AES-CBC .*encrypt: never.*encrypt: cbc`)},
		{"only CBC, required: error", cbcOnly, "required", false,
			regexp.MustCompile(`error: \S*old-sp\.yaml: saml\.encrypt: the metadata in \S*old-sp\.xml lists only AES-CBC`)},
		{"only CBC, cbc chosen: warning", cbcOnly, "cbc", true,
			regexp.MustCompile(`warning: \S*old-sp\.yaml: saml\.encrypt: the vendor gets AES-CBC .*padding oracles`)},
		{"only CBC, never: fine", cbcOnly, "never", true, nil},
		{"GCM listed: fine", []string{aes256CBC, aes256GCM, oaepMGF1P}, "", true, nil},
		{"nothing listed: fine", nil, "", true, nil},
		{"GCM listed, cbc chosen: not needed", []string{aes256GCM}, "cbc", true,
			regexp.MustCompile(`warning: \S*old-sp\.yaml: saml\.encrypt: cbc is not needed`)},
		{"only Triple DES: error", []string{"http://www.w3.org/2001/04/xmlenc#tripledes-cbc"}, "cbc", false,
			regexp.MustCompile(`error: \S*old-sp\.yaml: saml\.encrypt: the metadata in \S*old-sp\.xml lists no data encryption method the bridge supports`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := deployDir(t)
			write(t, filepath.Join(dir, "metadata", "old-sp.xml"), oldSPMetadata(t, tc.methods...))
			write(t, filepath.Join(dir, "attribute-release", "old-sp.yaml"), oldSPPolicy(tc.encrypt))
			code, out := runCmd("check", "--config", filepath.Join(dir, "skolbro.yaml"))
			if (code == 0) != tc.ok {
				t.Errorf("check exit %d, want success %v", code, tc.ok)
			}
			if tc.want != nil && !tc.want.MatchString(out) {
				t.Errorf("check output lacks %s", tc.want)
			}
			if tc.want == nil && strings.Contains(out, "saml.encrypt") {
				t.Errorf("check reports saml.encrypt")
			}
			if t.Failed() {
				t.Logf("check output:\n%s", out)
			}
		})
	}
}
