package policy

import (
	"fmt"
	"slices"
	"strings"
)

// EnabledFor says for whom a vendor is switched on (SECURITY.md case 47).
// The zero value enables the vendor for everyone, as a policy without an
// enabled_for key does.
type EnabledFor struct {
	// SchoolUnits are the sisSchoolUnitCode values (8 digits) of the
	// school units the vendor is enabled for. nil means every unit; an
	// empty, non-nil list means none.
	SchoolUnits []string
	// Affiliations are the unscoped eduPersonAffiliation values the
	// vendor is enabled for; nil means every affiliation.
	Affiliations []string
}

// Allows is the decision of case 47: a person with the given
// sisSchoolUnitCode values and unscoped affiliations is enabled when
// (no school units are listed, or one of the person's units is) and (no
// affiliations are listed, or one of the person's affiliations is). It is
// a pure function of its arguments.
func (e EnabledFor) Allows(schoolUnits, affiliations []string) bool {
	return matchesAny(e.SchoolUnits, schoolUnits) && matchesAny(e.Affiliations, affiliations)
}

// matchesAny reports whether listed is nil (no restriction) or holds one
// of values.
func matchesAny(listed, values []string) bool {
	if listed == nil {
		return true
	}
	for _, v := range values {
		if slices.Contains(listed, v) {
			return true
		}
	}
	return false
}

// SchoolUnitsOf returns the values of codes that are enabled units, in
// their order: all of them when no unit is listed. The release step sends
// a vendor only these, so that a teacher in several units does not reveal
// the units where the vendor is not used.
func (e EnabledFor) SchoolUnitsOf(codes []string) []string {
	if e.SchoolUnits == nil {
		return codes
	}
	var out []string
	for _, c := range codes {
		if slices.Contains(e.SchoolUnits, c) {
			out = append(out, c)
		}
	}
	return out
}

// WithSchoolUnits returns a copy of p whose enabled school units are
// units (nil: every unit) instead of the policy file's list: the admin's
// override, which replaces the file's list for this vendor. The
// affiliations and everything else stay as in the file; p is not changed.
func (p *Policy) WithSchoolUnits(units []string) *Policy {
	c := *p
	c.EnabledFor.SchoolUnits = nil
	if units != nil {
		c.EnabledFor.SchoolUnits = append([]string{}, units...)
	}
	return &c
}

// ValidSchoolUnitCode reports whether s is a school unit code: 8 digits
// (Skolverket's skolenhetskod).
func ValidSchoolUnitCode(s string) bool {
	if len(s) != 8 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

type rawEnabled struct {
	SchoolUnits  []string `yaml:"school_units"`
	Affiliations []string `yaml:"affiliations"`
}

func (l *loader) validateEnabledFor(raw *rawEnabled, p *Policy) {
	if raw == nil {
		return
	}
	const key = "enabled_for"
	if raw.SchoolUnits != nil && !l.isBad(key+".school_units") {
		p.EnabledFor.SchoolUnits = l.enabledList(key+".school_units", raw.SchoolUnits,
			func(k, v string) bool {
				if !ValidSchoolUnitCode(v) {
					l.errorf(k, "%q is not a school unit code: 8 digits", v)
					return false
				}
				return true
			})
	}
	if raw.Affiliations != nil && !l.isBad(key+".affiliations") {
		p.EnabledFor.Affiliations = l.enabledList(key+".affiliations", raw.Affiliations,
			func(k, v string) bool {
				if strings.Contains(v, "@") {
					l.errorf(k, "%q: give the unscoped value, e.g. student", v)
					return false
				}
				if !affiliations[v] {
					l.errorf(k, "unknown affiliation %q; use student, faculty, staff, employee, member, affiliate, alum or library-walk-in", v)
					return false
				}
				return true
			})
	}
}

// enabledList checks each value with ok and reports duplicates and an
// empty list. A list with a bad value is still returned without it: the
// file has an error then and is not used.
func (l *loader) enabledList(key string, values []string, ok func(key, v string) bool) []string {
	if len(values) == 0 {
		l.errorf(key, "is empty; leave it out to enable the vendor for everyone")
		return []string{}
	}
	out := make([]string, 0, len(values))
	seen := map[string]int{}
	for i, v := range values {
		k := fmt.Sprintf("%s[%d]", key, i)
		v = strings.TrimSpace(v)
		if !ok(k, v) {
			continue
		}
		if j, dup := seen[v]; dup {
			l.errorf(k, "%q is listed twice (also [%d])", v, j)
			continue
		}
		seen[v] = i
		out = append(out, v)
	}
	return out
}
