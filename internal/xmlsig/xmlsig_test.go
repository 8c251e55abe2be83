package xmlsig_test

import (
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/google/go-cmp/cmp"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"

	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/xmlenc/xmlsectest"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

const (
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
	assertionID = "_a5c0ffee0123456789"
	// The attribute value and NameID the tamper cases change. Test data
	// only: no real person.
	eppn   = "elev4711@skola.example"
	nameID = "pseudo-7f3e9a1c"
)

// standalone declares every namespace on the Assertion, including xs, which
// only the QName value xsi:type="xs:string" uses.
const standalone = `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="` + assertionID + `" Version="2.0" IssueInstant="2026-03-02T08:00:00Z">` +
	`<saml:Issuer>https://bro.skola.example/idp</saml:Issuer>` +
	`<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">` + nameID + `</saml:NameID></saml:Subject>` +
	`<saml:AttributeStatement>` +
	`<saml:Attribute Name="urn:oid:1.3.6.1.4.1.5923.1.1.1.6" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri"><saml:AttributeValue xsi:type="xs:string">` + eppn + `</saml:AttributeValue></saml:Attribute>` +
	`<saml:Attribute Name="urn:oid:1.3.6.1.4.1.5923.1.1.1.9" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri"><saml:AttributeValue xsi:type="xs:string">student@skola.example</saml:AttributeValue></saml:Attribute>` +
	`</saml:AttributeStatement></saml:Assertion>`

// inResponse is the same assertion inside a Response that declares the
// namespaces, as an IdP that assembles the whole Response before signing
// the assertion has it.
const inResponse = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="_r1" Version="2.0" IssueInstant="2026-03-02T08:00:00Z">` +
	`<saml:Issuer>https://bro.skola.example/idp</saml:Issuer>` +
	`<saml:Assertion ID="` + assertionID + `" Version="2.0" IssueInstant="2026-03-02T08:00:00Z">` +
	`<saml:Issuer>https://bro.skola.example/idp</saml:Issuer>` +
	`<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">` + nameID + `</saml:NameID></saml:Subject>` +
	`<saml:AttributeStatement>` +
	`<saml:Attribute Name="urn:oid:1.3.6.1.4.1.5923.1.1.1.6" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri"><saml:AttributeValue xsi:type="xs:string">` + eppn + `</saml:AttributeValue></saml:Attribute>` +
	`</saml:AttributeStatement></saml:Assertion></samlp:Response>`

var algorithms = []struct {
	name   string
	alg    keys.Algorithm
	method string
}{
	{"rsa2048", keys.RSA2048, xmlsig.RSASHA256},
	{"p256", keys.P256, xmlsig.ECDSASHA256},
}

func newSigner(t testing.TB, alg keys.Algorithm) *xmlsig.Signer {
	t.Helper()
	pair, err := keys.Generate("bro.skola.example", alg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := xmlsig.NewSigner(pair)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func parse(t testing.TB, s string) *etree.Document {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(s); err != nil {
		t.Fatal(err)
	}
	return doc
}

func findAssertion(t testing.TB, doc *etree.Document) *etree.Element {
	t.Helper()
	for _, el := range append([]*etree.Element{doc.Root()}, doc.Root().ChildElements()...) {
		if el.Tag == "Assertion" && el.NamespaceURI() == nsAssertion {
			return el
		}
	}
	t.Fatal("no assertion in fixture")
	return nil
}

// signFixture signs the assertion of fixture in place and returns the
// serialised document.
func signFixture(t testing.TB, s *xmlsig.Signer, fixture string) string {
	t.Helper()
	doc := parse(t, fixture)
	a := findAssertion(t, doc)
	signed, err := s.SignEnveloped(a)
	if err != nil {
		t.Fatalf("SignEnveloped: %v", err)
	}
	if p := a.Parent(); p != nil && p != &doc.Element {
		idx := a.Index()
		p.RemoveChildAt(idx)
		p.InsertChildAt(idx, signed)
	} else {
		doc.SetRoot(signed)
	}
	out, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func child(t testing.TB, el *etree.Element, ns, local string) *etree.Element {
	t.Helper()
	for _, c := range el.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == ns {
			return c
		}
	}
	t.Fatalf("no %s in %s", local, el.Tag)
	return nil
}

func TestSignedInfoAlgorithms(t *testing.T) {
	t.Parallel()
	for _, tc := range algorithms {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSigner(t, tc.alg)
			if s.Method() != tc.method {
				t.Fatalf("Method() = %q, want %q", s.Method(), tc.method)
			}
			a := findAssertion(t, parse(t, signFixture(t, s, standalone)))

			// The schema puts ds:Signature directly after saml:Issuer.
			kids := a.ChildElements()
			if len(kids) < 2 || kids[0].Tag != "Issuer" || kids[1].Tag != "Signature" || kids[1].NamespaceURI() != nsDSig {
				t.Fatalf("Signature is not the element after Issuer")
			}
			si := child(t, kids[1], nsDSig, "SignedInfo")
			ref := child(t, si, nsDSig, "Reference")
			var transforms []string
			for _, tr := range child(t, ref, nsDSig, "Transforms").ChildElements() {
				transforms = append(transforms, tr.SelectAttrValue("Algorithm", ""))
			}
			got := map[string]any{
				"c14n":       child(t, si, nsDSig, "CanonicalizationMethod").SelectAttrValue("Algorithm", ""),
				"signature":  child(t, si, nsDSig, "SignatureMethod").SelectAttrValue("Algorithm", ""),
				"uri":        ref.SelectAttrValue("URI", ""),
				"transforms": transforms,
				"digest":     child(t, ref, nsDSig, "DigestMethod").SelectAttrValue("Algorithm", ""),
			}
			want := map[string]any{
				"c14n":       xmlsig.ExcC14N,
				"signature":  tc.method,
				"uri":        "#" + assertionID,
				"transforms": []string{"http://www.w3.org/2000/09/xmldsig#enveloped-signature", xmlsig.ExcC14N},
				"digest":     xmlsig.DigestSHA256,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("SignedInfo (-want +got):\n%s", diff)
			}
			if tc.alg == keys.P256 {
				// XML-DSig wants r||s (64 bytes for P-256), not ASN.1 DER.
				sv, err := base64.StdEncoding.DecodeString(strings.TrimSpace(child(t, kids[1], nsDSig, "SignatureValue").Text()))
				if err != nil || len(sv) != 64 {
					t.Errorf("ECDSA SignatureValue is %d bytes (err %v), want 64", len(sv), err)
				}
			}
		})
	}
}

// The element passed in must stay as it was: callers keep using it.
func TestSignEnvelopedLeavesInputUnchanged(t *testing.T) {
	t.Parallel()
	for _, fixture := range []struct{ name, xml string }{{"standalone", standalone}, {"in response", inResponse}} {
		t.Run(fixture.name, func(t *testing.T) {
			t.Parallel()
			doc := parse(t, fixture.xml)
			before, _ := doc.WriteToString()
			if _, err := newSigner(t, keys.P256).SignEnveloped(findAssertion(t, doc)); err != nil {
				t.Fatal(err)
			}
			after, _ := doc.WriteToString()
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("input changed by signing (-before +after):\n%s", diff)
			}
		})
	}
}

// tampers are changes made to a signed document after signing; every one
// must make verification fail.
var tampers = []struct{ name, old, new string }{
	{"intact", "", ""},
	{"attribute value changed", eppn, "elev4712@skola.example"},
	{"NameID changed", nameID, "pseudo-00000000"},
	{"IssueInstant changed", `IssueInstant="2026-03-02T08:00:00Z"><saml:Issuer>https://bro.skola.example/idp</saml:Issuer><ds:Signature`, `IssueInstant="2026-03-02T09:00:00Z"><saml:Issuer>https://bro.skola.example/idp</saml:Issuer><ds:Signature`},
}

func tamper(t testing.TB, signed, old, new string) string {
	t.Helper()
	if old == "" {
		return signed
	}
	if !strings.Contains(signed, old) {
		t.Fatalf("signed document lacks %q", old)
	}
	return strings.Replace(signed, old, new, 1)
}

func TestGoxmldsigVerifiesRSA(t *testing.T) {
	t.Parallel()
	s := newSigner(t, keys.RSA2048)
	for _, fixture := range []struct{ name, xml string }{{"standalone", standalone}, {"in response", inResponse}} {
		signed := signFixture(t, s, fixture.xml)
		for _, tc := range tampers {
			t.Run(fixture.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				doc := parse(t, tamper(t, signed, tc.old, tc.new))
				ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{s.Pair().Cert}})
				ctx.IdAttribute = "ID"
				// goxmldsig validates a copy of what it is given and so loses
				// declarations made on the Response: detach with them first,
				// as a verifier using goxmldsig must.
				a := findAssertion(t, doc)
				nsCtx, err := etreeutils.NSBuildParentContext(a)
				if err != nil {
					t.Fatal(err)
				}
				a, err = etreeutils.NSDetatch(nsCtx, a)
				if err != nil {
					t.Fatal(err)
				}
				_, err = ctx.Validate(a)
				if wantOK := tc.old == ""; (err == nil) != wantOK {
					t.Errorf("Validate error = %v, want success %v", err, wantOK)
				}
			})
		}
	}
}

func TestXMLSec1Verifies(t *testing.T) {
	t.Parallel()
	xmlsectest.Path(t)
	for _, alg := range algorithms {
		s := newSigner(t, alg.alg)
		dir := t.TempDir()
		cert := xmlsectest.WriteFile(t, dir, "cert.pem", s.Pair().CertPEM())
		for _, fixture := range []struct{ name, xml string }{{"standalone", standalone}, {"in response", inResponse}} {
			signed := signFixture(t, s, fixture.xml)
			for i, tc := range tampers {
				name := alg.name + "/" + fixture.name + "/" + tc.name
				file := xmlsectest.WriteFile(t, dir, strings.NewReplacer("/", "_", " ", "_").Replace(name)+".xml",
					[]byte(tamper(t, signed, tc.old, tc.new)))
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					_, stderr, err := xmlsectest.Run(t, "--verify",
						"--id-attr:ID", nsAssertion+":Assertion",
						"--trusted-pem", cert,
						file)
					// xmlsec1 prints OK for a valid signature, FAIL for an
					// invalid one and ERROR when it could not check at all.
					want := "FAIL"
					if i == 0 {
						want = "OK"
					}
					if got := verdict(stderr); got != want || (err == nil) != (want == "OK") {
						t.Errorf("xmlsec1 --verify = %s (error %v), want %s\n%s", got, err, want, stderr)
					}
				})
			}
		}
		// A valid signature by a key the verifier does not trust.
		t.Run(alg.name+"/untrusted signer", func(t *testing.T) {
			t.Parallel()
			file := xmlsectest.WriteFile(t, dir, "untrusted.xml", []byte(signFixture(t, newSigner(t, alg.alg), standalone)))
			_, stderr, err := xmlsectest.Run(t, "--verify", "--id-attr:ID", nsAssertion+":Assertion", "--trusted-pem", cert, file)
			if err == nil || verdict(stderr) == "OK" {
				t.Errorf("xmlsec1 accepted a signature by an untrusted key\n%s", stderr)
			}
		})
	}
}

// verdict returns the line xmlsec1 prints on its own for the outcome.
func verdict(stderr []byte) string {
	for _, line := range strings.Split(string(stderr), "\n") {
		switch l := strings.TrimSpace(line); l {
		case "OK", "FAIL", "ERROR":
			return l
		}
	}
	return "no verdict"
}
