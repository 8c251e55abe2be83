package samlxml

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
)

// checkOnce fails when Parse, which tries parseOnce first, ends otherwise
// than the two passes it replaces: another error, or another tree (down
// to the whitespace and CDATA flags of text). checkParse calls it for
// every seed, generated document and fuzz input.
func checkOnce(t *testing.T, doc []byte) {
	t.Helper()
	got, gotErr := Parse(doc)
	var want *etree.Document
	wantErr := func() error {
		if len(doc) > MaxMessageBytes {
			return ErrTooLarge
		}
		if strings.Contains(string(doc), "<!DOCTYPE") || strings.Contains(string(doc), "<!ENTITY") {
			return ErrDTD
		}
		markup, err := firstPass(doc, messageLimits)
		if err != nil {
			return err
		}
		want, err = parseTwice(doc, markup)
		return err
	}()
	if !errors.Is(gotErr, wantErr) && !(gotErr == nil && wantErr == nil) {
		t.Fatalf("Parse: %v; the two passes: %v; for %q", gotErr, wantErr, doc)
	}
	if gotErr == nil {
		if g, w := dump(&got.Element), dump(&want.Element); g != w {
			t.Fatalf("trees differ for %q:\n got %s\nwant %s", doc, g, w)
		}
	}
}

// dump writes every token of a tree with the fields etree keeps.
func dump(el *etree.Element) string {
	var b strings.Builder
	var walk func(el *etree.Element)
	walk = func(el *etree.Element) {
		fmt.Fprintf(&b, "<%q %q", el.Space, el.Tag)
		for _, a := range el.Attr {
			fmt.Fprintf(&b, " [%q %q %q %v]", a.Space, a.Key, a.Value, a.Element() == el)
		}
		b.WriteString(">")
		for i, c := range el.Child {
			switch c := c.(type) {
			case *etree.Element:
				if c.Parent() != el || c.Index() != i {
					b.WriteString("!parent")
				}
				walk(c)
			case *etree.CharData:
				fmt.Fprintf(&b, "{text %q ws=%v cdata=%v}", c.Data, c.IsWhitespace(), c.IsCData())
			case *etree.Comment:
				fmt.Fprintf(&b, "{comment %q}", c.Data)
			case *etree.ProcInst:
				fmt.Fprintf(&b, "{pi %q %q}", c.Target, c.Inst)
			case *etree.Directive:
				fmt.Fprintf(&b, "{directive %q}", c.Data)
			}
		}
		b.WriteString("</>")
	}
	walk(el)
	return b.String()
}

// TestCase07_ParseOnceMatchesTwoPasses: parsing a message in one pass
// (round-trip check and tree from the same tokens) ends as the check over
// the markup followed by etree's parse did, for whole school IdP
// responses and thousands of mutations of them: characters dropped,
// doubled or replaced by markup, prefixes and entities.
func TestCase07_ParseOnceMatchesTwoPasses(t *testing.T) {
	resp := sampleResponse()
	checkOnce(t, []byte(resp))
	rng := rand.New(rand.NewPCG(13, 7))
	pieces := []string{"<", ">", "/", ":", "::", "xmlns:x=\"urn:x\" ", "&amp;", "&#xD;", "&bad;", "<!-- c -->", "<![CDATA[x]]>", "<?p i?>", "\"", "'", " ", "\t", "\r\n", "é", "\xff", "x:", "xml:", "xmlns="}
	for range 5000 {
		b := []byte(resp)
		for range 1 + rng.IntN(3) {
			i := rng.IntN(len(b))
			switch rng.IntN(3) {
			case 0:
				b = append(b[:i:i], b[i+1:]...)
			case 1:
				b = append(b[:i:i], append([]byte(pieces[rng.IntN(len(pieces))]), b[i:]...)...)
			default:
				b = append(b[:i:i], append([]byte{b[i]}, b[i:]...)...)
			}
		}
		checkOnce(t, b)
	}
}

// sampleResponse is a school IdP's response as the tests need one: both
// prefixes and a default namespace, xs and xsi on values, an entity, a
// comment before the root. The values are invented.
func sampleResponse() string {
	now := time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC).Format(time.RFC3339)
	var attrs strings.Builder
	for i, v := range []string{"Anna", "Andersson", "student@skola.example", "12345678", "7", "a &amp; b"} {
		fmt.Fprintf(&attrs, `<saml:Attribute Name="urn:oid:%d" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri"><saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">%s</saml:AttributeValue></saml:Attribute>`, i, v)
	}
	sig := `<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:Reference URI="#_a"><ds:DigestValue>` + base64.StdEncoding.EncodeToString([]byte("digest")) + "</ds:DigestValue></ds:Reference></ds:SignedInfo>\n<ds:SignatureValue>\nAAAA\n</ds:SignatureValue></ds:Signature>"
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n<!-- IdP -->\n" +
		`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r" IssueInstant="` + now + `" Version="2.0">` +
		`<saml:Issuer>https://idp.example</saml:Issuer>` + sig +
		`<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
		`<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a" Version="2.0"><Issuer>https://idp.example</Issuer>` +
		`<Subject><NameID>n-1</NameID></Subject><saml:AttributeStatement>` + attrs.String() + `</saml:AttributeStatement></Assertion></samlp:Response>` + "\n"
}
