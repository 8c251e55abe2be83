package samlxml

import (
	"encoding/xml"
	"strconv"
	"strings"
	"sync"
)

// Bounds of the cache of start tags that passed the round-trip check.
const (
	// maxPassedTags bounds the tags remembered; the cache starts afresh
	// when full. A school IdP's responses repeat a few dozen tags.
	maxPassedTags = 4096
	// maxPassedKey bounds one tag's key, so that the cache holds at most
	// about 2 MB whatever arrives.
	maxPassedKey = 512
)

// passedTags remembers start tags that passed CheckToken. CheckToken is a
// pure function of the token (it builds a fresh encoder and decoder for
// each), so a tag that passed once passes again: the check runs once per
// distinct tag instead of once per tag. A school IdP's start tags are the
// same in every response (each Attribute, AttributeValue and signature
// element), or differ only in values tagKey leaves out (IDs, instants,
// URLs). Only passes are remembered: a refused tag costs the full check
// every time, as before. The cache changes no outcome, only
// what the check costs (issue 13: CheckToken was two thirds of parsing a
// response).
var passedTags = &tagCache{m: make(map[string]struct{}, 256)}

type tagCache struct {
	mu sync.RWMutex
	m  map[string]struct{}
}

// tagKey encodes a start tag without ambiguity: every part is preceded by
// its length. ok is false when the key would be longer than maxPassedKey.
//
// The value of an attribute that is not a namespace declaration stands in
// the key only as "safe" when every byte is printable ASCII other than
// the five the encoder escapes ("&'<>): CheckToken's outcome cannot depend
// on such a value. The encoder writes it unchanged and the decoder reads
// it back unchanged, and CheckToken's comparison reads the values of
// namespace declarations only, which are never folded (see
// TestCase07_PassedTagCacheChangesNoOutcome). So the tags that carry IDs,
// instants and URLs, different in every message, are checked once too.
func tagKey(t xml.StartElement) (string, bool) {
	n := len(t.Name.Space) + len(t.Name.Local)
	for _, a := range t.Attr {
		n += len(a.Name.Space) + len(a.Name.Local)
		if !foldValue(a) {
			n += len(a.Value)
		}
	}
	if n > maxPassedKey {
		return "", false
	}
	var sb strings.Builder
	sb.Grow(n + 8*(2+3*len(t.Attr)))
	part := func(s string) {
		sb.WriteString(strconv.Itoa(len(s)))
		sb.WriteByte(':')
		sb.WriteString(s)
	}
	part(t.Name.Space)
	part(t.Name.Local)
	for _, a := range t.Attr {
		part(a.Name.Space)
		part(a.Name.Local)
		if foldValue(a) {
			sb.WriteByte('s')
		} else {
			sb.WriteByte('v')
			part(a.Value)
		}
	}
	return sb.String(), true
}

// foldValue reports an attribute whose value the key leaves out (see
// tagKey).
func foldValue(a xml.Attr) bool {
	if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
		return false
	}
	for i := 0; i < len(a.Value); i++ {
		switch c := a.Value[i]; {
		case c < 0x21 || c > 0x7e, c == '"', c == '&', c == '\'', c == '<', c == '>':
			return false
		}
	}
	return true
}

func (c *tagCache) has(key string) bool {
	c.mu.RLock()
	_, ok := c.m[key]
	c.mu.RUnlock()
	return ok
}

func (c *tagCache) add(key string) {
	c.mu.Lock()
	if len(c.m) >= maxPassedTags {
		clear(c.m)
	}
	c.m[key] = struct{}{}
	c.mu.Unlock()
}
