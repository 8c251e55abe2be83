package main

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/app"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/store"
)

// keylessDir lays out the example deployment without any key, naming
// every kind of key the bridge makes: signing, ECDSA signing, OIDC,
// pseudonym, audit and the protection register.
func keylessDir(t *testing.T) (dir, cfgPath string) {
	t.Helper()
	dir = t.TempDir()
	copyTree(t, "../../metadata", filepath.Join(dir, "metadata"))
	copyTree(t, "../../attribute-release", filepath.Join(dir, "attribute-release"))
	b, err := os.ReadFile("../../skolbro.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "      key: keys/signing.key\n", `      key: keys/signing.key
    signing_ecdsa:
      cert: keys/signing-ec.crt
      key: keys/signing-ec.key
    oidc:
      - key: keys/oidc.key
        kid: k1
`, 1)
	// (The example already names the release log and its key.)
	s = strings.Replace(s, "  metadata_dir: metadata\n", `  protection:
    register:
      key_file: keys/register.key
      file: register.json
  metadata_dir: metadata
`, 1)
	cfgPath = filepath.Join(dir, "skolbro.yaml")
	write(t, cfgPath, s)
	return dir, cfgPath
}

func fileHashes(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	filepath.WalkDir(filepath.Join(dir, "keys"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			out[p] = sha256.Sum256(b)
		}
		return nil
	})
	return out
}

// keys init makes every key the configuration names, each of the right
// type and mode, so that check passes without openssl or head -c; run
// again it changes nothing (issue 17, item 3).
func TestKeys_InitMakesEveryMissingKeyNeverOverwrites(t *testing.T) {
	dir, cfg := keylessDir(t)
	if code, out := runCmd("check", "--config", cfg); code == 0 {
		t.Fatalf("check passed without keys:\n%s", out)
	}
	code, out := runCmd("keys", "init", "--config", cfg)
	if code != 0 {
		t.Fatalf("keys init: exit %d\n%s", code, out)
	}
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{
		{"signing.key", 0o600}, {"signing.crt", 0o644}, {"signing-ec.key", 0o600}, {"signing-ec.crt", 0o644},
		{"oidc.key", 0o600}, {"pseudonym.key", 0o600}, {"audit.key", 0o600}, {"register.key", 0o600},
	} {
		fi, err := os.Stat(filepath.Join(dir, "keys", f.name))
		if err != nil {
			t.Errorf("%s not made: %v", f.name, err)
			continue
		}
		if fi.Mode().Perm() != f.mode {
			t.Errorf("%s has mode %04o, want %04o", f.name, fi.Mode().Perm(), f.mode)
		}
	}
	if p, err := keys.Load(filepath.Join(dir, "keys", "signing.crt"), filepath.Join(dir, "keys", "signing.key")); err != nil || describeKey(p.Signer) != "RSA 3072" {
		t.Errorf("signing key: %v, %v; want RSA 3072", err, p)
	}
	if p, err := keys.Load(filepath.Join(dir, "keys", "signing-ec.crt"), filepath.Join(dir, "keys", "signing-ec.key")); err != nil || describeKey(p.Signer) != "ECDSA P-256" {
		t.Errorf("ECDSA signing key: %v; want P-256", err)
	}
	if code, out := runCmd("check", "--config", cfg); code != 0 {
		t.Fatalf("check after keys init: exit %d\n%s", code, out)
	}

	before := fileHashes(t, dir)
	code, out = runCmd("keys", "init", "--config", cfg)
	if code != 0 || strings.Contains(out, "created") {
		t.Errorf("second keys init: exit %d, made something:\n%s", code, out)
	}
	after := fileHashes(t, dir)
	if len(after) != len(before) {
		t.Errorf("%d key files, were %d", len(after), len(before))
	}
	for p, h := range before {
		if after[p] != h {
			t.Errorf("%s was rewritten", p)
		}
	}

	// A certificate whose key is gone: refused, nothing replaced.
	os.Remove(filepath.Join(dir, "keys", "signing.key"))
	certBefore, _ := os.ReadFile(filepath.Join(dir, "keys", "signing.crt"))
	var stdout, stderr bytes.Buffer
	if code := run([]string{"keys", "init", "--config", cfg}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "organiser.keys.signing") {
		t.Errorf("a certificate without its key: exit %d, stderr %q; want 1 naming the key", code, stderr.String())
	}
	if certAfter, _ := os.ReadFile(filepath.Join(dir, "keys", "signing.crt")); !bytes.Equal(certBefore, certAfter) {
		t.Error("the certificate was overwritten")
	}
	// A key made elsewhere without its certificate gets one.
	os.Remove(filepath.Join(dir, "keys", "signing-ec.crt"))
	os.Remove(filepath.Join(dir, "keys", "signing.crt"))
	keyBefore, _ := os.ReadFile(filepath.Join(dir, "keys", "signing-ec.key"))
	if code, out := runCmd("keys", "init", "--config", cfg); code != 0 {
		t.Fatalf("keys init: exit %d\n%s", code, out)
	}
	if keyAfter, _ := os.ReadFile(filepath.Join(dir, "keys", "signing-ec.key")); !bytes.Equal(keyBefore, keyAfter) {
		t.Error("the existing key was replaced")
	}
	if _, err := keys.Load(filepath.Join(dir, "keys", "signing-ec.crt"), filepath.Join(dir, "keys", "signing-ec.key")); err != nil {
		t.Errorf("the certificate made for the existing key does not match it: %v", err)
	}
}

// keys show prints type, fingerprint and expiry, and never a secret.
func TestKeys_ShowFingerprintsAndExpiry(t *testing.T) {
	dir, cfg := keylessDir(t)
	if code, out := runCmd("keys", "init", "--config", cfg); code != 0 {
		t.Fatalf("keys init: %s", out)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"keys", "show", "--config", cfg}, &stdout, &stderr); code != 0 {
		t.Fatalf("keys show: exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	p, err := keys.Load(filepath.Join(dir, "keys", "signing.crt"), filepath.Join(dir, "keys", "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"organiser.keys.signing\n", fingerprint(p.Cert.Raw), "expires " + p.Cert.NotAfter.UTC().Format(time.DateOnly),
		"organiser.keys.oidc[0]", "ECDSA P-256 public key SHA256:", "organiser.pseudonym.key_file", "secret key, 32 bytes, mode 0600"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys show lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"pseudonym.key", "audit.key", "register.key"} {
		b, _ := os.ReadFile(filepath.Join(dir, "keys", secret))
		if strings.Contains(out, strings.TrimSpace(string(b))) {
			t.Errorf("keys show printed the content of %s", secret)
		}
	}
}

// keys rotate signing starts the README's rollover: a new pair beside the
// old one, next_signing_cert set, the metadata announcing both; the
// configuration's comments stay; a second rotation is refused until the
// first is finished.
func TestKeys_RotateSigningStartsRollover(t *testing.T) {
	dir, cfg := keylessDir(t)
	if code, out := runCmd("keys", "init", "--config", cfg); code != 0 {
		t.Fatalf("keys init: %s", out)
	}
	code, out := runCmd("keys", "rotate", "signing", "--config", cfg)
	if code != 0 {
		t.Fatalf("keys rotate signing: exit %d\n%s", code, out)
	}
	text, _ := os.ReadFile(cfg)
	if !strings.Contains(string(text), "# skolbro configuration example") || !strings.Contains(string(text), "    next_signing_cert: keys/signing-") {
		t.Fatalf("configuration after rotate:\n%s", text)
	}
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	next := c.Organisers[0].Keys.NextSigningCert
	if fi, err := os.Stat(c.Path(strings.TrimSuffix(next, ".crt") + ".key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the next key: %v", err)
	}
	orgs, rep := app.Build(c, store.NewMemory(nil), time.Now)
	if len(orgs) != 1 || rep.Err() != nil {
		t.Fatalf("build after rotate: %v", rep.Err())
	}
	md, err := orgs[0].Metadata.IdPMetadata()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(md), "<ds:X509Certificate>"); n < 2 {
		t.Errorf("the IdP metadata lists %d certificates, want the current and the next", n)
	}
	if orgs[0].IdP.NextSigningCert == nil {
		t.Error("the next signing certificate is not announced")
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"keys", "rotate", "signing", "--config", cfg}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "already set") {
		t.Errorf("second rotate: exit %d, %q; want refused", code, stderr.String())
	}
	_ = dir
}

// keys init makes the SP encryption key the configuration names, and
// keys rotate encryption starts its rollover: the SP metadata then lists
// both keys for encryption, and a second rotation waits for the first
// (issue 17, item 7).
func TestKeys_EncryptionKeyInitAndRotate(t *testing.T) {
	_, cfg := keylessDir(t)
	b, _ := os.ReadFile(cfg)
	write(t, cfg, strings.Replace(string(b), "      key: keys/signing.key\n", "      key: keys/signing.key\n    encryption: {cert: keys/sp-encryption.crt, key: keys/sp-encryption.key}\n", 1))
	if code, out := runCmd("keys", "init", "--config", cfg); code != 0 || !strings.Contains(out, "created organiser.keys.encryption") {
		t.Fatalf("keys init: exit %d\n%s", code, out)
	}
	code, out := runCmd("keys", "rotate", "encryption", "--config", cfg)
	if code != 0 {
		t.Fatalf("keys rotate encryption: exit %d\n%s", code, out)
	}
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	next := c.Organisers[0].Keys.NextEncryption
	if next == nil {
		t.Fatal("next_encryption not set")
	}
	if fi, err := os.Stat(c.Path(next.Key)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the next key: %v", err)
	}
	orgs, rep := app.Build(c, store.NewMemory(nil), time.Now)
	if len(orgs) != 1 || rep.Err() != nil {
		t.Fatalf("build after rotate: %v", rep.Err())
	}
	md := string(orgs[0].Upstreams[0].SPMetadata)
	if n := strings.Count(md, `use="encryption"`); n != 2 {
		t.Errorf("the SP metadata lists %d encryption keys, want the current and the next:\n%s", n, md)
	}
	if !strings.Contains(md, "rsa-oaep-mgf1p") || strings.Contains(md, "rsa-1_5") {
		t.Errorf("the SP metadata's encryption methods:\n%s", md)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"keys", "rotate", "encryption", "--config", cfg}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "already set") {
		t.Errorf("second rotate: exit %d, %q; want refused", code, stderr.String())
	}
}
