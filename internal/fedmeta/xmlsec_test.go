package fedmeta

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/xmlenc/xmlsectest"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// TestSignedMetadataVerifiesWithXmlsec1: the bridge's signed metadata
// verifies with xmlsec1 (libxmlsec1, which Shibboleth-style and
// SimpleSAMLphp-style consumers resemble), trusting only the bridge's
// certificate, and fails there once changed.
func TestSignedMetadataVerifiesWithXmlsec1(t *testing.T) {
	t.Parallel()
	xmlsectest.Path(t)
	dir := t.TempDir()
	for keyName, signer := range map[string]*xmlsig.Signer{
		"RSA":   signerFor(t, testKeys().operator),
		"ECDSA": signerFor(t, testKeys().ecdsa),
	} {
		for shape, el := range bridgeEntities(t) {
			name := keyName + "/" + shape
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				base := strings.NewReplacer("/", "-", " ", "-").Replace(name)
				out, err := Sign(el, signer, time.Now().Add(24*time.Hour), 6*time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				cert := xmlsectest.WriteFile(t, dir, base+"-cert.pem", signer.Pair().CertPEM())
				verify := func(file string) ([]byte, error) {
					_, stderr, err := xmlsectest.Run(t, "--verify",
						"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor",
						"--trusted-pem", cert, file)
					return stderr, err
				}
				if stderr, err := verify(xmlsectest.WriteFile(t, dir, base+".xml", out)); err != nil {
					t.Fatalf("xmlsec1 --verify: %v\n%s", err, stderr)
				}
				tampered := bytes.Replace(out, []byte("https://bridge.example.se/saml/sso"), []byte("https://evil.example.se/saml/sso"), 1)
				if _, err := verify(xmlsectest.WriteFile(t, dir, base+"-tampered.xml", tampered)); err == nil {
					t.Error("xmlsec1 verified tampered metadata")
				}
			})
		}
	}
}

// signatureTemplateFor is the empty ds:Signature that xmlsec1 --sign fills
// in: RSA-SHA256, SHA-256, exclusive C14N, enveloped, referencing uri.
func signatureTemplateFor(uri string) string {
	return `<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
<ds:SignedInfo>
<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
<ds:Reference URI="` + uri + `">
<ds:Transforms>
<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
</ds:Transforms>
<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
<ds:DigestValue></ds:DigestValue>
</ds:Reference>
</ds:SignedInfo>
<ds:SignatureValue></ds:SignatureValue>
<ds:KeyInfo><ds:X509Data></ds:X509Data></ds:KeyInfo>
</ds:Signature>
`
}

// TestXmlsec1SignedAggregateAccepted: an aggregate signed by xmlsec1, the
// way federation tooling (pyFF, xmlsectool) signs, is accepted by
// Source.Load over https; the same aggregate changed after signing is not.
func TestXmlsec1SignedAggregateAccepted(t *testing.T) {
	t.Parallel()
	xmlsectest.Path(t)
	c := newClock()
	dir := t.TempDir()
	op := testKeys().operator
	keyPEM, err := op.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := xmlsectest.WriteFile(t, dir, "key.pem", keyPEM)
	certFile := xmlsectest.WriteFile(t, dir, "cert.pem", op.CertPEM())

	cases := []struct {
		name, id, uri string
	}{
		{name: "reference to the root's ID", id: "_fed2026", uri: "#_fed2026"},
		{name: "root without ID, empty reference", uri: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmpl := string(aggregateXML(aggOpts{entities: 20, id: tc.id, validUntil: c.Now().Add(14 * 24 * time.Hour), cacheDuration: "PT6H"}))
			// The signature goes first, where the metadata schema wants it.
			i := strings.Index(tmpl, ">\n<md:EntityDescriptor") + 2
			tmpl = tmpl[:i] + signatureTemplateFor(tc.uri) + tmpl[i:]
			in := xmlsectest.WriteFile(t, dir, tc.id+"tmpl.xml", []byte(tmpl))
			out := dir + "/" + tc.id + "signed.xml"
			args := []string{"--sign", "--privkey-pem", keyFile + "," + certFile, "--output", out}
			if tc.id != "" {
				args = append(args, "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:metadata:EntitiesDescriptor")
			}
			if _, stderr, err := xmlsectest.Run(t, append(args, in)...); err != nil {
				t.Fatalf("xmlsec1 --sign: %v\n%s", err, stderr)
			}
			signed := readFile(t, out)
			if bytes.Contains(signed, []byte("<ds:DigestValue></ds:DigestValue>")) {
				t.Fatal("xmlsec1 left the template unfilled")
			}

			srv := newMetaServer(t, signed)
			agg, err := srv.source(t, c).Load(t.Context())
			if err != nil {
				t.Fatalf("Load of the xmlsec1-signed aggregate: %v", err)
			}
			if len(agg.Entities) != 20 || agg.CacheDuration != 6*time.Hour {
				t.Errorf("%d entities, cacheDuration %v; want 20 and 6h", len(agg.Entities), agg.CacheDuration)
			}

			srv.set(200, bytes.Replace(signed, []byte("https://sp1.example.com/saml/acs"), []byte("https://evil.example.com/saml/acs"), 1))
			if _, err := srv.source(t, c).Load(t.Context()); Reason(err) != ReasonBadSignature {
				t.Errorf("tampered xmlsec1-signed aggregate: %v, want bad_signature", err)
			}
		})
	}
}
