// Package app builds the bridge from its configuration: it loads keys,
// upstream metadata, vendor metadata and release policies into one
// server.Organiser, and reports every problem at once, each with its file
// and key. serve, check and demo all go through it, so that what check
// accepts is what serve runs.
package app

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/mapping"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/pseudonym"
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
	var bindingKey []byte
	if o.Pseudonym.KeyFile != "" {
		key, err := pseudonym.LoadKey(cfg.Path(o.Pseudonym.KeyFile))
		if err != nil {
			rep.errorf(file, "organiser.pseudonym.key_file", "%v", err)
		} else if deriver, err = pseudonym.New(key, o.Scope); err != nil {
			rep.errorf(file, "organiser.scope", "%v", err)
		} else if bindingKey, err = deriveBindingKey(key); err != nil {
			rep.errorf(file, "organiser.pseudonym.key_file", "%v", err)
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
		BindingKey: bindingKey,
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

// deriveBindingKey derives the key that authenticates login binding
// cookies from the pseudonym key, with HKDF and a label of its own, so that
// the two uses never share a key. Derived rather than generated at start:
// every instance behind a load balancer computes the same key from the
// configured key material, and a login that starts on one instance
// finishes on another. Not kept in the store either: the store would then
// hold a secret, and a flushed store would break logins in flight.
func deriveBindingKey(pseudonymKey []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, pseudonymKey, nil, "skolbro login binding cookie v1", 32)
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
