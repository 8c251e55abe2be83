// Package ownmeta publishes the bridge's own SAML metadata, IdP side and
// SP side, signed with the metadata key, with validUntil, cacheDuration,
// the organisation and contacts: what a federation operator needs to
// register the bridge.
package ownmeta

import (
	"errors"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/fedmeta"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// Organization is md:Organization. Number, the organisation number, is
// published as the entity attribute organizationIdentifier (X.520,
// urn:oid:2.5.4.97) where a federation asks for it.
type Organization struct{ Name, DisplayName, URL, Number string }

// Contact is md:ContactPerson.
type Contact struct{ Type, Name, Email string }

// Publisher signs and caches the bridge's metadata.
type Publisher struct {
	IdP *samlidp.IdP
	// SPMetadata are the unsigned SP EntityDescriptors towards the
	// organiser's SAML school IdPs, by upstream id.
	SPMetadata    map[string][]byte
	Signer        *xmlsig.Signer
	Organization  Organization
	Contacts      []Contact
	ValidFor      time.Duration
	CacheDuration time.Duration
	Now           func() time.Time

	// AssuranceCertifications are the levels the organiser's upstreams
	// can prove (from configuration), published in the IdP metadata as
	// the entity attribute assurance-certification.
	AssuranceCertifications []string

	mu    sync.Mutex
	cache map[string]signed
}

type signed struct {
	b       []byte
	renewAt time.Time
}

// ErrNoSPMetadata is returned by SP when the upstream is not SAML.
var ErrNoSPMetadata = errors.New("ownmeta: no SAML upstream, so no SP metadata")

func (p *Publisher) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// IdP returns the signed IdP-side metadata, for vendors and federations.
func (p *Publisher) IdPMetadata() ([]byte, error) {
	return p.get("idp", func() (*etree.Element, error) { return p.IdP.MetadataElement(p.ValidFor), nil })
}

// SPMetadataSigned returns the signed SP-side metadata towards one
// upstream, for that school IdP.
func (p *Publisher) SPMetadataSigned(upstream string) ([]byte, error) {
	md := p.SPMetadata[upstream]
	if md == nil {
		return nil, ErrNoSPMetadata
	}
	return p.get("sp:"+upstream, func() (*etree.Element, error) {
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(md); err != nil {
			return nil, err
		}
		return doc.Root().Copy(), nil
	})
}

// get signs at most every quarter of the validity (and hourly at most), so
// that every request does not pay for a signature.
func (p *Publisher) get(kind string, build func() (*etree.Element, error)) ([]byte, error) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.cache[kind]; ok && now.Before(c.renewAt) {
		return c.b, nil
	}
	el, err := build()
	if err != nil {
		return nil, err
	}
	p.decorate(el, kind == "idp")
	b, err := fedmeta.Sign(el, p.Signer, now.Add(p.ValidFor), p.CacheDuration)
	if err != nil {
		return nil, err
	}
	renew := p.ValidFor / 4
	if renew > time.Hour {
		renew = time.Hour
	}
	if p.cache == nil {
		p.cache = map[string]signed{}
	}
	p.cache[kind] = signed{b: b, renewAt: now.Add(renew)}
	return b, nil
}

// AssuranceCertification is the entity attribute that lists the
// assurance levels an IdP can assert (REFEDS Assurance Framework).
const AssuranceCertification = "urn:oasis:names:tc:SAML:attribute:assurance-certification"

// decorate adds the entity attributes (the organisation number; for the
// IdP side the assurance levels), md:Organization and md:ContactPerson
// where the schema puts them.
func (p *Publisher) decorate(ed *etree.Element, idp bool) {
	prefix := ed.Space
	name := func(local string) string {
		if prefix == "" {
			return local
		}
		return prefix + ":" + local
	}
	var ea *etree.Element
	attribute := func(attrName, friendly string, values ...string) {
		if ea == nil {
			// Entity-level Extensions come before every role descriptor.
			ext := etree.NewElement(name("Extensions"))
			ea = ext.CreateElement("mdattr:EntityAttributes")
			ea.CreateAttr("xmlns:mdattr", "urn:oasis:names:tc:SAML:metadata:attribute")
			ed.InsertChildAt(0, ext)
		}
		a := ea.CreateElement("saml:Attribute")
		a.CreateAttr("xmlns:saml", "urn:oasis:names:tc:SAML:2.0:assertion")
		a.CreateAttr("Name", attrName)
		a.CreateAttr("NameFormat", "urn:oasis:names:tc:SAML:2.0:attrname-format:uri")
		if friendly != "" {
			a.CreateAttr("FriendlyName", friendly)
		}
		for _, v := range values {
			a.CreateElement("saml:AttributeValue").SetText(v)
		}
	}
	if n := p.Organization.Number; n != "" {
		attribute("urn:oid:2.5.4.97", "organizationIdentifier", n)
	}
	if idp && len(p.AssuranceCertifications) > 0 {
		attribute(AssuranceCertification, "", p.AssuranceCertifications...)
	}
	if o := p.Organization; o.Name != "" {
		org := ed.CreateElement(name("Organization"))
		for _, f := range []struct{ tag, v string }{{"OrganizationName", o.Name}, {"OrganizationDisplayName", o.DisplayName}, {"OrganizationURL", o.URL}} {
			v := f.v
			if v == "" && f.tag == "OrganizationDisplayName" {
				v = o.Name
			}
			e := org.CreateElement(name(f.tag))
			e.CreateAttr("xml:lang", "sv")
			e.SetText(v)
		}
	}
	for _, c := range p.Contacts {
		cp := ed.CreateElement(name("ContactPerson"))
		cp.CreateAttr("contactType", c.Type)
		if c.Name != "" {
			cp.CreateElement(name("GivenName")).SetText(c.Name)
		}
		cp.CreateElement(name("EmailAddress")).SetText("mailto:" + c.Email)
	}
}
