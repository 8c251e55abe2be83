// Package samlxml parses untrusted SAML XML with fixed bounds: size, depth,
// no DTDs or entities, and no constructs that change meaning on an XML
// round trip. Everything the bridge receives from a browser goes through it.
package samlxml

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/beevik/etree"
	rtvalidator "github.com/mattermost/xml-roundtrip-validator"
)

// Limits for untrusted input.
const (
	// MaxMessageBytes bounds a decoded SAML message.
	MaxMessageBytes = 256 << 10
	// MaxDepth bounds element nesting; SAML messages need fewer than 15 levels.
	MaxDepth = 48
	// MaxNamespaceDecls bounds the distinct namespace declarations
	// (prefix and URI pairs) of a whole message. IdPs that repeat xs/xsi on
	// every AttributeValue declare the same pairs many times; that is fine.
	MaxNamespaceDecls = 64
	// MaxNamespaceDeclOccurrences bounds xmlns attributes in all, so that
	// thousands of declarations cannot make parsing slow. (MaxAttributes
	// bounds them too; this one names the cause.)
	MaxNamespaceDeclOccurrences = 4096
)

// Namespaces used by SAML.
const (
	NSProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	NSAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	NSMetadata  = "urn:oasis:names:tc:SAML:2.0:metadata"
	NSDSig      = "http://www.w3.org/2000/09/xmldsig#"
	NSXMLEnc    = "http://www.w3.org/2001/04/xmlenc#"
)

// Errors returned for hostile or malformed input. They carry no input.
var (
	ErrTooLarge  = errors.New("saml message too large")
	ErrDTD       = errors.New("saml message contains a DTD or entity declaration")
	ErrMalformed = errors.New("saml message is not well-formed")
	ErrTooDeep   = errors.New("saml message nested too deeply")
	ErrRoundTrip = errors.New("saml message changes meaning on an XML round trip")
	ErrTooManyNS = errors.New("saml message declares too many namespaces")
)

// DecodeBase64 decodes a POST-binding parameter, bounded by MaxMessageBytes.
func DecodeBase64(s string) ([]byte, error) {
	if base64.StdEncoding.DecodedLen(len(s)) > MaxMessageBytes+3 {
		return nil, ErrTooLarge
	}
	// Browsers and some IdPs wrap base64 in lines. The decoder skips
	// '\r' and '\n' itself; copy the input only to drop spaces and tabs.
	if strings.ContainsAny(s, " \t") {
		s = strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, s)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: bad base64", ErrMalformed)
	}
	return b, nil
}

// inflaters keeps DEFLATE readers for Inflate: each holds a 32 KB window,
// which a fresh reader allocated and cleared for every AuthnRequest
// (issue 13). Reset gives a reader its new input and a clean state.
var inflaters sync.Pool

// Inflate decodes a Redirect-binding parameter: base64, then raw DEFLATE,
// stopping at MaxMessageBytes so that a deflate bomb costs nothing.
func Inflate(s string) ([]byte, error) {
	raw, err := DecodeBase64(s)
	if err != nil {
		return nil, err
	}
	br := bytes.NewReader(raw)
	r, _ := inflaters.Get().(io.ReadCloser)
	if r == nil {
		r = flate.NewReader(br)
	} else if err := r.(flate.Resetter).Reset(br, nil); err != nil {
		return nil, fmt.Errorf("%w: bad deflate data", ErrMalformed)
	}
	defer func() {
		r.Close()
		inflaters.Put(r)
	}()
	out, err := io.ReadAll(io.LimitReader(r, MaxMessageBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: bad deflate data", ErrMalformed)
	}
	if len(out) > MaxMessageBytes {
		return nil, ErrTooLarge
	}
	return out, nil
}

// Parse parses an untrusted XML message into a document after the checks
// above and within the bounds of MaxElements and the constants beside it.
// The document's root is the message element.
func Parse(b []byte) (*etree.Document, error) {
	return parse(b, messageLimits)
}

// ParseMetadata is Parse for SAML metadata an admin configured: the size
// limit, the depth limit and the namespace bounds are the same, the bounds
// on elements, attributes and other nodes far looser.
func ParseMetadata(b []byte) (*etree.Document, error) {
	return parse(b, metadataLimits)
}

func parse(b []byte, l limits) (*etree.Document, error) {
	if len(b) > MaxMessageBytes {
		return nil, ErrTooLarge
	}
	if bytes.Contains(b, []byte("<!DOCTYPE")) || bytes.Contains(b, []byte("<!ENTITY")) {
		return nil, ErrDTD
	}
	// The cheap pass first: nothing below runs on a message over the
	// bounds, and the round-trip check costs microseconds per token.
	markup, err := firstPass(b, l)
	if err != nil {
		return nil, err
	}
	if doc, err := parseOnce(b); err == nil {
		return doc, nil
	}
	return parseTwice(b, markup)
}

// parseTwice is the check over the markup, then etree's own parse: it
// decides every document parseOnce declines, so that each keeps its
// outcome and its error.
func parseTwice(b, markup []byte) (*etree.Document, error) {
	if err := roundTrip(markup); err != nil {
		return nil, ErrRoundTrip
	}
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{MaxDepth: MaxDepth}
	if err := doc.ReadFromBytes(b); err != nil {
		if errors.Is(err, etree.ErrMaxDepth) {
			return nil, ErrTooDeep
		}
		return nil, ErrMalformed
	}
	if doc.Root() == nil {
		return nil, ErrMalformed
	}
	for _, t := range doc.Child {
		if d, ok := t.(*etree.Directive); ok && d != nil {
			return nil, ErrDTD
		}
	}
	return doc, nil
}

// roundTrip checks that every token of b survives an encoding/xml round
// trip unchanged, with the validator's own check (CheckToken). It reads b
// from memory: the validator's Validate reads its input one byte at a time
// through a copying reader, only to report error positions, which the
// bridge never shows; that cost a third of the whole check.
func roundTrip(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	// As Validate does: the validator compares what encoding/xml makes of
	// the input, whatever the input's strictness or declared charset.
	d.Strict = false
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !checkToken(tok) {
			return rtvalidator.CheckToken(tok)
		}
	}
}

// survives reports tokens that CheckToken would pass, found without its
// cost: it builds an encoder and a decoder for every token, a few
// microseconds each, and a message is mostly end tags and text.
//
//   - Text: the encoder escapes every markup character and '\t' and '\r',
//     which decode back to the same bytes, unless a character is outside
//     XML's range or the text is empty (nothing to read back).
//     TestSurvivesAgreesWithCheckToken and FuzzSurvives hold this to
//     CheckToken.
//   - End tag: CheckToken compares only its local name, as the encoder
//     writes it after a start tag of the same name. The strict parse that
//     follows the check refuses an end tag that does not repeat its start
//     tag's prefix and name exactly, and the start tag, with that name, has
//     been through CheckToken.
//
// Start tags, comments and processing instructions always go to
// CheckToken: they are what the check is for.
func survives(tok xml.Token) bool {
	switch t := tok.(type) {
	case xml.CharData:
		return len(t) > 0 && xmlText(t)
	case xml.EndElement:
		return true
	}
	return false
}

// xmlText reports valid UTF-8 of characters in XML 1.0's Char production,
// as encoding/xml checks them.
func xmlText(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 || !xmlChar(r) {
			return false
		}
		b = b[n:]
	}
	return true
}

// xmlChar is XML 1.0's Char production.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// NS returns the namespace URI of el, resolved through its ancestors.
func NS(el *etree.Element) string { return el.NamespaceURI() }

// Is reports whether el is the element {ns}local.
func Is(el *etree.Element, ns, local string) bool {
	return el != nil && el.Tag == local && el.NamespaceURI() == ns
}

// Children returns el's child elements named {ns}local.
func Children(el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if Is(c, ns, local) {
			out = append(out, c)
		}
	}
	return out
}

// Child returns el's only child element named {ns}local, or nil when there
// is none; more than one is an error.
func Child(el *etree.Element, ns, local string) (*etree.Element, error) {
	cs := Children(el, ns, local)
	switch len(cs) {
	case 0:
		return nil, nil
	case 1:
		return cs[0], nil
	}
	return nil, fmt.Errorf("%w: more than one %s", ErrMalformed, local)
}

// Text returns the full character data of el, refusing comments and
// processing instructions inside it: etree's Text stops at the first
// comment, so "a<!---->b" would otherwise read as "a" (SECURITY.md case 6).
func Text(el *etree.Element) (string, error) {
	var sb strings.Builder
	for _, t := range el.Child {
		switch v := t.(type) {
		case *etree.CharData:
			sb.WriteString(v.Data)
		case *etree.Comment, *etree.ProcInst:
			return "", fmt.Errorf("%w: comment inside a value", ErrMalformed)
		case *etree.Element:
			return "", fmt.Errorf("%w: element inside a value", ErrMalformed)
		}
	}
	return strings.TrimSpace(sb.String()), nil
}
