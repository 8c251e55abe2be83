package samlxml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"

	"github.com/beevik/etree"
	rtvalidator "github.com/mattermost/xml-roundtrip-validator"
)

// errOnce makes parse fall back to the two passes, which then decide the
// outcome (and the error) exactly as they always did.
var errOnce = errors.New("samlxml: one-pass parse declined")

// parseOnce tokenises b once, strictly, and both runs the round-trip
// check on every token and builds the tree from the same tokens, as
// etree's reader builds it. The two passes it replaces (the check over
// the markup, then etree's own parse) tokenised the markup twice, and the
// tokeniser was most of what parsing a response cost (issue 13).
//
// It decides only acceptance: any error, any token the check refuses and
// any name etree's API could not recreate exactly (a colon beyond the
// prefix) return errOnce, and parse runs the two passes to decide. For a
// document it accepts, the two passes accept it too and build the same
// tree: a strict parse yields the tokens a non-strict one does on input
// both accept, the round-trip check over every token passes where the
// validator's Validate passes, which is where the check over the markup
// passes (TestRoundTripAgreesWithValidator), and the tree is built with
// the steps of etree's reader (TestCase07_ParseOnceMatchesTwoPasses).
func parseOnce(b []byte) (*etree.Document, error) {
	doc := etree.NewDocument()
	d := xml.NewDecoder(bytes.NewReader(b))
	// As etree reads: strict, no entities beyond XML's, and the declared
	// encoding passed through unconverted.
	d.Strict = true
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	stack := []*etree.Element{&doc.Element}
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			// The checks parseTwice makes of the finished document decide
			// these; a DTD or a missing root is never accepted here.
			if len(stack) != 1 || doc.Root() == nil {
				return nil, errOnce
			}
			for _, t := range doc.Child {
				if _, ok := t.(*etree.Directive); ok {
					return nil, errOnce
				}
			}
			doc.ReadSettings = etree.ReadSettings{MaxDepth: MaxDepth}
			return doc, nil
		}
		if err != nil {
			return nil, errOnce
		}
		if !checkToken(tok) {
			return nil, errOnce
		}
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) > MaxDepth {
				return nil, errOnce
			}
			if !plainName(t.Name) {
				return nil, errOnce
			}
			el := etree.NewElement(t.Name.Local)
			el.Space = t.Name.Space
			for _, a := range t.Attr {
				if !plainName(a.Name) {
					return nil, errOnce
				}
				key := a.Name.Local
				if a.Name.Space != "" {
					key = a.Name.Space + ":" + key
				}
				el.CreateAttr(key, a.Value)
			}
			top.AddChild(el)
			stack = append(stack, el)
		case xml.EndElement:
			if len(stack) == 1 || top.Tag != t.Name.Local || top.Space != t.Name.Space {
				return nil, errOnce
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			c := top.CreateText("")
			c.SetData(string(t)) // sets the whitespace flag as etree's reader does
		case xml.Comment:
			top.CreateComment(string(t))
		case xml.Directive:
			top.CreateDirective(string(t))
		case xml.ProcInst:
			top.CreateProcInst(t.Target, string(t.Inst))
		}
	}
}

// plainName reports a name etree's API recreates as the tokeniser read
// it: a local name without a colon, and a prefix without one.
func plainName(n xml.Name) bool {
	return n.Local != "" && !strings.Contains(n.Local, ":") && !strings.Contains(n.Space, ":")
}

// checkToken is the round-trip check of one token: the shortcuts of
// survives, then the cache of start tags that passed, then CheckToken.
func checkToken(tok xml.Token) bool {
	if survives(tok) {
		return true
	}
	start, isStart := tok.(xml.StartElement)
	key, cacheable := "", false
	if isStart {
		if key, cacheable = tagKey(start); cacheable && passedTags.has(key) {
			return true
		}
	}
	if rtvalidator.CheckToken(tok) != nil {
		return false
	}
	if cacheable {
		passedTags.add(key)
	}
	return true
}
