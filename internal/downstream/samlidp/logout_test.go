package samlidp_test

import (
	"strings"
	"testing"

	"github.com/crewjam/saml"

	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/samlslo"
)

func sloMetadata(t *testing.T, slo []saml.Endpoint, withKey bool) *saml.EntityDescriptor {
	t.Helper()
	var kds []saml.KeyDescriptor
	if withKey {
		kds = append(kds, saml.KeyDescriptor{Use: "signing", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: certData(genKey(t, "slo-vendor", keys.RSA2048))}}})
	}
	md := spMetadata("https://vendor.example.com/sp", false, []saml.IndexedEndpoint{postACS(0, "https://vendor.example.com/acs", true)}, kds...)
	md.SPSSODescriptors[0].SingleLogoutServices = slo
	return md
}

// TestCase50_VendorSLOEndpoints: a vendor's SingleLogoutService must be a
// URL a browser may be sent to (like its ACS, case 22); SOAP endpoints are
// not used; and a vendor without a signing key is sent no logout
// requests, since its answers could not be verified.
func TestCase50_VendorSLOEndpoints(t *testing.T) {
	t.Parallel()
	good := []saml.Endpoint{
		{Binding: samlidp.BindingRedirect, Location: "https://vendor.example.com/slo"},
		{Binding: "urn:oasis:names:tc:SAML:2.0:bindings:SOAP", Location: "https://vendor.example.com/soap"},
		{Binding: samlidp.BindingPOST, Location: "https://vendor.example.com/slo-post", ResponseLocation: "https://vendor.example.com/slo-answer"},
	}
	v, err := samlidp.VendorFromMetadata("v.xml", sloMetadata(t, good, true), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.SLO) != 2 || v.SLO[0].Binding != samlidp.BindingRedirect || v.SLO[1].ResponseURL() != "https://vendor.example.com/slo-answer" {
		t.Errorf("SLO endpoints %+v", v.SLO)
	}
	v, err = samlidp.VendorFromMetadata("v.xml", sloMetadata(t, good, false), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.SLO) != 0 || !v.SLONoKey {
		t.Errorf("a vendor without a signing key keeps SLO endpoints %+v", v.SLO)
	}
	for _, bad := range []string{"javascript:alert(1)", "http://vendor.example.com/slo", "data:text/html,x", "/slo"} {
		for _, ep := range []saml.Endpoint{
			{Binding: samlidp.BindingRedirect, Location: bad},
			{Binding: samlidp.BindingPOST, Location: "https://vendor.example.com/slo", ResponseLocation: bad},
		} {
			if _, err := samlidp.VendorFromMetadata("v.xml", sloMetadata(t, []saml.Endpoint{ep}, true), false); err == nil {
				t.Errorf("SingleLogoutService %+v accepted", ep)
			}
		}
	}
}

// TestIdPMetadataListsSLO: the IdP metadata lists the SingleLogoutService
// in both bindings when the IdP has one, and none otherwise.
func TestIdPMetadataListsSLO(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	b, err := fx.idp.Metadata(0)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "SingleLogoutService") {
		t.Errorf("metadata lists SLO without an SLO URL")
	}
	fx.idp.SLOURL = "https://bridge.example.se/saml/idp/slo"
	b, err = fx.idp.Metadata(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, binding := range []string{samlslo.BindingRedirect, samlslo.BindingPOST} {
		if !strings.Contains(string(b), `<md:SingleLogoutService Binding="`+binding+`" Location="https://bridge.example.se/saml/idp/slo"/>`) {
			t.Errorf("metadata lacks SingleLogoutService for %s:\n%s", binding, b)
		}
	}
}
