package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/keys"
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
		regexp.MustCompile(`note: ` + pol + `/chat\.yaml: oidc\.sector: vendor chat gets a sub of its own \(sector vendor/chat\)\. .*host apps\.edtech\.example.*sector: legacy-host`),
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
