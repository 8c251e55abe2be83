package app

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/metrics"
	"github.com/skolbro/skolbro/internal/protection"
	"github.com/skolbro/skolbro/internal/store"
)

// deployment lays out the repository's example deployment in a temp dir
// with fresh keys, lets change edit the configuration and the upstream's
// metadata, and loads the configuration.
func deployment(t *testing.T, change func(cfg, upstreamMeta string) (string, string)) *config.Config {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"metadata", "attribute-release"} {
		copyDir(t, filepath.Join("..", "..", d), filepath.Join(dir, d))
	}
	cfg := readFile(t, filepath.Join("..", "..", "skolbro.example.yaml"))
	metaPath := filepath.Join(dir, "metadata", "upstream", "school-idp.xml")
	meta := readFile(t, metaPath)
	if change != nil {
		cfg, meta = change(cfg, meta)
	}
	writeFile(t, filepath.Join(dir, "skolbro.yaml"), cfg)
	writeFile(t, metaPath, meta)
	p, err := keys.Generate("test", keys.RSA2048, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kp, err := p.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "keys", "signing.crt"), string(p.CertPEM()))
	writeFile(t, filepath.Join(dir, "keys", "signing.key"), string(kp))
	for _, name := range []string{"pseudonym.key", "register.key"} {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "keys", name), string(k))
	}
	c, err := config.Load(filepath.Join(dir, "skolbro.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

const (
	registerSection = "  protection:\n    register:\n      key_file: keys/register.key\n      file: register.json\n"
	// The upstream's real personal number attribute (an ADFS-style claim)
	// and a misspelt configuration of it.
	pnrClaim     = "http://schemas.exempel.se/claims/personnummer"
	pnrClaimTypo = "http://schemas.exempel.se/claims/personalnumber"
)

// withAttributes makes the upstream's metadata list the attributes it
// releases (md:Attribute in its IDPSSODescriptor).
func withAttributes(meta string, names ...string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(`    <saml:Attribute xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" Name="` + n + `"/>` + "\n")
	}
	return strings.Replace(meta, "  </md:IDPSSODescriptor>", b.String()+"  </md:IDPSSODescriptor>", 1)
}

// upstreamLines adds lines under organiser.upstream.
func upstreamLines(cfg, lines string) string {
	return strings.Replace(cfg, "    clock_skew: 2m\n", "    clock_skew: 2m\n"+lines, 1)
}

// TestCase36_CheckWarnsWhenNoPersonalNumberCanArrive: with the register
// configured, check warns (naming the file and key) when the upstream's
// metadata lists its attributes and none of them is read as a personal
// number, since every login would then be masked; it is quiet when one
// is, and only notes what it cannot tell when the metadata lists none.
func TestCase36_CheckWarnsWhenNoPersonalNumberCanArrive(t *testing.T) {
	eppn := "urn:oid:1.3.6.1.4.1.5923.1.1.1.6"
	tests := []struct {
		name     string
		register bool
		attrs    []string // declared in the upstream's metadata
		upstream string   // extra lines under organiser.upstream
		wantWarn bool
		wantNote bool
	}{
		{"misspelt personal_number", true, []string{eppn, pnrClaim}, "    personal_number: [" + pnrClaimTypo + "]\n", true, false},
		{"default names, upstream sends its own claim", true, []string{eppn, pnrClaim}, "", true, false},
		{"personal_number names the claim", true, []string{eppn, pnrClaim}, "    personal_number: [" + pnrClaim + "]\n", false, false},
		{"attributes maps the claim", true, []string{eppn, pnrClaim}, "    personal_number: [" + pnrClaimTypo + "]\n    attributes:\n      " + pnrClaim + ": personalIdentityNumber\n", false, false},
		{"standard attribute declared", true, []string{eppn, "urn:oid:1.2.752.29.4.13"}, "", false, false},
		{"metadata lists nothing", true, nil, "    personal_number: [" + pnrClaimTypo + "]\n", false, true},
		{"no source keyed by the number", false, []string{eppn, pnrClaim}, "    personal_number: [" + pnrClaimTypo + "]\n", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := deployment(t, func(cfg, meta string) (string, string) {
				cfg = upstreamLines(cfg, tc.upstream)
				if tc.register {
					cfg = strings.Replace(cfg, "  metadata_dir: metadata\n", registerSection+"  metadata_dir: metadata\n", 1)
				}
				return cfg, withAttributes(meta, tc.attrs...)
			})
			_, rep := Build(cfg, store.NewMemory(nil), time.Now)
			if err := rep.Err(); err != nil {
				t.Fatalf("Build: %v", err)
			}
			var warned []string
			for _, w := range rep.Warnings {
				if strings.Contains(w, "personal number") {
					warned = append(warned, w)
				}
			}
			if tc.wantWarn != (len(warned) == 1) || len(warned) > 1 {
				t.Fatalf("warnings about the personal number: %q, want one: %v", warned, tc.wantWarn)
			}
			if tc.wantWarn {
				w := warned[0]
				for _, want := range []string{cfg.File() + ": organiser.upstream.personal_number: ", "the protection register finds people by personal number", "lists (2)", "masked", "urn:oid:1.2.752.29.4.13"} {
					if !strings.Contains(w, want) {
						t.Errorf("warning lacks %q:\n%s", want, w)
					}
				}
			}
			var noted bool
			for _, n := range rep.Notes {
				if strings.Contains(n, "personal number") {
					noted = true
					if !strings.Contains(n, pnrClaimTypo) || !strings.Contains(n, `reason="no_personal_number"`) {
						t.Errorf("note does not say which names are read and where misses are counted: %s", n)
					}
				}
			}
			if noted != tc.wantNote {
				t.Errorf("note about the personal number: %v, want %v (%q)", noted, tc.wantNote, rep.Notes)
			}
		})
	}
}

// TestCase36_RegisterUsesRedisBehindInstrumentedStore: serve hands Build
// the store wrapped for metrics; the register must still live in Redis,
// where `skolbro protect` writes, not in a fallback file.
func TestCase36_RegisterUsesRedisBehindInstrumentedStore(t *testing.T) {
	mr := miniredis.RunT(t)
	cfg := deployment(t, func(cfg, meta string) (string, string) {
		cfg = strings.Replace(cfg, "  type: memory ", "  type: redis\n  redis:\n    addrs: [\""+mr.Addr()+"\"]\n  #", 1)
		cfg = strings.Replace(cfg, "  metadata_dir: metadata\n", "  protection:\n    register:\n      key_file: keys/register.key\n  metadata_dir: metadata\n", 1)
		return cfg, meta
	})
	raw, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	orgs, rep := Build(cfg, m.InstrumentStore(raw), time.Now)
	if err := rep.Err(); err != nil {
		t.Fatalf("Build: %v", err)
	}
	org := orgs[0]
	// What `skolbro protect init` and `add` do, on the raw store.
	rs := raw.(*store.Redis)
	admin, err := protection.NewRegister(protection.NewRedisRegister(rs.Client(), rs.Prefix()), []byte(readFile(t, cfg.Path("keys/register.key"))))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := protection.Command(ctx, "init", admin, strings.NewReader(""), &strings.Builder{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	pnr, err := identity.ParsePersonalNumber("201012242382", time.Now()) // fictional
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Add(ctx, pnr, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := org.Register.Ready(ctx); err != nil {
		t.Errorf("the built register is not ready: %v", err)
	}
	if got, err := org.Register.Status(ctx, &identity.Identity{PersonalNumber: pnr}); err != nil || got != identity.ProtectionManual {
		t.Errorf("the built register does not see the marking made in Redis: %v, %v", got, err)
	}
}
