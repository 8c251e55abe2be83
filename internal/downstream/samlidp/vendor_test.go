package samlidp_test

import (
	"testing"

	"github.com/crewjam/saml"
	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/downstream/samlidp"
)

// TestCase22_UnsafeACSInMetadata: an ACS that a browser would be sent to
// must be an absolute https URL (http only in explicit dev mode); metadata
// naming anything else is refused as a whole.
func TestCase22_UnsafeACSInMetadata(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		location string
		// okProd and okDev say whether the metadata is accepted outside and
		// in dev mode.
		okProd, okDev bool
	}{
		{"https", "https://vendor.example.com/saml/acs", true, true},
		{"https with port and query", "https://vendor.example.com:8443/saml/acs?tenant=7", true, true},
		{"https upper-case scheme", "HTTPS://vendor.example.com/acs", true, true},
		{"plain http", "http://vendor.example.com/saml/acs", false, true},
		{"javascript", "javascript:alert(document.cookie)", false, false},
		{"javascript with a host", "javascript://vendor.example.com/%0Aalert(1)", false, false},
		{"JavaScript mixed case", "JaVaScRiPt:alert(1)", false, false},
		{"data", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", false, false},
		{"vbscript", "vbscript:msgbox(1)", false, false},
		{"file", "file:///etc/passwd", false, false},
		{"ftp", "ftp://vendor.example.com/acs", false, false},
		{"relative path", "/saml/acs", false, false},
		{"relative without slash", "saml/acs", false, false},
		{"scheme-relative", "//vendor.example.com/saml/acs", false, false},
		{"https without host", "https:///saml/acs", false, false},
		{"https opaque", "https:vendor.example.com/acs", false, false},
		{"userinfo", "https://user:secret@vendor.example.com/acs", false, false},
		{"userinfo hiding the host", "https://vendor.example.com@evil.example.net/acs", false, false},
		{"http with userinfo in dev mode", "http://user@localhost:8080/acs", false, false},
		{"fragment", "https://vendor.example.com/acs#top", false, false},
		{"empty", "", false, false},
		{"not a URL", "https://vendor.example.com/\x00acs", false, false},
	}
	for _, tc := range tests {
		for _, dev := range []bool{false, true} {
			name := tc.name + "/prod"
			want := tc.okProd
			if dev {
				name, want = tc.name+"/dev", tc.okDev
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				md := spMetadata("https://vendor.example.com/sp", false, []saml.IndexedEndpoint{
					postACS(0, "https://vendor.example.com/good", false),
					postACS(1, tc.location, false),
				})
				v, err := samlidp.VendorFromMetadata("vendor.xml", md, dev)
				if !want {
					if err == nil {
						t.Fatalf("metadata with ACS %q accepted: %+v", tc.location, v.ACS)
					}
					if v != nil {
						t.Errorf("refused metadata returned a vendor")
					}
					if err := samlidp.CheckBrowserURL(tc.location, dev); err == nil {
						t.Errorf("CheckBrowserURL(%q) accepted it", tc.location)
					}
					return
				}
				if err != nil {
					t.Fatalf("VendorFromMetadata: %v", err)
				}
				wantACS := []samlidp.ACS{{Index: 0, URL: "https://vendor.example.com/good"}, {Index: 1, URL: tc.location}}
				if diff := cmp.Diff(wantACS, v.ACS); diff != "" {
					t.Errorf("ACS (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestVendorFromMetadata covers the rest of what is read from a vendor's
// metadata: which endpoints and keys count, and what is refused.
func TestVendorFromMetadata(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	signing := saml.KeyDescriptor{Use: "signing", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: certData(fx.vendorSign)}}}
	both := saml.KeyDescriptor{KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: certData(fx.vendorEnc)}}}
	badCert := saml.KeyDescriptor{Use: "signing", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: []saml.X509Certificate{{Data: "bm90IGEgY2VydA=="}}}}}
	acs := []saml.IndexedEndpoint{postACS(3, "https://v.example.com/acs", false)}

	t.Run("unsafe ACS of another binding is ignored, not used", func(t *testing.T) {
		t.Parallel()
		md := spMetadata("https://v.example.com/sp", false, append([]saml.IndexedEndpoint{
			{Binding: samlidp.BindingRedirect, Location: "javascript:alert(1)", Index: 0},
		}, acs...))
		v, err := samlidp.VendorFromMetadata("v.xml", md, false)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]samlidp.ACS{{Index: 3, URL: "https://v.example.com/acs"}}, v.ACS); diff != "" {
			t.Errorf("ACS (-want +got):\n%s", diff)
		}
	})
	t.Run("key without use is for signing and encryption", func(t *testing.T) {
		t.Parallel()
		v, err := samlidp.VendorFromMetadata("v.xml", spMetadata("https://v.example.com/sp", false, acs, both), false)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.SigningCerts) != 1 || !v.SigningCerts[0].Equal(fx.vendorEnc.Cert) {
			t.Errorf("signing certs = %d, want the one key", len(v.SigningCerts))
		}
		if v.EncryptionCert == nil || !v.EncryptionCert.Equal(fx.vendorEnc.Cert) {
			t.Errorf("encryption cert is not the one key")
		}
	})
	refusals := []struct {
		name string
		md   *saml.EntityDescriptor
	}{
		{"no entityID", spMetadata("", false, acs)},
		{"no HTTP-POST ACS", spMetadata("https://v.example.com/sp", false, []saml.IndexedEndpoint{
			{Binding: samlidp.BindingRedirect, Location: "https://v.example.com/acs", Index: 0},
		})},
		{"AuthnRequestsSigned without a signing key", spMetadata("https://v.example.com/sp", true, acs)},
		{"certificate that does not parse", spMetadata("https://v.example.com/sp", false, acs, signing, badCert)},
		{"two SPSSODescriptors", &saml.EntityDescriptor{
			EntityID:         "https://v.example.com/sp",
			SPSSODescriptors: append(spMetadata("x", false, acs).SPSSODescriptors, spMetadata("x", false, acs).SPSSODescriptors...),
		}},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if v, err := samlidp.VendorFromMetadata("v.xml", tc.md, true); err == nil {
				t.Errorf("accepted: %+v", v)
			}
		})
	}
}
