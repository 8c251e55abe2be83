package xmlenc

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/samlxml"
)

// Errors returned by Check and Decrypt. They carry a fixed reason, never
// input.
var (
	// ErrRefused means an algorithm that is unknown, never accepted
	// (RSA-1_5) or not allowed by the options (CBC).
	ErrRefused = errors.New("xmlenc: encryption algorithm refused")
	// ErrMalformed means the encrypted element does not have the expected
	// shape.
	ErrMalformed = errors.New("xmlenc: malformed encrypted element")
	// ErrDecrypt means no key could be unwrapped or the data failed to
	// decrypt or authenticate.
	ErrDecrypt = errors.New("xmlenc: decryption failed")
	// ErrTooLarge means the ciphertext exceeds the bound on SAML messages.
	ErrTooLarge = errors.New("xmlenc: encrypted data too large")
)

// maxEncryptedKeys bounds the RSA operations one message can cost.
const maxEncryptedKeys = 4

// DecryptOptions relax what Decrypt accepts.
type DecryptOptions struct {
	// AllowCBC accepts AES-CBC data encryption. CBC has no integrity, and
	// on an unsigned message it invites padding-oracle attacks, so it is
	// off unless a trusted peer can do nothing else (SECURITY.md case 16).
	// Decrypt's errors tell a bad padding from bad XML: a caller that
	// allows CBC must answer every failure the same way.
	AllowCBC bool
}

// encrypted is the parsed, algorithm-checked form of an encrypted element.
type encrypted struct {
	assertion  bool // an EncryptedAssertion, so the plaintext must be an Assertion
	dataMethod string
	cipherData []byte
	keys       []encryptedKey
}

type encryptedKey struct {
	digest, mgf crypto.Hash
	label       []byte
	cipherData  []byte
}

// Check parses encrypted (saml:EncryptedAssertion or xenc:EncryptedData) and
// refuses it unless every algorithm it declares is accepted, without any
// private-key operation, so that a caller can refuse an unsupported message
// before it decrypts anything.
func Check(encrypted *etree.Element, opts DecryptOptions) error {
	_, err := parse(encrypted, opts)
	return err
}

// Decrypt decrypts a saml:EncryptedAssertion or an xenc:EncryptedData of
// Type Element with an RSA key and returns the decrypted element, parsed
// with the bounds of samlxml.Parse. For an EncryptedAssertion the result
// must be a saml:Assertion. The EncryptedKey may be in the EncryptedData's
// ds:KeyInfo or beside it in the EncryptedAssertion.
func Decrypt(encrypted *etree.Element, key crypto.Decrypter, opts DecryptOptions) (*etree.Element, error) {
	if key == nil {
		return nil, errors.New("xmlenc: no decryption key")
	}
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		return nil, errors.New("xmlenc: decryption key is not RSA")
	}
	e, err := parse(encrypted, opts)
	if err != nil {
		return nil, err
	}
	want := dataKeySize(e.dataMethod)
	var dataKey []byte
	for _, k := range e.keys {
		// crypto/rand is only passed on for decrypters that want it; RSA
		// OAEP decryption itself uses no randomness.
		pt, err := key.Decrypt(rand.Reader, k.cipherData, &rsa.OAEPOptions{Hash: k.digest, MGFHash: k.mgf, Label: k.label})
		if err == nil && len(pt) == want {
			dataKey = pt
			break
		}
	}
	if dataKey == nil {
		return nil, ErrDecrypt
	}
	plaintext, err := decryptData(e.dataMethod, dataKey, e.cipherData)
	if err != nil {
		return nil, err
	}
	doc, err := samlxml.Parse(plaintext)
	if err != nil {
		return nil, fmt.Errorf("xmlenc: decrypted element: %w", err)
	}
	root := doc.Root()
	if e.assertion && (root.Tag != "Assertion" || root.NamespaceURI() != NSAssertion) {
		return nil, fmt.Errorf("%w: decrypted element is not an assertion", ErrMalformed)
	}
	return root, nil
}

func decryptData(method string, key, data []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, ErrDecrypt
	}
	if isCBC(method) {
		if len(data) < 2*aes.BlockSize || len(data)%aes.BlockSize != 0 {
			return nil, ErrDecrypt
		}
		out := make([]byte, len(data)-aes.BlockSize)
		cipher.NewCBCDecrypter(block, data[:aes.BlockSize]).CryptBlocks(out, data[aes.BlockSize:])
		// XML Encryption padding: the last byte gives the length (1 to the
		// block size); the other padding bytes are arbitrary.
		pad := int(out[len(out)-1])
		if subtle.ConstantTimeLessOrEq(1, pad)&subtle.ConstantTimeLessOrEq(pad, aes.BlockSize) == 0 {
			return nil, ErrDecrypt
		}
		return out[:len(out)-pad], nil
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, ErrDecrypt
	}
	if len(data) < gcmNonceSize+gcmTagSize {
		return nil, ErrDecrypt
	}
	out, err := aead.Open(nil, data[:gcmNonceSize], data[gcmNonceSize:], nil)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// parse reads the structure and checks every algorithm before anything is
// decrypted.
func parse(el *etree.Element, opts DecryptOptions) (*encrypted, error) {
	var out encrypted
	var siblingKeys []*etree.Element
	data := el
	switch {
	case samlxml.Is(el, NSAssertion, "EncryptedAssertion"):
		out.assertion = true
		data = nil
		for _, c := range el.ChildElements() {
			switch {
			case samlxml.Is(c, NSXMLEnc, "EncryptedData") && data == nil:
				data = c
			case samlxml.Is(c, NSXMLEnc, "EncryptedKey"):
				siblingKeys = append(siblingKeys, c)
			default:
				return nil, fmt.Errorf("%w: unexpected child of EncryptedAssertion", ErrMalformed)
			}
		}
		if data == nil {
			return nil, fmt.Errorf("%w: no EncryptedData", ErrMalformed)
		}
	case samlxml.Is(el, NSXMLEnc, "EncryptedData"):
	default:
		return nil, fmt.Errorf("%w: not an encrypted element", ErrMalformed)
	}

	// Only whole elements are decrypted; an absent Type is read as Element
	// because some IdPs leave it out.
	if t := data.SelectAttrValue("Type", ""); t != "" && t != TypeElement {
		return nil, fmt.Errorf("%w: EncryptedData type", ErrRefused)
	}
	method, err := encryptionMethod(data)
	if err != nil {
		return nil, err
	}
	out.dataMethod = method.SelectAttrValue("Algorithm", "")
	switch {
	case dataKeySize(out.dataMethod) == 0:
		return nil, fmt.Errorf("%w: data encryption method", ErrRefused)
	case isCBC(out.dataMethod) && !opts.AllowCBC:
		return nil, fmt.Errorf("%w: CBC not allowed", ErrRefused)
	}
	if out.cipherData, err = cipherValue(data); err != nil {
		return nil, err
	}

	keyInfo, err := samlxml.Child(data, NSDSig, "KeyInfo")
	if err != nil {
		return nil, fmt.Errorf("%w: KeyInfo", ErrMalformed)
	}
	var keyEls []*etree.Element
	if keyInfo != nil {
		keyEls = samlxml.Children(keyInfo, NSXMLEnc, "EncryptedKey")
	}
	keyEls = append(keyEls, siblingKeys...)
	switch {
	case len(keyEls) == 0:
		return nil, fmt.Errorf("%w: no EncryptedKey", ErrMalformed)
	case len(keyEls) > maxEncryptedKeys:
		return nil, fmt.Errorf("%w: too many EncryptedKeys", ErrMalformed)
	}
	for _, k := range keyEls {
		ek, err := parseKey(k)
		if err != nil {
			return nil, err
		}
		out.keys = append(out.keys, ek)
	}
	return &out, nil
}

func parseKey(el *etree.Element) (encryptedKey, error) {
	var k encryptedKey
	method, err := encryptionMethod(el)
	if err != nil {
		return k, err
	}
	// The defaults when DigestMethod or MGF is absent are SHA-1 and
	// MGF1-SHA1 (XML Encryption 1.1 section 5.5.2).
	k.digest, k.mgf = crypto.SHA1, crypto.SHA1
	dm, err := samlxml.Child(method, NSDSig, "DigestMethod")
	if err != nil {
		return k, fmt.Errorf("%w: DigestMethod", ErrMalformed)
	}
	if dm != nil {
		switch dm.SelectAttrValue("Algorithm", "") {
		case DigestSHA1:
		case DigestSHA256:
			k.digest = crypto.SHA256
		default:
			return k, fmt.Errorf("%w: OAEP digest", ErrRefused)
		}
	}
	mgf, err := samlxml.Child(method, NSXMLEnc11, "MGF")
	if err != nil {
		return k, fmt.Errorf("%w: MGF", ErrMalformed)
	}
	switch method.SelectAttrValue("Algorithm", "") {
	case RSAOAEP:
		if mgf != nil {
			switch mgf.SelectAttrValue("Algorithm", "") {
			case MGF1SHA1:
			case MGF1SHA256:
				k.mgf = crypto.SHA256
			default:
				return k, fmt.Errorf("%w: OAEP mask generation function", ErrRefused)
			}
		}
	case RSAOAEPMGF1P:
		// rsa-oaep-mgf1p fixes the MGF to MGF1-SHA1 and declares none.
		if mgf != nil {
			return k, fmt.Errorf("%w: MGF with rsa-oaep-mgf1p", ErrMalformed)
		}
	default:
		// RSA-1_5 lands here with every other unknown method.
		return k, fmt.Errorf("%w: key transport method", ErrRefused)
	}
	params, err := samlxml.Child(method, NSXMLEnc, "OAEPparams")
	if err != nil {
		return k, fmt.Errorf("%w: OAEPparams", ErrMalformed)
	}
	if params != nil {
		s, err := samlxml.Text(params)
		if err != nil {
			return k, fmt.Errorf("%w: OAEPparams", ErrMalformed)
		}
		if k.label, err = base64.StdEncoding.DecodeString(s); err != nil || len(k.label) > 1024 {
			return k, fmt.Errorf("%w: OAEPparams", ErrMalformed)
		}
	}
	if k.cipherData, err = cipherValue(el); err != nil {
		return k, err
	}
	return k, nil
}

func encryptionMethod(el *etree.Element) (*etree.Element, error) {
	m, err := samlxml.Child(el, NSXMLEnc, "EncryptionMethod")
	if err != nil || m == nil {
		return nil, fmt.Errorf("%w: EncryptionMethod", ErrMalformed)
	}
	return m, nil
}

// cipherValue returns the decoded CipherData/CipherValue of el. A
// CipherReference would make the bridge fetch a URI: it is refused.
func cipherValue(el *etree.Element) ([]byte, error) {
	cd, err := samlxml.Child(el, NSXMLEnc, "CipherData")
	if err != nil || cd == nil {
		return nil, fmt.Errorf("%w: CipherData", ErrMalformed)
	}
	cv, err := samlxml.Child(cd, NSXMLEnc, "CipherValue")
	if err != nil || cv == nil || len(cd.ChildElements()) != 1 {
		return nil, fmt.Errorf("%w: CipherValue", ErrMalformed)
	}
	s, err := samlxml.Text(cv)
	if err != nil {
		return nil, fmt.Errorf("%w: CipherValue", ErrMalformed)
	}
	b, err := samlxml.DecodeBase64(s)
	switch {
	case errors.Is(err, samlxml.ErrTooLarge):
		return nil, ErrTooLarge
	case err != nil:
		return nil, fmt.Errorf("%w: CipherValue", ErrMalformed)
	}
	return b, nil
}
