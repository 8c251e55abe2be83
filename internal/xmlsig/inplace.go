package xmlsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	// Registers the digests crypto.Hash.New makes.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"math/big"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Transform and canonicalisation URIs VerifyInPlace accepts besides
// ExcC14N.
const (
	algEnveloped       = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	algExcC14NComments = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
	nsExcC14N          = "http://www.w3.org/2001/10/xml-exc-c14n#"
	inclusiveNSLocal   = "InclusiveNamespaces"
)

// errShape is the cause for a signature that is not the one shape
// VerifyInPlace accepts; it names no input.
var errShape = errors.New("xmlsig: signature does not have the expected shape")

// VerifyInPlace verifies el's enveloped signature, its only direct
// ds:Signature child, by one of certs valid at now, on the parsed tree
// itself: el (without that signature) and its SignedInfo are canonicalised
// straight into their hashes, nothing is copied or parsed again, and after
// success el is the element to read. goxmldsig copies the element twice,
// serialises it and parses the canonical bytes back, which cost more than
// the RSA verification (issue 13).
//
// Only the shape SAML uses is accepted: SignedInfo with exclusive C14N,
// an accepted signature method and exactly one Reference to el's ID with
// the enveloped transform followed by exclusive C14N, an accepted digest;
// SignatureValue; an optional KeyInfo, which is never read (a certificate
// in the message is not trusted). ECDSA values may be r||s (XML-DSig 1.1)
// or DER. Everything else is refused before any hash is computed.
func VerifyInPlace(el *etree.Element, certs []*x509.Certificate, now time.Time) error {
	var sig *etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == "Signature" && c.NamespaceURI() == dsig.Namespace {
			if sig != nil {
				return errShape
			}
			sig = c
		}
	}
	if sig == nil {
		return ErrNoSignature
	}
	si, sv, err := signatureParts(sig)
	if err != nil {
		return err
	}
	ref, err := readSignedInfo(si)
	if err != nil {
		return err
	}
	id := ""
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == "ID" {
			id = a.Value
		}
	}
	if id == "" || ref.uri != "#"+id {
		return ErrBadSignature
	}

	h := ref.digest.New()
	if err := canonicalise(h, el, sig, ref.refPrefixes, ref.refComments); err != nil {
		return ErrBadSignature
	}
	if subtle.ConstantTimeCompare(h.Sum(nil), ref.digestValue) != 1 {
		return ErrBadSignature
	}
	sh := ref.sigHash.New()
	if err := canonicalise(sh, si, nil, ref.siPrefixes, ref.siComments); err != nil {
		return ErrBadSignature
	}
	sum := sh.Sum(nil)
	value, err := leafText(sv)
	if err != nil {
		return ErrBadSignature
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(value), ""))
	if err != nil || len(raw) == 0 {
		return ErrBadSignature
	}
	for _, cert := range certs {
		if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
			continue
		}
		if verifyDigest(cert.PublicKey, ref.method, ref.sigHash, sum, raw) {
			return nil
		}
	}
	return ErrBadSignature
}

// reference is what a SignedInfo says, read from the tree that its
// canonical form, and so the signature, covers.
type reference struct {
	method      string
	sigHash     crypto.Hash
	siPrefixes  string
	siComments  bool
	uri         string
	refPrefixes string
	refComments bool
	digest      crypto.Hash
	digestValue []byte
}

// dsChildren returns el's child elements, refusing any that is not in the
// XML-DSig namespace.
func dsChildren(el *etree.Element) ([]*etree.Element, error) {
	cs := el.ChildElements()
	for _, c := range cs {
		if c.NamespaceURI() != dsig.Namespace {
			return nil, errShape
		}
	}
	return cs, nil
}

// signatureParts returns a Signature's SignedInfo and SignatureValue: it
// must have exactly those, in that order, and at most a KeyInfo after.
func signatureParts(sig *etree.Element) (si, sv *etree.Element, err error) {
	cs, err := dsChildren(sig)
	if err != nil {
		return nil, nil, err
	}
	if len(cs) < 2 || len(cs) > 3 || cs[0].Tag != "SignedInfo" || cs[1].Tag != "SignatureValue" ||
		(len(cs) == 3 && cs[2].Tag != "KeyInfo") {
		return nil, nil, errShape
	}
	return cs[0], cs[1], nil
}

func readSignedInfo(si *etree.Element) (*reference, error) {
	cs, err := dsChildren(si)
	if err != nil {
		return nil, err
	}
	if len(cs) != 3 || cs[0].Tag != "CanonicalizationMethod" || cs[1].Tag != "SignatureMethod" || cs[2].Tag != "Reference" {
		return nil, errShape
	}
	r := &reference{}
	if r.siComments, r.siPrefixes, err = c14nMethod(cs[0]); err != nil {
		return nil, err
	}
	if len(cs[1].ChildElements()) != 0 {
		return nil, errShape
	}
	r.method = algorithm(cs[1])
	var ok bool
	if r.sigHash, ok = signatureHash(r.method); !ok {
		return nil, ErrWeakAlgorithm
	}

	ref := cs[2]
	for _, a := range ref.Attr {
		switch {
		case a.Space == "" && a.Key == "URI":
			r.uri = a.Value
		case a.Space == "" && (a.Key == "Id" || a.Key == "Type"):
		default:
			return nil, errShape
		}
	}
	rc, err := dsChildren(ref)
	if err != nil {
		return nil, err
	}
	if len(rc) != 3 || rc[0].Tag != "Transforms" || rc[1].Tag != "DigestMethod" || rc[2].Tag != "DigestValue" {
		return nil, errShape
	}
	ts, err := dsChildren(rc[0])
	if err != nil {
		return nil, err
	}
	if len(ts) != 2 || ts[0].Tag != "Transform" || ts[1].Tag != "Transform" ||
		algorithm(ts[0]) != algEnveloped || len(ts[0].ChildElements()) != 0 {
		return nil, errShape
	}
	if r.refComments, r.refPrefixes, err = c14nMethod(ts[1]); err != nil {
		return nil, err
	}
	if len(rc[1].ChildElements()) != 0 {
		return nil, errShape
	}
	if r.digest, ok = digestHash(algorithm(rc[1])); !ok {
		return nil, ErrWeakAlgorithm
	}
	dv, err := leafText(rc[2])
	if err != nil {
		return nil, errShape
	}
	if r.digestValue, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(dv), "")); err != nil || len(r.digestValue) != r.digest.Size() {
		return nil, ErrBadSignature
	}
	return r, nil
}

// c14nMethod reads a CanonicalizationMethod or a canonicalising Transform:
// exclusive C14N, with or without comments, and an optional
// InclusiveNamespaces PrefixList.
func c14nMethod(el *etree.Element) (comments bool, prefixes string, err error) {
	switch algorithm(el) {
	case ExcC14N:
	case algExcC14NComments:
		comments = true
	default:
		return false, "", ErrWeakAlgorithm
	}
	cs := el.ChildElements()
	switch {
	case len(cs) == 0:
	case len(cs) == 1 && cs[0].Tag == inclusiveNSLocal && cs[0].NamespaceURI() == nsExcC14N && len(cs[0].ChildElements()) == 0:
		for _, a := range cs[0].Attr {
			if a.Space == "" && a.Key == "PrefixList" {
				prefixes = a.Value
			}
		}
	default:
		return false, "", errShape
	}
	return comments, prefixes, nil
}

// algorithm returns el's unqualified Algorithm attribute.
func algorithm(el *etree.Element) string {
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == "Algorithm" {
			return a.Value
		}
	}
	return ""
}

// leafText returns the text of an element that may hold only text: a
// comment or an element inside would be left out of what etree's Text
// returns while the canonical form reads differently.
func leafText(el *etree.Element) (string, error) {
	var sb strings.Builder
	for _, t := range el.Child {
		cd, ok := t.(*etree.CharData)
		if !ok {
			return "", errShape
		}
		sb.WriteString(cd.Data)
	}
	return sb.String(), nil
}

func signatureHash(method string) (crypto.Hash, bool) {
	switch method {
	case RSASHA256, ECDSASHA256:
		return crypto.SHA256, true
	case RSASHA384, ECDSASHA384:
		return crypto.SHA384, true
	case RSASHA512, ECDSASHA512:
		return crypto.SHA512, true
	}
	return 0, false
}

func digestHash(method string) (crypto.Hash, bool) {
	switch method {
	case DigestSHA256:
		return crypto.SHA256, true
	case DigestSHA384:
		return crypto.SHA384, true
	case DigestSHA512:
		return crypto.SHA512, true
	}
	return 0, false
}

// verifyDigest checks sig over a digest made with h by pub, for method.
func verifyDigest(pub crypto.PublicKey, method string, h crypto.Hash, digest, sig []byte) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if method != RSASHA256 && method != RSASHA384 && method != RSASHA512 {
			return false
		}
		return rsa.VerifyPKCS1v15(k, h, digest, sig) == nil
	case *ecdsa.PublicKey:
		if method != ECDSASHA256 && method != ECDSASHA384 && method != ECDSASHA512 {
			return false
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) == 2*size {
			r := new(big.Int).SetBytes(sig[:size])
			s := new(big.Int).SetBytes(sig[size:])
			return ecdsa.Verify(k, digest, r, s)
		}
		// Some signers write DER, as Go's crypto.Signer returns it.
		var inner cryptobyte.String
		in := cryptobyte.String(sig)
		var r, s big.Int
		if !in.ReadASN1(&inner, asn1.SEQUENCE) || !in.Empty() || !inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&s) || !inner.Empty() {
			return false
		}
		return ecdsa.Verify(k, digest, &r, &s)
	}
	return false
}
