// Package app builds the bridge from its configuration: it loads keys,
// upstream metadata, vendor metadata and release policies into one
// server.Organiser, and reports every problem at once, each with its file
// and key. serve, check and demo all go through it, so that what check
// accepts is what serve runs.
package app

import (
	"context"
	"crypto"
	"crypto/hkdf"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skolbro/skolbro/internal/assurance"
	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/fedmeta"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/mapping"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/protection"
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
	// Disabled are the organisers left out because of their errors; the
	// others serve (SECURITY.md case 45).
	Disabled []string
	// orgErrors counts the errors that belong to one organiser.
	orgErrors int
}

// Fatal returns the errors when the bridge cannot serve at all: a problem
// of the bridge as a whole, or no organiser left to serve.
func (r *Report) Fatal(built int) error {
	if len(r.Errors) == 0 || built > 0 && len(r.Errors) == r.orgErrors {
		return nil
	}
	return r.Err()
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
// for pending requests and the replay cache. It returns the organisers
// that built without errors; an organiser with an error is left out
// (disabled) and every other keeps serving (SECURITY.md case 45).
func Build(cfg *config.Config, st store.Store, now func() time.Time) ([]*server.Organiser, *Report) {
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
	// PinSectors writes the OIDC vendors' sector pins (package
	// sectorpin) to each organiser's audit directory: serve sets it;
	// check and the other commands only read them.
	PinSectors bool
}

// BuildWith is Build with options.
func BuildWith(cfg *config.Config, st store.Store, opts Options) ([]*server.Organiser, *Report) {
	orgs, _, rep := BuildHub(cfg, st, opts)
	return orgs, rep
}

// BuildHub is BuildWith that also builds the hub's own entity, when the
// configuration has one (hub:), for vendors shared by several organisers.
func BuildHub(cfg *config.Config, st store.Store, opts Options) ([]*server.Organiser, *server.Hub, *Report) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	rep := &Report{}
	perOrg := map[string][]string{}
	if err := cfg.Validate(); err != nil {
		for _, e := range splitJoined(err) {
			var p config.Problem
			if errors.As(e, &p) && p.Organiser != "" {
				perOrg[p.Organiser] = append(perOrg[p.Organiser], e.Error())
				continue
			}
			rep.Errors = append(rep.Errors, e.Error())
		}
		// Keep going where the files exist, to report everything at once.
	}
	pm, err := protection.NewMetrics(opts.Registerer)
	if err != nil {
		rep.errorf(cfg.File(), "", "metrics: %v", err)
	}
	var hubVendors map[string]*samlidp.Vendor
	if cfg.Hub != nil && cfg.Hub.MetadataDir != "" {
		hubVendors = loadVendorDir(rep, cfg, cfg.Path(cfg.Hub.MetadataDir), nil)
	}
	var orgs []*server.Organiser
	secrets := map[string]string{}
	for _, o := range cfg.Organisers {
		orep := &Report{Errors: perOrg[o.ID]}
		org := buildOrganiser(orep, cfg, o, st, opts, pm, hubVendors)
		if org != nil {
			checkOwnKeys(orep, cfg, o, org, secrets)
		}
		rep.Warnings = append(rep.Warnings, orep.Warnings...)
		rep.Notes = append(rep.Notes, orep.Notes...)
		if len(orep.Errors) > 0 {
			rep.Errors = append(rep.Errors, orep.Errors...)
			rep.orgErrors += len(orep.Errors)
			rep.Disabled = append(rep.Disabled, o.ID)
			continue
		}
		orgs = append(orgs, org)
	}
	if len(rep.Errors) > 0 && len(orgs) == 0 {
		return nil, nil, rep
	}
	var hub *server.Hub
	if cfg.Hub != nil {
		hub = buildHub(rep, cfg, orgs, hubVendors, opts.Now)
	}
	return orgs, hub, rep
}

// checkOwnKeys refuses an organiser whose pseudonym or audit key is
// byte for byte another organiser's: the key files differ (config checks
// that), but a copied key would still let one organiser link the other's
// pseudonyms and subject keys.
func checkOwnKeys(rep *Report, cfg *config.Config, o *config.Organiser, org *server.Organiser, seen map[string]string) {
	for _, k := range []struct{ key, fp string }{
		{o.Key("pseudonym.key_file"), org.Deriver.Fingerprint()},
		{o.Key("audit.key_file"), org.AuditKeys.Fingerprint()},
	} {
		if k.fp == "" {
			continue
		}
		if prev, dup := seen[k.fp]; dup {
			rep.errorf(cfg.File(), k.key, "holds the same key as %s: every organiser needs its own pseudonym and audit keys", prev)
			continue
		}
		seen[k.fp] = k.key
	}
}

// buildOrganiser builds one organiser, reporting its problems to rep. It
// returns nil when rep has errors.
func buildOrganiser(rep *Report, cfg *config.Config, o *config.Organiser, rawStore store.Store, opts Options, pm *protection.Metrics, hubVendors map[string]*samlidp.Vendor) *server.Organiser {
	now := opts.Now
	file := cfg.File()
	// Everything the flows keep in the store is in the organiser's own
	// namespace (SECURITY.md case 44); the root organiser keeps the keys
	// a single-organiser bridge always had, so that moving into a hub
	// loses no register or login in flight.
	ns := Namespace(o)
	st := store.Namespace(rawStore, ns)
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"organiser": o.ID}, opts.Registerer)
	keysCfg, keysAt := cfg.SigningKeys(o)

	signing := loadPair(rep, file, keysAt+".signing", cfg.Path(keysCfg.Signing.Cert), cfg.Path(keysCfg.Signing.Key))
	var ecdsaSigner *xmlsig.Signer
	if keysCfg.SigningECDSA != nil {
		if p := loadPair(rep, file, keysAt+".signing_ecdsa", cfg.Path(keysCfg.SigningECDSA.Cert), cfg.Path(keysCfg.SigningECDSA.Key)); p != nil {
			s, err := xmlsig.NewSigner(p)
			if err != nil || s.Method() != xmlsig.ECDSASHA256 {
				rep.errorf(file, keysAt+".signing_ecdsa", "must be a P-256 ECDSA key")
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
			rep.errorf(file, o.Key("pseudonym.key_file"), "%v", err)
		} else if deriver, err = pseudonym.New(key, o.Scope); err != nil {
			rep.errorf(file, o.Key("scope"), "%v", err)
		} else if bindingKey, err = deriveBindingKey(key); err != nil {
			rep.errorf(file, o.Key("pseudonym.key_file"), "%v", err)
		}
	}

	// The release log is required (Validate reports a missing
	// organiser.audit.dir or key_file): no release without an event.
	var auditKeys *audit.SubjectKeyer
	if o.Audit.KeyFile != "" {
		k, err := audit.LoadSubjectKeyer(cfg.Path(o.Audit.KeyFile))
		if err != nil && !errors.Is(err, os.ErrNotExist) { // a missing file is already reported by Validate
			rep.errorf(file, o.Key("audit.key_file"), "%v", err)
		}
		auditKeys = k
	}
	if cfg.ListsOrganisers() && o.LegalName == "" {
		// Reported by Validate as an error in a hub.
	} else if o.LegalName == "" && o.Metadata.Organization.Name == "" {
		rep.warnf(file, o.Key("legal_name"), "not set: the metadata names the organiser by its display name; a federation registers the organiser's legal name")
	}

	orgSources, register := buildProtection(rep, cfg, o, rawStore, ns, pm)
	if opts.Instrument != nil {
		st = opts.Instrument(st)
	}

	// Vendors: metadata and policies.
	vendors := loadVendors(rep, cfg, o)
	pols, probs := policy.LoadDir(cfg.Path(o.PolicyDir), policy.At(now()))
	policyErrors := policy.HasErrors(probs)
	for _, p := range probs {
		if p.Warning {
			p.Warning = false // the report says it is a warning
			rep.Warnings = append(rep.Warnings, p.String())
		} else {
			rep.Errors = append(rep.Errors, p.String())
		}
	}
	resolveSectors(rep, cfg, o, pols, opts.PinSectors, now())
	for _, p := range pols {
		if pr := p.SharedEPPNProblem(); pr != nil {
			pr.Warning = false // the report says it is a warning
			rep.Warnings = append(rep.Warnings, pr.String())
		}
	}
	fed := buildFederation(rep, cfg, o, reg)
	served := map[string]*samlidp.Vendor{}
	fromFederation := map[string]bool{}
	for _, p := range pols {
		if p.SAML == nil {
			continue
		}
		v, ok := vendors[p.SAML.EntityID]
		if hv, shared := hubVendors[p.SAML.EntityID]; !ok && shared {
			// Served through the hub's entity, under this policy.
			checkEncryption(rep, p, hv)
			continue
		}
		if !ok && fed != nil {
			if ed, methods, found := fed.Vendor(p.SAML.EntityID); found {
				fv, err := federationVendor(ed, methods, cfg.DevMode)
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
			rep.errorf(p.File, "saml.signature_algorithm", "ecdsa-sha256 needs %s.signing_ecdsa in %s", keysAt, file)
		}
		checkEncryption(rep, p, v)
		if !fromFederation[v.EntityID] {
			served[v.EntityID] = v
		}
	}
	for id, v := range vendors {
		if served[id] == nil {
			if policyErrors {
				// A policy with an error is not loaded: its vendor's
				// metadata then has no policy, and saying only that
				// would send the admin looking for a missing file.
				rep.warnf(v.File, "", "no release policy that loaded names entityID %q: this vendor is not served (if its policy file has an error above, fix that)", id)
				continue
			}
			rep.warnf(v.File, "", "no release policy names entityID %q: this vendor is not served", id)
		}
	}
	op := buildOP(rep, cfg, o, pols, st, now)
	// The SP signs its logout messages to the school IdP with the
	// organiser's signing key.
	var spSigner *xmlsig.Signer
	if signing != nil {
		spSigner, _ = xmlsig.NewSigner(signing) // an error is reported below
	}
	dec := loadDecryptionKeys(rep, cfg, o)
	ups := make([]*server.Upstream, 0, len(o.Upstreams))
	for _, u := range o.Upstreams {
		if up := buildUpstream(rep, cfg, o, u, st, opts, orgSources, pm, spSigner, dec, fed); up != nil {
			ups = append(ups, up)
		}
	}
	if len(rep.Errors) > 0 {
		return nil
	}

	signer, err := xmlsig.NewSigner(signing)
	if err != nil {
		rep.errorf(file, keysAt+".signing", "%v", err)
		return nil
	}
	alt := map[string]*xmlsig.Signer{signer.Method(): signer}
	if ecdsaSigner != nil {
		alt[ecdsaSigner.Method()] = ecdsaSigner
	}
	scopes := o.AllScopes()
	org := &server.Organiser{
		ID:          o.ID,
		DisplayName: o.DisplayName,
		Prefix:      o.Prefix(),
		Store:       st,
		Upstreams:   ups,
		IdP: &samlidp.IdP{
			EntityID:    cfg.OrganiserURL(o, "/saml/idp/metadata"),
			SSOURL:      cfg.OrganiserURL(o, "/saml/idp/sso"),
			SLOURL:      cfg.OrganiserURL(o, "/saml/idp/slo"),
			Scope:       o.Scope,
			ExtraScopes: scopes[1:],
			Signer:      signer,
			AltSigners:  alt,
			Vendors:     served,
			ClockSkew:   time.Duration(o.Upstreams[0].ClockSkew),
			Now:         now,
		},
		Policies:   policy.NewSet(pols),
		Federation: fed,
		Deriver:    deriver,
		AuditKeys:  auditKeys,
		Register:   register,
		OP:         op,
		Admin:      server.AdminOptions{Entitlement: o.Admin.Entitlement, PrivacyEntitlement: o.Admin.PrivacyEntitlement},
		BindingKey: bindingKey,
		Logout: server.LogoutOptions{
			SessionTTL: time.Duration(o.Logout.SessionTTL),
			VendorWait: time.Duration(o.Logout.VendorWait),
		},
	}
	org.Admin.AuditDir = cfg.Path(o.Audit.Dir)
	if fed != nil {
		org.IdP.Lookup = federationLookup(fed, org.Policies, cfg.DevMode)
	}
	noteRequested(rep, pols, served)
	noteLogout(rep, o, pols, served)
	for _, up := range ups {
		if (up.SP != nil && !up.SP.CanLogout()) || (up.RP != nil && !up.RP.CanLogout()) {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: upstream %s has no single logout endpoint: the school IdP's session outlives a logout through the bridge (reported partial)", o.ID, up.ID))
		}
	}
	org.Metadata = buildPublisher(rep, cfg, o, org, signer, keysCfg, keysAt, now)
	if org.Metadata == nil {
		return nil
	}
	org.AssuranceLevels = offeredLevels(ups)
	org.Metadata.AssuranceCertifications = org.AssuranceLevels
	if org.OP != nil {
		org.OP.ACRValues = org.AssuranceLevels
	}
	checkMinimums(rep, cfg, pols, ups)
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
	for _, u := range ups {
		if len(u.Protection.Sources) == 0 && !u.AssumeUnprotected {
			rep.warnf(file, o.Key("protection"), "no protection source is configured for upstream %s: every person it logs in is treated as protected and masked (fail closed)", u.ID)
		}
	}
	return org
}

// Namespace is the organiser's key prefix in the shared store: none
// for the organiser at the root URLs (the keys a single-organiser bridge
// always used), o/<id>/ for every other.
func Namespace(o *config.Organiser) string {
	if o.RootURLs {
		return ""
	}
	return "o/" + o.ID + "/"
}

// buildUpstream builds one of the organiser's school IdPs: its SAML SP or
// OIDC RP, its attribute mapping and its protection sources.
func buildUpstream(rep *Report, cfg *config.Config, o *config.Organiser, u *config.Upstream, st store.Store, opts Options, orgSources []protection.Source, pm *protection.Metrics, spSigner *xmlsig.Signer, dec []samlsp.DecryptionKey, fed *fedmeta.Refresher) *server.Upstream {
	file := cfg.File()
	prefix := o.UpstreamPrefix(u)
	up := &server.Upstream{
		ID:                u.ID,
		DisplayName:       u.DisplayName,
		Prefix:            prefix,
		AssumeUnprotected: u.AssumeUnprotected,
		Protection:        &protection.Resolver{Metrics: pm},
	}
	if u.SecurityMarking != "" {
		up.Protection.Sources = append(up.Protection.Sources, protection.UpstreamAttribute{})
	}
	up.Protection.Sources = append(up.Protection.Sources, orgSources...)
	var scopes []string
	var declared []declaredAttribute
	if u.Type == "oidc" {
		secret, err := os.ReadFile(cfg.Path(u.ClientSecretFile))
		if err != nil {
			if u.ClientSecretFile != "" && !errors.Is(err, os.ErrNotExist) {
				rep.errorf(file, u.Key("client_secret_file"), "%v", err)
			}
			return nil
		}
		if len(rep.Errors) > 0 {
			return nil // no point asking the IdP's discovery for a broken organiser
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		up.RP, err = oidcrp.New(ctx, oidcrp.Config{
			Issuer:       u.Issuer,
			ClientID:     u.ClientID,
			ClientSecret: strings.TrimSpace(string(secret)),
			RedirectURL:  cfg.URL(prefix + "/callback"),
			Scopes:       u.OIDCScopes,
			Store:        st,
			HTTPClient:   opts.HTTPClient,
			Now:          opts.Now,

			PostLogoutRedirectURL: cfg.URL(prefix + "/logout"),
		})
		if err != nil {
			rep.errorf(file, u.Key("issuer"), "%v", err)
			return nil
		}
		up.EntityID = u.Issuer
	} else {
		md := loadUpstream(rep, cfg, u, fed)
		if md.entityID == "" {
			return nil
		}
		sp, err := samlsp.New(samlsp.Config{
			EntityID:    cfg.URL(prefix + "/metadata"),
			ACSURL:      cfg.URL(prefix + "/acs"),
			IdPEntityID: md.entityID,
			IdPSSOURL:   md.ssoURL,
			IdPCerts:    md.certs,
			Store:       st,
			ClockSkew:   time.Duration(u.ClockSkew),
			Now:         opts.Now,
			Signer:      spSigner,
			SLOURL:      cfg.URL(prefix + "/slo"),
			IdPSLO:      md.slo,

			DecryptionKeys:    dec,
			RequireEncryption: u.RequireEncryption,
		})
		if err != nil {
			rep.errorf(file, u.Key(""), "%v", err)
			return nil
		}
		if up.SPMetadata, err = sp.Metadata(); err != nil {
			rep.errorf(file, u.Key(""), "%v", err)
			return nil
		}
		up.SP, up.EntityID, up.Certs, scopes = sp, md.entityID, md.certs, md.scopes
		followMetadata(u, fed, sp)
		declared = md.attributes
	}
	if len(u.Scopes) > 0 {
		scopes = u.Scopes
	}
	up.Scopes = scopes
	up.ClockSkew = time.Duration(u.ClockSkew)
	if a := u.Assurance; a != nil {
		// Problems are reported by config.Validate, with their keys.
		up.Assurance, _ = assurance.NewMap(a.Map, a.Request)
	}
	up.Mapping = &mapping.Config{
		Assurance:       up.Assurance,
		Upstream:        u.ID,
		Attributes:      u.Attributes,
		StableID:        u.StableID,
		PersonalNumber:  u.PersonalNumber,
		SecurityMarking: u.SecurityMarking,
		Scopes:          scopes,
	}
	if up.Mapping.ScopedStableID() && len(scopes) == 0 {
		rep.errorf(file, u.Key("scopes"), "stable_id %q is scoped, but no scope is accepted (set scopes, or shibmd:Scope in the IdP's metadata): every login would be refused", u.StableID)
		return nil
	}
	warnNoPersonalNumber(rep, cfg, o, u, up.Mapping, declared, opts.Now())
	return up
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

// loadDecryptionKeys loads the organiser's SP encryption key and, during
// a rollover, the next one: both are published and both decrypt.
func loadDecryptionKeys(rep *Report, cfg *config.Config, o *config.Organiser) []samlsp.DecryptionKey {
	var out []samlsp.DecryptionKey
	for _, k := range []struct {
		key string
		p   *config.KeyPair
	}{{"keys.encryption", o.Keys.Encryption}, {"keys.next_encryption", o.Keys.NextEncryption}} {
		if k.p == nil {
			continue
		}
		pair := loadPair(rep, cfg.File(), o.Key(k.key), cfg.Path(k.p.Cert), cfg.Path(k.p.Key))
		if pair == nil {
			continue
		}
		d, ok := pair.Signer.(crypto.Decrypter)
		if _, rsaKey := pair.Signer.Public().(*rsa.PublicKey); !ok || !rsaKey {
			rep.errorf(cfg.File(), o.Key(k.key), "must be an RSA key: SAML key transport is RSA-OAEP")
			continue
		}
		out = append(out, samlsp.DecryptionKey{Cert: pair.Cert, Key: d})
	}
	return out
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

// OpenAudit opens the organiser's release log. The directory is
// required; a configuration without one is refused by Validate.
func OpenAudit(cfg *config.Config, o *config.Organiser, now func() time.Time) (audit.Sink, error) {
	if o.Audit.Dir == "" {
		return nil, fmt.Errorf("%s: %s: required", cfg.File(), o.Key("audit.dir"))
	}
	return audit.OpenFileSink(auditFiles(cfg, o, now))
}

// OpenActionLog opens the organiser's admin action log, in its release
// log's directory with its settings.
func OpenActionLog(cfg *config.Config, o *config.Organiser, now func() time.Time) (*audit.ActionLog, error) {
	if o.Audit.Dir == "" {
		return nil, fmt.Errorf("%s: %s: required", cfg.File(), o.Key("audit.dir"))
	}
	return audit.OpenActionLog(auditFiles(cfg, o, now))
}

func auditFiles(cfg *config.Config, o *config.Organiser, now func() time.Time) audit.FileSinkConfig {
	a := o.Audit
	sync := audit.SyncEach
	if a.Sync == "batch" {
		sync = audit.SyncBatch
	}
	return audit.FileSinkConfig{
		Dir:         cfg.Path(a.Dir),
		MaxBytes:    a.MaxBytes,
		RotateDaily: a.RotateDaily,
		Retention:   time.Duration(a.Retention),
		Sync:        sync,
		Now:         now,
	}
}

// OpenAudits opens every organiser's release log and admin action log
// and attaches them to the organiser; closeAll closes them. Each
// organiser's logs are its own.
func OpenAudits(cfg *config.Config, orgs []*server.Organiser, now func() time.Time) (closeAll func(), err error) {
	var opened []interface{ Close() error }
	closeAll = func() {
		for _, s := range opened {
			_ = s.Close()
		}
	}
	for _, org := range orgs {
		o := cfg.OrganiserByID(org.ID)
		if o == nil {
			continue
		}
		sink, err := OpenAudit(cfg, o, now)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("%s: %s: %w", cfg.File(), o.Key("audit"), err)
		}
		opened = append(opened, sink)
		org.Audit = sink
		actions, err := OpenActionLog(cfg, o, now)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("%s: %s: admin action log: %w", cfg.File(), o.Key("audit"), err)
		}
		opened = append(opened, actions)
		org.Admin.Actions = actions
	}
	return closeAll, nil
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
		rs, err := store.NewRedisFromConfig(r.Addrs, r.Username, password, r.DB, r.MasterName, tc, r.Prefix)
		if err != nil {
			return nil, err
		}
		if n := r.ReplicaAcksOrDefault(); n > 0 {
			timeout := time.Duration(r.ReplicaAckTimeout)
			if timeout == 0 {
				timeout = 500 * time.Millisecond
			}
			rs.RequireReplicaAcks(n, timeout)
		}
		return rs, nil
	default:
		return store.NewMemory(nil), nil
	}
}

// offeredLevels are the levels the organiser's upstreams can prove, from
// their configuration (assurance.map and assurance.request), or nil.
func offeredLevels(ups []*server.Upstream) []string {
	var lists [][]string
	for _, u := range ups {
		lists = append(lists, u.Assurance.Offers())
	}
	return assurance.Union(lists...)
}

// checkMinimums warns about a vendor's minimum level that no upstream is
// configured to prove or be asked for: every login it covers would be
// refused unless an IdP says the level in the common words.
func checkMinimums(rep *Report, cfg *config.Config, pols []*policy.Policy, ups []*server.Upstream) {
	for _, p := range pols {
		if p.Assurance == nil || len(p.Assurance.Minimum) == 0 {
			continue
		}
		for _, u := range ups {
			if !assurance.Satisfies(u.Assurance.Offers(), p.Assurance.Minimum) {
				rep.warnf(p.File, "assurance.minimum", "upstream %s (%s) is not configured to prove %s: logins through it that the minimum covers will be refused unless the IdP says such a level itself",
					u.ID, cfg.File(), strings.Join(p.Assurance.Minimum, " or "))
			}
		}
	}
}
