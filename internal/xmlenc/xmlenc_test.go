package xmlenc_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/google/go-cmp/cmp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/xmlenc"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

const (
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
	// Test data only: no real person.
	eppn        = "elev4711@skola.example"
	affiliation = "student@skola.example"
	special     = `a&b <c> "d"`
)

var wantValues = []string{eppn, affiliation, special}

// attributes is the AttributeStatement of every fixture, written with the
// prefixes p (for saml) and the xs/xsi prefixes. FriendlyName holds a tab
// and a newline, which a careless serialisation turns into spaces, breaking
// the signature.
func attributes(p string) string {
	return `<` + p + `AttributeStatement>` +
		`<` + p + `Attribute Name="urn:oid:1.3.6.1.4.1.5923.1.1.1.6" FriendlyName="eduPerson&#x9;Principal&#xA;Name"><` + p + `AttributeValue xsi:type="xs:string">` + eppn + `</` + p + `AttributeValue></` + p + `Attribute>` +
		`<` + p + `Attribute Name="urn:oid:1.3.6.1.4.1.5923.1.1.1.9"><` + p + `AttributeValue xsi:type="xs:string">` + affiliation + `</` + p + `AttributeValue></` + p + `Attribute>` +
		`<` + p + `Attribute Name="urn:oid:2.16.840.1.113730.3.1.241"><` + p + `AttributeValue xsi:type="xs:string">a&amp;b &lt;c&gt; "d"</` + p + `AttributeValue></` + p + `Attribute>` +
		`</` + p + `AttributeStatement>`
}

const (
	nsDecls = `xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"`
	issuer  = `Issuer>https://bro.skola.example/idp</`
)

// fixtures place the namespace declarations the assertion uses in the
// places real IdPs put them; the decrypted assertion must parse and verify
// on its own in each case.
var fixtures = []struct{ name, xml string }{
	{"declared on assertion", `<saml:Assertion xmlns:saml="` + nsAssertion + `" ` + nsDecls + ` ID="_a1" Version="2.0" IssueInstant="2026-03-02T08:00:00Z">` +
		`<saml:` + issuer + `saml:Issuer><saml:Subject><saml:NameID>pseudo-1</saml:NameID></saml:Subject>` + attributes("saml:") + `</saml:Assertion>`},
	{"prefixes declared on response", `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="` + nsAssertion + `" ` + nsDecls + ` ID="_r1" Version="2.0" IssueInstant="2026-03-02T08:00:00Z">` +
		`<saml:` + issuer + `saml:Issuer><saml:Assertion ID="_a1" Version="2.0" IssueInstant="2026-03-02T08:00:00Z">` +
		`<saml:` + issuer + `saml:Issuer><saml:Subject><saml:NameID>pseudo-1</saml:NameID></saml:Subject>` + attributes("saml:") + `</saml:Assertion></samlp:Response>`},
	{"default namespace declared on response", `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns="` + nsAssertion + `" ` + nsDecls + ` ID="_r1" Version="2.0" IssueInstant="2026-03-02T08:00:00Z">` +
		`<` + issuer + `Issuer><Assertion ID="_a1" Version="2.0" IssueInstant="2026-03-02T08:00:00Z">` +
		`<` + issuer + `Issuer><Subject><NameID>pseudo-1</NameID></Subject>` + attributes("") + `</Assertion></samlp:Response>`},
}

var (
	dataMethods = []string{xmlenc.AES128GCM, xmlenc.AES256GCM, xmlenc.AES128CBC, xmlenc.AES256CBC}
	transports  = []string{xmlenc.RSAOAEP, xmlenc.RSAOAEPMGF1P}
)

func short(uri string) string { return uri[strings.LastIndex(uri, "#")+1:] }

func newPair(t testing.TB, alg keys.Algorithm) *keys.Pair {
	t.Helper()
	p, err := keys.Generate("vendor.example", alg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newSigner(t testing.TB) *xmlsig.Signer {
	t.Helper()
	s, err := xmlsig.NewSigner(newPair(t, keys.RSA2048))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signedDoc parses fixture and signs its assertion in place, as the
// bridge's IdP side does, and returns the document and the signed assertion.
func signedDoc(t testing.TB, s *xmlsig.Signer, fixture string) (*etree.Document, *etree.Element) {
	t.Helper()
	doc, err := samlxml.Parse([]byte(fixture))
	if err != nil {
		t.Fatal(err)
	}
	a := doc.Root()
	if a.Tag != "Assertion" {
		a = find(a, nsAssertion, "Assertion")
	}
	signed, err := s.SignEnveloped(a)
	if err != nil {
		t.Fatal(err)
	}
	if a == doc.Root() {
		doc.SetRoot(signed)
	} else {
		replace(a, signed)
	}
	return doc, signed
}

func replace(old, new *etree.Element) {
	p := old.Parent()
	i := old.Index()
	p.RemoveChildAt(i)
	p.InsertChildAt(i, new)
}

// find returns the first element {ns}local at or below el.
func find(el *etree.Element, ns, local string) *etree.Element {
	if el.Tag == local && el.NamespaceURI() == ns {
		return el
	}
	for _, c := range el.ChildElements() {
		if f := find(c, ns, local); f != nil {
			return f
		}
	}
	return nil
}

// wire puts the EncryptedAssertion in place of the assertion, serialises the
// whole document and parses it back as the recipient would, returning the
// parsed EncryptedAssertion.
func wire(t testing.TB, doc *etree.Document, assertion, encrypted *etree.Element) ([]byte, *etree.Element) {
	t.Helper()
	if assertion == doc.Root() {
		doc.SetRoot(encrypted)
	} else {
		replace(assertion, encrypted)
	}
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	back, err := samlxml.Parse(b)
	if err != nil {
		t.Fatalf("encrypted document does not parse: %v", err)
	}
	ea := find(back.Root(), nsAssertion, "EncryptedAssertion")
	if ea == nil {
		t.Fatal("no EncryptedAssertion after the round trip")
	}
	return b, ea
}

// checkAssertion asserts that a decrypted assertion is complete and that
// its signature verifies on its own, with no namespace context around it.
func checkAssertion(t testing.TB, a *etree.Element, signer *x509.Certificate) {
	t.Helper()
	if a.Tag != "Assertion" || a.NamespaceURI() != nsAssertion {
		t.Fatalf("decrypted element is %s, want an Assertion", a.Tag)
	}
	var got []string
	var walk func(*etree.Element)
	walk = func(el *etree.Element) {
		if el.Tag == "AttributeValue" && el.NamespaceURI() == nsAssertion {
			got = append(got, el.Text())
		}
		for _, c := range el.ChildElements() {
			walk(c)
		}
	}
	walk(a)
	if diff := cmp.Diff(wantValues, got); diff != "" {
		t.Errorf("attribute values (-want +got):\n%s", diff)
	}
	standalone := etree.NewDocument()
	standalone.SetRoot(a.Copy())
	ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{signer}})
	ctx.IdAttribute = "ID"
	if _, err := ctx.Validate(standalone.Root()); err != nil {
		t.Errorf("signature of the decrypted assertion does not verify: %v", err)
	}
}

func decrypter(t testing.TB, p *keys.Pair) crypto.Decrypter {
	t.Helper()
	d, ok := p.Signer.(crypto.Decrypter)
	if !ok {
		t.Fatal("key is not a decrypter")
	}
	return d
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	signer := newSigner(t)
	vendor := newPair(t, keys.RSA2048)
	for _, fx := range fixtures {
		for _, dm := range dataMethods {
			for _, kt := range transports {
				t.Run(fx.name+"/"+short(dm)+"/"+short(kt), func(t *testing.T) {
					t.Parallel()
					doc, a := signedDoc(t, signer, fx.xml)
					enc, err := xmlenc.EncryptAssertion(a, vendor.Cert, xmlenc.Options{DataMethod: dm, KeyTransport: kt}, rand.Reader)
					if err != nil {
						t.Fatalf("EncryptAssertion: %v", err)
					}
					b, ea := wire(t, doc, a, enc)
					if bytes.Contains(b, []byte(eppn)) || bytes.Contains(b, []byte("pseudo-1")) {
						t.Fatal("attribute value or NameID in clear in the encrypted document")
					}
					got, err := xmlenc.Decrypt(ea, decrypter(t, vendor), xmlenc.DecryptOptions{AllowCBC: true})
					if err != nil {
						t.Fatalf("Decrypt: %v", err)
					}
					checkAssertion(t, got, signer.Pair().Cert)
				})
			}
		}
	}
}

// Other layouts Decrypt reads: the EncryptedData alone, and the
// EncryptedKey beside the EncryptedData (as some IdPs send it) among
// several keys, only one of them for this recipient.
func TestRoundTripLayouts(t *testing.T) {
	t.Parallel()
	signer := newSigner(t)
	vendor := newPair(t, keys.RSA2048)
	other := newPair(t, keys.RSA2048)
	tests := []struct {
		name   string
		layout func(t *testing.T, ed *etree.Element) *etree.Element
	}{
		{"EncryptedData alone", func(t *testing.T, ed *etree.Element) *etree.Element { return ed }},
		{"EncryptedKeys beside EncryptedData", func(t *testing.T, ed *etree.Element) *etree.Element {
			// A key for another recipient first, then ours.
			otherEd, err := xmlenc.EncryptElement(etree.NewElement("x"), other.Cert, xmlenc.Options{}, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			ea := etree.NewElement("saml:EncryptedAssertion")
			ea.CreateAttr("xmlns:saml", nsAssertion)
			ea.CreateAttr("xmlns:xenc", xmlenc.NSXMLEnc)
			ea.CreateAttr("xmlns:ds", nsDSig)
			ea.AddChild(ed)
			for _, src := range []*etree.Element{otherEd, ed} {
				ki := src.SelectElement("KeyInfo")
				ek := ki.SelectElement("EncryptedKey")
				ki.RemoveChild(ek)
				ea.AddChild(ek)
			}
			return ea
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, a := signedDoc(t, signer, fixtures[0].xml)
			ed, err := xmlenc.EncryptElement(a, vendor.Cert, xmlenc.Options{}, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			doc := etree.NewDocument()
			doc.SetRoot(tc.layout(t, ed))
			b, err := doc.WriteToBytes()
			if err != nil {
				t.Fatal(err)
			}
			back, err := samlxml.Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := xmlenc.Decrypt(back.Root(), decrypter(t, vendor), xmlenc.DecryptOptions{})
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			checkAssertion(t, got, signer.Pair().Cert)
		})
	}
}

func attr(t testing.TB, el *etree.Element, path string) string {
	t.Helper()
	e := el.FindElement(path)
	if e == nil {
		t.Fatalf("no %s", path)
	}
	return e.SelectAttrValue("Algorithm", "")
}

func TestEncryptedShape(t *testing.T) {
	t.Parallel()
	signer := newSigner(t)
	vendor := newPair(t, keys.RSA2048)
	tests := []struct {
		name string
		opts xmlenc.Options
		want map[string]string
	}{
		{"defaults", xmlenc.Options{}, map[string]string{
			"data": xmlenc.AES256GCM, "transport": xmlenc.RSAOAEP, "digest": xmlenc.DigestSHA256, "mgf": xmlenc.MGF1SHA256,
		}},
		{"aes128-gcm rsa-oaep-mgf1p", xmlenc.Options{DataMethod: xmlenc.AES128GCM, KeyTransport: xmlenc.RSAOAEPMGF1P}, map[string]string{
			"data": xmlenc.AES128GCM, "transport": xmlenc.RSAOAEPMGF1P, "digest": xmlenc.DigestSHA1, "mgf": "",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, a := signedDoc(t, signer, fixtures[1].xml)
			ea, err := xmlenc.EncryptAssertion(a, vendor.Cert, tc.opts, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			// Parse it back so that namespaces resolve as a recipient sees them.
			doc := etree.NewDocument()
			doc.SetRoot(ea)
			s, _ := doc.WriteToString()
			back, err := samlxml.Parse([]byte(s))
			if err != nil {
				t.Fatal(err)
			}
			ea = back.Root()
			ed := ea.SelectElement("EncryptedData")
			ek := ed.FindElement("KeyInfo/EncryptedKey")
			if ek == nil {
				t.Fatal("no KeyInfo/EncryptedKey in EncryptedData")
			}
			mgf := ""
			if m := ek.FindElement("EncryptionMethod/MGF"); m != nil {
				if m.NamespaceURI() != xmlenc.NSXMLEnc11 {
					t.Errorf("MGF in namespace %q", m.NamespaceURI())
				}
				mgf = m.SelectAttrValue("Algorithm", "")
			}
			got := map[string]string{
				"data":      attr(t, ed, "EncryptionMethod"),
				"transport": attr(t, ek, "EncryptionMethod"),
				"digest":    attr(t, ek, "EncryptionMethod/DigestMethod"),
				"mgf":       mgf,
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("algorithms (-want +got):\n%s", diff)
			}
			names := map[string]string{
				"EncryptedAssertion": ea.NamespaceURI(),
				"EncryptedData":      ed.NamespaceURI(),
				"EncryptedKey":       ek.NamespaceURI(),
				"KeyInfo":            ed.SelectElement("KeyInfo").NamespaceURI(),
				"DigestMethod":       ek.FindElement("EncryptionMethod/DigestMethod").NamespaceURI(),
			}
			wantNames := map[string]string{
				"EncryptedAssertion": nsAssertion,
				"EncryptedData":      xmlenc.NSXMLEnc,
				"EncryptedKey":       xmlenc.NSXMLEnc,
				"KeyInfo":            nsDSig,
				"DigestMethod":       nsDSig,
			}
			if diff := cmp.Diff(wantNames, names); diff != "" {
				t.Errorf("namespaces (-want +got):\n%s", diff)
			}
			if got := ed.SelectAttrValue("Type", ""); got != xmlenc.TypeElement {
				t.Errorf("Type = %q, want %q", got, xmlenc.TypeElement)
			}
			certEl := ek.FindElement("KeyInfo/X509Data/X509Certificate")
			if certEl == nil || certEl.Text() != base64.StdEncoding.EncodeToString(vendor.Cert.Raw) {
				t.Errorf("EncryptedKey does not name the recipient certificate")
			}
		})
	}
}

func cipherValue(t testing.TB, el *etree.Element, path string) []byte {
	t.Helper()
	cv := el.FindElement(path)
	if cv == nil {
		t.Fatalf("no %s", path)
	}
	b, err := base64.StdEncoding.DecodeString(cv.Text())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFreshRandomness(t *testing.T) {
	t.Parallel()
	signer := newSigner(t)
	vendor := newPair(t, keys.RSA2048)
	_, a := signedDoc(t, signer, fixtures[0].xml)
	for _, dm := range []string{xmlenc.AES128GCM, xmlenc.AES256GCM, xmlenc.AES256CBC} {
		t.Run(short(dm), func(t *testing.T) {
			t.Parallel()
			var data, key [2][]byte
			for i := range 2 {
				ed, err := xmlenc.EncryptElement(a, vendor.Cert, xmlenc.Options{DataMethod: dm}, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				data[i] = cipherValue(t, ed, "CipherData/CipherValue")
				key[i] = cipherValue(t, ed, "KeyInfo/EncryptedKey/CipherData/CipherValue")
			}
			ivSize := 12 // GCM nonce, XML Encryption 1.1 section 5.2.4
			if dm == xmlenc.AES256CBC {
				ivSize = 16
			}
			if bytes.Equal(data[0][:ivSize], data[1][:ivSize]) {
				t.Error("nonce or IV repeated across two encryptions")
			}
			if bytes.Equal(data[0][ivSize:], data[1][ivSize:]) {
				t.Error("ciphertext repeated across two encryptions")
			}
			if bytes.Equal(key[0], key[1]) {
				t.Error("encrypted key repeated across two encryptions")
			}
		})
	}
}

// The randomness comes from the rand argument, not from a hidden source.
func TestUsesGivenRandomness(t *testing.T) {
	t.Parallel()
	vendor := newPair(t, keys.RSA2048)
	_, a := signedDoc(t, newSigner(t), fixtures[0].xml)
	if _, err := xmlenc.EncryptAssertion(a, vendor.Cert, xmlenc.Options{}, failingReader{}); err == nil {
		t.Fatal("encryption succeeded with a failing random source")
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no randomness") }

// What is declared must be what is computed: the EncryptedKey opens with the
// declared OAEP parameters and not with the others.
func TestOAEPParametersMatchDeclaration(t *testing.T) {
	t.Parallel()
	vendor := newPair(t, keys.RSA2048)
	_, a := signedDoc(t, newSigner(t), fixtures[0].xml)
	priv := vendor.Signer.(*rsa.PrivateKey)
	tests := []struct {
		transport   string
		digest, mgf crypto.Hash
		wantOK      bool
	}{
		{xmlenc.RSAOAEP, crypto.SHA256, crypto.SHA256, true},
		// What crewjam/saml's OAEP_SHA256 declares (no MGF means MGF1-SHA1).
		{xmlenc.RSAOAEP, crypto.SHA256, crypto.SHA1, false},
		{xmlenc.RSAOAEP, crypto.SHA1, crypto.SHA1, false},
		{xmlenc.RSAOAEPMGF1P, crypto.SHA1, crypto.SHA1, true},
		{xmlenc.RSAOAEPMGF1P, crypto.SHA256, crypto.SHA1, false},
		{xmlenc.RSAOAEPMGF1P, crypto.SHA256, crypto.SHA256, false},
	}
	for _, tc := range tests {
		t.Run(short(tc.transport)+"/"+tc.digest.String()+"/mgf1-"+tc.mgf.String(), func(t *testing.T) {
			t.Parallel()
			ed, err := xmlenc.EncryptElement(a, vendor.Cert, xmlenc.Options{KeyTransport: tc.transport}, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			key, err := priv.Decrypt(nil, cipherValue(t, ed, "KeyInfo/EncryptedKey/CipherData/CipherValue"),
				&rsa.OAEPOptions{Hash: tc.digest, MGFHash: tc.mgf})
			if ok := err == nil && len(key) == 32; ok != tc.wantOK {
				t.Errorf("unwrap succeeded = %v, want %v (err %v)", ok, tc.wantOK, err)
			}
		})
	}
}

// spy is a decrypter that counts its uses, to show refusals happen before
// any private-key operation.
type spy struct {
	crypto.Decrypter
	calls int
}

func (s *spy) Decrypt(r io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	s.calls++
	return s.Decrypter.Decrypt(r, msg, opts)
}

func TestDecryptRefuses(t *testing.T) {
	t.Parallel()
	signer := newSigner(t)
	vendor := newPair(t, keys.RSA2048)
	other := newPair(t, keys.RSA2048)

	setAlg := func(path, alg string) func(*etree.Element) {
		return func(ea *etree.Element) { ea.FindElement(path).CreateAttr("Algorithm", alg) }
	}
	keyMethod := "EncryptedData/KeyInfo/EncryptedKey/EncryptionMethod"
	tests := []struct {
		name      string
		opts      xmlenc.Options
		mutate    func(ea *etree.Element)
		decrypt   xmlenc.DecryptOptions
		key       *keys.Pair
		want      error
		keyUseOK  bool // whether the private key may be used before the error
		checkSame bool // whether Check reports the same error
	}{
		{name: "rsa-1_5 key transport", mutate: func(ea *etree.Element) {
			m := ea.FindElement(keyMethod)
			m.CreateAttr("Algorithm", xmlenc.RSA15)
			for _, c := range m.ChildElements() {
				m.RemoveChild(c)
			}
		}, want: xmlenc.ErrRefused, checkSame: true},
		{name: "rsa-1_5 key transport with CBC allowed", decrypt: xmlenc.DecryptOptions{AllowCBC: true},
			mutate: setAlg(keyMethod, xmlenc.RSA15), want: xmlenc.ErrRefused, checkSame: true},
		{name: "rsa-1_5 as a second EncryptedKey", mutate: func(ea *etree.Element) {
			ek := ea.FindElement("EncryptedData/KeyInfo/EncryptedKey")
			second := ek.Copy()
			second.FindElement("EncryptionMethod").CreateAttr("Algorithm", xmlenc.RSA15)
			ek.Parent().AddChild(second)
		}, want: xmlenc.ErrRefused, checkSame: true},
		{name: "aes256-cbc not allowed", opts: xmlenc.Options{DataMethod: xmlenc.AES256CBC}, want: xmlenc.ErrRefused, checkSame: true},
		{name: "aes128-cbc not allowed", opts: xmlenc.Options{DataMethod: xmlenc.AES128CBC}, want: xmlenc.ErrRefused, checkSame: true},
		{name: "triple des", mutate: setAlg("EncryptedData/EncryptionMethod", "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"), want: xmlenc.ErrRefused, checkSame: true},
		{name: "unknown mgf", mutate: setAlg(keyMethod+"/MGF", "http://www.w3.org/2009/xmlenc11#mgf1sha512"), want: xmlenc.ErrRefused, checkSame: true},
		{name: "md5 digest", mutate: setAlg(keyMethod+"/DigestMethod", "http://www.w3.org/2001/04/xmldsig-more#md5"), want: xmlenc.ErrRefused, checkSame: true},
		{name: "mgf declared with rsa-oaep-mgf1p", mutate: setAlg(keyMethod, xmlenc.RSAOAEPMGF1P), want: xmlenc.ErrMalformed, checkSame: true},
		{name: "content type", mutate: func(ea *etree.Element) {
			ea.SelectElement("EncryptedData").CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Content")
		}, want: xmlenc.ErrRefused, checkSame: true},
		{name: "cipher reference", mutate: func(ea *etree.Element) {
			cd := ea.FindElement("EncryptedData/CipherData")
			cd.RemoveChild(cd.SelectElement("CipherValue"))
			cd.CreateElement("xenc:CipherReference").CreateAttr("URI", "https://attacker.example/x")
		}, want: xmlenc.ErrMalformed, checkSame: true},
		{name: "comment inside cipher value", mutate: func(ea *etree.Element) {
			ea.FindElement("EncryptedData/CipherData/CipherValue").CreateComment("x")
		}, want: xmlenc.ErrMalformed, checkSame: true},
		{name: "huge cipher value", mutate: func(ea *etree.Element) {
			ea.FindElement("EncryptedData/CipherData/CipherValue").SetText(strings.Repeat("QUFB", samlxml.MaxMessageBytes/3+8))
		}, want: xmlenc.ErrTooLarge, checkSame: true},
		{name: "no encrypted key", mutate: func(ea *etree.Element) {
			ki := ea.FindElement("EncryptedData/KeyInfo")
			ki.RemoveChild(ki.SelectElement("EncryptedKey"))
		}, want: xmlenc.ErrMalformed, checkSame: true},
		{name: "too many encrypted keys", mutate: func(ea *etree.Element) {
			ek := ea.FindElement("EncryptedData/KeyInfo/EncryptedKey")
			for range 4 {
				ek.Parent().AddChild(ek.Copy())
			}
		}, want: xmlenc.ErrMalformed, checkSame: true},
		{name: "two encrypted data", mutate: func(ea *etree.Element) {
			ea.AddChild(ea.SelectElement("EncryptedData").Copy())
		}, want: xmlenc.ErrMalformed, checkSame: true},
		{name: "other recipient's key", key: other, want: xmlenc.ErrDecrypt, keyUseOK: true},
		{name: "not an assertion inside EncryptedAssertion", mutate: func(ea *etree.Element) {
			issuer := etree.NewElement("saml:Issuer")
			issuer.CreateAttr("xmlns:saml", nsAssertion)
			issuer.SetText("https://bro.skola.example/idp")
			ed, err := xmlenc.EncryptElement(issuer, vendor.Cert, xmlenc.Options{}, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			ea.RemoveChild(ea.SelectElement("EncryptedData"))
			ea.AddChild(ed)
		}, want: xmlenc.ErrMalformed, keyUseOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc, a := signedDoc(t, signer, fixtures[0].xml)
			enc, err := xmlenc.EncryptAssertion(a, vendor.Cert, tc.opts, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			_, ea := wire(t, doc, a, enc)
			if tc.mutate != nil {
				tc.mutate(ea)
			}
			key := vendor
			if tc.key != nil {
				key = tc.key
			}
			s := &spy{Decrypter: decrypter(t, key)}
			got, err := xmlenc.Decrypt(ea, s, tc.decrypt)
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("Decrypt = %v, %v; want error %v", got, err, tc.want)
			}
			if s.calls > 0 && !tc.keyUseOK {
				t.Errorf("private key used %d times before refusing", s.calls)
			}
			if tc.checkSame {
				if err := xmlenc.Check(ea, tc.decrypt); !errors.Is(err, tc.want) {
					t.Errorf("Check = %v, want %v", err, tc.want)
				}
			}
		})
	}
}

// Changes an attacker can make to the ciphertext or to the declared
// parameters; each must fail to decrypt.
func TestDecryptTampered(t *testing.T) {
	t.Parallel()
	signer := newSigner(t)
	vendor := newPair(t, keys.RSA2048)
	data := "EncryptedData/CipherData/CipherValue"
	key := "EncryptedData/KeyInfo/EncryptedKey/CipherData/CipherValue"
	keyMethod := "EncryptedData/KeyInfo/EncryptedKey/EncryptionMethod"
	edit := func(path string, f func([]byte) []byte) func(*etree.Element) {
		return func(ea *etree.Element) {
			cv := ea.FindElement(path)
			b, _ := base64.StdEncoding.DecodeString(cv.Text())
			cv.SetText(base64.StdEncoding.EncodeToString(f(b)))
		}
	}
	flip := func(i int) func([]byte) []byte {
		return func(b []byte) []byte {
			if i < 0 {
				i += len(b)
			}
			b[i] ^= 1
			return b
		}
	}
	setAlg := func(path, alg string) func(*etree.Element) {
		return func(ea *etree.Element) { ea.FindElement(path).CreateAttr("Algorithm", alg) }
	}
	tests := []struct {
		name   string
		opts   xmlenc.Options
		mutate func(*etree.Element)
	}{
		{"nonce flipped", xmlenc.Options{}, edit(data, flip(0))},
		{"ciphertext flipped", xmlenc.Options{}, edit(data, flip(40))},
		{"tag flipped", xmlenc.Options{}, edit(data, flip(-1))},
		{"tag cut off", xmlenc.Options{}, edit(data, func(b []byte) []byte { return b[:len(b)-16] })},
		{"too short for a nonce", xmlenc.Options{}, edit(data, func(b []byte) []byte { return b[:20] })},
		{"encrypted key flipped", xmlenc.Options{}, edit(key, flip(10))},
		{"mgf declared as sha1", xmlenc.Options{}, setAlg(keyMethod+"/MGF", xmlenc.MGF1SHA1)},
		{"digest declared as sha1", xmlenc.Options{}, setAlg(keyMethod+"/DigestMethod", xmlenc.DigestSHA1)},
		{"aes256 declared as aes128", xmlenc.Options{}, setAlg("EncryptedData/EncryptionMethod", xmlenc.AES128GCM)},
		{"gcm declared as cbc", xmlenc.Options{}, setAlg("EncryptedData/EncryptionMethod", xmlenc.AES256CBC)},
		{"cbc last block changed", xmlenc.Options{DataMethod: xmlenc.AES256CBC}, edit(data, func(b []byte) []byte {
			// Garbles the last block, so the padding length or the XML breaks.
			for i := len(b) - 16; i < len(b); i++ {
				b[i] ^= 0x5a
			}
			return b
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc, a := signedDoc(t, signer, fixtures[0].xml)
			enc, err := xmlenc.EncryptAssertion(a, vendor.Cert, tc.opts, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			_, ea := wire(t, doc, a, enc)
			tc.mutate(ea)
			got, err := xmlenc.Decrypt(ea, decrypter(t, vendor), xmlenc.DecryptOptions{AllowCBC: true})
			if err == nil || got != nil {
				t.Fatalf("tampered message decrypted")
			}
		})
	}
}

func TestDecryptNeedsRSAKey(t *testing.T) {
	t.Parallel()
	vendor := newPair(t, keys.RSA2048)
	_, a := signedDoc(t, newSigner(t), fixtures[0].xml)
	ea, err := xmlenc.EncryptAssertion(a, vendor.Cert, xmlenc.Options{}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := xmlenc.Decrypt(ea, ecDecrypter{ec}, xmlenc.DecryptOptions{}); err == nil {
		t.Fatal("Decrypt accepted a non-RSA key")
	}
}

type ecDecrypter struct{ *ecdsa.PrivateKey }

func (ecDecrypter) Decrypt(io.Reader, []byte, crypto.DecrypterOpts) ([]byte, error) {
	return nil, errors.New("not supported")
}

func selfSigned(t testing.TB, key crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vendor.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEncryptRefuses(t *testing.T) {
	t.Parallel()
	vendor := newPair(t, keys.RSA2048)
	ecVendor := newPair(t, keys.P256)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, a := signedDoc(t, newSigner(t), fixtures[0].xml)
	undeclared := etree.NewElement("saml:Assertion") // prefix declared nowhere
	tests := []struct {
		name      string
		el        *etree.Element
		recipient *x509.Certificate
		opts      xmlenc.Options
	}{
		{"rsa-1_5", a, vendor.Cert, xmlenc.Options{KeyTransport: xmlenc.RSA15}},
		{"unknown data method", a, vendor.Cert, xmlenc.Options{DataMethod: "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"}},
		{"EC recipient", a, ecVendor.Cert, xmlenc.Options{}},
		{"RSA-1024 recipient", a, selfSigned(t, small), xmlenc.Options{}},
		{"no recipient", a, nil, xmlenc.Options{}},
		{"not an assertion", a.SelectElement("Issuer"), vendor.Cert, xmlenc.Options{}},
		{"undeclared prefix", undeclared, vendor.Cert, xmlenc.Options{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got, err := xmlenc.EncryptAssertion(tc.el, tc.recipient, tc.opts, rand.Reader); err == nil || got != nil {
				t.Errorf("EncryptAssertion succeeded, want an error")
			}
		})
	}
}

// TestCase25_ChooseFromMetadata: the bridge encrypts with what a vendor's
// md:EncryptionMethod lists. AES-GCM whenever it is listed or nothing is;
// AES-CBC only for a vendor that lists CBC and no GCM, and only when the
// organiser allowed it; otherwise an error, never a cipher the vendor
// cannot decrypt.
func TestCase25_ChooseFromMetadata(t *testing.T) {
	t.Parallel()
	const (
		tripleDES = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"
		aes192CBC = "http://www.w3.org/2001/04/xmlenc#aes192-cbc"
	)
	// crewjamSP is what a crewjam/saml v0.5.1 ServiceProvider lists.
	crewjamSP := []string{xmlenc.AES128CBC, aes192CBC, xmlenc.AES256CBC, xmlenc.RSAOAEPMGF1P}
	tests := []struct {
		name     string
		methods  []string
		allowCBC bool
		want     xmlenc.Options
		err      error
	}{
		{name: "none listed", methods: nil,
			want: xmlenc.Options{DataMethod: xmlenc.AES256GCM, KeyTransport: xmlenc.RSAOAEPMGF1P}},
		{name: "none listed, CBC allowed: still GCM", methods: nil, allowCBC: true,
			want: xmlenc.Options{DataMethod: xmlenc.AES256GCM, KeyTransport: xmlenc.RSAOAEPMGF1P}},
		{name: "strongest of each", methods: []string{xmlenc.AES128GCM, xmlenc.RSAOAEPMGF1P, xmlenc.AES256GCM, xmlenc.RSAOAEP},
			want: xmlenc.Options{DataMethod: xmlenc.AES256GCM, KeyTransport: xmlenc.RSAOAEP}},
		{name: "aes128-gcm only", methods: []string{xmlenc.AES128GCM},
			want: xmlenc.Options{DataMethod: xmlenc.AES128GCM, KeyTransport: xmlenc.RSAOAEPMGF1P}},
		{name: "key transport only", methods: []string{xmlenc.RSAOAEP},
			want: xmlenc.Options{DataMethod: xmlenc.AES256GCM, KeyTransport: xmlenc.RSAOAEP}},
		{name: "rsa-1_5 never chosen", methods: []string{xmlenc.AES128GCM, xmlenc.RSA15},
			want: xmlenc.Options{DataMethod: xmlenc.AES128GCM, KeyTransport: xmlenc.RSAOAEPMGF1P}},
		{name: "GCM and CBC listed: GCM, CBC allowed or not", methods: []string{xmlenc.AES256CBC, xmlenc.AES128GCM, xmlenc.RSAOAEP}, allowCBC: true,
			want: xmlenc.Options{DataMethod: xmlenc.AES128GCM, KeyTransport: xmlenc.RSAOAEP}},
		{name: "only CBC listed, not allowed", methods: []string{xmlenc.AES256CBC, xmlenc.AES128CBC, xmlenc.RSAOAEPMGF1P},
			err: xmlenc.ErrOnlyCBC},
		{name: "only CBC listed, allowed: aes256-cbc", methods: []string{xmlenc.AES128CBC, xmlenc.AES256CBC, xmlenc.RSAOAEPMGF1P}, allowCBC: true,
			want: xmlenc.Options{DataMethod: xmlenc.AES256CBC, KeyTransport: xmlenc.RSAOAEPMGF1P}},
		{name: "only aes128-cbc listed, allowed", methods: []string{xmlenc.AES128CBC}, allowCBC: true,
			want: xmlenc.Options{DataMethod: xmlenc.AES128CBC, KeyTransport: xmlenc.RSAOAEPMGF1P}},
		{name: "crewjam/saml SP, not allowed", methods: crewjamSP, err: xmlenc.ErrOnlyCBC},
		{name: "crewjam/saml SP, allowed", methods: crewjamSP, allowCBC: true,
			want: xmlenc.Options{DataMethod: xmlenc.AES256CBC, KeyTransport: xmlenc.RSAOAEPMGF1P}},
		{name: "only ciphers the bridge does not write", methods: []string{tripleDES, aes192CBC, xmlenc.RSAOAEPMGF1P}, allowCBC: true,
			err: xmlenc.ErrNoUsableMethod},
		{name: "unknown URIs are not data methods", methods: []string{"urn:example:unknown"},
			want: xmlenc.Options{DataMethod: xmlenc.AES256GCM, KeyTransport: xmlenc.RSAOAEPMGF1P}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := xmlenc.ChooseFromMetadata(tc.methods, tc.allowCBC)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				if got != (xmlenc.Options{}) {
					t.Errorf("options %+v with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ChooseFromMetadata (-want +got):\n%s", diff)
			}
		})
	}
}

func BenchmarkEncryptAssertion(b *testing.B) {
	vendor := newPair(b, keys.RSA2048)
	_, a := signedDoc(b, newSigner(b), fixtures[1].xml)
	for _, tc := range []struct {
		name string
		opts xmlenc.Options
	}{
		{"aes256-gcm/rsa-oaep", xmlenc.Options{}},
		{"aes128-gcm/rsa-oaep-mgf1p", xmlenc.Options{DataMethod: xmlenc.AES128GCM, KeyTransport: xmlenc.RSAOAEPMGF1P}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := xmlenc.EncryptAssertion(a, vendor.Cert, tc.opts, rand.Reader); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
