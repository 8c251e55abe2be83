package mapping

import "github.com/skolbro/skolbro/internal/attr"

// Uses of an upstream attribute, besides the bridge attribute it maps to.
const (
	UseStableID        = "stable_id"
	UsePersonalNumber  = "personal_number"
	UseSecurityMarking = "security_marking"
	// UseDerived: an attribute the bridge makes itself (an upstream EPPN
	// that is not the stable id); the upstream's value is not passed on.
	UseDerived = "derived by the bridge; not passed on"
	// UseNone: no bridge attribute, not read.
	UseNone = "not used"
)

// NameUse is how one upstream attribute, by name, is read: names only,
// never values, so that it may be logged, stored and shown.
type NameUse struct {
	Attribute    string `json:"attribute"`
	FriendlyName string `json:"friendly_name,omitempty"`
	// Use is one of the Use constants, or the friendly name of the bridge
	// attribute (package attr) the values become.
	Use string `json:"use"`
}

// Describe says, for every attribute in, how c reads it: the stable id,
// a personal number, the security marking, a bridge attribute, or not at
// all. It looks at names only, never at values, and is the same reading
// MapWithWarnings makes.
func Describe(c *Config, in Input) []NameUse {
	m := &mapper{c: c}
	var out []NameUse
	for _, u := range m.collect(in) {
		nu := NameUse{Attribute: u.name, FriendlyName: u.friendly, Use: UseNone}
		switch {
		case c.StableID != NameID && c.StableID != "sub" && u.is(c.StableID):
			nu.Use = UseStableID
		case m.isPersonalNumber(u):
			nu.Use = UsePersonalNumber
		case u.is(c.SecurityMarking):
			nu.Use = UseSecurityMarking
		case !u.known:
		case u.def.Kind == attr.Derived:
			nu.Use = UseDerived
		case u.def.Kind == attr.Scoped && u.def.Name != attr.ScopedAffiliation:
			nu.Use = UseDerived
		case u.def.Kind == attr.Scoped:
			nu.Use = attr.Affiliation
		default:
			nu.Use = u.def.Name
		}
		out = append(out, nu)
	}
	return out
}

// SecurityMarkingSent reports whether in carries c's security marking
// attribute under any of its names.
func SecurityMarkingSent(c *Config, in Input) bool {
	if c.SecurityMarking == "" {
		return false
	}
	m := &mapper{c: c}
	for _, u := range m.collect(in) {
		if u.is(c.SecurityMarking) {
			return true
		}
	}
	return false
}
