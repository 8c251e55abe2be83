package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/pseudonym"
)

// subjectKeyLabel separates audit keys from every other MAC the bridge
// computes. Changing it makes every logged event unfindable, so it is
// fixed forever.
const subjectKeyLabel = "skolbro-audit-v1"

// stableIDPrefix separates keys over a stable id from keys over a personal
// number: a 12-digit number never starts with "sid:", so the two message
// spaces cannot meet.
const stableIDPrefix = "sid:"

// subjectKeyHexLen is the length of a subject key: a full SHA-256 MAC.
const subjectKeyHexLen = 2 * sha256.Size

// ErrAuditKeyTooShort is returned for an audit key shorter than 32 bytes.
var ErrAuditKeyTooShort = errors.New("audit: key shorter than 32 bytes")

// SubjectKeyer computes the subject key that names a person in the audit
// log. Its key must differ from the pseudonym key: whoever holds the
// audit key can test personal numbers against the log, which the
// organiser needs for subject access and nobody else should be able to do,
// and a leaked pseudonym key must not also unlock the log. It is safe for
// concurrent use.
type SubjectKeyer struct {
	key []byte
}

// NewSubjectKeyer returns a keyer over a copy of key, which must hold at
// least 32 bytes.
func NewSubjectKeyer(key []byte) (*SubjectKeyer, error) {
	if len(key) < pseudonym.MinKeyLen {
		return nil, ErrAuditKeyTooShort
	}
	return &SubjectKeyer{key: append([]byte(nil), key...)}, nil
}

// LoadSubjectKeyer reads the audit key from path with the same rules as
// the pseudonym key (hex, base64 or raw bytes; mode 0600 or stricter).
func LoadSubjectKeyer(path string) (*SubjectKeyer, error) {
	key, err := pseudonym.LoadKey(path)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	return NewSubjectKeyer(key)
}

// Key returns the subject key of id: a MAC over the personal number when
// the upstream sent one, else over the upstream's stable identifier, or ""
// when id has neither.
//
// The personal number goes first because subject access starts from it:
// a pupil, a guardian or an auditor asks "what was released about
// 20100315-xxxx?", and the organiser answers by computing
// KeyForPersonalNumber and scanning the log, with no lookup in the
// upstream directory. The same number gives the same key whichever IdP
// the person came through. A login without a personal number falls back
// to the stable id. Events also carry every other key (Keys), so that
// such a login is found by the stable id.
func (k *SubjectKeyer) Key(id *identity.Identity) string {
	if id == nil {
		return ""
	}
	if !id.PersonalNumber.IsZero() {
		return k.KeyForPersonalNumber(id.PersonalNumber)
	}
	return k.KeyForStableID(id.StableID)
}

// Keys returns every subject key the bridge can derive for id, the
// primary one (Key) first: the personal number's when the upstream sent
// one, then the stable id's, always. A release is logged under all of
// them, so that subject access by a personal number finds it and so does
// subject access by the stable id, also for logins without a number or
// whose number the mapper dropped. nil when id has neither.
func (k *SubjectKeyer) Keys(id *identity.Identity) []string {
	if id == nil {
		return nil
	}
	var keys []string
	if pk := k.KeyForPersonalNumber(id.PersonalNumber); pk != "" {
		keys = append(keys, pk)
	}
	if sk := k.KeyForStableID(id.StableID); sk != "" {
		keys = append(keys, sk)
	}
	return keys
}

// KeyForPersonalNumber returns the subject key of a personal number, or
// "" for the zero value.
func (k *SubjectKeyer) KeyForPersonalNumber(pn identity.PersonalNumber) string {
	if pn.IsZero() {
		return ""
	}
	return k.mac(pn.RevealPersonalNumber())
}

// KeyForStableID returns the subject key of a person known to the bridge
// only by the upstream's stable identifier, or "" for an empty one.
func (k *SubjectKeyer) KeyForStableID(s identity.Secret) string {
	if s.IsZero() {
		return ""
	}
	return k.mac(stableIDPrefix + s.Reveal())
}

func (k *SubjectKeyer) mac(subject string) string {
	m := hmac.New(sha256.New, k.key)
	io.WriteString(m, subjectKeyLabel)
	io.WriteString(m, subject)
	return hex.EncodeToString(m.Sum(nil))
}

// Fingerprint identifies the key without revealing it; "" for a nil
// keyer.
func (k *SubjectKeyer) Fingerprint() string {
	if k == nil {
		return ""
	}
	return pseudonym.KeyFingerprint(k.key)
}
