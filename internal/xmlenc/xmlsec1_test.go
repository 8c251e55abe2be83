package xmlenc_test

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/xmlenc"
	"github.com/skolbro/skolbro/internal/xmlenc/xmlsectest"
)

// TestXMLSec1Decrypts proves that what the bridge sends vendors decrypts
// with an implementation the project did not write: xmlsec1 (libxmlsec1
// with OpenSSL, which is also what many SAML SPs use), and that the
// decrypted assertion is intact: its attributes are there and its signature
// verifies, with xmlsec1 and with goxmldsig on the assertion alone.
//
// xmlsec1 before 1.3 does not implement XML Encryption 1.1 RSA-OAEP
// (xmlenc11#rsa-oaep with an MGF element); Debian 12 ships 1.2.37. For that
// key transport, when the installed xmlsec1 lacks it, the test splits the
// work between two independent tools: OpenSSL unwraps the EncryptedKey
// with OAEP SHA-256 and MGF1-SHA256 exactly as declared (and must fail with
// MGF1-SHA1), and xmlsec1 decrypts the EncryptedData with the unwrapped key.
func TestXMLSec1Decrypts(t *testing.T) {
	t.Parallel()
	xmlsectest.Path(t)
	enc11 := xmlsectest.HasTransform(t, "rsa-oaep-enc11")
	if !enc11 {
		t.Logf("%s lacks xmlenc11#rsa-oaep: that key transport is unwrapped with openssl", xmlsectest.Version(t))
	}

	signer := newSigner(t)
	vendor := newPair(t, keys.RSA2048)
	dir := t.TempDir()
	keyPEM, err := vendor.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := xmlsectest.WriteFile(t, dir, "vendor-key.pem", keyPEM)
	signerCert := xmlsectest.WriteFile(t, dir, "signer-cert.pem", signer.Pair().CertPEM())

	combos := []xmlenc.Options{
		{DataMethod: xmlenc.AES128GCM, KeyTransport: xmlenc.RSAOAEP},
		{DataMethod: xmlenc.AES256GCM, KeyTransport: xmlenc.RSAOAEP},
		{DataMethod: xmlenc.AES128GCM, KeyTransport: xmlenc.RSAOAEPMGF1P},
		{DataMethod: xmlenc.AES256GCM, KeyTransport: xmlenc.RSAOAEPMGF1P},
		{DataMethod: xmlenc.AES128CBC, KeyTransport: xmlenc.RSAOAEPMGF1P},
		{DataMethod: xmlenc.AES256CBC, KeyTransport: xmlenc.RSAOAEPMGF1P},
	}
	for i, fx := range fixtures {
		for j, opts := range combos {
			name := fmt.Sprintf("%s/%s/%s", fx.name, short(opts.DataMethod), short(opts.KeyTransport))
			base := fmt.Sprintf("case%d-%d", i, j)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				doc, a := signedDoc(t, signer, fx.xml)
				enc, err := xmlenc.EncryptAssertion(a, vendor.Cert, opts, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				encrypted, _ := wire(t, doc, a, enc)

				var out []byte
				if opts.KeyTransport == xmlenc.RSAOAEP && !enc11 {
					out = decryptSplit(t, dir, base, keyFile, encrypted)
				} else {
					file := xmlsectest.WriteFile(t, dir, base+".xml", encrypted)
					var stderr []byte
					out, stderr, err = xmlsectest.Run(t, "--decrypt", "--privkey-pem", keyFile, file)
					if err != nil {
						t.Fatalf("xmlsec1 --decrypt: %v\n%s", err, stderr)
					}
				}
				checkDecrypted(t, dir, base, out, signer, signerCert)
			})
		}
	}
}

// checkDecrypted checks xmlsec1's output: the assertion with its attributes
// is in place of the EncryptedData, and its signature verifies.
func checkDecrypted(t *testing.T, dir, base string, out []byte, signer interface{ Pair() *keys.Pair }, signerCert string) {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(out); err != nil {
		t.Fatalf("xmlsec1 output does not parse: %v", err)
	}
	a := find(doc.Root(), nsAssertion, "Assertion")
	if a == nil {
		t.Fatalf("no Assertion in xmlsec1's output")
	}
	if find(doc.Root(), xmlenc.NSXMLEnc, "EncryptedData") != nil {
		t.Errorf("EncryptedData left in xmlsec1's output")
	}
	// goxmldsig on a copy of the assertion alone, then xmlsec1 on the
	// whole decrypted document.
	checkAssertion(t, a, signer.Pair().Cert)
	file := xmlsectest.WriteFile(t, dir, base+"-decrypted.xml", out)
	_, stderr, err := xmlsectest.Run(t, "--verify", "--id-attr:ID", nsAssertion+":Assertion", "--trusted-pem", signerCert, file)
	if err != nil {
		t.Errorf("xmlsec1 --verify of the decrypted assertion: %v\n%s", err, stderr)
	}
}

// decryptSplit unwraps the EncryptedKey with openssl using the declared
// OAEP parameters, then has xmlsec1 decrypt the EncryptedData with that
// key, named in place of the EncryptedKey.
func decryptSplit(t *testing.T, dir, base, keyFile string, encrypted []byte) []byte {
	t.Helper()
	openssl := xmlsectest.Tool(t, "openssl")
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(encrypted); err != nil {
		t.Fatal(err)
	}
	ek := find(doc.Root(), xmlenc.NSXMLEnc, "EncryptedKey")
	method := ek.SelectElement("EncryptionMethod")
	if method.SelectElement("DigestMethod").SelectAttrValue("Algorithm", "") != xmlenc.DigestSHA256 ||
		method.SelectElement("MGF").SelectAttrValue("Algorithm", "") != xmlenc.MGF1SHA256 {
		t.Fatal("EncryptedKey does not declare SHA-256 and MGF1-SHA256")
	}
	wrapped := xmlsectest.WriteFile(t, dir, base+"-ek.bin", cipherValue(t, ek, "CipherData/CipherValue"))
	unwrap := func(mgf string) (string, error) {
		out := dir + "/" + base + "-cek-" + mgf + ".bin"
		_, stderr, err := xmlsectest.RunTool(t, openssl, "pkeyutl", "-decrypt", "-inkey", keyFile, "-in", wrapped, "-out", out,
			"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:"+mgf)
		if err != nil {
			return "", fmt.Errorf("%w: %s", err, stderr)
		}
		return out, nil
	}
	if _, err := unwrap("sha1"); err == nil {
		t.Fatal("openssl unwrapped the key with MGF1-SHA1: the declared MGF1-SHA256 is not what was computed")
	}
	cek, err := unwrap("sha256")
	if err != nil {
		t.Fatalf("openssl could not unwrap with OAEP SHA-256/MGF1-SHA256: %v", err)
	}

	ki := ek.Parent()
	ki.RemoveChild(ek)
	ki.CreateElement("ds:KeyName").SetText("cek")
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	file := xmlsectest.WriteFile(t, dir, base+"-keyname.xml", b)
	out, stderr, err := xmlsectest.Run(t, "--decrypt", "--aeskey:cek", cek, file)
	if err != nil {
		t.Fatalf("xmlsec1 --decrypt with the unwrapped key: %v\n%s", err, stderr)
	}
	if strings.TrimSpace(string(out)) == "" {
		t.Fatal("xmlsec1 printed nothing")
	}
	return out
}

// TestXMLSec1DecryptsCBCAtEveryPaddingLength: AES-CBC as XML Encryption
// lays it out (a random IV, then the ciphertext of the element padded with
// 1 to 16 bytes whose last byte counts them) decrypts with xmlsec1 for
// every plaintext length modulo the block size, the full block of padding
// for an aligned plaintext included.
func TestXMLSec1DecryptsCBCAtEveryPaddingLength(t *testing.T) {
	t.Parallel()
	xmlsectest.Path(t)
	vendor := newPair(t, keys.RSA2048)
	dir := t.TempDir()
	keyPEM, err := vendor.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := xmlsectest.WriteFile(t, dir, "vendor-key.pem", keyPEM)
	seen := map[int]bool{}
	for n := 0; len(seen) < 16; n++ {
		el := etree.NewElement("v")
		el.SetText(strings.Repeat("x", n))
		b, err := docBytes(el)
		if err != nil {
			t.Fatal(err)
		}
		rem := len(b) % 16
		if seen[rem] {
			continue
		}
		seen[rem] = true
		// Both key sizes, each at half of the lengths.
		method := xmlenc.AES128CBC
		if rem%2 == 1 {
			method = xmlenc.AES256CBC
		}
		ed, err := xmlenc.EncryptElement(el, vendor.Cert, xmlenc.Options{DataMethod: method, KeyTransport: xmlenc.RSAOAEPMGF1P}, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ct := cipherValue(t, ed, "CipherData/CipherValue")
		if pad := 16 - rem; len(ct) != 16+len(b)+pad {
			t.Errorf("%s, %d bytes: ciphertext of %d bytes, want IV, plaintext and %d bytes of padding", short(method), len(b), len(ct), pad)
		}
		root := etree.NewElement("r")
		root.AddChild(ed)
		doc, err := docBytes(root)
		if err != nil {
			t.Fatal(err)
		}
		file := xmlsectest.WriteFile(t, dir, fmt.Sprintf("cbc-%d-%s.xml", len(b), short(method)), doc)
		out, stderr, err := xmlsectest.Run(t, "--decrypt", "--privkey-pem", keyFile, file)
		if err != nil {
			t.Fatalf("xmlsec1 --decrypt, %s, %d bytes: %v\n%s", short(method), len(b), err, stderr)
		}
		if want := "<r>" + string(b) + "</r>"; !strings.Contains(string(out), want) {
			t.Errorf("xmlsec1, %s, %d bytes: output %q lacks %q", short(method), len(b), out, want)
		}
	}
}

// docBytes serialises a copy of el as a document of its own.
func docBytes(el *etree.Element) ([]byte, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el.Copy())
	return doc.WriteToBytes()
}
