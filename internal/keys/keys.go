// Package keys loads and generates the bridge's key pairs: a private key
// (RSA or ECDSA) with its certificate.
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"
)

// Pair is a private key and its certificate.
type Pair struct {
	Signer crypto.Signer
	Cert   *x509.Certificate
}

// Load reads a PEM certificate and a PEM private key (PKCS#1, PKCS#8 or SEC 1).
func Load(certFile, keyFile string) (*Pair, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	return Parse(certPEM, keyPEM)
}

// LoadSigner reads a PEM private key without a certificate (OIDC token
// signing keys are published as JWKs, not certificates).
func LoadSigner(keyFile string) (crypto.Signer, error) {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	return parseKey(b)
}

func parseKey(keyPEM []byte) (crypto.Signer, error) {
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("private key: no PEM block")
	}
	var key any
	var err error
	switch kb.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(kb.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, errors.New("private key: RSA keys must have at least 2048 bits")
		}
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	}
	return nil, errors.New("private key: only RSA and ECDSA keys are supported")
}

// Parse parses a PEM certificate and PEM private key and checks that they match.
func Parse(certPEM, keyPEM []byte) (*Pair, error) {
	cert, err := ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, err
	}
	signer, err := parseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	switch k := signer.(type) {
	case *rsa.PrivateKey:
		if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&k.PublicKey) {
			return nil, errors.New("private key does not match the certificate")
		}
	case *ecdsa.PrivateKey:
		if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&k.PublicKey) {
			return nil, errors.New("private key does not match the certificate")
		}
	}
	return &Pair{Signer: signer, Cert: cert}, nil
}

// ParseCertificatePEM parses one PEM certificate.
func ParseCertificatePEM(b []byte) (*x509.Certificate, error) {
	cb, _ := pem.Decode(b)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("certificate: no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(cb.Bytes)
}

// Algorithm selects the key type Generate makes.
type Algorithm string

// Key algorithms.
const (
	RSA2048 Algorithm = "rsa2048"
	RSA3072 Algorithm = "rsa3072"
	P256    Algorithm = "p256"
)

// Generate makes a self-signed key pair for tests and the demo.
func Generate(commonName string, alg Algorithm, now time.Time) (*Pair, error) {
	var signer crypto.Signer
	var err error
	switch alg {
	case RSA2048:
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		signer, err = rsa.GenerateKey(rand.Reader, 3072)
	case P256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("unknown key algorithm %q", alg)
	}
	if err != nil {
		return nil, err
	}
	return SelfSign(commonName, signer, now)
}

// SelfSign makes a self-signed certificate for signer, valid from an hour
// before now for five years: the certificate of a SAML signing key is only
// a container for the public key, trusted by its place in metadata.
func SelfSign(commonName string, signer crypto.Signer, now time.Time) (*Pair, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Pair{Signer: signer, Cert: cert}, nil
}

// CertPEM returns the certificate in PEM form.
func (p *Pair) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Cert.Raw})
}

// KeyPEM returns the private key in PKCS#8 PEM form.
func (p *Pair) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(p.Signer)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
