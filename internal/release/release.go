// Package release decides what a vendor receives about a person: the
// attributes its policy lists, pseudonyms in place of identifiers, and a
// masked set for a protected person. Release is a pure function (no I/O,
// no clock, no logging) so that every privacy rule is testable as a table;
// the downstream protocol code accepts only its output, never an Identity.
package release

import (
	"time"

	"github.com/skolbro/skolbro/internal/assurance"
	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/pseudonym"
)

// Attribute is one released attribute with its values.
type Attribute struct {
	Def    attr.Def
	Values []string
}

// Released is everything a vendor may receive about one login.
type Released struct {
	VendorID string
	EntityID string
	// NameID is the pairwise-id value when the policy's name_id is
	// pairwise; "" means the downstream makes a transient NameID.
	NameID string
	// Sub is the OIDC pairwise subject (OIDC Core 8.1) for an OIDC vendor.
	Sub string
	// Attributes are in policy order, the personal number (if any) last;
	// attributes without values are left out.
	Attributes []Attribute

	// AuthnInstant is the upstream's. AuthnContext is the organiser's
	// level (package assurance) that names the login: never one it did
	// not prove.
	AuthnInstant time.Time
	AuthnContext string

	// Masked is true when the person was treated as protected. It is for
	// the bridge's own audit log; downstream code must not send it.
	Masked bool
	// Generation is the identity generation the pseudonyms were derived
	// from (identity.Identity.Generation). Like Masked it is for the
	// audit log only.
	Generation int
}

// Names returns the released attribute names in order. They are safe to log.
func (r *Released) Names() []string {
	names := make([]string, len(r.Attributes))
	for i, a := range r.Attributes {
		names[i] = a.Def.Name
	}
	return names
}

// Release computes what the vendor of p receives about id. The pseudonyms
// are derived by d from id.StableID in identity generation id.Generation
// (see pseudonym.Deriver.Generation); without a stable id (or without d)
// no derived attribute and no pairwise NameID is released. Inputs are not
// modified and the result shares no slices with them.
func Release(p *policy.Policy, id *identity.Identity, d *pseudonym.Deriver) *Released {
	r := &Released{
		VendorID:     p.ID,
		AuthnInstant: id.AuthnInstant,
		// The organiser's level that names the login; the server names
		// the one a vendor asked for when it asked (assurance.Requested).
		AuthnContext: assurance.Primary(assurance.Closure(id.Assurance)),
		// Unknown counts as protected: the bridge fails closed.
		Masked:     id.Protection.Protected(),
		Generation: id.Generation,
	}
	if p.SAML != nil {
		r.EntityID = p.SAML.EntityID
	}
	sector := r.EntityID
	if sector == "" && p.OIDC != nil {
		sector = p.OIDC.Sector
	}
	canDerive := d != nil && !id.StableID.IsZero()
	var stable identity.Secret
	if canDerive {
		// Every identifier comes from the person's current generation:
		// after a new identity, none of the earlier ones is issued again.
		stable = d.Generation(id.StableID, id.Generation)
	}

	if p.SAML != nil && p.SAML.NameID == policy.NameIDPairwise && canDerive {
		r.NameID = d.PairwiseID(stable, sector)
	}
	if p.OIDC != nil && canDerive && p.OIDC.Sector != "" {
		r.Sub = d.PairwiseSub(stable, p.OIDC.Sector)
	}

	for _, rule := range p.Attributes {
		action := maskAction(p, rule.Def, id.Protection)
		if action == policy.Withhold {
			continue
		}
		if action == policy.Replace {
			r.Attributes = append(r.Attributes, Attribute{Def: rule.Def, Values: []string{replacement(p, rule.Def, id.Protection)}})
			continue
		}
		var values []string
		switch rule.Def.Kind {
		case attr.Derived:
			if canDerive {
				values = derive(rule.Def.Name, stable, sector, p.EPPN, d)
			}
		case attr.Scoped:
			if d != nil {
				values = scoped(rule, id.Attributes, d.Scope())
			}
		case attr.Plain:
			values = filter(rule, id.Attributes[rule.Def.Name])
			if rule.Def.Name == attr.Assurance {
				// The organiser's levels the login proved, never the
				// upstream's own words (case 49).
				values = filter(rule, assurance.Closure(id.Assurance))
			}
			if rule.Def.Name == attr.SchoolUnitCode {
				// Only the units the vendor is enabled for (case 47).
				values = p.EnabledFor.SchoolUnitsOf(values)
			}
		case attr.PersonalNumber:
			// Never from the attribute list: only through the opt-in below.
		}
		if len(values) > 0 {
			r.Attributes = append(r.Attributes, Attribute{Def: rule.Def, Values: values})
		}
	}

	// The personal number: only with the policy's explicit opt-in, only
	// for a person known not to be protected, only in the 12-digit form.
	if o := p.PersonalNumber; o != nil && o.Def.Kind == attr.PersonalNumber &&
		!id.Protection.Protected() && !id.PersonalNumber.IsZero() {
		r.Attributes = append(r.Attributes, Attribute{Def: o.Def, Values: []string{id.PersonalNumber.RevealPersonalNumber()}})
	}
	return r
}

// maskAction decides what happens to one attribute of the person: Keep
// (release as for anyone), Withhold or Replace. For an unprotected person
// everything in the policy is kept; for a protected one (unknown counts as
// protected) the policy's rule for that attribute and level decides, a
// rule naming the level before one for every level, and without a rule
// the default below.
func maskAction(p *policy.Policy, d attr.Def, level identity.Protection) policy.MaskAction {
	if !level.Protected() {
		return policy.Keep
	}
	if m := maskRule(p, d, level); m != nil {
		return m.Action
	}
	if protectedDefault(d) {
		return policy.Keep
	}
	return policy.Withhold
}

func maskRule(p *policy.Policy, d attr.Def, level identity.Protection) *policy.MaskRule {
	var general *policy.MaskRule
	for i := range p.Protected {
		m := &p.Protected[i]
		if m.Def.Name != d.Name || !m.Applies(level) {
			continue
		}
		if len(m.Levels) > 0 {
			return m
		}
		general = m
	}
	return general
}

func replacement(p *policy.Policy, d attr.Def, level identity.Protection) string {
	return maskRule(p, d, level).Value
}

// protectedDefault releases, for a protected person, only what cannot tell
// anyone who or where the person is: pseudonyms, affiliation and assurance.
func protectedDefault(d attr.Def) bool {
	if d.Identifying || d.Kind == attr.PersonalNumber {
		return false
	}
	if d.Kind == attr.Derived {
		return true
	}
	switch d.Name {
	case attr.ScopedAffiliation, attr.Affiliation, attr.Assurance:
		return true
	}
	return false
}

func derive(name string, stable identity.Secret, sector string, eppn policy.EPPNKind, d *pseudonym.Deriver) []string {
	switch name {
	case attr.EPPN, attr.UniqueID:
		// eduPersonUniqueID has the EPPN's form and, as the bridge never
		// reassigns an EPPN, the same value, shared or pairwise.
		if eppn == policy.EPPNPairwise {
			if sector == "" {
				// Without a sector every such vendor would share one
				// value: release none rather than the shared EPPN.
				return nil
			}
			return []string{d.PairwiseEPPN(stable, sector)}
		}
		return []string{d.EPPN(stable)}
	case attr.PairwiseID, attr.TargetedID:
		if sector == "" {
			// Without a sector every such vendor would share one value.
			return nil
		}
		return []string{d.PairwiseID(stable, sector)}
	case attr.SubjectID:
		return []string{d.SubjectID(stable)}
	}
	// A derived attribute the bridge cannot compute is left out.
	return nil
}

// scoped renders eduPersonScopedAffiliation from the unscoped
// eduPersonAffiliation values the mapping stored, with the bridge's scope.
func scoped(rule policy.Rule, attrs identity.Attributes, scope string) []string {
	if rule.Def.Name != attr.ScopedAffiliation {
		return nil
	}
	var out []string
	for _, v := range filter(rule, attrs[attr.Affiliation]) {
		out = append(out, v+"@"+scope)
	}
	return out
}

// filter copies the values the rule allows.
func filter(rule policy.Rule, values []string) []string {
	var out []string
	for _, v := range values {
		if v != "" && rule.Allows(v) {
			out = append(out, v)
		}
	}
	return out
}

// Enabled reports whether the vendor of p is switched on for id: the
// policy's EnabledFor decision on the person's sisSchoolUnitCode values and
// unscoped affiliations (SECURITY.md case 47). Like Release it is pure; the
// caller refuses the login when it is false and releases nothing.
func Enabled(p *policy.Policy, id *identity.Identity) bool {
	return p.EnabledFor.Allows(id.Attributes[attr.SchoolUnitCode], id.Attributes[attr.Affiliation])
}
