// Package policy loads the attribute-release policies: one YAML file per
// vendor under attribute-release/, reviewed like code. A policy names the
// attributes a vendor may receive, why (purpose, legal basis, the data
// processing agreement) and how the vendor's SAML responses are made.
//
// Loading never stops at the first mistake: every problem of every file is
// reported at once, with the file, the key and the line, so that an admin
// can fix them in one pass. Problems marked Warning do not stop the bridge;
// every other problem does.
package policy

import (
	"fmt"
	"sort"
	"time"

	"github.com/skolbro/skolbro/internal/attr"
)

// Policy is one vendor's validated release policy.
type Policy struct {
	// File is the path the policy was loaded from.
	File string
	// Hash is the SHA-256 (hex) of the file's bytes: the policy version,
	// logged with every release so that an audit can name the exact rules.
	Hash string

	ID          string
	DisplayName string
	Purpose     string
	LegalBasis  string

	// Preset names a built-in preset the policy starts from ("dnp"), or "".
	Preset string

	// EPPN says whether the vendor's eduPersonPrincipalName (and
	// eduPersonUniqueID) is the organisation-wide one (EPPNShared, the
	// default) or its own per-vendor value (EPPNPairwise).
	EPPN EPPNKind

	// SAML is set for a SAML vendor, OIDC for an OIDC vendor; a vendor
	// may have both.
	SAML *SAMLSettings
	OIDC *OIDCSettings

	Agreement Agreement
	// Attributes are the released attributes in file order. None of them
	// is a personal number.
	Attributes []Rule
	// PersonalNumber is the explicit opt-in for releasing a personal
	// number, or nil.
	PersonalNumber *PersonalNumberOptIn
	// Protected overrides the default masking of protected persons, per
	// attribute and marking level.
	Protected []MaskRule
	// EnabledFor restricts the vendor to some school units and
	// affiliations; the zero value enables it for everyone.
	EnabledFor EnabledFor
	// Assurance is the vendor's minimum level of authentication, or nil.
	// The dnp preset sets one for staff unless the file does.
	Assurance *AssuranceRule

	// lines maps key paths (as in Problem.Key) to line numbers.
	lines map[string]int
}

// SAMLSettings says how the bridge answers a SAML vendor.
type SAMLSettings struct {
	EntityID           string
	NameID             NameIDKind
	Sign               SignMode
	SignatureAlgorithm SignatureAlgorithm
	Encrypt            EncryptMode
}

// NameIDKind selects the NameID sent to a SAML vendor.
type NameIDKind string

// NameID kinds.
const (
	// NameIDTransient sends a fresh transient NameID at every login.
	NameIDTransient NameIDKind = "transient"
	// NameIDPairwise sends a persistent NameID whose value is the
	// person's pairwise-id for the vendor.
	NameIDPairwise NameIDKind = "pairwise"
)

// EPPNKind selects the EPPN a vendor receives.
type EPPNKind string

// EPPN kinds.
const (
	// EPPNShared is the organisation-wide EPPN, the same for every vendor,
	// as Skolfederation and the national tests expect: vendors that both
	// receive it can join their users on it.
	EPPNShared EPPNKind = "shared"
	// EPPNPairwise is a per-vendor EPPN with the organiser's scope
	// (derived like pairwise-id from the vendor's sector), so that vendors
	// cannot join their users on it.
	EPPNPairwise EPPNKind = "pairwise"
)

// SharedEPPNProblem returns a warning when the vendor receives the shared
// EPPN (or eduPersonUniqueID, its twin) together with a pairwise
// identifier (pairwise-id, eduPersonTargetedID, a pairwise NameID, or
// an OIDC vendor's pairwise sub): the shared one lets it join its users
// with every other vendor's, so the pairwise one protects nothing. nil
// otherwise. `skolbro check` reports it.
func (p *Policy) SharedEPPNProblem() *Problem {
	if p.EPPN == EPPNPairwise {
		return nil
	}
	shared, pairwise := "", ""
	for i, r := range p.Attributes {
		switch r.Def.Name {
		case attr.EPPN, attr.UniqueID:
			if shared == "" {
				shared = fmt.Sprintf("attributes[%d].name", i)
			}
		case attr.PairwiseID, attr.TargetedID:
			if pairwise == "" {
				pairwise = r.Def.Name
			}
		}
	}
	if pairwise == "" && p.SAML != nil && p.SAML.NameID == NameIDPairwise {
		pairwise = "a pairwise NameID (saml.name_id)"
	}
	if pairwise == "" && p.OIDC != nil {
		pairwise = "a pairwise sub (oidc)"
	}
	if shared == "" || pairwise == "" {
		return nil
	}
	fix := "set eppn: pairwise unless the vendor needs the organisation-wide EPPN"
	if p.Preset == PresetDNP {
		fix = "the dnp preset needs the shared EPPN, so drop the pairwise identifier (saml.name_id: transient)"
	}
	pr := p.problem(shared, true, "the vendor gets the shared EPPN (the same at every vendor) and %s: the pairwise identifier then protects nothing, "+
		"since the EPPN joins this vendor's users with any other vendor's; %s", pairwise, fix)
	return &pr
}

// SignMode selects what the bridge signs in a SAML response.
type SignMode string

// Signing modes.
const (
	// SignAuto, the default, signs the assertion (SAML2Int and the
	// Skolfederation profile require it) and the Response too only when
	// the vendor's metadata asks: WantAssertionsSigned="false" says the SP
	// looks for the Response's signature instead. One RSA signature is
	// most of what a login costs the bridge (issue 13).
	SignAuto                 SignMode = "auto"
	SignAssertionAndResponse SignMode = "assertion_and_response"
	SignAssertion            SignMode = "assertion"
	SignResponse             SignMode = "response"
)

// SignatureAlgorithm selects the XML signature algorithm.
type SignatureAlgorithm string

// Signature algorithms.
const (
	RSASHA256   SignatureAlgorithm = "rsa-sha256"
	ECDSASHA256 SignatureAlgorithm = "ecdsa-sha256"
)

// EncryptMode selects whether assertions are encrypted.
type EncryptMode string

// Encryption modes.
const (
	// EncryptAuto encrypts when the vendor's metadata has an encryption key.
	EncryptAuto EncryptMode = "auto"
	// EncryptNever never encrypts.
	EncryptNever EncryptMode = "never"
	// EncryptRequired refuses to answer a vendor without an encryption key.
	EncryptRequired EncryptMode = "required"
	// EncryptCBC is EncryptRequired that also accepts AES-CBC for a vendor
	// whose metadata lists AES-CBC but no AES-GCM: the organiser's explicit
	// choice of an unauthenticated cipher (padding oracles) for an old SP.
	// AES-GCM is still used whenever the metadata lists it.
	EncryptCBC EncryptMode = "cbc"
)

// Agreement is the data processing agreement (PUB-avtal) with the vendor.
type Agreement struct {
	Reference string
	// Ends is the last day the agreement covers, at 00:00 UTC.
	Ends time.Time
}

// Rule is one released attribute.
type Rule struct {
	Def attr.Def
	// Values, when not nil, is the allow-list of values; for scoped
	// attributes it lists unscoped values. nil releases every value.
	Values []string
}

// Allows reports whether the rule releases value (unscoped for scoped
// attributes).
func (r Rule) Allows(value string) bool {
	if r.Values == nil {
		return true
	}
	for _, v := range r.Values {
		if v == value {
			return true
		}
	}
	return false
}

// PersonalNumberOptIn is the separately named, justified permission to
// release a personal number to a vendor.
type PersonalNumberOptIn struct {
	Def        attr.Def
	LegalBasis string
	Reason     string
}

// AgreementActive reports whether the data processing agreement covers now.
// The end date is inclusive: an agreement ending 2027-06-30 is active until
// 2027-07-01T00:00:00Z.
func (p *Policy) AgreementActive(now time.Time) bool {
	if p.Agreement.Ends.IsZero() {
		return false
	}
	return now.Before(p.Agreement.Ends.AddDate(0, 0, 1))
}

// Problem is one mistake (or, with Warning, one thing to review) in a
// policy file.
type Problem struct {
	File string
	// Key is the path of the key at fault, e.g. "attributes[2].name";
	// empty for problems of the whole file.
	Key string
	// Line is the 1-based line in File, or 0 when unknown.
	Line    int
	Message string
	Warning bool
}

// String formats the problem as file:line: key: message, as compilers do.
func (p Problem) String() string {
	s := p.File
	if p.Line > 0 {
		s += fmt.Sprintf(":%d", p.Line)
	}
	if p.Key != "" {
		s += ": " + p.Key
	}
	if p.Warning {
		s += ": warning"
	}
	return s + ": " + p.Message
}

// HasErrors reports whether any problem is not a warning.
func HasErrors(problems []Problem) bool {
	for _, p := range problems {
		if !p.Warning {
			return true
		}
	}
	return false
}

// Set indexes loaded policies for lookup at login time.
type Set struct {
	byID       map[string]*Policy
	byEntityID map[string]*Policy
	all        []*Policy
}

// NewSet indexes policies, which should come from LoadDir without errors.
// Should two share an id or entityID anyway, the first one wins.
func NewSet(policies []*Policy) *Set {
	s := &Set{byID: map[string]*Policy{}, byEntityID: map[string]*Policy{}}
	for _, p := range policies {
		if p == nil {
			continue
		}
		if _, dup := s.byID[p.ID]; dup {
			continue
		}
		s.byID[p.ID] = p
		if p.SAML != nil {
			if _, dup := s.byEntityID[p.SAML.EntityID]; !dup {
				s.byEntityID[p.SAML.EntityID] = p
			}
		}
		s.all = append(s.all, p)
	}
	sort.Slice(s.all, func(i, j int) bool { return s.all[i].ID < s.all[j].ID })
	return s
}

// BySAMLEntityID returns the policy of the SAML vendor with entityID id.
func (s *Set) BySAMLEntityID(id string) (*Policy, bool) {
	p, ok := s.byEntityID[id]
	return p, ok
}

// ByID returns the policy with the given vendor id.
func (s *Set) ByID(id string) (*Policy, bool) {
	p, ok := s.byID[id]
	return p, ok
}

// All returns every policy, sorted by id. The slice is a copy.
func (s *Set) All() []*Policy { return append([]*Policy(nil), s.all...) }
