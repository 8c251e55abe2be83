package samlsp

import (
	"errors"
	"strings"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// Algorithm URIs checked here beyond those in xmlsig.
const (
	algEnveloped      = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	algExcC14N        = "http://www.w3.org/2001/10/xml-exc-c14n#"
	algExcC14NComment = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
)

// Fixed causes; goxmldsig's own errors quote input (algorithm URIs,
// namespace prefixes), so they are never passed on.
var (
	errSignatureShape     = errors.New("signature does not have the expected shape")
	errSignatureReference = errors.New("signature does not reference its parent")
	errSignatureMethod    = errors.New("signature or digest algorithm not accepted")
	errSignatureInvalid   = errors.New("signature does not verify with any IdP certificate")
	errSignaturePlace     = errors.New("signature in an unexpected place")
	errNoSignature        = errors.New("assertion is not signed")
)

// checkSignatures inspects every element named Signature before anything
// is verified: it must be a ds:Signature, the direct child of the Response
// or of the assertion (at most one each), use only accepted algorithms,
// exclusive C14N and the enveloped transform, and carry a single Reference
// to its parent's ID. Anything else (signatures inside Object, Extensions,
// Advice, or a second one) is refused.
func checkSignatures(sigs []*etree.Element, root, assertion *etree.Element) *Error {
	seen := map[*etree.Element]bool{}
	for _, sig := range sigs {
		parent := sig.Parent()
		if !samlxml.Is(sig, samlxml.NSDSig, "Signature") || parent == nil ||
			(parent != root && parent != assertion) || seen[parent] {
			return refuse(ReasonSignaturePlacement, errSignaturePlace)
		}
		seen[parent] = true
	}
	// Algorithms first, so that a SHA-1 signature gets its own reason
	// whatever else is wrong with it.
	for _, sig := range sigs {
		if e := checkAlgorithms(sig); e != nil {
			return e
		}
	}
	for _, sig := range sigs {
		if e := checkShape(sig); e != nil {
			return e
		}
	}
	return nil
}

func algorithmRefusal(uri string) *Error {
	if strings.Contains(strings.ToLower(uri), "sha1") {
		return refuse(ReasonSHA1, errSignatureMethod)
	}
	return refuse(ReasonBadAlgorithm, errSignatureMethod)
}

func checkAlgorithms(sig *etree.Element) *Error {
	for _, si := range samlxml.Children(sig, samlxml.NSDSig, "SignedInfo") {
		for _, sm := range samlxml.Children(si, samlxml.NSDSig, "SignatureMethod") {
			if a := plainAttr(sm, "Algorithm"); !xmlsig.AcceptedSignatureMethods[a] {
				return algorithmRefusal(a)
			}
		}
		for _, cm := range samlxml.Children(si, samlxml.NSDSig, "CanonicalizationMethod") {
			if a := plainAttr(cm, "Algorithm"); a != algExcC14N && a != algExcC14NComment {
				return refuse(ReasonBadAlgorithm, errSignatureMethod)
			}
		}
		for _, ref := range samlxml.Children(si, samlxml.NSDSig, "Reference") {
			for _, dm := range samlxml.Children(ref, samlxml.NSDSig, "DigestMethod") {
				if a := plainAttr(dm, "Algorithm"); !xmlsig.AcceptedDigestMethods[a] {
					return algorithmRefusal(a)
				}
			}
			for _, ts := range samlxml.Children(ref, samlxml.NSDSig, "Transforms") {
				for _, t := range samlxml.Children(ts, samlxml.NSDSig, "Transform") {
					switch plainAttr(t, "Algorithm") {
					case algEnveloped, algExcC14N, algExcC14NComment:
					default:
						return refuse(ReasonBadAlgorithm, errSignatureMethod)
					}
				}
			}
		}
	}
	return nil
}

// onlyChildren reports whether every child element of el is a ds element
// named in names, with between lo[i] and hi[i] of names[i].
func onlyChildren(el *etree.Element, names []string, lo, hi []int) bool {
	counts := make([]int, len(names))
	for _, c := range el.ChildElements() {
		found := false
		for i, n := range names {
			if samlxml.Is(c, samlxml.NSDSig, n) {
				counts[i]++
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	for i := range names {
		if counts[i] < lo[i] || counts[i] > hi[i] {
			return false
		}
	}
	return true
}

// checkShape refuses a signature that is not exactly SignedInfo,
// SignatureValue and an optional KeyInfo, with one Reference to the ID of
// the signature's parent and the enveloped transform.
func checkShape(sig *etree.Element) *Error {
	bad := refuse(ReasonBadSignature, errSignatureShape)
	if !onlyChildren(sig, []string{"SignedInfo", "SignatureValue", "KeyInfo"}, []int{1, 1, 0}, []int{1, 1, 1}) {
		return bad
	}
	si := samlxml.Children(sig, samlxml.NSDSig, "SignedInfo")[0]
	if !onlyChildren(si, []string{"CanonicalizationMethod", "SignatureMethod", "Reference"}, []int{1, 1, 1}, []int{1, 1, 1}) {
		return bad
	}
	ref := samlxml.Children(si, samlxml.NSDSig, "Reference")[0]
	if !onlyChildren(ref, []string{"Transforms", "DigestMethod", "DigestValue"}, []int{1, 1, 1}, []int{1, 1, 1}) {
		return bad
	}
	ts := samlxml.Children(ref, samlxml.NSDSig, "Transforms")[0]
	if !onlyChildren(ts, []string{"Transform"}, []int{1}, []int{2}) {
		return bad
	}
	enveloped := false
	for _, t := range ts.ChildElements() {
		if plainAttr(t, "Algorithm") == algEnveloped {
			enveloped = true
		}
	}
	if !enveloped {
		return bad
	}
	id := plainAttr(sig.Parent(), "ID")
	if id == "" || plainAttr(ref, "URI") != "#"+id {
		return refuse(ReasonBadSignature, errSignatureReference)
	}
	return nil
}

// directSignature returns el's ds:Signature child, or nil.
func directSignature(el *etree.Element) *etree.Element {
	for _, c := range el.ChildElements() {
		if samlxml.Is(c, samlxml.NSDSig, "Signature") {
			return c
		}
	}
	return nil
}

// verify checks el's enveloped signature against the IdP's certificates
// and returns el, now the element to read: xmlsig.VerifyInPlace hashes the
// exclusive canonical form of el in the tree (without its signature), so
// what the caller reads is exactly what was signed, without the copies,
// serialisation and second parse goxmldsig's Validate makes (which cost
// more than the RSA verification, issue 13).
//
// KeyInfo is never read, so a certificate in the message is never used:
// each metadata certificate valid now is tried in turn, which also works
// during a rollover when the IdP sends no KeyInfo. An ECDSA SignatureValue
// may be r||s (XML-DSig) or DER.
func (sp *SP) verify(el *etree.Element) (*etree.Element, error) {
	if directSignature(el) == nil {
		return nil, errNoSignature
	}
	if err := xmlsig.VerifyInPlace(el, sp.IdPCerts(), sp.now()); err != nil {
		return nil, errSignatureInvalid
	}
	return el, nil
}
