package oidcop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"sort"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
)

// idTokenAlgs are the algorithms the provider signs ID tokens with, in
// order of preference.
var idTokenAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.RS256}

// KeySpec is one ID token signing key with its schedule. A key is
// published in the JWKS from the start until RetireAt, and signs from
// UseFrom until a newer key of its algorithm takes over: give the next key
// a UseFrom well after it is configured, so that relying parties have
// fetched it before the first token it signs (SECURITY.md case 32), and
// retire the old key only after the tokens it signed have expired.
type KeySpec struct {
	// KID is the key id, unique in the set; every token names it.
	KID    string
	Signer crypto.Signer
	// Alg is ES256 (a P-256 key) or RS256 (an RSA key of 2048 bits or more).
	Alg     jose.SignatureAlgorithm
	UseFrom time.Time
	// RetireAt removes the key from the JWKS; zero means never.
	RetireAt time.Time
}

// KeySet is the provider's ID token signing keys. It is immutable.
type KeySet struct {
	keys []*setKey
}

type setKey struct {
	spec   KeySpec
	signer jose.Signer
	public jose.JSONWebKey
}

// NewKeySet checks the keys and prepares their signers.
func NewKeySet(specs []KeySpec) (*KeySet, error) {
	if len(specs) == 0 {
		return nil, errors.New("oidcop: key set: no keys")
	}
	var errs []error
	seen := map[string]bool{}
	s := &KeySet{}
	for i, spec := range specs {
		if spec.KID == "" {
			errs = append(errs, fmt.Errorf("oidcop: key %d: no kid", i))
			continue
		}
		if seen[spec.KID] {
			errs = append(errs, fmt.Errorf("oidcop: key %q: kid used twice", spec.KID))
			continue
		}
		seen[spec.KID] = true
		if err := checkSigningKey(spec.Signer, spec.Alg); err != nil {
			errs = append(errs, fmt.Errorf("oidcop: key %q: %w", spec.KID, err))
			continue
		}
		if !spec.RetireAt.IsZero() && !spec.RetireAt.After(spec.UseFrom) {
			errs = append(errs, fmt.Errorf("oidcop: key %q: retired before it is used", spec.KID))
			continue
		}
		signer, err := jose.NewSigner(jose.SigningKey{
			Algorithm: spec.Alg,
			Key:       jose.JSONWebKey{Key: cryptosigner.Opaque(spec.Signer), KeyID: spec.KID},
		}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			errs = append(errs, fmt.Errorf("oidcop: key %q: %w", spec.KID, err))
			continue
		}
		s.keys = append(s.keys, &setKey{
			spec:   spec,
			signer: signer,
			public: jose.JSONWebKey{Key: spec.Signer.Public(), KeyID: spec.KID, Algorithm: string(spec.Alg), Use: "sig"},
		})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Newest first, so that the signing key is the first usable match.
	sort.SliceStable(s.keys, func(i, j int) bool { return s.keys[i].spec.UseFrom.After(s.keys[j].spec.UseFrom) })
	return s, nil
}

func checkSigningKey(k crypto.Signer, alg jose.SignatureAlgorithm) error {
	if k == nil {
		return errors.New("no signer")
	}
	switch pub := k.Public().(type) {
	case *ecdsa.PublicKey:
		if alg != jose.ES256 || pub.Curve != elliptic.P256() {
			return errors.New("an ECDSA key must be P-256 with alg ES256")
		}
	case *rsa.PublicKey:
		if alg != jose.RS256 {
			return errors.New("an RSA key must have alg RS256")
		}
		if pub.N.BitLen() < 2048 {
			return errors.New("an RSA key must have at least 2048 bits")
		}
	default:
		return errors.New("only ECDSA P-256 and RSA keys are supported")
	}
	return nil
}

// current reports whether k signs at t: it is in use and not retired.
func (k *setKey) current(t time.Time) bool {
	return !k.spec.UseFrom.After(t) && !k.retired(t)
}

func (k *setKey) retired(t time.Time) bool {
	return !k.spec.RetireAt.IsZero() && !t.Before(k.spec.RetireAt)
}

// signer returns the key that signs with alg at t: the newest key of alg
// whose UseFrom has come and which is not retired.
func (s *KeySet) signer(alg jose.SignatureAlgorithm, t time.Time) (*setKey, error) {
	if s == nil {
		return nil, errors.New("oidcop: no key set")
	}
	for _, k := range s.keys {
		if k.spec.Alg == alg && k.current(t) {
			return k, nil
		}
	}
	return nil, fmt.Errorf("oidcop: no %s signing key in use", alg)
}

// SigningKID returns the kid of the key that signs with alg at t.
func (s *KeySet) SigningKID(alg jose.SignatureAlgorithm, t time.Time) (string, error) {
	k, err := s.signer(alg, t)
	if err != nil {
		return "", err
	}
	return k.spec.KID, nil
}

// JWKS returns the public keys published at t: every key not retired at t,
// including keys whose UseFrom is still ahead, so that relying parties
// know a key before it signs anything.
func (s *KeySet) JWKS(t time.Time) jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	if s == nil {
		return set
	}
	for _, k := range s.keys {
		if !k.retired(t) {
			set.Keys = append(set.Keys, k.public)
		}
	}
	return set
}

// algs returns the ID token algorithms the set has keys for.
func (s *KeySet) algs() []string {
	var out []string
	for _, alg := range idTokenAlgs {
		if s.hasAlg(alg) {
			out = append(out, string(alg))
		}
	}
	return out
}

func (s *KeySet) hasAlg(alg jose.SignatureAlgorithm) bool {
	if s == nil {
		return false
	}
	for _, k := range s.keys {
		if k.spec.Alg == alg {
			return true
		}
	}
	return false
}

// checkRetirement refuses a schedule that retires a key while tokens it
// signed are still valid: a key stops signing when the next key of its
// algorithm takes over, and must stay published for ttl after that.
func (s *KeySet) checkRetirement(ttl time.Duration) error {
	var errs []error
	for _, k := range s.keys {
		if k.spec.RetireAt.IsZero() {
			continue
		}
		next := s.successor(k)
		switch {
		case next == nil:
			errs = append(errs, fmt.Errorf("key %q retires with no later %s key to take over", k.spec.KID, k.spec.Alg))
		case next.spec.UseFrom.Add(ttl).After(k.spec.RetireAt):
			errs = append(errs, fmt.Errorf("key %q retires before the tokens it signs have expired (key %q takes over at %s, tokens live %s)",
				k.spec.KID, next.spec.KID, next.spec.UseFrom.Format(time.RFC3339), ttl))
		}
	}
	return errors.Join(errs...)
}

// successor is the key of k's algorithm with the earliest UseFrom after k's.
func (s *KeySet) successor(k *setKey) *setKey {
	var next *setKey
	for _, o := range s.keys {
		if o == k || o.spec.Alg != k.spec.Alg || !o.spec.UseFrom.After(k.spec.UseFrom) {
			continue
		}
		if next == nil || o.spec.UseFrom.Before(next.spec.UseFrom) {
			next = o
		}
	}
	return next
}
