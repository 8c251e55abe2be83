// Package app builds the bridge from its configuration: it loads keys,
// upstream metadata, vendor metadata and release policies into one
// server.Organiser, and reports every problem at once, each with its file
// and key. serve, check and demo all go through it, so that what check
// accepts is what serve runs.
package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/downstream/oidcop"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/fedmeta"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/mapping"
	"github.com/skolbro/skolbro/internal/ownmeta"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/protection"
	"github.com/skolbro/skolbro/internal/pseudonym"
	"github.com/skolbro/skolbro/internal/samlmeta"
	"github.com/skolbro/skolbro/internal/server"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/upstream/oidcrp"
	"github.com/skolbro/skolbro/internal/upstream/samlsp"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// Report collects problems. Errors stop the bridge from starting;
// warnings are shown by check and logged at start.
type Report struct {
	Errors   []string
	Warnings []string
	// Notes are facts an admin should see, such as what a vendor asks for
	// but does not get.
	Notes []string
}

func (r *Report) errorf(file, key, format string, args ...any) {
	r.Errors = append(r.Errors, location(file, key)+fmt.Sprintf(format, args...))
}

func (r *Report) warnf(file, key, format string, args ...any) {
	r.Warnings = append(r.Warnings, location(file, key)+fmt.Sprintf(format, args...))
}

func location(file, key string) string {
	if key == "" {
		return file + ": "
	}
	return file + ": " + key + ": "
}

// Err returns the errors joined, or nil.
func (r *Report) Err() error {
	if len(r.Errors) == 0 {
		return nil
	}
	return errors.New(strings.Join(r.Errors, "\n"))
}

// Build loads everything cfg names. The store is used by the upstream SP
// for pending requests and the replay cache. It returns a nil Organiser
// when the report has errors.
func Build(cfg *config.Config, st store.Store, now func() time.Time) (*server.Organiser, *Report) {
	return BuildWith(cfg, st, Options{Now: now})
}

// Options are the parts of a build that are not configuration.
type Options struct {
	Now func() time.Time
	// HTTPClient is used towards an OIDC upstream (discovery, JWKS,
	// tokens); the demo routes it in-process to its test provider.
	HTTPClient *http.Client
	// Registerer receives the bridge's metrics; nil makes a fresh registry.
	Registerer prometheus.Registerer
	// Instrument wraps the store used by the login flows (metrics); the
	// raw store stays with what needs the backend itself.
	Instrument func(store.Store) store.Store
}

// BuildWith is Build with options.
func BuildWith(cfg *config.Config, st store.Store, opts Options) (*server.Organiser, *Report) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	rep := &Report{}
	if err := cfg.Validate(); err != nil {
		for _, e := range splitJoined(err) {
			rep.Errors = append(rep.Errors, e.Error())
		}
		// Keep going where the files exist, to report everything at once.
	}
	o := cfg.Organiser
	file := cfg.File()

	signing := loadPair(rep, file, "organiser.keys.signing", cfg.Path(o.Keys.Signing.Cert), cfg.Path(o.Keys.Signing.Key))
	var ecdsaSigner *xmlsig.Signer
	if o.Keys.SigningECDSA != nil {
		if p := loadPair(rep, file, "organiser.keys.signing_ecdsa", cfg.Path(o.Keys.SigningECDSA.Cert), cfg.Path(o.Keys.SigningECDSA.Key)); p != nil {
			s, err := xmlsig.NewSigner(p)
			if err != nil || s.Method() != xmlsig.ECDSASHA256 {
				rep.errorf(file, "organiser.keys.signing_ecdsa", "must be a P-256 ECDSA key")
			} else {
				ecdsaSigner = s
			}
		}
	}
	var deriver *pseudonym.Deriver
	if o.Pseudonym.KeyFile != "" {
		key, err := pseudonym.LoadKey(cfg.Path(o.Pseudonym.KeyFile))
		if err != nil {
			rep.errorf(file, "organiser.pseudonym.key_file", "%v", err)
		} else if deriver, err = pseudonym.New(key, o.Scope); err != nil {
			rep.errorf(file, "organiser.scope", "%v", err)
		}
	}

	var auditKeys *audit.SubjectKeyer
	if o.Audit.Dir != "" && o.Audit.KeyFile != "" {
		k, err := audit.LoadSubjectKeyer(cfg.Path(o.Audit.KeyFile))
		if err != nil {
			rep.errorf(file, "organiser.audit.key_file", "%v", err)
		}
		auditKeys = k
	} else if o.Audit.Dir == "" {
		rep.warnf(file, "organiser.audit.dir", "no release log is configured: releases are not recorded")
	}

	resolver, register := buildProtection(rep, cfg, st, reg)
	if opts.Instrument != nil {
		st = opts.Instrument(st)
	}

	// Upstream IdP.
	var up upstream
	if o.Upstream.Type == "saml" {
		up = loadUpstream(rep, cfg)
	}

	// Vendors: metadata and policies.
	vendors := loadVendors(rep, cfg)
	pols, probs := policy.LoadDir(cfg.Path(o.PolicyDir), policy.At(now()))
	for _, p := range probs {
		if p.Warning {
			p.Warning = false // the report says it is a warning
			rep.Warnings = append(rep.Warnings, p.String())
		} else {
			rep.Errors = append(rep.Errors, p.String())
		}
	}
	fed := buildFederation(rep, cfg, reg)
	served := map[string]*samlidp.Vendor{}
	fromFederation := map[string]bool{}
	for _, p := range pols {
		if p.SAML == nil {
			continue
		}
		v, ok := vendors[p.SAML.EntityID]
		if !ok && fed != nil {
			if ed, found := fed.Entity(p.SAML.EntityID); found {
				fv, err := samlidp.VendorFromMetadata("federation", ed, cfg.DevMode)
				if err != nil {
					rep.errorf(p.File, "saml.entity_id", "the federation's metadata for %q is not usable: %v", p.SAML.EntityID, err)
					continue
				}
				v, ok = fv, true
				fromFederation[p.SAML.EntityID] = true
			}
		}
		if !ok {
			rep.errorf(p.File, "saml.entity_id", "no metadata for entityID %q in %s or any federation source", p.SAML.EntityID, cfg.Path(o.MetadataDir))
			continue
		}
		if p.SAML.SignatureAlgorithm == "ecdsa-sha256" && ecdsaSigner == nil {
			rep.errorf(p.File, "saml.signature_algorithm", "ecdsa-sha256 needs organiser.keys.signing_ecdsa in %s", file)
		}
		if p.SAML.Encrypt == "required" && v.EncryptionCert == nil {
			rep.errorf(p.File, "saml.encrypt", "required, but the metadata in %s has no encryption key", v.File)
		}
		if !fromFederation[v.EntityID] {
			served[v.EntityID] = v
		}
	}
	for id, v := range vendors {
		if served[id] == nil {
			rep.warnf(v.File, "", "no release policy names entityID %q: this vendor is not served", id)
		}
	}
	op := buildOP(rep, cfg, pols, st, now)
	if len(rep.Errors) > 0 {
		return nil, rep
	}

	signer, err := xmlsig.NewSigner(signing)
	if err != nil {
		rep.errorf(file, "organiser.keys.signing", "%v", err)
		return nil, rep
	}
	alt := map[string]*xmlsig.Signer{signer.Method(): signer}
	if ecdsaSigner != nil {
		alt[ecdsaSigner.Method()] = ecdsaSigner
	}
	var sp *samlsp.SP
	var rp *oidcrp.RP
	var spMeta []byte
	if o.Upstream.Type == "oidc" {
		secret, err := os.ReadFile(cfg.Path(o.Upstream.ClientSecretFile))
		if err != nil {
			rep.errorf(file, "organiser.upstream.client_secret_file", "%v", err)
			return nil, rep
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		rp, err = oidcrp.New(ctx, oidcrp.Config{
			Issuer:       o.Upstream.Issuer,
			ClientID:     o.Upstream.ClientID,
			ClientSecret: strings.TrimSpace(string(secret)),
			RedirectURL:  cfg.URL("/oidc/rp/callback"),
			Scopes:       o.Upstream.OIDCScopes,
			Store:        st,
			HTTPClient:   opts.HTTPClient,
			Now:          now,
		})
		if err != nil {
			rep.errorf(file, "organiser.upstream.issuer", "%v", err)
			return nil, rep
		}
	} else {
		var err error
		sp, err = samlsp.New(samlsp.Config{
			EntityID:    cfg.URL("/saml/sp/metadata"),
			ACSURL:      cfg.URL("/saml/sp/acs"),
			IdPEntityID: up.entityID,
			IdPSSOURL:   up.ssoURL,
			IdPCerts:    up.certs,
			Store:       st,
			ClockSkew:   time.Duration(o.Upstream.ClockSkew),
			Now:         now,
		})
		if err != nil {
			rep.errorf(file, "organiser.upstream", "%v", err)
			return nil, rep
		}
		if spMeta, err = sp.Metadata(); err != nil {
			rep.errorf(file, "organiser.upstream", "%v", err)
			return nil, rep
		}
	}
	scopes := o.Upstream.Scopes
	if len(scopes) == 0 {
		scopes = up.scopes
	}
	org := &server.Organiser{
		ID: o.ID,
		SP: sp,
		RP: rp,
		IdP: &samlidp.IdP{
			EntityID:   cfg.URL("/saml/idp/metadata"),
			SSOURL:     cfg.URL("/saml/idp/sso"),
			Scope:      o.Scope,
			Signer:     signer,
			AltSigners: alt,
			Vendors:    served,
			ClockSkew:  time.Duration(o.Upstream.ClockSkew),
			Now:        now,
		},
		Policies:   policy.NewSet(pols),
		Federation: fed,
		Deriver:    deriver,
		Mapping: &mapping.Config{
			Upstream:        o.Upstream.ID,
			Attributes:      o.Upstream.Attributes,
			StableID:        o.Upstream.StableID,
			PersonalNumber:  o.Upstream.PersonalNumber,
			SecurityMarking: o.Upstream.SecurityMarking,
			Scopes:          scopes,
		},
		AssumeUnprotected: o.Upstream.AssumeUnprotected,
		SPMetadata:        spMeta,
		UpstreamID:        o.Upstream.ID,
		AuditKeys:         auditKeys,
		Protection:        resolver,
		Register:          register,
		OP:                op,
		UpstreamCerts:     up.certs,
	}
	if fed != nil {
		org.IdP.Lookup = federationLookup(fed, org.Policies, cfg.DevMode)
	}
	noteRequested(rep, pols, served)
	org.Metadata = buildPublisher(rep, cfg, org, signer, now)
	if org.Metadata == nil {
		return nil, rep
	}
	warnDays := time.Duration(o.Audit.WarnDays) * 24 * time.Hour
	for _, e := range audit.ExpiringAgreements(pols, now(), warnDays) {
		if e.DaysLeft < 0 {
			continue // already reported by the policy loader
		}
		for _, p := range pols {
			if p.ID == e.VendorID {
				rep.warnf(p.File, "agreement.ends", "%s", e.String())
			}
		}
	}
	if len(resolver.Sources) == 0 && !o.Upstream.AssumeUnprotected {
		rep.warnf(file, "organiser.protection", "no protection source is configured: every person is treated as protected and masked (fail closed)")
	}
	return org, rep
}

func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func loadPair(rep *Report, file, key, certFile, keyFile string) *keys.Pair {
	if certFile == "" || keyFile == "" {
		return nil
	}
	p, err := keys.Load(certFile, keyFile)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) { // a missing file is already reported by Validate
			rep.errorf(file, key, "%v", err)
		}
		return nil
	}
	return p
}

type upstream struct {
	entityID, ssoURL string
	certs            []*x509.Certificate
	scopes           []string
}

func loadUpstream(rep *Report, cfg *config.Config) upstream {
	u := cfg.Organiser.Upstream
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
			rep.errorf(cfg.File(), "organiser.upstream.entity_id", "%q is not in %s", u.EntityID, path)
			return out
		}
	} else if len(eds) > 1 {
		rep.errorf(cfg.File(), "organiser.upstream.entity_id", "required: %s holds %d entities", path, len(eds))
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
	return out
}

func loadVendors(rep *Report, cfg *config.Config) map[string]*samlidp.Vendor {
	dir := cfg.Path(cfg.Organiser.MetadataDir)
	out := map[string]*samlidp.Vendor{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
	sort.Strings(files)
	upstreamMeta := filepath.Clean(cfg.Path(cfg.Organiser.Upstream.Metadata))
	for _, f := range files {
		if filepath.Clean(f) == upstreamMeta {
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

// buildFederation loads every federation source once (falling back to the
// last good copy on disk) and returns the refresher that keeps them fresh.
func buildFederation(rep *Report, cfg *config.Config, reg prometheus.Registerer) *fedmeta.Refresher {
	srcs := cfg.Organiser.Federation
	if len(srcs) == 0 {
		return nil
	}
	file := cfg.File()
	var sources []*fedmeta.Source
	for i, f := range srcs {
		key := fmt.Sprintf("organiser.federation[%d]", i)
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
		rep.errorf(file, "organiser.federation", "%v", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_ = r.Refresh(ctx)
	for _, st := range r.Status() {
		switch {
		case st.LastError != "" && st.Entities == 0:
			rep.warnf(file, "organiser.federation", "source %s: %s, and no usable last good copy: its vendors are not served", st.Source, st.LastError)
		case st.LastError != "":
			rep.warnf(file, "organiser.federation", "source %s: %s; using the last good copy, valid until %s", st.Source, st.LastError, st.ValidUntil.Format(time.DateOnly))
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

// buildPublisher prepares the bridge's own signed metadata: the metadata
// key (or the signing key), organisation, contacts and the announced next
// signing certificate.
func buildPublisher(rep *Report, cfg *config.Config, org *server.Organiser, signer *xmlsig.Signer, now func() time.Time) *ownmeta.Publisher {
	m := cfg.Organiser.Metadata
	file := cfg.File()
	if m.Signing != nil {
		p, err := keys.Load(cfg.Path(m.Signing.Cert), cfg.Path(m.Signing.Key))
		if err != nil {
			rep.errorf(file, "organiser.metadata.signing", "%v", err)
			return nil
		}
		if signer, err = xmlsig.NewSigner(p); err != nil {
			rep.errorf(file, "organiser.metadata.signing", "%v", err)
			return nil
		}
	}
	if next := cfg.Organiser.Keys.NextSigningCert; next != "" {
		b, err := os.ReadFile(cfg.Path(next))
		if err == nil {
			org.IdP.NextSigningCert, err = keys.ParseCertificatePEM(b)
		}
		if err != nil {
			rep.errorf(file, "organiser.keys.next_signing_cert", "%v", err)
			return nil
		}
	}
	pub := &ownmeta.Publisher{
		IdP:           org.IdP,
		SPMetadata:    org.SPMetadata,
		Signer:        signer,
		ValidFor:      time.Duration(m.ValidFor),
		CacheDuration: time.Duration(m.CacheDuration),
		Now:           now,
		Organization: ownmeta.Organization{Name: m.Organization.Name, DisplayName: m.Organization.DisplayName,
			URL: m.Organization.URL},
	}
	if pub.Organization.Name == "" {
		pub.Organization = ownmeta.Organization{Name: cfg.Organiser.DisplayName}
	}
	if pub.Organization.URL == "" {
		pub.Organization.URL = cfg.ExternalURL
	}
	for _, c := range m.Contacts {
		pub.Contacts = append(pub.Contacts, ownmeta.Contact{Type: c.Type, Name: c.Name, Email: c.Email})
	}
	if len(m.Contacts) == 0 {
		rep.warnf(file, "organiser.metadata.contacts", "no contact: federations require a technical contact in metadata")
	}
	return pub
}

// buildOP makes the OpenID Provider for the policies with an oidc section,
// or returns nil when there are none.
func buildOP(rep *Report, cfg *config.Config, pols []*policy.Policy, st store.Store, now func() time.Time) *oidcop.Provider {
	clients := map[string]*oidcop.Client{}
	for _, p := range pols {
		if p.OIDC == nil {
			continue
		}
		c, err := oidcop.ClientFromPolicy(p)
		if err != nil {
			rep.errorf(p.File, "oidc", "%v", err)
			continue
		}
		if prev, dup := clients[c.ID]; dup {
			rep.errorf(p.File, "oidc.client_id", "%q is also the client id of vendor %s", c.ID, prev.VendorID)
			continue
		}
		clients[c.ID] = c
	}
	oidcKeys := cfg.Organiser.Keys.OIDC
	if len(clients) == 0 && len(oidcKeys) == 0 {
		return nil
	}
	file := cfg.File()
	if len(oidcKeys) == 0 {
		rep.errorf(file, "organiser.keys.oidc", "required: OIDC vendors are configured, so ID tokens need signing keys")
		return nil
	}
	var specs []oidcop.KeySpec
	for i, k := range oidcKeys {
		key := fmt.Sprintf("organiser.keys.oidc[%d]", i)
		signer, err := keys.LoadSigner(cfg.Path(k.Key))
		if err != nil {
			rep.errorf(file, key+".key", "%v", err)
			continue
		}
		spec := oidcop.KeySpec{KID: k.KID, Signer: signer}
		switch signer.(type) {
		case *ecdsa.PrivateKey:
			spec.Alg = jose.ES256
		case *rsa.PrivateKey:
			spec.Alg = jose.RS256
		}
		if k.UseFrom != "" {
			spec.UseFrom, _ = time.Parse(time.DateOnly, k.UseFrom)
		}
		if k.RetireAt != "" {
			spec.RetireAt, _ = time.Parse(time.DateOnly, k.RetireAt)
		}
		specs = append(specs, spec)
	}
	ks, err := oidcop.NewKeySet(specs)
	if err != nil {
		rep.errorf(file, "organiser.keys.oidc", "%v", err)
		return nil
	}
	op := &oidcop.Provider{
		Issuer:  strings.TrimRight(cfg.ExternalURL, "/"),
		Keys:    ks,
		Clients: clients,
		Store:   st,
		Now:     now,
	}
	if err := op.Validate(); err != nil {
		rep.errorf(file, "organiser.keys.oidc", "%v", err)
		return nil
	}
	return op
}

// buildProtection makes the protection resolver from every configured
// source: the upstream attribute, the manual register, the SS 12000 API.
func buildProtection(rep *Report, cfg *config.Config, st store.Store, reg prometheus.Registerer) (*protection.Resolver, *protection.Register) {
	o := cfg.Organiser
	file := cfg.File()
	res := &protection.Resolver{}
	if m, err := protection.NewMetrics(reg); err == nil {
		res.Metrics = m
	}
	if o.Upstream.SecurityMarking != "" {
		res.Sources = append(res.Sources, protection.UpstreamAttribute{})
	}
	var register *protection.Register
	if r := o.Protection.Register; r != nil {
		key, err := pseudonym.LoadKey(cfg.Path(r.KeyFile))
		if err != nil {
			rep.errorf(file, "organiser.protection.register.key_file", "%v", err)
		} else {
			var backend protection.RegisterBackend
			if rs, ok := st.(*store.Redis); ok {
				backend = protection.NewRedisRegister(rs.Client(), rs.Prefix())
			} else {
				backend = protection.NewFileRegister(cfg.Path(r.File))
			}
			if register, err = protection.NewRegister(backend, key); err != nil {
				rep.errorf(file, "organiser.protection.register.key_file", "%v", err)
			} else {
				res.Sources = append(res.Sources, register)
			}
		}
	}
	if ss := o.Protection.SS12000; ss != nil {
		sc := protection.SS12000Config{
			BaseURL:  ss.BaseURL,
			Timeout:  time.Duration(ss.Timeout),
			CacheTTL: time.Duration(ss.CacheTTL),
		}
		if ss.TokenFile != "" {
			sc.BearerTokenFile = cfg.Path(ss.TokenFile)
		}
		if ss.ClientCert != nil {
			c, err := tls.LoadX509KeyPair(cfg.Path(ss.ClientCert.Cert), cfg.Path(ss.ClientCert.Key))
			if err != nil {
				rep.errorf(file, "organiser.protection.ss12000.client_cert", "%v", err)
			} else {
				sc.ClientCert = &c
			}
		}
		if ss.CAFile != "" {
			b, err := os.ReadFile(cfg.Path(ss.CAFile))
			pool := x509.NewCertPool()
			if err != nil || !pool.AppendCertsFromPEM(b) {
				rep.errorf(file, "organiser.protection.ss12000.ca_file", "no PEM certificates could be read")
			} else {
				sc.RootCAs = pool
			}
		}
		src, err := protection.NewSS12000(sc)
		if err != nil {
			rep.errorf(file, "organiser.protection.ss12000", "%v", err)
		} else {
			res.Sources = append(res.Sources, src)
		}
	}
	return res, register
}

// OpenAudit opens the release log, or returns nil when none is configured.
func OpenAudit(cfg *config.Config, now func() time.Time) (audit.Sink, error) {
	a := cfg.Organiser.Audit
	if a.Dir == "" {
		return nil, nil
	}
	sync := audit.SyncEach
	if a.Sync == "batch" {
		sync = audit.SyncBatch
	}
	return audit.OpenFileSink(audit.FileSinkConfig{
		Dir:         cfg.Path(a.Dir),
		MaxBytes:    a.MaxBytes,
		RotateDaily: a.RotateDaily,
		Retention:   time.Duration(a.Retention),
		Sync:        sync,
		Now:         now,
	})
}

// OpenStore opens the configured store.
func OpenStore(cfg *config.Config) (store.Store, error) {
	switch cfg.Store.Type {
	case "redis":
		r := cfg.Store.Redis
		password := ""
		if r.PasswordFile != "" {
			b, err := os.ReadFile(cfg.Path(r.PasswordFile))
			if err != nil {
				return nil, fmt.Errorf("%s: store.redis.password_file: %w", cfg.File(), err)
			}
			password = strings.TrimSpace(string(b))
		}
		var tc *tls.Config
		if r.TLS {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		return store.NewRedisFromConfig(r.Addrs, r.Username, password, r.DB, r.MasterName, tc, r.Prefix)
	default:
		return store.NewMemory(nil), nil
	}
}
