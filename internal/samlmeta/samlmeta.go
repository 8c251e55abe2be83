// Package samlmeta reads the IdP side of SAML metadata: an entity's signing
// certificates, its HTTP-Redirect single sign-on endpoint and its shibmd:Scope
// values. Metadata goes through samlxml's bounded parser first, like every
// other XML the bridge reads.
package samlmeta

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/skolbro/skolbro/internal/samlslo"
	"github.com/skolbro/skolbro/internal/samlxml"
)

// NSShibMD is the namespace of shibmd:Scope.
const NSShibMD = "urn:mace:shibboleth:metadata:1.0"

// HTTPRedirectBinding is the SAML HTTP-Redirect binding URI.
const HTTPRedirectBinding = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"

// Errors returned for metadata that cannot be used. They carry no input.
var (
	ErrNotEntity   = errors.New("samlmeta: not an EntityDescriptor")
	ErrNotEntities = errors.New("samlmeta: not an EntityDescriptor or EntitiesDescriptor")
	ErrDecode      = errors.New("samlmeta: metadata does not decode")
	ErrNoIdP       = errors.New("samlmeta: no IDPSSODescriptor")
	ErrNoCert      = errors.New("samlmeta: no signing certificate")
	ErrBadCert     = errors.New("samlmeta: signing certificate does not parse")
	ErrNoSSO       = errors.New("samlmeta: no HTTP-Redirect SingleSignOnService")
	ErrNoEntity    = errors.New("samlmeta: entity not found")
)

// ParseEntity parses one EntityDescriptor.
func ParseEntity(b []byte) (*saml.EntityDescriptor, error) {
	doc, err := samlxml.ParseMetadata(b)
	if err != nil {
		return nil, fmt.Errorf("samlmeta: %w", err)
	}
	if !samlxml.Is(doc.Root(), samlxml.NSMetadata, "EntityDescriptor") {
		return nil, ErrNotEntity
	}
	ed := &saml.EntityDescriptor{}
	// encoding/xml's errors quote element names from the input; keep them out.
	if err := xml.Unmarshal(b, ed); err != nil {
		return nil, ErrDecode
	}
	return ed, nil
}

// ParseEntities parses an EntitiesDescriptor or a single EntityDescriptor.
// Nested EntitiesDescriptors are flattened: an aggregate's own entities
// first, then those of each nested aggregate.
//
// The input is bounded by samlxml's limits (size, namespace declarations),
// which fit one organiser's metadata but not a whole federation aggregate.
func ParseEntities(b []byte) ([]*saml.EntityDescriptor, error) {
	eds, _, err := ParseEntitiesAndExtensions(b)
	return eds, err
}

// ParseEntitiesAndExtensions is ParseEntities that also returns the
// parsed document's Extensions (Scopes, SigningMethods), from the same
// single parse.
func ParseEntitiesAndExtensions(b []byte) ([]*saml.EntityDescriptor, *Extensions, error) {
	doc, err := samlxml.ParseMetadata(b)
	if err != nil {
		return nil, nil, fmt.Errorf("samlmeta: %w", err)
	}
	root := doc.Root()
	eds, err := decodeEntities(b, root)
	if err != nil {
		return nil, nil, err
	}
	return eds, &Extensions{root: root}, nil
}

// decodeEntities decodes b, whose parsed root is root, with crewjam's
// types.
func decodeEntities(b []byte, root *etree.Element) ([]*saml.EntityDescriptor, error) {
	switch {
	case samlxml.Is(root, samlxml.NSMetadata, "EntityDescriptor"):
		ed := &saml.EntityDescriptor{}
		if err := xml.Unmarshal(b, ed); err != nil {
			return nil, ErrDecode
		}
		return []*saml.EntityDescriptor{ed}, nil
	case samlxml.Is(root, samlxml.NSMetadata, "EntitiesDescriptor"):
		eds := &saml.EntitiesDescriptor{}
		if err := xml.Unmarshal(b, eds); err != nil {
			return nil, ErrDecode
		}
		var out []*saml.EntityDescriptor
		flatten(eds, &out)
		return out, nil
	}
	return nil, ErrNotEntities
}

func flatten(eds *saml.EntitiesDescriptor, out *[]*saml.EntityDescriptor) {
	for i := range eds.EntityDescriptors {
		*out = append(*out, &eds.EntityDescriptors[i])
	}
	for i := range eds.EntitiesDescriptors {
		flatten(&eds.EntitiesDescriptors[i], out)
	}
}

// IdPSigningCerts returns every certificate of the entity's IDPSSODescriptors
// whose KeyDescriptor has use="signing" or no use. During a key rollover the
// metadata lists two, and responses signed with either must verify.
func IdPSigningCerts(ed *saml.EntityDescriptor) ([]*x509.Certificate, error) {
	if ed == nil || len(ed.IDPSSODescriptors) == 0 {
		return nil, ErrNoIdP
	}
	var out []*x509.Certificate
	for _, idp := range ed.IDPSSODescriptors {
		for _, kd := range idp.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, xc := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(stripSpace(xc.Data))
				if err != nil {
					return nil, ErrBadCert
				}
				c, err := x509.ParseCertificate(der)
				if err != nil {
					return nil, ErrBadCert
				}
				if !containsCert(out, c) {
					out = append(out, c)
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, ErrNoCert
	}
	return out, nil
}

func containsCert(cs []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range cs {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}

// IdPSSORedirectURL returns the Location of the first HTTP-Redirect
// SingleSignOnService. Only absolute http and https URLs are accepted.
func IdPSSORedirectURL(ed *saml.EntityDescriptor) (string, error) {
	if ed == nil || len(ed.IDPSSODescriptors) == 0 {
		return "", ErrNoIdP
	}
	for _, idp := range ed.IDPSSODescriptors {
		for _, ep := range idp.SingleSignOnServices {
			if ep.Binding != HTTPRedirectBinding {
				continue
			}
			u, err := url.Parse(ep.Location)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				continue
			}
			return ep.Location, nil
		}
	}
	return "", ErrNoSSO
}

// IdPSLO returns the entity's SingleLogoutService endpoints with the
// HTTP-Redirect or HTTP-POST binding (the ones a browser can carry), in
// metadata order. The caller checks their URLs.
func IdPSLO(ed *saml.EntityDescriptor) []samlslo.Endpoint {
	if ed == nil {
		return nil
	}
	var out []samlslo.Endpoint
	for _, idp := range ed.IDPSSODescriptors {
		for _, ep := range idp.SingleLogoutServices {
			if ep.Binding == samlslo.BindingRedirect || ep.Binding == samlslo.BindingPOST {
				out = append(out, samlslo.Endpoint{Binding: ep.Binding, Location: ep.Location, ResponseLocation: ep.ResponseLocation})
			}
		}
	}
	return out
}

// Extensions is metadata parsed for what crewjam's types drop (scopes,
// signing methods), so that several of its entities are read from one
// parse: a file with many vendors is parsed once, not once per vendor.
type Extensions struct {
	root *etree.Element
}

// ParseExtensions parses metadata (an EntityDescriptor or an
// EntitiesDescriptor) for Scopes and SigningMethods.
func ParseExtensions(metadata []byte) (*Extensions, error) {
	doc, err := samlxml.ParseMetadata(metadata)
	if err != nil {
		return nil, fmt.Errorf("samlmeta: %w", err)
	}
	return &Extensions{root: doc.Root()}, nil
}

func (x *Extensions) entity(entityID string) (*etree.Element, error) {
	if ent := findEntity(x.root, entityID); ent != nil {
		return ent, nil
	}
	return nil, ErrNoEntity
}

// Scopes returns the literal shibmd:Scope values in the Extensions of the
// IDPSSODescriptor of the entity entityID in metadata (an EntityDescriptor
// or an EntitiesDescriptor). crewjam's types drop Extensions, so this reads
// the XML itself rather than a parsed *saml.EntityDescriptor. Scopes marked
// regexp="true" are left out: a relying party that compares scopes as
// strings must not accept a pattern as if it were a domain.
func Scopes(metadata []byte, entityID string) ([]string, error) {
	x, err := ParseExtensions(metadata)
	if err != nil {
		return nil, err
	}
	return x.Scopes(entityID)
}

// Scopes is the package's Scopes on parsed metadata.
func (x *Extensions) Scopes(entityID string) ([]string, error) {
	ent, err := x.entity(entityID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, idp := range samlxml.Children(ent, samlxml.NSMetadata, "IDPSSODescriptor") {
		for _, ext := range samlxml.Children(idp, samlxml.NSMetadata, "Extensions") {
			for _, sc := range samlxml.Children(ext, NSShibMD, "Scope") {
				if v := strings.TrimSpace(sc.SelectAttrValue("regexp", "false")); v == "true" || v == "1" {
					continue
				}
				s, err := samlxml.Text(sc)
				if err != nil {
					return nil, fmt.Errorf("samlmeta: scope: %w", err)
				}
				if s != "" {
					out = append(out, s)
				}
			}
		}
	}
	return out, nil
}

// NSAlgSupport is the SAML metadata algorithm support profile's namespace.
const NSAlgSupport = "urn:oasis:names:tc:SAML:metadata:algsupport"

// SigningMethods returns the alg:SigningMethod algorithms entityID's
// metadata announces, in its order of preference: its SPSSODescriptor's,
// or when that lists none, the EntityDescriptor's (the role's own list
// takes precedence, as the profile says).
func SigningMethods(metadata []byte, entityID string) ([]string, error) {
	x, err := ParseExtensions(metadata)
	if err != nil {
		return nil, err
	}
	return x.SigningMethods(entityID)
}

// SigningMethods is the package's SigningMethods on parsed metadata.
func (x *Extensions) SigningMethods(entityID string) ([]string, error) {
	ent, err := x.entity(entityID)
	if err != nil {
		return nil, err
	}
	return EntitySigningMethods(ent), nil
}

// EntitySigningMethods returns the alg:SigningMethod algorithms of one
// parsed EntityDescriptor, as SigningMethods reads them: its
// SPSSODescriptor's, or when that lists none, the EntityDescriptor's.
func EntitySigningMethods(ent *etree.Element) []string {
	read := func(el *etree.Element) []string {
		var out []string
		for _, ext := range samlxml.Children(el, samlxml.NSMetadata, "Extensions") {
			for _, m := range samlxml.Children(ext, NSAlgSupport, "SigningMethod") {
				if a := strings.TrimSpace(m.SelectAttrValue("Algorithm", "")); a != "" {
					out = append(out, a)
				}
			}
		}
		return out
	}
	for _, sp := range samlxml.Children(ent, samlxml.NSMetadata, "SPSSODescriptor") {
		if ms := read(sp); len(ms) > 0 {
			return ms
		}
	}
	return read(ent)
}

func findEntity(el *etree.Element, entityID string) *etree.Element {
	if samlxml.Is(el, samlxml.NSMetadata, "EntityDescriptor") {
		if el.SelectAttrValue("entityID", "") == entityID {
			return el
		}
		return nil
	}
	if !samlxml.Is(el, samlxml.NSMetadata, "EntitiesDescriptor") {
		return nil
	}
	for _, c := range el.ChildElements() {
		if f := findEntity(c, entityID); f != nil {
			return f
		}
	}
	return nil
}
