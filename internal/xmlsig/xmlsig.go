// Package xmlsig signs SAML elements the way SAML peers expect: enveloped
// signature, exclusive C14N (goxmldsig's default is inclusive C14N 1.1,
// which SAML does not use), SHA-256 digest, and RSA-SHA256 or ECDSA-SHA256.
package xmlsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/skolbro/skolbro/internal/keys"
)

// Algorithm URIs the bridge signs with and accepts.
const (
	RSASHA256    = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	RSASHA384    = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
	RSASHA512    = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
	ECDSASHA256  = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
	ECDSASHA384  = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
	ECDSASHA512  = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
	DigestSHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
	DigestSHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
	DigestSHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
	ExcC14N      = "http://www.w3.org/2001/10/xml-exc-c14n#"
)

// AcceptedSignatureMethods are the signature algorithms accepted on input.
// SHA-1 is absent on purpose (SECURITY.md case 10).
var AcceptedSignatureMethods = map[string]bool{
	RSASHA256: true, RSASHA384: true, RSASHA512: true,
	ECDSASHA256: true, ECDSASHA384: true, ECDSASHA512: true,
}

// AcceptedDigestMethods are the digest algorithms accepted on input.
var AcceptedDigestMethods = map[string]bool{
	DigestSHA256: true, DigestSHA384: true, DigestSHA512: true,
}

// Signer signs elements with one key pair. It is safe for concurrent use.
type Signer struct {
	pair   *keys.Pair
	method string
}

// NewSigner returns a Signer for pair: RSA-SHA256 for RSA keys,
// ECDSA-SHA256 for ECDSA keys.
func NewSigner(pair *keys.Pair) (*Signer, error) {
	switch pair.Signer.(type) {
	case *rsa.PrivateKey:
		return &Signer{pair: pair, method: RSASHA256}, nil
	case *ecdsa.PrivateKey:
		return &Signer{pair: pair, method: ECDSASHA256}, nil
	}
	return nil, errors.New("xmlsig: unsupported key type")
}

// Pair returns the signer's key pair.
func (s *Signer) Pair() *keys.Pair { return s.pair }

// Method returns the signature method URI.
func (s *Signer) Method() string { return s.method }

// context builds a goxmldsig signing context; it is cheap and not shared,
// because goxmldsig's context holds per-call settings.
func (s *Signer) context() (*dsig.SigningContext, error) {
	signer := s.pair.Signer
	if k, ok := signer.(*ecdsa.PrivateKey); ok {
		signer = rawECDSA{k}
	}
	ctx, err := dsig.NewSigningContext(signer, [][]byte{s.pair.Cert.Raw})
	if err != nil {
		return nil, err
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(s.method); err != nil {
		return nil, err
	}
	ctx.Prefix = "ds"
	return ctx, nil
}

// SignEnveloped returns a copy of el with an enveloped ds:Signature inserted
// as the element's child directly after its saml:Issuer (where the SAML
// schema requires it), or first when there is no Issuer. el must carry an ID
// attribute. el itself is left as it was; its exclusive canonical form is
// taken where it stands, with the namespaces its ancestors declare in
// scope, so the copy verifies once it is put in el's place.
func (s *Signer) SignEnveloped(el *etree.Element) (*etree.Element, error) {
	out := el.Copy()
	if err := s.sign(el, out); err != nil {
		return nil, err
	}
	return out, nil
}

// SignInPlace inserts an enveloped ds:Signature into el, as SignEnveloped
// does into a copy. The element is canonicalised straight from the tree
// into the digest: nothing is copied or serialised besides the signature
// (goxmldsig detached and copied the element and canonicalised a copy of
// that, issue 13).
func (s *Signer) SignInPlace(el *etree.Element) error { return s.sign(el, el) }

// sign computes the signature of el and inserts it into into, which is el
// or a copy of it.
func (s *Signer) sign(el, into *etree.Element) error {
	id := ""
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == "ID" {
			id = a.Value
		}
	}
	if id == "" {
		return errors.New("xmlsig: element to sign has no ID")
	}
	h := sha256.New()
	if err := canonicalise(h, el, nil, "", false); err != nil {
		return err
	}
	digest := h.Sum(nil)

	sig := etree.NewElement("ds:Signature")
	sig.CreateAttr("xmlns:ds", dsig.Namespace)
	si := sig.CreateElement("ds:SignedInfo")
	si.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", ExcC14N)
	si.CreateElement("ds:SignatureMethod").CreateAttr("Algorithm", s.method)
	ref := si.CreateElement("ds:Reference")
	ref.CreateAttr("URI", "#"+id)
	ts := ref.CreateElement("ds:Transforms")
	ts.CreateElement("ds:Transform").CreateAttr("Algorithm", algEnveloped)
	ts.CreateElement("ds:Transform").CreateAttr("Algorithm", ExcC14N)
	ref.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", DigestSHA256)
	ref.CreateElement("ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(digest))
	sv := sig.CreateElement("ds:SignatureValue")
	sig.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
		SetText(base64.StdEncoding.EncodeToString(s.pair.Cert.Raw))

	// SignedInfo uses only the ds prefix, declared on the Signature: its
	// canonical form is the same wherever the Signature stands.
	sh := sha256.New()
	if err := canonicalise(sh, si, nil, "", false); err != nil {
		return err
	}
	value, err := s.signDigest(sh.Sum(nil))
	if err != nil {
		return err
	}
	sv.SetText(base64.StdEncoding.EncodeToString(value))

	pos := 0
	for i, c := range into.Child {
		if e, ok := c.(*etree.Element); ok && e.Tag == "Issuer" {
			pos = i + 1
			break
		}
	}
	into.InsertChildAt(pos, sig)
	return nil
}

// signDigest signs a SHA-256 digest: PKCS #1 v1.5 for RSA, r||s for ECDSA
// (XML-DSig 1.1, 6.4.3).
func (s *Signer) signDigest(digest []byte) ([]byte, error) {
	signer := s.pair.Signer
	if k, ok := signer.(*ecdsa.PrivateKey); ok {
		signer = rawECDSA{k}
	}
	return signer.Sign(rand.Reader, digest, crypto.SHA256)
}

// SignString signs content as the HTTP-Redirect binding requires and
// returns the raw signature.
func (s *Signer) SignString(content string) ([]byte, error) {
	ctx, err := s.context()
	if err != nil {
		return nil, err
	}
	return ctx.SignString(content)
}

// rawECDSA signs with ECDSA and returns the signature as XML-DSig requires
// (RFC 4050, XMLDSig 1.1 section 6.4.3): r and s as fixed-width big-endian
// integers, concatenated. goxmldsig passes on the ASN.1 DER form that Go's
// crypto.Signer returns, which conformant verifiers such as xmlsec1 reject.
type rawECDSA struct{ k *ecdsa.PrivateKey }

func (r rawECDSA) Public() crypto.PublicKey { return r.k.Public() }

func (r rawECDSA) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	der, err := r.k.Sign(rand, digest, opts)
	if err != nil {
		return nil, err
	}
	var rr, ss big.Int
	var inner cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !inner.ReadASN1Integer(&rr) || !inner.ReadASN1Integer(&ss) {
		return nil, errors.New("xmlsig: malformed ECDSA signature")
	}
	size := (r.k.Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	rr.FillBytes(out[:size])
	ss.FillBytes(out[size:])
	return out, nil
}
