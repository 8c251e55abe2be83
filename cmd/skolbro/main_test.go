package main

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/fedmeta"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/metrics"
	"github.com/skolbro/skolbro/internal/protection"
)

// deployDir lays out a deployment in a temp dir: the repository's example
// configuration, metadata and policies, with freshly generated keys.
func deployDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, "../../metadata", filepath.Join(dir, "metadata"))
	copyTree(t, "../../attribute-release", filepath.Join(dir, "attribute-release"))
	cfg, err := os.ReadFile("../../skolbro.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "skolbro.yaml"), string(cfg))
	p, err := keys.Generate("test", keys.RSA2048, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := p.KeyPEM()
	write(t, filepath.Join(dir, "keys", "signing.crt"), string(p.CertPEM()))
	write(t, filepath.Join(dir, "keys", "signing.key"), string(kp))
	pk := make([]byte, 32)
	rand.Read(pk)
	write(t, filepath.Join(dir, "keys", "pseudonym.key"), string(pk))
	ak := make([]byte, 32)
	rand.Read(ak)
	write(t, filepath.Join(dir, "keys", "audit.key"), string(ak))
	return dir
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyTree(t *testing.T, from, to string) {
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

func runCmd(args ...string) (int, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String() + errOut.String()
}

// The repository's own metadata/ and attribute-release/ are reviewed like
// code: they must load without errors.
func TestCheck_RepositoryFilesLoad(t *testing.T) {
	dir := deployDir(t)
	code, out := runCmd("check", "--config", filepath.Join(dir, "skolbro.yaml"))
	if code != 0 || !strings.Contains(out, "ok:") {
		t.Fatalf("check on the repository's example files: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "note: example-learning-app requests but does not get: mail") {
		t.Errorf("check does not say what the vendor requests but does not get:\n%s", out)
	}
}

func TestCheck_ReportsEveryProblemWithFileAndKey(t *testing.T) {
	dir := deployDir(t)
	pol := filepath.Join(dir, "attribute-release")
	header := func(id, entity string) string {
		return "id: " + id + "\ndisplay_name: X\nsaml:\n  entity_id: " + entity + "\npurpose: p\nlegal_basis: l\n"
	}
	const known = "https://app.example.com/saml/metadata"
	write(t, filepath.Join(pol, "example-learning-app.yaml"),
		header("unknown-attr", known)+"agreement:\n  reference: r\n  ends: 2099-01-01\nattributes:\n  - name: eduPersonPrincipalName\n  - name: favouriteColour\n")
	write(t, filepath.Join(pol, "no-end-date.yaml"),
		header("no-end-date", "https://b.example.com/sp")+"agreement:\n  reference: r\nattributes:\n  - name: eduPersonPrincipalName\n")
	write(t, filepath.Join(pol, "pnr-no-optin.yaml"),
		header("pnr-no-optin", "https://c.example.com/sp")+"agreement:\n  reference: r\n  ends: 2099-01-01\nattributes:\n  - name: personalIdentityNumber\n")
	write(t, filepath.Join(pol, "no-metadata.yaml"),
		header("no-metadata", "https://nowhere.example.com/sp")+"agreement:\n  reference: r\n  ends: 2099-01-01\nattributes:\n  - name: givenName\n")

	code, out := runCmd("check", "--config", filepath.Join(dir, "skolbro.yaml"))
	if code == 0 {
		t.Fatalf("check accepted broken policies:\n%s", out)
	}
	want := []*regexp.Regexp{
		regexp.MustCompile(`example-learning-app\.yaml:\d+: attributes\[1\]\.name: .*favouriteColour`),
		regexp.MustCompile(`no-end-date\.yaml:\d+: agreement\.ends: `),
		regexp.MustCompile(`pnr-no-optin\.yaml:\d+: attributes\[0\]\.name: .*personal_number`),
		regexp.MustCompile(`no-metadata\.yaml: saml\.entity_id: no metadata for entityID "https://nowhere\.example\.com/sp"`),
	}
	for _, re := range want {
		if !re.MatchString(out) {
			t.Errorf("check output lacks %s", re)
		}
	}
	if t.Failed() {
		t.Logf("check output:\n%s", out)
	}
}

func TestCheck_ConfigErrorsNameFileAndKey(t *testing.T) {
	dir := deployDir(t)
	cfg := filepath.Join(dir, "skolbro.yaml")
	b, _ := os.ReadFile(cfg)
	s := strings.Replace(string(b), "external_url: https://skolbro.exempel.se", "external_url: http://skolbro.exempel.se", 1)
	s = strings.Replace(s, "key_file: keys/pseudonym.key", "key_file: keys/missing.key", 1)
	write(t, cfg, s)
	code, out := runCmd("check", "--config", cfg)
	if code == 0 {
		t.Fatalf("check accepted a broken configuration:\n%s", out)
	}
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`skolbro\.yaml:\d+: external_url: must be https`),
		regexp.MustCompile(`skolbro\.yaml:\d+: organiser\.pseudonym\.key_file: cannot be read`),
	} {
		if !re.MatchString(out) {
			t.Errorf("check output lacks %s:\n%s", re, out)
		}
	}

	write(t, cfg, string(b)+"\nunknown_key: 1\n")
	code, out = runCmd("check", "--config", cfg)
	if code == 0 || !strings.Contains(out, "unknown_key") || !strings.Contains(out, "skolbro.yaml") {
		t.Errorf("an unknown key was not refused with file and key: exit %d\n%s", code, out)
	}
}

func TestCheck_WarnsAboutPersonalNumberOptIn(t *testing.T) {
	dir := deployDir(t)
	write(t, filepath.Join(dir, "attribute-release", "example-learning-app.yaml"), `id: example-learning-app
display_name: X
saml:
  entity_id: https://app.example.com/saml/metadata
purpose: p
legal_basis: l
agreement:
  reference: r
  ends: 2099-01-01
attributes:
  - name: eduPersonPrincipalName
personal_number:
  attribute: personalIdentityNumber
  legal_basis: "Legal obligation"
  reason: "The vendor reports grades to a register keyed by personal number"
`)
	code, out := runCmd("check", "--config", filepath.Join(dir, "skolbro.yaml"))
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !regexp.MustCompile(`warning: .*example-learning-app\.yaml:\d+: personal_number`).MatchString(out) {
		t.Errorf("no warning for the personal number opt-in:\n%s", out)
	}
}

func TestRegister_ListsEveryVendorWithRequestedButNotReleased(t *testing.T) {
	dir := deployDir(t)
	code, out := runCmd("register", "--config", filepath.Join(dir, "skolbro.yaml"), "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, want := range []string{`"example-learning-app"`, `"PUB-2025-014"`, `"2027-06-30"`, `"mail"`} {
		if !strings.Contains(out, want) {
			t.Errorf("register lacks %s:\n%s", want, out)
		}
	}
	code, out = runCmd("register", "--config", filepath.Join(dir, "skolbro.yaml"))
	if code != 0 || !strings.HasPrefix(out, "vendor_id,") && !strings.Contains(strings.SplitN(out, "\n", 2)[0], "purpose") {
		t.Errorf("CSV register: exit %d\n%s", code, out)
	}
}

func TestProtect_AddListRemoveFromStdin(t *testing.T) {
	dir := deployDir(t)
	cfg := filepath.Join(dir, "skolbro.yaml")
	b, _ := os.ReadFile(cfg)
	s := strings.Replace(string(b), "  metadata_dir: metadata", "  protection:\n    register:\n      key_file: keys/pseudonym.key\n      file: state/register.json\n  metadata_dir: metadata", 1)
	write(t, cfg, s)
	os.MkdirAll(filepath.Join(dir, "state"), 0o700)
	const pnr = "201012242382" // fictional, Luhn-correct
	protect := func(op, stdin string) (int, string) {
		var out, errOut bytes.Buffer
		code := cmdProtect(op, []string{"--config", cfg}, strings.NewReader(stdin), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := protect("init", ""); code != 0 {
		t.Fatalf("init: %d %s", code, out)
	}
	if code, out := protect("add", pnr+"\n"); code != 0 || strings.Contains(out, pnr) || strings.Contains(out, pnr[2:]) {
		t.Fatalf("add: exit %d, output (must not echo the number): %s", code, out)
	}
	code, out := protect("list", "")
	if code != 0 || strings.Contains(out, pnr[2:]) {
		t.Fatalf("list: %d %s", code, out)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "state", "register.json"))
	if len(raw) == 0 || strings.Contains(string(raw), pnr[2:8]) {
		t.Errorf("the register file is empty or holds the personal number in clear")
	}
	if code, out := protect("add", "19121212-1213\n"); code == 0 || strings.Contains(out, "1213") {
		t.Errorf("an invalid number was accepted or echoed: %d %s", code, out)
	}
	if code, out := protect("remove", pnr+"\n"); code != 0 {
		t.Fatalf("remove: %d %s", code, out)
	}
}

// The bridge's metadata, written for a federation, is signed (verified
// here with the bridge's certificate) and carries validUntil, cacheDuration,
// the scope, a contact and the announced next signing key.
func TestMetadata_SignedForFederation(t *testing.T) {
	dir := deployDir(t)
	next, _ := keys.Generate("next", keys.RSA2048, time.Now())
	write(t, filepath.Join(dir, "keys", "next.crt"), string(next.CertPEM()))
	cfg := filepath.Join(dir, "skolbro.yaml")
	b, _ := os.ReadFile(cfg)
	s := strings.Replace(string(b), "  pseudonym:", "    next_signing_cert: keys/next.crt\n  metadata:\n    contacts:\n      - type: technical\n        email: it@exempel.se\n  pseudonym:", 1)
	write(t, cfg, s)
	out := filepath.Join(dir, "out")
	if code, o := runCmd("metadata", "--config", cfg, "--out", out); code != 0 {
		t.Fatalf("exit %d: %s", code, o)
	}
	md, err := os.ReadFile(filepath.Join(out, "idp.xml"))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _ := os.ReadFile(filepath.Join(dir, "keys", "signing.crt"))
	cert, _ := keys.ParseCertificatePEM(certPEM)
	if err := fedmeta.Verify(md, []*x509.Certificate{cert}); err != nil {
		t.Errorf("idp.xml does not verify with the bridge's certificate: %v", err)
	}
	for _, want := range []string{"validUntil=", "cacheDuration=", "<shibmd:Scope regexp=\"false\">exempel.se</shibmd:Scope>", "mailto:it@exempel.se", base64.StdEncoding.EncodeToString(next.Cert.Raw)[:40]} {
		if !strings.Contains(string(md), want) {
			t.Errorf("idp.xml lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "sp.xml")); err != nil {
		t.Errorf("sp.xml: %v", err)
	}
}

// serve registers the metrics of every part on one registry: no two parts
// may claim one name (a federation source would otherwise fail to load).
func TestServeMetricsDoNotCollide(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := fedmeta.NewRefresher(nil, reg); err != nil {
		t.Errorf("federation metrics: %v", err)
	}
	if _, err := protection.NewMetrics(reg); err != nil {
		t.Errorf("protection metrics: %v", err)
	}
}

// TestCase35_ReleaseLogRequired: without organiser.audit.dir (or its key)
// neither check nor serve accepts the configuration, and both name the
// file and the key. A privacy entitlement equal to the admin entitlement
// is refused too.
func TestCase35_ReleaseLogRequired(t *testing.T) {
	dir := deployDir(t)
	cfg := filepath.Join(dir, "skolbro.yaml")
	b, _ := os.ReadFile(cfg)
	noAudit := regexp.MustCompile(`(?m)^  audit:.*\n(    .*\n)+`).ReplaceAllString(string(b), "")
	if noAudit == string(b) {
		t.Fatal("the example configuration has no audit section to remove")
	}
	write(t, cfg, noAudit+"  admin:\n    entitlement: urn:x:admin\n    privacy_entitlement: urn:x:admin\n")
	wants := []*regexp.Regexp{
		regexp.MustCompile(`skolbro\.yaml(:\d+)?: organiser\.audit\.dir: required`),
		regexp.MustCompile(`skolbro\.yaml(:\d+)?: organiser\.audit\.key_file: required`),
		regexp.MustCompile(`skolbro\.yaml:\d+: organiser\.admin\.privacy_entitlement: must differ`),
	}
	code, out := runCmd("check", "--config", cfg)
	if code == 0 {
		t.Fatalf("check accepted a configuration without a release log:\n%s", out)
	}
	for _, re := range wants {
		if !re.MatchString(out) {
			t.Errorf("check output lacks %s:\n%s", re, out)
		}
	}
	code, out = runCmd("serve", "--config", cfg)
	if code == 0 {
		t.Fatalf("serve started without a release log:\n%s", out)
	}
	if !wants[0].MatchString(out) {
		t.Errorf("serve output lacks %s:\n%s", wants[0], out)
	}
}

// The CLI's subject access by stable id is recorded in the admin action
// log, which `skolbro audit admin-actions` lists; neither prints what was
// typed.
func TestAuditSubjectByStableIDAndAdminActions(t *testing.T) {
	dir := deployDir(t)
	cfg := filepath.Join(dir, "skolbro.yaml")
	const stableID = "tolvan.t@exempel.se"
	var out, errOut bytes.Buffer
	code := cmdAuditSubject([]string{"--config", cfg, "--by", "stable-id", "--format", "json"}, strings.NewReader(stableID+"\n"), &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), `"searched_by": [`) || !strings.Contains(out.String(), `"not_covered": [`) {
		t.Fatalf("audit subject: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if strings.Contains(out.String()+errOut.String(), stableID) {
		t.Errorf("audit subject echoes the stable id")
	}
	if code, _ := runCmd("audit", "subject", "--config", cfg, "--by", "name"); code != 2 {
		t.Errorf("--by name: exit %d", code)
	}
	code, listed := runCmd("audit", "admin-actions", "--config", cfg)
	if code != 0 || !regexp.MustCompile(`\n\d{4}-\d\d-\d\dT[^,]+,,cli,,subject_access,[0-9a-f]{64}\n`).MatchString(listed) {
		t.Errorf("admin-actions: exit %d\n%s", code, listed)
	}
	if code, _ := runCmd("audit", "admin-actions", "--config", cfg, "--since", "tomorrow"); code != 2 {
		t.Errorf("--since tomorrow: exit %d", code)
	}
}

// TestCase45_CheckNamesBrokenOrganiserFile: in the demo's two-organiser
// configuration, a policy file of Grannkommun that is not valid YAML makes
// check exit 1 with the file (and line) named, and say that Grannkommun
// alone is left out while Demo kommun serves (SECURITY.md case 45; the
// serving side is TestCase45_BrokenOrganiserLeavesOthersServing in
// internal/e2e).
func TestCase45_CheckNamesBrokenOrganiserFile(t *testing.T) {
	dir := t.TempDir()
	d, err := demo.Setup("http://127.0.0.1:8080", dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, demo.GrannkommunID, "attribute-release", "grannkommun-app.yaml")
	write(t, pol, "id: grannkommun-app\nattributes: [eduPersonPrincipalName\n")
	code, out := runCmd("check", "--config", d.Config.File())
	if code != 1 {
		t.Fatalf("check exit %d, want 1:\n%s", code, out)
	}
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^error: ` + regexp.QuoteMeta(pol) + `:\d+: invalid YAML`),
		regexp.MustCompile(`(?m)^disabled: grannkommun \(`),
	} {
		if !re.MatchString(out) {
			t.Errorf("check output lacks %s:\n%s", re, out)
		}
	}
	if strings.Contains(out, "error: "+filepath.Join(dir, "skolbro.yaml")) || strings.Contains(out, "disabled: demo-kommun") {
		t.Errorf("check blames Demo kommun for Grannkommun's file:\n%s", out)
	}
}
