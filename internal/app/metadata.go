package app

import (
	"crypto/x509"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/ownmeta"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/server"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// buildPublisher prepares the bridge's own signed metadata: the metadata
// key (or the signing key), organisation, contacts and the announced next
// signing certificate.
func buildPublisher(rep *Report, cfg *config.Config, o *config.Organiser, org *server.Organiser, signer *xmlsig.Signer, ks config.Keys, keysAt string, now func() time.Time) *ownmeta.Publisher {
	m := o.Metadata
	file := cfg.File()
	if m.Signing != nil {
		p, err := keys.Load(cfg.Path(m.Signing.Cert), cfg.Path(m.Signing.Key))
		if err != nil {
			rep.errorf(file, o.Key("metadata.signing"), "%v", err)
			return nil
		}
		if signer, err = xmlsig.NewSigner(p); err != nil {
			rep.errorf(file, o.Key("metadata.signing"), "%v", err)
			return nil
		}
	}
	if next := ks.NextSigningCert; next != "" {
		b, err := os.ReadFile(cfg.Path(next))
		if err == nil {
			org.IdP.NextSigningCert, err = keys.ParseCertificatePEM(b)
		}
		if err != nil {
			rep.errorf(file, keysAt+".next_signing_cert", "%v", err)
			return nil
		}
	}
	pub := &ownmeta.Publisher{
		IdP:           org.IdP,
		SPMetadata:    map[string][]byte{},
		Signer:        signer,
		ValidFor:      time.Duration(m.ValidFor),
		CacheDuration: time.Duration(m.CacheDuration),
		Now:           now,
		Organization: ownmeta.Organization{Name: m.Organization.Name, DisplayName: m.Organization.DisplayName,
			URL: m.Organization.URL},
	}
	// A federation registers each member as itself: the organiser's
	// legal name, never the hub operator's (DOMAIN.md).
	if o.LegalName != "" {
		pub.Organization.Name = o.LegalName
		if pub.Organization.DisplayName == "" {
			pub.Organization.DisplayName = o.DisplayName
		}
	}
	if pub.Organization.Name == "" {
		pub.Organization = ownmeta.Organization{Name: o.DisplayName}
	}
	pub.Organization.Number = o.OrganisationNumber
	if pub.Organization.URL == "" {
		pub.Organization.URL = cfg.OrganiserURL(o, "")
	}
	for _, u := range org.Upstreams {
		if u.SPMetadata != nil {
			pub.SPMetadata[u.ID] = u.SPMetadata
		}
	}
	for _, c := range m.Contacts {
		pub.Contacts = append(pub.Contacts, ownmeta.Contact{Type: c.Type, Name: c.Name, Email: c.Email})
	}
	if len(m.Contacts) == 0 {
		rep.warnf(file, o.Key("metadata.contacts"), "no contact: federations require a technical contact in metadata")
	}
	return pub
}

// noteRequested compares what each vendor's metadata requests with what its
// policy releases, both ways.
func noteRequested(rep *Report, pols []*policy.Policy, vendors map[string]*samlidp.Vendor) {
	requested := map[string][]string{}
	for id, v := range vendors {
		requested[id] = v.RequestedAttributes
	}
	for _, row := range audit.BuildRegister(pols, requested) {
		if row.Protocol != audit.ProtocolSAML || requested[row.EntityIDOrClientID] == nil {
			continue
		}
		if len(row.RequestedNotReleased) > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s requests but does not get: %s", row.VendorID, strings.Join(row.RequestedNotReleased, ", ")))
		}
		if len(row.ReleasedNotRequested) > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s gets but never asked for: %s", row.VendorID, strings.Join(row.ReleasedNotRequested, ", ")))
		}
	}
}

// buildHub builds the hub's own entity: an IdP for the shared vendors in
// hub.metadata_dir, signed with the hub's default key. Its metadata lists
// the scopes of every organiser that serves one of its vendors, since
// each login releases the chosen organiser's scope.
func buildHub(rep *Report, cfg *config.Config, orgs []*server.Organiser, vendors map[string]*samlidp.Vendor, now func() time.Time) *server.Hub {
	file := cfg.File()
	h := cfg.Hub
	p := loadPair(rep, file, "keys.signing", cfg.Path(cfg.Keys.Signing.Cert), cfg.Path(cfg.Keys.Signing.Key))
	if p == nil {
		return nil
	}
	signer, err := xmlsig.NewSigner(p)
	if err != nil {
		rep.errorf(file, "keys.signing", "%v", err)
		return nil
	}
	hub := &server.Hub{}
	// The hub's binding key comes from its signing key, the one secret
	// the hub entity has; every instance derives the same.
	der, err := x509.MarshalPKCS8PrivateKey(p.Signer)
	if err == nil {
		hub.BindingKey, err = deriveBindingKey(append([]byte("skolbro hub entity\x00"), der...))
	}
	if err != nil {
		rep.errorf(file, "keys.signing", "%v", err)
		return nil
	}
	var scopes []string
	for _, org := range orgs {
		for id := range vendors {
			if _, ok := org.Policies.BySAMLEntityID(id); ok {
				hub.Organisers = append(hub.Organisers, org)
				scopes = append(scopes, org.IdP.Scope)
				scopes = append(scopes, org.IdP.ExtraScopes...)
				break
			}
		}
	}
	for id, v := range vendors {
		served := false
		for _, org := range hub.Organisers {
			if _, ok := org.Policies.BySAMLEntityID(id); ok {
				served = true
			}
		}
		if !served {
			rep.warnf(v.File, "", "no organiser's release policy names entityID %q: the hub does not serve this vendor", id)
		}
	}
	if len(scopes) == 0 {
		scopes = []string{""}
	}
	hub.IdP = &samlidp.IdP{
		EntityID:    cfg.URL(server.HubPrefix + "/saml/idp/metadata"),
		SSOURL:      cfg.URL(server.HubPrefix + "/saml/idp/sso"),
		SLOURL:      cfg.URL(server.HubPrefix + "/saml/idp/slo"),
		Scope:       scopes[0],
		ExtraScopes: scopes[1:],
		Signer:      signer,
		AltSigners:  map[string]*xmlsig.Signer{signer.Method(): signer},
		Vendors:     vendors,
		ClockSkew:   2 * time.Minute,
		Now:         now,
	}
	m := h.Metadata
	hub.Metadata = &ownmeta.Publisher{
		IdP:           hub.IdP,
		Signer:        signer,
		ValidFor:      time.Duration(m.ValidFor),
		CacheDuration: time.Duration(m.CacheDuration),
		Now:           now,
		Organization:  ownmeta.Organization{Name: h.LegalName, DisplayName: h.DisplayName, URL: cfg.ExternalURL},
	}
	for _, c := range m.Contacts {
		hub.Metadata.Contacts = append(hub.Metadata.Contacts, ownmeta.Contact{Type: c.Type, Name: c.Name, Email: c.Email})
	}
	// The hub's entity answers for whichever organiser the person picks:
	// it claims only the levels every one of them can prove.
	for i, org := range hub.Organisers {
		if i == 0 {
			hub.Metadata.AssuranceCertifications = append([]string(nil), org.AssuranceLevels...)
			continue
		}
		hub.Metadata.AssuranceCertifications = slices.DeleteFunc(hub.Metadata.AssuranceCertifications, func(l string) bool {
			return !slices.Contains(org.AssuranceLevels, l)
		})
	}
	return hub
}
