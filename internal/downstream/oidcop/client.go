package oidcop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/skolbro/skolbro/internal/policy"
)

// Size limits for the files a policy names.
const (
	maxJWKSFile   = 256 << 10
	maxSecretFile = 4 << 10
	// minSecretLen is the shortest client secret accepted, in bytes.
	minSecretLen = 32
)

// assertionAlgs are the only algorithms accepted on client assertions:
// asymmetric ones, never none or HS* (SECURITY.md case 31).
var assertionAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.RS256}

// Client is a vendor registered as an OIDC relying party.
type Client struct {
	ID       string
	VendorID string
	// RedirectURIs are compared byte for byte (SECURITY.md case 26).
	RedirectURIs []string
	Auth         policy.ClientAuth
	// JWKS holds the vendor's public keys, for private_key_jwt.
	JWKS *jose.JSONWebKeySet
	// SecretHash is the SHA-256 of the client secret, for
	// client_secret_basic; compared in constant time.
	SecretHash []byte
	// IDTokenAlg is ES256 or RS256.
	IDTokenAlg jose.SignatureAlgorithm
	// PostLogoutRedirectURIs are compared byte for byte, like
	// RedirectURIs (SECURITY.md case 50).
	PostLogoutRedirectURIs []string
	// FrontchannelLogoutURI and BackchannelLogoutURI, when set, are how
	// the vendor is told that the person logged out elsewhere.
	FrontchannelLogoutURI string
	BackchannelLogoutURI  string
}

// ClientFromPolicy builds the client of an OIDC vendor, reading the JWKS
// file or the secret file its policy names.
func ClientFromPolicy(p *policy.Policy) (*Client, error) {
	if p == nil || p.OIDC == nil {
		return nil, errors.New("oidcop: policy has no oidc section")
	}
	o := p.OIDC
	c := &Client{
		ID:           o.ClientID,
		VendorID:     p.ID,
		RedirectURIs: append([]string(nil), o.RedirectURIs...),
		Auth:         o.ClientAuth,
		IDTokenAlg:   jose.SignatureAlgorithm(o.IDTokenAlg),

		PostLogoutRedirectURIs: append([]string(nil), o.PostLogoutRedirectURIs...),
		FrontchannelLogoutURI:  o.FrontchannelLogoutURI,
		BackchannelLogoutURI:   o.BackchannelLogoutURI,
	}
	if c.IDTokenAlg == "" {
		c.IDTokenAlg = jose.ES256
	}
	switch o.ClientAuth {
	case policy.PrivateKeyJWT:
		set, err := LoadJWKS(o.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("oidcop: vendor %s: %w", p.ID, err)
		}
		c.JWKS = set
	case policy.ClientSecretBasic:
		secret, err := loadSecret(o.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("oidcop: vendor %s: %w", p.ID, err)
		}
		h := sha256.Sum256(secret)
		c.SecretHash = h[:]
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("oidcop: vendor %s: %w", p.ID, err)
	}
	return c, nil
}

func (c *Client) validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("no client id"))
	}
	if len(c.RedirectURIs) == 0 {
		errs = append(errs, errors.New("no redirect URIs"))
	}
	for _, u := range c.RedirectURIs {
		if u == "" || strings.Contains(u, "#") {
			errs = append(errs, errors.New("a redirect URI is empty or has a fragment"))
		}
	}
	switch c.IDTokenAlg {
	case jose.ES256, jose.RS256:
	default:
		errs = append(errs, fmt.Errorf("id token algorithm %q: use ES256 or RS256", c.IDTokenAlg))
	}
	switch c.Auth {
	case policy.PrivateKeyJWT:
		if c.JWKS == nil {
			errs = append(errs, errors.New("private_key_jwt without a JWKS"))
		} else if err := checkClientJWKS(c.JWKS); err != nil {
			errs = append(errs, err)
		}
	case policy.ClientSecretBasic:
		if len(c.SecretHash) != sha256.Size {
			errs = append(errs, errors.New("client_secret_basic without a SHA-256 secret hash"))
		}
	default:
		errs = append(errs, fmt.Errorf("client authentication %q: use private_key_jwt or client_secret_basic", c.Auth))
	}
	return errors.Join(errs...)
}

// redirectRegistered reports whether uri is exactly one of the client's
// redirect URIs: no normalisation of case, slashes, query or scheme.
func (c *Client) redirectRegistered(uri string) bool {
	for _, r := range c.RedirectURIs {
		if r == uri {
			return true
		}
	}
	return false
}

// LoadJWKS reads a vendor's JWKS file and checks every key: public, with
// a unique kid, for signing, and of a type usable with an accepted
// algorithm.
func LoadJWKS(path string) (*jose.JSONWebKeySet, error) {
	b, err := readBounded(path, maxJWKSFile)
	if err != nil {
		return nil, fmt.Errorf("jwks file: %w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("jwks file %s: %w", path, err)
	}
	if err := checkClientJWKS(&set); err != nil {
		return nil, fmt.Errorf("jwks file %s: %w", path, err)
	}
	return &set, nil
}

func checkClientJWKS(set *jose.JSONWebKeySet) error {
	if len(set.Keys) == 0 {
		return errors.New("jwks has no keys")
	}
	var errs []error
	seen := map[string]bool{}
	for i, k := range set.Keys {
		if k.KeyID == "" {
			errs = append(errs, fmt.Errorf("jwks key %d: no kid (client assertions name their key by kid)", i))
			continue
		}
		if seen[k.KeyID] {
			errs = append(errs, fmt.Errorf("jwks key %q: kid used twice", k.KeyID))
		}
		seen[k.KeyID] = true
		if !k.IsPublic() {
			errs = append(errs, fmt.Errorf("jwks key %q: not a public key (private and symmetric keys are refused)", k.KeyID))
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			errs = append(errs, fmt.Errorf("jwks key %q: use %q is not sig", k.KeyID, k.Use))
		}
		if !keyFitsAnyAlg(k) {
			errs = append(errs, fmt.Errorf("jwks key %q: not an RSA key of 2048 bits or more, or a P-256 key, for %v", k.KeyID, assertionAlgs))
		}
	}
	return errors.Join(errs...)
}

func keyFitsAnyAlg(k jose.JSONWebKey) bool {
	for _, alg := range assertionAlgs {
		if keyFitsAlg(k, alg) {
			return true
		}
	}
	return false
}

// keyFitsAlg reports whether k may verify a signature made with alg: the
// key type must match, and a key that names its alg allows only that one.
func keyFitsAlg(k jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return false
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		return (alg == jose.RS256 || alg == jose.PS256) && pub.N.BitLen() >= 2048
	case *ecdsa.PublicKey:
		return alg == jose.ES256 && pub.Curve == elliptic.P256()
	}
	return false
}

// loadSecret reads a client secret file. Like the pseudonym key, a file
// that group or others may access is refused.
func loadSecret(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("no client secret file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("client secret file: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the checked file is the read one.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("client secret file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("client secret file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("client secret file %s is accessible by group or others (mode %04o); run chmod 600 on it", path, perm)
	}
	b, err := readAllBounded(f, path, maxSecretFile)
	if err != nil {
		return nil, fmt.Errorf("client secret file: %w", err)
	}
	secret := []byte(strings.TrimSpace(string(b)))
	if len(secret) < minSecretLen {
		return nil, fmt.Errorf("client secret file %s: the secret must have at least %d characters", path, minSecretLen)
	}
	return secret, nil
}

func readBounded(path string, limit int64) ([]byte, error) {
	if path == "" {
		return nil, errors.New("no file named")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllBounded(f, path, limit)
}

func readAllBounded(r io.Reader, path string, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}
