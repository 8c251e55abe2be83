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
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/skolbro/skolbro/internal/assurance"
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
	MetricsListen string `yaml:"metrics_listen"`
	// Keys are the hub's default keys: an organiser without its own
	// signing key signs with these. There is no hub-wide pseudonym or
	// audit key: those are always the organiser's own.
	Keys *Keys `yaml:"keys"`
	// Organisers are the school organisers the bridge serves: one for an
	// organiser's own bridge, several for a regional hub. Each is its own
	// IdP and OP towards vendors, under /o/<id>/ (or at the root URLs).
	Organisers []*Organiser `yaml:"organisers"`
	// Organiser is the one-organiser shorthand for organisers, served at
	// the root URLs (as every configuration before the hub was written).
	Organiser *Organiser `yaml:"organiser"`
	// Hub is the hub's own IdP entity, for vendors shared by several
	// organisers through one registration: the person picks their
	// organiser, whose policy, pseudonyms and release log then apply.
	// Optional; it signs with keys: (the hub's default keys).
	Hub *Hub `yaml:"hub"`

	// file is the path the configuration was read from; relative paths in
	// it are resolved against its directory.
	file  string
	lines map[string]int
}

// Hub is the hub's own IdP entity, served under /hub/. Its vendors are the
// SP metadata files in MetadataDir; an organiser serves one of them when
// its own policy names the vendor's entityID.
type Hub struct {
	DisplayName string `yaml:"display_name"`
	// LegalName is the hub operator's legal name (OrganizationName).
	LegalName   string      `yaml:"legal_name"`
	MetadataDir string      `yaml:"metadata_dir"`
	Metadata    OwnMetadata `yaml:"metadata"`
}

// Organiser is one school organiser (huvudman): its upstream IdPs, keys,
// pseudonym settings, vendor metadata, release policies, release log and
// admins. Nothing of one organiser is shared with another.
type Organiser struct {
	// ID is a short identifier used in URLs, logs and metrics.
	ID          string `yaml:"id"`
	DisplayName string `yaml:"display_name"`
	// LegalName is the organiser's legal name, published as
	// md:OrganizationName: a federation registers each member as itself,
	// never as the hub operator. OrganisationNumber is its Swedish
	// organisation number, published where the federation asks for it.
	LegalName          string `yaml:"legal_name"`
	OrganisationNumber string `yaml:"organisation_number"`
	// Scope is the organiser's domain, used as the scope of EPPNs and
	// scoped attributes released to vendors. Scopes are further domains
	// that belong to the organiser; all are listed as shibmd:Scope in its
	// IdP metadata. With only scopes, the first is the scope.
	Scope  string   `yaml:"scope"`
	Scopes []string `yaml:"scopes"`
	// RootURLs serves this organiser at the bridge's root URLs
	// (/saml/idp/metadata, ...) instead of under /o/<id>/: for moving a
	// single-organiser bridge into a hub without changing its entityID,
	// issuer or endpoints. At most one organiser may have it; the
	// organiser: shorthand implies it.
	RootURLs bool `yaml:"root_urls"`
	// Upstreams are the organiser's school IdPs, e.g. pupils in Google
	// over OIDC and staff in ADFS over SAML. Upstream is the shorthand
	// for one.
	Upstreams []*Upstream `yaml:"upstreams"`
	Upstream  *Upstream   `yaml:"upstream"`
	// Keys are the organiser's own keys; the signing key may be left out
	// to sign with the hub's default (keys: at the top level).
	Keys       Keys       `yaml:"keys"`
	Pseudonym  Pseudonym  `yaml:"pseudonym"`
	Protection Protection `yaml:"protection"`
	// Federation lists signed metadata aggregates (Skolfederation, FIDUS,
	// SWAMID). An aggregate never enables a vendor by itself: a vendor is
	// served only when a release policy names its entityID.
	Federation []FederationSource `yaml:"federation"`
	// Metadata describes the organiser's own published metadata.
	Metadata OwnMetadata `yaml:"metadata"`
	Audit    Audit       `yaml:"audit"`
	Admin    Admin       `yaml:"admin"`
	// MetadataDir holds vendor SP metadata files (one entity per file).
	MetadataDir string `yaml:"metadata_dir"`
	// PolicyDir holds one release policy file per vendor.
	PolicyDir string `yaml:"policy_dir"`
	// Logout configures Single Logout.
	Logout Logout `yaml:"logout"`

	// key is where the organiser stands in the file ("organiser" or
	// "organisers[2]"), for problems that name the key.
	key string
}

// Key names a key of the organiser as it is written in the file, e.g.
// "organisers[1].pseudonym.key_file".
func (o *Organiser) Key(sub string) string { return o.key + "." + sub }

// Prefix is the path under which the organiser is served: "" at the root
// URLs, else /o/<id>.
func (o *Organiser) Prefix() string {
	if o.RootURLs {
		return ""
	}
	return "/o/" + o.ID
}

// AllScopes returns the organiser's scopes, the primary one first.
func (o *Organiser) AllScopes() []string {
	out := []string{}
	for _, s := range append([]string{o.Scope}, o.Scopes...) {
		if s != "" && !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// UpstreamPrefix is the path under the organiser's prefix where an
// upstream's SP or RP endpoints are served: /saml/sp or /oidc/rp when the
// organiser has one upstream (the URLs a single-organiser bridge always
// had), else /saml/sp/<id> or /oidc/rp/<id>.
func (o *Organiser) UpstreamPrefix(u *Upstream) string {
	base := "/saml/sp"
	if u.Type == "oidc" {
		base = "/oidc/rp"
	}
	if len(o.Upstreams) == 1 {
		return o.Prefix() + base
	}
	return o.Prefix() + base + "/" + u.ID
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Logout configures Single Logout. Both keys have defaults.
type Logout struct {
	// SessionTTL is how long the bridge remembers a browser's logins so
	// that it can log them out: the longest session a vendor or the
	// school IdP keeps (default 12h, at most 30 days).
	SessionTTL Duration `yaml:"session_ttl"`
	// VendorWait bounds the wait for one vendor's logout answer (default
	// 5s, at most 30s); a vendor that does not answer does not hold up the
	// others, and the logout is reported partial.
	VendorWait Duration `yaml:"vendor_wait"`
}

// Upstream is one of the organiser's school IdPs.
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
	// MetadataURL fetches the IdP's metadata instead of Metadata (a pinned
	// file), checked with MetadataSigningCert or over a TLS connection to
	// a key in MetadataTLSPins, refreshed on its cacheDuration and kept as
	// a last good copy in MetadataCacheDir (default <audit.dir>/upstream-
	// metadata). MetadataMaxAge (default 7 days) is how long a document
	// without validUntil is used after it was fetched.
	MetadataURL         string   `yaml:"metadata_url"`
	MetadataSigningCert string   `yaml:"metadata_signing_cert"`
	MetadataTLSPins     []string `yaml:"metadata_tls_pins"`
	MetadataCacheDir    string   `yaml:"metadata_cache_dir"`
	MetadataMaxAge      Duration `yaml:"metadata_max_age"`
	MetadataMinRefresh  Duration `yaml:"metadata_min_refresh"`
	MetadataMaxRefresh  Duration `yaml:"metadata_max_refresh"`
	// MetadataFromFederation takes the IdP's metadata from the organiser's
	// federation sources, by EntityID, refreshed with them.
	MetadataFromFederation bool `yaml:"metadata_from_federation"`
	// RequireEncryption refuses an assertion the IdP did not encrypt to
	// the organiser's keys.encryption (SAML only).
	RequireEncryption bool `yaml:"require_encryption"`
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
	// DisplayName is shown on the discovery page when the organiser has
	// several upstreams (default: the id).
	DisplayName string `yaml:"display_name"`
	// Assurance maps what the IdP says about a login's strength into the
	// organiser's levels, and what to ask it for. Without it only the
	// common words are understood (see package assurance).
	Assurance *Assurance `yaml:"assurance"`

	// key is where the upstream stands in the file.
	key string
}

// Key names a key of the upstream as it is written in the file.
func (u *Upstream) Key(sub string) string { return u.key + "." + sub }

// Path is where the upstream stands in the file, e.g. "organiser.upstream".
func (u *Upstream) Path() string { return u.key }

// Assurance is one upstream's assurance mapping.
type Assurance struct {
	// Map maps an upstream value (SAML AuthnContextClassRef, OIDC acr or
	// amr value, eduPersonAssurance value) to the organiser level it
	// proves, e.g. ADFS's or Entra's words to
	// http://id.skolfederation.se/loa/2fa. A value not listed (and not one
	// of the common words) proves only the lowest level.
	Map map[string]string `yaml:"map"`
	// Request maps an organiser level to the upstream value to ask for
	// when a vendor needs that level (SAML RequestedAuthnContext, OIDC
	// acr_values). A level not listed is not asked for; the answer is
	// checked all the same.
	Request map[string]string `yaml:"request"`
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
	// Encryption is the organiser's SP encryption key (RSA): published in
	// its SP metadata, so that a school IdP that encrypts assertions (ADFS
	// does when the SP has a key) encrypts to it. Organisers only.
	Encryption *KeyPair `yaml:"encryption"`
	// NextEncryption is the next encryption key of a rollover: published
	// beside Encryption, and both decrypt.
	NextEncryption *KeyPair `yaml:"next_encryption"`
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
	// ReplicaAcks, above 0, makes every write wait until that many
	// replicas have it (Redis WAIT), at most ReplicaAckTimeout (default
	// 500ms), and fail closed otherwise: so that no spent code or replayed
	// assertion id comes back after a failover to a replica that missed
	// the write. Unset, it is 1 with Sentinel (master_name) and 0
	// otherwise; see ReplicaAcksOrDefault.
	ReplicaAcks       *int     `yaml:"replica_acks"`
	ReplicaAckTimeout Duration `yaml:"replica_ack_timeout"`
}

// tlsPinPattern is a pin as fedmeta.Source.TLSPins takes it.
var tlsPinPattern = regexp.MustCompile(`^sha256/[A-Za-z0-9+/]{43}=$`)

// ReplicaAcksOrDefault is the number of replicas every write waits for:
// replica_acks, or 1 with Sentinel (whose failover promotes a replica,
// which must have every write) and 0 otherwise.
func (r Redis) ReplicaAcksOrDefault() int {
	switch {
	case r.ReplicaAcks != nil:
		return *r.ReplicaAcks
	case r.MasterName != "":
		return 1
	default:
		return 0
	}
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
	// RefusalEventsPerMinute caps, per client address, the release log
	// events of logins refused at the upstream (bad signature, replay,
	// expiry...): one pending login can be answered badly any number of
	// times, and each event is written and synced to disk.
	RefusalEventsPerMinute int `yaml:"refusal_events_per_minute"`
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
	File string
	// Organiser is the id of the organiser the problem belongs to, or ""
	// for the bridge as a whole: a problem of one organiser disables only
	// that organiser.
	Organiser string
	Key       string
	Line      int
	Message   string
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
	if err := c.normalise(); err != nil {
		return nil, err
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
	if l.RefusalEventsPerMinute == 0 {
		l.RefusalEventsPerMinute = 30
	}
	if c.Store.Type == "" {
		c.Store.Type = "memory"
	}
	if c.Store.Redis.Prefix == "" {
		c.Store.Redis.Prefix = "skolbro:"
	}
	if h := c.Hub; h != nil {
		if h.Metadata.ValidFor == 0 {
			h.Metadata.ValidFor = Duration(7 * 24 * time.Hour)
		}
		if h.Metadata.CacheDuration == 0 {
			h.Metadata.CacheDuration = Duration(6 * time.Hour)
		}
	}
	for _, o := range c.Organisers {
		for _, u := range o.Upstreams {
			if u.Type == "" {
				u.Type = "saml"
			}
			if u.ClockSkew == 0 {
				u.ClockSkew = Duration(2 * time.Minute)
			}
			if u.DisplayName == "" {
				u.DisplayName = u.ID
			}
		}
		if o.Scope == "" && len(o.Scopes) > 0 {
			o.Scope = o.Scopes[0]
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
}

// normalise turns the one-organiser and one-upstream shorthands into
// lists and records where each organiser and upstream stands in the file.
// It reports a file that uses both a shorthand and its list.
func (c *Config) normalise() error {
	if c.Organiser != nil {
		if len(c.Organisers) > 0 {
			return Problem{File: c.file, Key: "organiser", Line: c.lines["organiser"],
				Message: "use either organiser (one organiser) or organisers (a list), not both"}
		}
		c.Organiser.key = "organiser"
		c.Organiser.RootURLs = true
		c.Organisers = []*Organiser{c.Organiser}
	} else {
		for i, o := range c.Organisers {
			if o == nil {
				return Problem{File: c.file, Key: fmt.Sprintf("organisers[%d]", i), Message: "empty organiser"}
			}
			o.key = fmt.Sprintf("organisers[%d]", i)
		}
	}
	for _, o := range c.Organisers {
		if o.Upstream != nil {
			if len(o.Upstreams) > 0 {
				return Problem{File: c.file, Key: o.Key("upstream"), Line: c.lines[o.Key("upstream")],
					Message: "use either upstream (one IdP) or upstreams (a list), not both"}
			}
			o.Upstream.key = o.Key("upstream")
			o.Upstreams = []*Upstream{o.Upstream}
			continue
		}
		for j, u := range o.Upstreams {
			if u == nil {
				return Problem{File: c.file, Key: o.Key(fmt.Sprintf("upstreams[%d]", j)), Message: "empty upstream"}
			}
			u.key = o.Key(fmt.Sprintf("upstreams[%d]", j))
		}
	}
	return nil
}

// SigningKeys returns the keys the organiser signs with: its own, or the
// hub's default when it names no signing key, and the key path they are
// written under.
func (c *Config) SigningKeys(o *Organiser) (Keys, string) {
	if o.Keys.Signing.Cert == "" && o.Keys.Signing.Key == "" && c.Keys != nil {
		k := *c.Keys
		if len(o.Keys.OIDC) > 0 {
			k.OIDC = o.Keys.OIDC
		}
		return k, "keys"
	}
	k := o.Keys
	if len(k.OIDC) == 0 && c.Keys != nil {
		k.OIDC = c.Keys.OIDC
	}
	return k, o.Key("keys")
}

// ListsOrganisers reports whether the configuration lists its organisers
// (organisers:) rather than using the one-organiser shorthand.
func (c *Config) ListsOrganisers() bool { return c.Organiser == nil }

// OrganiserByID returns the organiser with id, or nil.
func (c *Config) OrganiserByID(id string) *Organiser {
	for _, o := range c.Organisers {
		if o.ID == id {
			return o
		}
	}
	return nil
}

// OrganiserURL returns the organiser's external URL joined with path.
func (c *Config) OrganiserURL(o *Organiser, path string) string {
	return c.URL(o.Prefix() + path)
}

// File returns the path the configuration was read from.
func (c *Config) File() string { return c.file }

// Line returns the line of the file key is written on (e.g.
// "organiser.keys.signing"), or 0 when the file does not write it.
func (c *Config) Line(key string) int { return c.lines[key] }

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
	if l := c.Limits; l.PerClientRPS < 0 || l.PerVendorRPS < 0 || l.Burst < 0 || l.MaxInFlight < 0 || l.MaxTrackedClients < 0 || l.RefusalEventsPerMinute < 0 {
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
		if n := c.Store.Redis.ReplicaAcks; n != nil && (*n < 0 || *n > 16) {
			bad("store.redis.replica_acks", "must be between 0 and 16")
		}
		if t := time.Duration(c.Store.Redis.ReplicaAckTimeout); t < 0 || t > 10*time.Second {
			bad("store.redis.replica_ack_timeout", "must be between 0 (the default, 500ms) and 10s")
		}
	default:
		bad("store.type", "must be memory or redis")
	}
	if len(c.Organisers) == 0 {
		bad("organisers", "required: the organiser (organiser:) or the organisers (organisers:) this bridge serves")
	}
	if k := c.Keys; k != nil {
		if k.Encryption != nil || k.NextEncryption != nil {
			bad("keys.encryption", "an SP encryption key belongs to one organiser: set it under the organiser's keys")
		}
		if k.Signing.Cert == "" || k.Signing.Key == "" {
			bad("keys.signing", "required when keys is set: the hub's default signing key pair")
		} else {
			for _, f := range []struct{ key, p string }{{"keys.signing.cert", k.Signing.Cert}, {"keys.signing.key", k.Signing.Key}} {
				if _, err := os.Stat(c.Path(f.p)); err != nil {
					bad(f.key, "cannot be read: %v", errors.Unwrap(err))
				}
			}
		}
	}
	if h := c.Hub; h != nil {
		if c.Keys == nil {
			bad("hub", "needs keys: (the hub's default signing key), which the hub entity signs with")
		}
		if h.LegalName == "" {
			bad("hub.legal_name", "required: the hub operator's legal name")
		}
		if st, err := os.Stat(c.Path(h.MetadataDir)); h.MetadataDir == "" || err != nil || !st.IsDir() {
			bad("hub.metadata_dir", "must name a directory of the shared vendors' SP metadata")
		}
	}
	ids, roots, scopes := map[string]bool{}, 0, map[string]string{}
	secretFiles := map[string]string{}
	for _, o := range c.Organisers {
		orgBad := func(key, msg string, args ...any) {
			errs = append(errs, Problem{File: c.file, Key: key, Line: c.lines[key], Organiser: o.ID, Message: fmt.Sprintf(msg, args...)})
		}
		c.validateOrganiser(o, orgBad)
		if ids[o.ID] {
			bad(o.Key("id"), "%q is also the id of another organiser", o.ID)
		}
		ids[o.ID] = true
		// A scope belongs to one member: two organisers claiming one
		// would let each assert the other's people.
		for _, sc := range o.AllScopes() {
			if prev, dup := scopes[sc]; dup {
				bad(o.Key("scope"), "scope %q is also %s's: a scope belongs to one organiser", sc, prev)
			}
			scopes[sc] = o.ID
		}
		if o.RootURLs {
			roots++
			if roots > 1 {
				bad(o.Key("root_urls"), "only one organiser can be served at the root URLs")
			}
		}
		if c.ListsOrganisers() {
			if o.LegalName == "" {
				orgBad(o.Key("legal_name"), "required in a hub: the organiser's legal name, published as OrganizationName (a federation registers each member as itself)")
			}
		}
		// Each organiser's pseudonyms and subject keys are its own: a
		// key file shared by two organisers would let one link the other's
		// people. (Build also compares the keys' contents.)
		for _, f := range []struct{ key, p string }{{"pseudonym.key_file", o.Pseudonym.KeyFile}, {"audit.key_file", o.Audit.KeyFile}} {
			if f.p == "" {
				continue
			}
			abs := filepath.Clean(c.Path(f.p))
			if prev, dup := secretFiles[abs]; dup {
				bad(o.Key(f.key), "the same file as %s: every organiser needs its own pseudonym and audit keys", prev)
			}
			secretFiles[abs] = o.Key(f.key)
		}
	}
	return errors.Join(errs...)
}

// validateOrganiser adds the problems of one organiser.
func (c *Config) validateOrganiser(o *Organiser, bad func(key, msg string, args ...any)) {
	fileKey := func(key, p string) {
		if p == "" {
			bad(key, "required")
			return
		}
		if _, err := os.Stat(c.Path(p)); err != nil {
			bad(key, "cannot be read: %v", errors.Unwrap(err))
		}
	}
	dirKey := func(key, p string) {
		if st, err := os.Stat(c.Path(p)); err != nil || !st.IsDir() {
			bad(key, "must name a directory")
		}
	}
	if !validID(o.ID) {
		bad(o.Key("id"), "required: lower-case letters, digits and dashes")
	}
	if o.DisplayName == "" {
		bad(o.Key("display_name"), "required")
	}
	if !validScope(o.Scope) {
		bad(o.Key("scope"), "required: the organiser's lower-case domain, e.g. exempel.se")
	}
	for i, sc := range o.Scopes {
		if !validScope(sc) {
			bad(o.Key(fmt.Sprintf("scopes[%d]", i)), "%q is not a lower-case domain", sc)
		}
	}
	if len(o.Upstreams) == 0 {
		bad(o.Key("upstream"), "required: the organiser's school IdP (upstream, or upstreams for several)")
	}
	if d := time.Duration(o.Logout.SessionTTL); d != 0 && (d < time.Minute || d > 30*24*time.Hour) {
		bad(o.Key("logout.session_ttl"), "must be between 1m and 720h")
	}
	if d := time.Duration(o.Logout.VendorWait); d != 0 && (d < time.Second || d > 30*time.Second) {
		bad(o.Key("logout.vendor_wait"), "must be between 1s and 30s")
	}
	upIDs := map[string]bool{}
	for _, u := range o.Upstreams {
		if !validID(u.ID) {
			bad(u.Key("id"), "required: lower-case letters, digits and dashes")
		}
		switch u.Type {
		case "saml":
		case "oidc":
			if iu, err := url.Parse(u.Issuer); err != nil || iu.Scheme != "https" && !(c.DevMode && iu.Scheme == "http") || iu.Host == "" {
				bad(u.Key("issuer"), "required for type oidc: the IdP's https issuer URL")
			}
			if u.ClientID == "" {
				bad(u.Key("client_id"), "required for type oidc")
			}
		default:
			bad(u.Key("type"), "must be saml or oidc")
		}
		if u.Type == "saml" {
			n := 0
			for _, set := range []bool{u.Metadata != "", u.MetadataURL != "", u.MetadataFromFederation} {
				if set {
					n++
				}
			}
			switch {
			case n > 1:
				bad(u.Key("metadata"), "set one of metadata (a file), metadata_url or metadata_from_federation")
			case u.MetadataURL != "":
				if mu, err := url.Parse(u.MetadataURL); err != nil || mu.Scheme != "https" || mu.Host == "" {
					bad(u.Key("metadata_url"), "must be an https URL")
				}
				if u.MetadataSigningCert == "" && len(u.MetadataTLSPins) == 0 {
					bad(u.Key("metadata_url"), "needs metadata_signing_cert (the key that signs the metadata) or metadata_tls_pins (the https server's key): a fetched document is trusted only so")
				}
				if u.MetadataSigningCert != "" {
					fileKey(u.Key("metadata_signing_cert"), u.MetadataSigningCert)
				}
				for i, p := range u.MetadataTLSPins {
					if !tlsPinPattern.MatchString(p) {
						bad(u.Key(fmt.Sprintf("metadata_tls_pins[%d]", i)), "must be sha256/ and the base64 SHA-256 of the server key's SubjectPublicKeyInfo (openssl x509 -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)")
					}
				}
				if d := time.Duration(u.MetadataMaxAge); d < 0 || d > 90*24*time.Hour {
					bad(u.Key("metadata_max_age"), "must be between 0 (7 days) and 90 days")
				}
			case u.MetadataFromFederation:
				if u.EntityID == "" {
					bad(u.Key("entity_id"), "required with metadata_from_federation: the IdP's entityID in the federation's metadata")
				}
				if len(o.Federation) == 0 {
					bad(u.Key("metadata_from_federation"), "needs the organiser's federation sources")
				}
			default:
				fileKey(u.Key("metadata"), u.Metadata)
			}
		} else {
			fileKey(u.Key("client_secret_file"), u.ClientSecretFile)
		}
		if u.StableID == "" {
			bad(u.Key("stable_id"), "required: the upstream attribute (or NameID) that identifies a person stably")
		}
		if time.Duration(u.ClockSkew) < 0 || time.Duration(u.ClockSkew) > 5*time.Minute {
			bad(u.Key("clock_skew"), "must be between 0 and 5m")
		}
		if upIDs[u.ID] {
			bad(u.Key("id"), "%q is also the id of another upstream of this organiser", u.ID)
		}
		if a := u.Assurance; a != nil {
			if _, err := assurance.NewMap(a.Map, a.Request); err != nil {
				for _, e := range splitErrors(err) {
					key, msg, _ := strings.Cut(e.Error(), ": ")
					bad(u.Key("assurance."+key), "%s", msg)
				}
			}
		}
		upIDs[u.ID] = true
	}
	for i, k := range o.Keys.OIDC {
		key := o.Key(fmt.Sprintf("keys.oidc[%d]", i))
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
		fileKey(o.Key("protection.register.key_file"), r.KeyFile)
		if c.Store.Type == "memory" && r.File == "" {
			bad(o.Key("protection.register.file"), "required with the memory store: where the register is kept")
		}
	}
	if ss := o.Protection.SS12000; ss != nil {
		if u, err := url.Parse(ss.BaseURL); err != nil || u.Host == "" || u.Scheme != "https" && !(c.DevMode && u.Scheme == "http") {
			bad(o.Key("protection.ss12000.base_url"), "required: the SS 12000 API's https base URL")
		}
		if ss.TokenFile == "" && ss.ClientCert == nil {
			bad(o.Key("protection.ss12000"), "needs token_file or client_cert")
		}
		if ss.TokenFile != "" {
			fileKey(o.Key("protection.ss12000.token_file"), ss.TokenFile)
		}
		if ss.ClientCert != nil {
			fileKey(o.Key("protection.ss12000.client_cert.cert"), ss.ClientCert.Cert)
			fileKey(o.Key("protection.ss12000.client_cert.key"), ss.ClientCert.Key)
		}
		if ss.CAFile != "" {
			fileKey(o.Key("protection.ss12000.ca_file"), ss.CAFile)
		}
	}
	if o.Audit.Dir == "" {
		bad(o.Key("audit.dir"), "required: the directory of the release log (every release and refusal is recorded there)")
	}
	fileKey(o.Key("audit.key_file"), o.Audit.KeyFile)
	switch o.Audit.Sync {
	case "each", "batch":
	default:
		bad(o.Key("audit.sync"), "must be each or batch")
	}
	if p := o.Admin.PrivacyEntitlement; p != "" && p == o.Admin.Entitlement {
		bad(o.Key("admin.privacy_entitlement"), "must differ from %s: only those who answer subject access requests should see who is protected", o.Key("admin.entitlement"))
	}
	if o.Keys.Signing.Cert != "" || o.Keys.Signing.Key != "" || c.Keys == nil {
		fileKey(o.Key("keys.signing.cert"), o.Keys.Signing.Cert)
		fileKey(o.Key("keys.signing.key"), o.Keys.Signing.Key)
	}
	if o.Keys.SigningECDSA != nil {
		fileKey(o.Key("keys.signing_ecdsa.cert"), o.Keys.SigningECDSA.Cert)
		fileKey(o.Key("keys.signing_ecdsa.key"), o.Keys.SigningECDSA.Key)
	}
	fileKey(o.Key("pseudonym.key_file"), o.Pseudonym.KeyFile)
	if o.Keys.NextSigningCert != "" {
		fileKey(o.Key("keys.next_signing_cert"), o.Keys.NextSigningCert)
	}
	for _, e := range []struct {
		key string
		p   *KeyPair
	}{{"keys.encryption", o.Keys.Encryption}, {"keys.next_encryption", o.Keys.NextEncryption}} {
		if e.p != nil {
			fileKey(o.Key(e.key+".cert"), e.p.Cert)
			fileKey(o.Key(e.key+".key"), e.p.Key)
		}
	}
	if o.Keys.NextEncryption != nil && o.Keys.Encryption == nil {
		bad(o.Key("keys.next_encryption"), "needs keys.encryption: the next key is published beside the current one")
	}
	for _, u := range o.Upstreams {
		if u.RequireEncryption && o.Keys.Encryption == nil {
			bad(u.Key("require_encryption"), "needs %s: an SP without an encryption key cannot ask the IdP to encrypt", o.Key("keys.encryption"))
		}
		if u.RequireEncryption && u.Type == "oidc" {
			bad(u.Key("require_encryption"), "applies to SAML upstreams only")
		}
	}
	if m := o.Metadata.Signing; m != nil {
		fileKey(o.Key("metadata.signing.cert"), m.Cert)
		fileKey(o.Key("metadata.signing.key"), m.Key)
	}
	for i, c := range o.Metadata.Contacts {
		switch c.Type {
		case "technical", "support", "administrative", "billing", "other":
		default:
			bad(o.Key(fmt.Sprintf("metadata.contacts[%d].type", i)), "must be technical, support, administrative, billing or other")
		}
		if !strings.Contains(c.Email, "@") {
			bad(o.Key(fmt.Sprintf("metadata.contacts[%d].email", i)), "required: an email address")
		}
	}
	for i, f := range o.Federation {
		key := o.Key(fmt.Sprintf("federation[%d]", i))
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
	dirKey(o.Key("metadata_dir"), o.MetadataDir)
	dirKey(o.Key("policy_dir"), o.PolicyDir)
}

// splitErrors returns the errors of an errors.Join, or err alone.
func splitErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
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
