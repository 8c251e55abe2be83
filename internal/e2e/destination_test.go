package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/crewjam/saml"
)

// TestCase24_SignedRequestWithoutDestinationRefusedByBridge: through the
// whole bridge, a vendor's signed AuthnRequest (crewjam/saml signs the
// Redirect binding) without Destination, or with another IdP's, gets the
// error page for bad vendor requests: no login starts, nothing is posted
// anywhere, and the refusal is logged with its reason and without personal
// data. The same request with the bridge's SSO URL as Destination starts
// the login.
func TestCase24_SignedRequestWithoutDestinationRefusedByBridge(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	v := e.vendor("learning-app")
	if v.SP.SignatureMethod == "" {
		t.Fatal("the demo vendor does not sign its requests: the test would prove nothing")
	}
	start := func(t *testing.T, destination string) page {
		t.Helper()
		req, err := v.SP.MakeAuthenticationRequest(v.SP.GetSSOBindingLocation(saml.HTTPRedirectBinding), saml.HTTPRedirectBinding, saml.HTTPPostBinding)
		must(t, err)
		sso := req.Destination
		req.Destination = destination
		u, err := req.Redirect("rs-destination", v.SP)
		must(t, err)
		if u.Query().Get("Signature") == "" {
			t.Fatal("request is not signed")
		}
		// crewjam/saml sends the browser to the Destination; the browser
		// goes to the bridge all the same.
		return newBrowser(t, e.srv.Client()).get(sso + "?" + u.RawQuery)
	}

	t.Run("signed, Destination is the bridge", func(t *testing.T) {
		p := start(t, v.SP.GetSSOBindingLocation(saml.HTTPRedirectBinding))
		if p.status != http.StatusOK || p.url.Path != "/demo/idp/sso" {
			t.Fatalf("expected the test IdP's picker, got %s", p)
		}
	})
	t.Run("signed, no Destination", func(t *testing.T) {
		p := start(t, "")
		assertErrorPage(t, p, http.StatusBadRequest)
		if p.url.Path == "/demo/idp/sso" {
			t.Error("the browser was sent on to the school IdP")
		}
	})
	t.Run("signed, another IdP's Destination", func(t *testing.T) {
		assertErrorPage(t, start(t, "https://other-idp.example.se/saml/sso"), http.StatusBadRequest)
	})

	logs := e.logs.String()
	for _, reason := range []string{`"reason":"vendor_no_destination"`, `"reason":"vendor_destination"`} {
		if !strings.Contains(logs, reason) {
			t.Errorf("the refusal was not logged with %s", reason)
		}
	}
	checkLogs(t, e, logs)
}
