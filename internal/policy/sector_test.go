package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// oidcPolicy is a valid OIDC policy file for vendor id whose redirect URIs
// are uris, with extra lines in its oidc section.
func oidcPolicy(id string, uris []string, oidcExtra string) string {
	return "id: " + id + `
display_name: ` + id + `
oidc:
  client_id: ` + id + `-client
  redirect_uris: ["` + strings.Join(uris, `", "`) + `"]
  client_auth: client_secret_basic
  client_secret_file: ` + id + `.secret
` + oidcExtra + `purpose: "Quizzes and grades"
legal_basis: "Public interest task"
agreement:
  reference: "PUB-1"
  ends: 2099-12-31
attributes:
  - name: eduPersonPrincipalName
`
}

func writePolicies(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func byID(t *testing.T, policies []*Policy) map[string]*Policy {
	t.Helper()
	m := map[string]*Policy{}
	for _, p := range policies {
		m[p.ID] = p
	}
	return m
}

const (
	quizURI   = "https://apps.edtech.example/quiz/callback"
	gradesURI = "https://apps.edtech.example/grades/callback"
	edtech    = "apps.edtech.example"
)

// Two vendors whose apps run on one platform host get a sector each: the
// vendor, not the host (SECURITY.md case 33).
func TestCase33_DefaultSectorIsTheVendor(t *testing.T) {
	t.Parallel()
	dir := writePolicies(t, map[string]string{
		"quiz.yaml":   oidcPolicy("quiz", []string{quizURI}, ""),
		"grades.yaml": oidcPolicy("grades", []string{gradesURI}, ""),
	})
	policies, problems := LoadDir(dir, At(testNow))
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	got := byID(t, policies)
	for id, want := range map[string]string{"quiz": "vendor/quiz", "grades": "vendor/grades"} {
		o := got[id].OIDC
		if o.Sector != want || o.SectorKind != SectorVendor {
			t.Errorf("%s: sector %q (%s), want %q (vendor)", id, o.Sector, o.SectorKind, want)
		}
	}
	if got["quiz"].OIDC.Sector == got["grades"].OIDC.Sector {
		t.Error("two vendors on one host share a sector")
	}
}

// A sector two policies name on purpose is shared, and both files are
// warned about, each naming the other's file, line and key.
func TestCase33_SharedSectorReported(t *testing.T) {
	t.Parallel()
	dir := writePolicies(t, map[string]string{
		"quiz.yaml":   oidcPolicy("quiz", []string{quizURI}, "  sector: edtech-platform\n"),
		"grades.yaml": oidcPolicy("grades", []string{gradesURI}, "  sector: edtech-platform\n"),
		"other.yaml":  oidcPolicy("other", []string{"https://other.example/cb"}, ""),
	})
	policies, problems := LoadDir(dir, At(testNow))
	if HasErrors(problems) {
		t.Fatalf("errors: %v", problems)
	}
	got := byID(t, policies)
	if q, g := got["quiz"].OIDC, got["grades"].OIDC; q.Sector != "edtech-platform" || g.Sector != q.Sector || q.SectorKind != SectorNamed {
		t.Fatalf("sectors %q (%s), %q: want both edtech-platform (named)", q.Sector, q.SectorKind, g.Sector)
	}
	if len(problems) != 2 {
		t.Fatalf("want one warning per sharing policy, got %d:\n%v", len(problems), problems)
	}
	for _, p := range problems {
		other := "grades"
		if filepath.Base(p.File) == "grades.yaml" {
			other = "quiz"
		}
		if !p.Warning || p.Key != "oidc.sector" || p.Line != 8 ||
			!strings.Contains(p.Message, "SHARED PAIRWISE SECTOR") ||
			!strings.Contains(p.Message, filepath.Join(dir, other+".yaml")+":8: oidc.sector") {
			t.Errorf("warning does not name both files and the key: %s", p)
		}
	}
}

// sector: legacy-host keeps the old derivation (the redirect URIs' host)
// with a warning; two vendors keeping it on one host are warned about as
// sharing; the host written out is the same as legacy-host.
func TestCase33_LegacyHostSector(t *testing.T) {
	t.Parallel()
	dir := writePolicies(t, map[string]string{
		"quiz.yaml":   oidcPolicy("quiz", []string{quizURI}, "  sector: legacy-host\n"),
		"grades.yaml": oidcPolicy("grades", []string{gradesURI}, "  sector: "+edtech+"\n"),
	})
	policies, problems := LoadDir(dir, At(testNow))
	if HasErrors(problems) {
		t.Fatalf("errors: %v", problems)
	}
	got := byID(t, policies)
	if o := got["quiz"].OIDC; o.Sector != edtech || o.SectorKind != SectorLegacyHost {
		t.Errorf("quiz: sector %q (%s), want %q (legacy-host)", o.Sector, o.SectorKind, edtech)
	}
	if o := got["grades"].OIDC; o.Sector != edtech || o.SectorKind != SectorNamed {
		t.Errorf("grades: sector %q (%s), want %q (named)", o.Sector, o.SectorKind, edtech)
	}
	legacy, shared := map[string]bool{}, map[string]bool{}
	for _, p := range problems {
		name := filepath.Base(p.File)
		switch {
		case !p.Warning || p.Key != "oidc.sector":
			t.Errorf("unexpected problem: %s", p)
		case strings.Contains(p.Message, "the redirect URIs' host "+edtech):
			legacy[name] = true
		case strings.Contains(p.Message, "SHARED PAIRWISE SECTOR"):
			shared[name] = true
		}
	}
	want := map[string]bool{"quiz.yaml": true, "grades.yaml": true}
	if diff := cmp.Diff(want, legacy); diff != "" {
		t.Errorf("legacy warnings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, shared); diff != "" {
		t.Errorf("sharing warnings (-want +got):\n%s", diff)
	}
}

// An OIDC sector that is another vendor's SAML entityID shares the
// pairwise-id: warned about as well.
func TestSectorSharedWithSAMLEntityID(t *testing.T) {
	t.Parallel()
	const entity = "https://sp.edtech.example/shibboleth"
	saml := "id: saml-vendor\ndisplay_name: S\nsaml:\n  entity_id: " + entity + "\npurpose: p\nlegal_basis: l\nagreement:\n  reference: r\n  ends: 2099-12-31\nattributes:\n  - name: pairwise-id\n"
	dir := writePolicies(t, map[string]string{
		"saml.yaml": saml,
		"quiz.yaml": oidcPolicy("quiz", []string{quizURI}, "  sector: "+entity+"\n"),
	})
	_, problems := LoadDir(dir, At(testNow))
	keys := map[string]string{}
	for _, p := range problems {
		if p.Warning && strings.Contains(p.Message, "SHARED PAIRWISE SECTOR") {
			keys[filepath.Base(p.File)] = p.Key
		}
	}
	if diff := cmp.Diff(map[string]string{"saml.yaml": "saml.entity_id", "quiz.yaml": "oidc.sector"}, keys); diff != "" {
		t.Errorf("sharing warnings (-want +got):\n%s", diff)
	}
}

func TestSectorRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, extra string
		uris        []string
		want        string
	}{
		{"another vendor's default", "  sector: vendor/grades\n", []string{quizURI}, "vendors' own defaults"},
		{"legacy-host over two hosts", "  sector: legacy-host\n", []string{quizURI, "https://quiz.example/cb"}, "legacy-host needs redirect URIs on one host"},
		{"control character", "  sector: \"a\\tb\"\n", []string{quizURI}, "without control characters"},
		{"too long", "  sector: " + strings.Repeat("s", maxSectorLen+1) + "\n", []string{quizURI}, "at most 255 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := writePolicies(t, map[string]string{"quiz.yaml": oidcPolicy("quiz", tt.uris, tt.extra)})
			p, problems := LoadFile(filepath.Join(dir, "quiz.yaml"), At(testNow))
			if p != nil || len(problems) != 1 || problems[0].Key != "oidc.sector" || !strings.Contains(problems[0].Message, tt.want) {
				t.Errorf("want one error at oidc.sector containing %q, got %v", tt.want, problems)
			}
		})
	}

	t.Run("no sector and several hosts is the vendor's own", func(t *testing.T) {
		t.Parallel()
		dir := writePolicies(t, map[string]string{"quiz.yaml": oidcPolicy("quiz", []string{quizURI, "https://quiz.example/cb"}, "")})
		p, problems := LoadFile(filepath.Join(dir, "quiz.yaml"), At(testNow))
		if p == nil || len(problems) != 0 || p.OIDC.Sector != "vendor/quiz" {
			t.Errorf("policy %v, problems %v", p, problems)
		}
	})
}
