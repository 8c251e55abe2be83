package fedmeta

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// testKeys are generated once per test binary: RSA generation is slow.
// The operator's key signs aggregates; the other key is an attacker's.
var testKeys = sync.OnceValue(func() (k struct{ operator, other, ecdsa *keys.Pair }) {
	var err error
	now := time.Now()
	if k.operator, err = keys.Generate("operator", keys.RSA2048, now); err != nil {
		panic(err)
	}
	if k.other, err = keys.Generate("other", keys.RSA2048, now); err != nil {
		panic(err)
	}
	if k.ecdsa, err = keys.Generate("ecdsa", keys.P256, now); err != nil {
		panic(err)
	}
	return k
})

func signerFor(t testing.TB, p *keys.Pair) *xmlsig.Signer {
	t.Helper()
	s, err := xmlsig.NewSigner(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clock is a settable clock shared by a test's Sources.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// aggOpts describes a generated aggregate.
type aggOpts struct {
	entities      int
	id            string    // root ID; "" for none
	validUntil    time.Time // zero: no validUntil attribute
	cacheDuration string    // "" for none
	prolog        string    // text before the root element
}

// aggregateXML generates an unsigned EntitiesDescriptor with alternating
// IdP and SP entities shaped like federation members' metadata: endpoints,
// keys, mdui, organisation and contacts.
func aggregateXML(o aggOpts) []byte {
	cert := base64.StdEncoding.EncodeToString(testKeys().other.Cert.Raw)
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(o.prolog)
	b.WriteString(`<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:shibmd="urn:mace:shibboleth:metadata:1.0" xmlns:mdui="urn:oasis:names:tc:SAML:metadata:ui" Name="urn:test:federation"`)
	if o.id != "" {
		fmt.Fprintf(&b, ` ID="%s"`, o.id)
	}
	if !o.validUntil.IsZero() {
		fmt.Fprintf(&b, ` validUntil="%s"`, o.validUntil.UTC().Format(time.RFC3339))
	}
	if o.cacheDuration != "" {
		fmt.Fprintf(&b, ` cacheDuration="%s"`, o.cacheDuration)
	}
	b.WriteString(">\n")
	for i := range o.entities {
		if i%2 == 0 {
			fmt.Fprintf(&b, `<md:EntityDescriptor entityID="https://idp%[1]d.example.se/idp">
 <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
  <md:Extensions>
   <shibmd:Scope regexp="false">school%[1]d.example.se</shibmd:Scope>
   <shibmd:Scope regexp="true">^.*\.school%[1]d\.example\.se$</shibmd:Scope>
   <mdui:UIInfo><mdui:DisplayName xml:lang="sv">Skola %[1]d</mdui:DisplayName><mdui:DisplayName xml:lang="en">School %[1]d</mdui:DisplayName></mdui:UIInfo>
  </md:Extensions>
  <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>%[2]s</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
  <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp%[1]d.example.se/sso/redirect"/>
  <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp%[1]d.example.se/sso/post"/>
 </md:IDPSSODescriptor>
 <md:Organization><md:OrganizationName xml:lang="sv">Kommun %[1]d</md:OrganizationName><md:OrganizationDisplayName xml:lang="sv">Kommun %[1]d</md:OrganizationDisplayName><md:OrganizationURL xml:lang="sv">https://kommun%[1]d.example.se/</md:OrganizationURL></md:Organization>
 <md:ContactPerson contactType="technical"><md:GivenName>Drift</md:GivenName><md:EmailAddress>mailto:drift@kommun%[1]d.example.se</md:EmailAddress></md:ContactPerson>
</md:EntityDescriptor>
`, i, cert)
		} else {
			// Every other SP announces ECDSA first (alg:SigningMethod).
			algs := ""
			if i%4 == 3 {
				algs = `<alg:SigningMethod xmlns:alg="urn:oasis:names:tc:SAML:metadata:algsupport" Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/><alg:SigningMethod xmlns:alg="urn:oasis:names:tc:SAML:metadata:algsupport" Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>`
			}
			fmt.Fprintf(&b, `<md:EntityDescriptor entityID="https://sp%[1]d.example.com/saml">
 <md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
  <md:Extensions>%[3]s<mdui:UIInfo><mdui:DisplayName xml:lang="en">Learning app %[1]d</mdui:DisplayName><mdui:Description xml:lang="en">A service for pupils and teachers.</mdui:Description></mdui:UIInfo></md:Extensions>
  <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>%[2]s</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
  <md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>%[2]s</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
  <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</md:NameIDFormat>
  <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp%[1]d.example.com/saml/acs" index="0"/>
 </md:SPSSODescriptor>
 <md:Organization><md:OrganizationName xml:lang="en">Vendor %[1]d</md:OrganizationName><md:OrganizationDisplayName xml:lang="en">Vendor %[1]d</md:OrganizationDisplayName><md:OrganizationURL xml:lang="en">https://vendor%[1]d.example.com/</md:OrganizationURL></md:Organization>
 <md:ContactPerson contactType="technical"><md:EmailAddress>mailto:ops@vendor%[1]d.example.com</md:EmailAddress></md:ContactPerson>
</md:EntityDescriptor>
`, i, cert, algs)
		}
	}
	b.WriteString("</md:EntitiesDescriptor>\n")
	return b.Bytes()
}

// signXML signs the root of doc with signer and returns the document.
func signXML(t testing.TB, doc []byte, signer *xmlsig.Signer) []byte {
	t.Helper()
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		t.Fatal(err)
	}
	signed, err := signer.SignEnveloped(d.Root())
	if err != nil {
		t.Fatal(err)
	}
	d.SetRoot(signed)
	out, err := d.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// signedAggregate returns an aggregate of n entities signed by the
// operator, valid for a week from now, with cacheDuration PT1H.
func signedAggregate(t testing.TB, now time.Time, n int) []byte {
	t.Helper()
	return signXML(t, aggregateXML(aggOpts{
		entities: n, id: "_agg1", validUntil: now.Add(7 * 24 * time.Hour), cacheDuration: "PT1H",
	}), signerFor(t, testKeys().operator))
}

// metaServer is an https test server whose response can be changed.
type metaServer struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	body   []byte
	hits   int
}

func newMetaServer(t testing.TB, body []byte) *metaServer {
	t.Helper()
	m := &metaServer{status: http.StatusOK, body: body}
	m.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		m.mu.Lock()
		status, body := m.status, m.body
		m.hits++
		m.mu.Unlock()
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *metaServer) requests() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hits
}

func (m *metaServer) set(status int, body []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status, m.body = status, body
}

// source returns a Source for m trusting the operator's key, with its own
// cache directory and clock c.
func (m *metaServer) source(t testing.TB, c *clock) *Source {
	t.Helper()
	return &Source{
		Name:        "testfed",
		URL:         m.URL + "/metadata.xml",
		SigningCert: testKeys().operator.Cert,
		CacheDir:    t.TempDir(),
		MinRefresh:  15 * time.Minute,
		MaxRefresh:  6 * time.Hour,
		HTTPClient:  m.Client(),
		Now:         c.Now,
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
