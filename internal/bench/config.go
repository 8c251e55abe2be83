package bench

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/hubgen"
	"github.com/skolbro/skolbro/internal/keys"
)

// The bench's world is the demo's: the same configuration, test school
// IdP and vendors (internal/demo), written to a directory so that
// `skolbro serve` can run the bridge from it in another process while the
// bench plays the IdP, the vendors and the browsers.
const (
	configFile  = "skolbro.yaml"
	benchSubdir = "bench" // TEST ONLY keys of the IdP and vendors
	samlVendor  = "learning-app"
	oidcVendor  = "oidc-app"
	// redisPrefix keeps the bench's keys apart from a real bridge's.
	redisPrefix = "skolbro-bench:"
	// benchRate and benchBurst are the per-client and per-vendor limits a
	// bench configuration has: far beyond what one machine can offer.
	benchRate  = 1e6
	benchBurst = 1000000
)

// ConfigOptions choose what WriteConfig writes beyond the demo's files.
type ConfigOptions struct {
	// World is WorldRealistic (the default) or WorldLight.
	World string
	// Store is "memory" or "redis"; RedisAddr is used with redis.
	Store     string
	RedisAddr string
	// SignatureAlgorithm for the SAML vendor: "rsa" (RSA-SHA256 with the
	// organiser's RSA-2048 key) or "ecdsa" (ECDSA-SHA256 with a P-256 key).
	SignatureAlgorithm string
	// Sign is the SAML vendor's policy saml.sign: "" leaves the
	// policy's default (auto), else auto, assertion_and_response,
	// assertion or response.
	Sign string
	// Organisers, above 1, adds generated organisers (hubgen) with 30
	// vendors each, to compare a login's cost in a hub with one alone.
	Organisers int
	// MetricsListen, when set, is the bridge's internal /metrics address
	// (metrics_listen), for the bench to read its handlers' latency and
	// goroutines.
	MetricsListen string
	// KeepLimits keeps the default request limits. Otherwise the
	// per-client and per-vendor rates are raised out of the way, because
	// every simulated browser comes from one address to one vendor; the
	// cap on requests in flight (load shedding) is kept either way.
	KeepLimits bool
}

func (o ConfigOptions) check() error {
	var errs []error
	switch o.World {
	case "", WorldRealistic, WorldLight:
	default:
		errs = append(errs, errors.New("--world must be realistic or light"))
	}
	switch o.Store {
	case "", "memory", "redis":
	default:
		errs = append(errs, errors.New("--store must be memory or redis"))
	}
	switch o.SignatureAlgorithm {
	case "", "rsa", "ecdsa":
	default:
		errs = append(errs, errors.New("--sign-alg must be rsa or ecdsa"))
	}
	switch o.Sign {
	case "", "auto", "assertion_and_response", "assertion", "response":
	default:
		errs = append(errs, errors.New("--sign must be auto, assertion_and_response, assertion or response"))
	}
	return errors.Join(errs...)
}

// WriteConfig prepares dir for `skolbro serve --config dir/skolbro.yaml`
// with the bridge at base (e.g. http://127.0.0.1:8080), and keeps the
// TEST ONLY keys of the bench's IdP and vendors in dir/bench, where a
// later `skolbro bench --target base --config-dir dir` finds them. Every
// key is generated here and is for testing only.
func WriteConfig(dir, base string, o ConfigOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return errors.New("bench: --base must be an http(s) URL without a path, e.g. http://127.0.0.1:8080")
	}
	base = u.Scheme + "://" + u.Host
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	now := time.Now()
	// One organiser: the bench measures what one login costs.
	d, err := demo.SetupWith(base, dir, now, demo.Options{OneOrganiser: true})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	kd := filepath.Join(dir, benchSubdir)
	if err := os.MkdirAll(kd, 0o700); err != nil {
		return err
	}
	if err := writePair(kd, "idp", d.IdP.Signer.Pair()); err != nil {
		return err
	}
	world := o.World
	if world == "" {
		world = WorldRealistic
	}
	if err := os.WriteFile(filepath.Join(kd, worldFile), []byte(world+"\n"), 0o600); err != nil {
		return err
	}
	for _, v := range d.Vendors {
		if err := writePair(kd, "vendor-"+v.Name, &keys.Pair{Signer: v.SP.Key, Cert: v.SP.Certificate}); err != nil {
			return err
		}
	}

	cfgPath := filepath.Join(dir, configFile)
	listen := u.Host
	if u.Port() == "" {
		listen = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	edits := []yamlEdit{{[]string{"listen"}, listen}}
	if o.MetricsListen != "" {
		edits = append(edits, yamlEdit{[]string{"metrics_listen"}, o.MetricsListen})
	}
	if world == WorldRealistic {
		for _, v := range d.Vendors {
			if v.Name != samlVendor {
				continue
			}
			if err := writeRealistic(dir, v, &edits); err != nil {
				return err
			}
		}
	}
	if !o.KeepLimits {
		edits = append(edits, yamlEdit{[]string{"limits"}, map[string]any{
			"per_client_rps": benchRate, "burst": benchBurst, "per_vendor_rps": benchRate}})
	}
	if o.Store == "redis" {
		addr := o.RedisAddr
		if addr == "" {
			addr = DefaultRedisAddr
		}
		edits = append(edits,
			yamlEdit{[]string{"store", "type"}, "redis"},
			yamlEdit{[]string{"store", "redis"}, map[string]any{"addrs": []string{addr}, "prefix": redisPrefix}})
	}
	if o.SignatureAlgorithm == "ecdsa" {
		p, err := keys.Generate("skolbro bench bridge ECDSA (TEST ONLY)", keys.P256, now)
		if err != nil {
			return err
		}
		if err := writePair(filepath.Join(dir, "keys"), "signing-ecdsa", p); err != nil {
			return err
		}
		edits = append(edits, yamlEdit{[]string{"organiser", "keys", "signing_ecdsa"},
			map[string]string{"cert": "keys/signing-ecdsa.crt", "key": "keys/signing-ecdsa.key"}})
	}
	if err := editYAML(cfgPath, edits); err != nil {
		return err
	}
	if o.Organisers > 1 {
		orgs, err := hubgen.Generate(dir, hubgen.Options{Organisers: o.Organisers - 1, VendorsPer: 30, Base: base})
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if err := hubgen.AddTo(cfgPath, orgs); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	var pol []yamlEdit
	if o.SignatureAlgorithm == "ecdsa" {
		pol = append(pol, yamlEdit{[]string{"saml", "signature_algorithm"}, "ecdsa-sha256"})
	}
	if o.Sign != "" {
		pol = append(pol, yamlEdit{[]string{"saml", "sign"}, o.Sign})
	}
	if len(pol) > 0 {
		return editYAML(filepath.Join(dir, "attribute-release", samlVendor+".yaml"), pol)
	}
	return nil
}

func writePair(dir, name string, p *keys.Pair) error {
	kp, err := p.KeyPEM()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), p.CertPEM(), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".key"), kp, 0o600)
}

// yamlEdit sets the value at path, creating mappings on the way.
type yamlEdit struct {
	path  []string
	value any
}

// editYAML applies edits to a YAML file through its node tree, so that
// the rest of the file (comments included) stays as it was.
func editYAML(file string, edits []yamlEdit) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("bench: %s: %w", file, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("bench: %s: not a YAML mapping", file)
	}
	for _, e := range edits {
		n := doc.Content[0]
		for i, key := range e.path {
			var next *yaml.Node
			for j := 0; j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == key {
					next = n.Content[j+1]
				}
			}
			if next == nil {
				next = &yaml.Node{Kind: yaml.MappingNode}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, next)
			}
			if i == len(e.path)-1 {
				var v yaml.Node
				if err := v.Encode(e.value); err != nil {
					return err
				}
				*next = v
			} else if next.Kind != yaml.MappingNode {
				return fmt.Errorf("bench: %s: %s is not a mapping", file, key)
			}
			n = next
		}
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return os.WriteFile(file, out.Bytes(), 0o600)
}
