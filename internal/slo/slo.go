// Package slo keeps what Single Logout needs to know about a browser: the
// vendors it logged in to, with the NameID and SessionIndex (SAML) or sub
// and sid (OIDC) each was given, and the school IdP's own NameID and
// SessionIndex (or sid). That is a record per browser in the store, under
// a random token that only the browser holds (in a cookie).
//
// The store never sees a record in the clear: each is sealed (AES-256-GCM)
// under a key derived from the token, and kept under a name derived from
// it too. Whoever reads the store learns neither the school IdP's NameID
// (which may be an e-mail address or worse) nor which pseudonyms belong
// together; whoever holds the cookie has only their own browser's record.
// The record carries no attribute, name or personal number.
package slo

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/skolbro/skolbro/internal/samlslo"
	"github.com/skolbro/skolbro/internal/store"
)

// Store key prefixes. Records are named by Handle(token), never by the
// token.
const (
	PrefixSession = "slo:s:"
	PrefixOp      = "slo:op:"
)

// Protocols of a participant.
const (
	ProtocolSAML = "saml"
	ProtocolOIDC = "oidc"
)

// Session is one browser's logins, for logging them out together.
type Session struct {
	Upstream *Upstream     `json:"u,omitempty"`
	Vendors  []Participant `json:"v,omitempty"`
	// Started is when the first login of the record completed.
	Started time.Time `json:"t"`
}

// Upstream is the school IdP's session, as the IdP named it.
type Upstream struct {
	// ID is the organiser's upstream id.
	ID       string `json:"id"`
	Protocol string `json:"p"`
	// Subject is the IdP's NameID value or sub: it tells whether a new
	// login is the same person as the record's.
	Subject string `json:"s"`
	// NameID and SessionIndex, as the SAML IdP wrote them.
	NameID       *samlslo.NameID `json:"n,omitempty"`
	SessionIndex string          `json:"i,omitempty"`
	// SID is the OIDC IdP's sid claim, if it sent one.
	SID string `json:"sid,omitempty"`
}

// Participant is one vendor logged in through the bridge in this browser.
type Participant struct {
	// Vendor is the vendor's policy id.
	Vendor   string `json:"v"`
	Protocol string `json:"p"`
	// Hub is set when the vendor came through the hub's entity.
	Hub bool `json:"h,omitempty"`
	// SAML: the vendor's entityID and what its response named.
	EntityID     string          `json:"e,omitempty"`
	NameID       *samlslo.NameID `json:"n,omitempty"`
	SessionIndex string          `json:"i,omitempty"`
	// OIDC: the client, the pairwise sub and the sid its ID token carried.
	ClientID string `json:"c,omitempty"`
	Sub      string `json:"s,omitempty"`
	SID      string `json:"sid,omitempty"`
}

// Add records a login at p, replacing an earlier login at the same vendor
// (its session there was replaced too).
func (s *Session) Add(p Participant) {
	for i := range s.Vendors {
		if s.Vendors[i].Vendor == p.Vendor && s.Vendors[i].Protocol == p.Protocol && s.Vendors[i].Hub == p.Hub {
			s.Vendors[i] = p
			return
		}
	}
	s.Vendors = append(s.Vendors, p)
}

// SameUpstream reports whether a login through u continues the record:
// the same upstream and the same person there.
func (s *Session) SameUpstream(u *Upstream) bool {
	return s.Upstream != nil && u != nil && s.Upstream.ID == u.ID && s.Upstream.Subject == u.Subject
}

// NewToken returns a fresh random token: 256 bits, base64url.
func NewToken(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("slo: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ValidToken reports whether t has the shape NewToken gives.
func ValidToken(t string) bool {
	if len(t) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(t)
	return err == nil && len(b) == 32
}

func derive(token, label string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("skolbro/slo/" + label))
	return m.Sum(nil)
}

// Handle names a token's records in the store and in other records: it
// reveals nothing of the token.
func Handle(token string) string { return hex.EncodeToString(derive(token, "handle")) }

// ErrSealed is returned when a record does not open under the token: it
// was not written with it, or it was changed.
var ErrSealed = errors.New("slo: record does not open")

func aead(token string) (cipher.AEAD, error) {
	block, err := aes.NewCipher(derive(token, "seal"))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts v under token; key (the store key) is bound to it, so a
// record moved to another key does not open.
func Seal(token, key string, v any) ([]byte, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	g, err := aead(token)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, fmt.Errorf("slo: random: %w", err)
	}
	return g.Seal(nonce, nonce, plain, []byte(key)), nil
}

// Open decrypts a record Seal made under token and key into v.
func Open(token, key string, b []byte, v any) error {
	g, err := aead(token)
	if err != nil {
		return err
	}
	if len(b) < g.NonceSize() {
		return ErrSealed
	}
	plain, err := g.Open(nil, b[:g.NonceSize()], b[g.NonceSize():], []byte(key))
	if err != nil {
		return ErrSealed
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return ErrSealed
	}
	return nil
}

// Sealed keeps records sealed under their tokens in a store, under
// Prefix+Handle(token).
type Sealed struct {
	Store  store.Store
	Prefix string
}

func (s Sealed) key(token string) string { return s.Prefix + Handle(token) }

// Put stores v under token for ttl.
func (s Sealed) Put(ctx context.Context, token string, v any, ttl time.Duration) error {
	k := s.key(token)
	b, err := Seal(token, k, v)
	if err != nil {
		return err
	}
	return s.Store.Put(ctx, k, b, ttl)
}

// Get reads the record under token into v: store.ErrNotFound when there
// is none, ErrSealed when it does not open.
func (s Sealed) Get(ctx context.Context, token string, v any) error {
	k := s.key(token)
	b, err := s.Store.Get(ctx, k)
	if err != nil {
		return err
	}
	return Open(token, k, b, v)
}

// Take reads and deletes the record under token atomically: of two
// concurrent Takes one gets it.
func (s Sealed) Take(ctx context.Context, token string, v any) error {
	k := s.key(token)
	b, err := s.Store.Take(ctx, k)
	if err != nil {
		return err
	}
	return Open(token, k, b, v)
}

// Delete removes the record under token.
func (s Sealed) Delete(ctx context.Context, token string) error {
	return s.Store.Delete(ctx, s.key(token))
}

// FormToken is what the logout page's form carries for the browser that
// holds token: another site cannot make it, so it cannot log the person
// out (logout CSRF).
func FormToken(token string) string { return hex.EncodeToString(derive(token, "form")) }
