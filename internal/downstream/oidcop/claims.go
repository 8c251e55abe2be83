package oidcop

import (
	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/release"
)

// protocolClaims are set by the provider itself; a released attribute can
// never take one of these names.
var protocolClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true,
	"auth_time": true, "nonce": true, "acr": true, "amr": true, "azp": true,
	"at_hash": true, "c_hash": true, "sid": true,
}

// singleValued are the attributes sent as a JSON string: the standard
// claims OIDC Core defines as strings, and identifiers that have one value
// by definition (as REFEDS' OIDC profile for eduPerson has them). Every
// other attribute is a JSON array, also with one value, so that a claim's
// type does not depend on the person.
var singleValued = map[string]bool{
	attr.GivenName:           true,
	attr.Surname:             true,
	attr.DisplayName:         true,
	attr.Mail:                true,
	attr.EPPN:                true,
	attr.UniqueID:            true,
	attr.TargetedID:          true,
	attr.SubjectID:           true,
	attr.PairwiseID:          true,
	attr.SchacHomeOrg:        true,
	attr.NorEduPersonNIN:     true,
	attr.PersonalIdentityNum: true,
}

// attributeClaims renders the released attributes as claims, and nothing
// else from rel: not Masked, not NameID. A single-valued attribute with
// several values sends the first.
func attributeClaims(rel *release.Released) map[string]any {
	claims := map[string]any{}
	for _, a := range rel.Attributes {
		name := a.Def.Claim()
		if protocolClaims[name] || len(a.Values) == 0 {
			continue
		}
		if singleValued[a.Def.Name] {
			claims[name] = a.Values[0]
			continue
		}
		claims[name] = append([]string(nil), a.Values...)
	}
	return claims
}

// supportedClaims lists the claims discovery announces: the protocol
// claims of an ID token and every attribute's claim.
func supportedClaims() []string {
	out := []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "azp", "at_hash", "sid"}
	for _, d := range attr.All() {
		if !protocolClaims[d.Claim()] {
			out = append(out, d.Claim())
		}
	}
	return out
}
