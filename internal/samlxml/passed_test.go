package samlxml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	rtvalidator "github.com/mattermost/xml-roundtrip-validator"
)

// TestCase07_PassedTagCacheChangesNoOutcome: the round-trip check
// remembers start tags that passed it, and nothing else. Parsing every
// seed a second time, with the cache warm, ends as the first parse did; a
// tag CheckToken refuses is never remembered and is refused every time;
// two different tags never share a key; the cache stays bounded.
func TestCase07_PassedTagCacheChangesNoOutcome(t *testing.T) {
	docs := append([]string{
		`<a ::attr="x"/>`,
		`<:saml:NameID xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">x</:saml:NameID>`,
		`<a:b:c xmlns:a="urn:a"/>`,
		`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_a"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">x</saml:Issuer></samlp:Response>`,
	}, parseSeeds...)
	passedTags.mu.Lock()
	clear(passedTags.m)
	passedTags.mu.Unlock()
	first := make([]error, len(docs))
	for i, d := range docs {
		_, first[i] = Parse([]byte(d))
	}
	for i, d := range docs {
		_, err := Parse([]byte(d))
		if !errors.Is(err, first[i]) && !(err == nil && first[i] == nil) {
			t.Errorf("%q: first parse %v, with the cache warm %v", d, first[i], err)
		}
	}
	// Every remembered tag is one CheckToken passes.
	for _, d := range docs {
		dec := xml.NewDecoder(bytes.NewReader([]byte(d)))
		dec.Strict = false
		dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
		for {
			tok, err := dec.RawToken()
			if err != nil {
				break
			}
			st, ok := tok.(xml.StartElement)
			if !ok {
				continue
			}
			st = xml.CopyToken(st).(xml.StartElement)
			key, ok := tagKey(st)
			if ok && passedTags.has(key) {
				if err := rtvalidator.CheckToken(st); err != nil {
					t.Errorf("remembered %#v, which CheckToken refuses: %v", st, err)
				}
			}
		}
	}
	// A folded value never changes CheckToken's outcome: random start
	// tags (odd prefixes and names, namespace declarations among the
	// attributes) checked with two different safe values for each folded
	// attribute end alike, and share their key.
	rng := rand.New(rand.NewPCG(7, 13))
	prefixes := []string{"", "", "a", "b", "xml", "xmlns", "xmlfoo", "_xml", "_", "a.b", "é"}
	locals := []string{"a", "b", "xmlns", "xml", "lang", "ID", "_", "a.b", "é", "1", "x"}
	safe := []byte("AZaz09!#$%()*+,-./:;=?@[]^_`{|}~")
	safeValue := func() string {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = safe[rng.IntN(len(safe))]
		}
		return string(b)
	}
	for range 20000 {
		name := func() xml.Name {
			return xml.Name{Space: prefixes[rng.IntN(len(prefixes))], Local: locals[rng.IntN(len(locals))]}
		}
		t1 := xml.StartElement{Name: name()}
		for range rng.IntN(4) {
			v := safeValue()
			if rng.IntN(4) == 0 {
				v = "urn:" + locals[rng.IntN(len(locals))]
			}
			t1.Attr = append(t1.Attr, xml.Attr{Name: name(), Value: v})
		}
		t2 := xml.StartElement{Name: t1.Name, Attr: append([]xml.Attr(nil), t1.Attr...)}
		for i, a := range t2.Attr {
			if foldValue(a) {
				t2.Attr[i].Value = safeValue()
			}
		}
		k1, ok1 := tagKey(t1)
		k2, ok2 := tagKey(t2)
		if !ok1 || !ok2 || k1 != k2 {
			t.Fatalf("keys differ: %q, %q", k1, k2)
		}
		if e1, e2 := rtvalidator.CheckToken(t1), rtvalidator.CheckToken(t2); (e1 == nil) != (e2 == nil) {
			t.Fatalf("CheckToken(%#v) = %v but CheckToken(%#v) = %v", t1, e1, t2, e2)
		}
	}
	for _, a := range []xml.Attr{
		{Name: xml.Name{Space: "xmlns", Local: "p"}, Value: "urn:x"},
		{Name: xml.Name{Local: "xmlns"}, Value: "urn:x"},
		{Name: xml.Name{Local: "v"}, Value: "a b"},
		{Name: xml.Name{Local: "v"}, Value: "a&b"},
		{Name: xml.Name{Local: "v"}, Value: "å"},
	} {
		if foldValue(a) {
			t.Errorf("folded %#v", a)
		}
	}

	// Keys are unambiguous where a plain concatenation would not be.
	a := xml.StartElement{Name: xml.Name{Local: "a"}, Attr: []xml.Attr{{Name: xml.Name{Local: "b"}, Value: "c d"}}}
	b := xml.StartElement{Name: xml.Name{Local: "a"}, Attr: []xml.Attr{{Name: xml.Name{Local: "b"}, Value: "c"}, {Name: xml.Name{Local: "d"}}}}
	ka, _ := tagKey(a)
	kb, _ := tagKey(b)
	if ka == kb {
		t.Errorf("two tags share the key %q", ka)
	}
	// Bounded: at most maxPassedTags, and no key beyond maxPassedKey.
	for i := range maxPassedTags + 10 {
		k, _ := tagKey(xml.StartElement{Name: xml.Name{Local: "t"}, Attr: []xml.Attr{{Name: xml.Name{Local: "n"}, Value: string(rune('a'+i%26)) + string(rune(i))}}})
		passedTags.add(k)
	}
	passedTags.mu.RLock()
	n := len(passedTags.m)
	passedTags.mu.RUnlock()
	if n > maxPassedTags {
		t.Errorf("%d tags remembered, bound %d", n, maxPassedTags)
	}
	if _, ok := tagKey(xml.StartElement{Name: xml.Name{Local: "t"}, Attr: []xml.Attr{{Name: xml.Name{Local: "n"}, Value: string(make([]byte, maxPassedKey))}}}); ok {
		t.Error("a tag over maxPassedKey would be remembered")
	}
}
