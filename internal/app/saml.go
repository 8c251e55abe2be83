package app

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/crewjam/saml"

	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/fedmeta"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/samlmeta"
	"github.com/skolbro/skolbro/internal/samlslo"
	"github.com/skolbro/skolbro/internal/upstream/samlsp"
	"github.com/skolbro/skolbro/internal/xmlenc"
)

// loadUpstream reads the school IdP's metadata: the pinned file, or what
// fed holds for it (its metadata_url, or a federation by entityID).
func loadUpstream(rep *Report, cfg *config.Config, u *config.Upstream, fed *fedmeta.Refresher) upstream {
	if u.MetadataURL != "" || u.MetadataFromFederation {
		ed, scopes, where, ok := upstreamDescriptor(u, fed)
		if !ok {
			rep.errorf(cfg.File(), u.Key(where), "no usable metadata for this IdP (%s): check shows why; with no last good copy the upstream cannot be served",
				upstreamMetadataState(u, fed))
			return upstream{}
		}
		return fromDescriptor(rep, cfg, cfg.File()+": "+u.Key(where), ed, scopes)
	}
	var out upstream
	if u.Metadata == "" {
		return out
	}
	path := cfg.Path(u.Metadata)
	b, err := os.ReadFile(path)
	if err != nil {
		return out // reported by Validate
	}
	eds, ext, err := samlmeta.ParseEntitiesAndExtensions(b)
	if err != nil {
		rep.errorf(path, "", "%v", err)
		return out
	}
	var ed = eds[0]
	if u.EntityID != "" {
		ed = nil
		for _, e := range eds {
			if e.EntityID == u.EntityID {
				ed = e
			}
		}
		if ed == nil {
			rep.errorf(cfg.File(), u.Key("entity_id"), "%q is not in %s", u.EntityID, path)
			return out
		}
	} else if len(eds) > 1 {
		rep.errorf(cfg.File(), u.Key("entity_id"), "required: %s holds %d entities", path, len(eds))
		return out
	}
	scopes, err := ext.Scopes(ed.EntityID)
	if err != nil {
		rep.errorf(path, "IDPSSODescriptor/Extensions/shibmd:Scope", "%v", err)
	}
	return fromDescriptor(rep, cfg, path, ed, scopes)
}

// upstreamDescriptor is the IdP's descriptor as fed holds it now, with its
// scopes, and the configuration key it came by.
func upstreamDescriptor(u *config.Upstream, fed *fedmeta.Refresher) (ed *saml.EntityDescriptor, scopes []string, key string, ok bool) {
	if fed == nil {
		return nil, nil, "metadata_url", false
	}
	if u.MetadataFromFederation {
		if ed, ok = fed.Entity(u.EntityID); ok {
			scopes, _ = fed.Scopes(u.EntityID)
		}
		return ed, scopes, "metadata_from_federation", ok
	}
	id := u.EntityID
	if id == "" {
		if id, ok = fed.Only(upstreamSourceName(u)); !ok {
			return nil, nil, "entity_id", false
		}
	}
	ed, scopes, ok = fed.EntityIn(upstreamSourceName(u), id)
	return ed, scopes, "metadata_url", ok
}

// upstreamMetadataState says why an upstream's fetched metadata is not
// usable, from the refresher's status.
func upstreamMetadataState(u *config.Upstream, fed *fedmeta.Refresher) string {
	if fed == nil {
		return "no source"
	}
	for _, st := range fed.Status() {
		if u.MetadataURL != "" && st.Source == upstreamSourceName(u) {
			switch {
			case st.LastError != "":
				return "last fetch: " + st.LastError
			case st.Entities != 1 && u.EntityID == "":
				return fmt.Sprintf("%d entities: set entity_id", st.Entities)
			}
			return "the entity is not in it, or it has expired"
		}
	}
	return "the entity is in no federation source, or they have expired"
}

// fromDescriptor reads what the SP needs from the IdP's descriptor; where
// names the file or configuration key in errors.
func fromDescriptor(rep *Report, cfg *config.Config, where string, ed *saml.EntityDescriptor, scopes []string) upstream {
	var out upstream
	var err error
	out.entityID = ed.EntityID
	out.scopes = scopes
	if out.certs, err = samlmeta.IdPSigningCerts(ed); err != nil || len(out.certs) == 0 {
		rep.errorf(where, "IDPSSODescriptor/KeyDescriptor", "no usable signing certificate")
	}
	for _, c := range out.certs {
		if time.Now().After(c.NotAfter) {
			rep.warnf(where, "IDPSSODescriptor/KeyDescriptor", "signing certificate %q expired on %s", c.Subject.CommonName, c.NotAfter.Format(time.DateOnly))
		}
	}
	if out.ssoURL, err = samlmeta.IdPSSORedirectURL(ed); err != nil {
		rep.errorf(where, "IDPSSODescriptor/SingleSignOnService", "%v", err)
	} else if err := samlidp.CheckBrowserURL(out.ssoURL, cfg.DevMode); err != nil {
		rep.errorf(where, "IDPSSODescriptor/SingleSignOnService", "%v", err)
	}
	out.slo = samlmeta.IdPSLO(ed)
	for _, e := range out.slo {
		for _, u := range []string{e.Location, e.ResponseLocation} {
			if u == "" {
				continue
			}
			if err := samlidp.CheckBrowserURL(u, cfg.DevMode); err != nil {
				rep.errorf(where, "IDPSSODescriptor/SingleLogoutService", "%v", err)
			}
		}
	}
	for _, d := range ed.IDPSSODescriptors {
		for _, a := range d.Attributes {
			out.attributes = append(out.attributes, declaredAttribute{name: a.Name, friendly: a.FriendlyName})
		}
	}
	return out
}

// followMetadata keeps sp's trusted IdP keys those of the IdP's metadata
// in fed after every refresh: a key rollover announced in the metadata
// needs no restart. When the metadata expires (or no longer lists the
// IdP), no key is trusted and every response is refused (SECURITY.md case
// 39); the endpoints stay those the upstream was built with (a reload
// takes new ones).
func followMetadata(u *config.Upstream, fed *fedmeta.Refresher, sp *samlsp.SP) {
	if fed == nil || (u.MetadataURL == "" && !u.MetadataFromFederation) {
		return
	}
	fed.OnRefresh(func() {
		ed, _, _, ok := upstreamDescriptor(u, fed)
		if !ok {
			sp.SetIdPCerts(nil)
			return
		}
		if certs, err := samlmeta.IdPSigningCerts(ed); err == nil && len(certs) > 0 {
			sp.SetIdPCerts(certs)
		} else {
			sp.SetIdPCerts(nil)
		}
	})
}

func loadVendors(rep *Report, cfg *config.Config, o *config.Organiser) map[string]*samlidp.Vendor {
	upstreamMeta := map[string]bool{}
	for _, u := range o.Upstreams {
		if u.Metadata != "" {
			upstreamMeta[filepath.Clean(cfg.Path(u.Metadata))] = true
		}
	}
	return loadVendorDir(rep, cfg, cfg.Path(o.MetadataDir), upstreamMeta)
}

// loadVendorDir reads every SP entity in dir's *.xml files but skip.
func loadVendorDir(rep *Report, cfg *config.Config, dir string, upstreamMeta map[string]bool) map[string]*samlidp.Vendor {
	out := map[string]*samlidp.Vendor{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
	sort.Strings(files)
	for _, f := range files {
		if upstreamMeta[filepath.Clean(f)] {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			rep.errorf(f, "", "%v", err)
			continue
		}
		// One parse for every vendor in the file, and for what crewjam's
		// types drop (alg:SigningMethod).
		eds, ext, err := samlmeta.ParseEntitiesAndExtensions(b)
		if err != nil {
			rep.errorf(f, "", "%v", err)
			continue
		}
		for _, ed := range eds {
			if len(ed.SPSSODescriptors) == 0 {
				continue // an IdP entity, e.g. the upstream's own metadata
			}
			v, err := samlidp.VendorFromMetadata(f, ed, cfg.DevMode)
			if err != nil {
				rep.errorf(f, "", "%v", err)
				continue
			}
			if ms, err := ext.SigningMethods(ed.EntityID); err == nil {
				v.SigningMethods = ms
			}
			if v.SLONoKey {
				rep.warnf(f, "SPSSODescriptor/SingleLogoutService", "entity %q lists single logout but no signing key: the bridge cannot verify its logout messages, so it is not logged out from elsewhere (logouts are reported partial)", v.EntityID)
			}
			if prev, dup := out[v.EntityID]; dup {
				rep.errorf(f, "", "entityID %q is also defined in %s", v.EntityID, prev.File)
				continue
			}
			out[v.EntityID] = v
		}
	}
	return out
}

type upstream struct {
	entityID, ssoURL string
	certs            []*x509.Certificate
	scopes           []string
	// attributes are those the IdP's metadata says it releases, if any.
	attributes []declaredAttribute
	// slo are the IdP's SingleLogoutService endpoints (Redirect, POST).
	slo []samlslo.Endpoint
}

// checkEncryption reports, for a SAML vendor's policy, what serve would do
// about encryption (samlidp.Encryption decides for both). A vendor whose
// metadata lists only AES-CBC is an error until its policy chooses: CBC has
// no integrity, so the bridge neither sends it unasked nor sends AES-GCM
// that the vendor cannot decrypt (every login would fail). Choosing CBC is
// a warning, so that it stays visible; a CBC choice the metadata no longer
// needs is one too.
func checkEncryption(rep *Report, p *policy.Policy, v *samlidp.Vendor) {
	const key = "saml.encrypt"
	encrypt, eo, err := samlidp.Encryption(v, string(p.SAML.Encrypt))
	switch {
	case errors.Is(err, samlidp.ErrNoEncryptionKey):
		rep.errorf(p.File, key, "%s, but the metadata in %s has no encryption key", p.SAML.Encrypt, v.File)
	case errors.Is(err, xmlenc.ErrOnlyCBC):
		rep.errorf(p.File, key, "the metadata in %s lists only AES-CBC encryption methods, so the vendor cannot decrypt AES-GCM: "+
			"choose encrypt: never (signed, unencrypted assertions), or encrypt: cbc to accept CBC's padding-oracle risk (see README)", v.File)
	case errors.Is(err, xmlenc.ErrNoUsableMethod):
		rep.errorf(p.File, key, "the metadata in %s lists no data encryption method the bridge supports (AES-GCM, or AES-CBC with encrypt: cbc): "+
			"choose encrypt: never, or ask the vendor for AES-GCM", v.File)
	case err != nil:
		rep.errorf(p.File, key, "%v", err)
	case encrypt && xmlenc.IsCBC(eo.DataMethod):
		rep.warnf(p.File, key, "the vendor gets AES-CBC (the metadata in %s lists no AES-GCM), which is not authenticated and open to padding oracles: ask the vendor for AES-GCM", v.File)
	case p.SAML.Encrypt == policy.EncryptCBC:
		rep.warnf(p.File, key, "cbc is not needed: the metadata in %s lists AES-GCM or no method at all, so the vendor gets AES-GCM; use encrypt: required", v.File)
	}
}
