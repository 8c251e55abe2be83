// Package config reads the bridge's YAML configuration. Decoding is strict:
// an unknown key is an error. Validate reports every problem at once, each
// with the file and the key (and line) that is wrong, and changes nothing.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file. Everything that belongs to one
// organiser lives in Organiser, so that a regional hub serving several
// organisers becomes a list of them, not a rewrite.
type Config struct {
	// Listen is the HTTP listen address, e.g. ":8080". TLS is terminated
	// by the reverse proxy or load balancer in front.
	Listen string `yaml:"listen"`
	// ExternalURL is the bridge's public base URL (https). Endpoint URLs
	// and entityIDs are derived from it.
	ExternalURL string `yaml:"external_url"`
	// DevMode allows http: URLs (for the demo and local tests only).
	DevMode bool `yaml:"dev_mode"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	Store    Store  `yaml:"store"`
	// Limits bound request rates and concurrency (SECURITY.md case 42).
	Limits Limits `yaml:"limits"`
	// MetricsListen is an internal address for /metrics (e.g.
	// 127.0.0.1:9090); empty serves no metrics. Never the public listener:
	// the counts are operational data about the organiser's vendors.
	MetricsListen string    `yaml:"metrics_listen"`
	Organiser     Organiser `yaml:"organiser"`

	// file is the path the configuration was read from; relative paths in
	// it are resolved against its directory.
	file  string
	lines map[string]int
}

// Organiser is one school organiser (huvudman): its upstream IdP, keys,
// pseudonym settings, vendor metadata and release policies.
type Organiser struct {
	// ID is a short identifier used in logs and metrics.
	ID          string `yaml:"id"`
	DisplayName string `yaml:"display_name"`
	// Scope is the organiser's domain, used as the scope of EPPNs and
	// scoped attributes released to vendors (listed as shibmd:Scope in the
	// bridge's IdP metadata).
	Scope      string     `yaml:"scope"`
	Upstream   Upstream   `yaml:"upstream"`
	Keys       Keys       `yaml:"keys"`
	Pseudonym  Pseudonym  `yaml:"pseudonym"`
	Protection Protection `yaml:"protection"`
	// Federation lists signed metadata aggregates (Skolfederation, FIDUS,
	// SWAMID). An aggregate never enables a vendor by itself: a vendor is
	// served only when a release policy names its entityID.
	Federation []FederationSource `yaml:"federation"`
	// Metadata describes the bridge's own published metadata.
	Metadata OwnMetadata `yaml:"metadata"`
	Audit    Audit       `yaml:"audit"`
	Admin    Admin       `yaml:"admin"`
	// MetadataDir holds vendor SP metadata files (one entity per file).
	MetadataDir string `yaml:"metadata_dir"`
	// PolicyDir holds one release policy file per vendor.
	PolicyDir string `yaml:"policy_dir"`
}

// Upstream is the organiser's school IdP.
type Upstream struct {
	ID string `yaml:"id"`
	// Type is "saml" or "oidc".
	Type string `yaml:"type"`
	// Issuer, ClientID, ClientSecretFile and Scopes configure an OIDC
	// upstream (type oidc).
	Issuer           string   `yaml:"issuer"`
	ClientID         string   `yaml:"client_id"`
	ClientSecretFile string   `yaml:"client_secret_file"`
	OIDCScopes       []string `yaml:"oidc_scopes"`
	// Metadata is the IdP's SAML metadata file.
	Metadata string `yaml:"metadata"`
	// EntityID selects the IdP when the metadata file holds several.
	EntityID string `yaml:"entity_id"`
	// Attributes maps extra upstream attribute names to the bridge's names.
	Attributes map[string]string `yaml:"attributes"`
	// StableID is the upstream attribute (or "NameID") that identifies a
	// person stably; pseudonyms are derived from it.
	StableID string `yaml:"stable_id"`
	// PersonalNumber lists upstream attributes carrying a personal number.
	PersonalNumber []string `yaml:"personal_number"`
	// SecurityMarking is the upstream attribute carrying SS 12000
	// securityMarking, if the IdP sends one.
	SecurityMarking string `yaml:"security_marking"`
	// AssumeUnprotected marks every person as not protected when no
	// protection source is configured. Off by default: without a source,
	// everyone is treated as protected (fail closed).
	AssumeUnprotected bool `yaml:"assume_unprotected"`
	// Scopes accepted in the IdP's scoped values; defaults to the
	// shibmd:Scope values of its metadata.
	Scopes []string `yaml:"scopes"`
	// ClockSkew is the tolerance on assertion time windows (default 2m).
	ClockSkew Duration `yaml:"clock_skew"`
}

// Keys names the bridge's key files.
type Keys struct {
	// Signing signs responses and assertions to vendors (RSA, 2048 bits
	// or more, or ECDSA).
	Signing KeyPair `yaml:"signing"`
	// SigningECDSA is an optional P-256 key for vendors whose policy asks
	// for ecdsa-sha256.
	SigningECDSA *KeyPair `yaml:"signing_ecdsa"`
	// NextSigningCert announces the next signing certificate in the
	// bridge's metadata before it is used (key rollover without outage).
	NextSigningCert string `yaml:"next_signing_cert"`
	// OIDC are the OpenID Provider's token signing keys, for rotation:
	// each is published from the start and used from UseFrom.
	OIDC []OIDCKey `yaml:"oidc"`
}

// OIDCKey is one ID token signing key (a PEM private key, P-256 for ES256
// or RSA for RS256).
type OIDCKey struct {
	Key      string `yaml:"key"`
	KID      string `yaml:"kid"`
	UseFrom  string `yaml:"use_from"`  // YYYY-MM-DD; empty: from now
	RetireAt string `yaml:"retire_at"` // YYYY-MM-DD; empty: never
}

// FederationSource is one signed metadata aggregate.
type FederationSource struct {
	Name string `yaml:"name"`
	// URL is https:// or a file path.
	URL string `yaml:"url"`
	// SigningCert is the operator's metadata signing certificate (PEM).
	SigningCert string `yaml:"signing_cert"`
	// CacheDir keeps the last good copy for restarts during an outage.
	CacheDir   string   `yaml:"cache_dir"`
	MinRefresh Duration `yaml:"min_refresh"`
	MaxRefresh Duration `yaml:"max_refresh"`
}

// OwnMetadata is what the bridge says about itself in its metadata.
type OwnMetadata struct {
	// ValidFor sets validUntil (default 7 days); CacheDuration the
	// refresh hint (default 6 h).
	ValidFor      Duration `yaml:"valid_for"`
	CacheDuration Duration `yaml:"cache_duration"`
	// Signing signs the metadata (default: the response signing key).
	Signing      *KeyPair     `yaml:"signing"`
	Organization Organization `yaml:"organization"`
	Contacts     []Contact    `yaml:"contacts"`
}

// Organization is md:Organization.
type Organization struct {
	Name        string `yaml:"name"`
	DisplayName string `yaml:"display_name"`
	URL         string `yaml:"url"`
}

// Contact is md:ContactPerson.
type Contact struct {
	Type  string `yaml:"type"` // technical, support, administrative, other
	Name  string `yaml:"name"`
	Email string `yaml:"email"`
}

// Protection configures where protection status comes from, besides the
// upstream attribute (upstream.security_marking).
type Protection struct {
	Register *Register `yaml:"register"`
	SS12000  *SS12000  `yaml:"ss12000"`
}

// Register is the organiser's manual protection register. Entries are
// keyed HMACs of personal numbers; with the redis store the register lives
// in Redis, otherwise in File.
type Register struct {
	KeyFile string `yaml:"key_file"`
	File    string `yaml:"file"`
}

// SS12000 is an SS 12000 API that answers a person's securityMarking.
type SS12000 struct {
	BaseURL    string   `yaml:"base_url"`
	TokenFile  string   `yaml:"token_file"`
	ClientCert *KeyPair `yaml:"client_cert"`
	CAFile     string   `yaml:"ca_file"`
	Timeout    Duration `yaml:"timeout"`
	CacheTTL   Duration `yaml:"cache_ttl"`
}

// Audit configures the release log.
type Audit struct {
	// Dir holds the append-only JSON-lines files of the release log and
	// of the admin action log. Required: no release without an event.
	Dir string `yaml:"dir"`
	// KeyFile is the audit HMAC key for subject keys, separate from the
	// pseudonym key.
	KeyFile     string   `yaml:"key_file"`
	MaxBytes    int64    `yaml:"max_bytes"`
	RotateDaily bool     `yaml:"rotate_daily"`
	Retention   Duration `yaml:"retention"`
	// Sync is "each" (fsync per event, default) or "batch".
	Sync string `yaml:"sync"`
	// WarnDays warns this many days before an agreement ends (default 30).
	WarnDays int `yaml:"warn_days"`
}

// Admin configures the admin web interface. Admins log in through the
// upstream IdP and must carry Entitlement (an eduPersonEntitlement value).
type Admin struct {
	Entitlement string `yaml:"entitlement"`
	// PrivacyEntitlement is a second eduPersonEntitlement value, for the
	// few who answer subject access requests and keep the manual
	// protection register: both reveal whether a person is protected.
	// Without it those pages are shown to no one.
	PrivacyEntitlement string `yaml:"privacy_entitlement"`
}

// KeyPair is a PEM certificate and private key file.
type KeyPair struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Pseudonym configures pseudonymous identifiers.
type Pseudonym struct {
	// KeyFile holds the HMAC key (at least 32 bytes, not world readable).
	KeyFile string `yaml:"key_file"`
}

// Store selects the shared state backend.
type Store struct {
	// Type is "memory" (default, one instance) or "redis".
	Type  string `yaml:"type"`
	Redis Redis  `yaml:"redis"`
}

// Redis configures the Redis store (single, Sentinel or Cluster).
type Redis struct {
	Addrs        []string `yaml:"addrs"`
	MasterName   string   `yaml:"master_name"`
	Username     string   `yaml:"username"`
	PasswordFile string   `yaml:"password_file"`
	DB           int      `yaml:"db"`
	TLS          bool     `yaml:"tls"`
	Prefix       string   `yaml:"prefix"`
}

// Limits bound request rates and concurrency. Schools often share one
// address (NAT) for hundreds of pupils who log in at the same minute, so
// the per-client defaults are generous; they stop floods, not classes.
type Limits struct {
	// PerClientRPS and Burst limit requests per client address (token
	// bucket: Burst at once, refilled at PerClientRPS per second).
	PerClientRPS float64 `yaml:"per_client_rps"`
	Burst        int     `yaml:"burst"`
	// PerVendorRPS limits logins started per vendor (with the same Burst).
	PerVendorRPS float64 `yaml:"per_vendor_rps"`
	// MaxInFlight caps concurrent requests; beyond it the bridge answers
	// 503 at once (load shedding).
	MaxInFlight int `yaml:"max_in_flight"`
	// TrustedProxies are CIDRs of reverse proxies whose ClientIPHeader
	// (default X-Forwarded-For) names the client. Empty: RemoteAddr only.
	TrustedProxies []string `yaml:"trusted_proxies"`
	ClientIPHeader string   `yaml:"client_ip_header"`
	// MaxTrackedClients caps the client addresses remembered (memory).
	MaxTrackedClients int `yaml:"max_tracked_clients"`
}

// Duration is a time.Duration written as "2m" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 90s or 2m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Problem is one thing wrong with the configuration.
type Problem struct {
	File    string
	Key     string
	Line    int
	Message string
}

func (p Problem) Error() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	if p.Key != "" {
		return fmt.Sprintf("%s: %s: %s", loc, p.Key, p.Message)
	}
	return fmt.Sprintf("%s: %s", loc, p.Message)
}

// Load reads and strictly decodes path and applies defaults. It does not
// validate; call Validate.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, Problem{File: path, Message: err.Error()}
	}
	return Parse(path, b)
}

// Parse decodes b as if read from path.
func Parse(path string, b []byte) (*Config, error) {
	c := &Config{file: path, lines: map[string]int{}}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, Problem{File: path, Message: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err == nil {
		collectLines(&root, "", c.lines)
	}
	c.applyDefaults()
	return c, nil
}

func collectLines(n *yaml.Node, prefix string, out map[string]int) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			collectLines(c, prefix, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if prefix != "" {
				k = prefix + "." + k
			}
			out[k] = n.Content[i].Line
			collectLines(n.Content[i+1], k, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			k := fmt.Sprintf("%s[%d]", prefix, i)
			out[k] = c.Line
			collectLines(c, k, out)
		}
	}
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	l := &c.Limits
	if l.PerClientRPS == 0 {
		l.PerClientRPS = 20
	}
	if l.Burst == 0 {
		l.Burst = 200
	}
	if l.PerVendorRPS == 0 {
		l.PerVendorRPS = 100
	}
	if l.MaxInFlight == 0 {
		l.MaxInFlight = 64
	}
	if l.MaxTrackedClients == 0 {
		l.MaxTrackedClients = 50000
	}
	if c.Store.Type == "" {
		c.Store.Type = "memory"
	}
	if c.Store.Redis.Prefix == "" {
		c.Store.Redis.Prefix = "skolbro:"
	}
	o := &c.Organiser
	if o.Upstream.Type == "" {
		o.Upstream.Type = "saml"
	}
	if o.Upstream.ClockSkew == 0 {
		o.Upstream.ClockSkew = Duration(2 * time.Minute)
	}
	if o.Audit.Sync == "" {
		o.Audit.Sync = "each"
	}
	if o.Audit.WarnDays == 0 {
		o.Audit.WarnDays = 30
	}
	if ss := o.Protection.SS12000; ss != nil {
		if ss.Timeout == 0 {
			ss.Timeout = Duration(2 * time.Second)
		}
		if ss.CacheTTL == 0 {
			ss.CacheTTL = Duration(time.Minute)
		}
	}
	if o.Metadata.ValidFor == 0 {
		o.Metadata.ValidFor = Duration(7 * 24 * time.Hour)
	}
	if o.Metadata.CacheDuration == 0 {
		o.Metadata.CacheDuration = Duration(6 * time.Hour)
	}
	if o.MetadataDir == "" {
		o.MetadataDir = "metadata"
	}
	if o.PolicyDir == "" {
		o.PolicyDir = "attribute-release"
	}
}

// File returns the path the configuration was read from.
func (c *Config) File() string { return c.file }

// Path resolves p relative to the configuration file's directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.file), p)
}

// URL returns the external URL joined with path.
func (c *Config) URL(path string) string {
	return strings.TrimRight(c.ExternalURL, "/") + path
}

// Validate reports every problem at once (joined), each naming the file and key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, msg string, args ...any) {
		errs = append(errs, Problem{File: c.file, Key: key, Line: c.lines[key], Message: fmt.Sprintf(msg, args...)})
	}
	u, err := url.Parse(c.ExternalURL)
	switch {
	case c.ExternalURL == "":
		bad("external_url", "required")
	case err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		bad("external_url", "must be an absolute URL without query or fragment")
	case u.Scheme == "http" && !c.DevMode:
		bad("external_url", "must be https (http only with dev_mode: true)")
	case u.Scheme != "https" && u.Scheme != "http":
		bad("external_url", "must be https")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "must be debug, info, warn or error")
	}
	if l := c.Limits; l.PerClientRPS < 0 || l.PerVendorRPS < 0 || l.Burst < 0 || l.MaxInFlight < 0 || l.MaxTrackedClients < 0 {
		bad("limits", "values must be positive")
	}
	for i, p := range c.Limits.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			bad(fmt.Sprintf("limits.trusted_proxies[%d]", i), "%q is not a CIDR like 10.0.0.0/8", p)
		}
	}
	switch c.Store.Type {
	case "memory":
	case "redis":
		if len(c.Store.Redis.Addrs) == 0 {
			bad("store.redis.addrs", "required when store.type is redis")
		}
		if c.Store.Redis.PasswordFile != "" {
			if _, err := os.Stat(c.Path(c.Store.Redis.PasswordFile)); err != nil {
				bad("store.redis.password_file", "cannot be read: %v", err)
			}
		}
	default:
		bad("store.type", "must be memory or redis")
	}
	o := c.Organiser
	if !validID(o.ID) {
		bad("organiser.id", "required: lower-case letters, digits and dashes")
	}
	if o.DisplayName == "" {
		bad("organiser.display_name", "required")
	}
	if !validScope(o.Scope) {
		bad("organiser.scope", "required: the organiser's lower-case domain, e.g. exempel.se")
	}
	if !validID(o.Upstream.ID) {
		bad("organiser.upstream.id", "required: lower-case letters, digits and dashes")
	}
	switch o.Upstream.Type {
	case "saml":
	case "oidc":
		if u, err := url.Parse(o.Upstream.Issuer); err != nil || u.Scheme != "https" && !(c.DevMode && u.Scheme == "http") || u.Host == "" {
			bad("organiser.upstream.issuer", "required for type oidc: the IdP's https issuer URL")
		}
		if o.Upstream.ClientID == "" {
			bad("organiser.upstream.client_id", "required for type oidc")
		}
	default:
		bad("organiser.upstream.type", "must be saml or oidc")
	}
	fileKey := func(key, p string) {
		if p == "" {
			bad(key, "required")
			return
		}
		if _, err := os.Stat(c.Path(p)); err != nil {
			bad(key, "cannot be read: %v", errors.Unwrap(err))
		}
	}
	if o.Upstream.Type == "saml" {
		fileKey("organiser.upstream.metadata", o.Upstream.Metadata)
	} else {
		fileKey("organiser.upstream.client_secret_file", o.Upstream.ClientSecretFile)
	}
	for i, k := range o.Keys.OIDC {
		key := fmt.Sprintf("organiser.keys.oidc[%d]", i)
		fileKey(key+".key", k.Key)
		if k.KID == "" {
			bad(key+".kid", "required: a key id published in the JWKS")
		}
		for _, d := range []struct{ name, v string }{{"use_from", k.UseFrom}, {"retire_at", k.RetireAt}} {
			if d.v != "" {
				if _, err := time.Parse(time.DateOnly, d.v); err != nil {
					bad(key+"."+d.name, "%q is not a date YYYY-MM-DD", d.v)
				}
			}
		}
	}
	if r := o.Protection.Register; r != nil {
		fileKey("organiser.protection.register.key_file", r.KeyFile)
		if c.Store.Type == "memory" && r.File == "" {
			bad("organiser.protection.register.file", "required with the memory store: where the register is kept")
		}
	}
	if ss := o.Protection.SS12000; ss != nil {
		if u, err := url.Parse(ss.BaseURL); err != nil || u.Host == "" || u.Scheme != "https" && !(c.DevMode && u.Scheme == "http") {
			bad("organiser.protection.ss12000.base_url", "required: the SS 12000 API's https base URL")
		}
		if ss.TokenFile == "" && ss.ClientCert == nil {
			bad("organiser.protection.ss12000", "needs token_file or client_cert")
		}
		if ss.TokenFile != "" {
			fileKey("organiser.protection.ss12000.token_file", ss.TokenFile)
		}
		if ss.ClientCert != nil {
			fileKey("organiser.protection.ss12000.client_cert.cert", ss.ClientCert.Cert)
			fileKey("organiser.protection.ss12000.client_cert.key", ss.ClientCert.Key)
		}
		if ss.CAFile != "" {
			fileKey("organiser.protection.ss12000.ca_file", ss.CAFile)
		}
	}
	if o.Audit.Dir == "" {
		bad("organiser.audit.dir", "required: the directory of the release log (every release and refusal is recorded there)")
	}
	fileKey("organiser.audit.key_file", o.Audit.KeyFile)
	switch o.Audit.Sync {
	case "each", "batch":
	default:
		bad("organiser.audit.sync", "must be each or batch")
	}
	if p := o.Admin.PrivacyEntitlement; p != "" && p == o.Admin.Entitlement {
		bad("organiser.admin.privacy_entitlement", "must differ from organiser.admin.entitlement: only those who answer subject access requests should see who is protected")
	}
	if o.Upstream.StableID == "" {
		bad("organiser.upstream.stable_id", "required: the upstream attribute (or NameID) that identifies a person stably")
	}
	if time.Duration(o.Upstream.ClockSkew) < 0 || time.Duration(o.Upstream.ClockSkew) > 5*time.Minute {
		bad("organiser.upstream.clock_skew", "must be between 0 and 5m")
	}
	fileKey("organiser.keys.signing.cert", o.Keys.Signing.Cert)
	fileKey("organiser.keys.signing.key", o.Keys.Signing.Key)
	if o.Keys.SigningECDSA != nil {
		fileKey("organiser.keys.signing_ecdsa.cert", o.Keys.SigningECDSA.Cert)
		fileKey("organiser.keys.signing_ecdsa.key", o.Keys.SigningECDSA.Key)
	}
	fileKey("organiser.pseudonym.key_file", o.Pseudonym.KeyFile)
	if o.Keys.NextSigningCert != "" {
		fileKey("organiser.keys.next_signing_cert", o.Keys.NextSigningCert)
	}
	if m := o.Metadata.Signing; m != nil {
		fileKey("organiser.metadata.signing.cert", m.Cert)
		fileKey("organiser.metadata.signing.key", m.Key)
	}
	for i, c := range o.Metadata.Contacts {
		switch c.Type {
		case "technical", "support", "administrative", "billing", "other":
		default:
			bad(fmt.Sprintf("organiser.metadata.contacts[%d].type", i), "must be technical, support, administrative, billing or other")
		}
		if !strings.Contains(c.Email, "@") {
			bad(fmt.Sprintf("organiser.metadata.contacts[%d].email", i), "required: an email address")
		}
	}
	for i, f := range o.Federation {
		key := fmt.Sprintf("organiser.federation[%d]", i)
		if !validID(f.Name) {
			bad(key+".name", "required: lower-case letters, digits and dashes")
		}
		if f.URL == "" {
			bad(key+".url", "required: the aggregate's https URL or a file")
		}
		fileKey(key+".signing_cert", f.SigningCert)
		if f.CacheDir == "" {
			bad(key+".cache_dir", "required: where the last good copy is kept")
		}
	}
	dirKey := func(key, p string) {
		if st, err := os.Stat(c.Path(p)); err != nil || !st.IsDir() {
			bad(key, "must name a directory")
		}
	}
	dirKey("organiser.metadata_dir", o.MetadataDir)
	dirKey("organiser.policy_dir", o.PolicyDir)
	return errors.Join(errs...)
}

func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func validScope(s string) bool {
	if s == "" || s != strings.ToLower(s) || !strings.Contains(s, ".") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
