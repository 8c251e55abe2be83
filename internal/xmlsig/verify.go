package xmlsig

import (
	"crypto"
	"encoding/base64"
	"strings"

	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
	"math/big"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// Errors from verification. They carry no input.
var (
	ErrWeakAlgorithm = errors.New("xmlsig: signature or digest algorithm not accepted")
	ErrNoSignature   = errors.New("xmlsig: element is not signed")
	ErrBadSignature  = errors.New("xmlsig: signature does not verify")
)

// CheckAlgorithms inspects the SignedInfo of every ds:Signature under root
// (root included) and refuses any signature or digest method that is not
// accepted, before any cryptography runs (SECURITY.md case 10: no SHA-1).
// Digest methods elsewhere, such as inside an xenc:EncryptionMethod for
// RSA-OAEP, are not signature digests and are left to the decrypter.
func CheckAlgorithms(root *etree.Element) error {
	var walk func(el *etree.Element) error
	walk = func(el *etree.Element) error {
		if el.Tag == "Signature" && el.NamespaceURI() == dsig.Namespace {
			return checkSignature(el)
		}
		for _, c := range el.ChildElements() {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root)
}

func checkSignature(sig *etree.Element) error {
	signedInfos := 0
	for _, si := range sig.ChildElements() {
		if si.Tag != "SignedInfo" || si.NamespaceURI() != dsig.Namespace {
			continue
		}
		signedInfos++
		for _, c := range si.ChildElements() {
			switch {
			case c.Tag == "SignatureMethod" && c.NamespaceURI() == dsig.Namespace:
				if !AcceptedSignatureMethods[c.SelectAttrValue("Algorithm", "")] {
					return ErrWeakAlgorithm
				}
			case c.Tag == "Reference" && c.NamespaceURI() == dsig.Namespace:
				for _, dm := range c.ChildElements() {
					if dm.Tag == "DigestMethod" && dm.NamespaceURI() == dsig.Namespace &&
						!AcceptedDigestMethods[dm.SelectAttrValue("Algorithm", "")] {
						return ErrWeakAlgorithm
					}
				}
			}
		}
	}
	if signedInfos != 1 {
		return ErrBadSignature
	}
	return nil
}

// VerifyEnveloped verifies el's enveloped signature against certs (and only
// those: a certificate embedded in the message is not trusted unless it is
// one of them) and returns the verified element, the only copy callers may
// read from afterwards.
func VerifyEnveloped(el *etree.Element, certs []*x509.Certificate, now func() time.Time) (*etree.Element, error) {
	if err := CheckAlgorithms(el); err != nil {
		return nil, err
	}
	hasSig := false
	for _, c := range el.ChildElements() {
		if c.Tag == "Signature" && c.NamespaceURI() == dsig.Namespace {
			hasSig = true
		}
	}
	if !hasSig {
		return nil, ErrNoSignature
	}
	ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: certs})
	if now != nil {
		ctx.Clock = dsig.NewFakeClockAt(now())
	}
	out, err := ctx.Validate(el)
	if err != nil {
		return nil, ErrBadSignature
	}
	return out, nil
}

// VerifyRaw verifies a detached signature as the HTTP-Redirect binding
// uses it: sig over content with method, by any of certs. ECDSA signatures
// are r||s as XML-DSig defines.
func VerifyRaw(method string, content, sig []byte, certs []*x509.Certificate) error {
	if !AcceptedSignatureMethods[method] {
		return ErrWeakAlgorithm
	}
	var h crypto.Hash
	switch method {
	case RSASHA256, ECDSASHA256:
		h = crypto.SHA256
	case RSASHA384, ECDSASHA384:
		h = crypto.SHA384
	default:
		h = crypto.SHA512
	}
	hh := h.New()
	hh.Write(content)
	digest := hh.Sum(nil)
	for _, c := range certs {
		switch pub := c.PublicKey.(type) {
		case *rsa.PublicKey:
			if method != RSASHA256 && method != RSASHA384 && method != RSASHA512 {
				continue
			}
			if rsa.VerifyPKCS1v15(pub, h, digest, sig) == nil {
				return nil
			}
		case *ecdsa.PublicKey:
			if method != ECDSASHA256 && method != ECDSASHA384 && method != ECDSASHA512 {
				continue
			}
			size := (pub.Curve.Params().BitSize + 7) / 8
			if len(sig) != 2*size {
				continue
			}
			r := new(big.Int).SetBytes(sig[:size])
			s := new(big.Int).SetBytes(sig[size:])
			if ecdsa.Verify(pub, digest, r, s) {
				return nil
			}
		}
	}
	return ErrBadSignature
}

// SignatureValueFor returns a signature's value (base64) in the form Go's
// verifier, and so goxmldsig, expects for cert: an ECDSA value written as
// XML-DSig defines it (r||s, RFC 4050) becomes ASN.1 DER; a value already
// in DER, or any non-ECDSA value, is returned as it is. method is the
// signature's SignatureMethod algorithm.
func SignatureValueFor(method, value string, cert *x509.Certificate) (string, error) {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || (method != ECDSASHA256 && method != ECDSASHA384 && method != ECDSASHA512) {
		return value, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(value), ""))
	if err != nil {
		return "", ErrBadSignature
	}
	size := (pub.Curve.Params().BitSize + 7) / 8
	if len(raw) != 2*size {
		return value, nil // already DER, as some signers write it
	}
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(new(big.Int).SetBytes(raw[:size]))
		b.AddASN1BigInt(new(big.Int).SetBytes(raw[size:]))
	})
	der, err := b.Bytes()
	if err != nil {
		return "", ErrBadSignature
	}
	return base64.StdEncoding.EncodeToString(der), nil
}
