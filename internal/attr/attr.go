// Package attr is the table of attributes the bridge knows: their friendly
// names (the bridge's internal and policy names), SAML names (urn:oid:...)
// and OIDC claims. An attribute that is not in this table cannot be mapped,
// released or named in a policy.
package attr

import "strings"

// Kind says how the bridge treats an attribute.
type Kind int

const (
	// Plain attributes are passed on from upstream as released.
	Plain Kind = iota
	// Scoped attributes are rendered value@scope with the organiser's scope.
	Scoped
	// Derived attributes are pseudonyms the bridge computes; upstream values
	// for them are never passed on.
	Derived
	// PersonalNumber attributes carry a personal identity number. They are
	// never released without an explicit opt-in in the vendor's policy, and
	// never for a protected person.
	PersonalNumber
)

// Def describes one attribute.
type Def struct {
	Name      string // friendly name, e.g. eduPersonPrincipalName
	SAMLName  string // urn:oid:... or urn:oasis:... name
	OIDCClaim string // claim name, or "" to use Name
	Kind      Kind
	// Identifying marks attributes that describe the person (names, mail,
	// school, groups); they are withheld for protected persons by default.
	Identifying bool
}

// Attribute names used in code.
const (
	EPPN                 = "eduPersonPrincipalName"
	ScopedAffiliation    = "eduPersonScopedAffiliation"
	Affiliation          = "eduPersonAffiliation"
	Entitlement          = "eduPersonEntitlement"
	Assurance            = "eduPersonAssurance"
	TargetedID           = "eduPersonTargetedID"
	UniqueID             = "eduPersonUniqueID"
	SubjectID            = "subject-id"
	PairwiseID           = "pairwise-id"
	SchacHomeOrg         = "schacHomeOrganization"
	NorEduPersonNIN      = "norEduPersonNIN"
	PersonalIdentityNum  = "personalIdentityNumber"
	GivenName            = "givenName"
	Surname              = "sn"
	DisplayName          = "displayName"
	Mail                 = "mail"
	SchoolUnitCode       = "sisSchoolUnitCode"
	SchoolGrade          = "sisSchoolGrade"
	LegalGuardianFor     = "sisLegalGuardianFor"
	SchoolCourseStudent  = "sisSchoolCourseStudent"
	SchoolCourseTeacher  = "sisSchoolCourseTeacher"
	OrgDepartment        = "sisOrgDepartment"
	securityMarkingLocal = "securityMarking"
)

// SecurityMarking is the internal name of the SS 12000 securityMarking
// attribute. It is read upstream to decide protection and never released.
const SecurityMarking = securityMarkingLocal

var defs = []Def{
	{Name: EPPN, SAMLName: "urn:oid:1.3.6.1.4.1.5923.1.1.1.6", OIDCClaim: "eduperson_principal_name", Kind: Derived},
	{Name: ScopedAffiliation, SAMLName: "urn:oid:1.3.6.1.4.1.5923.1.1.1.9", OIDCClaim: "eduperson_scoped_affiliation", Kind: Scoped},
	{Name: Affiliation, SAMLName: "urn:oid:1.3.6.1.4.1.5923.1.1.1.1", OIDCClaim: "eduperson_affiliation"},
	{Name: Entitlement, SAMLName: "urn:oid:1.3.6.1.4.1.5923.1.1.1.7", OIDCClaim: "eduperson_entitlement", Identifying: true},
	{Name: Assurance, SAMLName: "urn:oid:1.3.6.1.4.1.5923.1.1.1.11", OIDCClaim: "eduperson_assurance"},
	{Name: TargetedID, SAMLName: "urn:oid:1.3.6.1.4.1.5923.1.1.1.10", Kind: Derived},
	{Name: UniqueID, SAMLName: "urn:oid:1.3.6.1.4.1.5923.1.1.1.13", OIDCClaim: "eduperson_unique_id", Kind: Derived},
	{Name: SubjectID, SAMLName: "urn:oasis:names:tc:SAML:attribute:subject-id", Kind: Derived},
	{Name: PairwiseID, SAMLName: "urn:oasis:names:tc:SAML:attribute:pairwise-id", Kind: Derived},
	{Name: SchacHomeOrg, SAMLName: "urn:oid:1.3.6.1.4.1.25178.1.2.9", OIDCClaim: "schac_home_organization"},
	{Name: NorEduPersonNIN, SAMLName: "urn:oid:1.3.6.1.4.1.2428.90.1.5", Kind: PersonalNumber},
	{Name: PersonalIdentityNum, SAMLName: "urn:oid:1.2.752.29.4.13", OIDCClaim: "https://id.oidc.se/claim/personalIdentityNumber", Kind: PersonalNumber},
	{Name: GivenName, SAMLName: "urn:oid:2.5.4.42", OIDCClaim: "given_name", Identifying: true},
	{Name: Surname, SAMLName: "urn:oid:2.5.4.4", OIDCClaim: "family_name", Identifying: true},
	{Name: DisplayName, SAMLName: "urn:oid:2.16.840.1.113730.3.1.241", OIDCClaim: "name", Identifying: true},
	{Name: Mail, SAMLName: "urn:oid:0.9.2342.19200300.100.1.3", OIDCClaim: "email", Identifying: true},
	{Name: SchoolUnitCode, SAMLName: "urn:oid:1.2.752.194.10.2.4", Identifying: true},
	{Name: SchoolGrade, SAMLName: "urn:oid:1.2.752.194.10.2.2", Identifying: true},
	{Name: LegalGuardianFor, SAMLName: "urn:oid:1.2.752.194.10.2.1", Identifying: true},
	{Name: SchoolCourseStudent, SAMLName: "urn:oid:1.2.752.194.10.2.5", Identifying: true},
	{Name: SchoolCourseTeacher, SAMLName: "urn:oid:1.2.752.194.10.2.6", Identifying: true},
	{Name: OrgDepartment, SAMLName: "urn:oid:1.2.752.194.10.3", Identifying: true},
}

var (
	byName     = map[string]Def{}
	bySAMLName = map[string]Def{}
	byClaim    = map[string]Def{}
)

func init() {
	for _, d := range defs {
		byName[d.Name] = d
		bySAMLName[d.SAMLName] = d
		if d.OIDCClaim != "" {
			byClaim[d.OIDCClaim] = d
		}
	}
}

// Lookup finds an attribute by friendly name or SAML name.
func Lookup(name string) (Def, bool) {
	if d, ok := byName[name]; ok {
		return d, true
	}
	d, ok := bySAMLName[name]
	return d, ok
}

// LookupClaim finds an attribute by its OIDC claim name.
func LookupClaim(claim string) (Def, bool) {
	d, ok := byClaim[claim]
	return d, ok
}

// All returns every known attribute, in table order.
func All() []Def { return append([]Def(nil), defs...) }

// Claim returns the OIDC claim name of the attribute.
func (d Def) Claim() string {
	if d.OIDCClaim != "" {
		return d.OIDCClaim
	}
	return d.Name
}

// IsPersonalNumber reports whether a name (friendly or SAML) denotes a
// personal number attribute.
func IsPersonalNumber(name string) bool {
	d, ok := Lookup(name)
	return ok && d.Kind == PersonalNumber
}

// SplitScope splits "value@scope" and reports whether it had a scope.
func SplitScope(v string) (value, scope string, ok bool) {
	i := strings.LastIndexByte(v, '@')
	if i <= 0 || i == len(v)-1 {
		return v, "", false
	}
	return v[:i], v[i+1:], true
}
