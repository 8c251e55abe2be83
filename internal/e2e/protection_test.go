package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/protection"
	"github.com/skolbro/skolbro/internal/protection/ss12000test"
	"github.com/skolbro/skolbro/internal/testidp"
)

// protectionEnv starts the demo with every protection source configured:
// the upstream attribute, the manual register (cecilia.c is in it) and a
// fake SS 12000 API (bertil.b has sekretessmarkering there). The
// learning-app policy replaces the school unit code for sekretessmarkering.
func protectionEnv(t *testing.T, opts demo.Options, tweak func(d *demo.Demo, ss *ss12000test.Server)) (*env, *ss12000test.Server) {
	t.Helper()
	const token = "ss12000-test-token-0123456789abcdef"
	ss := ss12000test.New(t, token)
	e := startEnvOpts(t, 1, memoryStore, func(d *demo.Demo) {
		write := func(name string, b []byte) {
			if err := os.WriteFile(filepath.Join(d.Dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write("keys/ss12000.token", []byte(token))
		write("keys/ss12000-ca.pem", ss.CACertPEM())
		write("keys/register.key", registerKey)
		cfg := filepath.Join(d.Dir, "skolbro.yaml")
		b, _ := os.ReadFile(cfg)
		section := fmt.Sprintf(`  protection:
    register:
      key_file: keys/register.key
      file: register.json
    ss12000:
      base_url: %s
      token_file: keys/ss12000.token
      ca_file: keys/ss12000-ca.pem
      timeout: 300ms
  metadata_dir: metadata`, ss.URL())
		write("skolbro.yaml", []byte(strings.Replace(string(b), "  metadata_dir: metadata", section, 1)))
		pol := filepath.Join(d.Dir, "attribute-release", "learning-app.yaml")
		pb, _ := os.ReadFile(pol)
		write("attribute-release/learning-app.yaml", append(pb, []byte(`protected:
  - attribute: sisSchoolUnitCode
    levels: [sekretessmarkering]
    action: replace
    value: "00000000"
`)...))
		reg, err := protection.NewRegister(protection.NewFileRegister(filepath.Join(d.Dir, "register.json")), registerKey)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range d.IdP.Users {
			pnr := u.Attributes[testidp.AttrPersonalNumber][0]
			ss.Set(pnr, "Ingen")
			switch u.Login {
			case "bertil.b":
				ss.Set(pnr, testidp.MarkingSecrecy)
			case "cecilia.c":
				p, _ := parsePNR(pnr)
				if err := reg.Add(context.Background(), p, "", time.Now()); err != nil {
					t.Fatal(err)
				}
			}
		}
		if tweak != nil {
			tweak(d, ss)
		}
	}, opts)
	return e, ss
}

// registerKey is a raw binary key file, as `head -c 32 /dev/urandom` makes.
var registerKey = bytes.Repeat([]byte{0x8f, 0x01, 0xfe, 0x7a}, 10)

// The policies' full approved sets, by vendor, in the vendor's naming.
var fullSets = map[string][]string{
	"learning-app":   {"eduPersonPrincipalName", "eduPersonScopedAffiliation", "givenName", "sisSchoolUnitCode"},
	"national-tests": {"eduPersonPrincipalName", "eduPersonScopedAffiliation"},
	"oidc-app":       {"eduperson_principal_name", "eduperson_scoped_affiliation", "given_name", "sisSchoolUnitCode"},
}

// maskedSets is what a protected pupil's release may hold at most.
var maskedSets = map[string][]string{
	"learning-app":   {"eduPersonPrincipalName", "eduPersonScopedAffiliation"},
	"national-tests": {"eduPersonPrincipalName", "eduPersonScopedAffiliation"},
	"oidc-app":       {"eduperson_principal_name", "eduperson_scoped_affiliation"},
}

func names(g got) []string {
	var out []string
	for n := range g.values {
		out = append(out, n)
	}
	return out
}

// assertMasked checks a protected pupil's release: only the masked set
// (plus the policy's replacements), no withheld value, no school unit
// code, no personal number.
func assertMasked(t *testing.T, e *env, vendor, login string, g got, replaced map[string]string) {
	t.Helper()
	want := append([]string(nil), maskedSets[vendor]...)
	for n := range replaced {
		want = append(want, n)
	}
	if diff := cmp.Diff(want, names(g), sortStrings); diff != "" {
		t.Errorf("%s for %s (-want +got):\n%s", vendor, login, diff)
	}
	for n, v := range replaced {
		if diff := cmp.Diff([]string{v}, g.values[n]); diff != "" {
			t.Errorf("replacement of %s (-want +got):\n%s", n, diff)
		}
	}
	assertNoSecrets(t, e, login, g)
}

func assertNoSecrets(t *testing.T, e *env, login string, g got) {
	t.Helper()
	u, _ := e.demo.IdP.User(login)
	pnr := u.Attributes[testidp.AttrPersonalNumber][0]
	secret := []string{pnr, pnr[2:], u.Attributes[testidp.AttrGivenName][0], u.Attributes[testidp.AttrSurname][0]}
	secret = append(secret, u.Attributes[testidp.AttrSchoolUnitCode]...)
	for _, vs := range g.values {
		for _, v := range vs {
			for _, s := range secret {
				if strings.Contains(v, s) {
					t.Errorf("a withheld value reached the vendor")
				}
			}
		}
	}
	if strings.Contains(g.subject, pnr[2:]) {
		t.Errorf("the subject carries the personal number")
	}
}

// TestCase36_ProtectionMatrix: every policy × every protection status × every
// downstream protocol (SAML vendors learning-app and national-tests, the
// OIDC vendor oidc-app).
func TestCase36_ProtectionMatrix(t *testing.T) {
	e, _ := protectionEnv(t, demo.Options{}, nil)
	statuses := []struct {
		name, login string
		protected   bool
		replaced    map[string]map[string]string // vendor -> attribute -> value
	}{
		{"no marking", "anna.a", false, nil},
		{"sekretessmarkering (SS 12000)", "bertil.b", true, map[string]map[string]string{"learning-app": {"sisSchoolUnitCode": "00000000"}}},
		{"skyddad folkbokföring (upstream attribute)", "eva.e", true, nil},
		{"manual register", "cecilia.c", true, nil},
	}
	for _, st := range statuses {
		for _, vendor := range []string{"learning-app", "national-tests", "oidc-app"} {
			t.Run(st.name+"/"+vendor, func(t *testing.T) {
				g := e.loginAny(newBrowser(t, e.srv.Client()), vendor, st.login)
				if !st.protected {
					if diff := cmp.Diff(fullSets[vendor], names(g), sortStrings); diff != "" {
						t.Errorf("an unprotected pupil's release (-want +got):\n%s", diff)
					}
					assertNoSecretsButApproved(t, e, st.login, g)
					return
				}
				assertMasked(t, e, vendor, st.login, g, st.replaced[vendor])
			})
		}
	}
	checkLogs(t, e, e.logs.String())
}

// assertNoSecretsButApproved: an unprotected pupil's release carries no
// personal number (the approved name and school are allowed).
func assertNoSecretsButApproved(t *testing.T, e *env, login string, g got) {
	t.Helper()
	u, _ := e.demo.IdP.User(login)
	pnr := u.Attributes[testidp.AttrPersonalNumber][0]
	for _, vs := range g.values {
		for _, v := range vs {
			if strings.Contains(v, pnr[2:]) {
				t.Errorf("a personal number reached the vendor")
			}
		}
	}
}

// TestCase36_SourcesFailingMask: when any configured source fails, an
// unmarked pupil is masked for that login (fail closed), and the login
// still completes.
func TestCase36_SourcesFailingMask(t *testing.T) {
	cases := []struct {
		name  string
		tweak func(d *demo.Demo, ss *ss12000test.Server)
	}{
		{"ss12000 times out", func(_ *demo.Demo, ss *ss12000test.Server) { ss.SetDelay(2 * time.Second) }},
		{"ss12000 answers 500", func(_ *demo.Demo, ss *ss12000test.Server) { ss.SetFailing(500) }},
		{"register file missing", func(d *demo.Demo, _ *ss12000test.Server) { os.Remove(filepath.Join(d.Dir, "register.json")) }},
		{"upstream attribute missing", func(d *demo.Demo, _ *ss12000test.Server) {
			cfg := filepath.Join(d.Dir, "skolbro.yaml")
			b, _ := os.ReadFile(cfg)
			os.WriteFile(cfg, []byte(strings.Replace(string(b), "security_marking: "+testidp.AttrSecurityMarking, "security_marking: urn:x:never-sent", 1)), 0o600)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := protectionEnv(t, demo.Options{}, tc.tweak)
			for _, vendor := range []string{"learning-app", "oidc-app"} {
				g := e.loginAny(newBrowser(t, e.srv.Client()), vendor, "anna.a")
				assertMasked(t, e, vendor, "anna.a", g, nil)
			}
			if !strings.Contains(e.logs.String(), "protection source failed") {
				t.Errorf("the source failure was not logged")
			}
			checkLogs(t, e, e.logs.String())
		})
	}
}
