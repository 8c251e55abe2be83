// Package mapping turns what a school's IdP sent about a person into the
// bridge's identity.Identity: upstream attribute names become the names of
// package attr, personal numbers become identity.PersonalNumber (never an
// attribute), scoped values are checked against the IdP's scopes, and the
// protected-identity status is read, failing closed.
//
// Nothing here logs, and no error or warning carries an attribute value.
package mapping

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/skolbro/skolbro/internal/assurance"
	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
)

// NameID is the Config.StableID value that selects the (persistent) NameID.
const NameID = "NameID"

// DefaultPersonalNumber returns the upstream attributes that carry a
// personal number when Config.PersonalNumber is empty: personalIdentityNumber
// and norEduPersonNIN.
func DefaultPersonalNumber() []string {
	return []string{"urn:oid:1.2.752.29.4.13", "urn:oid:1.3.6.1.4.1.2428.90.1.5"}
}

// Config says how one upstream IdP's attributes map to the bridge's.
type Config struct {
	// Upstream is the upstream's id.
	Upstream string
	// Attributes maps further upstream attribute names (an OID, a
	// FriendlyName or a custom name such as an ADFS claim URI) to the
	// friendly name of an attribute in package attr. Every attribute in
	// package attr is already recognised by its SAML and friendly names.
	Attributes map[string]string
	// StableID names the upstream attribute that identifies the person for
	// good, or NameID for the persistent NameID. Pseudonyms derive from
	// it, so it must never change for a person nor be reused for another.
	StableID string
	// PersonalNumber names the upstream attributes carrying a personal
	// number; empty means DefaultPersonalNumber(). Attributes that map to a
	// personal number attribute of package attr count as well.
	PersonalNumber []string
	// SecurityMarking names the upstream attribute carrying SS 12000
	// securityMarking (Ingen, Sekretessmarkering, Skyddad folkbokföring)
	// or EGIL's boolean; "" when the upstream sends none.
	SecurityMarking string
	// Scopes are the scopes the upstream may use in scoped values (its
	// shibmd:Scope); values with another scope are dropped.
	Scopes []string
	// Assurance maps what the upstream says about the login's strength
	// into the organiser's levels; nil understands the common words only.
	Assurance *assurance.Map
}

// Input is what the upstream protocol code extracted from a verified login.
type Input struct {
	// Subject is the NameID value (or the OIDC sub).
	Subject string
	// Attributes maps upstream attribute names to their values.
	Attributes map[string][]string
	// FriendlyNames maps upstream attribute names to the FriendlyName the
	// IdP gave them, if any.
	FriendlyNames map[string]string
	AuthnInstant  time.Time
	// AuthnContext is the SAML AuthnContextClassRef or the OIDC acr.
	AuthnContext string
	// AMR are the OIDC amr values.
	AMR []string
}

// Errors returned by Map. They carry no values.
var (
	// ErrNoStableID refuses a login without the stable identifier: no
	// pseudonym can be made for it.
	ErrNoStableID = errors.New("mapping: the upstream sent no stable identifier")
	// ErrAmbiguousStableID refuses a login whose stable identifier
	// attribute has more than one distinct value.
	ErrAmbiguousStableID = errors.New("mapping: the stable identifier attribute has several values")
	// ErrStableIDScope refuses a login whose scoped stable identifier
	// (eduPersonPrincipalName, eduPersonUniqueID, subject-id, pairwise-id)
	// has no scope, or one the upstream may not use: an IdP must not speak
	// for people of another domain.
	ErrStableIDScope = errors.New("mapping: the stable identifier's scope is not accepted for this upstream")
	// ErrConfig is wrapped by every configuration error.
	ErrConfig = errors.New("mapping: invalid configuration")
)

// Warning is a data problem in a login that did not stop it. It names the
// attribute and a fixed reason, never a value, so it is safe to log.
type Warning struct {
	Attribute string
	Reason    string
}

// String formats the warning for a log line.
func (w Warning) String() string { return w.Attribute + ": " + w.Reason }

// Warning reasons.
const (
	ReasonBadPersonalNumber     = "personal number not parsable; dropped"
	ReasonSeveralPersonalNumber = "several different personal numbers; all dropped"
	ReasonScopeNotAccepted      = "scope not accepted for this upstream; value dropped"
	ReasonNoScope               = "scoped attribute value without a scope; value dropped"
	ReasonLooksLikePersonalNum  = "value holds a personal number; dropped"
	ReasonNotAffiliation        = "not an eduPerson affiliation value; dropped"
	ReasonControlCharacter      = "value holds a control character; dropped"
	ReasonUnknownAssurance      = "authentication context not recognised; taken as the lowest level"
)

// affiliations is the eduPerson affiliation vocabulary; no other value is
// passed on as an affiliation.
var affiliations = map[string]bool{
	"student": true, "faculty": true, "staff": true, "employee": true,
	"member": true, "affiliate": true, "alum": true, "library-walk-in": true,
}

// scopedIdentifiers are the identifier attributes whose values are
// "value@scope" by definition.
var scopedIdentifiers = map[string]bool{
	attr.EPPN: true, attr.UniqueID: true, attr.SubjectID: true, attr.PairwiseID: true,
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Upstream) == "" {
		errs = append(errs, fmt.Errorf("%w: upstream id is empty", ErrConfig))
	}
	if strings.TrimSpace(c.StableID) == "" {
		errs = append(errs, fmt.Errorf("%w: upstream %s: stable_id is empty", ErrConfig, c.Upstream))
	}
	names := make([]string, 0, len(c.Attributes))
	for from := range c.Attributes {
		names = append(names, from)
	}
	sort.Strings(names)
	for _, from := range names {
		if _, ok := attr.Lookup(c.Attributes[from]); !ok {
			errs = append(errs, fmt.Errorf("%w: upstream %s: attribute %q maps to unknown attribute %q", ErrConfig, c.Upstream, from, c.Attributes[from]))
		}
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, "@ \t\r\n") {
			errs = append(errs, fmt.Errorf("%w: upstream %s: scope %q is not a domain name", ErrConfig, c.Upstream, s))
		}
	}
	return errors.Join(errs...)
}

// ScopedStableID reports whether the configured stable id is a scoped
// identifier (eduPersonPrincipalName, eduPersonUniqueID, subject-id,
// pairwise-id, also under a configured name), whose scope must then be one
// of Scopes.
func (c *Config) ScopedStableID() bool {
	name := c.StableID
	if to, ok := c.Attributes[name]; ok {
		name = to
	}
	d, ok := attr.Lookup(name)
	if !ok {
		d, ok = attr.LookupClaim(name)
	}
	return ok && scopedIdentifiers[d.Name]
}

// Map maps a login; see MapWithWarnings, whose warnings it drops.
func Map(c *Config, in Input, now time.Time) (*identity.Identity, error) {
	id, _, err := MapWithWarnings(c, in, now)
	return id, err
}

// upstreamAttr is one upstream attribute with every name it answers to.
type upstreamAttr struct {
	name     string
	friendly string
	def      attr.Def
	known    bool
	values   []string
}

// is reports whether a configured name denotes this attribute: its
// upstream name, its FriendlyName, or (when it is in package attr) the
// friendly or SAML name of that attribute.
func (u upstreamAttr) is(configName string) bool {
	if configName == "" {
		return false
	}
	if configName == u.name || (u.friendly != "" && configName == u.friendly) {
		return true
	}
	return u.known && (configName == u.def.Name || configName == u.def.SAMLName)
}

// MapWithWarnings maps a login into an Identity. now decides the century
// of 10-digit personal numbers. It fails only when no stable identifier
// can be found; data problems it can survive come back as warnings.
func MapWithWarnings(c *Config, in Input, now time.Time) (*identity.Identity, []Warning, error) {
	if c == nil {
		return nil, nil, fmt.Errorf("%w: no configuration", ErrConfig)
	}
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	m := &mapper{c: c, now: now, attrs: identity.Attributes{}}
	ups := m.collect(in)

	stable, err := m.stableID(ups, in.Subject)
	if err != nil {
		return nil, nil, err
	}
	m.personalNumber(ups)
	for _, u := range ups {
		m.attribute(u)
	}
	// The upstream's own assurance values never pass through: what the
	// bridge releases is the organiser's level it could establish.
	proven, unknown := c.Assurance.Proven(assurance.Signals{Class: in.AuthnContext, AMR: in.AMR, Assurance: m.assurance})
	if unknown > 0 {
		m.warn("authn_context", ReasonUnknownAssurance)
	}
	id := &identity.Identity{
		Upstream:              c.Upstream,
		StableID:              stable,
		PersonalNumber:        m.pn,
		PersonalNumberDropped: m.pnDropped,
		Attributes:            m.attrs,
		AuthnInstant:          in.AuthnInstant,
		AuthnContext:          in.AuthnContext,
		Assurance:             proven,
		Protection:            m.protection(ups),
	}
	return id, m.warnings, nil
}

type mapper struct {
	c     *Config
	now   time.Time
	attrs identity.Attributes
	pn    identity.PersonalNumber
	// pnDropped: a personal number was sent but not kept.
	pnDropped bool
	// assurance are the upstream's eduPersonAssurance values.
	assurance []string
	warnings  []Warning
}

func (m *mapper) warn(name, reason string) {
	m.warnings = append(m.warnings, Warning{Attribute: name, Reason: reason})
}

// collect resolves every upstream attribute, in name order so that merged
// values come out the same at every login.
func (m *mapper) collect(in Input) []upstreamAttr {
	names := make([]string, 0, len(in.Attributes))
	for n := range in.Attributes {
		names = append(names, n)
	}
	sort.Strings(names)
	ups := make([]upstreamAttr, 0, len(names))
	for _, n := range names {
		u := upstreamAttr{name: n, friendly: in.FriendlyNames[n], values: in.Attributes[n]}
		u.def, u.known = m.resolve(u.name, u.friendly)
		ups = append(ups, u)
	}
	return ups
}

// resolve finds the attribute an upstream name denotes. A FriendlyName is
// advisory in SAML, so it counts only through an explicit config entry.
func (m *mapper) resolve(name, friendly string) (attr.Def, bool) {
	if to, ok := m.c.Attributes[name]; ok {
		return attr.Lookup(to)
	}
	if to, ok := m.c.Attributes[friendly]; ok && friendly != "" {
		return attr.Lookup(to)
	}
	if d, ok := attr.Lookup(name); ok {
		return d, true
	}
	// An OIDC upstream names attributes by claim (given_name, email, ...).
	return attr.LookupClaim(name)
}

func (m *mapper) isPersonalNumber(u upstreamAttr) bool {
	if u.known && u.def.Kind == attr.PersonalNumber {
		return true
	}
	list := m.c.PersonalNumber
	if len(list) == 0 {
		list = DefaultPersonalNumber()
	}
	for _, n := range list {
		if u.is(n) {
			return true
		}
	}
	return false
}

func (m *mapper) stableID(ups []upstreamAttr, subject string) (identity.Secret, error) {
	if m.c.StableID == NameID || m.c.StableID == "sub" { // "sub": the OIDC subject
		if s := strings.TrimSpace(subject); s != "" {
			return identity.NewSecret(s), nil
		}
		return identity.Secret{}, ErrNoStableID
	}
	var found []string
	for _, u := range ups {
		if !u.is(m.c.StableID) {
			continue
		}
		pn := m.isPersonalNumber(u)
		// Scoped when configured so, whatever name or FriendlyName the
		// value came under, or when the attribute is a scoped identifier.
		scoped := m.c.ScopedStableID() || (u.known && scopedIdentifiers[u.def.Name])
		for _, v := range u.values {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			// One person, one pseudonym: 19121212-1212 and 191212121212
			// must give the same stable id.
			if pn {
				if p, err := identity.ParsePersonalNumber(v, m.now); err == nil {
					v = p.RevealPersonalNumber()
				}
			}
			if scoped {
				// The scope is a domain name: compared, and kept, in lower
				// case. The part before it stays as sent (case-sensitive).
				value, scope, ok := attr.SplitScope(v)
				if !ok || !m.scopeAccepted(scope) {
					return identity.Secret{}, ErrStableIDScope
				}
				v = value + "@" + strings.ToLower(scope)
			}
			if !contains(found, v) {
				found = append(found, v)
			}
		}
	}
	switch len(found) {
	case 0:
		return identity.Secret{}, ErrNoStableID
	case 1:
		return identity.NewSecret(found[0]), nil
	default:
		return identity.Secret{}, ErrAmbiguousStableID
	}
}

func (m *mapper) personalNumber(ups []upstreamAttr) {
	var found []identity.PersonalNumber
	var from string
	for _, u := range ups {
		if !m.isPersonalNumber(u) {
			continue
		}
		for _, v := range u.values {
			p, err := identity.ParsePersonalNumber(v, m.now)
			if err != nil {
				m.warn(u.name, ReasonBadPersonalNumber)
				m.pnDropped = true
				continue
			}
			if !containsPN(found, p) {
				found = append(found, p)
				from = u.name
			}
		}
	}
	switch len(found) {
	case 0:
	case 1:
		m.pn = found[0]
	default:
		// Which one is right cannot be known; keeping none fails closed.
		m.warn(from, ReasonSeveralPersonalNumber)
		m.pnDropped = true
	}
}

func containsPN(list []identity.PersonalNumber, p identity.PersonalNumber) bool {
	for _, q := range list {
		if q.RevealPersonalNumber() == p.RevealPersonalNumber() {
			return true
		}
	}
	return false
}

// attribute stores one upstream attribute's values, if it is one the bridge
// passes on.
func (m *mapper) attribute(u upstreamAttr) {
	if !u.known || m.isPersonalNumber(u) || u.is(m.c.SecurityMarking) {
		return
	}
	switch u.def.Kind {
	case attr.Derived:
		// The bridge derives its own; an upstream EPPN may only serve as
		// the stable id.
	case attr.Scoped:
		if u.def.Name != attr.ScopedAffiliation {
			return
		}
		for _, v := range u.values {
			v = strings.TrimSpace(v)
			if hasControl(v) {
				m.warn(u.name, ReasonControlCharacter)
				continue
			}
			value, scope, ok := attr.SplitScope(v)
			value = strings.ToLower(value)
			switch {
			case !ok:
				m.warn(u.name, ReasonNoScope)
			case !m.scopeAccepted(scope):
				m.warn(u.name, ReasonScopeNotAccepted)
			case !affiliations[value]:
				m.warn(u.name, ReasonNotAffiliation)
			default:
				m.add(attr.Affiliation, value)
			}
		}
	case attr.Plain:
		if u.def.Name == attr.Assurance {
			for _, v := range u.values {
				if v = strings.TrimSpace(v); v != "" {
					m.assurance = append(m.assurance, v)
				}
			}
			return
		}
		for _, v := range u.values {
			// Surrounding white space (a pretty-printed AttributeValue) is
			// trimmed; a control character inside is refused.
			v = strings.TrimSpace(v)
			if hasControl(v) {
				m.warn(u.name, ReasonControlCharacter)
				continue
			}
			if u.def.Name == attr.Affiliation {
				v = strings.ToLower(v)
				if !affiliations[v] {
					m.warn(u.name, ReasonNotAffiliation)
					continue
				}
			}
			// A personal number in the wrong attribute is still one, also
			// inside a longer value (a mail address or login name built
			// from it). Only the policy's personal_number opt-in releases
			// a number, and only in its own attribute.
			if _, err := identity.ParsePersonalNumber(v, m.now); err == nil || identity.ContainsPersonalNumber(v) {
				m.warn(u.name, ReasonLooksLikePersonalNum)
				continue
			}
			m.add(u.def.Name, v)
		}
	}
}

// hasControl reports whether v holds a control character (category Cc) or
// a line or paragraph separator, which could break a vendor's log line or
// header; such a value is dropped, not cleaned, as its meaning is unclear.
func hasControl(v string) bool {
	for _, r := range v {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return true
		}
	}
	return false
}

func (m *mapper) scopeAccepted(scope string) bool {
	for _, s := range m.c.Scopes {
		if strings.EqualFold(s, scope) {
			return true
		}
	}
	return false
}

// add appends a non-empty value once.
func (m *mapper) add(name, v string) {
	if v == "" || contains(m.attrs[name], v) {
		return
	}
	m.attrs[name] = append(m.attrs[name], v)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// protection reads the security marking. Anything but a clear "none" is
// protected: a missing attribute, an unknown value, or no configured source
// at all (the server may consult other sources later).
func (m *mapper) protection(ups []upstreamAttr) identity.Protection {
	if m.c.SecurityMarking == "" {
		return identity.ProtectionUnknown
	}
	level, seen := identity.ProtectionNone, false
	for _, u := range ups {
		if !u.is(m.c.SecurityMarking) {
			continue
		}
		for _, v := range u.values {
			p := parseMarking(v)
			if p == identity.ProtectionUnknown {
				return identity.ProtectionUnknown
			}
			seen = true
			if p.Rank() > level.Rank() {
				level = p
			}
		}
	}
	if !seen {
		return identity.ProtectionUnknown
	}
	return level
}

// parseMarking reads SS 12000 securityMarking or EGIL's boolean.
func parseMarking(v string) identity.Protection {
	v = strings.ToLower(strings.Join(strings.Fields(v), " "))
	// Fold ö, composed or decomposed, so "folkbokforing" matches too.
	v = strings.NewReplacer("o\u0308", "o", "ö", "o").Replace(v)
	switch v {
	case "ingen", "false":
		return identity.ProtectionNone
	case "sekretessmarkering":
		return identity.ProtectionSekretessmarkering
	case "skyddad folkbokforing", "true":
		return identity.ProtectionSkyddadFolkbokforing
	}
	return identity.ProtectionUnknown
}
