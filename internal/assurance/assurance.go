// Package assurance is the organiser's vocabulary of authentication levels
// and the per-upstream mapping into it: what a school IdP's class, acr,
// amr or eduPersonAssurance proves, and what to ask that IdP for when a
// vendor needs a level.
//
// The vocabulary is Skolfederation's bas and 2fa, the Swedish eID
// framework's loa2 to loa4 and REFEDS MFA. A level proves the levels it
// implies (Closure): loa4 → loa3 → loa2 → bas, loa3 → 2fa, and 2fa and
// REFEDS MFA prove each other. Every login proves at least bas (the level
// Skolfederation implies when nothing is said), and nothing the bridge
// does not know proves more: an unknown upstream context is bas.
//
// Everything here is pure: no I/O, no clock, no logging.
package assurance

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// The organiser's levels.
const (
	// Bas is Skolfederation's basic level, implied when nothing is said.
	Bas = "http://id.skolfederation.se/loa/bas"
	// TwoFactor is Skolfederation's two-factor level.
	TwoFactor = "http://id.skolfederation.se/loa/2fa"
	// LoA2, LoA3 and LoA4 are the Swedish eID framework's levels
	// (Digg, tillitsnivå 2 to 4).
	LoA2 = "http://id.elegnamnden.se/loa/1.0/loa2"
	LoA3 = "http://id.elegnamnden.se/loa/1.0/loa3"
	LoA4 = "http://id.elegnamnden.se/loa/1.0/loa4"
	// REFEDSMFA is the REFEDS multi-factor authentication profile.
	REFEDSMFA = "https://refeds.org/profile/mfa"
)

// Upstream words for multi-factor login that the bridge knows without
// configuration.
const (
	// ADFSMultipleAuthn is ADFS's class reference for a login with more
	// than one method.
	ADFSMultipleAuthn = "http://schemas.microsoft.com/claims/multipleauthn"
	// AMRMFA is the amr value for multiple-factor authentication
	// (RFC 8176), which Microsoft Entra ID sends.
	AMRMFA = "mfa"
)

// SAML classes a vendor may ask for that say no more than bas: a request
// for one of them is met by every login.
var basAliases = map[string]bool{
	"urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified":                true,
	"urn:oasis:names:tc:SAML:2.0:ac:classes:Password":                   true,
	"urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport": true,
}

// order is the vocabulary from weakest to strongest, as far as the levels
// can be ordered; it decides which level names a login (Primary) and the
// order of every list this package returns.
var order = []string{Bas, LoA2, REFEDSMFA, TwoFactor, LoA3, LoA4}

// implies holds each level's direct implications.
var implies = map[string][]string{
	LoA4:      {LoA3},
	LoA3:      {LoA2, TwoFactor},
	LoA2:      {Bas},
	TwoFactor: {REFEDSMFA, Bas},
	REFEDSMFA: {TwoFactor, Bas},
}

// Levels returns the organiser's vocabulary, weakest first.
func Levels() []string { return slices.Clone(order) }

// Known reports whether level is in the organiser's vocabulary.
func Known(level string) bool { return slices.Contains(order, level) }

// Closure returns levels with everything they imply, known levels only,
// in vocabulary order. Bas is always in it: every login proves bas.
func Closure(levels []string) []string {
	in := map[string]bool{Bas: true}
	var walk func(string)
	walk = func(l string) {
		if in[l] && l != Bas {
			return
		}
		in[l] = true
		for _, m := range implies[l] {
			walk(m)
		}
	}
	for _, l := range levels {
		if Known(l) {
			walk(l)
		}
	}
	var out []string
	for _, l := range order {
		if in[l] {
			out = append(out, l)
		}
	}
	return out
}

// Implies reports whether proving a proves b.
func Implies(a, b string) bool { return slices.Contains(Closure([]string{a}), b) }

// MultiFactor reports whether level needs more than one factor.
func MultiFactor(level string) bool { return level != "" && Implies(level, TwoFactor) }

// Satisfies reports whether proven (a closure) holds one of anyOf. An
// empty anyOf asks nothing and is always met.
func Satisfies(proven, anyOf []string) bool {
	if len(anyOf) == 0 {
		return true
	}
	for _, l := range anyOf {
		if slices.Contains(proven, l) {
			return true
		}
	}
	return false
}

// Primary is the level that names a login proving proven (a closure): its
// strongest level in vocabulary order, bas when nothing else.
func Primary(proven []string) string {
	best := Bas
	for _, l := range order {
		if slices.Contains(proven, l) {
			best = l
		}
	}
	return best
}

// Comparisons of a SAML RequestedAuthnContext. OIDC's acr_values and
// essential acr are Minimum.
const (
	Exact   = "exact"
	Minimum = "minimum"
	Better  = "better"
	Maximum = "maximum"
)

// Requested is what a vendor asked for: levels of the organiser's
// vocabulary and how they compare.
type Requested struct {
	Levels     []string `json:"l,omitempty"`
	Comparison string   `json:"c,omitempty"`
}

// FromClasses reads a vendor's requested classes (SAML AuthnContextClassRef
// or OIDC acr values) into levels. A class that says no more than bas
// (PasswordProtectedTransport, Password, unspecified) asks for bas.
// known is false when classes were given and none of them is a level the
// bridge can prove: such a request cannot be met.
func FromClasses(classes []string, comparison string) (Requested, bool) {
	var r Requested
	switch comparison {
	case "":
		comparison = Exact
	case Exact, Minimum, Better, Maximum:
	default:
		return r, false
	}
	r.Comparison = comparison
	for _, c := range classes {
		l := c
		if basAliases[c] {
			l = Bas
		}
		if Known(l) && !slices.Contains(r.Levels, l) {
			r.Levels = append(r.Levels, l)
		}
	}
	return r, len(classes) == 0 || len(r.Levels) > 0
}

// Asked returns the levels a login must prove one of to meet r: for exact,
// minimum and better the requested levels (better is checked by Choose),
// none for maximum, which every login meets with a lower level.
func (r Requested) Asked() []string {
	if r.Comparison == Maximum {
		return nil
	}
	return r.Levels
}

// Choose returns the level to name in the answer to r for a login that
// proved proven (a closure), or ok false when r is not met. Never a level
// that was not proven.
func (r Requested) Choose(proven []string) (level string, ok bool) {
	if len(r.Levels) == 0 {
		return Primary(proven), true
	}
	switch r.Comparison {
	case Maximum:
		// The first requested level proven, else the strongest proven
		// level below a requested one (bas at least).
		for _, l := range r.Levels {
			if slices.Contains(proven, l) {
				return l, true
			}
		}
		best := Bas
		for _, l := range order {
			for _, max := range r.Levels {
				if slices.Contains(proven, l) && Implies(max, l) {
					best = l
				}
			}
		}
		return best, true
	case Better:
		// A proven level stronger than a requested one.
		for i := len(order) - 1; i >= 0; i-- {
			l := order[i]
			for _, want := range r.Levels {
				if l != want && slices.Contains(proven, l) && Implies(l, want) && !Implies(want, l) {
					return l, true
				}
			}
		}
		return "", false
	default:
		for _, l := range r.Levels {
			if slices.Contains(proven, l) {
				return l, true
			}
		}
		return "", false
	}
}

// Map is one upstream's mapping: which upstream values prove which of the
// organiser's levels, and what to ask the upstream for to get a level.
// The zero value and nil hold the built-in defaults only.
type Map struct {
	values map[string][]string
	ask    map[string][]string
}

// defaults are the upstream values every upstream is understood to say
// in the common words: the vocabulary's own URIs, ADFS's multiple
// authentication class, RFC 8176's amr "mfa", and the SAML password
// classes (bas, so that they are not reported as unknown).
func defaults() map[string][]string {
	m := map[string][]string{
		ADFSMultipleAuthn: {TwoFactor},
		AMRMFA:            {TwoFactor},
	}
	for _, l := range order {
		m[l] = []string{l}
	}
	for c := range basAliases {
		m[c] = []string{Bas}
	}
	return m
}

// NewMap builds an upstream's mapping from configuration: values maps an
// upstream value (class reference, acr, amr value or eduPersonAssurance
// value) to the organiser level it proves, added to (or replacing) the
// defaults; ask maps an organiser level to the upstream value to request
// for it. Every problem is reported at once; keys name the entry.
func NewMap(values, ask map[string]string) (*Map, error) {
	var errs []error
	m := &Map{values: defaults(), ask: map[string][]string{}}
	for _, k := range sortedKeys(values) {
		l := strings.TrimSpace(values[k])
		switch {
		case strings.TrimSpace(k) == "":
			errs = append(errs, errors.New("map: an empty upstream value"))
		case !Known(l):
			errs = append(errs, fmt.Errorf("map: %q: %q is not a level of the organiser's vocabulary (%s)", k, l, strings.Join(order, ", ")))
		default:
			m.values[k] = []string{l}
		}
	}
	for _, l := range sortedKeys(ask) {
		v := strings.TrimSpace(ask[l])
		switch {
		case !Known(l):
			errs = append(errs, fmt.Errorf("request: %q is not a level of the organiser's vocabulary (%s)", l, strings.Join(order, ", ")))
		case v == "":
			errs = append(errs, fmt.Errorf("request: %q: the upstream value to ask for is empty", l))
		default:
			m.ask[l] = []string{v}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (m *Map) lookup(v string) ([]string, bool) {
	if m == nil || m.values == nil {
		l, ok := defaults()[v]
		return l, ok
	}
	l, ok := m.values[v]
	return l, ok
}

// Signals is what an upstream said about a login.
type Signals struct {
	// Class is the SAML AuthnContextClassRef or the OIDC acr.
	Class string
	// AMR are the OIDC amr values.
	AMR []string
	// Assurance are the eduPersonAssurance values; when there are any they
	// supersede Class and AMR (Skolfederation's rule).
	Assurance []string
}

// Proven returns the closure of the levels s proves under m, and how many
// signals m did not recognise (each proves nothing: bas). Bas is always
// proven.
func (m *Map) Proven(s Signals) (proven []string, unknown int) {
	signals := s.Assurance
	if len(signals) == 0 {
		signals = append([]string{}, s.AMR...)
		if s.Class != "" {
			signals = append(signals, s.Class)
		}
	}
	var levels []string
	for _, v := range signals {
		l, ok := m.lookup(strings.TrimSpace(v))
		if !ok {
			unknown++
			continue
		}
		levels = append(levels, l...)
	}
	return Closure(levels), unknown
}

// Request returns the upstream values to ask for so that the login proves
// one of levels: the configured value of every level that implies one of
// them, in vocabulary order, without repeats. Empty when none is
// configured: the upstream is then not asked, and the answer is checked
// all the same.
func (m *Map) Request(levels []string) []string {
	if m == nil || len(levels) == 0 {
		return nil
	}
	var out []string
	for _, l := range order {
		vs, ok := m.ask[l]
		if !ok {
			continue
		}
		for _, want := range levels {
			if Implies(l, want) {
				for _, v := range vs {
					if !slices.Contains(out, v) {
						out = append(out, v)
					}
				}
				break
			}
		}
	}
	return out
}

// Offers returns the levels the configuration says the upstream can prove:
// the closure of the configured map's levels and the levels it can be
// asked for. Empty when neither is configured (nothing is claimed).
func (m *Map) Offers() []string {
	if m == nil {
		return nil
	}
	var levels []string
	def := defaults()
	for v, ls := range m.values {
		if d, ok := def[v]; ok && slices.Equal(d, ls) {
			continue // a default, not configuration
		}
		levels = append(levels, ls...)
	}
	for l := range m.ask {
		levels = append(levels, l)
	}
	if len(levels) == 0 {
		return nil
	}
	return Closure(levels)
}

// Union returns the closure of every list's levels, or nil when all are
// empty.
func Union(lists ...[]string) []string {
	var all []string
	for _, l := range lists {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return nil
	}
	return Closure(all)
}
