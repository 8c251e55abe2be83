package samlsp

import (
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/testidp"
	"github.com/skolbro/skolbro/internal/xmlenc"
	"github.com/skolbro/skolbro/internal/xmlenc/xmlsectest"
)

// spEncKeys are the SP's encryption key pairs: the current one, the next
// one of a rollover, and one the SP does not have.
var spEncKeys = sync.OnceValues(func() ([3]*keys.Pair, error) {
	var out [3]*keys.Pair
	for i, name := range []string{"sp-enc", "sp-enc-next", "stranger"} {
		p, err := keys.Generate(name, keys.RSA2048, t0)
		if err != nil {
			return out, err
		}
		out[i] = p
	}
	return out, nil
})

// countingKey counts the private-key operations made with it, so that a
// test can show a message was refused before any.
type countingKey struct {
	crypto.Decrypter
	n *atomic.Int32
}

func (k countingKey) Decrypt(r io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	k.n.Add(1)
	return k.Decrypter.Decrypt(r, msg, opts)
}

// withDecryption gives the SP the given encryption key pairs; their
// private-key operations are counted in n.
func withDecryption(n *atomic.Int32, ps ...*keys.Pair) fixtureOpt {
	return func(c *Config, _ *testidp.IdP) {
		for _, p := range ps {
			c.DecryptionKeys = append(c.DecryptionKeys, DecryptionKey{Cert: p.Cert, Key: countingKey{p.Signer.(*rsa.PrivateKey), n}})
		}
	}
}

func encKeys(t testing.TB) [3]*keys.Pair {
	t.Helper()
	k, err := spEncKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// xmlsecEncrypt returns a testidp encrypter that has xmlsec1 (the XML
// Security Library, not the bridge's code) encrypt the signed assertion
// to cert with the given data and key transport methods, as an IdP does.
func xmlsecEncrypt(t *testing.T, to *keys.Pair, dataMethod, transport, sessionKey string) func(*etree.Element) (*etree.Element, error) {
	xmlsectest.Path(t)
	return func(a *etree.Element) (*etree.Element, error) {
		dir := t.TempDir()
		// The assertion on its own, with every namespace it inherits.
		c := a.Copy()
		for p := a.Parent(); p != nil; p = p.Parent() {
			for _, at := range p.Attr {
				if (at.Space == "xmlns" || (at.Space == "" && at.Key == "xmlns")) && c.SelectAttr(at.FullKey()) == nil {
					c.CreateAttr(at.FullKey(), at.Value)
				}
			}
		}
		doc := etree.NewDocument()
		doc.SetRoot(c)
		data, err := doc.WriteToBytes()
		if err != nil {
			return nil, err
		}
		tmpl := `<xenc:EncryptedData xmlns:xenc="` + xmlenc.NSXMLEnc + `" Type="` + xmlenc.TypeElement + `">
<xenc:EncryptionMethod Algorithm="` + dataMethod + `"/>
<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>
<xenc:EncryptionMethod Algorithm="` + transport + `"/>
<xenc:CipherData><xenc:CipherValue/></xenc:CipherData>
</xenc:EncryptedKey></ds:KeyInfo>
<xenc:CipherData><xenc:CipherValue/></xenc:CipherData>
</xenc:EncryptedData>`
		cert := xmlsectest.WriteFile(t, dir, "sp.crt", to.CertPEM())
		out, errOut, err := xmlsectest.Run(t, "--encrypt", "--pubkey-cert-pem", cert, "--session-key", sessionKey,
			"--xml-data", xmlsectest.WriteFile(t, dir, "assertion.xml", data),
			"--node-xpath", "/*", xmlsectest.WriteFile(t, dir, "tmpl.xml", []byte(tmpl)))
		if err != nil {
			return nil, fmt.Errorf("xmlsec1 --encrypt: %v: %s", err, errOut)
		}
		enc := etree.NewDocument()
		if err := enc.ReadFromBytes(out); err != nil {
			return nil, err
		}
		ea := etree.NewElement("saml:EncryptedAssertion")
		ea.CreateAttr("xmlns:saml", samlxml.NSAssertion)
		ea.AddChild(enc.Root())
		return ea, nil
	}
}

// TestCase16_EncryptedAssertionsFromXmlsec1 logs in with assertions that
// xmlsec1 encrypted to the SP's key, as ADFS sends them (the assertion
// signed, then encrypted; the Response signed over the ciphertext): every
// data method the SP announces, with RSA-OAEP key transport. The SP reads
// the same attributes as from a plain assertion. AES-CBC is accepted only
// inside a signed Response.
func TestCase16_EncryptedAssertionsFromXmlsec1(t *testing.T) {
	k := encKeys(t)
	for _, tc := range []struct {
		name, method, session string
	}{
		{"aes256-gcm", xmlenc.AES256GCM, "aes-256"},
		{"aes128-gcm", xmlenc.AES128GCM, "aes-128"},
		{"aes256-cbc", xmlenc.AES256CBC, "aes-256"},
		{"aes128-cbc", xmlenc.AES128CBC, "aes-128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			f := newFixture(t, withDecryption(&n, k[0]))
			enc := xmlsecEncrypt(t, k[0], tc.method, xmlenc.RSAOAEPMGF1P, tc.session)
			resp := f.respond(f.login(browserA), testidp.EncryptAssertion(enc), testidp.SignResponse())
			if s := decode(t, resp); !strings.Contains(s, "EncryptedAssertion") || strings.Contains(s, "<saml:Assertion") {
				t.Fatal("the fixture is not an encrypted assertion")
			}
			a := f.expectSuccess(t, f.sp, resp, browserA)
			plain := newFixture(t)
			b := plain.expectSuccess(t, plain.sp, plain.respond(plain.login(browserA)), browserA)
			if a.NameID != b.NameID || fmt.Sprint(a.Attributes) != fmt.Sprint(b.Attributes) {
				t.Errorf("decrypted assertion reads %v %v, plain %v %v", a.NameID, a.Attributes, b.NameID, b.Attributes)
			}
			if n.Load() == 0 {
				t.Error("no private-key operation: nothing was decrypted")
			}
		})
	}
}

// TestCase16_EncryptionRefusedBeforeDecryption: RSA PKCS#1 v1.5 key
// transport, and AES-CBC in an unsigned Response, are refused before any
// private-key operation (SECURITY.md case 16).
func TestCase16_EncryptionRefusedBeforeDecryption(t *testing.T) {
	k := encKeys(t)
	for _, tc := range []struct {
		name, method, transport, session string
		signResponse                     bool
	}{
		{"rsa-1_5 in a signed response", xmlenc.AES256GCM, xmlenc.RSA15, "aes-256", true},
		{"aes-cbc in an unsigned response", xmlenc.AES256CBC, xmlenc.RSAOAEPMGF1P, "aes-256", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			f := newFixture(t, withDecryption(&n, k[0]))
			opts := []testidp.Option{testidp.EncryptAssertion(xmlsecEncrypt(t, k[0], tc.method, tc.transport, tc.session))}
			if tc.signResponse {
				opts = append(opts, testidp.SignResponse())
			}
			f.expectRefusal(t, f.sp, f.respond(f.login(browserA), opts...), browserA, ReasonEncryptionRefused, 400)
			if n.Load() != 0 {
				t.Errorf("%d private-key operations before the refusal", n.Load())
			}
		})
	}
}

// TestEncryptedAssertionRefusals: the wrong key, a changed ciphertext, a
// plain assertion where encryption is required, an unsigned assertion
// inside the encryption, and an SP without a key.
func TestEncryptedAssertionRefusals(t *testing.T) {
	k := encKeys(t)
	gcm := func(t *testing.T, to *keys.Pair) func(*etree.Element) (*etree.Element, error) {
		return xmlsecEncrypt(t, to, xmlenc.AES256GCM, xmlenc.RSAOAEPMGF1P, "aes-256")
	}
	t.Run("encrypted to another key", func(t *testing.T) {
		var n atomic.Int32
		f := newFixture(t, withDecryption(&n, k[0]))
		f.expectRefusal(t, f.sp, f.respond(f.login(browserA), testidp.EncryptAssertion(gcm(t, k[2]))), browserA, ReasonDecrypt, 400)
	})
	t.Run("ciphertext changed", func(t *testing.T) {
		var n atomic.Int32
		f := newFixture(t, withDecryption(&n, k[0]))
		resp := f.respond(f.login(browserA), testidp.EncryptAssertion(gcm(t, k[0])), testidp.AfterSigning(flipCipherValue(t, -1)))
		f.expectRefusal(t, f.sp, resp, browserA, ReasonDecrypt, 400)
	})
	t.Run("plain assertion where encryption is required", func(t *testing.T) {
		var n atomic.Int32
		f := newFixture(t, withDecryption(&n, k[0]), func(c *Config, _ *testidp.IdP) { c.RequireEncryption = true })
		f.expectRefusal(t, f.sp, f.respond(f.login(browserA)), browserA, ReasonUnencrypted, 400)
	})
	t.Run("unsigned assertion inside", func(t *testing.T) {
		var n atomic.Int32
		f := newFixture(t, withDecryption(&n, k[0]))
		resp := f.respond(f.login(browserA), testidp.UnsignedAssertion(), testidp.EncryptAssertion(gcm(t, k[0])), testidp.SignResponse())
		f.expectRefusal(t, f.sp, resp, browserA, ReasonUnsigned, 400)
	})
	t.Run("no key", func(t *testing.T) {
		f := newFixture(t)
		f.expectRefusal(t, f.sp, f.respond(f.login(browserA), testidp.EncryptAssertion(gcm(t, k[0]))), browserA, ReasonEncryptedUnsupported, 400)
	})
	t.Run("a plain assertion beside the encrypted one", func(t *testing.T) {
		var n atomic.Int32
		f := newFixture(t, withDecryption(&n, k[0]))
		enc := gcm(t, k[0])
		resp := f.respond(f.login(browserA), testidp.EncryptAssertion(func(a *etree.Element) (*etree.Element, error) {
			ea, err := enc(a)
			if err == nil {
				a.Parent().AddChild(a.Copy()) // the plain copy stays too
			}
			return ea, err
		}))
		f.expectRefusal(t, f.sp, resp, browserA, ReasonAssertionCount, 400)
	})
}

// TestCBCErrorsIndistinguishable: inside a signed Response (re-signed
// after the change, which an attacker cannot do), a CBC ciphertext with
// bad padding and one that decrypts to garbage are refused with the same
// reason and the same error: the answer is no padding oracle.
func TestCBCErrorsIndistinguishable(t *testing.T) {
	k := encKeys(t)
	var msgs []string
	for _, at := range []int{-1, 0} { // the last block (padding), the first (plaintext)
		var n atomic.Int32
		f := newFixture(t, withDecryption(&n, k[0]))
		enc := xmlsecEncrypt(t, k[0], xmlenc.AES256CBC, xmlenc.RSAOAEPMGF1P, "aes-256")
		resp := f.respond(f.login(browserA), testidp.EncryptAssertion(func(a *etree.Element) (*etree.Element, error) {
			ea, err := enc(a)
			if err == nil {
				flipIn(t, ea, at)
			}
			return ea, err
		}), testidp.SignResponse())
		e := f.expectRefusal(t, f.sp, resp, browserA, ReasonDecrypt, 400)
		msgs = append(msgs, e.Error())
	}
	if msgs[0] != msgs[1] {
		t.Errorf("bad padding and bad plaintext answer differently: %q / %q", msgs[0], msgs[1])
	}
}

// TestEncryptionKeyRollover: during a rollover the SP publishes both keys
// and decrypts what was encrypted to either.
func TestEncryptionKeyRollover(t *testing.T) {
	k := encKeys(t)
	for i, to := range []*keys.Pair{k[0], k[1]} {
		var n atomic.Int32
		f := newFixture(t, withDecryption(&n, k[0], k[1]))
		resp := f.respond(f.login(browserA), testidp.EncryptAssertion(xmlsecEncrypt(t, to, xmlenc.AES256GCM, xmlenc.RSAOAEPMGF1P, "aes-256")))
		f.expectSuccess(t, f.sp, resp, browserA)
		if i == 0 {
			md, err := f.sp.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(md); err != nil {
				t.Fatal(err)
			}
			var certs []string
			for _, kd := range doc.FindElements("//KeyDescriptor[@use='encryption']") {
				if c := kd.FindElement(".//X509Certificate"); c != nil {
					certs = append(certs, c.Text())
				}
				if len(kd.FindElements("EncryptionMethod")) == 0 {
					t.Error("an encryption KeyDescriptor lists no EncryptionMethod")
				}
			}
			want := []string{base64.StdEncoding.EncodeToString(k[0].Cert.Raw), base64.StdEncoding.EncodeToString(k[1].Cert.Raw)}
			if fmt.Sprint(certs) != fmt.Sprint(want) {
				t.Errorf("metadata encryption certificates: %d, want the current and the next", len(certs))
			}
		}
	}
}

// flipCipherValue changes one byte of the EncryptedData's CipherValue
// (at from its end when negative) after signing.
func flipCipherValue(t *testing.T, at int) func(*etree.Document) {
	return func(d *etree.Document) {
		ea := d.FindElement("//EncryptedAssertion")
		if ea == nil {
			t.Fatal("no EncryptedAssertion")
		}
		flipIn(t, ea, at)
	}
}

// flipIn changes one byte of the data ciphertext in ea: in the block at
// index at (from the end when negative; 0 is the first block after the
// IV), which for CBC garbles that block's plaintext or, for the last, the
// padding.
func flipIn(t *testing.T, ea *etree.Element, at int) {
	cv := ea.FindElement("./EncryptedData/CipherData/CipherValue")
	if cv == nil {
		t.Fatal("no data CipherValue")
	}
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(cv.Text()), ""))
	if err != nil {
		t.Fatal(err)
	}
	i := 16 + 16*at + 3 // a byte of the block before the target: CBC changes the target's plaintext there
	if at < 0 {
		i = len(b) - 16 - 1 // the second-to-last block's last byte: the padding length byte of the last
	}
	b[i] ^= 0x5a
	cv.SetText(base64.StdEncoding.EncodeToString(b))
}
