package app

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

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
	srcs := o.Federation
	if len(srcs) == 0 {
		return nil
	}
	file := cfg.File()
	var sources []*fedmeta.Source
	for i, f := range srcs {
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
	r, err := fedmeta.NewRefresher(sources, reg)
	if err != nil {
		rep.errorf(file, o.Key("federation"), "%v", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_ = r.Refresh(ctx)
	for _, st := range r.Status() {
		switch {
		case st.LastError != "" && st.Entities == 0:
			rep.warnf(file, o.Key("federation"), "source %s: %s, and no usable last good copy: its vendors are not served", st.Source, st.LastError)
		case st.LastError != "":
			rep.warnf(file, o.Key("federation"), "source %s: %s; using the last good copy, valid until %s", st.Source, st.LastError, st.ValidUntil.Format(time.DateOnly))
		}
	}
	return r
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
		ed, ok := fed.Entity(entityID)
		if !ok {
			return nil, false
		}
		mu.Lock()
		defer mu.Unlock()
		if c, ok := cache[entityID]; ok && c.from == any(ed) {
			return c.v, true
		}
		v, err := samlidp.VendorFromMetadata("federation", ed, devMode)
		if err != nil {
			return nil, false
		}
		cache[entityID] = parsed{from: ed, v: v}
		return v, true
	}
}
