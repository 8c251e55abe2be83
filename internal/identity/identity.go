// Package identity holds the bridge's internal view of a person who logged in
// upstream. Every value in it is personal data: the types here redact
// themselves when printed, marshalled to JSON or logged, so that a careless
// log line cannot leak them.
package identity

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

const redacted = "[redacted]"

// Secret is a personal value, such as the upstream's stable identifier, that
// must never be printed or logged. Reveal returns the value.
type Secret struct{ v string }

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{v: s} }

// Reveal returns the wrapped value. Only pseudonym derivation and the manual
// protection register may call it.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether no value is held.
func (s Secret) IsZero() bool { return s.v == "" }

// String prints the value redacted.
func (s Secret) String() string { return redacted }

// GoString prints the value redacted, also under %#v.
func (s Secret) GoString() string { return redacted }

// MarshalJSON writes the value redacted.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalText writes the value redacted.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// PersonalNumber is a Swedish personal identity number (personnummer or
// samordningsnummer) normalised to 12 digits. It never leaves the bridge:
// it is redacted everywhere except through RevealPersonalNumber.
type PersonalNumber struct{ v string }

// ErrBadPersonalNumber is returned for a value that is not a personal number.
var ErrBadPersonalNumber = errors.New("not a personal identity number")

var separators = strings.NewReplacer("-", "", "+", "")

// ParsePersonalNumber accepts YYYYMMDDNNNN, YYYYMMDD-NNNN, YYMMDD-NNNN and
// YYMMDD+NNNN (the plus marks a person aged 100 or more), checks the Luhn
// digit and returns the 12-digit form. now decides the century of the
// 10-digit forms.
func ParsePersonalNumber(s string, now time.Time) (PersonalNumber, error) {
	s = strings.TrimSpace(s)
	plus := strings.Contains(s, "+")
	s = separators.Replace(s)
	for _, r := range s {
		if r < '0' || r > '9' {
			return PersonalNumber{}, ErrBadPersonalNumber
		}
	}
	switch len(s) {
	case 12:
	case 10:
		yy := int(s[0]-'0')*10 + int(s[1]-'0')
		year := now.Year()
		century := year / 100 * 100
		full := century + yy
		if full > year {
			full -= 100
		}
		if plus {
			full -= 100
		}
		s = itoa4(full) + s[2:]
	default:
		return PersonalNumber{}, ErrBadPersonalNumber
	}
	if !luhn(s[2:]) {
		return PersonalNumber{}, ErrBadPersonalNumber
	}
	return PersonalNumber{v: s}, nil
}

func itoa4(n int) string {
	b := []byte{'0', '0', '0', '0'}
	for i := 3; i >= 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b)
}

// luhn checks the control digit of the 10-digit form.
func luhn(s string) bool {
	sum := 0
	for i := 0; i < len(s); i++ {
		d := int(s[i] - '0')
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// RevealPersonalNumber returns the 12-digit value. Only pseudonym
// derivation, the protection register and subject access call it; nothing
// that talks to a vendor does.
func (p PersonalNumber) RevealPersonalNumber() string { return p.v }

// IsZero reports whether no number is held.
func (p PersonalNumber) IsZero() bool { return p.v == "" }

// String prints the number redacted.
func (p PersonalNumber) String() string { return redacted }

// GoString prints the number redacted, also under %#v.
func (p PersonalNumber) GoString() string { return redacted }

// MarshalJSON writes the number redacted.
func (p PersonalNumber) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalText writes the number redacted.
func (p PersonalNumber) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalZerologObject logs only whether a number is present.
func (p PersonalNumber) MarshalZerologObject(e *zerolog.Event) {
	e.Bool("present", !p.IsZero())
}

// Attributes maps an attribute's friendly name (see package attr) to its
// values. Values are personal data and are redacted when marshalled.
type Attributes map[string][]string

// Names returns the attribute names, sorted. Names are safe to log.
func (a Attributes) Names() []string {
	names := make([]string, 0, len(a))
	for n := range a {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// First returns the first value of name, or "".
func (a Attributes) First(name string) string {
	if v := a[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// MarshalJSON writes only the attribute names.
func (a Attributes) MarshalJSON() ([]byte, error) { return json.Marshal(a.Names()) }

// String prints only the attribute names.
func (a Attributes) String() string { return "attributes" + strings.Join(a.Names(), ",") }

// Identity is a person as the upstream IdP described them, mapped into the
// bridge's attribute names. Downstream code never receives an Identity: it
// receives only what the release step made of it.
type Identity struct {
	// Upstream is the id of the upstream IdP that authenticated the person.
	Upstream string
	// StableID is the upstream's stable identifier for the person, chosen
	// by configuration; pseudonyms are derived from it.
	StableID Secret
	// PersonalNumber is set when the upstream sent one.
	PersonalNumber PersonalNumber
	// PersonalNumberDropped is set when the upstream sent a personal number
	// the mapper could not keep (two different ones, or one that does not
	// parse). Every protection source keyed by the number must then fail
	// closed: the person may be in it under the number that was dropped.
	PersonalNumberDropped bool
	// Attributes are the mapped upstream attributes, personal number excluded.
	Attributes Attributes
	// AuthnInstant and AuthnContext describe the upstream authentication
	// as the upstream said it (AuthnContext is never released as it is).
	AuthnInstant time.Time
	AuthnContext string
	// Assurance are the organiser's levels the login proved (package
	// assurance: a closure, bas at least), as the upstream's mapping read
	// the upstream's class, acr, amr and eduPersonAssurance.
	Assurance []string
	// Protection is the person's protected-identity status for this login.
	Protection Protection
	// Generation is the identity generation the person's pseudonyms
	// derive from: 0 for the original identity, higher after the bridge
	// issued a new one (protection began, or an admin asked). Like
	// Protection it is the bridge's decision, set before release.
	Generation int
}

// MarshalZerologObject logs what is safe: the upstream, attribute names and
// whether a personal number is present.
func (id *Identity) MarshalZerologObject(e *zerolog.Event) {
	e.Str("upstream", id.Upstream).
		Strs("attribute_names", id.Attributes.Names()).
		Bool("personal_number_present", !id.PersonalNumber.IsZero()).
		Str("protection", id.Protection.String())
}

// Protection is a person's protected-identity status. The zero value is
// Unknown, which is treated as protected: the bridge fails closed.
type Protection int

// Protection levels, from the SS 12000 securityMarking values, plus the
// organiser's manual marking (the only cover for fingerade personuppgifter).
const (
	ProtectionUnknown Protection = iota
	ProtectionNone
	ProtectionSekretessmarkering
	ProtectionSkyddadFolkbokforing
	ProtectionManual
)

// Protected reports whether the person must be masked. Unknown is protected.
func (p Protection) Protected() bool { return p != ProtectionNone }

// Rank orders the known levels by how protective they are: none 0,
// sekretessmarkering 1, skyddad folkbokföring 2, the organiser's manual
// marking 3 (its explicit decision, the only cover for fingerade
// personuppgifter). Unknown is -1: no answer, which callers treat as
// protected (fail closed).
func (p Protection) Rank() int {
	switch p {
	case ProtectionNone:
		return 0
	case ProtectionSekretessmarkering:
		return 1
	case ProtectionSkyddadFolkbokforing:
		return 2
	case ProtectionManual:
		return 3
	}
	return -1
}

// String names the level; used in logs and policy files only.
func (p Protection) String() string {
	switch p {
	case ProtectionNone:
		return "none"
	case ProtectionSekretessmarkering:
		return "sekretessmarkering"
	case ProtectionSkyddadFolkbokforing:
		return "skyddad_folkbokforing"
	case ProtectionManual:
		return "manual"
	default:
		return "unknown"
	}
}

// GoString prints only the attribute names, also under %#v.
func (a Attributes) GoString() string { return a.String() }
