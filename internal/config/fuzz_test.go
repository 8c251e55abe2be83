package config

import (
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// fuzzPath is where fuzzed configurations claim to come from: a directory
// that does not exist, so that Validate's checks of relative paths find
// nothing on this machine.
const fuzzPath = "/nonexistent-skolbro-fuzz/skolbro.yaml"

// FuzzConfigParse feeds fuzzed bytes to Parse. It must not panic; it
// returns a configuration or a Problem naming the file, never both or
// neither; an accepted configuration has every default applied and keeps
// what the file set; and Validate changes nothing.
func FuzzConfigParse(f *testing.F) {
	example, err := os.ReadFile("../../skolbro.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, s := range []string{
		"",
		"{}",
		"listen: \":9090\"\nlog_level: debug\n",
		"store:\n  type: redis\n  redis:\n    addrs: [a:6379]\n    prefix: p:\n",
		"organiser:\n  protection:\n    ss12000:\n      base_url: https://ss12000.example\n      timeout: 5s\n",
		"organiser:\n  upstream:\n    clock_skew: 0s\n",
		"organiser:\n  upstream:\n    clock_skew: -1h\n",
		"organiser:\n  upstream:\n    clock_skew: [1]\n",
		"organiser:\n  audit:\n    warn_days: -3\n",
		"organiser:\n  keys:\n    oidc:\n      - {key: k.pem, kid: a, use_from: 2026-13-01}\n",
		"unknown: 1\n",
		"listen: &a x\nexternal_url: *a\n",
		"---\nlisten: a\n---\nlisten: b\n",
		"- 1\n",
		"!!binary aGVsbG8=",
		"organisers:\n  - id: a\n    upstreams:\n      - {id: x, type: oidc}\n      - {id: y}\n  - id: b\n    upstream: {id: z}\n",
		"organisers:\n  - null\n",
		"organiser: {id: a}\norganisers: [{id: b}]\n",
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Parse(fuzzPath, in)
		if (c == nil) == (err == nil) {
			t.Fatalf("config %v and error %v: want exactly one", c != nil, err != nil)
		}
		if err != nil {
			var p Problem
			if !errors.As(err, &p) || p.File != fuzzPath {
				t.Fatalf("error is not a Problem naming the file: %T", err)
			}
			return
		}
		if c.File() != fuzzPath {
			t.Fatalf("File() = %q", c.File())
		}
		checkDefaults(t, c)
		checkKept(t, c, in)

		// The defaults are a fixed point: parsing again gives the same.
		again, err := Parse(fuzzPath, in)
		if err != nil {
			t.Fatalf("second parse failed: %v", err)
		}
		opt := cmp.AllowUnexported(Config{}, Organiser{}, Upstream{})
		if diff := cmp.Diff(c, again, opt); diff != "" {
			t.Fatalf("two parses differ (-first +second):\n%s", diff)
		}
		_ = c.Validate()
		if diff := cmp.Diff(again, c, opt); diff != "" {
			t.Fatalf("Validate changed the configuration (-before +after):\n%s", diff)
		}
	})
}

// checkKept checks that top-level strings the file sets are not replaced
// by defaults, reading the file independently as untyped YAML.
func checkKept(t *testing.T, c *Config, in []byte) {
	t.Helper()
	var m map[string]any
	if yaml.Unmarshal(in, &m) != nil {
		return
	}
	for key, got := range map[string]string{"listen": c.Listen, "log_level": c.LogLevel, "external_url": c.ExternalURL} {
		if want, ok := m[key].(string); ok && want != "" && got != want {
			t.Errorf("%s = %q, the file says %q", key, got, want)
		}
	}
}

// checkDefaults checks that no field with a default is left empty.
func checkDefaults(t *testing.T, c *Config) {
	t.Helper()
	for name, empty := range map[string]bool{
		"listen":             c.Listen == "",
		"log_level":          c.LogLevel == "",
		"store.type":         c.Store.Type == "",
		"store.redis.prefix": c.Store.Redis.Prefix == "",
	} {
		if empty {
			t.Errorf("%s: default not applied", name)
		}
	}
	for _, o := range c.Organisers {
		for _, u := range o.Upstreams {
			if u.Type == "" || u.ClockSkew == 0 {
				t.Errorf("%s: upstream defaults not applied", u.Key("type"))
			}
		}
		for name, empty := range map[string]bool{
			"audit.sync":        o.Audit.Sync == "",
			"audit.warn_days":   o.Audit.WarnDays == 0,
			"metadata_dir":      o.MetadataDir == "",
			"policy_dir":        o.PolicyDir == "",
			"ss12000.timeout":   o.Protection.SS12000 != nil && o.Protection.SS12000.Timeout == 0,
			"ss12000.cache_ttl": o.Protection.SS12000 != nil && o.Protection.SS12000.CacheTTL == 0,
		} {
			if empty {
				t.Errorf("%s: default not applied", o.Key(name))
			}
		}
	}
}
