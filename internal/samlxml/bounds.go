package samlxml

import (
	"bytes"
	"errors"
	"fmt"
)

// Bounds of the first pass (SECURITY.md cases 17 and 18). A school IdP's
// response has a few dozen elements for the envelope and the signatures
// and one or two per attribute value: a few hundred in all, a thousand for
// a member of very many groups. Entra ID, for one, sends at most 150 groups
// in a SAML token and a link to Graph beyond that.
const (
	// MaxElements bounds the elements of a message. Every later pass costs
	// time per element (the round-trip check alone about 2.5 µs for a
	// start tag and its end tag), so this bound, not the size limit, is
	// what keeps the worst message cheap to refuse.
	MaxElements = 2048
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
)

// ErrTooManyNodes is returned for a message over one of the bounds above.
var ErrTooManyNodes = errors.New("saml message has too many elements, attributes or other nodes")

// ErrDuplicateAttribute is returned for an element that repeats an
// attribute name (prefix and local name as written): not well-formed XML,
// and etree would keep only the last value.
var ErrDuplicateAttribute = fmt.Errorf("%w: duplicate attribute", ErrMalformed)

// firstPass walks b's markup once, without decoding, and refuses as soon
// as a bound is crossed: nesting deeper than MaxDepth; more elements,
// attributes or other nodes than allowed; too many namespace declarations.
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
func firstPass(b []byte) error {
	p := pass{b: b}
	return p.run()
}

type pass struct {
	b                             []byte
	depth, elements, attrs, other int
	nsDecls                       int
	ns                            map[string]bool // distinct "name=URI" declarations
	key                           []byte
	names                         [][]byte // attribute names of the current start tag
}

func (p *pass) run() error {
	b := p.b
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return nil
		}
		i += j + 1
		if i >= len(b) {
			return ErrMalformed
		}
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
			if p.other++; p.other > MaxOtherNodes {
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
			if p.other++; p.other > MaxOtherNodes {
				return ErrTooManyNodes
			}
			k := bytes.Index(b[i:], end)
			if k < 0 {
				return ErrMalformed
			}
			i += k + len(end)
		default:
			if p.elements++; p.elements > MaxElements {
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
		if len(p.names) == MaxElementAttributes {
			return 0, ErrTooManyNodes
		}
		// At most MaxElementAttributes names to compare with.
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
		if p.attrs++; p.attrs > MaxAttributes {
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
