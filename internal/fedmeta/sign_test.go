package fedmeta

import (
	"bytes"
	"crypto/x509"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// bridgeEntities returns the bridge's own metadata in the shapes it may
// take before signing: crewjam's marshalling (default namespace), and an
// element taken out of a larger document whose namespaces are declared on
// an ancestor.
func bridgeEntities(t testing.TB) map[string]*etree.Element {
	t.Helper()
	ed := saml.EntityDescriptor{
		EntityID: "https://bridge.example.se/saml/idp",
		IDPSSODescriptors: []saml.IDPSSODescriptor{{
			SSODescriptor: saml.SSODescriptor{
				RoleDescriptor: saml.RoleDescriptor{ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol"},
				NameIDFormats:  []saml.NameIDFormat{"urn:oasis:names:tc:SAML:2.0:nameid-format:transient"},
			},
			SingleSignOnServices: []saml.Endpoint{{Binding: saml.HTTPRedirectBinding, Location: "https://bridge.example.se/saml/sso"}},
		}},
	}
	b, err := xml.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	d1 := etree.NewDocument()
	if err := d1.ReadFromBytes(b); err != nil {
		t.Fatal(err)
	}
	d2 := etree.NewDocument()
	if err := d2.ReadFromString(`<wrapper xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:shibmd="urn:mace:shibboleth:metadata:1.0">
<md:EntityDescriptor entityID="https://bridge.example.se/saml/idp">
 <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
  <md:Extensions><shibmd:Scope regexp="false">kommun.example.se</shibmd:Scope></md:Extensions>
  <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://bridge.example.se/saml/sso?a=1&amp;b=2"/>
 </md:IDPSSODescriptor>
</md:EntityDescriptor></wrapper>`); err != nil {
		t.Fatal(err)
	}
	return map[string]*etree.Element{
		"crewjam default namespace":      d1.Root(),
		"prefix declared on an ancestor": d2.Root().SelectElement("EntityDescriptor"),
	}
}

// TestSign: the bridge's signed metadata carries ID, validUntil,
// cacheDuration and a first-child signature that verifies with the
// bridge's certificate only, and stops verifying when changed.
func TestSign(t *testing.T) {
	t.Parallel()
	validUntil := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	for keyName, pair := range map[string]func() *xmlsig.Signer{
		"RSA":   func() *xmlsig.Signer { return signerFor(t, testKeys().operator) },
		"ECDSA": func() *xmlsig.Signer { return signerFor(t, testKeys().ecdsa) },
	} {
		for shape, el := range bridgeEntities(t) {
			t.Run(keyName+"/"+shape, func(t *testing.T) {
				t.Parallel()
				signer := pair()
				before := elementString(t, el)
				out, err := Sign(el, signer, validUntil, 6*time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				if elementString(t, el) != before {
					t.Error("Sign changed its input")
				}
				trusted := []*x509.Certificate{signer.Pair().Cert}
				if err := Verify(out, trusted); err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if err := Verify(out, []*x509.Certificate{testKeys().other.Cert}); Reason(err) != ReasonBadSignature {
					t.Errorf("Verify with another certificate: %v, want bad_signature", err)
				}
				tampered := bytes.Replace(out, []byte("https://bridge.example.se/saml/sso"), []byte("https://evil.example.se/saml/sso"), 1)
				if err := Verify(tampered, trusted); Reason(err) != ReasonBadSignature {
					t.Errorf("Verify tampered: %v, want bad_signature", err)
				}

				doc := etree.NewDocument()
				if err := doc.ReadFromBytes(out); err != nil {
					t.Fatal(err)
				}
				root := doc.Root()
				if got := root.SelectAttrValue("validUntil", ""); got != "2031-02-03T04:05:06Z" {
					t.Errorf("validUntil %q", got)
				}
				if got := root.SelectAttrValue("cacheDuration", ""); got != "PT6H" {
					t.Errorf("cacheDuration %q, want PT6H", got)
				}
				if id := root.SelectAttrValue("ID", ""); !strings.HasPrefix(id, "_") || len(id) != 33 {
					t.Errorf("ID %q, want _ and 32 hex digits", id)
				}
				if first := root.ChildElements()[0]; !samlxml.Is(first, samlxml.NSDSig, "Signature") {
					t.Errorf("first child is %s, want ds:Signature (metadata schema order)", first.Tag)
				}
				if !bytes.HasPrefix(out, []byte("<?xml")) {
					t.Error("no XML declaration")
				}
			})
		}
	}
}

// TestSignTwice: signing already signed metadata replaces its signature
// and keeps its ID.
func TestSignTwice(t *testing.T) {
	t.Parallel()
	signer := signerFor(t, testKeys().operator)
	el := bridgeEntities(t)["crewjam default namespace"]
	first, err := Sign(el, signer, time.Now().Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(first); err != nil {
		t.Fatal(err)
	}
	second, err := Sign(doc.Root(), signer, time.Now().Add(2*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(second, []byte("SignatureValue>")); n != 2 { // one element: open and close tag
		t.Errorf("%d SignatureValue tags, want one element", n)
	}
	if err := Verify(second, []*x509.Certificate{signer.Pair().Cert}); err != nil {
		t.Fatal(err)
	}
	doc2 := etree.NewDocument()
	if err := doc2.ReadFromBytes(second); err != nil {
		t.Fatal(err)
	}
	if got, want := doc2.Root().SelectAttrValue("ID", ""), doc.Root().SelectAttrValue("ID", ""); got != want || want == "" {
		t.Errorf("ID %q after signing again, want %q kept", got, want)
	}
	if got := doc2.Root().SelectAttrValue("cacheDuration", ""); got != "PT1H" {
		t.Errorf("cacheDuration %q, want PT1H", got)
	}
}

// TestSignRefuses input it cannot sign.
func TestSignRefuses(t *testing.T) {
	t.Parallel()
	signer := signerFor(t, testKeys().operator)
	el := bridgeEntities(t)["crewjam default namespace"]
	other := etree.NewElement("Assertion")
	cases := []struct {
		name       string
		el         *etree.Element
		signer     *xmlsig.Signer
		validUntil time.Time
		cache      time.Duration
	}{
		{name: "no signer", el: el, validUntil: time.Now()},
		{name: "not metadata", el: other, signer: signer, validUntil: time.Now()},
		{name: "no validUntil", el: el, signer: signer},
		{name: "negative cacheDuration", el: el, signer: signer, validUntil: time.Now(), cache: -time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Sign(tc.el, tc.signer, tc.validUntil, tc.cache); err == nil {
				t.Error("Sign succeeded")
			}
		})
	}
}

func elementString(t testing.TB, el *etree.Element) string {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el.Copy())
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
