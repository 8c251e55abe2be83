package samlsp

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/skolbro/skolbro/internal/keys"
)

// spProvider hands crewjam's IdP the bridge's SP metadata.
type spProvider struct{ ed *saml.EntityDescriptor }

func (p spProvider) GetServiceProvider(_ *http.Request, id string) (*saml.EntityDescriptor, error) {
	if id != p.ed.EntityID {
		return nil, os.ErrNotExist
	}
	return p.ed, nil
}

// TestInteropCrewjamIdP logs in through crewjam/saml's IdentityProvider, a
// SAML IdP the project did not write: it parses the bridge's AuthnRequest
// and SP metadata, and writes and signs the response its own way
// (encoding/xml serialisation, signed Response and Assertion, KeyInfo,
// ECDSA signatures in ASN.1 form). crewjam reads the real clock through
// its package globals, so this test runs on the real clock too.
func TestInteropCrewjamIdP(t *testing.T) {
	tests := []struct {
		name      string
		alg       keys.Algorithm
		sigMethod string
		reason    string
	}{
		{"rsa_sha256", keys.RSA2048, dsig.RSASHA256SignatureMethod, ""},
		{"ecdsa_sha256_der", keys.P256, dsig.ECDSASHA256SignatureMethod, ""},
		// crewjam's default, RSA-SHA1: refused (SECURITY.md case 10).
		{"crewjam_default_rsa_sha1", keys.RSA2048, "", ReasonSHA1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			pair, err := keys.Generate("crewjam-idp", tc.alg, now)
			if err != nil {
				t.Fatal(err)
			}
			metaURL, _ := url.Parse("https://idp.crewjam.example.se/metadata")
			ssoURL, _ := url.Parse("https://idp.crewjam.example.se/sso")
			st := newMemStore(time.Now)
			sp, err := New(Config{
				EntityID: spEntityID, ACSURL: acsURL,
				IdPEntityID: metaURL.String(), IdPSSOURL: ssoURL.String(),
				IdPCerts: []*x509.Certificate{pair.Cert}, Store: st,
			})
			if err != nil {
				t.Fatal(err)
			}
			mdBytes, err := sp.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			var spMeta saml.EntityDescriptor
			if err := xml.Unmarshal(mdBytes, &spMeta); err != nil {
				t.Fatal(err)
			}
			idp := &saml.IdentityProvider{
				Signer:                  pair.Signer,
				Certificate:             pair.Cert,
				MetadataURL:             *metaURL,
				SSOURL:                  *ssoURL,
				ServiceProviderProvider: spProvider{&spMeta},
				SignatureMethod:         tc.sigMethod,
			}

			redirect, err := sp.StartLogin(context.Background(), browserA, []byte("state-for-"+browserA), "")
			if err != nil {
				t.Fatal(err)
			}
			httpReq := httptest.NewRequest(http.MethodGet, redirect, nil)
			req, err := saml.NewIdpAuthnRequest(idp, httpReq)
			if err != nil {
				t.Fatal(err)
			}
			if err := req.Validate(); err != nil {
				t.Fatalf("crewjam refuses the bridge's AuthnRequest: %v", err)
			}
			session := &saml.Session{
				ID: "s1", CreateTime: now, ExpireTime: now.Add(time.Hour), Index: "idx-1",
				NameID:       "crewjam-subject-1",
				NameIDFormat: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
				UserName:     "anna.a", UserGivenName: "Anna", UserSurname: "Andersson",
				EduPersonPrincipalName: "anna.a@" + scope,
			}
			if err := (saml.DefaultAssertionMaker{}).MakeAssertion(req, session); err != nil {
				t.Fatal(err)
			}
			if err := req.MakeResponse(); err != nil {
				t.Fatal(err)
			}
			doc := etree.NewDocument()
			doc.SetRoot(req.ResponseEl)
			b, err := doc.WriteToBytes()
			if err != nil {
				t.Fatal(err)
			}
			a, state, err := sp.HandleResponse(context.Background(), base64.StdEncoding.EncodeToString(b), browserA)
			if tc.reason != "" {
				e, ok := err.(*Error)
				if !ok || e.Reason != tc.reason || a != nil {
					t.Fatalf("got %v, want refusal %q", err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("HandleResponse: %v", err)
			}
			if string(state) != "state-for-"+browserA || a.NameID != "crewjam-subject-1" || a.Issuer != metaURL.String() ||
				a.SessionIndex != "idx-1" {
				t.Errorf("assertion = %+v", a)
			}
			if got := a.Attributes["urn:oid:1.3.6.1.4.1.5923.1.1.1.6"]; len(got) != 1 || got[0] != "anna.a@"+scope {
				t.Errorf("eduPersonPrincipalName = %q", got)
			}
			if got := a.Attributes["urn:oid:2.5.4.42"]; len(got) != 1 || got[0] != "Anna" {
				t.Errorf("givenName = %q", got)
			}
		})
	}
}
