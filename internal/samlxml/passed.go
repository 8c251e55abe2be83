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
// distinct tag instead of once per tag. Most of a school IdP's start tags
// are the same in every response (each Attribute, AttributeValue and
// signature element); those with IDs and instants are not, and are
// checked each time. Only passes are remembered: a refused tag costs the
// full check every time, as before. The cache changes no outcome, only
// what the check costs (issue 13: CheckToken was two thirds of parsing a
// response).
var passedTags = &tagCache{m: make(map[string]struct{}, 256)}

type tagCache struct {
	mu sync.RWMutex
	m  map[string]struct{}
}

// tagKey encodes a start tag without ambiguity: every part is preceded by
// its length. ok is false when the key would be longer than maxPassedKey.
func tagKey(t xml.StartElement) (string, bool) {
	n := len(t.Name.Space) + len(t.Name.Local)
	for _, a := range t.Attr {
		n += len(a.Name.Space) + len(a.Name.Local) + len(a.Value)
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
		part(a.Value)
	}
	return sb.String(), true
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
