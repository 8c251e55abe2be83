package samlxml

import (
	"bytes"
	"encoding/xml"
	"io"
	"math/rand/v2"
	"testing"

	rtvalidator "github.com/mattermost/xml-roundtrip-validator"
)

// checkSurvives fails when survives passes a token of doc that CheckToken
// refuses: the shortcut may only skip tokens the validator would pass.
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
		if survives(tok) {
			if err := rtvalidator.CheckToken(xml.CopyToken(tok)); err != nil {
				t.Fatalf("survives passed %#v, CheckToken refuses it: %v", tok, err)
			}
		}
	}
}

func TestSurvivesAgreesWithCheckToken(t *testing.T) {
	t.Parallel()
	docs := []string{
		`<a>plain text</a>`,
		"<a>tab\tcr\rcrlf\r\nlf\n</a>",
		`<a>&lt;&amp;&gt;&quot;&apos;&#x9;&#xD;&#xA;&#10;&#13;</a>`,
		`<a>åäö ü € 𝄞 &#xFFFD;</a>`,
		`<a><![CDATA[]]></a>`,
		`<a><![CDATA[<not markup> & ]]]]><![CDATA[>]]></a>`,
		`<saml:Assertion xmlns:saml="urn:x"></saml:Assertion>`,
		`<a:b:c xmlns:a="urn:a"></a:b:c>`,
		`<:a></:a>`,
		`<a:></a:>`,
		`<a.b-c_d></a.b-c_d>`,
		`<é></é>`,
		`<x ::attr="1"></x >`,
		"<a>\x00\x01\x7f</a>",
		"<a>\xff\xfe</a>",
		"<a>\uFFFE\uFFFF</a>",
		`<a>]]&gt;</a>`,
		`<a> </a>`,
	}
	for _, d := range docs {
		checkSurvives(t, []byte(d))
	}
	// Random text and names, including bytes outside XML's range and
	// invalid UTF-8.
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", "_", "-", ".", ":", "0", " ", "\t", "\r", "\n", "&amp;", "&#xD;", "&#x0;", "<", ">", "]]>", "å", "\x00", "\x1f", "\xc3", "\xff", "\uFFFD", "\uFFFE", "𝄞", "&lt;", "&"}
	word := func(n int) string {
		var b bytes.Buffer
		for range n {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 20000 {
		name := word(1 + rng.IntN(4))
		checkSurvives(t, []byte("<"+name+">"+word(rng.IntN(8))+"</"+name+">"))
	}
}

// FuzzSurvives looks for a token that survives passes and CheckToken
// refuses.
func FuzzSurvives(f *testing.F) {
	f.Add([]byte(`<a>text &amp; more</a>`))
	f.Add([]byte(`<p:a xmlns:p="urn:p">x</p:a>`))
	f.Add([]byte("<a>\r\n\t</a>"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkSurvives(t, doc)
	})
}
