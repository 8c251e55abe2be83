package app

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/samlmeta"
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
}
