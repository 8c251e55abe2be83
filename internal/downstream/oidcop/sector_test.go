package oidcop

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/pseudonym"
	"github.com/skolbro/skolbro/internal/release"
)

// TestCase33_VendorsOnOneHostGetDifferentSubs loads two vendors' policy
// files whose apps run on one platform host, registers them as clients,
// logs the same pupil in at both through the whole flow and compares the
// sub of the ID token and of userinfo (SECURITY.md case 33): by default
// they differ; a sector both policies name gives the same sub; legacy-host
// gives the sub of the old derivation from the host.
func TestCase33_VendorsOnOneHostGetDifferentSubs(t *testing.T) {
	t.Parallel()
	const host = "apps.edtech.example"
	d, err := pseudonym.New(bytes.Repeat([]byte{7}, 32), "skola.example.se")
	if err != nil {
		t.Fatal(err)
	}
	stable := identity.NewSecret("pupil-stable-id")
	oldDerivation := d.PairwiseSub(stable, host)

	tests := []struct {
		name   string
		sector string // the oidc.sector line of both policies, or ""
		check  func(t *testing.T, quiz, grades string)
	}{
		{"default: the vendor", "", func(t *testing.T, quiz, grades string) {
			if quiz == grades {
				t.Errorf("two vendors on one host got the same sub %q", quiz)
			}
			if quiz == oldDerivation || grades == oldDerivation {
				t.Error("a vendor still gets the sub derived from the host")
			}
		}},
		{"a sector named by both", "  sector: edtech-platform\n", func(t *testing.T, quiz, grades string) {
			if quiz != grades {
				t.Errorf("an explicitly shared sector gave different subs %q, %q", quiz, grades)
			}
		}},
		{"legacy-host keeps the old sub", "  sector: legacy-host\n", func(t *testing.T, quiz, grades string) {
			if quiz != oldDerivation || grades != oldDerivation {
				t.Errorf("subs %q, %q; want the old derivation from the host, %q", quiz, grades, oldDerivation)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			dir := t.TempDir()
			uris := map[string]string{
				"quiz":   "https://" + host + "/quiz/callback",
				"grades": "https://" + host + "/grades/callback",
			}
			secrets := map[string]string{}
			for id, uri := range uris {
				secrets[id] = id + "-secret-" + strings.Repeat("x", 32)
				writeTestFile(t, filepath.Join(dir, id+".secret"), secrets[id])
				writeTestFile(t, filepath.Join(dir, id+".yaml"), "id: "+id+`
display_name: `+id+`
oidc:
  client_id: `+id+`-client
  redirect_uris: ["`+uri+`"]
  client_auth: client_secret_basic
  client_secret_file: `+id+`.secret
`+tt.sector+`purpose: "Quizzes and grades"
legal_basis: "Public interest task"
agreement:
  reference: "PUB-1"
  ends: 2099-12-31
attributes:
  - name: eduPersonPrincipalName
`)
			}
			pols, problems := policy.LoadDir(dir)
			if policy.HasErrors(problems) || len(pols) != 2 {
				t.Fatalf("policies: %v", problems)
			}
			clients := map[string]*Client{}
			byVendor := map[string]*policy.Policy{}
			for _, p := range pols {
				c, err := ClientFromPolicy(p)
				if err != nil {
					t.Fatal(err)
				}
				clients[c.ID] = c
				byVendor[p.ID] = p
			}
			f.p.Clients = clients
			if err := f.p.Validate(); err != nil {
				t.Fatal(err)
			}

			sub := func(vendor string) string {
				t.Helper()
				client := vendor + "-client"
				req, perr := f.parse(authParams(client, uris[vendor]))
				if perr != nil {
					t.Fatal(perr)
				}
				id := &identity.Identity{Upstream: "skola-idp", StableID: stable, Attributes: identity.Attributes{},
					AuthnInstant: f.clock.Now(), Protection: identity.ProtectionNone}
				loc, err := f.p.Complete(context.Background(), req, release.Release(byVendor[vendor], id, d))
				if err != nil {
					t.Fatal(err)
				}
				u, _ := url.Parse(loc)
				form := basicTokenForm(u.Query().Get("code"))
				form.Set("redirect_uri", uris[vendor])
				tr, e := decodeTokenResponse(t, f.postToken(form, client, secrets[vendor]))
				if e != "" {
					t.Fatalf("%s: token: %s", vendor, e)
				}
				claims, _ := f.idTokenClaims(tr.IDToken)
				s, _ := claims["sub"].(string)
				info := decodeJSON(t, f.userinfo(tr.AccessToken).Body.Bytes())
				if s == "" || info["sub"] != s {
					t.Fatalf("%s: ID token sub %q, userinfo sub %v", vendor, s, info["sub"])
				}
				return s
			}
			quiz, grades := sub("quiz"), sub("grades")
			if again := sub("quiz"); again != quiz {
				t.Errorf("sub at one vendor changed between logins: %q, %q", quiz, again)
			}
			tt.check(t, quiz, grades)
		})
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
