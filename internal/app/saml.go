package app

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/samlmeta"
	"github.com/skolbro/skolbro/internal/samlslo"
	"github.com/skolbro/skolbro/internal/xmlenc"
)

func loadUpstream(rep *Report, cfg *config.Config, u *config.Upstream) upstream {
	var out upstream
	if u.Metadata == "" {
		return out
	}
	path := cfg.Path(u.Metadata)
	b, err := os.ReadFile(path)
	if err != nil {
		return out // reported by Validate
	}
	eds, err := samlmeta.ParseEntities(b)
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
	out.entityID = ed.EntityID
	if out.certs, err = samlmeta.IdPSigningCerts(ed); err != nil || len(out.certs) == 0 {
		rep.errorf(path, "IDPSSODescriptor/KeyDescriptor", "no usable signing certificate")
	}
	for _, c := range out.certs {
		if time.Now().After(c.NotAfter) {
			rep.warnf(path, "IDPSSODescriptor/KeyDescriptor", "signing certificate %q expired on %s", c.Subject.CommonName, c.NotAfter.Format(time.DateOnly))
		}
	}
	if out.ssoURL, err = samlmeta.IdPSSORedirectURL(ed); err != nil {
		rep.errorf(path, "IDPSSODescriptor/SingleSignOnService", "%v", err)
	} else if err := samlidp.CheckBrowserURL(out.ssoURL, cfg.DevMode); err != nil {
		rep.errorf(path, "IDPSSODescriptor/SingleSignOnService", "%v", err)
	}
	out.slo = samlmeta.IdPSLO(ed)
	for _, e := range out.slo {
		for _, u := range []string{e.Location, e.ResponseLocation} {
			if u == "" {
				continue
			}
			if err := samlidp.CheckBrowserURL(u, cfg.DevMode); err != nil {
				rep.errorf(path, "IDPSSODescriptor/SingleLogoutService", "%v", err)
			}
		}
	}
	if out.scopes, err = samlmeta.Scopes(b, ed.EntityID); err != nil {
		rep.errorf(path, "IDPSSODescriptor/Extensions/shibmd:Scope", "%v", err)
	}
	for _, d := range ed.IDPSSODescriptors {
		for _, a := range d.Attributes {
			out.attributes = append(out.attributes, declaredAttribute{name: a.Name, friendly: a.FriendlyName})
		}
	}
	return out
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
		eds, err := samlmeta.ParseEntities(b)
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
