package xmlsig

import (
	"errors"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/beevik/etree"
)

// nsXML is the namespace the xml prefix is bound to by definition; it is
// never declared in canonical output.
const nsXML = "http://www.w3.org/XML/1998/namespace"

// errC14N is returned for a tree that has no canonical form: a prefix
// that is not declared, or a declaration inside the element.
var errC14N = errors.New("xmlsig: element cannot be canonicalised")

// binding is one namespace prefix ("" for the default namespace) bound to
// a URI.
type binding struct{ prefix, uri string }

// lookup returns the nearest binding of prefix in bs (later entries are
// nearer).
func lookup(bs []binding, prefix string) (string, bool) {
	for i := len(bs) - 1; i >= 0; i-- {
		if bs[i].prefix == prefix {
			return bs[i].uri, true
		}
	}
	return "", false
}

// declaration reports whether a is a namespace declaration, and the prefix
// it declares ("" for xmlns="...").
func declaration(a etree.Attr) (string, bool) {
	if a.Space == "xmlns" {
		return a.Key, true
	}
	return "", a.Space == "" && a.Key == "xmlns"
}

// excC14N writes the exclusive canonical form (Exclusive XML
// Canonicalization 1.0) of an element of a parsed tree, straight from the
// tree: nothing is copied, detached or parsed again, so a signature is
// checked and made on the very element the caller reads or sends. The
// namespace declarations of the element's ancestors are in scope, as in a
// document subset.
type excC14N struct {
	w io.Writer
	// exclude is left out with its subtree: the enveloped signature.
	exclude *etree.Element
	// inclusive are the prefixes of an InclusiveNamespaces PrefixList
	// ("" for #default), rendered as inclusive C14N renders them.
	inclusive []string
	comments  bool

	inScope  []binding // every declaration from the root down to the element
	rendered []binding // what the output has declared, nearest last
	buf      []byte
	// decls and attrs hold the current start tag's declarations and
	// attributes from declStart and attrStart on; they are reused by the
	// children once the tag is written.
	decls     []binding
	attrs     []sortedAttr
	declStart int
	err       error
}

type sortedAttr struct {
	uri  string
	attr etree.Attr
}

// c14nPool keeps canonicalisers with their buffers: a login canonicalises
// three or four elements, and growing a fresh buffer each time allocated
// more than everything else the signature code does.
var c14nPool = sync.Pool{New: func() any { return &excC14N{buf: make([]byte, 0, c14nFlush+512)} }}

// c14nFlush is the buffered output at which the canonicaliser writes on.
const c14nFlush = 4096

// canonicalise writes the canonical form of el to w.
func canonicalise(w io.Writer, el, exclude *etree.Element, prefixList string, comments bool) error {
	c := c14nPool.Get().(*excC14N)
	defer func() {
		// Nothing of the message stays in the pool: the buffer and the
		// attributes held values of it.
		clear(c.buf[:cap(c.buf)])
		clear(c.attrs[:cap(c.attrs)])
		c.w, c.exclude = nil, nil
		c14nPool.Put(c)
	}()
	c.reset(w, exclude, comments)
	for _, p := range strings.Fields(prefixList) {
		if p == "#default" {
			p = ""
		}
		c.inclusive = append(c.inclusive, p)
	}
	// Declarations of the ancestors, the root's first, so that nearer ones
	// come later and win.
	var chain []*etree.Element
	for p := el.Parent(); p != nil; p = p.Parent() {
		chain = append(chain, p)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		c.declare(chain[i])
	}
	if c.err != nil {
		return c.err
	}
	// Nothing is rendered before the apex; an empty default namespace is
	// what a parser assumes, so xmlns="" is never needed at the top.
	c.rendered = append(c.rendered, binding{"", ""})
	c.element(el)
	if c.err == nil {
		c.flush()
	}
	return c.err
}

// nsXMLNS is the namespace of namespace declarations themselves.
const nsXMLNS = "http://www.w3.org/2000/xmlns/"

// declare adds el's namespace declarations to those in scope. A document
// that binds the xml prefix elsewhere, binds xmlns, or binds another
// prefix to their namespaces is not namespace-well-formed: it has no
// canonical form.
// reset prepares a pooled canonicaliser for a new element, keeping the
// capacity of its slices.
func (c *excC14N) reset(w io.Writer, exclude *etree.Element, comments bool) {
	c.w, c.exclude, c.comments, c.err = w, exclude, comments, nil
	c.inclusive = c.inclusive[:0]
	c.inScope, c.rendered = c.inScope[:0], c.rendered[:0]
	c.buf, c.decls, c.attrs = c.buf[:0], c.decls[:0], c.attrs[:0]
	c.declStart = 0
}

func (c *excC14N) declare(el *etree.Element) {
	for _, a := range el.Attr {
		p, ok := declaration(a)
		if !ok {
			continue
		}
		if (p == "xml") != (a.Value == nsXML) || p == "xmlns" || a.Value == nsXMLNS {
			c.err = errC14N
		}
		c.inScope = append(c.inScope, binding{p, a.Value})
	}
}

func (c *excC14N) flush() {
	if len(c.buf) > 0 && c.err == nil {
		_, c.err = c.w.Write(c.buf)
	}
	c.buf = c.buf[:0]
}

func (c *excC14N) str(s string) {
	c.buf = append(c.buf, s...)
	if len(c.buf) > c14nFlush {
		c.flush()
	}
}

// render declares prefix in the output unless the nearest output ancestor
// has already declared it with the same URI.
func (c *excC14N) render(prefix, uri string) {
	if r, ok := lookup(c.rendered, prefix); ok && r == uri {
		return
	}
	if slices.ContainsFunc(c.decls[c.declStart:], func(b binding) bool { return b.prefix == prefix }) {
		return
	}
	c.decls = append(c.decls, binding{prefix, uri})
}

func (c *excC14N) element(el *etree.Element) {
	if c.err != nil {
		return
	}
	scope, out := len(c.inScope), len(c.rendered)
	if c.declare(el); c.err != nil {
		return
	}

	// The namespaces el visibly utilises: its own prefix and those of its
	// attributes (an unprefixed attribute is in no namespace).
	c.declStart = len(c.decls)
	attrStart := len(c.attrs)
	uri, ok := lookup(c.inScope, el.Space)
	if !ok && el.Space != "" {
		c.err = errC14N
		return
	}
	c.render(el.Space, uri)
	for _, a := range el.Attr {
		if _, ok := declaration(a); ok {
			continue
		}
		au := ""
		switch a.Space {
		case "":
		case "xml":
			au = nsXML
		default:
			au, ok = lookup(c.inScope, a.Space)
			if !ok {
				c.err = errC14N
				return
			}
			c.render(a.Space, au)
		}
		c.attrs = append(c.attrs, sortedAttr{au, a})
	}
	for _, p := range c.inclusive {
		if u, ok := lookup(c.inScope, p); ok {
			c.render(p, u)
		}
	}
	// Namespace declarations by prefix (the default one first), then
	// attributes by namespace URI and local name (unqualified first).
	decls, attrs := c.decls[c.declStart:], c.attrs[attrStart:]
	slices.SortFunc(decls, func(a, b binding) int { return strings.Compare(a.prefix, b.prefix) })
	slices.SortFunc(attrs, func(a, b sortedAttr) int {
		if n := strings.Compare(a.uri, b.uri); n != 0 {
			return n
		}
		return strings.Compare(a.attr.Key, b.attr.Key)
	})

	c.str("<")
	c.qname(el.Space, el.Tag)
	for _, d := range decls {
		if d.prefix == "" {
			c.str(` xmlns="`)
		} else {
			c.str(" xmlns:")
			c.str(d.prefix)
			c.str(`="`)
		}
		c.attrValue(d.uri)
		c.str(`"`)
		c.rendered = append(c.rendered, d)
	}
	for _, a := range attrs {
		c.str(" ")
		c.qname(a.attr.Space, a.attr.Key)
		c.str(`="`)
		c.attrValue(a.attr.Value)
		c.str(`"`)
	}
	c.str(">")
	c.decls, c.attrs = c.decls[:c.declStart], c.attrs[:attrStart]

	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.Element:
			if t != c.exclude {
				c.element(t)
			}
		case *etree.CharData:
			c.text(t.Data)
		case *etree.Comment:
			if c.comments {
				c.str("<!--")
				c.str(t.Data)
				c.str("-->")
			}
		case *etree.ProcInst:
			c.str("<?")
			c.str(t.Target)
			if t.Inst != "" {
				c.str(" ")
				c.str(t.Inst)
			}
			c.str("?>")
		case *etree.Directive:
			c.err = errC14N
		}
		if c.err != nil {
			return
		}
	}
	c.str("</")
	c.qname(el.Space, el.Tag)
	c.str(">")
	c.inScope, c.rendered = c.inScope[:scope], c.rendered[:out]
}

func (c *excC14N) qname(space, local string) {
	if space != "" {
		c.str(space)
		c.str(":")
	}
	c.str(local)
}

// text escapes character data as C14N requires.
func (c *excC14N) text(s string) {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\r':
			esc = "&#xD;"
		default:
			continue
		}
		c.str(s[start:i])
		c.str(esc)
		start = i + 1
	}
	c.str(s[start:])
}

// attrValue escapes an attribute value as C14N requires.
func (c *excC14N) attrValue(s string) {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '"':
			esc = "&quot;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			continue
		}
		c.str(s[start:i])
		c.str(esc)
		start = i + 1
	}
	c.str(s[start:])
}
