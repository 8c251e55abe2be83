package samlidp_test

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/xmlenc"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// Entity IDs and URLs of the test bridge and vendors.
const (
	bridgeEntityID = "https://bridge.example.se/saml/idp"
	ssoURL         = "https://bridge.example.se/saml/sso"
	scope          = "kommun.example.se"

	// plainVendor sends unsigned requests and has no keys at all.
	plainVendor = "https://plain.example.com/sp"
	plainACS0   = "https://plain.example.com/saml/acs"
	plainACS1   = "https://plain.example.com/saml/acs2" // the default ACS

	// signedVendor requires signed AuthnRequests (AuthnRequestsSigned).
	signedVendor = "https://signed.example.com/sp"
	signedACS0   = "https://signed.example.com/acs"
	signedACS1   = "https://signed.example.com/acs/other"

	// optVendor lists a signing key but does not require signatures.
	optVendor = "https://optional.example.com/sp"
	optACS    = "https://optional.example.com/acs"

	// encVendor publishes an encryption key.
	encVendor = "https://enc.example.com/sp"
	encACS    = "https://enc.example.com/acs"

	lifetime = 3 * time.Minute
)

// testNow is the injected clock of every test: a fixed instant, so that
// outcomes do not depend on when the test runs.
func testNow() time.Time { return time.Date(2031, 3, 14, 9, 26, 53, 0, time.UTC) }

// stamp formats t as SAML timestamps are written.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// lockedRand is a deterministic io.Reader safe for parallel subtests.
type lockedRand struct {
	mu sync.Mutex
	r  *mrand.ChaCha8
}

func (l *lockedRand) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// fixture is a bridge IdP with four vendors and the keys involved.
type fixture struct {
	idp *samlidp.IdP
	// bridge signs responses (RSA-SHA256); bridgeEC is the alternative
	// ECDSA-SHA256 signer.
	bridge, bridgeEC *keys.Pair
	// vendorSign is the signing key in signedVendor's and optVendor's
	// metadata; other is a key in nobody's metadata.
	vendorSign, other *keys.Pair
	// vendorEnc is encVendor's encryption key.
	vendorEnc *keys.Pair
}

func genKey(t testing.TB, name string, alg keys.Algorithm) *keys.Pair {
	t.Helper()
	p, err := keys.Generate(name, alg, testNow())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newSigner(t testing.TB, p *keys.Pair) *xmlsig.Signer {
	t.Helper()
	s, err := xmlsig.NewSigner(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func boolp(b bool) *bool { return &b }

func certData(p *keys.Pair) []saml.X509Certificate {
	return []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(p.Cert.Raw)}}
}

// spMetadata is the metadata of one vendor SP, as a metadata file would
// describe it.
func spMetadata(entityID string, signed bool, acs []saml.IndexedEndpoint, kds ...saml.KeyDescriptor) *saml.EntityDescriptor {
	sd := saml.SPSSODescriptor{AssertionConsumerServices: acs}
	sd.KeyDescriptors = kds
	if signed {
		sd.AuthnRequestsSigned = boolp(true)
	}
	return &saml.EntityDescriptor{EntityID: entityID, SPSSODescriptors: []saml.SPSSODescriptor{sd}}
}

func postACS(index int, loc string, isDefault bool) saml.IndexedEndpoint {
	e := saml.IndexedEndpoint{Binding: samlidp.BindingPOST, Location: loc, Index: index}
	if isDefault {
		e.IsDefault = boolp(true)
	}
	return e
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	fx := &fixture{
		bridge:     genKey(t, "bridge", keys.RSA2048),
		bridgeEC:   genKey(t, "bridge-ec", keys.P256),
		vendorSign: genKey(t, "vendor-signing", keys.RSA2048),
		other:      genKey(t, "someone-else", keys.RSA2048),
		vendorEnc:  genKey(t, "vendor-encryption", keys.RSA2048),
	}
	signing := saml.KeyDescriptor{Use: "signing", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: certData(fx.vendorSign)}}}
	encryption := saml.KeyDescriptor{
		Use:     "encryption",
		KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: certData(fx.vendorEnc)}},
		EncryptionMethods: []saml.EncryptionMethod{
			{Algorithm: xmlenc.AES256GCM}, {Algorithm: xmlenc.RSAOAEP},
		},
	}
	mds := []*saml.EntityDescriptor{
		spMetadata(plainVendor, false, []saml.IndexedEndpoint{
			postACS(0, plainACS0, false),
			// A Redirect-binding ACS is never used for responses.
			{Binding: samlidp.BindingRedirect, Location: "https://plain.example.com/saml/redirect", Index: 5},
			postACS(1, plainACS1, true),
		}),
		spMetadata(signedVendor, true, []saml.IndexedEndpoint{postACS(0, signedACS0, true), postACS(1, signedACS1, false)}, signing),
		spMetadata(optVendor, false, []saml.IndexedEndpoint{postACS(0, optACS, false)}, signing),
		spMetadata(encVendor, false, []saml.IndexedEndpoint{postACS(0, encACS, false)}, encryption),
	}
	vendors := map[string]*samlidp.Vendor{}
	for _, md := range mds {
		v, err := samlidp.VendorFromMetadata("test.xml", md, false)
		if err != nil {
			t.Fatalf("vendor %s: %v", md.EntityID, err)
		}
		vendors[v.EntityID] = v
	}
	fx.idp = &samlidp.IdP{
		EntityID:          bridgeEntityID,
		SSOURL:            ssoURL,
		Scope:             scope,
		Signer:            newSigner(t, fx.bridge),
		AltSigners:        map[string]*xmlsig.Signer{xmlsig.ECDSASHA256: newSigner(t, fx.bridgeEC)},
		Vendors:           vendors,
		AssertionLifetime: lifetime,
		Now:               testNow,
		Rand:              &lockedRand{r: mrand.NewChaCha8([32]byte{'s', 'k', 'o', 'l', 'b', 'r', 'o'})},
	}
	return fx
}

// authn describes an AuthnRequest a vendor sends.
type authn struct {
	ID, Issuer, Destination, IssueInstant string
	ACSURL, ACSIndex, ProtocolBinding     string
	NoIssuer                              bool
	NameIDFormat                          string
	// Extra are further attributes of the AuthnRequest, in order.
	Extra [][2]string
	// RAC, when set, is written as a RequestedAuthnContext (an empty
	// Comparison is left out; DeclRefs adds one AuthnContextDeclRef).
	RAC *samlidp.RequestedAuthnContext
}

// newAuthn is a well-formed request from issuer, sent now, naming no ACS.
func newAuthn(issuer string) authn {
	return authn{
		ID:              "_4f1c2a9e0d7b43c6a8e5",
		Issuer:          issuer,
		Destination:     ssoURL,
		IssueInstant:    stamp(testNow()),
		ProtocolBinding: samlidp.BindingPOST,
	}
}

func (a authn) with(f func(*authn)) authn {
	f(&a)
	return a
}

func (a authn) xml() string {
	el := etree.NewElement("samlp:AuthnRequest")
	el.CreateAttr("xmlns:samlp", samlxml.NSProtocol)
	el.CreateAttr("xmlns:saml", samlxml.NSAssertion)
	el.CreateAttr("ID", a.ID)
	el.CreateAttr("Version", "2.0")
	el.CreateAttr("IssueInstant", a.IssueInstant)
	for _, kv := range [][2]string{
		{"Destination", a.Destination},
		{"AssertionConsumerServiceURL", a.ACSURL},
		{"AssertionConsumerServiceIndex", a.ACSIndex},
		{"ProtocolBinding", a.ProtocolBinding},
	} {
		if kv[1] != "" {
			el.CreateAttr(kv[0], kv[1])
		}
	}
	for _, kv := range a.Extra {
		el.CreateAttr(kv[0], kv[1])
	}
	if !a.NoIssuer {
		el.CreateElement("saml:Issuer").SetText(a.Issuer)
	}
	if a.NameIDFormat != "" {
		p := el.CreateElement("samlp:NameIDPolicy")
		p.CreateAttr("Format", a.NameIDFormat)
		p.CreateAttr("AllowCreate", "true")
	}
	if a.RAC != nil {
		r := el.CreateElement("samlp:RequestedAuthnContext")
		if a.RAC.Comparison != "" {
			r.CreateAttr("Comparison", a.RAC.Comparison)
		}
		for _, c := range a.RAC.Classes {
			r.CreateElement("saml:AuthnContextClassRef").SetText(c)
		}
		if a.RAC.DeclRefs {
			r.CreateElement("saml:AuthnContextDeclRef").SetText("urn:x:decl")
		}
	}
	doc := etree.NewDocument()
	doc.SetRoot(el)
	s, err := doc.WriteToString()
	if err != nil {
		panic(err) // an etree document built in memory always serialises
	}
	return s
}

// deflate encodes an AuthnRequest for the Redirect binding: raw DEFLATE,
// then base64 (not yet URL-encoded).
func deflate(t testing.TB, xml string) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(xml)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// query URL-encodes name/value pairs in the given order.
func query(pairs ...string) string {
	var parts []string
	for i := 0; i+1 < len(pairs); i += 2 {
		parts = append(parts, url.QueryEscape(pairs[i])+"="+url.QueryEscape(pairs[i+1]))
	}
	return strings.Join(parts, "&")
}

// signRaw signs content as the Redirect binding requires (RSA PKCS#1 v1.5
// over the hash of the exact query bytes) and returns it base64-encoded.
func signRaw(t testing.TB, p *keys.Pair, h crypto.Hash, content string) string {
	t.Helper()
	hh := h.New()
	hh.Write([]byte(content))
	sig, err := rsa.SignPKCS1v15(rand.Reader, p.Signer.(*rsa.PrivateKey), h, hh.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// signedQuery returns the Redirect query for samlRequest (deflated and
// base64-encoded) and relay (none when nil), signed by p with alg over
// SAMLRequest=...&RelayState=...&SigAlg=... exactly as encoded.
func signedQuery(t testing.TB, p *keys.Pair, alg string, h crypto.Hash, samlRequest string, relay *string) string {
	t.Helper()
	q := query("SAMLRequest", samlRequest)
	if relay != nil {
		q += "&" + query("RelayState", *relay)
	}
	q += "&" + query("SigAlg", alg)
	return q + "&" + query("Signature", signRaw(t, p, h, q))
}

// getRequest is the browser's GET to the SSO URL with rawQuery exactly as
// given (not re-encoded).
func getRequest(rawQuery string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, ssoURL, nil)
	r.URL.RawQuery = rawQuery
	return r
}

// postRequest is the browser's form POST to the SSO URL.
func postRequest(samlRequest string, relay *string) *http.Request {
	form := url.Values{"SAMLRequest": {samlRequest}}
	if relay != nil {
		form.Set("RelayState", *relay)
	}
	r := httptest.NewRequest(http.MethodPost, ssoURL, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// signXML signs the AuthnRequest enveloped, as a vendor SP using the POST
// binding does.
func signXML(t testing.TB, s *xmlsig.Signer, xml string) string {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(xml); err != nil {
		t.Fatal(err)
	}
	signed, err := s.SignEnveloped(doc.Root())
	if err != nil {
		t.Fatal(err)
	}
	doc.SetRoot(signed)
	out, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func strp(s string) *string { return &s }

// checkRefused asserts that err is a *samlidp.Error with reason and status.
func checkRefused(t testing.TB, err error, reason string, status int) {
	t.Helper()
	var e *samlidp.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want a *samlidp.Error with reason %q", err, reason)
	}
	if e.Reason != reason || e.Status != status {
		t.Errorf("refused with reason %q status %d, want %q %d (error: %v)", e.Reason, e.Status, reason, status, err)
	}
}
