package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/app"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/sectorpin"
	"github.com/skolbro/skolbro/internal/store"
)

// withOIDCVendors adds an OIDC signing key to the deployment in dir and
// writes an OIDC policy per vendor, each with the given oidc.sector line,
// all with redirect URIs on one platform host.
func withOIDCVendors(t *testing.T, dir string, sectors map[string]string) {
	t.Helper()
	k, err := keys.Generate("test", keys.P256, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := k.KeyPEM()
	write(t, filepath.Join(dir, "keys", "oidc.key"), string(kp))
	cfg := filepath.Join(dir, "skolbro.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const signing = "      key: keys/signing.key\n"
	if !strings.Contains(string(b), signing) {
		t.Fatal("the example configuration changed: no signing key line")
	}
	write(t, cfg, strings.Replace(string(b), signing, signing+"    oidc:\n      - key: keys/oidc.key\n        kid: k1\n", 1))
	for id, sector := range sectors {
		write(t, filepath.Join(dir, "attribute-release", id+".secret"), strings.Repeat("s", 40))
		write(t, filepath.Join(dir, "attribute-release", id+".yaml"), `id: `+id+`
display_name: `+id+`
oidc:
  client_id: `+id+`
  redirect_uris: ["https://apps.edtech.example/`+id+`/callback"]
  client_auth: client_secret_basic
  client_secret_file: `+id+`.secret
`+sector+`purpose: p
legal_basis: l
agreement:
  reference: r
  ends: 2099-01-01
attributes:
  - name: eduPersonPrincipalName
`)
	}
}

// check reports a pairwise sector that two vendors share, on each of the
// two policy files with the other's file and key, and warns about the
// legacy host sector (SECURITY.md case 33).
func TestCase33_CheckReportsSharedSector(t *testing.T) {
	dir := deployDir(t)
	withOIDCVendors(t, dir, map[string]string{
		"quiz":   "  sector: edtech-platform\n",
		"grades": "  sector: edtech-platform\n",
		"maps":   "  sector: legacy-host\n",
		"chat":   "",
	})
	code, out := runCmd("check", "--config", filepath.Join(dir, "skolbro.yaml"))
	if code != 0 {
		t.Fatalf("exit %d (sharing is a warning, not an error):\n%s", code, out)
	}
	pol := regexp.QuoteMeta(filepath.Join(dir, "attribute-release"))
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`warning: ` + pol + `/quiz\.yaml:8: oidc\.sector: .*SHARED PAIRWISE SECTOR "edtech-platform" with vendor grades \(` + pol + `/grades\.yaml:8: oidc\.sector\)`),
		regexp.MustCompile(`warning: ` + pol + `/grades\.yaml:8: oidc\.sector: .*SHARED PAIRWISE SECTOR "edtech-platform" with vendor quiz \(` + pol + `/quiz\.yaml:8: oidc\.sector\)`),
		regexp.MustCompile(`warning: ` + pol + `/maps\.yaml:8: oidc\.sector: .*the redirect URIs' host apps\.edtech\.example`),
		regexp.MustCompile(`note: ` + pol + `/chat\.yaml: oidc\.sector: vendor chat: pairwise sector vendor/chat \(vendor\) will be pinned at start: new vendor: its own sector`),
	} {
		if !re.MatchString(out) {
			t.Errorf("check output lacks %s", re)
		}
	}
	if strings.Contains(out, "chat.yaml:8: oidc.sector: warning") || strings.Contains(out, "with vendor chat") {
		t.Error("a vendor on its own default sector is warned about")
	}
	if t.Failed() {
		t.Logf("check output:\n%s", out)
	}
}

// oldRelease is an OIDC release event as bridges before vendor sectors
// wrote it: no sector field.
func oldRelease(vendor string) string {
	return `{"time":"2026-09-01T08:00:00Z","txn_id":"t1","upstream":"school-idp","vendor":"` + vendor +
		`","protocol":"oidc","attributes":["eduPersonPrincipalName"],"policy_version":"ab","masked":false,"outcome":"released","subject_key":""}` + "\n"
}

// check on an upgraded deployment: vendors the release log shows were
// served before vendor sectors will keep their host sector (and, sharing
// it, are warned about); a new vendor gets its own; nothing is written.
// With the pins written, sector: vendor is warned about loudly, and
// skolbro diff flags it (SECURITY.md case 33, issue 19 part 3).
func TestCase33_CheckShowsPinnedSectors(t *testing.T) {
	dir := deployDir(t)
	withOIDCVendors(t, dir, map[string]string{"quiz": "", "grades": "", "chat": ""})
	write(t, filepath.Join(dir, "audit", "releases-20260901T000000Z.jsonl"), oldRelease("quiz")+oldRelease("grades"))
	cfg := filepath.Join(dir, "skolbro.yaml")
	code, out := runCmd("check", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	pol := regexp.QuoteMeta(filepath.Join(dir, "attribute-release"))
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`note: ` + pol + `/quiz\.yaml: oidc\.sector: vendor quiz: pairwise sector apps\.edtech\.example \(legacy-host\) will be pinned at start: served before vendor sectors`),
		regexp.MustCompile(`note: ` + pol + `/chat\.yaml: oidc\.sector: vendor chat: pairwise sector vendor/chat \(vendor\) will be pinned at start: new vendor`),
		regexp.MustCompile(`warning: ` + pol + `/quiz\.yaml: oidc\.sector: vendor quiz shares its pairwise sector apps\.edtech\.example with vendor grades`),
		regexp.MustCompile(`warning: ` + pol + `/grades\.yaml: oidc\.sector: vendor grades shares its pairwise sector apps\.edtech\.example with vendor quiz`),
	} {
		if !re.MatchString(out) {
			t.Errorf("check output lacks %s", re)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "audit", sectorpin.FileName)); !os.IsNotExist(err) {
		t.Errorf("check wrote the pin file (%v)", err)
	}
	if t.Failed() {
		t.Fatalf("check output:\n%s", out)
	}

	// The pins as serve writes them; then the admin opts quiz in.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	c, err := config.Load(cfg)
	must(err)
	_, rep := app.BuildWith(c, store.NewMemory(nil), app.Options{Now: time.Now, PinSectors: true})
	must(rep.Err())
	pins, err := sectorpin.Load(filepath.Join(dir, "audit"))
	must(err)
	if pins["quiz"].Kind != policy.SectorLegacyHost || pins["chat"].Kind != policy.SectorVendor {
		t.Fatalf("pins: %+v", pins)
	}
	old := t.TempDir()
	copyTree(t, dir, old)
	quiz := filepath.Join(dir, "attribute-release", "quiz.yaml")
	b, err := os.ReadFile(quiz)
	must(err)
	write(t, quiz, strings.Replace(string(b), "purpose: p\n", "  sector: vendor\npurpose: p\n", 1))
	code, out = runCmd("check", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !regexp.MustCompile(`warning: ` + pol + `/quiz\.yaml: oidc\.sector: vendor quiz: its pairwise sector changes from apps\.edtech\.example \(legacy-host, pinned \d{4}-\d\d-\d\d\) to vendor/quiz \(vendor\): EVERY PERSON GETS A NEW SUB`).MatchString(out) {
		t.Errorf("check does not warn about the sector change:\n%s", out)
	}
	code, out = runCmd("diff", "--config", cfg, "--against", filepath.Join(old, "skolbro.yaml"))
	if code != 1 || !strings.Contains(out, "oidc.sector") || !strings.Contains(out, "apps.edtech.example (legacy-host, no sector line: pinned)") || !strings.Contains(out, "vendor/quiz (vendor)") {
		t.Errorf("diff: exit %d, want 1 with the sector change from the pinned host sector:\n%s", code, out)
	}
}
