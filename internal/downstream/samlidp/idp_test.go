package samlidp_test

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/google/go-cmp/cmp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/release"
	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/xmlenc"
	"github.com/skolbro/skolbro/internal/xmlenc/xmlsectest"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

const (
	nsShibMD    = "urn:mace:shibboleth:metadata:1.0"
	attrFmtURI  = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
	bearer      = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	success     = "urn:oasis:names:tc:SAML:2.0:status:Success"
	envelopedTr = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	authnClass  = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
)

func def(t testing.TB, name string) attr.Def {
	t.Helper()
	d, ok := attr.Lookup(name)
	if !ok {
		t.Fatalf("attribute %s is not in the table", name)
	}
	return d
}

// released is what the release step gives a vendor in these tests.
func released(t testing.TB, vendor string) *release.Released {
	return &release.Released{
		VendorID: "vendor",
		EntityID: vendor,
		NameID:   "pairwise-7f3a9c@" + scope,
		Attributes: []release.Attribute{
			{Def: def(t, attr.EPPN), Values: []string{"elev4711@" + scope}},
			{Def: def(t, attr.ScopedAffiliation), Values: []string{"student@" + scope, "member@" + scope}},
			{Def: def(t, attr.SchoolUnitCode), Values: []string{"12345678", "87654321"}},
			{Def: def(t, attr.DisplayName), Values: []string{"Åsa <Ö> & \"Co\""}},
		},
		AuthnInstant: testNow().Add(-30 * time.Second),
		AuthnContext: authnClass,
	}
}

// decodeResponse parses a SAMLResponse as the vendor receives it.
func decodeResponse(t testing.TB, resp string) (raw []byte, root *etree.Element) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		t.Fatalf("SAMLResponse is not base64: %v", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatalf("SAMLResponse does not parse: %v", err)
	}
	root = doc.Root()
	if !samlxml.Is(root, samlxml.NSProtocol, "Response") {
		t.Fatalf("root is %s, not a samlp:Response", root.Tag)
	}
	return raw, root
}

// findAll returns every element {ns}local at or below el.
func findAll(el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	if samlxml.Is(el, ns, local) {
		out = append(out, el)
	}
	for _, c := range el.ChildElements() {
		out = append(out, findAll(c, ns, local)...)
	}
	return out
}

// one returns el's only child {ns}local.
func one(t testing.TB, el *etree.Element, ns, local string) *etree.Element {
	t.Helper()
	cs := samlxml.Children(el, ns, local)
	if len(cs) != 1 {
		t.Fatalf("%s has %d %s children, want 1", el.Tag, len(cs), local)
	}
	return cs[0]
}

func attrs(el *etree.Element) map[string]string {
	m := map[string]string{}
	for _, a := range el.Attr {
		if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			continue
		}
		m[a.FullKey()] = a.Value
	}
	return m
}

// sigShape describes an enveloped ds:Signature: where it is and which
// algorithms it uses.
type sigShape struct {
	Position        int // index among the parent's child elements
	SignatureMethod string
	C14N            string
	Transforms      []string
	Digest          string
	Reference       string
}

func signatureShape(t testing.TB, el *etree.Element) sigShape {
	t.Helper()
	var s sigShape
	sig := one(t, el, samlxml.NSDSig, "Signature")
	for i, c := range el.ChildElements() {
		if c == sig {
			s.Position = i
		}
	}
	si := one(t, sig, samlxml.NSDSig, "SignedInfo")
	s.C14N = one(t, si, samlxml.NSDSig, "CanonicalizationMethod").SelectAttrValue("Algorithm", "")
	s.SignatureMethod = one(t, si, samlxml.NSDSig, "SignatureMethod").SelectAttrValue("Algorithm", "")
	ref := one(t, si, samlxml.NSDSig, "Reference")
	s.Reference = ref.SelectAttrValue("URI", "")
	for _, tr := range samlxml.Children(one(t, ref, samlxml.NSDSig, "Transforms"), samlxml.NSDSig, "Transform") {
		s.Transforms = append(s.Transforms, tr.SelectAttrValue("Algorithm", ""))
	}
	s.Digest = one(t, ref, samlxml.NSDSig, "DigestMethod").SelectAttrValue("Algorithm", "")
	return s
}

func wantShape(method string, el *etree.Element) sigShape {
	return sigShape{
		Position:        1, // right after the Issuer, as the schema requires
		SignatureMethod: method,
		C14N:            xmlsig.ExcC14N,
		Transforms:      []string{envelopedTr, xmlsig.ExcC14N},
		Digest:          xmlsig.DigestSHA256,
		Reference:       "#" + el.SelectAttrValue("ID", ""),
	}
}

// verifyDsig verifies el's enveloped signature with goxmldsig, trusting
// only cert.
func verifyDsig(el *etree.Element, cert *x509.Certificate) error {
	ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
	ctx.Clock = dsig.NewFakeClockAt(testNow())
	_, err := ctx.Validate(el)
	return err
}

// assertionSummary is what a vendor reads from an assertion.
type assertionSummary struct {
	Issuer                 string
	NameIDAttrs            map[string]string
	ConfirmationMethod     string
	ConfirmationData       map[string]string // all attributes: no Address
	Conditions             map[string]string
	Audiences              []string
	AuthnInstant           string
	AuthnContext           string
	HasAttributeStatements int
	Attributes             []attrSummary
}

type attrSummary struct {
	Attrs  map[string]string // Name, NameFormat, FriendlyName
	Values []string
	Types  []string
}

func summarise(t testing.TB, a *etree.Element) (assertionSummary, string) {
	t.Helper()
	var s assertionSummary
	s.Issuer = one(t, a, samlxml.NSAssertion, "Issuer").Text()
	subj := one(t, a, samlxml.NSAssertion, "Subject")
	nameID := one(t, subj, samlxml.NSAssertion, "NameID")
	s.NameIDAttrs = attrs(nameID)
	sc := one(t, subj, samlxml.NSAssertion, "SubjectConfirmation")
	s.ConfirmationMethod = sc.SelectAttrValue("Method", "")
	s.ConfirmationData = attrs(one(t, sc, samlxml.NSAssertion, "SubjectConfirmationData"))
	cond := one(t, a, samlxml.NSAssertion, "Conditions")
	s.Conditions = attrs(cond)
	for _, ar := range samlxml.Children(cond, samlxml.NSAssertion, "AudienceRestriction") {
		for _, au := range samlxml.Children(ar, samlxml.NSAssertion, "Audience") {
			s.Audiences = append(s.Audiences, au.Text())
		}
	}
	as := one(t, a, samlxml.NSAssertion, "AuthnStatement")
	s.AuthnInstant = as.SelectAttrValue("AuthnInstant", "")
	s.AuthnContext = one(t, one(t, as, samlxml.NSAssertion, "AuthnContext"), samlxml.NSAssertion, "AuthnContextClassRef").Text()
	sts := samlxml.Children(a, samlxml.NSAssertion, "AttributeStatement")
	s.HasAttributeStatements = len(sts)
	for _, st := range sts {
		for _, at := range samlxml.Children(st, samlxml.NSAssertion, "Attribute") {
			as := attrSummary{Attrs: attrs(at)}
			for _, v := range samlxml.Children(at, samlxml.NSAssertion, "AttributeValue") {
				as.Values = append(as.Values, v.Text())
				as.Types = append(as.Types, v.SelectAttrValue("xsi:type", ""))
			}
			s.Attributes = append(s.Attributes, as)
		}
	}
	return s, nameID.Text()
}

// wantSummary is the assertion the bridge must send for req and rel with a
// transient NameID (NameID Format is checked, its value separately).
func wantSummary(req *samlidp.Request, rel *release.Released) assertionSummary {
	now := testNow()
	notAfter := stamp(now.Add(lifetime))
	s := assertionSummary{
		Issuer: bridgeEntityID,
		NameIDAttrs: map[string]string{
			"Format": samlidp.NameIDTransient, "NameQualifier": bridgeEntityID, "SPNameQualifier": req.VendorEntityID,
		},
		ConfirmationMethod: bearer,
		ConfirmationData:   map[string]string{"InResponseTo": req.ID, "NotOnOrAfter": notAfter, "Recipient": req.ACSURL},
		Conditions:         map[string]string{"NotBefore": stamp(now), "NotOnOrAfter": notAfter},
		Audiences:          []string{req.VendorEntityID},
		AuthnInstant:       stamp(rel.AuthnInstant),
		AuthnContext:       rel.AuthnContext,
	}
	if len(rel.Attributes) > 0 {
		s.HasAttributeStatements = 1
	}
	for _, a := range rel.Attributes {
		as := attrSummary{Attrs: map[string]string{"Name": a.Def.SAMLName, "NameFormat": attrFmtURI, "FriendlyName": a.Def.Name}}
		for _, v := range a.Values {
			as.Values = append(as.Values, v)
			as.Types = append(as.Types, "xs:string")
		}
		s.Attributes = append(s.Attributes, as)
	}
	return s
}

// checkResponseEnvelope checks the Response element itself and its
// signature (goxmldsig with the bridge's certificate).
func checkResponseEnvelope(t testing.TB, fx *fixture, root *etree.Element, req *samlidp.Request) {
	t.Helper()
	got := attrs(root)
	delete(got, "ID")
	want := map[string]string{
		"Version": "2.0", "IssueInstant": stamp(testNow()), "Destination": req.ACSURL, "InResponseTo": req.ID,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Response attributes (-want +got):\n%s", diff)
	}
	if iss := one(t, root, samlxml.NSAssertion, "Issuer").Text(); iss != bridgeEntityID {
		t.Errorf("Response Issuer = %q", iss)
	}
	code := one(t, one(t, root, samlxml.NSProtocol, "Status"), samlxml.NSProtocol, "StatusCode")
	if v := code.SelectAttrValue("Value", ""); v != success {
		t.Errorf("StatusCode = %q", v)
	}
	if diff := cmp.Diff(wantShape(xmlsig.RSASHA256, root), signatureShape(t, root)); diff != "" {
		t.Errorf("Response signature (-want +got):\n%s", diff)
	}
	if err := verifyDsig(root, fx.bridge.Cert); err != nil {
		t.Errorf("Response signature does not verify with the bridge's certificate: %v", err)
	}
	if err := verifyDsig(root, fx.other.Cert); err == nil {
		t.Errorf("Response signature verifies with another certificate")
	}
}

// checkAssertion checks a plain (or decrypted) assertion: its signature
// and its content. It returns the NameID value.
func checkAssertion(t testing.TB, fx *fixture, a *etree.Element, req *samlidp.Request, rel *release.Released) string {
	t.Helper()
	if diff := cmp.Diff(wantShape(xmlsig.RSASHA256, a), signatureShape(t, a)); diff != "" {
		t.Errorf("Assertion signature (-want +got):\n%s", diff)
	}
	if err := verifyDsig(a, fx.bridge.Cert); err != nil {
		t.Errorf("Assertion signature does not verify with the bridge's certificate: %v", err)
	}
	got, nameID := summarise(t, a)
	if diff := cmp.Diff(wantSummary(req, rel), got); diff != "" {
		t.Errorf("assertion (-want +got):\n%s", diff)
	}
	return nameID
}

// TestCase25_ResponseSigningAndEncryption: what the bridge sends a vendor
// is a signed Response holding a signed assertion (RSA-SHA256, or
// ECDSA-SHA256 when chosen), with exactly the released attributes, and
// encrypted with AES-GCM and RSA-OAEP when the vendor publishes a key.
func TestCase25_ResponseSigningAndEncryption(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	defaults := samlidp.ResponseOptions{SignResponse: true, SignAssertion: true, Encrypt: "auto"}
	plainReq := &samlidp.Request{ID: "_req-25", VendorEntityID: plainVendor, ACSURL: plainACS0, RelayState: relay}
	encReq := &samlidp.Request{ID: "_req-25e", VendorEntityID: encVendor, ACSURL: encACS}

	build := func(t *testing.T, req *samlidp.Request, rel *release.Released, opts samlidp.ResponseOptions) ([]byte, *etree.Element) {
		t.Helper()
		resp, err := fx.idp.BuildResponse(req, rel, opts)
		if err != nil {
			t.Fatalf("BuildResponse: %v", err)
		}
		return decodeResponse(t, resp)
	}
	plainAssertion := func(t *testing.T, root *etree.Element) *etree.Element {
		t.Helper()
		if n := len(findAll(root, samlxml.NSAssertion, "Assertion")); n != 1 {
			t.Fatalf("response holds %d assertions, want exactly 1", n)
		}
		if n := len(findAll(root, samlxml.NSAssertion, "EncryptedAssertion")); n != 0 {
			t.Fatalf("response holds %d encrypted assertions, want none", n)
		}
		return one(t, root, samlxml.NSAssertion, "Assertion")
	}

	t.Run("signed response and assertion with the released attributes", func(t *testing.T) {
		t.Parallel()
		rel := released(t, plainVendor)
		raw, root := build(t, plainReq, rel, defaults)
		checkResponseEnvelope(t, fx, root, plainReq)
		nameID := checkAssertion(t, fx, plainAssertion(t, root), plainReq, rel)
		if nameID == "" || nameID == rel.NameID {
			t.Errorf("transient NameID = %q, want a fresh value", nameID)
		}
		for _, never := range []string{"Address", "Masked", relay} {
			if strings.Contains(string(raw), never) {
				t.Errorf("response contains %q", never)
			}
		}
	})

	t.Run("no attributes: no AttributeStatement", func(t *testing.T) {
		t.Parallel()
		rel := released(t, plainVendor)
		rel.Attributes = nil
		raw, root := build(t, plainReq, rel, defaults)
		checkResponseEnvelope(t, fx, root, plainReq)
		checkAssertion(t, fx, plainAssertion(t, root), plainReq, rel)
		if strings.Contains(string(raw), "AttributeStatement") {
			t.Errorf("response contains an AttributeStatement")
		}
	})

	t.Run("masked person looks the same", func(t *testing.T) {
		t.Parallel()
		rel := released(t, plainVendor)
		rel.Masked = true
		_, root := build(t, plainReq, rel, defaults)
		checkAssertion(t, fx, plainAssertion(t, root), plainReq, rel)
	})

	t.Run("transient NameID differs between responses", func(t *testing.T) {
		t.Parallel()
		rel := released(t, plainVendor)
		seen := map[string]bool{}
		for range 3 {
			_, root := build(t, plainReq, rel, defaults)
			_, nameID := summarise(t, plainAssertion(t, root))
			if seen[nameID] {
				t.Errorf("transient NameID %q sent twice", nameID)
			}
			seen[nameID] = true
		}
	})

	t.Run("persistent NameID is the released pseudonym", func(t *testing.T) {
		t.Parallel()
		rel := released(t, plainVendor)
		opts := defaults
		opts.PersistentNameID = true
		for range 2 {
			_, root := build(t, plainReq, rel, opts)
			got, nameID := summarise(t, plainAssertion(t, root))
			if nameID != rel.NameID {
				t.Errorf("persistent NameID = %q, want %q", nameID, rel.NameID)
			}
			want := map[string]string{"Format": samlidp.NameIDPersistent, "NameQualifier": bridgeEntityID, "SPNameQualifier": plainVendor}
			if diff := cmp.Diff(want, got.NameIDAttrs); diff != "" {
				t.Errorf("NameID attributes (-want +got):\n%s", diff)
			}
		}
	})

	t.Run("only the assertion signed", func(t *testing.T) {
		t.Parallel()
		rel := released(t, plainVendor)
		_, root := build(t, plainReq, rel, samlidp.ResponseOptions{SignAssertion: true})
		if n := len(samlxml.Children(root, samlxml.NSDSig, "Signature")); n != 0 {
			t.Errorf("Response carries %d signatures, want none", n)
		}
		checkAssertion(t, fx, plainAssertion(t, root), plainReq, rel)
	})

	t.Run("only the response signed", func(t *testing.T) {
		t.Parallel()
		rel := released(t, plainVendor)
		_, root := build(t, plainReq, rel, samlidp.ResponseOptions{SignResponse: true})
		checkResponseEnvelope(t, fx, root, plainReq)
		if n := len(samlxml.Children(plainAssertion(t, root), samlxml.NSDSig, "Signature")); n != 0 {
			t.Errorf("Assertion carries %d signatures, want none", n)
		}
	})

	t.Run("tampering breaks both signatures", func(t *testing.T) {
		t.Parallel()
		rel := released(t, plainVendor)
		raw, _ := build(t, plainReq, rel, defaults)
		tampered := strings.Replace(string(raw), "elev4711@", "rektor@", 1)
		if tampered == string(raw) {
			t.Fatal("attribute value not found")
		}
		_, root := decodeResponse(t, base64.StdEncoding.EncodeToString([]byte(tampered)))
		if err := verifyDsig(root, fx.bridge.Cert); err == nil {
			t.Errorf("tampered Response verifies")
		}
		if err := verifyDsig(plainAssertion(t, root), fx.bridge.Cert); err == nil {
			t.Errorf("tampered Assertion verifies")
		}
	})

	t.Run("encrypted for a vendor with an encryption key", func(t *testing.T) {
		t.Parallel()
		rel := released(t, encVendor)
		raw, root := build(t, encReq, rel, defaults)
		checkResponseEnvelope(t, fx, root, encReq)
		if n := len(findAll(root, samlxml.NSAssertion, "Assertion")); n != 0 {
			t.Fatalf("encrypted response holds %d plain assertions", n)
		}
		for _, v := range []string{"elev4711", "12345678", "student@", rel.NameID} {
			if strings.Contains(string(raw), v) {
				t.Errorf("encrypted response shows %q", v)
			}
		}
		ea := one(t, root, samlxml.NSAssertion, "EncryptedAssertion")
		ed := one(t, ea, samlxml.NSXMLEnc, "EncryptedData")
		if m := one(t, ed, samlxml.NSXMLEnc, "EncryptionMethod").SelectAttrValue("Algorithm", ""); m != xmlenc.AES256GCM {
			t.Errorf("data encryption = %s, want %s", m, xmlenc.AES256GCM)
		}
		ek := findAll(ed, samlxml.NSXMLEnc, "EncryptedKey")
		if len(ek) != 1 {
			t.Fatalf("%d EncryptedKeys, want 1", len(ek))
		}
		if m := one(t, ek[0], samlxml.NSXMLEnc, "EncryptionMethod").SelectAttrValue("Algorithm", ""); m != xmlenc.RSAOAEP {
			t.Errorf("key transport = %s, want %s", m, xmlenc.RSAOAEP)
		}
		a, err := xmlenc.Decrypt(ea, fx.vendorEnc.Signer.(crypto.Decrypter), xmlenc.DecryptOptions{})
		if err != nil {
			t.Fatalf("vendor cannot decrypt: %v", err)
		}
		checkAssertion(t, fx, a, encReq, rel)
		if _, err := xmlenc.Decrypt(ea, fx.other.Signer.(crypto.Decrypter), xmlenc.DecryptOptions{}); err == nil {
			t.Errorf("another key decrypts the assertion")
		}
	})

	t.Run("encryption never: plain assertion", func(t *testing.T) {
		t.Parallel()
		rel := released(t, encVendor)
		opts := defaults
		opts.Encrypt = "never"
		_, root := build(t, encReq, rel, opts)
		checkResponseEnvelope(t, fx, root, encReq)
		checkAssertion(t, fx, plainAssertion(t, root), encReq, rel)
	})

	t.Run("encryption required with a key: encrypted", func(t *testing.T) {
		t.Parallel()
		opts := defaults
		opts.Encrypt = "required"
		_, root := build(t, encReq, released(t, encVendor), opts)
		if n := len(findAll(root, samlxml.NSAssertion, "Assertion")); n != 0 {
			t.Errorf("response holds %d plain assertions", n)
		}
		one(t, root, samlxml.NSAssertion, "EncryptedAssertion")
	})

	refusals := []struct {
		name string
		req  *samlidp.Request
		opts samlidp.ResponseOptions
		is   error // nil: any error
	}{
		{"encryption required without a key", plainReq, samlidp.ResponseOptions{SignAssertion: true, Encrypt: "required"}, samlidp.ErrNoEncryptionKey},
		{"signature method without a key", plainReq, samlidp.ResponseOptions{SignAssertion: true, SignatureMethod: xmlsig.RSASHA512}, nil},
		{"SHA-1 signature method", plainReq, samlidp.ResponseOptions{SignAssertion: true, SignatureMethod: "http://www.w3.org/2000/09/xmldsig#rsa-sha1"}, nil},
		{"unknown vendor", &samlidp.Request{ID: "_x", VendorEntityID: "https://unknown.example.org/sp", ACSURL: plainACS0}, defaults, nil},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := fx.idp.BuildResponse(tc.req, released(t, tc.req.VendorEntityID), tc.opts)
			if err == nil {
				t.Fatalf("BuildResponse succeeded (%d bytes)", len(resp))
			}
			if resp != "" {
				t.Errorf("a response came with the error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error = %v, want %v", err, tc.is)
			}
		})
	}

	t.Run("ECDSA-SHA256 verified by xmlsec1", func(t *testing.T) {
		t.Parallel()
		xmlsectest.Path(t)
		rel := released(t, plainVendor)
		opts := defaults
		opts.SignatureMethod = xmlsig.ECDSASHA256
		raw, root := build(t, plainReq, rel, opts)
		a := plainAssertion(t, root)
		for _, el := range []*etree.Element{root, a} {
			if diff := cmp.Diff(wantShape(xmlsig.ECDSASHA256, el), signatureShape(t, el)); diff != "" {
				t.Errorf("%s signature (-want +got):\n%s", el.Tag, diff)
			}
		}
		got, _ := summarise(t, a)
		if diff := cmp.Diff(wantSummary(plainReq, rel), got); diff != "" {
			t.Errorf("assertion (-want +got):\n%s", diff)
		}

		dir := t.TempDir()
		ecCert := xmlsectest.WriteFile(t, dir, "bridge-ec.pem", fx.bridgeEC.CertPEM())
		rsaCert := xmlsectest.WriteFile(t, dir, "bridge-rsa.pem", fx.bridge.CertPEM())
		good := xmlsectest.WriteFile(t, dir, "response.xml", raw)
		tampered := xmlsectest.WriteFile(t, dir, "tampered.xml", []byte(strings.Replace(string(raw), "elev4711@", "rektor@", 1)))
		verify := func(file, trusted string, node ...string) error {
			args := []string{"--verify",
				"--id-attr:ID", samlxml.NSProtocol + ":Response",
				"--id-attr:ID", samlxml.NSAssertion + ":Assertion",
				"--trusted-pem", trusted,
				"--verification-gmt-time", testNow().Format(time.DateTime),
			}
			args = append(append(args, node...), file)
			_, stderr, err := xmlsectest.Run(t, args...)
			if err != nil {
				return errors.New(string(stderr))
			}
			return nil
		}
		// Without --node-id xmlsec1 verifies the first signature in
		// document order: the Response's.
		assertionNode := []string{"--node-id", a.SelectAttrValue("ID", "")}
		if err := verify(good, ecCert); err != nil {
			t.Errorf("xmlsec1 does not verify the Response signature: %s", err)
		}
		if err := verify(good, ecCert, assertionNode...); err != nil {
			t.Errorf("xmlsec1 does not verify the Assertion signature: %s", err)
		}
		for _, c := range []struct {
			name, file, cert string
			node             []string
		}{
			{"tampered Response", tampered, ecCert, nil},
			{"tampered Assertion", tampered, ecCert, assertionNode},
			{"Response with another trusted certificate", good, rsaCert, nil},
		} {
			if err := verify(c.file, c.cert, c.node...); err == nil {
				t.Errorf("xmlsec1 verifies the %s", c.name)
			}
		}
	})
}

// TestMetadata: the IdP metadata vendors load names the scope (or they drop
// scoped attributes), every signing certificate, and SSO endpoints for both
// bindings.
func TestMetadata(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	validFor := 7 * 24 * time.Hour
	b, err := fx.idp.Metadata(validFor)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		t.Fatalf("metadata does not parse: %v", err)
	}
	ed := doc.Root()
	if !samlxml.Is(ed, samlxml.NSMetadata, "EntityDescriptor") {
		t.Fatalf("root is %s", ed.Tag)
	}
	if diff := cmp.Diff(map[string]string{"entityID": bridgeEntityID, "validUntil": stamp(testNow().Add(validFor))}, attrs(ed)); diff != "" {
		t.Errorf("EntityDescriptor (-want +got):\n%s", diff)
	}
	idp := one(t, ed, samlxml.NSMetadata, "IDPSSODescriptor")
	scopes := findAll(one(t, idp, samlxml.NSMetadata, "Extensions"), nsShibMD, "Scope")
	if len(scopes) != 1 || scopes[0].Text() != scope || scopes[0].SelectAttrValue("regexp", "") != "false" {
		t.Errorf("shibmd:Scope elements = %d, want one with %q and regexp=false", len(scopes), scope)
	}

	var certs []string
	for _, kd := range samlxml.Children(idp, samlxml.NSMetadata, "KeyDescriptor") {
		if u := kd.SelectAttrValue("use", ""); u != "signing" {
			t.Errorf("KeyDescriptor use = %q, want signing", u)
		}
		for _, c := range findAll(kd, samlxml.NSDSig, "X509Certificate") {
			certs = append(certs, c.Text())
		}
	}
	wantCerts := []string{
		base64.StdEncoding.EncodeToString(fx.bridge.Cert.Raw),
		base64.StdEncoding.EncodeToString(fx.bridgeEC.Cert.Raw),
	}
	if diff := cmp.Diff(wantCerts, certs); diff != "" {
		t.Errorf("signing certificates (-want +got):\n%s", diff)
	}

	// A vendor SP built on crewjam/saml reads it the same way.
	var md saml.EntityDescriptor
	if err := xml.Unmarshal(b, &md); err != nil {
		t.Fatalf("crewjam/saml cannot read the metadata: %v", err)
	}
	if len(md.IDPSSODescriptors) != 1 {
		t.Fatalf("%d IDPSSODescriptors", len(md.IDPSSODescriptors))
	}
	var sso []saml.Endpoint
	for _, e := range md.IDPSSODescriptors[0].SingleSignOnServices {
		sso = append(sso, saml.Endpoint{Binding: e.Binding, Location: e.Location})
	}
	wantSSO := []saml.Endpoint{{Binding: samlidp.BindingRedirect, Location: ssoURL}, {Binding: samlidp.BindingPOST, Location: ssoURL}}
	if diff := cmp.Diff(wantSSO, sso); diff != "" {
		t.Errorf("SSO endpoints (-want +got):\n%s", diff)
	}
	var formats []string
	for _, f := range md.IDPSSODescriptors[0].NameIDFormats {
		formats = append(formats, string(f))
	}
	if diff := cmp.Diff([]string{samlidp.NameIDTransient, samlidp.NameIDPersistent}, formats); diff != "" {
		t.Errorf("NameIDFormats (-want +got):\n%s", diff)
	}
}
