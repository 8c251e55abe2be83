package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/pseudonym"
)

const usageKeys = `usage: skolbro keys init|rotate signing|rotate encryption|show --config FILE

  init               create every key file the configuration names that is missing (mode 0600; never overwrites)
  rotate signing     start a signing key rollover: write the next key pair and set next_signing_cert
  rotate encryption  start an SP encryption key rollover: write the next key pair and set next_encryption
  show               print each key's type, fingerprint and expiry
`

// cmdKeys makes and shows the bridge's own keys, so that an admin needs
// neither openssl nor head -c.
func cmdKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageKeys)
		return 2
	}
	switch {
	case isHelp(args[0]):
		fmt.Fprint(stdout, usageKeys)
		return 0
	case args[0] == "init":
		return cmdKeysInit(args[1:], stdout, stderr)
	case args[0] == "show":
		return cmdKeysShow(args[1:], stdout, stderr)
	case args[0] == "rotate":
		if len(args) > 1 && isHelp(args[1]) {
			return cmdKeysRotate(args[1:], stdout, stderr)
		}
		if len(args) >= 2 && args[1] == "encryption" {
			return cmdKeysRotateEncryption(args[2:], stdout, stderr)
		}
		if len(args) < 2 || args[1] != "signing" {
			fmt.Fprint(stderr, "usage: skolbro keys rotate signing|encryption --config FILE [--organiser ID]\n")
			return 2
		}
		return cmdKeysRotate(args[2:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "skolbro keys: unknown command %q\n\n%s", args[0], usageKeys)
	return 2
}

// keyKind is what a key file holds.
type keyKind int

const (
	kindPair    keyKind = iota // a certificate and its private key
	kindPrivate                // a private key alone (OIDC)
	kindSecret                 // a random HMAC key
)

// keyFile is one key the configuration names.
type keyFile struct {
	// key is the configuration key, e.g. organiser.keys.signing.
	key  string
	kind keyKind
	// cert and path (the key file) are resolved paths.
	cert, path string
	alg        keys.Algorithm
	// cn names a certificate's subject.
	cn string
}

// configuredKeys lists every key file cfg names that the bridge makes
// itself, once each (organisers sharing the hub's keys list them once).
// Files issued by others (an upstream client secret, an SS 12000 token,
// a Redis password) are not among them.
func configuredKeys(cfg *config.Config) []keyFile {
	var out []keyFile
	seen := map[string]bool{}
	add := func(k keyFile) {
		if k.path == "" || seen[k.path] {
			return
		}
		seen[k.path] = true
		out = append(out, k)
	}
	pair := func(key, name string, p *config.KeyPair, alg keys.Algorithm) {
		if p == nil || p.Key == "" {
			return
		}
		add(keyFile{key: key, kind: kindPair, cert: cfg.Path(p.Cert), path: cfg.Path(p.Key), alg: alg, cn: name})
	}
	if k := cfg.Keys; k != nil {
		pair("keys.signing", "skolbro hub signing", &k.Signing, keys.RSA3072)
		pair("keys.signing_ecdsa", "skolbro hub signing (ECDSA)", k.SigningECDSA, keys.P256)
		for i, ok := range k.OIDC {
			add(keyFile{key: fmt.Sprintf("keys.oidc[%d]", i), kind: kindPrivate, path: cfg.Path(ok.Key), alg: keys.P256})
		}
	}
	for _, o := range cfg.Organisers {
		name := "skolbro " + o.ID
		pair(o.Key("keys.signing"), name+" signing", &o.Keys.Signing, keys.RSA3072)
		pair(o.Key("keys.signing_ecdsa"), name+" signing (ECDSA)", o.Keys.SigningECDSA, keys.P256)
		pair(o.Key("metadata.signing"), name+" metadata signing", o.Metadata.Signing, keys.RSA3072)
		pair(o.Key("keys.encryption"), name+" SP encryption", o.Keys.Encryption, keys.RSA3072)
		pair(o.Key("keys.next_encryption"), name+" SP encryption", o.Keys.NextEncryption, keys.RSA3072)
		for i, ok := range o.Keys.OIDC {
			add(keyFile{key: o.Key(fmt.Sprintf("keys.oidc[%d]", i)), kind: kindPrivate, path: cfg.Path(ok.Key), alg: keys.P256})
		}
		add(keyFile{key: o.Key("pseudonym.key_file"), kind: kindSecret, path: cfg.Path(o.Pseudonym.KeyFile)})
		if o.Audit.Dir != "" {
			add(keyFile{key: o.Key("audit.key_file"), kind: kindSecret, path: cfg.Path(o.Audit.KeyFile)})
		}
		if r := o.Protection.Register; r != nil {
			add(keyFile{key: o.Key("protection.register.key_file"), kind: kindSecret, path: cfg.Path(r.KeyFile)})
		}
		if o.Keys.NextSigningCert != "" {
			add(keyFile{key: o.Key("keys.next_signing_cert"), kind: kindPair, cert: cfg.Path(o.Keys.NextSigningCert)})
		}
	}
	if k := cfg.Keys; k != nil && k.NextSigningCert != "" {
		add(keyFile{key: "keys.next_signing_cert", kind: kindPair, cert: cfg.Path(k.NextSigningCert)})
	}
	return out
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// writeNew writes b to a new file at path with mode, creating its
// directory (0700); it never replaces a file.
func writeNew(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

func cmdKeysInit(args []string, stdout, stderr io.Writer) int {
	cfg, code, ok := configFromArgs("keys init", args, stdout, stderr, "skolbro keys init --config FILE",
		"Creates every key file the configuration names that is missing: signing key pairs (RSA 3072, or P-256 for signing_ecdsa) with a self-signed certificate valid 5 years, "+
			"OIDC signing keys (P-256, ES256), and 32-byte random keys for pseudonyms, the release log and the protection register. "+
			"Key files get mode 0600. An existing file is never overwritten.", nil)
	if !ok {
		return code
	}
	now := time.Now()
	failed := false
	for _, k := range configuredKeys(cfg) {
		if k.path == "" {
			continue // next_signing_cert: made by keys rotate signing
		}
		made, err := initKey(k, now)
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "error: %s: %s: %v\n", cfg.File(), k.key, err)
			failed = true
		case made != "":
			fmt.Fprintf(stdout, "created %s: %s\n", k.key, made)
		default:
			fmt.Fprintf(stdout, "exists  %s: %s\n", k.key, k.path)
		}
	}
	if failed {
		return 1
	}
	fmt.Fprintln(stdout, "Back up the pseudonym and audit keys: a lost pseudonym key gives every person a new identity at every vendor. Then run skolbro check.")
	return 0
}

// initKey makes k's files where they are missing, and says what it made
// ("" when everything existed).
func initKey(k keyFile, now time.Time) (string, error) {
	keyThere, err := exists(k.path)
	if err != nil {
		return "", err
	}
	switch k.kind {
	case kindSecret:
		if keyThere {
			return "", nil
		}
		b := make([]byte, pseudonym.MinKeyLen)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		// Hex text: the loaders read hex, base64 or raw bytes alike, and a
		// text file survives copying through editors and secret stores.
		if err := writeNew(k.path, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s (random %d-byte key, mode 0600)", k.path, len(b)), nil
	case kindPrivate:
		if keyThere {
			return "", nil
		}
		p, err := keys.Generate("skolbro OIDC", k.alg, now)
		if err != nil {
			return "", err
		}
		kp, err := p.KeyPEM()
		if err != nil {
			return "", err
		}
		if err := writeNew(k.path, kp, 0o600); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s (%s, mode 0600)", k.path, describeKey(p.Signer)), nil
	}
	certThere, err := exists(k.cert)
	if err != nil {
		return "", err
	}
	switch {
	case keyThere && certThere:
		return "", nil
	case certThere:
		return "", fmt.Errorf("the certificate %s is there but its key %s is missing: restore the key, or remove the certificate to make a new pair", k.cert, k.path)
	case keyThere:
		// A key made elsewhere: give it its certificate.
		signer, err := keys.LoadSigner(k.path)
		if err != nil {
			return "", err
		}
		p, err := keys.SelfSign(k.cn, signer, now)
		if err != nil {
			return "", err
		}
		if err := writeNew(k.cert, p.CertPEM(), 0o644); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s (self-signed certificate for the existing key, valid until %s)", k.cert, p.Cert.NotAfter.Format(time.DateOnly)), nil
	}
	p, err := keys.Generate(k.cn, k.alg, now)
	if err != nil {
		return "", err
	}
	kp, err := p.KeyPEM()
	if err != nil {
		return "", err
	}
	if err := writeNew(k.path, kp, 0o600); err != nil {
		return "", err
	}
	if err := writeNew(k.cert, p.CertPEM(), 0o644); err != nil {
		os.Remove(k.path)
		return "", err
	}
	return fmt.Sprintf("%s and %s (%s, self-signed, valid until %s)", k.path, k.cert, describeKey(p.Signer), p.Cert.NotAfter.Format(time.DateOnly)), nil
}

// describeKey names a key's type and size from it or its signer.
func describeKey(k any) string {
	if s, ok := k.(crypto.Signer); ok {
		k = s.Public()
	}
	switch pub := k.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", pub.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + pub.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", k)
}

// fingerprint is the SHA-256 of a certificate or public key's DER form.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return "SHA256:" + strings.Join(parts, ":")
}

func cmdKeysShow(args []string, stdout, stderr io.Writer) int {
	cfg, code, ok := configFromArgs("keys show", args, stdout, stderr, "skolbro keys show --config FILE",
		"Prints each key the configuration names: its type, the SHA-256 fingerprint of its certificate (or public key) and the certificate's expiry. "+
			"Secret keys show only their length and file mode, never their content.", nil)
	if !ok {
		return code
	}
	now := time.Now()
	failed := false
	for _, k := range configuredKeys(cfg) {
		line, err := showKey(k, now)
		if err != nil {
			fmt.Fprintf(stderr, "error: %s: %s: %v\n", cfg.File(), k.key, err)
			failed = true
			continue
		}
		fmt.Fprintf(stdout, "%s\n  %s\n", k.key, line)
	}
	if failed {
		return 1
	}
	return 0
}

func showKey(k keyFile, now time.Time) (string, error) {
	switch k.kind {
	case kindSecret:
		fi, err := os.Stat(k.path)
		if err != nil {
			return "", err
		}
		note := ""
		if fi.Mode().Perm()&0o077 != 0 {
			note = " (readable by others: chmod 600)"
		}
		key, err := pseudonym.LoadKey(k.path)
		if err != nil {
			return fmt.Sprintf("secret key, mode %04o%s, not usable: %v  %s", fi.Mode().Perm(), note, err, k.path), nil
		}
		return fmt.Sprintf("secret key, %d bytes, mode %04o%s  %s", len(key), fi.Mode().Perm(), note, k.path), nil
	case kindPrivate:
		s, err := keys.LoadSigner(k.path)
		if err != nil {
			return "", err
		}
		der, err := x509.MarshalPKIXPublicKey(s.Public())
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s public key %s (no certificate, no expiry)  %s", describeKey(s), fingerprint(der), k.path), nil
	}
	b, err := os.ReadFile(k.cert)
	if err != nil {
		return "", err
	}
	c, err := keys.ParseCertificatePEM(b)
	if err != nil {
		return "", err
	}
	days := int(c.NotAfter.Sub(now).Hours() / 24)
	state := fmt.Sprintf("%d days left", days)
	if days < 0 {
		state = "EXPIRED"
	} else if days < 60 {
		state += ": start a rollover (skolbro keys rotate signing)"
	}
	return fmt.Sprintf("%s certificate %s, expires %s (%s), subject %q  %s",
		describeKey(c.PublicKey), fingerprint(c.Raw), c.NotAfter.UTC().Format(time.DateOnly), state, c.Subject.CommonName, k.cert), nil
}

func cmdKeysRotate(args []string, stdout, stderr io.Writer) int {
	orgID := ""
	cfg, code, ok := configFromArgs("keys rotate signing", args, stdout, stderr,
		"skolbro keys rotate signing --config FILE [--organiser ID]",
		"Starts the documented signing key rollover (README, Federation metadata and key rollover): writes the next key pair "+
			"beside the current one and sets keys.next_signing_cert in the configuration, so that the metadata announces it "+
			"before it is used. Reload or restart the bridge, wait until every vendor and federation has the new metadata, then "+
			"point keys.signing at the new pair and remove next_signing_cert.", func(fs2 *flag.FlagSet) {
			fs2.StringVar(&orgID, "organiser", "", "the organiser's id (when the configuration lists several)")
		})
	if !ok {
		return code
	}
	o, err := pickOrganiser(cfg, orgID)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro keys rotate signing: %v\n", err)
		return 2
	}
	k, at := cfg.SigningKeys(o)
	if k.NextSigningCert != "" {
		fmt.Fprintf(stderr, "skolbro keys rotate signing: %s: %s.next_signing_cert is already set (%s): finish that rollover first\n", cfg.File(), at, k.NextSigningCert)
		return 1
	}
	line := cfg.Line(at + ".signing")
	if line == 0 || k.Signing.Cert == "" {
		fmt.Fprintf(stderr, "skolbro keys rotate signing: %s: %s.signing is not set\n", cfg.File(), at)
		return 1
	}
	cur, err := keys.Load(cfg.Path(k.Signing.Cert), cfg.Path(k.Signing.Key))
	if err != nil {
		fmt.Fprintf(stderr, "skolbro keys rotate signing: %s: %s.signing: %v\n", cfg.File(), at, err)
		return 1
	}
	alg := keys.RSA3072
	if _, isEC := cur.Signer.Public().(*ecdsa.PublicKey); isEC {
		alg = keys.P256
	}
	relCert, relKey, next, err := writeNextPair(cfg, k.Signing.Cert, cur.Cert.Subject.CommonName, alg, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "skolbro keys rotate signing: %v\n", err)
		return 1
	}
	if err := insertLine(cfg.File(), line, "next_signing_cert: "+yamlString(relCert)); err != nil {
		os.Remove(cfg.Path(relKey))
		os.Remove(cfg.Path(relCert))
		fmt.Fprintf(stderr, "skolbro keys rotate signing: %s: %v\n", cfg.File(), err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote the next signing key pair: %s and %s (%s, %s)\n", relKey, relCert, describeKey(next.Signer), fingerprint(next.Cert.Raw))
	fmt.Fprintf(stdout, "set %s.next_signing_cert in %s\n", at, cfg.File())
	if at == "keys" {
		fmt.Fprintln(stdout, "these are the hub's default keys: every organiser without its own signing key announces the new one")
	}
	fmt.Fprintf(stdout, `next:
  1. skolbro check, then reload the bridge (skolbro reload): its metadata lists both certificates; nothing is signed with the new key yet
  2. wait until every vendor and federation has the new metadata (the federation's publication delay plus metadata.cache_duration)
  3. point %[1]s.signing at %[2]s and %[3]s, remove %[1]s.next_signing_cert, reload
`, at, relCert, relKey)
	return 0
}

var datedStem = regexp.MustCompile(`-\d{8}$`)

// writeNextPair writes the next key pair of a rollover beside the current
// certificate cur (keys/signing.crt becomes keys/signing-<today>.crt and
// .key) and returns the paths relative to the configuration.
func writeNextPair(cfg *config.Config, cur, cn string, alg keys.Algorithm, now time.Time) (relCert, relKey string, next *keys.Pair, err error) {
	stem := strings.TrimSuffix(cur, filepath.Ext(cur))
	stem = datedStem.ReplaceAllString(stem, "") // keys/signing-20260101 rotates to keys/signing-<today>
	relCert = stem + "-" + now.Format("20060102") + ".crt"
	relKey = stem + "-" + now.Format("20060102") + ".key"
	if next, err = keys.Generate(cn, alg, now); err != nil {
		return "", "", nil, err
	}
	kp, err := next.KeyPEM()
	if err != nil {
		return "", "", nil, err
	}
	if err := writeNew(cfg.Path(relKey), kp, 0o600); err != nil {
		return "", "", nil, err
	}
	if err := writeNew(cfg.Path(relCert), next.CertPEM(), 0o644); err != nil {
		os.Remove(cfg.Path(relKey))
		return "", "", nil, err
	}
	return relCert, relKey, next, nil
}

func cmdKeysRotateEncryption(args []string, stdout, stderr io.Writer) int {
	orgID := ""
	cfg, code, ok := configFromArgs("keys rotate encryption", args, stdout, stderr,
		"skolbro keys rotate encryption --config FILE [--organiser ID]",
		"Starts an SP encryption key rollover: writes the next key pair beside the current one and sets keys.next_encryption, "+
			"so that the SP metadata lists both keys and the bridge decrypts with either. Reload, give the school IdP the new SP "+
			"metadata, and once it encrypts to the new key, point keys.encryption at the new pair and remove next_encryption.",
		func(fs2 *flag.FlagSet) {
			fs2.StringVar(&orgID, "organiser", "", "the organiser's id (when the configuration lists several)")
		})
	if !ok {
		return code
	}
	o, err := pickOrganiser(cfg, orgID)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro keys rotate encryption: %v\n", err)
		return 2
	}
	at := o.Key("keys")
	if o.Keys.NextEncryption != nil {
		fmt.Fprintf(stderr, "skolbro keys rotate encryption: %s: %s.next_encryption is already set: finish that rollover first\n", cfg.File(), at)
		return 1
	}
	line := cfg.Line(at + ".encryption")
	if o.Keys.Encryption == nil || line == 0 {
		fmt.Fprintf(stderr, "skolbro keys rotate encryption: %s: %s.encryption is not set (add it and run skolbro keys init)\n", cfg.File(), at)
		return 1
	}
	relCert, relKey, next, err := writeNextPair(cfg, o.Keys.Encryption.Cert, "skolbro "+o.ID+" SP encryption", keys.RSA3072, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "skolbro keys rotate encryption: %v\n", err)
		return 1
	}
	if err := insertLine(cfg.File(), line, "next_encryption: {cert: "+yamlString(relCert)+", key: "+yamlString(relKey)+"}"); err != nil {
		os.Remove(cfg.Path(relKey))
		os.Remove(cfg.Path(relCert))
		fmt.Fprintf(stderr, "skolbro keys rotate encryption: %s: %v\n", cfg.File(), err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote the next SP encryption key pair: %s and %s (%s, %s)\n", relKey, relCert, describeKey(next.Signer), fingerprint(next.Cert.Raw))
	fmt.Fprintf(stdout, "set %s.next_encryption in %s\n", at, cfg.File())
	fmt.Fprintf(stdout, `next:
  1. skolbro check, then reload the bridge (skolbro reload): its SP metadata lists both keys, and it decrypts with either
  2. give the school IdP the new SP metadata (ADFS: update the relying party trust, or let it poll the metadata URL)
  3. once the IdP encrypts to the new key, point %[1]s.encryption at %[2]s and %[3]s, remove %[1]s.next_encryption, reload
`, at, relCert, relKey)
	return 0
}

// yamlString quotes s for a YAML scalar when it needs it.
func yamlString(s string) string {
	if strings.ContainsAny(s, ":#'\"{}[],&*!|>%@`") || strings.TrimSpace(s) != s {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return s
}

// insertLine inserts text before line (1-based) of the file at path, with
// that line's indentation, and checks that the result still parses as a
// configuration before it replaces the file (atomically, same mode).
func insertLine(path string, line int, text string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(string(b), "\n")
	if line < 1 || line > len(lines) {
		return fmt.Errorf("line %d is not in the file", line)
	}
	at := lines[line-1]
	indent := at[:len(at)-len(strings.TrimLeft(at, " \t"))]
	out := strings.Join(lines[:line-1], "") + indent + text + "\n" + strings.Join(lines[line-1:], "")
	if _, err := config.Parse(path, []byte(out)); err != nil {
		return fmt.Errorf("the edited configuration would not load: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(out), fi.Mode().Perm()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
