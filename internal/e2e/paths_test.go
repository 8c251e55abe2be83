package e2e

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/testidp"
)

// got is what a vendor received, whatever the protocol: attribute or
// claim name -> values, and the subject (NameID or sub).
type got struct {
	values  map[string][]string
	subject string
}

// loginAny runs one login for user at vendor (SAML or OIDC) through
// whichever upstream the env has (SAML or OIDC).
func (e *env) loginAny(b *browser, vendor, user string) got {
	e.t.Helper()
	ov := e.demo.OIDCVendor
	var start string
	var err error
	if vendor == ov.Name {
		start, err = ov.LoginURL(context.Background())
	} else {
		start, err = e.vendor(vendor).LoginURL("rs")
	}
	if err != nil {
		e.t.Fatal(err)
	}
	p := b.get(start)
	if p.status != http.StatusOK {
		e.t.Fatalf("expected the school IdP's picker, got %s: %.300s", p, p.body)
	}
	p = b.submit(p, url.Values{"user": {user}})
	if fs, _ := p.forms(); len(fs) == 1 && strings.HasSuffix(fs[0].action, "/saml/sp/acs") {
		p = b.submit(p, nil) // the SAML IdP's auto-post to the bridge
	}
	if vendor == ov.Name {
		if p.status != http.StatusOK || !strings.HasPrefix(p.url.Path, "/demo/vendor/"+ov.Name) {
			e.t.Fatalf("OIDC vendor did not complete: %s: %.300s", p, p.body)
		}
		c := ov.Last()
		out := got{values: map[string][]string{}, subject: c.Subject}
		for _, cl := range c.Claims {
			out.values[cl.Name] = cl.Values
		}
		return out
	}
	p = b.submit(p, nil) // the bridge's auto-post to the SAML vendor
	if p.status != http.StatusOK {
		e.t.Fatalf("SAML vendor refused: %s", p)
	}
	rec := e.vendor(vendor).Last()
	return got{values: attrs(rec), subject: rec.NameID}
}

var pairwiseSub = regexp.MustCompile(`^[a-z2-7]{16,64}$`)

// TestCase35_FourPaths: SAML in / SAML out, SAML in / OIDC out, OIDC in / SAML
// out, OIDC in / OIDC out, each asserting exactly what the policy releases.
func TestCase35_FourPaths(t *testing.T) {
	samlWant := map[string][]string{
		"eduPersonScopedAffiliation": {"student@" + demo.OrganiserScope},
		"givenName":                  nil, // checked against the user below
		"sisSchoolUnitCode":          {testidp.SchoolA},
		"eduPersonPrincipalName":     nil, // a pseudonym, checked by shape
	}
	oidcWant := map[string][]string{
		"eduperson_scoped_affiliation": {"student@" + demo.OrganiserScope},
		"given_name":                   nil,
		"sisSchoolUnitCode":            {testidp.SchoolA},
		"eduperson_principal_name":     nil,
	}
	for _, upstream := range []struct {
		name string
		opts demo.Options
	}{{"saml-in", demo.Options{}}, {"oidc-in", demo.Options{UpstreamOIDC: true}}} {
		t.Run(upstream.name, func(t *testing.T) {
			e := startEnvOpts(t, 1, memoryStore, nil, upstream.opts)
			for _, downstream := range []struct {
				vendor          string
				want            map[string][]string
				givenName, eppn string
			}{
				{"learning-app", samlWant, "givenName", "eduPersonPrincipalName"},
				{"oidc-app", oidcWant, "given_name", "eduperson_principal_name"},
			} {
				t.Run(downstream.vendor, func(t *testing.T) {
					g := e.loginAny(newBrowser(t, e.srv.Client()), downstream.vendor, "anna.a")
					var names, wantNames []string
					for n := range g.values {
						names = append(names, n)
					}
					for n := range downstream.want {
						wantNames = append(wantNames, n)
					}
					if diff := cmp.Diff(wantNames, names, sortStrings); diff != "" {
						t.Fatalf("released names (-want +got):\n%s", diff)
					}
					for n, v := range downstream.want {
						if v != nil {
							if diff := cmp.Diff(v, g.values[n]); diff != "" {
								t.Errorf("%s (-want +got):\n%s", n, diff)
							}
						}
					}
					if diff := cmp.Diff([]string{givenName(e, "anna.a")}, g.values[downstream.givenName]); diff != "" {
						t.Errorf("given name (-want +got):\n%s", diff)
					}
					if v := g.values[downstream.eppn]; len(v) != 1 || !eppnShape.MatchString(v[0]) {
						t.Errorf("EPPN %q is not a pseudonym in the organiser's scope", v)
					}
					if downstream.vendor == "oidc-app" && !pairwiseSub.MatchString(g.subject) {
						t.Errorf("sub %q is not an opaque pairwise identifier", g.subject)
					}
				})
			}
		})
	}
}

// The pairwise sub is stable for one vendor and never the upstream's.
func TestOIDC_PairwiseSubStable(t *testing.T) {
	e := startEnvOpts(t, 1, memoryStore, nil, demo.Options{UpstreamOIDC: true})
	a := e.loginAny(newBrowser(t, e.srv.Client()), "oidc-app", "anna.a")
	b := e.loginAny(newBrowser(t, e.srv.Client()), "oidc-app", "anna.a")
	c := e.loginAny(newBrowser(t, e.srv.Client()), "oidc-app", "bertil.b")
	u, _ := e.demo.IdP.User("anna.a")
	if a.subject != b.subject || a.subject == c.subject || a.subject == u.NameID {
		t.Errorf("sub: %q, %q (same person), %q (classmate); upstream sub must not appear", a.subject, b.subject, c.subject)
	}
}
