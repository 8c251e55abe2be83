package e2e

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/crewjam/saml"
)

// A vendor asking for a passive login the school IdP cannot give (it has
// no session: the bridge asks it, case 48), or for a NameID format its
// policy does not give, gets a signed SAML status at its ACS (NoPassive,
// InvalidNameIDPolicy) instead of a dead-end page, and nothing is
// released.
func TestSAMLStatusAnswers(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	cases := []struct {
		name, vendor, want string
		change             func(sp *saml.ServiceProvider) func()
	}{
		{"passive", "learning-app", "NoPassive", nil},
		{"persistent asked of a transient policy", "learning-app", "InvalidNameIDPolicy", func(sp *saml.ServiceProvider) func() {
			old := sp.AuthnNameIDFormat
			sp.AuthnNameIDFormat = saml.PersistentNameIDFormat
			return func() { sp.AuthnNameIDFormat = old }
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := e.vendor(tc.vendor)
			if tc.change != nil {
				defer tc.change(v.SP)()
			}
			req, err := v.SP.MakeAuthenticationRequest(v.SP.GetSSOBindingLocation(saml.HTTPRedirectBinding), saml.HTTPRedirectBinding, saml.HTTPPostBinding)
			must(t, err)
			if tc.name == "passive" {
				req.IsPassive = new(bool)
				*req.IsPassive = true
			}
			u, err := req.Redirect("rs-status", v.SP)
			must(t, err)
			b := newBrowser(t, e.srv.Client())
			p := b.get(u.String())
			if fs, _ := p.forms(); tc.name == "passive" && len(fs) == 1 && strings.HasSuffix(fs[0].action, "/saml/sp/acs") {
				p = b.submit(p, nil) // the school IdP's NoPassive, to the bridge
			}
			if p.status != http.StatusOK {
				t.Fatalf("status answer: %s: %.300s", p, p.body)
			}
			fs, err := p.forms()
			if err != nil || len(fs) != 1 || fs[0].action != v.Base+"/acs" {
				t.Fatalf("expected an auto-post to the vendor's ACS, got %s", p)
			}
			xml, err := base64.StdEncoding.DecodeString(fs[0].fields.Get("SAMLResponse"))
			must(t, err)
			if !strings.Contains(string(xml), "status:"+tc.want) || strings.Contains(string(xml), "Assertion") {
				t.Errorf("response lacks %s or carries an assertion: %.400s", tc.want, xml)
			}
			if fs[0].fields.Get("RelayState") != "rs-status" {
				t.Errorf("RelayState not passed back")
			}
		})
	}
}

// A vendor whose policy gives a pairwise (persistent) NameID but who asks
// for a transient one gets the transient one: less than the policy allows.
func TestTransientAskedOfPairwisePolicy(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	res := e.login(newBrowser(t, e.srv.Client()), "national-tests", "anna.a")
	if res.received.NameFormat != string(saml.TransientNameIDFormat) {
		t.Errorf("NameID format %q, want transient", res.received.NameFormat)
	}
}
