package policy

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/skolbro/skolbro/internal/assurance"
)

// AssuranceRule is a vendor's minimum level of authentication (SECURITY.md
// case 49): a login that does not prove one of Minimum is refused, for
// everyone or only for persons with one of the affiliations in For.
type AssuranceRule struct {
	// Minimum lists levels of the organiser's vocabulary (package
	// assurance); proving any one of them (or a level that implies it)
	// meets the rule.
	Minimum []string
	// For lists unscoped affiliations the rule applies to; nil means
	// everyone.
	For []string
}

// Applies reports whether the rule covers a person with the given
// unscoped affiliations.
func (a *AssuranceRule) Applies(affiliations []string) bool {
	if a == nil || len(a.Minimum) == 0 {
		return false
	}
	return matchesAny(a.For, affiliations)
}

// dnpAssurance is what the dnp preset requires: staff logging in to the
// national tests need Digg's level 2 (Skolverket) or, where the
// organiser's IdP speaks Skolfederation's words, its two-factor level.
// employee is listed with faculty and staff because some IdPs give only it
// to school staff.
func dnpAssurance() *AssuranceRule {
	return &AssuranceRule{
		Minimum: []string{assurance.TwoFactor, assurance.LoA2},
		For:     []string{"faculty", "staff", "employee"},
	}
}

type rawAssurance struct {
	// Minimum is one level or a list of levels (any one suffices).
	Minimum yaml.Node `yaml:"minimum"`
	For     []string  `yaml:"for"`
}

func (l *loader) validateAssurance(raw *rawAssurance, p *Policy) {
	const key = "assurance"
	if raw == nil {
		if p.Preset == PresetDNP {
			p.Assurance = dnpAssurance()
		}
		return
	}
	a := &AssuranceRule{}
	var levels []string
	switch raw.Minimum.Kind {
	case yaml.ScalarNode:
		if raw.Minimum.Tag != "!!null" {
			levels = []string{raw.Minimum.Value}
		}
	case yaml.SequenceNode:
		for i, n := range raw.Minimum.Content {
			if n.Kind != yaml.ScalarNode {
				l.errorf(fmt.Sprintf("%s.minimum[%d]", key, i), "must be a single level")
				continue
			}
			levels = append(levels, n.Value)
		}
	case 0:
	default:
		l.errorf(key+".minimum", "must be a level or a list of levels")
		return
	}
	if len(levels) == 0 {
		l.errorf(key+".minimum", "is required: the level (or levels, any one of which suffices) the vendor requires, e.g. %s", assurance.TwoFactor)
	}
	for i, v := range levels {
		v = strings.TrimSpace(v)
		k := key + ".minimum"
		if raw.Minimum.Kind == yaml.SequenceNode {
			k = fmt.Sprintf("%s[%d]", k, i)
		}
		switch {
		case !assurance.Known(v):
			l.errorf(k, "unknown level %q; use one of "+strings.Join(assurance.Levels(), ", "), v)
		case slices.Contains(a.Minimum, v):
			l.errorf(k, "%q is listed twice", v)
		default:
			a.Minimum = append(a.Minimum, v)
		}
	}
	if raw.For != nil && !l.isBad(key+".for") {
		a.For = l.enabledList(key+".for", raw.For, func(k, v string) bool {
			if strings.Contains(v, "@") {
				l.errorf(k, "%q: give the unscoped value, e.g. faculty", v)
				return false
			}
			if !affiliations[v] {
				l.errorf(k, "unknown affiliation %q; use student, faculty, staff, employee, member, affiliate, alum or library-walk-in", v)
				return false
			}
			return true
		})
	}
	p.Assurance = a
}

// checkDNPAssurance warns when a dnp policy asks less of staff than the
// preset: Skolverket requires level 2 for staff.
func (l *loader) checkDNPAssurance(p *Policy) {
	a := p.Assurance
	if a == nil || len(a.Minimum) == 0 {
		l.warnf("assurance", "the dnp preset: Skolverket requires staff to log in at Digg's level 2 (or two-factor); this policy requires no level")
		return
	}
	for _, aff := range []string{"faculty", "staff"} {
		if !a.Applies([]string{aff}) {
			l.warnf("assurance.for", "the dnp preset: Skolverket requires %s to log in at level 2 (or two-factor); this policy does not require it of them", aff)
		}
	}
	for _, m := range a.Minimum {
		if !assurance.Implies(m, assurance.LoA2) && !assurance.MultiFactor(m) {
			l.warnf("assurance.minimum", "the dnp preset: %s is weaker than Skolverket's level 2 for staff", m)
		}
	}
}
