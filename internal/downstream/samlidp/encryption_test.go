package samlidp_test

import (
	"crypto"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/release"
	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/xmlenc"
	"github.com/skolbro/skolbro/internal/xmlenc/xmlsectest"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// Vendors of the encryption tests, each publishing fx.vendorEnc's key with
// another list of md:EncryptionMethod.
const (
	gcm128Vendor  = "https://gcm128.example.com/sp"  // aes128-gcm and rsa-oaep-mgf1p
	noListVendor  = "https://nolist.example.com/sp"  // a key, no methods
	cbcOnlyVendor = "https://cbconly.example.com/sp" // what crewjam/saml v0.5.1's SP lists
	bothVendor    = "https://both.example.com/sp"    // CBC and GCM
	desOnlyVendor = "https://desonly.example.com/sp" // only a cipher the bridge does not write
)

const (
	tripleDES = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"
	aes192CBC = "http://www.w3.org/2001/04/xmlenc#aes192-cbc"
)

// addEncryptionVendors adds the vendors above to fx's IdP.
func addEncryptionVendors(t testing.TB, fx *fixture) {
	t.Helper()
	lists := map[string][]string{
		gcm128Vendor:  {xmlenc.AES128GCM, xmlenc.RSAOAEPMGF1P},
		noListVendor:  nil,
		cbcOnlyVendor: {xmlenc.AES128CBC, aes192CBC, xmlenc.AES256CBC, xmlenc.RSAOAEPMGF1P},
		bothVendor:    {xmlenc.AES256CBC, xmlenc.AES256GCM, xmlenc.RSAOAEP},
		desOnlyVendor: {tripleDES, xmlenc.RSAOAEPMGF1P},
	}
	for entityID, methods := range lists {
		kd := saml.KeyDescriptor{Use: "encryption", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: certData(fx.vendorEnc)}}}
		for _, m := range methods {
			kd.EncryptionMethods = append(kd.EncryptionMethods, saml.EncryptionMethod{Algorithm: m})
		}
		v, err := samlidp.VendorFromMetadata("enc.xml", spMetadata(entityID, false, []saml.IndexedEndpoint{postACS(0, entityID+"/acs", true)}, kd), false)
		if err != nil {
			t.Fatal(err)
		}
		fx.idp.Vendors[entityID] = v
	}
}

// TestCase25_EncryptionFollowsVendorMetadata: a vendor gets its assertion
// encrypted with a method its md:EncryptionMethod lists. AES-GCM whenever
// listed or when nothing is; a vendor that lists only AES-CBC gets CBC only
// when its policy chose encrypt: cbc (and xmlsec1 decrypts it), and no
// response at all otherwise, rather than AES-GCM it cannot decrypt.
func TestCase25_EncryptionFollowsVendorMetadata(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	addEncryptionVendors(t, fx)
	tests := []struct {
		name, vendor, mode string
		// data and transport are the methods used; "" for a plain
		// assertion. err, when set, is the refusal.
		data, transport string
		err             error
	}{
		{name: "aes128-gcm listed", vendor: gcm128Vendor, mode: "auto", data: xmlenc.AES128GCM, transport: xmlenc.RSAOAEPMGF1P},
		{name: "aes256-gcm listed", vendor: encVendor, mode: "auto", data: xmlenc.AES256GCM, transport: xmlenc.RSAOAEP},
		{name: "nothing listed", vendor: noListVendor, mode: "auto", data: xmlenc.AES256GCM, transport: xmlenc.RSAOAEPMGF1P},
		{name: "nothing listed, required", vendor: noListVendor, mode: "required", data: xmlenc.AES256GCM, transport: xmlenc.RSAOAEPMGF1P},
		{name: "CBC and GCM listed", vendor: bothVendor, mode: "auto", data: xmlenc.AES256GCM, transport: xmlenc.RSAOAEP},
		{name: "CBC and GCM listed, cbc chosen: GCM still", vendor: bothVendor, mode: "cbc", data: xmlenc.AES256GCM, transport: xmlenc.RSAOAEP},
		{name: "only CBC listed, cbc chosen", vendor: cbcOnlyVendor, mode: "cbc", data: xmlenc.AES256CBC, transport: xmlenc.RSAOAEPMGF1P},
		{name: "only CBC listed, never", vendor: cbcOnlyVendor, mode: "never"},
		{name: "only CBC listed, auto: refused", vendor: cbcOnlyVendor, mode: "auto", err: xmlenc.ErrOnlyCBC},
		{name: "only CBC listed, required: refused", vendor: cbcOnlyVendor, mode: "required", err: xmlenc.ErrOnlyCBC},
		{name: "only Triple DES listed: refused", vendor: desOnlyVendor, mode: "cbc", err: xmlenc.ErrNoUsableMethod},
		{name: "cbc chosen without an encryption key: refused", vendor: plainVendor, mode: "cbc", err: samlidp.ErrNoEncryptionKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := &samlidp.Request{ID: "_req-25-enc", VendorEntityID: tc.vendor, ACSURL: fx.idp.Vendors[tc.vendor].DefaultACS().URL}
			rel := released(t, tc.vendor)
			resp, err := fx.idp.BuildResponse(req, rel, samlidp.ResponseOptions{SignResponse: true, SignAssertion: true, Encrypt: tc.mode})
			if tc.err != nil {
				if !errors.Is(err, tc.err) || resp != "" {
					t.Fatalf("BuildResponse = %d bytes, %v; want no response and %v", len(resp), err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("BuildResponse: %v", err)
			}
			_, root := decodeResponse(t, resp)
			checkResponseEnvelope(t, fx, root, req)
			if tc.data == "" {
				if n := len(findAll(root, samlxml.NSAssertion, "EncryptedAssertion")); n != 0 {
					t.Fatalf("%d encrypted assertions, want a plain one", n)
				}
				checkAssertion(t, fx, one(t, root, samlxml.NSAssertion, "Assertion"), req, rel)
				return
			}
			if n := len(findAll(root, samlxml.NSAssertion, "Assertion")); n != 0 {
				t.Fatalf("encrypted response holds %d plain assertions", n)
			}
			ea := one(t, root, samlxml.NSAssertion, "EncryptedAssertion")
			ed := one(t, ea, samlxml.NSXMLEnc, "EncryptedData")
			if m := one(t, ed, samlxml.NSXMLEnc, "EncryptionMethod").SelectAttrValue("Algorithm", ""); m != tc.data {
				t.Errorf("data encryption = %s, want %s", m, tc.data)
			}
			ek := findAll(ed, samlxml.NSXMLEnc, "EncryptedKey")
			if len(ek) != 1 {
				t.Fatalf("%d EncryptedKeys, want 1", len(ek))
			}
			if m := one(t, ek[0], samlxml.NSXMLEnc, "EncryptionMethod").SelectAttrValue("Algorithm", ""); m != tc.transport {
				t.Errorf("key transport = %s, want %s", m, tc.transport)
			}
			a, err := xmlenc.Decrypt(ea, fx.vendorEnc.Signer.(crypto.Decrypter), xmlenc.DecryptOptions{AllowCBC: xmlenc.IsCBC(tc.data)})
			if err != nil {
				t.Fatalf("vendor cannot decrypt: %v", err)
			}
			checkAssertion(t, fx, a, req, rel)
		})
	}

	// An implementation the project did not write decrypts the CBC
	// response: xmlsec1 with OpenSSL, as many SAML SPs use. (No comma in
	// the name: the temp dir takes it, and xmlsec1 splits file names at
	// commas.)
	t.Run("xmlsec1 decrypts CBC for a vendor that lists only CBC", func(t *testing.T) {
		t.Parallel()
		xmlsectest.Path(t)
		req := &samlidp.Request{ID: "_req-25-cbc", VendorEntityID: cbcOnlyVendor, ACSURL: cbcOnlyVendor + "/acs"}
		rel := released(t, cbcOnlyVendor)
		resp, err := fx.idp.BuildResponse(req, rel, samlidp.ResponseOptions{SignResponse: true, SignAssertion: true, Encrypt: "cbc"})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := decodeResponse(t, resp)
		if !strings.Contains(string(raw), xmlenc.AES256CBC) {
			t.Fatal("response is not encrypted with aes256-cbc")
		}
		dir := t.TempDir()
		keyPEM, err := fx.vendorEnc.KeyPEM()
		if err != nil {
			t.Fatal(err)
		}
		keyFile := xmlsectest.WriteFile(t, dir, "vendor-key.pem", keyPEM)
		file := xmlsectest.WriteFile(t, dir, "response.xml", raw)
		out, stderr, err := xmlsectest.Run(t, "--decrypt", "--privkey-pem", keyFile, file)
		if err != nil {
			t.Fatalf("xmlsec1 --decrypt: %v\n%s", err, stderr)
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(out); err != nil {
			t.Fatalf("xmlsec1 output does not parse: %v", err)
		}
		if n := len(findAll(doc.Root(), samlxml.NSXMLEnc, "EncryptedData")); n != 0 {
			t.Errorf("EncryptedData left in xmlsec1's output")
		}
		as := findAll(doc.Root(), samlxml.NSAssertion, "Assertion")
		if len(as) != 1 {
			t.Fatalf("xmlsec1's output holds %d assertions, want 1", len(as))
		}
		checkAssertion(t, fx, as[0], req, rel)
	})
}

// TestCase25_CrewjamSPDecryptsCBC: crewjam/saml v0.5.1's ServiceProvider
// (the demo vendor's library) lists only AES-CBC in its metadata and
// decrypts no AES-256-GCM. With encrypt: cbc it takes the bridge's response
// and reads the released attributes; with the default it gets no response.
func TestCase25_CrewjamSPDecryptsCBC(t *testing.T) {
	t.Parallel()
	// crewjam/saml checks times with its package clock (time.Now), which
	// this test leaves alone: the bridge here runs on real time too.
	now := time.Now()
	gen := func(name string, alg keys.Algorithm) *keys.Pair {
		p, err := keys.Generate(name, alg, now)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	spPair, bridge := gen("crewjam sp", keys.RSA2048), gen("bridge", keys.RSA2048)
	const base = "https://crewjam.example.com/saml"
	acsURL, _ := url.Parse(base + "/acs")
	mdURL, _ := url.Parse(base + "/metadata")
	sp := &saml.ServiceProvider{
		EntityID:    base + "/metadata",
		Key:         spPair.Signer.(crypto.Signer),
		Certificate: spPair.Cert,
		AcsURL:      *acsURL,
		MetadataURL: *mdURL,
	}
	vendor, err := samlidp.VendorFromMetadata("crewjam.xml", sp.Metadata(), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := xmlenc.ChooseFromMetadata(vendor.EncryptionMethods, false); !errors.Is(err, xmlenc.ErrOnlyCBC) {
		t.Fatalf("crewjam/saml's metadata %v is not CBC-only: the test would prove nothing", vendor.EncryptionMethods)
	}
	signer, err := xmlsig.NewSigner(bridge)
	if err != nil {
		t.Fatal(err)
	}
	idp := &samlidp.IdP{
		EntityID: bridgeEntityID,
		SSOURL:   ssoURL,
		Scope:    scope,
		Signer:   signer,
		Vendors:  map[string]*samlidp.Vendor{vendor.EntityID: vendor},
	}
	md, err := idp.Metadata(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var idpMD saml.EntityDescriptor
	if err := xml.Unmarshal(md, &idpMD); err != nil {
		t.Fatal(err)
	}
	sp.IDPMetadata = &idpMD

	req := &samlidp.Request{ID: "_crewjam-req-1", VendorEntityID: vendor.EntityID, ACSURL: acsURL.String()}
	rel := &release.Released{
		VendorID: "crewjam",
		EntityID: vendor.EntityID,
		Attributes: []release.Attribute{
			{Def: def(t, "eduPersonPrincipalName"), Values: []string{"elev4711@" + scope}},
			{Def: def(t, "eduPersonScopedAffiliation"), Values: []string{"student@" + scope}},
		},
		AuthnInstant: now,
	}
	if _, err := idp.BuildResponse(req, rel, samlidp.ResponseOptions{Encrypt: "auto"}); !errors.Is(err, xmlenc.ErrOnlyCBC) {
		t.Errorf("encrypt auto: error %v, want %v", err, xmlenc.ErrOnlyCBC)
	}
	resp, err := idp.BuildResponse(req, rel, samlidp.ResponseOptions{Encrypt: "cbc"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), xmlenc.AES256CBC) || strings.Contains(string(raw), "elev4711") {
		t.Fatal("the response is not encrypted with aes256-cbc")
	}
	a, err := sp.ParseXMLResponse(raw, []string{req.ID}, *acsURL)
	if err != nil {
		// InvalidResponseError carries the whole response: show the cause.
		var ire *saml.InvalidResponseError
		if errors.As(err, &ire) {
			err = ire.PrivateErr
		}
		t.Fatalf("crewjam/saml refused the CBC response: %v", err)
	}
	got := map[string]string{}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			for _, v := range at.Values {
				got[at.FriendlyName] = v.Value
			}
		}
	}
	want := map[string]string{"eduPersonPrincipalName": "elev4711@" + scope, "eduPersonScopedAffiliation": "student@" + scope}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("crewjam/saml read %s = %q, want %q", k, got[k], v)
		}
	}
}
