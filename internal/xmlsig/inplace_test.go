package xmlsig_test

import (
	"crypto/x509"
	"errors"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/xmlenc/xmlsectest"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// sigTemplate is an empty ds:Signature over #x for xmlsec1 to fill in.
const sigTemplate = `<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>` +
	`<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>` +
	`<ds:SignatureMethod Algorithm="SIGMETHOD"/>` +
	`<ds:Reference URI="#x"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>` +
	`<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"PREFIXES/></ds:Transforms>` +
	`<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>` +
	`</ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>`

// interopDocs put the signed element (ID x, with the template as SIG) in
// the namespace layouts real IdPs write and a few they should not: the
// canonical form must be libxml2's for each.
var interopDocs = []struct {
	name, doc, idNode, prefixes string
}{
	{"prefixes_on_response", `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="r"><saml:Issuer>i</saml:Issuer><saml:Assertion ID="x" Version="2.0"><saml:Issuer>i</saml:Issuer>SIG<saml:AttributeStatement><saml:Attribute Name="n"><saml:AttributeValue xsi:type="xs:string">Anna &amp; Bo &lt;3 &gt; "q"&#xD;</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>`, "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", ""},
	{"default_namespaces", `<Response xmlns="urn:oasis:names:tc:SAML:2.0:protocol" ID="r"><Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="x"><Issuer>i</Issuer>SIG<Subject><NameID Format="f" xml:lang="sv">n</NameID></Subject></Assertion></Response>`, "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", ""},
	{"undeclared_default_at_apex", `<r xmlns="urn:d"><a xmlns="" ID="x">SIG<b c="1"/><d:e xmlns:d="urn:e" d:f="2" xmlns="urn:d2"><g/></d:e></a></r>`, "a", ""},
	{"inclusive_prefixes", `<p:r xmlns:p="urn:p" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><p:a ID="x">SIG<p:v xsi:type="xs:string">t</p:v></p:a></p:r>`, "urn:p:a", ` PrefixList="xs"`},
	{"default_undeclared_below_prefixed", `<r ID="x" xmlns:a="urn:a">SIG<a:e xmlns="urn:c"><e xmlns=""><g/></e><f/></a:e></r>`, "r", ""},
	{"inclusive_default", `<p:r xmlns:p="urn:p" xmlns="urn:d"><p:a ID="x">SIG<p:b/><c/></p:a></p:r>`, "urn:p:a", ` PrefixList="#default"`},
	{"attribute_order", `<r xmlns:a="urn:a" ID="x">SIG<a:e xmlns:b="urn:b" b:k="1" a:l="2" z="3" xml:lang="sv"><b:f a:z="1" b:a="2"/></a:e></r>`, "r", ""},
	{"redeclared_prefix", `<s:r xmlns:s="urn:s"><s:a ID="x" xmlns:s="urn:s">SIG<s:b xmlns:s="urn:s2"><s:c/></s:b><t:d xmlns:t="urn:s" t:k="v" k="w"/></s:a></s:r>`, "urn:s:a", ""},
}

// TestCase02_InPlaceVerifierMatchesXmlsec1 has xmlsec1 (libxml2's canonicaliser, OpenSSL:
// nothing this project wrote) sign each layout with RSA and ECDSA, and
// VerifyInPlace must accept exactly that, and refuse it after any change
// to the signed content.
func TestCase02_InPlaceVerifierMatchesXmlsec1(t *testing.T) {
	xmlsectest.Path(t)
	for _, a := range algorithms {
		pair, err := keys.Generate("bro.skola.example", a.alg, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range interopDocs {
			t.Run(a.name+"/"+tc.name, func(t *testing.T) {
				sig := strings.Replace(strings.Replace(sigTemplate, "SIGMETHOD", a.method, 1), "PREFIXES", tc.prefixes, 1)
				if tc.prefixes != "" {
					sig = strings.Replace(sig, `"`+tc.prefixes+`/>`, `"><ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#"`+tc.prefixes+`/></ds:Transform>`, 1)
				}
				signed := xmlsec1Sign(t, pair, strings.Replace(tc.doc, "SIG", sig, 1), tc.idNode)
				doc := etree.NewDocument()
				if err := doc.ReadFromBytes(signed); err != nil {
					t.Fatal(err)
				}
				el := byID(doc.Root(), "x")
				certs := []*x509.Certificate{pair.Cert}
				if err := xmlsig.VerifyInPlace(el, certs, time.Now()); err != nil {
					t.Fatalf("xmlsec1's signature refused: %v\n%s", err, signed)
				}
				// Any change to what is signed breaks it: a text, an
				// attribute, a namespace on an ancestor.
				for i, mutate := range []func(*etree.Element){
					func(el *etree.Element) { el.CreateAttr("ID2", "y") },
					func(el *etree.Element) { last(el).CreateText("z") },
					func(el *etree.Element) {
						for p := el.Parent(); p != nil; p = p.Parent() {
							for j, at := range p.Attr {
								if at.Space == "xmlns" || at.Key == "xmlns" {
									p.Attr[j].Value += "x"
								}
							}
						}
						for j, at := range el.Attr {
							if at.Space == "xmlns" || at.Key == "xmlns" {
								el.Attr[j].Value += "x"
							}
						}
					},
				} {
					d := etree.NewDocument()
					if err := d.ReadFromBytes(signed); err != nil {
						t.Fatal(err)
					}
					m := byID(d.Root(), "x")
					mutate(m)
					if err := xmlsig.VerifyInPlace(m, certs, time.Now()); err == nil {
						t.Errorf("mutation %d accepted", i)
					}
				}
			})
		}
	}
}

// TestCase02_InPlaceVerifierMatchesXmlsec1OnRandomTrees has xmlsec1 sign generated trees:
// random prefixes and default namespaces, declared, redeclared and
// undeclared at random depths, prefixed and plain attributes with values
// that need escaping, text. VerifyInPlace must accept every one.
func TestCase02_InPlaceVerifierMatchesXmlsec1OnRandomTrees(t *testing.T) {
	xmlsectest.Path(t)
	pair, err := keys.Generate("bro.skola.example", keys.P256, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sig := strings.Replace(strings.Replace(sigTemplate, "SIGMETHOD", xmlsig.ECDSASHA256, 1), "PREFIXES", "", 1)
	rng := rand.New(rand.NewPCG(13, 2026))
	prefixes := []string{"", "a", "b", "saml", "xs"}
	uris := []string{"urn:a", "urn:b", "urn:c", ""}
	var build func(parent *etree.Element, depth int, declared map[string]bool)
	build = func(parent *etree.Element, depth int, declared map[string]bool) {
		for range rng.IntN(4) {
			d := maps.Clone(declared)
			el := etree.NewElement("e")
			for range rng.IntN(3) {
				p, u := prefixes[rng.IntN(len(prefixes))], uris[rng.IntN(len(uris))]
				switch {
				case p == "":
					if el.SelectAttr("xmlns") == nil {
						el.CreateAttr("xmlns", u)
					}
				case u == "":
					continue // a prefix cannot be undeclared in XML 1.0 namespaces
				case el.SelectAttr("xmlns:"+p) == nil:
					el.CreateAttr("xmlns:"+p, u)
					d[p] = true
				}
			}
			var usable []string
			for p := range d {
				usable = append(usable, p)
			}
			slices.Sort(usable)
			if len(usable) > 0 && rng.IntN(2) == 0 {
				el.Space = usable[rng.IntN(len(usable))]
			}
			for j := range rng.IntN(4) {
				k := string(rune('k' + j))
				if len(usable) > 0 && rng.IntN(2) == 0 {
					el.CreateAttr(usable[rng.IntN(len(usable))]+":"+k, "v&<\"\t\n"+k)
				} else {
					el.CreateAttr(k, "plain "+k)
				}
			}
			if rng.IntN(2) == 0 {
				el.CreateText("t>&<\r" + strings.Repeat("x", rng.IntN(3)))
			}
			parent.AddChild(el)
			if depth < 4 {
				build(el, depth+1, d)
			}
		}
	}
	for n := range 40 {
		root := etree.NewElement("r")
		root.CreateAttr("xmlns:a", "urn:a")
		root.CreateAttr("ID", "x")
		root.CreateText("SIG")
		build(root, 0, map[string]bool{"a": true})
		doc := etree.NewDocument()
		doc.SetRoot(root)
		s, err := doc.WriteToString()
		if err != nil {
			t.Fatal(err)
		}
		signed := xmlsec1Sign(t, pair, strings.Replace(s, "SIG", sig, 1), "r")
		d := etree.NewDocument()
		if err := d.ReadFromBytes(signed); err != nil {
			t.Fatal(err)
		}
		if err := xmlsig.VerifyInPlace(d.Root(), []*x509.Certificate{pair.Cert}, time.Now()); err != nil {
			t.Fatalf("tree %d: xmlsec1's signature refused: %v\n%s", n, err, signed)
		}
	}
}

func xmlsec1Sign(t *testing.T, pair *keys.Pair, doc, idNode string) []byte {
	t.Helper()
	dir := t.TempDir()
	keyPEM, err := pair.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	in := xmlsectest.WriteFile(t, dir, "in.xml", []byte(doc))
	key := xmlsectest.WriteFile(t, dir, "key.pem", keyPEM)
	cert := xmlsectest.WriteFile(t, dir, "cert.pem", pair.CertPEM())
	out := filepath.Join(dir, "out.xml")
	if _, errOut, err := xmlsectest.Run(t, "--sign", "--privkey-pem", key+","+cert, "--id-attr:ID", idNode, "--output", out, in); err != nil {
		t.Fatalf("xmlsec1 --sign: %v\n%s", err, errOut)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func byID(el *etree.Element, id string) *etree.Element {
	if el.SelectAttrValue("ID", "") == id {
		return el
	}
	for _, c := range el.ChildElements() {
		if f := byID(c, id); f != nil {
			return f
		}
	}
	return nil
}

// last returns the deepest last element under el that is not part of the
// signature.
func last(el *etree.Element) *etree.Element {
	cs := el.ChildElements()
	for i := len(cs) - 1; i >= 0; i-- {
		if cs[i].Tag != "Signature" {
			return last(cs[i])
		}
	}
	return el
}

// TestCase09_InPlaceVerifierRefusesOtherKeysAndShapes covers what the bridge's own signer makes and what it
// must refuse: another key, an expired certificate, SHA-1, a signature
// that is not the element's own, an embedded certificate.
func TestCase09_InPlaceVerifierRefusesOtherKeysAndShapes(t *testing.T) {
	for _, a := range algorithms {
		t.Run(a.name, func(t *testing.T) {
			s := newSigner(t, a.alg)
			other := newSigner(t, a.alg)
			for _, fixture := range []string{standalone, inResponse} {
				signed := signFixture(t, s, fixture)
				el := findAssertion(t, parse(t, signed))
				if err := xmlsig.VerifyInPlace(el, []*x509.Certificate{s.Pair().Cert}, time.Now()); err != nil {
					t.Fatalf("own signature refused: %v", err)
				}
				if err := xmlsig.VerifyInPlace(el, []*x509.Certificate{other.Pair().Cert}, time.Now()); err == nil {
					t.Error("verified with another key")
				}
				if err := xmlsig.VerifyInPlace(el, []*x509.Certificate{other.Pair().Cert, s.Pair().Cert}, time.Now()); err != nil {
					t.Errorf("refused with the right key second (rollover): %v", err)
				}
				if err := xmlsig.VerifyInPlace(el, []*x509.Certificate{s.Pair().Cert}, time.Now().AddDate(50, 0, 0)); err == nil {
					t.Error("verified with an expired certificate")
				}
			}
		})
	}
	s := newSigner(t, keys.RSA2048)
	signed := signFixture(t, s, standalone)
	certs := []*x509.Certificate{s.Pair().Cert}
	for _, tc := range []struct {
		name    string
		mutate  func(el *etree.Element)
		wantErr error
	}{
		{"sha1_digest", func(el *etree.Element) {
			el.FindElement(".//DigestMethod").CreateAttr("Algorithm", "http://www.w3.org/2000/09/xmldsig#sha1")
		}, xmlsig.ErrWeakAlgorithm},
		{"sha1_signature", func(el *etree.Element) {
			el.FindElement(".//SignatureMethod").CreateAttr("Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1")
		}, xmlsig.ErrWeakAlgorithm},
		{"inclusive_c14n", func(el *etree.Element) {
			el.FindElement(".//CanonicalizationMethod").CreateAttr("Algorithm", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315")
		}, xmlsig.ErrWeakAlgorithm},
		{"other_id", func(el *etree.Element) { el.CreateAttr("ID", "_other") }, xmlsig.ErrBadSignature},
		{"no_signature", func(el *etree.Element) { el.RemoveChild(el.FindElement("./Signature")) }, xmlsig.ErrNoSignature},
		{"second_reference", func(el *etree.Element) {
			si := el.FindElement(".//SignedInfo")
			si.AddChild(si.FindElement("./Reference").Copy())
		}, nil},
		{"object", func(el *etree.Element) {
			el.FindElement("./Signature").CreateElement("ds:Object")
		}, nil},
		{"comment_in_digest", func(el *etree.Element) {
			el.FindElement(".//DigestValue").CreateComment("c")
		}, nil},
		{"name_changed", func(el *etree.Element) { el.FindElement(".//NameID").SetText("someone-else") }, xmlsig.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			el := findAssertion(t, parse(t, signed))
			tc.mutate(el)
			err := xmlsig.VerifyInPlace(el, certs, time.Now())
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Errorf("VerifyInPlace = %v, want %v", err, tc.wantErr)
			}
		})
	}
	// A certificate in KeyInfo is never trusted: signed by another key that
	// carries its own certificate, the signature is refused.
	other := newSigner(t, keys.RSA2048)
	el := findAssertion(t, parse(t, signFixture(t, other, standalone)))
	if el.FindElement(".//KeyInfo//X509Certificate") == nil {
		t.Fatal("fixture has no embedded certificate")
	}
	if err := xmlsig.VerifyInPlace(el, certs, time.Now()); err == nil {
		t.Error("verified by the certificate embedded in the message")
	}
}
