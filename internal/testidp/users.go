package testidp

// SAML names of the attributes the demo users carry.
const (
	AttrEPPN              = "urn:oid:1.3.6.1.4.1.5923.1.1.1.6"
	AttrScopedAffiliation = "urn:oid:1.3.6.1.4.1.5923.1.1.1.9"
	AttrPersonalNumber    = "urn:oid:1.2.752.29.4.13"
	AttrGivenName         = "urn:oid:2.5.4.42"
	AttrSurname           = "urn:oid:2.5.4.4"
	AttrDisplayName       = "urn:oid:2.16.840.1.113730.3.1.241"
	AttrMail              = "urn:oid:0.9.2342.19200300.100.1.3"
	AttrSchoolUnitCode    = "urn:oid:1.2.752.194.10.2.4"
	AttrSchoolGrade       = "urn:oid:1.2.752.194.10.2.2"
	AttrEntitlement       = "urn:oid:1.3.6.1.4.1.5923.1.1.1.7"
	// AttrSecurityMarking carries SS 12000's securityMarking; it has no
	// standard SAML name, so the bridge uses its own URN.
	AttrSecurityMarking = "urn:x-skolbro:securityMarking"
)

// SS 12000 securityMarking values.
const (
	MarkingNone      = "Ingen"
	MarkingSecrecy   = "Sekretessmarkering"
	MarkingProtected = "Skyddad folkbokföring"
)

// Entitlements of the demo admin: the admin interface, and the privacy
// entitlement for subject access and the protection register.
const (
	EntitlementAdmin   = "urn:x-skolbro:entitlement:admin"
	EntitlementPrivacy = "urn:x-skolbro:entitlement:privacy"
)

// School unit codes of the demo schools.
const (
	SchoolA = "12345678"
	SchoolB = "87654321"
)

// DemoUsers returns the demo identities, with eduPersonPrincipalName and
// eduPersonScopedAffiliation in scope. The people are invented. Their
// personal numbers are fictional but well-formed (valid dates, correct Luhn
// digit) with birth numbers 982-987, so that they parse as personal numbers
// and exercise the code that must keep them inside the bridge.
func DemoUsers(scope string) []User {
	at := "@" + scope
	pupil := func(login, label, nameID, pnr, given, sn, school, grade string) User {
		return User{
			Login:  login,
			Label:  label,
			NameID: nameID,
			Attributes: map[string][]string{
				AttrEPPN:              {login + at},
				AttrScopedAffiliation: {"student" + at, "member" + at},
				AttrPersonalNumber:    {pnr},
				AttrGivenName:         {given},
				AttrSurname:           {sn},
				AttrDisplayName:       {given + " " + sn},
				AttrMail:              {login + at},
				AttrSchoolUnitCode:    {school},
				AttrSchoolGrade:       {grade},
				AttrSecurityMarking:   {MarkingNone},
			},
		}
	}
	users := []User{
		pupil("anna.a", "Elev 1, Skola A", "8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a51",
			"201203149826", "Anna", "Andersson", SchoolA, "7"),
		pupil("bertil.b", "Elev 2, Skola A", "8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a52",
			"201209099835", "Bertil", "Berg", SchoolA, "8"),
		pupil("cecilia.c", "Elev, Skola B", "8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a53",
			"201506229846", "Cecilia", "Carlsson", SchoolB, "4"),
		{
			Login:  "david.d",
			Label:  "Lärare, Skola A och B",
			NameID: "8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a54",
			Attributes: map[string][]string{
				AttrEPPN:              {"david.d" + at},
				AttrScopedAffiliation: {"faculty" + at, "employee" + at, "member" + at},
				AttrPersonalNumber:    {"197804119852"},
				AttrGivenName:         {"David"},
				AttrSurname:           {"Dahl"},
				AttrDisplayName:       {"David Dahl"},
				AttrMail:              {"david.d" + at},
				AttrSchoolUnitCode:    {SchoolA, SchoolB},
				AttrSecurityMarking:   {MarkingNone},
			},
		},
	}
	protected := pupil("eva.e", "Elev med skyddad folkbokföring, Skola A", "8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a55",
		"201302279862", "Eva", "Ek", SchoolA, "6")
	protected.Attributes[AttrSecurityMarking] = []string{MarkingProtected}
	users = append(users, protected, User{
		Login:  "fredrik.f",
		Label:  "Lärare och administratör, Skola A",
		NameID: "8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a56",
		Attributes: map[string][]string{
			AttrEPPN:              {"fredrik.f" + at},
			AttrScopedAffiliation: {"faculty" + at, "staff" + at, "employee" + at, "member" + at},
			AttrPersonalNumber:    {"198501059870"},
			AttrGivenName:         {"Fredrik"},
			AttrSurname:           {"Falk"},
			AttrDisplayName:       {"Fredrik Falk"},
			AttrMail:              {"fredrik.f" + at},
			AttrSchoolUnitCode:    {SchoolA},
			AttrEntitlement:       {EntitlementAdmin, EntitlementPrivacy},
			AttrSecurityMarking:   {MarkingNone},
		},
	})
	return users
}

// School unit codes of the second demo organiser's schools.
const (
	SchoolC = "23456781"
	SchoolD = "34567812"
)

// GrannkommunEntitlement is the admin entitlement of the second demo
// organiser: each organiser names its own, so that one organiser's admins
// are never another's.
const GrannkommunEntitlement = "urn:x-skolbro:entitlement:grannkommun-admin"

// GrannkommunPrivacyEntitlement lets the second demo organiser's admin use
// subject access and the protection register.
const GrannkommunPrivacyEntitlement = "urn:x-skolbro:entitlement:grannkommun-privacy"

// GrannkommunPupils returns the second demo organiser's pupils, who log
// in at their own SAML IdP with scope. They are different people from
// DemoUsers' (other names, numbers and identifiers), invented in the same
// way: fictional, well-formed personal numbers with birth numbers 982-987.
// ingrid.i has protected identity.
func GrannkommunPupils(scope string) []User {
	at := "@" + scope
	pupil := func(login, label, nameID, pnr, given, sn, school, grade, marking string) User {
		return User{
			Login:  login,
			Label:  label,
			NameID: nameID,
			Attributes: map[string][]string{
				AttrEPPN:              {login + at},
				AttrScopedAffiliation: {"student" + at, "member" + at},
				AttrPersonalNumber:    {pnr},
				AttrGivenName:         {given},
				AttrSurname:           {sn},
				AttrDisplayName:       {given + " " + sn},
				AttrMail:              {login + at},
				AttrSchoolUnitCode:    {school},
				AttrSchoolGrade:       {grade},
				AttrSecurityMarking:   {marking},
			},
		}
	}
	return []User{
		pupil("gustav.g", "Elev, Skola C", "3b7e9c1d-2a4f-4c6e-9d8b-1f2e3d4c5b61",
			"201105179830", "Gustav", "Gustafsson", SchoolC, "7", MarkingNone),
		pupil("hanna.h", "Elev, Skola D", "3b7e9c1d-2a4f-4c6e-9d8b-1f2e3d4c5b62",
			"200808239842", "Hanna", "Hedlund", SchoolD, "9", MarkingNone),
		pupil("ingrid.i", "Elev med skyddad folkbokföring, Skola C", "3b7e9c1d-2a4f-4c6e-9d8b-1f2e3d4c5b63",
			"201303059859", "Ingrid", "Isaksson", SchoolC, "5", MarkingProtected),
	}
}

// GrannkommunStaff returns the second demo organiser's staff, who log in
// through its OIDC IdP (internal/testop) with scope: a teacher at both of
// its schools, and a teacher who is also its admin.
func GrannkommunStaff(scope string) []User {
	at := "@" + scope
	staff := func(login, label, nameID, pnr, given, sn string, schools []string, affiliations ...string) User {
		u := User{
			Login:  login,
			Label:  label,
			NameID: nameID,
			Attributes: map[string][]string{
				AttrEPPN:            {login + at},
				AttrPersonalNumber:  {pnr},
				AttrGivenName:       {given},
				AttrSurname:         {sn},
				AttrDisplayName:     {given + " " + sn},
				AttrMail:            {login + at},
				AttrSchoolUnitCode:  schools,
				AttrSecurityMarking: {MarkingNone},
			},
		}
		for _, a := range affiliations {
			u.Attributes[AttrScopedAffiliation] = append(u.Attributes[AttrScopedAffiliation], a+at)
		}
		return u
	}
	admin := staff("karl.k", "Lärare och administratör, Skola C", "3b7e9c1d-2a4f-4c6e-9d8b-1f2e3d4c5b65",
		"198802129877", "Karl", "Kvist", []string{SchoolC}, "faculty", "staff", "employee", "member")
	admin.Attributes[AttrEntitlement] = []string{GrannkommunEntitlement, GrannkommunPrivacyEntitlement}
	return []User{
		staff("johanna.j", "Lärare, Skola C och D", "3b7e9c1d-2a4f-4c6e-9d8b-1f2e3d4c5b64",
			"197909269867", "Johanna", "Jansson", []string{SchoolC, SchoolD}, "faculty", "employee", "member"),
		admin,
	}
}
