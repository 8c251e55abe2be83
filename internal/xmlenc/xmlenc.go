// Package xmlenc encrypts SAML assertions for vendors and decrypts
// encrypted assertions, following XML Encryption 1.1.
//
// crewjam/saml's xmlenc is not used: its AES-GCM encrypter panics (it passes
// no nonce) and its RSA-OAEP declares a SHA-256 digest without an MGF element
// (which means MGF1-SHA1) while computing MGF1-SHA256, so standard SPs cannot
// decrypt (SECURITY.md). Here what is declared is what is computed, and the
// tests prove it by decrypting with xmlsec1.
//
// Supported, on both sides: AES-128-GCM and AES-256-GCM for the data
// (AES-CBC only when chosen or allowed explicitly, for old SPs), and RSA-OAEP
// for key transport, either xmlenc11#rsa-oaep with SHA-256 and MGF1-SHA256 or
// rsa-oaep-mgf1p with SHA-1. RSA-1_5 is never used and always refused.
package xmlenc

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"

	// Registers SHA-1 and SHA-256 for crypto.Hash.New.
	_ "crypto/sha1"
	_ "crypto/sha256"

	"github.com/beevik/etree"
)

// Namespaces written and read by this package.
const (
	NSXMLEnc    = "http://www.w3.org/2001/04/xmlenc#"
	NSXMLEnc11  = "http://www.w3.org/2009/xmlenc11#"
	NSDSig      = "http://www.w3.org/2000/09/xmldsig#"
	NSAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
)

// Algorithm URIs.
const (
	// TypeElement is the EncryptedData Type for one encrypted element.
	TypeElement = NSXMLEnc + "Element"

	AES128GCM = NSXMLEnc11 + "aes128-gcm"
	AES256GCM = NSXMLEnc11 + "aes256-gcm"
	AES128CBC = NSXMLEnc + "aes128-cbc"
	AES256CBC = NSXMLEnc + "aes256-cbc"

	// RSAOAEP is XML Encryption 1.1 RSA-OAEP; the bridge declares and uses
	// SHA-256 as digest and MGF1-SHA256 as mask generation function.
	RSAOAEP = NSXMLEnc11 + "rsa-oaep"
	// RSAOAEPMGF1P is XML Encryption 1.0 RSA-OAEP: SHA-1 digest, MGF1-SHA1.
	RSAOAEPMGF1P = NSXMLEnc + "rsa-oaep-mgf1p"
	// RSA15 is RSA PKCS#1 v1.5 key transport: never written, always refused.
	RSA15 = NSXMLEnc + "rsa-1_5"

	MGF1SHA1   = NSXMLEnc11 + "mgf1sha1"
	MGF1SHA256 = NSXMLEnc11 + "mgf1sha256"

	DigestSHA1   = NSDSig + "sha1"
	DigestSHA256 = NSXMLEnc + "sha256"
)

const (
	gcmNonceSize = 12
	gcmTagSize   = 16
	// minRSABits matches what internal/keys requires of the bridge's own keys.
	minRSABits = 2048
)

// Options choose the algorithms of one encryption. The zero value means
// AES-256-GCM and RSA-OAEP (xmlenc11, SHA-256, MGF1-SHA256).
type Options struct {
	// DataMethod encrypts the element: AES256GCM (default) or AES128GCM;
	// AES256CBC or AES128CBC only for an old SP that decrypts nothing else.
	DataMethod string
	// KeyTransport encrypts the data key: RSAOAEP (default) or RSAOAEPMGF1P.
	KeyTransport string
}

func (o Options) withDefaults() Options {
	if o.DataMethod == "" {
		o.DataMethod = AES256GCM
	}
	if o.KeyTransport == "" {
		o.KeyTransport = RSAOAEP
	}
	return o
}

// dataKeySize returns the AES key length of a data method, or 0 when the
// method is unknown.
func dataKeySize(method string) int {
	switch method {
	case AES128GCM, AES128CBC:
		return 16
	case AES256GCM, AES256CBC:
		return 32
	}
	return 0
}

func isCBC(method string) bool { return method == AES128CBC || method == AES256CBC }

// oaepHashes returns the OAEP digest and MGF1 hash of the key transport the
// bridge writes, matching what it declares in the EncryptionMethod.
func oaepHashes(transport string) (digest, mgf crypto.Hash, ok bool) {
	switch transport {
	case RSAOAEP:
		return crypto.SHA256, crypto.SHA256, true
	case RSAOAEPMGF1P:
		return crypto.SHA1, crypto.SHA1, true
	}
	return 0, 0, false
}

// Errors of ChooseFromMetadata. They name no input.
var (
	// ErrOnlyCBC means the SP lists AES-CBC and no AES-GCM, and CBC was not
	// allowed: the SP would not decrypt AES-GCM, and CBC needs an explicit
	// choice.
	ErrOnlyCBC = errors.New("xmlenc: the SP lists only AES-CBC data encryption")
	// ErrNoUsableMethod means the SP lists data encryption methods but none
	// that the bridge writes (e.g. only Triple DES or AES-192).
	ErrNoUsableMethod = errors.New("xmlenc: the SP lists no data encryption method the bridge supports")
)

// otherDataMethods are block ciphers an SP may list that the bridge does
// not write: listing only these means the SP cannot take what it writes.
var otherDataMethods = map[string]bool{
	NSXMLEnc + "tripledes-cbc": true,
	NSXMLEnc + "aes192-cbc":    true,
	NSXMLEnc11 + "aes192-gcm":  true,
}

// IsCBC reports whether method is one of the AES-CBC data methods.
func IsCBC(method string) bool { return isCBC(method) }

// ChooseFromMetadata picks the methods to encrypt with for a vendor SP from
// the md:EncryptionMethod algorithms its metadata lists. AES-GCM is used
// whenever the SP lists it (AES-256-GCM before AES-128-GCM) or lists no data
// method at all. An SP that lists AES-CBC but no AES-GCM gets AES-CBC
// (AES-256 before AES-128) only when allowCBC is set, since CBC is not
// authenticated; otherwise ErrOnlyCBC, so that the caller refuses rather
// than send what the SP cannot decrypt. An SP listing only block ciphers the
// bridge does not write gets ErrNoUsableMethod. Key transport is the
// strongest RSA-OAEP listed, or RSA-OAEP-MGF1P, which most SAML SPs
// decrypt, when none is; RSA-1_5 is never used.
func ChooseFromMetadata(methods []string, allowCBC bool) (Options, error) {
	rank := map[string]int{AES128GCM: 1, AES256GCM: 2, AES128CBC: 1, AES256CBC: 2, RSAOAEPMGF1P: 1, RSAOAEP: 2}
	var o Options
	var gcm, cbc string
	listedData := false
	for _, m := range methods {
		switch {
		case m == AES128GCM || m == AES256GCM:
			listedData = true
			if rank[m] > rank[gcm] {
				gcm = m
			}
		case isCBC(m):
			listedData = true
			if rank[m] > rank[cbc] {
				cbc = m
			}
		case otherDataMethods[m]:
			listedData = true
		case m == RSAOAEPMGF1P || m == RSAOAEP:
			if rank[m] > rank[o.KeyTransport] {
				o.KeyTransport = m
			}
		}
	}
	switch {
	case gcm != "":
		o.DataMethod = gcm
	case cbc != "" && allowCBC:
		o.DataMethod = cbc
	case cbc != "":
		return Options{}, ErrOnlyCBC
	case listedData:
		return Options{}, ErrNoUsableMethod
	default:
		o.DataMethod = AES256GCM
	}
	if o.KeyTransport == "" {
		o.KeyTransport = RSAOAEPMGF1P
	}
	return o, nil
}

// EncryptAssertion encrypts a (signed) saml:Assertion for recipient and
// returns the saml:EncryptedAssertion to put in its place. The assertion is
// serialised unchanged apart from namespace declarations it inherits, which
// are copied onto it so that it parses on its own after decryption.
func EncryptAssertion(assertion *etree.Element, recipient *x509.Certificate, opts Options, rand io.Reader) (*etree.Element, error) {
	if assertion == nil || assertion.Tag != "Assertion" || assertion.NamespaceURI() != NSAssertion {
		return nil, errors.New("xmlenc: not a saml:Assertion")
	}
	data, err := EncryptElement(assertion, recipient, opts, rand)
	if err != nil {
		return nil, err
	}
	out := etree.NewElement("saml:EncryptedAssertion")
	out.CreateAttr("xmlns:saml", NSAssertion)
	out.AddChild(data)
	return out, nil
}

// EncryptElement encrypts el for recipient and returns an xenc:EncryptedData
// of Type Element whose ds:KeyInfo holds the xenc:EncryptedKey, which names
// the recipient certificate. rand supplies the data key, the nonce or IV,
// and the OAEP seed.
func EncryptElement(el *etree.Element, recipient *x509.Certificate, opts Options, rand io.Reader) (*etree.Element, error) {
	opts = opts.withDefaults()
	keySize := dataKeySize(opts.DataMethod)
	if keySize == 0 {
		return nil, errors.New("xmlenc: unsupported data encryption method")
	}
	digest, mgf, ok := oaepHashes(opts.KeyTransport)
	if !ok {
		return nil, errors.New("xmlenc: unsupported key transport method")
	}
	if el == nil || recipient == nil || rand == nil {
		return nil, errors.New("xmlenc: missing element, recipient or randomness")
	}
	pub, ok := recipient.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("xmlenc: recipient key is not RSA")
	}
	if pub.N.BitLen() < minRSABits {
		return nil, errors.New("xmlenc: recipient RSA key shorter than 2048 bits")
	}

	plaintext, err := serialize(el)
	if err != nil {
		return nil, err
	}
	key := make([]byte, keySize)
	if _, err := io.ReadFull(rand, key); err != nil {
		return nil, fmt.Errorf("xmlenc: data key: %w", err)
	}
	ciphertext, err := encryptData(opts.DataMethod, key, plaintext, rand)
	if err != nil {
		return nil, err
	}
	wrapped, err := rsa.EncryptOAEPWithOptions(rand, pub, key, &rsa.OAEPOptions{Hash: digest, MGFHash: mgf})
	if err != nil {
		return nil, fmt.Errorf("xmlenc: key transport: %w", err)
	}

	ed := etree.NewElement("xenc:EncryptedData")
	ed.CreateAttr("xmlns:xenc", NSXMLEnc)
	ed.CreateAttr("Type", TypeElement)
	ed.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", opts.DataMethod)

	keyInfo := ed.CreateElement("ds:KeyInfo")
	keyInfo.CreateAttr("xmlns:ds", NSDSig)
	ek := keyInfo.CreateElement("xenc:EncryptedKey")
	em := ek.CreateElement("xenc:EncryptionMethod")
	em.CreateAttr("Algorithm", opts.KeyTransport)
	if opts.KeyTransport == RSAOAEP {
		em.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", DigestSHA256)
		m := em.CreateElement("xenc11:MGF")
		m.CreateAttr("xmlns:xenc11", NSXMLEnc11)
		m.CreateAttr("Algorithm", MGF1SHA256)
	} else {
		em.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", DigestSHA1)
	}
	ek.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
		SetText(base64.StdEncoding.EncodeToString(recipient.Raw))
	ek.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").
		SetText(base64.StdEncoding.EncodeToString(wrapped))

	ed.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").
		SetText(base64.StdEncoding.EncodeToString(ciphertext))
	return ed, nil
}

// encryptData encrypts plaintext as XML Encryption lays it out: for GCM the
// 96-bit nonce, the ciphertext and the 128-bit tag (section 5.2.4); for CBC
// the IV and the padded ciphertext (section 5.2).
func encryptData(method string, key, plaintext []byte, rand io.Reader) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("xmlenc: %w", err)
	}
	if isCBC(method) {
		pad := aes.BlockSize - len(plaintext)%aes.BlockSize
		out := make([]byte, aes.BlockSize+len(plaintext)+pad)
		iv := out[:aes.BlockSize]
		if _, err := io.ReadFull(rand, iv); err != nil {
			return nil, fmt.Errorf("xmlenc: iv: %w", err)
		}
		body := out[aes.BlockSize:]
		copy(body, plaintext)
		// XML Encryption only requires the last byte to hold the padding
		// length; filling every padding byte with it is valid and also what
		// PKCS#7 decoders expect.
		for i := len(plaintext); i < len(body); i++ {
			body[i] = byte(pad)
		}
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(body, body)
		return out, nil
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("xmlenc: %w", err)
	}
	nonce := make([]byte, gcmNonceSize, gcmNonceSize+len(plaintext)+gcmTagSize)
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("xmlenc: nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plaintext, nil), nil
}

// serialize writes a copy of el that declares every namespace in scope at
// el, so that it parses on its own. Declarations are added, never removed,
// and the escaping is that of C14N, so the exclusive C14N form a signature
// covers is unchanged. All in-scope prefixes are copied, not only those in
// element and attribute names, because QName values such as
// xsi:type="xs:string" use prefixes too.
func serialize(el *etree.Element) ([]byte, error) {
	c := el.Copy()
	declared := map[string]bool{}
	for _, a := range c.Attr {
		if p, ok := nsDecl(a); ok {
			declared[p] = true
		}
	}
	for p := el.Parent(); p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			prefix, ok := nsDecl(a)
			if !ok || declared[prefix] {
				continue
			}
			// The nearest declaration wins; an empty one (xmlns="") needs no
			// copy at the root of a standalone document.
			declared[prefix] = true
			if a.Value != "" {
				c.Attr = append(c.Attr, etree.Attr{Space: a.Space, Key: a.Key, Value: a.Value})
			}
		}
	}
	if err := checkPrefixes(c, map[string]bool{"xml": true, "xmlns": true}); err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	doc.SetRoot(c)
	doc.WriteSettings = etree.WriteSettings{CanonicalText: true, CanonicalAttrVal: true}
	var buf bytes.Buffer
	if _, err := doc.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("xmlenc: serialise: %w", err)
	}
	return buf.Bytes(), nil
}

// nsDecl reports whether a declares a namespace, and for which prefix ("" for
// the default namespace).
func nsDecl(a etree.Attr) (string, bool) {
	switch {
	case a.Space == "xmlns":
		return a.Key, true
	case a.Space == "" && a.Key == "xmlns":
		return "", true
	}
	return "", false
}

// checkPrefixes refuses an element that uses a prefix declared nowhere: its
// serialisation would not parse at the recipient.
func checkPrefixes(el *etree.Element, inScope map[string]bool) error {
	scope := inScope
	for _, a := range el.Attr {
		if p, ok := nsDecl(a); ok && p != "" && !scope[p] {
			if len(scope) == len(inScope) { // still shared with the parent
				scope = maps.Clone(inScope)
			}
			scope[p] = true
		}
	}
	if el.Space != "" && !scope[el.Space] {
		return errors.New("xmlenc: element uses an undeclared namespace prefix")
	}
	for _, a := range el.Attr {
		if a.Space != "" && !scope[a.Space] {
			return errors.New("xmlenc: element uses an undeclared namespace prefix")
		}
	}
	for _, c := range el.ChildElements() {
		if err := checkPrefixes(c, scope); err != nil {
			return err
		}
	}
	return nil
}
