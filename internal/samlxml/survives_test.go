package samlxml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	rtvalidator "github.com/mattermost/xml-roundtrip-validator"
)

// checkSurvives fails when survives passes a text token of doc that
// CheckToken refuses: the shortcut may only skip text the validator would
// pass. (End tags are covered by checkParse: skipping them relies on the
// strict parse.)
func checkSurvives(t *testing.T, doc []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = false
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	for {
		tok, err := d.RawToken()
		if err != nil {
			return
		}
		if _, text := tok.(xml.CharData); text && survives(tok) {
			if err := rtvalidator.CheckToken(xml.CopyToken(tok)); err != nil {
				t.Fatalf("survives passed %#v, CheckToken refuses it: %v", tok, err)
			}
		}
	}
}

// checkParse fails when Parse accepts a document the validator's own
// Validate refuses, or refuses as a round-trip failure one it accepts:
// reading only the markup, skipping text and end tags, must not change the
// outcome.
func checkParse(t *testing.T, doc []byte) {
	t.Helper()
	checkOnce(t, doc)
	_, err := Parse(doc)
	valid := rtvalidator.Validate(bytes.NewReader(doc)) == nil
	if err == nil && !valid {
		t.Fatalf("Parse accepts what Validate refuses: %q", doc)
	}
	if errors.Is(err, ErrRoundTrip) && valid {
		t.Fatalf("Parse refuses as a round-trip failure what Validate accepts: %q", doc)
	}
}

var textAlphabet = []string{"a", "Z", "_", "-", ".", ":", "0", " ", "\t", "\r", "\n", "&amp;", "&#xD;", "&#x0;", "<", ">", "]]>", "å", "\x00", "\x1f", "\xc3", "\xff", "\uFFFD", "\uFFFE", "𝄞", "&lt;", "&"}

var parseSeeds = []string{
	`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_a"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">x</saml:Issuer></samlp:Response>`,
	`<Response xmlns="urn:oasis:names:tc:SAML:2.0:protocol"><Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">x &amp; y</Issuer></Response>`,
	`<saml:AttributeValue xmlns:saml="urn:x" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">v</saml:AttributeValue>`,
	`<a ::attr="x">t</a>`,
	`<a xmlns:b="urn:b" b:c="1" c="2">t<![CDATA[<x>]]>u<!-- c --><?p i?></a>`,
	`<a><![CDATA[]]></a>`,
	"<a>\r\n\t&#xD;&#x9;</a>",
	`<a:b xmlns:a="urn:a">text</a:b>`,
	`<a:b:c xmlns:a="urn:a"></a:b:c>`,
	`<:a></:a>`,
	`<a:></a:>`,
	`<é>å</é>`,
	`<a xmlns="">x</a>`,
	`<a xml:lang="sv">å</a>`,
	`<?xml version="1.0" encoding="ISO-8859-1"?><a>x</a>`,
	`<a b = "1" c='2'/>`,
	`<a xmlns:Q="u" Q:a="1" R:b="2"/>`,
	`<x></x >`,
	"<a>\x00\x01\x7f</a>",
	"<a>\xff\xfe</a>",
}

func TestSurvivesAgreesWithCheckToken(t *testing.T) {
	t.Parallel()
	for _, d := range parseSeeds {
		checkSurvives(t, []byte(d))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(textAlphabet[rng.IntN(len(textAlphabet))])
		}
		return b.String()
	}
	for range 20000 {
		checkSurvives(t, []byte("<a>"+word(rng.IntN(8))+"</a>"))
	}
}

// TestParseAgreesWithValidator builds documents whose start and end tags
// use prefixes chosen to make the encoder rename and collide, odd names,
// mismatched end tags, and text of every kind.
func TestParseAgreesWithValidator(t *testing.T) {
	t.Parallel()
	for _, d := range parseSeeds {
		checkParse(t, []byte(d))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	prefixes := []string{"", "", "a", "b", "xml", "xmlns", "xmlfoo", "XmL", "_xml", "_xmlns", "_", "a.b", "é", ":", "a:b"}
	locals := []string{"a", "b", "xmlns", "xml", "lang", "ID", "_", "a.b", "é", "1", ""}
	values := []string{"", "v", "urn:a", "a b", "\t", "\n", "\r", "&amp;", "&#xD;", "xmlns", "å", "\x01", "\xff"}
	pick := func(l []string) string { return l[rng.IntN(len(l))] }
	qname := func() string {
		if p := pick(prefixes); p != "" {
			return p + ":" + pick(locals)
		}
		return pick(locals)
	}
	text := func() string {
		var b strings.Builder
		for range rng.IntN(4) {
			b.WriteString(pick(textAlphabet))
		}
		return b.String()
	}
	for range 30000 {
		var b strings.Builder
		el := qname()
		b.WriteString("<" + el)
		for range rng.IntN(4) {
			b.WriteString(" " + qname() + `="` + pick(values) + `"`)
		}
		b.WriteString(">" + text())
		if rng.IntN(3) == 0 {
			inner := qname()
			b.WriteString("<" + inner + "/>" + text())
		}
		end := el
		if rng.IntN(4) == 0 {
			end = qname()
		}
		b.WriteString("</" + end + ">")
		checkParse(t, []byte(b.String()))
	}
}

// FuzzSurvives looks for text that survives passes and CheckToken refuses.
func FuzzSurvives(f *testing.F) {
	for _, d := range parseSeeds {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkSurvives(t, doc)
	})
}

// FuzzParseAgreesWithValidator looks for a document Parse accepts and the
// validator refuses, or the other way round for a round-trip failure.
func FuzzParseAgreesWithValidator(f *testing.F) {
	for _, d := range parseSeeds {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkParse(t, doc)
	})
}
