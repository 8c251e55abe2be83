package fedmeta

import (
	"bytes"
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/skolbro/skolbro/internal/samlmeta"
	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// maxDepth bounds element nesting. Metadata needs about 12 levels
// (nested aggregates, role descriptor, Extensions, mdui, KeyInfo).
const maxDepth = 64

// verifyDocument parses b with fixed bounds and verifies the enveloped
// signature on its root with certs only (certificates in the document are
// ignored; a certificate outside its validity period at now does not
// verify). It returns the verified root as goxmldsig re-read it from the
// digested bytes: the only tree callers may read.
//
// It does not use xmlsig.VerifyEnveloped, which refuses SHA-1 anywhere in
// the tree: an aggregate may carry entities with their own old signatures,
// which the aggregate's signature covers and which are never checked on
// their own.
func verifyDocument(b []byte, certs []*x509.Certificate, now time.Time) (*etree.Element, error) {
	root, err := readDocument(b)
	if err != nil {
		return nil, err
	}
	sigs := samlxml.Children(root, samlxml.NSDSig, "Signature")
	if len(sigs) != 1 {
		return nil, fmt.Errorf("%w: root must carry exactly one signature", ErrBadSignature)
	}
	// Refuse SHA-1 and unknown algorithms before any cryptography runs.
	if err := xmlsig.CheckAlgorithms(sigs[0]); err != nil {
		return nil, fmt.Errorf("%w: algorithm not accepted", ErrBadSignature)
	}
	sig := sigs[0]
	// A certificate in the document is never trusted: drop KeyInfo (outside
	// what is signed) and try each trusted certificate on its own.
	for _, ki := range samlxml.Children(sig, samlxml.NSDSig, "KeyInfo") {
		sig.RemoveChild(ki)
	}
	sv := samlxml.Children(sig, samlxml.NSDSig, "SignatureValue")
	if len(sv) != 1 {
		return nil, fmt.Errorf("%w: no single SignatureValue", ErrBadSignature)
	}
	value, err := samlxml.Text(sv[0])
	if err != nil {
		return nil, fmt.Errorf("%w: SignatureValue", ErrBadSignature)
	}
	for _, cert := range certs {
		v, err := xmlsig.SignatureValueFor(signatureMethod(sig), value, cert)
		if err != nil {
			continue
		}
		sv[0].SetText(v)
		ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
		ctx.Clock = dsig.NewFakeClockAt(now)
		// goxmldsig needs the Reference to be "" or "#" + the root's ID; a
		// signature over anything else does not verify.
		verified, err := ctx.Validate(root)
		if err == nil && isMetadataRoot(verified) {
			return verified, nil
		}
	}
	return nil, ErrBadSignature
}

// readDocument parses b with the bounds every metadata document gets (no
// DTD, bounded depth) and returns its root, which must be metadata. It
// verifies nothing: verifyDocument does that, or, for a pinned-TLS
// source, the connection did.
func readDocument(b []byte) (*etree.Element, error) {
	if bytes.Contains(b, []byte("<!DOCTYPE")) || bytes.Contains(b, []byte("<!ENTITY")) {
		return nil, fmt.Errorf("%w: DTD or entity declaration", ErrMalformed)
	}
	// No XML round-trip check here, unlike samlxml.Parse: what is decoded
	// is goxmldsig's re-reading of the very bytes it digested, so parser
	// differences can make a document fail to verify but cannot change what
	// a verified one says. On a large aggregate that check cost two thirds
	// of all allocation.
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{MaxDepth: maxDepth}
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, fmt.Errorf("%w: not well-formed or nested too deeply", ErrMalformed)
	}
	for _, t := range doc.Child {
		if _, ok := t.(*etree.Directive); ok {
			return nil, fmt.Errorf("%w: DTD or entity declaration", ErrMalformed)
		}
	}
	root := doc.Root()
	if !isMetadataRoot(root) {
		return nil, fmt.Errorf("%w: root is not EntitiesDescriptor or EntityDescriptor", ErrMalformed)
	}
	return root, nil
}

func isMetadataRoot(el *etree.Element) bool {
	return samlxml.Is(el, samlxml.NSMetadata, "EntitiesDescriptor") ||
		samlxml.Is(el, samlxml.NSMetadata, "EntityDescriptor")
}

// aggregateFrom reads validUntil, cacheDuration and the entities of a
// verified root.
//
// A document without validUntil is refused unless maxAge is above zero:
// it is then valid until maxAge after it was fetched.
func aggregateFrom(root *etree.Element, now, fetched time.Time, maxAge time.Duration) (*Aggregate, error) {
	var validUntil time.Time
	if vu := root.SelectAttr("validUntil"); vu != nil {
		var err error
		if validUntil, err = parseTime(vu.Value); err != nil {
			return nil, fmt.Errorf("%w: validUntil does not parse", ErrMalformed)
		}
	} else if maxAge > 0 {
		validUntil = fetched.Add(maxAge)
	} else {
		return nil, ErrNoValidUntil
	}
	if !now.Before(validUntil) {
		return nil, ErrExpired
	}
	agg := &Aggregate{
		ValidUntil:     validUntil,
		Entities:       map[string]*saml.EntityDescriptor{},
		Scopes:         map[string][]string{},
		SigningMethods: map[string][]string{},
	}
	if cd := root.SelectAttr("cacheDuration"); cd != nil {
		var d saml.Duration
		if err := d.UnmarshalText([]byte(strings.TrimSpace(cd.Value))); err != nil {
			return nil, fmt.Errorf("%w: cacheDuration does not parse", ErrMalformed)
		}
		agg.CacheDuration = time.Duration(d)
	}
	collect(root, now, agg, &bytes.Buffer{})
	return agg, nil
}

// parseTime reads an xs:dateTime; SAML requires UTC, and a value without a
// zone is read as UTC.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Parse("2006-01-02T15:04:05.999999999", s)
}

// expired reports whether el carries a validUntil that is past or unreadable.
func expired(el *etree.Element, now time.Time) bool {
	a := el.SelectAttr("validUntil")
	if a == nil {
		return false
	}
	t, err := parseTime(a.Value)
	return err != nil || !now.Before(t)
}

// collect adds the entities under el, depth first in document order, so
// that the first occurrence of an entityID wins. buf is reused for each
// entity's serialisation.
func collect(el *etree.Element, now time.Time, agg *Aggregate, buf *bytes.Buffer) {
	switch {
	case samlxml.Is(el, samlxml.NSMetadata, "EntityDescriptor"):
		addEntity(el, now, agg, buf)
	case samlxml.Is(el, samlxml.NSMetadata, "EntitiesDescriptor"):
		if expired(el, now) {
			agg.Skipped += countEntities(el)
			return
		}
		for _, c := range el.ChildElements() {
			collect(c, now, agg, buf)
		}
	}
}

func countEntities(el *etree.Element) int {
	if samlxml.Is(el, samlxml.NSMetadata, "EntityDescriptor") {
		return 1
	}
	n := 0
	if samlxml.Is(el, samlxml.NSMetadata, "EntitiesDescriptor") {
		for _, c := range el.ChildElements() {
			n += countEntities(c)
		}
	}
	return n
}

// addEntity decodes one EntityDescriptor of the verified tree. The tree is
// this package's own copy and is dropped afterwards, so the entity is
// given its in-scope namespace declarations in place rather than copied.
func addEntity(el *etree.Element, now time.Time, agg *Aggregate, buf *bytes.Buffer) {
	id := el.SelectAttrValue("entityID", "")
	if id == "" || agg.Entities[id] != nil || expired(el, now) {
		agg.Skipped++
		return
	}
	declareInScope(el)
	buf.Reset()
	el.WriteTo(buf, &etree.WriteSettings{})
	ed := &saml.EntityDescriptor{}
	if err := xml.Unmarshal(buf.Bytes(), ed); err != nil || ed.EntityID != id {
		agg.Skipped++
		return
	}
	agg.Entities[id] = ed
	if sc := scopes(el); len(sc) > 0 {
		agg.Scopes[id] = sc
	}
	if len(ed.SPSSODescriptors) > 0 {
		if ms := samlmeta.EntitySigningMethods(el); len(ms) > 0 {
			agg.SigningMethods[id] = ms
		}
	}
}

// scopes returns the literal shibmd:Scope values of an entity's
// IDPSSODescriptors, as samlmeta.Scopes reads them.
func scopes(ent *etree.Element) []string {
	var out []string
	for _, idp := range samlxml.Children(ent, samlxml.NSMetadata, "IDPSSODescriptor") {
		for _, ext := range samlxml.Children(idp, samlxml.NSMetadata, "Extensions") {
			for _, sc := range samlxml.Children(ext, samlmeta.NSShibMD, "Scope") {
				if v := strings.TrimSpace(sc.SelectAttrValue("regexp", "false")); v == "true" || v == "1" {
					continue
				}
				if s, err := samlxml.Text(sc); err == nil && s != "" {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// declareInScope adds to el every namespace declaration in scope at el
// that el does not make itself, so that el reads the same on its own:
// exclusive C14N output, which verified trees come from, declares a prefix
// only where it is first used.
func declareInScope(el *etree.Element) {
	declared := map[string]bool{}
	for _, a := range el.Attr {
		if p, ok := nsDecl(a); ok {
			declared[p] = true
		}
	}
	for p := el.Parent(); p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			if prefix, ok := nsDecl(a); ok && !declared[prefix] {
				declared[prefix] = true // the nearest declaration wins
				el.Attr = append(el.Attr, a)
			}
		}
	}
}

// nsDecl reports whether a declares a namespace, and for which prefix
// ("" for the default namespace).
func nsDecl(a etree.Attr) (string, bool) {
	if a.Space == "xmlns" {
		return a.Key, true
	}
	return "", a.Space == "" && a.Key == "xmlns"
}

// detached returns a copy of el that declares on itself every namespace in
// scope at el.
func detached(el *etree.Element) *etree.Element {
	c := el.Copy()
	declared := map[string]bool{}
	for _, a := range c.Attr {
		if p, ok := nsDecl(a); ok {
			declared[p] = true
		}
	}
	for p := el.Parent(); p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			if prefix, ok := nsDecl(a); ok && !declared[prefix] {
				declared[prefix] = true
				c.Attr = append(c.Attr, a)
			}
		}
	}
	return c
}

func signatureMethod(sig *etree.Element) string {
	for _, si := range samlxml.Children(sig, samlxml.NSDSig, "SignedInfo") {
		for _, sm := range samlxml.Children(si, samlxml.NSDSig, "SignatureMethod") {
			return sm.SelectAttrValue("Algorithm", "")
		}
	}
	return ""
}
