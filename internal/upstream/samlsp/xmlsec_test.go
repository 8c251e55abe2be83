package samlsp

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/testidp"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// TestInteropXmlsec1Signer has the assertion signed by xmlsec1 (libxml2's
// canonicaliser, OpenSSL), an implementation outside Go: ECDSA signatures
// in the XML-DSig r||s form, whitespace and serialisation as libxml2
// writes them. Skipped where xmlsec1 is not installed (Debian: xmlsec1).
func TestInteropXmlsec1Signer(t *testing.T) {
	bin, err := exec.LookPath("xmlsec1")
	if err != nil {
		t.Skip("xmlsec1 not installed")
	}
	tests := []struct {
		name      string
		pair      func(*testKeys) *keys.Pair
		sigMethod string
	}{
		{"rsa_sha256", func(k *testKeys) *keys.Pair { return k.idp }, xmlsig.RSASHA256},
		{"ecdsa_sha256", func(k *testKeys) *keys.Pair { return k.idpEC }, xmlsig.ECDSASHA256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pair := tc.pair(mustKeys(t))
			f2 := newFixture(t, withCerts(pair), withIdPSigner(signer(t, pair)))
			req := f2.login(browserA)
			unsigned := f2.respond(req, testidp.UnsignedAssertion(), testidp.AfterSigning(func(doc *etree.Document) {
				a := assertionOf(doc)
				a.InsertChildAt(mustFind(t, a, "saml:Issuer").Index()+1, signatureTemplate(a.SelectAttrValue("ID", ""), tc.sigMethod))
			}))
			dir := t.TempDir()
			in, out := filepath.Join(dir, "in.xml"), filepath.Join(dir, "out.xml")
			keyPEM, err := pair.KeyPEM()
			if err != nil {
				t.Fatal(err)
			}
			keyFile, certFile := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
			for name, b := range map[string][]byte{in: []byte(decode(t, unsigned)), keyFile: keyPEM, certFile: pair.CertPEM()} {
				if err := os.WriteFile(name, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(bin, "--sign", "--privkey-pem", keyFile+","+certFile,
				"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
				"--output", out, in)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("xmlsec1: %v\n%s", err, b)
			}
			signed, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if tc.sigMethod == xmlsig.ECDSASHA256 {
				// XML-DSig's r||s form: what the SP must convert.
				d := etree.NewDocument()
				if err := d.ReadFromBytes(signed); err != nil {
					t.Fatal(err)
				}
				sv := mustFind(t, assertionOf(d), "ds:Signature/ds:SignatureValue")
				if raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(sv.Text()), "")); err != nil || len(raw) != 64 {
					t.Fatalf("xmlsec1 ECDSA signature is %d bytes, want 64 (r||s)", len(raw))
				}
			}
			a := f2.expectSuccess(t, f2.sp, encode(string(signed)), browserA)
			if a.NameID != f2.user.NameID {
				t.Errorf("NameID = %q", a.NameID)
			}
		})
	}
}

// signatureTemplate is the empty ds:Signature xmlsec1 fills in.
func signatureTemplate(id, sigMethod string) *etree.Element {
	sig := etree.NewElement("ds:Signature")
	sig.CreateAttr("xmlns:ds", samlxml.NSDSig)
	si := sig.CreateElement("ds:SignedInfo")
	si.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", xmlsig.ExcC14N)
	si.CreateElement("ds:SignatureMethod").CreateAttr("Algorithm", sigMethod)
	ref := si.CreateElement("ds:Reference")
	ref.CreateAttr("URI", "#"+id)
	tr := ref.CreateElement("ds:Transforms")
	tr.CreateElement("ds:Transform").CreateAttr("Algorithm", algEnveloped)
	tr.CreateElement("ds:Transform").CreateAttr("Algorithm", xmlsig.ExcC14N)
	ref.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", xmlsig.DigestSHA256)
	ref.CreateElement("ds:DigestValue")
	sig.CreateElement("ds:SignatureValue")
	sig.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data")
	return sig
}
