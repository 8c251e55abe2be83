package samlxml

import (
	"bytes"
	"errors"
	"fmt"
)

// Bounds of the first pass for messages (SECURITY.md cases 17 and 18). A
// school IdP's response has a few dozen elements for the envelope and the
// signatures and one or two per attribute value: a hundred or two in all,
// a thousand only for a member of very many groups (Entra ID, for one,
// sends at most 150 groups in a SAML token and a link to Graph beyond
// that). An AuthnRequest has a handful.
const (
	// MaxElements bounds the elements of a message. The round-trip check
	// costs about 2.5 µs a start tag, whatever the tag holds, and the tree
	// and the signature's canonical form cost more per element; with the
	// size limit this bound keeps the costliest message a few milliseconds
	// of work (BenchmarkHostileBodies in internal/upstream/samlsp). 4096
	// would cost about 10 ms in the round-trip check alone.
	MaxElements = 1024
	// MaxAttributes bounds the attributes of a message, namespace
	// declarations included (IdPs that repeat xs and xsi declare two and
	// use a third attribute on every value).
	MaxAttributes = 4096
	// MaxElementAttributes bounds the attributes of one element: the
	// round-trip check is quadratic in an element's prefixed attributes.
	MaxElementAttributes = 64
	// MaxOtherNodes bounds comments, processing instructions and CDATA
	// sections, which SAML messages do not need.
	MaxOtherNodes = 64
	// MaxMarkupBytes bounds the bytes of markup: tags with their names and
	// attribute values, comments, processing instructions and CDATA
	// sections, everything but the text between tags. The round-trip check
	// reads, re-encodes and re-reads the markup, so a byte of it costs
	// three times a byte of text. It allows 750 values whose start tags
	// declare xs and xsi, as some IdPs write them (about 165 bytes of
	// markup a value), and twice as many plain ones.
	MaxMarkupBytes = 128 << 10
	// MaxReferences bounds entity and character references ('&'). A
	// response needs a few dozen at most (some IdPs end every line of
	// base64 with "&#xD;"); each costs a lookup in every pass.
	MaxReferences = 4096
)

// limits are the bounds of the first pass.
type limits struct {
	elements, attributes, elementAttributes, otherNodes, markupBytes, references int
}

// messageLimits bound every message a browser brings (responses and
// requests): the constants above.
var messageLimits = limits{
	elements: MaxElements, attributes: MaxAttributes, elementAttributes: MaxElementAttributes,
	otherNodes: MaxOtherNodes, markupBytes: MaxMarkupBytes, references: MaxReferences,
}

// metadataLimits bound metadata, which an admin configures and the bridge
// reads at start: an IdP's metadata (ADFS lists every claim type it
// offers) or a file of several vendors has more elements than any message.
var metadataLimits = limits{
	elements: 1 << 16, attributes: 1 << 17, elementAttributes: 1024,
	otherNodes: 1 << 12, markupBytes: MaxMessageBytes, references: MaxMessageBytes,
}

// ErrTooManyNodes is returned for a message over one of the bounds above.
var ErrTooManyNodes = errors.New("saml message has too many elements, attributes or other nodes")

// ErrDuplicateAttribute is returned for an element that repeats an
// attribute name (prefix and local name as written): not well-formed XML,
// and etree would keep only the last value.
var ErrDuplicateAttribute = fmt.Errorf("%w: duplicate attribute", ErrMalformed)

// firstPass walks b's markup once, without decoding, and refuses as soon
// as a bound is crossed: nesting deeper than MaxDepth; more elements,
// attributes, markup, references or other nodes than l allows;
// too many namespace declarations.
// It runs before the round-trip check and before any tree is built, so
// that a hostile message costs one pass over its bytes.
//
// It also refuses an element that repeats an attribute name, which it
// sees as written.
//
// It is not a parser: it finds where markup starts and ends as
// encoding/xml does (a quoted attribute value may hold '>'; comments and
// CDATA sections end only at their closing sequence), and counts. Where it
// cannot tell, it counts more, never less, or refuses input that
// encoding/xml refuses too; the parsers that follow refuse whatever else is
// not well-formed.
//
// It returns the markup of b: b without the text between tags. Only the
// markup can fail the round-trip check (text always survives it, and the
// strict parse that follows refuses text that is not XML), so the check
// reads that and not the text, which is most of a large message.
func firstPass(b []byte, l limits) ([]byte, error) {
	// An upper bound: '&' in comments and CDATA counts too.
	if bytes.Count(b, []byte("&")) > l.references {
		return nil, ErrTooManyNodes
	}
	p := pass{b: b, l: l, markup: make([]byte, 0, len(b))}
	if err := p.run(); err != nil {
		return nil, err
	}
	return p.markup, nil
}

type pass struct {
	b                             []byte
	l                             limits
	depth, elements, attrs, other int
	nsDecls                       int
	ns                            map[string]bool // distinct "name=URI" declarations
	key                           []byte
	names                         [][]byte // attribute names of the current start tag
	markup                        []byte
}

func (p *pass) run() error {
	b := p.b
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return nil
		}
		start := i + j
		i = start + 1
		if i >= len(b) {
			return ErrMalformed
		}
		// Every case below leaves i just after the markup that began at
		// start, or returns.
		switch b[i] {
		case '/':
			// An end tag: its name and optional space, then '>'.
			k := bytes.IndexByte(b[i:], '>')
			if k < 0 {
				return ErrMalformed
			}
			i += k + 1
			if p.depth--; p.depth < 0 {
				return ErrMalformed
			}
		case '?':
			if p.other++; p.other > p.l.otherNodes {
				return ErrTooManyNodes
			}
			k := bytes.Index(b[i:], []byte("?>"))
			if k < 0 {
				return ErrMalformed
			}
			i += k + 2
		case '!':
			var end []byte
			switch {
			case bytes.HasPrefix(b[i:], []byte("!--")):
				i += 3
				end = []byte("-->")
			case bytes.HasPrefix(b[i:], []byte("![CDATA[")):
				i += 8
				end = []byte("]]>")
			case p.depth == 0:
				// A declaration outside the root, as a DTD is (DOCTYPE
				// and ENTITY are refused before this pass, in any case).
				return ErrDTD
			default:
				// SAML has no use for a declaration inside a message.
				return ErrMalformed
			}
			if p.other++; p.other > p.l.otherNodes {
				return ErrTooManyNodes
			}
			k := bytes.Index(b[i:], end)
			if k < 0 {
				return ErrMalformed
			}
			i += k + len(end)
		default:
			if p.elements++; p.elements > p.l.elements {
				return ErrTooManyNodes
			}
			if p.depth++; p.depth > MaxDepth {
				return ErrTooDeep
			}
			next, err := p.startTag(i)
			if err != nil {
				return err
			}
			i = next
		}
		// Checked once a construct is read: each is read in one go, and
		// the whole message is within the size limit.
		if len(p.markup)+i-start > p.l.markupBytes {
			return ErrTooManyNodes
		}
		p.markup = append(p.markup, b[start:i]...)
	}
}

// startTag reads the start tag whose name begins at b[i], up to and with
// its '>', counting its attributes and namespace declarations, and returns
// where the tag ends. It reads attributes as encoding/xml does when not
// strict (the round-trip check is not): a name without a value counts, and
// an unquoted value is a run of letters, digits, '_', ':' and '-'.
func (p *pass) startTag(i int) (int, error) {
	b := p.b
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
	stop := func(c byte) bool {
		return isSpace(c) || c == '=' || c == '>' || c == '/' || c == '"' || c == '\'' || c == '<'
	}
	start := i
	for i < len(b) && !stop(b[i]) {
		i++
	}
	if i == start {
		return 0, ErrMalformed
	}
	p.names = p.names[:0]
	for {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) {
			return 0, ErrMalformed
		}
		switch b[i] {
		case '>':
			return i + 1, nil
		case '/':
			if i+1 < len(b) && b[i+1] == '>' {
				p.depth--
				return i + 2, nil
			}
			return 0, ErrMalformed
		}
		// An attribute's name.
		start := i
		for i < len(b) && !stop(b[i]) {
			i++
		}
		if i == start {
			return 0, ErrMalformed
		}
		name := b[start:i]
		if len(p.names) == p.l.elementAttributes {
			return 0, ErrTooManyNodes
		}
		// At most l.elementAttributes names to compare with.
		for _, seen := range p.names {
			if bytes.Equal(seen, name) {
				return 0, ErrDuplicateAttribute
			}
		}
		p.names = append(p.names, name)
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		var value []byte
		if i < len(b) && b[i] == '=' {
			i++
			for i < len(b) && isSpace(b[i]) {
				i++
			}
			if i >= len(b) {
				return 0, ErrMalformed
			}
			if q := b[i]; q == '"' || q == '\'' {
				k := bytes.IndexByte(b[i+1:], q)
				if k < 0 {
					return 0, ErrMalformed
				}
				value = b[i+1 : i+1+k]
				// encoding/xml refuses '<' in a value, strict or not.
				if bytes.IndexByte(value, '<') >= 0 {
					return 0, ErrMalformed
				}
				i += k + 2
			} else {
				start := i
				for i < len(b) && unquoted(b[i]) {
					i++
				}
				if i == start {
					return 0, ErrMalformed
				}
				value = b[start:i]
			}
		}
		if bytes.Equal(name, []byte("xmlns")) || bytes.HasPrefix(name, []byte("xmlns:")) {
			if err := p.namespace(name, value); err != nil {
				return 0, err
			}
		}
		if p.attrs++; p.attrs > p.l.attributes {
			return 0, ErrTooManyNodes
		}
	}
}

func unquoted(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == ':' || c == '-'
}

// namespace counts one namespace declaration (SECURITY.md case 18).
func (p *pass) namespace(name, value []byte) error {
	if p.nsDecls++; p.nsDecls > MaxNamespaceDeclOccurrences {
		return ErrTooManyNS
	}
	p.key = append(append(append(p.key[:0], name...), '='), value...)
	if p.ns[string(p.key)] {
		return nil
	}
	if len(p.ns) >= MaxNamespaceDecls {
		return ErrTooManyNS
	}
	if p.ns == nil {
		p.ns = make(map[string]bool, 8)
	}
	p.ns[string(p.key)] = true
	return nil
}
