package e2e

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skolbro/skolbro/internal/demo"
)

// TestCase25_CBCOnlyVendorThroughBridge: the demo vendor is a crewjam/saml
// v0.5.1 ServiceProvider, whose metadata, published whole here, lists an
// encryption key with AES-CBC methods only. With encrypt: cbc in its
// policy, a whole login delivers an assertion encrypted with AES-256-CBC
// that the vendor decrypts and reads; the logs of the flow hold no
// personal data.
func TestCase25_CBCOnlyVendorThroughBridge(t *testing.T) {
	e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
		v := d.Vendors[0]
		for _, dv := range d.Vendors {
			if dv.Name == "learning-app" {
				v = dv
			}
		}
		md, err := xml.MarshalIndent(v.SP.Metadata(), "", "  ")
		must(t, err)
		if !strings.Contains(string(md), `use="encryption"`) || strings.Contains(string(md), "gcm") {
			t.Fatal("crewjam/saml's metadata does not list a CBC-only encryption key: the test would prove nothing")
		}
		must(t, os.WriteFile(filepath.Join(d.Dir, "metadata", "learning-app.xml"), md, 0o600))
		pf := filepath.Join(d.Dir, "attribute-release", "learning-app.yaml")
		pol, err := os.ReadFile(pf)
		must(t, err)
		edited := strings.Replace(string(pol), "  name_id: transient\n", "  name_id: transient\n  encrypt: cbc\n", 1)
		if edited == string(pol) {
			t.Fatal("the demo policy has no name_id line to add encrypt after")
		}
		must(t, os.WriteFile(pf, []byte(edited), 0o600))
	})
	user := e.demo.IdP.Users[0].Login
	res := e.login(newBrowser(t, e.srv.Client()), "learning-app", user)
	if !strings.Contains(res.samlResponse, "EncryptedAssertion") || !strings.Contains(res.samlResponse, "xmlenc#aes256-cbc") {
		t.Errorf("the vendor was not sent an assertion encrypted with aes256-cbc")
	}
	if strings.Contains(res.samlResponse, "<saml:Assertion") {
		t.Errorf("the response carries a plain assertion")
	}
	got := attrs(res.received)
	if len(got["eduPersonPrincipalName"]) != 1 {
		t.Errorf("the vendor read no EPPN from the decrypted assertion: %v", got)
	}
	checkLogs(t, e, e.logs.String())
}
