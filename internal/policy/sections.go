package policy

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
)

// OIDCSettings registers an OIDC vendor (a relying party of the bridge).
type OIDCSettings struct {
	ClientID string
	// RedirectURIs are matched exactly (SECURITY.md case 26).
	RedirectURIs []string
	ClientAuth   ClientAuth
	// JWKSFile holds the vendor's public keys for private_key_jwt.
	JWKSFile string
	// ClientSecretFile holds the secret for client_secret_basic.
	ClientSecretFile string
	// IDTokenAlg is ES256 (default) or RS256.
	IDTokenAlg string
	// Sector is the pairwise sector (OIDC Core 8.1) the vendor's sub is
	// derived from: VendorSector(id) unless the policy names one. Two
	// vendors share a sub for a person exactly when their sectors are
	// equal.
	Sector string
	// SectorKind says where Sector came from.
	SectorKind SectorKind
	// SectorDefault is true when the policy has no sector line. Such a
	// vendor's sector is decided once per organiser and pinned (package
	// sectorpin): its own sector, or for a vendor the organiser served
	// before vendor sectors, the host-derived sector it had then, so that
	// an upgrade re-identifies no one.
	SectorDefault bool
	// Host is the one host of the redirect URIs (the derivation before
	// vendor sectors), or "" when they are on several hosts.
	Host string
	// PostLogoutRedirectURIs are where the vendor may ask to be sent
	// after it logs the person out (RP-Initiated Logout), matched exactly.
	PostLogoutRedirectURIs []string
	// FrontchannelLogoutURI and BackchannelLogoutURI are how the vendor
	// learns that the person logged out elsewhere (Front- and Back-Channel
	// Logout 1.0). Without either, the vendor cannot be logged out from
	// elsewhere and such logouts are reported partial.
	FrontchannelLogoutURI string
	BackchannelLogoutURI  string
}

// SectorKind says how a vendor's pairwise sector was chosen.
type SectorKind string

// Sector kinds.
const (
	// SectorVendor is the default: the vendor's own sector, from its
	// policy id, so that no other vendor shares it and a new client id
	// does not change the sub.
	SectorVendor SectorKind = "vendor"
	// SectorLegacyHost keeps the derivation from before the vendor
	// default: the host of the redirect URIs. Every vendor on that host
	// with the same choice gets the same sub for a person.
	SectorLegacyHost SectorKind = "legacy-host"
	// SectorNamed is a sector the policy names, which other policies may
	// name too, on purpose, to share a sub.
	SectorNamed SectorKind = "named"
)

// LegacyHostSector is the oidc.sector value that keeps the old derivation.
const LegacyHostSector = "legacy-host"

// OwnSector is the oidc.sector value that chooses the vendor's own sector
// explicitly: the way to move a vendor pinned to its legacy host sector
// onto its own (every person then gets a new sub at that vendor).
const OwnSector = "vendor"

// vendorSectorPrefix starts every default sector. A named sector may not
// use it, so that no policy can take another vendor's default sector; it
// cannot be a host (a slash) or a SAML entityID (no URI scheme).
const vendorSectorPrefix = "vendor/"

// VendorSector is the default pairwise sector of the vendor with policy id.
func VendorSector(id string) string { return vendorSectorPrefix + id }

// maxSectorLen bounds a named sector.
const maxSectorLen = 255

// ClientAuth is an OIDC client authentication method.
type ClientAuth string

// Client authentication methods.
const (
	PrivateKeyJWT     ClientAuth = "private_key_jwt"
	ClientSecretBasic ClientAuth = "client_secret_basic"
)

// MaskAction says what happens to an attribute of a protected person.
type MaskAction string

// Mask actions.
const (
	// Withhold leaves the attribute out (the default for identifying ones).
	Withhold MaskAction = "withhold"
	// Replace sends a fixed value the organiser chose instead.
	Replace MaskAction = "replace"
	// Keep releases the attribute as for anyone else; a reason is required.
	Keep MaskAction = "keep"
)

// MaskRule overrides the default masking for one attribute.
type MaskRule struct {
	// Levels the rule applies to; empty means every protected level
	// (including unknown, which is treated as protected).
	Levels []identity.Protection
	Def    attr.Def
	Action MaskAction
	Value  string
	Reason string
}

// Applies reports whether the rule covers level.
func (m MaskRule) Applies(level identity.Protection) bool {
	if len(m.Levels) == 0 {
		return true
	}
	for _, l := range m.Levels {
		if l == level {
			return true
		}
	}
	return false
}

// PresetDNP is the preset for Skolverket's digital national tests.
const PresetDNP = "dnp"

type rawOIDC struct {
	ClientID         string   `yaml:"client_id"`
	RedirectURIs     []string `yaml:"redirect_uris"`
	ClientAuth       string   `yaml:"client_auth"`
	JWKSFile         string   `yaml:"jwks_file"`
	ClientSecretFile string   `yaml:"client_secret_file"`
	IDTokenAlg       string   `yaml:"id_token_signing_alg"`
	Sector           string   `yaml:"sector"`

	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	FrontchannelLogoutURI  string   `yaml:"frontchannel_logout_uri"`
	BackchannelLogoutURI   string   `yaml:"backchannel_logout_uri"`
}

type rawMask struct {
	Attribute string   `yaml:"attribute"`
	Levels    []string `yaml:"levels"`
	Action    string   `yaml:"action"`
	Value     string   `yaml:"value"`
	Reason    string   `yaml:"reason"`
}

var levelNames = map[string]identity.Protection{
	"sekretessmarkering":    identity.ProtectionSekretessmarkering,
	"skyddad_folkbokforing": identity.ProtectionSkyddadFolkbokforing,
	"manual":                identity.ProtectionManual,
	"unknown":               identity.ProtectionUnknown,
}

func (l *loader) validateOIDC(raw *rawOIDC, dir, id string) *OIDCSettings {
	o := &OIDCSettings{}
	o.ClientID = l.required("oidc.client_id", raw.ClientID, "the vendor's OIDC client id")
	if len(raw.RedirectURIs) == 0 && !l.isBad("oidc.redirect_uris") {
		l.errorf("oidc.redirect_uris", "is required: the vendor's exact redirect URIs")
	}
	hosts := map[string]bool{}
	for i, u := range raw.RedirectURIs {
		key := fmt.Sprintf("oidc.redirect_uris[%d]", i)
		pu, err := url.Parse(u)
		switch {
		case err != nil || !pu.IsAbs() || pu.Host == "" || pu.Fragment != "" || pu.User != nil:
			l.errorf(key, "%q must be an absolute https URL without fragment or user info", u)
			continue
		case pu.Scheme == "https":
		case pu.Scheme == "http" && isLoopback(pu.Hostname()):
		default:
			l.errorf(key, "%q must be https (http only on a loopback address)", u)
			continue
		}
		hosts[pu.Host] = true
		o.RedirectURIs = append(o.RedirectURIs, u)
	}
	o.ClientAuth = ClientAuth(enum(l, "oidc.client_auth", raw.ClientAuth, PrivateKeyJWT, ClientSecretBasic))
	switch o.ClientAuth {
	case PrivateKeyJWT:
		if strings.TrimSpace(raw.JWKSFile) == "" {
			l.errorf("oidc.jwks_file", "is required for private_key_jwt: the vendor's public keys (JWKS)")
		} else {
			o.JWKSFile = resolve(dir, raw.JWKSFile)
		}
	case ClientSecretBasic:
		if strings.TrimSpace(raw.ClientSecretFile) == "" {
			l.errorf("oidc.client_secret_file", "is required for client_secret_basic: a file holding the secret (never inline)")
		} else {
			o.ClientSecretFile = resolve(dir, raw.ClientSecretFile)
		}
	}
	o.IDTokenAlg = enum(l, "oidc.id_token_signing_alg", raw.IDTokenAlg, "ES256", "RS256")
	l.validateSector(o, raw.Sector, id, hosts)
	for i, u := range raw.PostLogoutRedirectURIs {
		if l.vendorURL(fmt.Sprintf("oidc.post_logout_redirect_uris[%d]", i), u) {
			o.PostLogoutRedirectURIs = append(o.PostLogoutRedirectURIs, u)
		}
	}
	if u := raw.FrontchannelLogoutURI; u != "" && l.vendorURL("oidc.frontchannel_logout_uri", u) {
		o.FrontchannelLogoutURI = u
	}
	if u := raw.BackchannelLogoutURI; u != "" && l.vendorURL("oidc.backchannel_logout_uri", u) {
		o.BackchannelLogoutURI = u
	}
	return o
}

// vendorURL checks a URL of the vendor's the bridge sends a browser or a
// request to: absolute https (http only on a loopback address), without
// fragment or user info. It reports whether u is usable.
func (l *loader) vendorURL(key, u string) bool {
	pu, err := url.Parse(u)
	switch {
	case err != nil || !pu.IsAbs() || pu.Host == "" || pu.Fragment != "" || pu.User != nil:
		l.errorf(key, "%q must be an absolute https URL without fragment or user info", u)
		return false
	case pu.Scheme == "https":
	case pu.Scheme == "http" && isLoopback(pu.Hostname()):
	default:
		l.errorf(key, "%q must be https (http only on a loopback address)", u)
		return false
	}
	return true
}

// validateSector sets the vendor's pairwise sector. The default is the
// vendor itself; sharing one, or keeping the old host-derived sector, is
// a choice the policy states (and check reports).
func (l *loader) validateSector(o *OIDCSettings, raw, id string, hosts map[string]bool) {
	const key = "oidc.sector"
	sector := strings.TrimSpace(raw)
	if len(hosts) == 1 {
		for h := range hosts {
			o.Host = h
		}
	}
	switch {
	case sector == "" || sector == OwnSector:
		o.SectorKind = SectorVendor
		o.SectorDefault = sector == ""
		if id != "" && idPattern.MatchString(id) {
			o.Sector = VendorSector(id)
		}
	case sector == LegacyHostSector:
		o.SectorKind = SectorLegacyHost
		switch len(hosts) {
		case 1:
			for h := range hosts {
				o.Sector = h
			}
			l.warnLegacySector(o.Sector)
		case 0:
			// The redirect URIs are reported already.
		default:
			l.errorf(key, "legacy-host needs redirect URIs on one host; these have several")
		}
	case strings.HasPrefix(sector, vendorSectorPrefix):
		l.errorf(key, "%q: sectors starting with %q are the vendors' own defaults; name a sector of your own to share one on purpose", sector, vendorSectorPrefix)
	case len(sector) > maxSectorLen || strings.IndexFunc(sector, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		l.errorf(key, "must be at most %d characters without control characters", maxSectorLen)
	default:
		o.SectorKind = SectorNamed
		o.Sector = sector
		if hosts[sector] {
			// The old default written out: the same sub as before, and
			// the same exposure.
			l.warnLegacySector(sector)
		}
	}
}

func (l *loader) warnLegacySector(host string) {
	l.warnf("oidc.sector", "the pairwise sector is the redirect URIs' host %s (the derivation before vendor sectors): "+
		"every vendor whose redirect URIs are on that host and who keeps it gets the same sub for a person, so they can join their data; "+
		"write sector: vendor to give this vendor its own sector, together with the vendor (every person then gets a new sub at this vendor)", host)
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// applyPreset fills in what a preset provides where the file leaves it out.
func (l *loader) applyPreset(raw *rawPolicy) {
	switch strings.TrimSpace(raw.Preset) {
	case "":
	case PresetDNP:
		if len(raw.Attributes) == 0 {
			raw.Attributes = []rawRule{
				{Name: attr.EPPN},
				{Name: attr.ScopedAffiliation, Values: []string{"student", "faculty", "staff", "employee"}},
			}
		}
	default:
		l.errorf("preset", "unknown preset %q; use dnp", raw.Preset)
	}
}

// checkDNP enforces what Skolverket asks of logins to the national tests:
// the EPPN, the minimum of other attributes, and no personal data about
// protected pupils.
func (l *loader) checkDNP(p *Policy) {
	hasEPPN := false
	for i, r := range p.Attributes {
		if r.Def.Name == attr.EPPN {
			hasEPPN = true
		}
		if r.Def.Identifying {
			l.warnf(fmt.Sprintf("attributes[%d].name", i), "the dnp preset asks for the minimum: %s is personal data Skolverket does not ask for at login", r.Def.Name)
		}
	}
	if !hasEPPN {
		l.errorf("attributes", "the dnp preset needs eduPersonPrincipalName: Skolverket identifies pupils by the EPPN provisioned in advance")
	}
	if p.EPPN == EPPNPairwise {
		l.errorf("eppn", "the dnp preset needs the shared EPPN: Skolverket identifies pupils by the organisation-wide EPPN provisioned in advance")
	}
	if p.PersonalNumber != nil {
		l.errorf("personal_number", "the dnp preset never releases personal numbers")
	}
	for i, m := range p.Protected {
		if m.Action == Keep && m.Def.Identifying {
			l.errorf(fmt.Sprintf("protected[%d]", i), "the dnp preset: Skolverket wants no personal data about pupils with protected identity")
		}
	}
}

func (l *loader) validateMasks(raw []rawMask, p *Policy) {
	listed := map[string]bool{}
	for _, r := range p.Attributes {
		listed[r.Def.Name] = true
	}
	type key struct {
		name  string
		level identity.Protection
	}
	seen := map[key]int{}
	for i, r := range raw {
		k := fmt.Sprintf("protected[%d]", i)
		name := l.required(k+".attribute", r.Attribute, "an attribute this policy releases")
		if name == "" {
			continue
		}
		def, ok := attr.Lookup(name)
		if !ok {
			l.errorf(k+".attribute", "unknown attribute %q", name)
			continue
		}
		if def.Kind == attr.PersonalNumber {
			l.errorf(k+".attribute", "a personal number is never released for a protected person; no rule can change that")
			continue
		}
		if !listed[def.Name] {
			l.errorf(k+".attribute", "%s is not in this policy's attributes: there is nothing to mask", def.Name)
			continue
		}
		m := MaskRule{Def: def}
		for j, lv := range r.Levels {
			level, ok := levelNames[strings.TrimSpace(lv)]
			if !ok {
				l.errorf(fmt.Sprintf("%s.levels[%d]", k, j), "unknown level %q; use sekretessmarkering, skyddad_folkbokforing, manual or unknown", lv)
				continue
			}
			m.Levels = append(m.Levels, level)
		}
		m.Action = MaskAction(enum(l, k+".action", r.Action, Withhold, Replace, Keep))
		switch m.Action {
		case Replace:
			m.Value = l.required(k+".value", r.Value, "the fixed value sent instead")
			if def.Kind == attr.Derived {
				l.errorf(k+".action", "%s is a pseudonym computed by the bridge: it cannot be replaced", def.Name)
			}
		case Keep:
			m.Reason = l.required(k+".reason", r.Reason, "why this vendor must get the real value for protected persons")
			if def.Identifying && m.Reason != "" {
				l.warnf(k, "%s is released unmasked for protected persons: review the reason", def.Name)
			}
		}
		levels := m.Levels
		if len(levels) == 0 {
			levels = []identity.Protection{-1} // every level
		}
		for _, lv := range levels {
			kk := key{def.Name, lv}
			if j, dup := seen[kk]; dup {
				l.errorf(k, "another rule (protected[%d]) already covers %s at this level", j, def.Name)
			}
			seen[kk] = i
		}
		p.Protected = append(p.Protected, m)
	}
}
