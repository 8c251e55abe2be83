package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/crewjam/saml"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/fedmeta"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/policy"
)

// buildFederation loads every federation source once (falling back to the
// last good copy on disk) and returns the refresher that keeps them fresh.
func buildFederation(rep *Report, cfg *config.Config, o *config.Organiser, reg prometheus.Registerer) *fedmeta.Refresher {
	file := cfg.File()
	var sources []*fedmeta.Source
	for i, f := range o.Federation {
		key := o.Key(fmt.Sprintf("federation[%d]", i))
		b, err := os.ReadFile(cfg.Path(f.SigningCert))
		if err != nil {
			continue // reported by Validate
		}
		cert, err := keys.ParseCertificatePEM(b)
		if err != nil {
			rep.errorf(file, key+".signing_cert", "%v", err)
			continue
		}
		src := &fedmeta.Source{Name: f.Name, URL: f.URL, SigningCert: cert, CacheDir: cfg.Path(f.CacheDir),
			MinRefresh: time.Duration(f.MinRefresh), MaxRefresh: time.Duration(f.MaxRefresh)}
		if !strings.Contains(f.URL, "://") {
			src.URL = cfg.Path(f.URL)
		}
		if err := src.Validate(); err != nil {
			rep.errorf(file, key, "%v", err)
			continue
		}
		sources = append(sources, src)
	}
	for _, u := range o.Upstreams {
		if src := upstreamSource(rep, cfg, o, u); src != nil {
			sources = append(sources, src)
		}
	}
	if len(sources) == 0 {
		return nil
	}
	r, err := fedmeta.NewRefresher(sources, reg)
	if err != nil {
		rep.errorf(file, o.Key("federation"), "%v", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_ = r.Refresh(ctx)
	for i, st := range r.Status() {
		key := o.Key("federation")
		what := "source " + st.Source
		if sources[i].Private {
			key, what = o.Key("upstream.metadata_url"), "the school IdP's metadata ("+sources[i].URL+")"
			if st.Entities > 0 {
				rep.Notes = append(rep.Notes, location(file, key)+fmt.Sprintf("%s: in use until %s (from the last good copy: %v), next refresh %s",
					what, st.ValidUntil.UTC().Format(time.RFC3339), st.FromCache, st.NextRefresh.UTC().Format(time.RFC3339)))
			}
		}
		switch {
		case st.LastError != "" && st.Entities == 0 && sources[i].Private:
			// loadUpstream reports the upstream that cannot be built.
		case st.LastError != "" && st.Entities == 0:
			rep.warnf(file, key, "%s: %s, and no usable last good copy: its vendors are not served", what, st.LastError)
		case st.LastError != "":
			rep.warnf(file, key, "%s: %s; using the last good copy, valid until %s", what, st.LastError, st.ValidUntil.Format(time.DateOnly))
		}
	}
	return r
}

// upstreamSourceName names the metadata source of an upstream with a
// metadata_url among the organiser's sources.
func upstreamSourceName(u *config.Upstream) string { return "upstream-" + u.ID }

// upstreamSource is the fetched, refreshed metadata of a school IdP with
// a metadata_url: trusted by a pinned signing certificate or by a pinned
// TLS key, kept as a last good copy, private to that upstream.
func upstreamSource(rep *Report, cfg *config.Config, o *config.Organiser, u *config.Upstream) *fedmeta.Source {
	if u.Type != "saml" || u.MetadataURL == "" {
		return nil
	}
	src := &fedmeta.Source{
		Name: upstreamSourceName(u), URL: u.MetadataURL, TLSPins: u.MetadataTLSPins, Private: true,
		CacheDir:   filepath.Join(cfg.Path(o.Audit.Dir), "upstream-metadata"),
		MaxAge:     time.Duration(u.MetadataMaxAge),
		MinRefresh: time.Duration(u.MetadataMinRefresh), MaxRefresh: time.Duration(u.MetadataMaxRefresh),
	}
	if u.MetadataCacheDir != "" {
		src.CacheDir = cfg.Path(u.MetadataCacheDir)
	}
	if src.MaxAge == 0 {
		src.MaxAge = 7 * 24 * time.Hour
	}
	if u.MetadataSigningCert != "" {
		b, err := os.ReadFile(cfg.Path(u.MetadataSigningCert))
		if err != nil {
			return nil // reported by Validate
		}
		if src.SigningCert, err = keys.ParseCertificatePEM(b); err != nil {
			rep.errorf(cfg.File(), u.Key("metadata_signing_cert"), "%v", err)
			return nil
		}
	}
	if err := src.Validate(); err != nil {
		rep.errorf(cfg.File(), u.Key("metadata_url"), "%v", err)
		return nil
	}
	return src
}

// federationLookup serves a vendor from a federation aggregate only when a
// release policy names its entityID: an aggregate never enables a vendor.
func federationLookup(fed *fedmeta.Refresher, pols *policy.Set, devMode bool) func(string) (*samlidp.Vendor, bool) {
	// A parsed vendor is kept per entityID with the descriptor it came
	// from: a refresh brings a new descriptor, and with it a fresh parse.
	type parsed struct {
		from any
		v    *samlidp.Vendor
	}
	var mu sync.Mutex
	cache := map[string]parsed{}
	return func(entityID string) (*samlidp.Vendor, bool) {
		if _, ok := pols.BySAMLEntityID(entityID); !ok {
			return nil, false
		}
		ed, methods, ok := fed.Vendor(entityID)
		if !ok {
			return nil, false
		}
		mu.Lock()
		defer mu.Unlock()
		if c, ok := cache[entityID]; ok && c.from == any(ed) {
			return c.v, true
		}
		v, err := federationVendor(ed, methods, devMode)
		if err != nil {
			return nil, false
		}
		cache[entityID] = parsed{from: ed, v: v}
		return v, true
	}
}

// federationVendor reads a vendor from its federation descriptor ed, with
// the signing methods (alg:SigningMethod) its metadata announces, which
// crewjam's descriptor drops (fedmeta.Refresher.Vendor gives both).
func federationVendor(ed *saml.EntityDescriptor, methods []string, devMode bool) (*samlidp.Vendor, error) {
	v, err := samlidp.VendorFromMetadata("federation", ed, devMode)
	if err != nil {
		return nil, err
	}
	v.SigningMethods = methods
	return v, nil
}
