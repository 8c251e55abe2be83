// Package pseudonym derives the identifiers the bridge gives vendors in
// place of anything the school's IdP knows a person by.
//
// Every identifier is HMAC-SHA256 under the organiser's secret key over a
// length-prefixed message of a label naming the kind of identifier, the
// sector (for pairwise kinds) and the person's stable identifier. The
// distinct labels keep, for example, an EPPN and a subject-id of the same
// person unlinkable without the key; the sector makes pairwise identifiers
// differ per vendor.
//
// The upstream IdP is deliberately not part of the message: the stable
// identifier alone decides the pseudonym, so an organiser who moves to
// another IdP that keeps the same stable identifiers keeps every pseudonym
// (and Skolverket's provisioned EPPNs) unchanged. The price is that stable
// identifiers must be unique across all upstreams of one bridge: configure
// each upstream's stable identifier so that two IdPs can never assign the
// same value to different people (a scoped value or a personal number).
//
// The opaque part is the first 160 bits of the MAC in lower-case base32
// without padding: 32 characters of [a-z2-7], which satisfies the OASIS
// SAML V2.0 Subject Identifier Attributes profile ([a-z0-9][a-z0-9=-]*, at
// most 127 characters, compared case-insensitively) and eduPersonUniqueID's
// alphanumeric rule.
package pseudonym

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/skolbro/skolbro/internal/identity"
)

// MinKeyLen is the shortest accepted key, in bytes.
const MinKeyLen = 32

// opaqueBytes is how much of the MAC is kept: 160 bits, 32 base32 characters.
const opaqueBytes = 20

// Labels separate the kinds of identifier. Changing one changes every
// pseudonym of that kind, so they are fixed forever.
const (
	labelEPPN        = "skolbro/v1/eppn"
	labelSubjectID   = "skolbro/v1/subject-id"
	labelPairwiseID  = "skolbro/v1/pairwise-id"
	labelPairwiseSub = "skolbro/v1/oidc-pairwise-sub"
	// labelPairwiseEPPN is the per-vendor EPPN of a policy with eppn:
	// pairwise: unlinkable to the shared EPPN and to the pairwise-id.
	labelPairwiseEPPN = "skolbro/v1/pairwise-eppn"
	// labelGeneration makes the stable input of a later identity
	// generation; labelGenerationKey and labelRequestKey name a person's
	// generation records in the store.
	labelGeneration    = "skolbro/v1/generation"
	labelGenerationKey = "skolbro/v1/generation-key"
	labelRequestKey    = "skolbro/v1/generation-request"
)

// ErrKeyTooShort is returned for a key shorter than MinKeyLen bytes.
var ErrKeyTooShort = errors.New("pseudonym: key shorter than 32 bytes")

// ErrBadScope is returned for a scope that is not a lower-case DNS name.
var ErrBadScope = errors.New("pseudonym: scope must be a lower-case DNS name such as skola.example.se")

var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Deriver computes pseudonyms under one key and one scope (the organiser's
// domain, as published in shibmd:Scope). It is safe for concurrent use.
type Deriver struct {
	key   []byte
	scope string
}

// New returns a Deriver. key must hold at least MinKeyLen bytes and is
// copied; scope must be a lower-case DNS name with at least two labels.
func New(key []byte, scope string) (*Deriver, error) {
	if len(key) < MinKeyLen {
		return nil, ErrKeyTooShort
	}
	if !ValidScope(scope) {
		return nil, ErrBadScope
	}
	return &Deriver{key: append([]byte(nil), key...), scope: scope}, nil
}

// ValidScope reports whether s is a lower-case DNS name of at least two
// labels, each 1-63 characters of [a-z0-9-] not starting or ending with '-'.
func ValidScope(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// Scope returns the scope appended to scoped identifiers and values.
func (d *Deriver) Scope() string { return d.scope }

// EPPN returns the person's eduPersonPrincipalName, "<opaque>@<scope>". It
// is the same for every vendor, as Skolverket's provisioning requires.
func (d *Deriver) EPPN(stable identity.Secret) string {
	return d.opaque(labelEPPN, "", stable) + "@" + d.scope
}

// SubjectID returns the OASIS subject-id, "<opaque>@<scope>", the same for
// every vendor and unlinkable to the EPPN without the key.
func (d *Deriver) SubjectID(stable identity.Secret) string {
	return d.opaque(labelSubjectID, "", stable) + "@" + d.scope
}

// PairwiseID returns the OASIS pairwise-id, "<opaque>@<scope>", which
// differs per sector: the vendor's SAML entityID or OIDC sector identifier,
// compared exactly as given.
func (d *Deriver) PairwiseID(stable identity.Secret, sector string) string {
	return d.opaque(labelPairwiseID, sector, stable) + "@" + d.scope
}

// PairwiseEPPN returns a per-vendor eduPersonPrincipalName,
// "<opaque>@<scope>", for a policy with eppn: pairwise: it differs per
// sector (as PairwiseID) so that two vendors cannot join their users on
// it, and is unlinkable to the shared EPPN and to the pairwise-id.
func (d *Deriver) PairwiseEPPN(stable identity.Secret, sector string) string {
	return d.opaque(labelPairwiseEPPN, sector, stable) + "@" + d.scope
}

// Generation returns what the pseudonyms of identity generation g derive
// from in place of the stable id: the stable id itself for generation 0,
// and for g >= 1 a keyed HMAC of the stable id and g. Every identifier of
// a later generation is therefore new, and none can be linked to an
// earlier generation's without the key. The result is as secret as the
// stable id.
func (d *Deriver) Generation(stable identity.Secret, g int) identity.Secret {
	if g <= 0 || stable.IsZero() {
		return stable
	}
	// The NUL prefix keeps this input apart from the printable stable
	// ids upstreams send; a collision would need the key anyway.
	return identity.NewSecret("\x00gen" + strconv.Itoa(g) + "\x00" + d.mac(labelGeneration, stable.Reveal(), strconv.Itoa(g)))
}

// GenerationKey names the person with this stable id in the organiser's
// generation records: hex of a MAC under its own label, never the stable
// id itself.
func (d *Deriver) GenerationKey(stable identity.Secret) string {
	return d.mac(labelGenerationKey, stable.Reveal())
}

// RequestKey names the person with this personal number in the records
// of new identities requested by an admin: hex of a MAC, never the number.
// The number is few enough to be tried one by one, so the key (the
// pseudonym key) is what keeps it secret.
func (d *Deriver) RequestKey(pn identity.PersonalNumber) string {
	return d.mac(labelRequestKey, pn.RevealPersonalNumber())
}

// mac is hex(HMAC-SHA256(key, length-prefixed parts)).
func (d *Deriver) mac(parts ...string) string {
	m := hmac.New(sha256.New, d.key)
	for _, part := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		m.Write(n[:])
		io.WriteString(m, part)
	}
	return hex.EncodeToString(m.Sum(nil))
}

// PairwiseSub returns an OIDC pairwise subject identifier for sector,
// without a scope. It is unlinkable to PairwiseID for the same sector.
func (d *Deriver) PairwiseSub(stable identity.Secret, sector string) string {
	return d.opaque(labelPairwiseSub, sector, stable)
}

func (d *Deriver) opaque(label, sector string, stable identity.Secret) string {
	m := hmac.New(sha256.New, d.key)
	// Length prefixes keep the fields apart: no choice of sector and stable
	// id can produce the message of another pair.
	for _, part := range []string{label, sector, stable.Reveal()} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		m.Write(n[:])
		io.WriteString(m, part)
	}
	return strings.ToLower(encoding.EncodeToString(m.Sum(nil)[:opaqueBytes]))
}

// maxKeyFile bounds how much of a key file is read.
const maxKeyFile = 64 << 10

// LoadKey reads a pseudonym key from path. The file holds either hex or
// base64 text (surrounding white space ignored) decoding to at least
// MinKeyLen bytes, or at least MinKeyLen raw bytes. A file that group or
// others may read or write is refused: whoever reads the key can reverse
// every pseudonym by trying stable identifiers.
func LoadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pseudonym: open key file: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the checked file is the read one.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("pseudonym: stat key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("pseudonym: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("pseudonym: key file %s is accessible by group or others (mode %04o); run chmod 600 on it", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("pseudonym: read key file %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("pseudonym: key file %s is larger than %d bytes", path, maxKeyFile)
	}
	key, err := decodeKey(b)
	if err != nil {
		return nil, fmt.Errorf("pseudonym: key file %s: %w", path, err)
	}
	return key, nil
}

// decodeKey tries hex, then base64, then takes the bytes as they are. Hex
// goes first because every hex string is also valid base64.
func decodeKey(b []byte) ([]byte, error) {
	text := strings.TrimSpace(string(b))
	if k, err := hex.DecodeString(text); err == nil && text != "" {
		return checkLen(k)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(text); err == nil && text != "" {
			return checkLen(k)
		}
	}
	return checkLen(b)
}

func checkLen(k []byte) ([]byte, error) {
	if len(k) < MinKeyLen {
		return nil, ErrKeyTooShort
	}
	return k, nil
}

// Fingerprint identifies the key without revealing it (a hash under a
// fixed label), so that two organisers configured with one key can be
// refused; "" for a nil Deriver.
func (d *Deriver) Fingerprint() string {
	if d == nil {
		return ""
	}
	return keyFingerprint(d.key)
}

func keyFingerprint(key []byte) string {
	h := sha256.New()
	h.Write([]byte("skolbro key fingerprint\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil))
}

// KeyFingerprint is Fingerprint for a raw key, for the other keys an
// organiser must hold alone (the audit key).
func KeyFingerprint(key []byte) string { return keyFingerprint(key) }
