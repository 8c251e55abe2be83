package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/demo"
)

// TestCase25_AssertionSignedOnceUnlessAsked: by default the bridge signs
// the assertion alone, as SAML2Int and the Skolfederation profile require
// (one RSA signature is most of a login's cost, issue 13); the Response is
// signed too when the vendor's policy says so, or when its metadata says
// WantAssertionsSigned="false" and the policy leaves the choice open. In
// every case the vendor (crewjam/saml) accepts the response.
func TestCase25_AssertionSignedOnceUnlessAsked(t *testing.T) {
	tests := []struct {
		name                 string
		sign                 string // the policy's saml.sign, "" for none
		wantAssertionsSigned string // the metadata's WantAssertionsSigned
		responseSigned       bool
		assertionSigned      bool
	}{
		{"default", "", "true", false, true},
		{"metadata_asks", "", "false", true, true},
		{"policy_both", "assertion_and_response", "true", true, true},
		{"policy_assertion_over_metadata", "assertion", "false", false, true},
		{"policy_response", "response", "true", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
				md := filepath.Join(d.Dir, "metadata", "learning-app.xml")
				b, err := os.ReadFile(md)
				must(t, err)
				if !strings.Contains(string(b), `WantAssertionsSigned="true"`) {
					t.Fatalf("the demo vendor's metadata has no WantAssertionsSigned")
				}
				b = []byte(strings.Replace(string(b), `WantAssertionsSigned="true"`, `WantAssertionsSigned="`+tc.wantAssertionsSigned+`"`, 1))
				must(t, os.WriteFile(md, b, 0o600))
				if tc.sign != "" {
					pf := filepath.Join(d.Dir, "attribute-release", "learning-app.yaml")
					p, err := os.ReadFile(pf)
					must(t, err)
					p = []byte(strings.Replace(string(p), "  name_id: transient\n", "  name_id: transient\n  sign: "+tc.sign+"\n", 1))
					must(t, os.WriteFile(pf, p, 0o600))
				}
			})
			res := e.login(newBrowser(t, e.srv.Client()), "learning-app", "anna.a")
			doc := etree.NewDocument()
			must(t, doc.ReadFromString(res.samlResponse))
			root := doc.Root()
			a := root.FindElement("./Assertion")
			if a == nil {
				t.Fatal("no plain assertion in the response")
			}
			if got := root.FindElement("./Signature") != nil; got != tc.responseSigned {
				t.Errorf("Response signed = %v, want %v", got, tc.responseSigned)
			}
			if got := a.FindElement("./Signature") != nil; got != tc.assertionSigned {
				t.Errorf("Assertion signed = %v, want %v", got, tc.assertionSigned)
			}
			if len(res.received.Attributes) == 0 {
				t.Errorf("the vendor received no attributes")
			}
		})
	}
}
