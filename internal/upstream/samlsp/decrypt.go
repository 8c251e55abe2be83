package samlsp

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/xmlenc"
)

// DecryptionKey is one of the SP's encryption keys: its certificate is
// published in the SP metadata (use="encryption"), and its private key
// decrypts what the IdP encrypted to it. Only RSA keys can be used: SAML
// key transport is RSA-OAEP.
type DecryptionKey struct {
	Cert *x509.Certificate
	Key  crypto.Decrypter
}

var (
	errEncryptionMethod = errors.New("encryption algorithm refused")
	errCBCUnsigned      = errors.New("AES-CBC encrypted assertion in an unsigned response")
	errDecrypt          = errors.New("encrypted assertion does not decrypt to one assertion")
	errUnencrypted      = errors.New("assertion not encrypted, and this IdP must encrypt")
	errTwoEncrypted     = errors.New("more than one assertion, encrypted or not")
)

// encryptionMethods are announced in the SP metadata: what Decrypt takes.
// AES-CBC is listed because many ADFS installations can do nothing else;
// it is accepted only inside a Response whose signature has verified.
var encryptionMethods = []string{
	xmlenc.AES256GCM, xmlenc.AES128GCM, xmlenc.AES256CBC, xmlenc.AES128CBC,
	xmlenc.RSAOAEP, xmlenc.RSAOAEPMGF1P,
}

func checkDecryptionKeys(keys []DecryptionKey) error {
	for _, k := range keys {
		if k.Cert == nil || k.Key == nil {
			return errors.New("samlsp: a decryption key lacks its certificate or private key")
		}
		pub, ok := k.Key.Public().(*rsa.PublicKey)
		if !ok {
			return errors.New("samlsp: a decryption key is not RSA (SAML key transport is RSA-OAEP)")
		}
		if pub.N.BitLen() < 2048 {
			return errors.New("samlsp: a decryption key has fewer than 2048 bits")
		}
		if cp, ok := k.Cert.PublicKey.(*rsa.PublicKey); !ok || !cp.Equal(pub) {
			return errors.New("samlsp: a decryption key's certificate is not for its private key")
		}
	}
	return nil
}

// decryptAssertion returns the assertion inside enc, an EncryptedAssertion
// that is a child of the (verified, when signed) Response. Every algorithm
// is checked before any private-key operation: RSA-1_5 and unknown
// methods are refused, and AES-CBC is refused unless the Response's own
// signature has verified (signedResponse), because CBC has no integrity
// and an unsigned response would make the bridge a padding oracle
// (SECURITY.md case 16). Every failure after that, whichever key or step
// failed, is one reason with one cause, so that the answer tells nothing
// about the plaintext. The decrypted element is then held to the same
// rules as a plain assertion: a scan for wrapping, comments, declarations,
// duplicate IDs and other encrypted content.
func (sp *SP) decryptAssertion(enc *etree.Element, signedResponse bool) (*etree.Element, *Error) {
	if err := xmlenc.Check(enc, xmlenc.DecryptOptions{AllowCBC: true}); err != nil {
		if errors.Is(err, xmlenc.ErrRefused) {
			return nil, refuse(ReasonEncryptionRefused, errEncryptionMethod)
		}
		return nil, refuse(ReasonMalformed, errAssertionShape)
	}
	if !signedResponse && xmlenc.Check(enc, xmlenc.DecryptOptions{AllowCBC: false}) != nil {
		return nil, refuse(ReasonEncryptionRefused, errCBCUnsigned)
	}
	var assertion *etree.Element
	for _, k := range sp.decryptionKeys {
		a, err := xmlenc.Decrypt(enc, k.Key, xmlenc.DecryptOptions{AllowCBC: signedResponse})
		if err == nil {
			assertion = a
			break
		}
	}
	if assertion == nil {
		return nil, refuse(ReasonDecrypt, errDecrypt)
	}
	s := scan{ids: map[string]bool{}}
	s.walk(assertion)
	switch {
	case s.dupAttr, s.directive, s.dupID, s.comments, s.encrypted, s.responses != 0,
		len(s.encAssertions) != 0, len(s.assertions) != 1:
		return nil, refuse(ReasonDecrypt, errDecrypt)
	case !samlxml.Is(assertion, samlxml.NSAssertion, "Assertion"):
		return nil, refuse(ReasonDecrypt, errDecrypt)
	}
	if e := checkSignatures(s.signatures, assertion, assertion); e != nil {
		return nil, e
	}
	return assertion, nil
}
