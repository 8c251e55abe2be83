package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skolbro/skolbro/internal/cfgdiff"
)

// skolbro diff for a merge-request check (issue 17, item 4): exit 0 with
// no change, 1 with changes, 2 on error; attribute, agreement and vendor
// changes listed per vendor; a NameID kind change flagged loudly as a new
// identity for every person; text and JSON.
func TestDiff_MergeRequestCheck(t *testing.T) {
	oldDir, newDir := deployDir(t), deployDir(t)
	oldCfg, newCfg := filepath.Join(oldDir, "skolbro.yaml"), filepath.Join(newDir, "skolbro.yaml")
	sameKey(t, oldDir, newDir)

	if code, out := runCmd("diff", "--config", newCfg, "--against", oldCfg); code != 0 || !strings.Contains(out, "no change") {
		t.Fatalf("identical trees: exit %d:\n%s", code, out)
	}

	pol := filepath.Join(newDir, "attribute-release", "example-learning-app.yaml")
	b, err := os.ReadFile(pol)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	s = strings.Replace(s, "  name_id: transient", "  name_id: pairwise", 1)
	s = strings.Replace(s, "  ends: 2027-06-30", "  ends: 2028-06-30", 1)
	s = strings.Replace(s, "  - name: givenName\n", "  - name: givenName\n  - name: sisSchoolUnitCode\n", 1)
	s = strings.Replace(s, "    values: [student, faculty]\n", "    values: [student]\n", 1)
	write(t, pol, s)
	second := strings.Replace(s, "id: example-learning-app", "id: second-app", 1)
	second = strings.Replace(second, "entity_id: https://app.example.com/saml/metadata", "entity_id: https://second.example.com/saml/metadata", 1)
	write(t, filepath.Join(newDir, "attribute-release", "second-app.yaml"), second)

	var stdout, stderr bytes.Buffer
	code := run([]string{"diff", "--config", newCfg, "--against", oldCfg}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1 for changes; stderr: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"organiser exempel-kommun\n",
		"  vendor example-learning-app\n",
		"    + attribute added: sisSchoolUnitCode\n",
		"    ~ attribute values: eduPersonScopedAffiliation [student, faculty] -> eduPersonScopedAffiliation [student]\n",
		"    ~ agreement.ends: 2027-06-30 -> 2028-06-30\n",
		"    !!! NEW IDENTITY FOR EVERY PERSON: saml.name_id: transient -> pairwise\n",
		"  vendor second-app\n    + vendor added: ",
		"give every person a new identity",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q:\n%s", want, out)
		}
	}

	stdout.Reset()
	if code := run([]string{"diff", "--config", newCfg, "--against", oldCfg, "--format", "json"}, &stdout, &stderr); code != 1 {
		t.Fatalf("json: exit %d", code)
	}
	var changes []cfgdiff.Change
	if err := json.Unmarshal(stdout.Bytes(), &changes); err != nil {
		t.Fatalf("json: %v\n%s", err, stdout.String())
	}
	identity := 0
	for _, c := range changes {
		if c.Identity {
			identity++
			if c.What != "saml.name_id" || c.Vendor != "example-learning-app" {
				t.Errorf("flagged as a new identity: %+v", c)
			}
		}
	}
	if identity != 1 {
		t.Errorf("%d identity changes, want 1: %+v", identity, changes)
	}

	// The organiser's scope gives everyone a new identity; a broken tree
	// is an error (2), not a diff.
	cfgText, _ := os.ReadFile(newCfg)
	write(t, newCfg, strings.Replace(string(cfgText), "  scope: exempel.se", "  scope: ny.exempel.se", 1))
	if _, out := runCmd("diff", "--config", newCfg, "--against", oldCfg); !strings.Contains(out, "!!! NEW IDENTITY FOR EVERY PERSON: scope: exempel.se -> ny.exempel.se") {
		t.Errorf("scope change not flagged:\n%s", out)
	}
	write(t, pol, s+"no_such_key: 1\n")
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"diff", "--config", newCfg, "--against", oldCfg}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "no_such_key") {
		t.Errorf("broken tree: exit %d, stderr %q; want 2 naming the problem", code, stderr.String())
	}
}

// An OIDC vendor's sector decides its pairwise sub: a change is flagged.
func TestDiff_OIDCSectorChangeFlagged(t *testing.T) {
	oldDir, newDir := deployDir(t), deployDir(t)
	sameKey(t, oldDir, newDir)
	policyText := `id: oidc-vendor
display_name: OIDC Vendor
oidc:
  client_id: oidc-vendor
  redirect_uris: ["https://oidc.example.com/callback"]
  client_auth: client_secret_basic
  client_secret_file: ../keys/oidc.secret
  id_token_signing_alg: RS256
%s
purpose: "Pupils log in."
legal_basis: "Public interest task (GDPR art. 6.1 e)"
agreement:
  reference: "X-1"
  ends: 2099-12-31
attributes:
  - name: eduPersonPrincipalName
`
	for dir, sector := range map[string]string{oldDir: "", newDir: "  sector: legacy-host"} {
		write(t, filepath.Join(dir, "keys", "oidc.secret"), "0123456789abcdef0123456789abcdef")
		write(t, filepath.Join(dir, "attribute-release", "oidc-vendor.yaml"), strings.Replace(policyText, "%s\n", sector+"\n", 1))
	}
	code, out := runCmd("diff", "--config", filepath.Join(newDir, "skolbro.yaml"), "--against", filepath.Join(oldDir, "skolbro.yaml"))
	if code != 1 || !strings.Contains(out, "!!! NEW IDENTITY FOR EVERY PERSON: oidc.sector: ") {
		t.Errorf("exit %d, want the sector change flagged:\n%s", code, out)
	}
}

// sameKey gives newDir the pseudonym key of oldDir (deployDir makes a
// fresh one each time, which diff rightly flags).
func sameKey(t *testing.T, oldDir, newDir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(oldDir, "keys", "pseudonym.key"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(newDir, "keys", "pseudonym.key"), string(b))
}

// A different pseudonym key in the two trees is flagged.
func TestDiff_PseudonymKeyChangeFlagged(t *testing.T) {
	oldDir, newDir := deployDir(t), deployDir(t)
	code, out := runCmd("diff", "--config", filepath.Join(newDir, "skolbro.yaml"), "--against", filepath.Join(oldDir, "skolbro.yaml"))
	if code != 1 || !strings.Contains(out, "!!! NEW IDENTITY FOR EVERY PERSON: pseudonym key") {
		t.Errorf("exit %d, want the key change flagged:\n%s", code, out)
	}
}

// A typo in a policy's attribute is an error naming the file and key; the
// vendor's metadata then has no loaded policy, and check says that the
// error is why, instead of only that the vendor has no policy (issue 17).
func TestCheck_PolicyTypoNotReportedAsMissingPolicy(t *testing.T) {
	dir := deployDir(t)
	pol := filepath.Join(dir, "attribute-release", "example-learning-app.yaml")
	b, _ := os.ReadFile(pol)
	write(t, pol, strings.Replace(string(b), "  - name: givenName", "  - name: givneName", 1))
	code, out := runCmd("check", "--config", filepath.Join(dir, "skolbro.yaml"))
	if code != 1 || !strings.Contains(out, "givneName") {
		t.Fatalf("exit %d, want the typo as an error:\n%s", code, out)
	}
	if strings.Contains(out, "no release policy names entityID") || !strings.Contains(out, "if its policy file has an error above, fix that") {
		t.Errorf("the vendor is reported as having no policy:\n%s", out)
	}
}
