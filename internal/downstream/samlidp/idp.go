package samlidp

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/release"
	"github.com/skolbro/skolbro/internal/samlslo"
	"github.com/skolbro/skolbro/internal/xmlenc"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// NameID formats.
const (
	NameIDTransient   = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
	NameIDPersistent  = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	NameIDUnspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
	attrNameFormatURI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
	statusSuccess     = "urn:oasis:names:tc:SAML:2.0:status:Success"
	confirmBearer     = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	classUnspecified  = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
	nsXSI             = "http://www.w3.org/2001/XMLSchema-instance"
	nsXS              = "http://www.w3.org/2001/XMLSchema"
)

// IdP is the bridge's IdP side for one organiser.
type IdP struct {
	EntityID string
	SSOURL   string
	// SLOURL is the SingleLogoutService (both bindings); "" publishes none
	// and refuses logout messages.
	SLOURL string
	// Scope is the organiser's scope, published as shibmd:Scope;
	// ExtraScopes are its further scopes, published too.
	Scope       string
	ExtraScopes []string
	// Signer signs responses and assertions (RSA-SHA256 by default).
	Signer *xmlsig.Signer
	// AltSigners by signature method URI, for vendors configured for
	// another algorithm (e.g. ECDSA-SHA256).
	AltSigners map[string]*xmlsig.Signer
	// Vendors by entityID: only vendors with both metadata and a policy.
	Vendors map[string]*Vendor
	// Lookup, when set, finds vendors that are not in Vendors, e.g. in a
	// federation aggregate refreshed at run time. It must answer only for
	// entityIDs that a release policy names.
	Lookup func(entityID string) (*Vendor, bool)
	// NextSigningCert is announced in the metadata before it is used, so
	// that vendors know it when the bridge switches (key rollover).
	NextSigningCert *x509.Certificate
	// AssertionLifetime bounds the assertion's validity (default 5m).
	AssertionLifetime time.Duration
	// ClockSkew tolerated on incoming IssueInstant (default 2m).
	ClockSkew time.Duration
	// MaxRequestAge refuses older AuthnRequests (default 10m).
	MaxRequestAge time.Duration
	Now           func() time.Time
	Rand          io.Reader
}

// Vendor finds a vendor by entityID: local metadata first, then Lookup.
func (idp *IdP) Vendor(entityID string) (*Vendor, bool) {
	if v, ok := idp.Vendors[entityID]; ok {
		return v, true
	}
	if idp.Lookup != nil {
		return idp.Lookup(entityID)
	}
	return nil, false
}

func (idp *IdP) now() time.Time {
	if idp.Now != nil {
		return idp.Now()
	}
	return time.Now()
}

func (idp *IdP) rand() io.Reader {
	if idp.Rand != nil {
		return idp.Rand
	}
	return rand.Reader
}

func (idp *IdP) skew() time.Duration {
	if idp.ClockSkew > 0 {
		return idp.ClockSkew
	}
	return 2 * time.Minute
}

func (idp *IdP) maxRequestAge() time.Duration {
	if idp.MaxRequestAge > 0 {
		return idp.MaxRequestAge
	}
	return 10 * time.Minute
}

func (idp *IdP) lifetime() time.Duration {
	if idp.AssertionLifetime > 0 {
		return idp.AssertionLifetime
	}
	return 5 * time.Minute
}

func (idp *IdP) newID() (string, error) {
	b := make([]byte, 20)
	if _, err := io.ReadFull(idp.rand(), b); err != nil {
		return "", err
	}
	return "_" + hex.EncodeToString(b), nil
}

// ResponseOptions are the per-vendor choices from its release policy.
type ResponseOptions struct {
	// SignResponse and SignAssertion; at least one must be set.
	SignResponse, SignAssertion bool
	// SignResponseIfWanted signs the Response too when the vendor's
	// metadata asks for it (Vendor.WantsSignedResponse).
	SignResponseIfWanted bool
	// SignatureMethod selects an alternative signer; "" uses the default,
	// or with AutoSignatureMethod the one the vendor announces.
	SignatureMethod string
	// AutoSignatureMethod, when SignatureMethod is "", signs with the first
	// method of the vendor's alg:SigningMethod list that the IdP has a key
	// for: ECDSA P-256 for a vendor that prefers it costs a tenth of an
	// RSA signature. A vendor that announces nothing gets the default.
	AutoSignatureMethod bool
	// Encrypt: "auto" (when the vendor has an encryption key), "never",
	// "required", or "cbc" (required, and AES-CBC when the vendor's
	// metadata lists AES-CBC but no AES-GCM). See Encryption.
	Encrypt string
	// PersistentNameID uses rel.NameID as a persistent NameID; otherwise a
	// fresh transient NameID is made.
	PersistentNameID bool
}

// AnnouncedMethod is the first signature method v's metadata announces
// that the IdP can sign with (its default signer or an AltSigner), or ""
// when there is none.
func (idp *IdP) AnnouncedMethod(v *Vendor) string {
	for _, m := range v.SigningMethods {
		if !xmlsig.AcceptedSignatureMethods[m] {
			continue // SHA-1 or unknown: never signed with
		}
		if idp.Signer != nil && m == idp.Signer.Method() {
			return m
		}
		if _, ok := idp.AltSigners[m]; ok {
			return m
		}
	}
	return ""
}

// ErrNoEncryptionKey is returned when encryption is required but the
// vendor's metadata has no encryption key.
var ErrNoEncryptionKey = errors.New("samlidp: vendor has no encryption key")

// Encryption decides whether a response to v is encrypted under the encrypt
// mode of its policy (see ResponseOptions.Encrypt), and with which methods:
// those v's md:EncryptionMethod lists, as xmlenc.ChooseFromMetadata picks
// them. A vendor that lists only AES-CBC is refused (xmlenc.ErrOnlyCBC)
// unless the mode is "cbc", rather than sent AES-GCM it cannot decrypt or
// CBC nobody chose. check calls it too, so that it refuses what serve would.
func Encryption(v *Vendor, mode string) (bool, xmlenc.Options, error) {
	switch mode {
	case "never":
		return false, xmlenc.Options{}, nil
	case "required", "cbc":
		if v.EncryptionCert == nil {
			return false, xmlenc.Options{}, ErrNoEncryptionKey
		}
	default:
		if v.EncryptionCert == nil {
			return false, xmlenc.Options{}, nil
		}
	}
	eo, err := xmlenc.ChooseFromMetadata(v.EncryptionMethods, mode == "cbc")
	if err != nil {
		return false, xmlenc.Options{}, fmt.Errorf("samlidp: vendor encryption: %w", err)
	}
	return true, eo, nil
}

// BuildResponse makes the base64 SAMLResponse answering req with what the
// release step produced. The vendor receives exactly rel.Attributes.
func (idp *IdP) BuildResponse(req *Request, rel *release.Released, opts ResponseOptions) (string, error) {
	resp, _, err := idp.BuildResponseIssued(req, rel, opts)
	return resp, err
}

// Issued is what a response gave the vendor to name the session by: the
// NameID as written and the SessionIndex, which its LogoutRequest must
// name (Single Logout).
type Issued struct {
	NameID       samlslo.NameID
	SessionIndex string
}

// BuildResponseIssued is BuildResponse that also returns the NameID and
// SessionIndex the response carries.
func (idp *IdP) BuildResponseIssued(req *Request, rel *release.Released, opts ResponseOptions) (string, Issued, error) {
	resp, issued, err := idp.buildResponse(req, rel, opts)
	return resp, issued, err
}

func (idp *IdP) buildResponse(req *Request, rel *release.Released, opts ResponseOptions) (string, Issued, error) {
	var issued Issued
	vendor, ok := idp.Vendor(req.VendorEntityID)
	if !ok {
		return "", issued, fmt.Errorf("samlidp: unknown vendor")
	}
	if opts.SignResponseIfWanted && vendor.WantsSignedResponse {
		opts.SignResponse = true
	}
	if !opts.SignResponse && !opts.SignAssertion {
		opts.SignResponse, opts.SignAssertion = true, true
	}
	signer := idp.Signer
	if opts.SignatureMethod == "" && opts.AutoSignatureMethod {
		opts.SignatureMethod = idp.AnnouncedMethod(vendor)
	}
	if opts.SignatureMethod != "" && opts.SignatureMethod != signer.Method() {
		if s, ok := idp.AltSigners[opts.SignatureMethod]; ok {
			signer = s
		} else {
			return "", issued, fmt.Errorf("samlidp: no key for signature method %s", opts.SignatureMethod)
		}
	}
	// Decided first: a vendor that cannot be answered costs no signature.
	encrypt, eo, err := Encryption(vendor, opts.Encrypt)
	if err != nil {
		return "", issued, err
	}
	now := idp.now().UTC()
	assertion, issued, err := idp.buildAssertion(req, rel, opts, now)
	if err != nil {
		return "", issued, err
	}
	if opts.SignAssertion {
		// In place: the assertion was built for this response alone.
		if err = signer.SignInPlace(assertion); err != nil {
			return "", issued, fmt.Errorf("samlidp: sign assertion: %w", err)
		}
	}
	if encrypt {
		if assertion, err = xmlenc.EncryptAssertion(assertion, vendor.EncryptionCert, eo, idp.rand()); err != nil {
			return "", issued, fmt.Errorf("samlidp: encrypt assertion: %w", err)
		}
	}
	respID, err := idp.newID()
	if err != nil {
		return "", issued, err
	}
	resp := etree.NewElement("samlp:Response")
	resp.CreateAttr("xmlns:samlp", "urn:oasis:names:tc:SAML:2.0:protocol")
	resp.CreateAttr("xmlns:saml", "urn:oasis:names:tc:SAML:2.0:assertion")
	resp.CreateAttr("ID", respID)
	resp.CreateAttr("Version", "2.0")
	resp.CreateAttr("IssueInstant", stamp(now))
	resp.CreateAttr("Destination", req.ACSURL)
	resp.CreateAttr("InResponseTo", req.ID)
	resp.CreateElement("saml:Issuer").SetText(idp.EntityID)
	resp.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", statusSuccess)
	resp.AddChild(assertion)
	if opts.SignResponse {
		if err = signer.SignInPlace(resp); err != nil {
			return "", issued, fmt.Errorf("samlidp: sign response: %w", err)
		}
	}
	// Written as a document holding only resp would write it; the buffer
	// is sized once (a response with an encrypted assertion is about 9 KB).
	var buf bytes.Buffer
	buf.Grow(16 << 10)
	resp.WriteTo(&buf, &etree.WriteSettings{})
	return base64.StdEncoding.EncodeToString(buf.Bytes()), issued, nil
}

// Second-level status codes the bridge answers with.
const (
	StatusRequester           = "urn:oasis:names:tc:SAML:2.0:status:Requester"
	StatusResponder           = "urn:oasis:names:tc:SAML:2.0:status:Responder"
	StatusNoPassive           = "urn:oasis:names:tc:SAML:2.0:status:NoPassive"
	StatusInvalidNameIDPolicy = "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"
	StatusAuthnFailed         = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
	StatusNoAuthnContext      = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext"
)

// BuildStatusResponse makes a signed Response without an assertion that
// tells the vendor why its request cannot be met (e.g. NoPassive). Only a
// validated request's ACS receives it.
func (idp *IdP) BuildStatusResponse(req *Request, code, subCode string) (string, error) {
	respID, err := idp.newID()
	if err != nil {
		return "", err
	}
	resp := etree.NewElement("samlp:Response")
	resp.CreateAttr("xmlns:samlp", "urn:oasis:names:tc:SAML:2.0:protocol")
	resp.CreateAttr("xmlns:saml", "urn:oasis:names:tc:SAML:2.0:assertion")
	resp.CreateAttr("ID", respID)
	resp.CreateAttr("Version", "2.0")
	resp.CreateAttr("IssueInstant", stamp(idp.now()))
	resp.CreateAttr("Destination", req.ACSURL)
	resp.CreateAttr("InResponseTo", req.ID)
	resp.CreateElement("saml:Issuer").SetText(idp.EntityID)
	sc := resp.CreateElement("samlp:Status").CreateElement("samlp:StatusCode")
	sc.CreateAttr("Value", code)
	if subCode != "" {
		sc.CreateElement("samlp:StatusCode").CreateAttr("Value", subCode)
	}
	if err = idp.Signer.SignInPlace(resp); err != nil {
		return "", fmt.Errorf("samlidp: sign response: %w", err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(resp)
	b, err := doc.WriteToBytes()
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (idp *IdP) buildAssertion(req *Request, rel *release.Released, opts ResponseOptions, now time.Time) (*etree.Element, Issued, error) {
	var issued Issued
	id, err := idp.newID()
	if err != nil {
		return nil, issued, err
	}
	notAfter := stamp(now.Add(idp.lifetime()))
	a := etree.NewElement("saml:Assertion")
	a.CreateAttr("xmlns:saml", "urn:oasis:names:tc:SAML:2.0:assertion")
	a.CreateAttr("xmlns:xs", nsXS)
	a.CreateAttr("xmlns:xsi", nsXSI)
	a.CreateAttr("ID", id)
	a.CreateAttr("Version", "2.0")
	a.CreateAttr("IssueInstant", stamp(now))
	a.CreateElement("saml:Issuer").SetText(idp.EntityID)

	subj := a.CreateElement("saml:Subject")
	nameID := subj.CreateElement("saml:NameID")
	if opts.PersistentNameID && rel.NameID != "" {
		nameID.CreateAttr("Format", NameIDPersistent)
		nameID.CreateAttr("NameQualifier", idp.EntityID)
		nameID.CreateAttr("SPNameQualifier", req.VendorEntityID)
		nameID.SetText(rel.NameID)
		issued.NameID = samlslo.NameID{Value: rel.NameID, Format: NameIDPersistent, NameQualifier: idp.EntityID, SPNameQualifier: req.VendorEntityID}
	} else {
		transient, err := idp.newID()
		if err != nil {
			return nil, issued, err
		}
		nameID.CreateAttr("Format", NameIDTransient)
		nameID.CreateAttr("NameQualifier", idp.EntityID)
		nameID.CreateAttr("SPNameQualifier", req.VendorEntityID)
		nameID.SetText(transient)
		issued.NameID = samlslo.NameID{Value: transient, Format: NameIDTransient, NameQualifier: idp.EntityID, SPNameQualifier: req.VendorEntityID}
	}
	sc := subj.CreateElement("saml:SubjectConfirmation")
	sc.CreateAttr("Method", confirmBearer)
	scd := sc.CreateElement("saml:SubjectConfirmationData")
	// No Address: the client's ip:port is not ours to publish, and strict
	// SPs refuse it.
	scd.CreateAttr("InResponseTo", req.ID)
	scd.CreateAttr("NotOnOrAfter", notAfter)
	scd.CreateAttr("Recipient", req.ACSURL)

	cond := a.CreateElement("saml:Conditions")
	cond.CreateAttr("NotBefore", stamp(now))
	cond.CreateAttr("NotOnOrAfter", notAfter)
	cond.CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText(req.VendorEntityID)

	sessionIndex, err := idp.newID()
	if err != nil {
		return nil, issued, err
	}
	as := a.CreateElement("saml:AuthnStatement")
	instant := rel.AuthnInstant
	if instant.IsZero() || instant.After(now) {
		instant = now
	}
	as.CreateAttr("AuthnInstant", stamp(instant))
	as.CreateAttr("SessionIndex", sessionIndex)
	issued.SessionIndex = sessionIndex
	class := rel.AuthnContext
	if class == "" {
		class = classUnspecified
	}
	as.CreateElement("saml:AuthnContext").CreateElement("saml:AuthnContextClassRef").SetText(class)

	// Some SPs refuse an empty AttributeStatement: leave it out when the
	// vendor is released nothing.
	if len(rel.Attributes) > 0 {
		st := a.CreateElement("saml:AttributeStatement")
		for _, ra := range rel.Attributes {
			el := st.CreateElement("saml:Attribute")
			el.CreateAttr("Name", ra.Def.SAMLName)
			el.CreateAttr("NameFormat", attrNameFormatURI)
			el.CreateAttr("FriendlyName", ra.Def.Name)
			for _, v := range ra.Values {
				ve := el.CreateElement("saml:AttributeValue")
				ve.CreateAttr("xsi:type", "xs:string")
				ve.SetText(v)
			}
		}
	}
	return a, issued, nil
}

// Metadata returns the bridge's IdP metadata (unsigned) as a document.
func (idp *IdP) Metadata(validFor time.Duration) ([]byte, error) {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	doc.SetRoot(idp.MetadataElement(validFor))
	doc.Indent(2)
	return doc.WriteToBytes()
}

// MetadataElement returns the bridge's IdP EntityDescriptor (unsigned):
// signing keys (the next one too, when announced), SSO endpoints for both
// bindings, and the organiser's scope as shibmd:Scope so that vendors
// accept the scoped attributes.
func (idp *IdP) MetadataElement(validFor time.Duration) *etree.Element {
	ed := etree.NewElement("md:EntityDescriptor")
	ed.CreateAttr("xmlns:md", "urn:oasis:names:tc:SAML:2.0:metadata")
	ed.CreateAttr("xmlns:ds", "http://www.w3.org/2000/09/xmldsig#")
	ed.CreateAttr("xmlns:shibmd", "urn:mace:shibboleth:metadata:1.0")
	ed.CreateAttr("entityID", idp.EntityID)
	ed.CreateAttr("validUntil", stamp(idp.now().Add(validFor)))
	sso := ed.CreateElement("md:IDPSSODescriptor")
	sso.CreateAttr("protocolSupportEnumeration", "urn:oasis:names:tc:SAML:2.0:protocol")
	sso.CreateAttr("WantAuthnRequestsSigned", "false")
	ext := sso.CreateElement("md:Extensions")
	for _, scope := range append([]string{idp.Scope}, idp.ExtraScopes...) {
		sc := ext.CreateElement("shibmd:Scope")
		sc.CreateAttr("regexp", "false")
		sc.SetText(scope)
	}
	signers := []*xmlsig.Signer{idp.Signer}
	for _, s := range idp.AltSigners {
		if s != idp.Signer {
			signers = append(signers, s)
		}
	}
	certs := make([]*x509.Certificate, 0, len(signers)+1)
	for _, s := range signers {
		certs = append(certs, s.Pair().Cert)
	}
	if idp.NextSigningCert != nil {
		certs = append(certs, idp.NextSigningCert)
	}
	for _, c := range certs {
		kd := sso.CreateElement("md:KeyDescriptor")
		kd.CreateAttr("use", "signing")
		kd.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
			SetText(base64.StdEncoding.EncodeToString(c.Raw))
	}
	if idp.SLOURL != "" {
		for _, b := range []string{BindingRedirect, BindingPOST} {
			e := sso.CreateElement("md:SingleLogoutService")
			e.CreateAttr("Binding", b)
			e.CreateAttr("Location", idp.SLOURL)
		}
	}
	for _, f := range []string{NameIDTransient, NameIDPersistent} {
		sso.CreateElement("md:NameIDFormat").SetText(f)
	}
	for _, b := range []string{BindingRedirect, BindingPOST} {
		e := sso.CreateElement("md:SingleSignOnService")
		e.CreateAttr("Binding", b)
		e.CreateAttr("Location", idp.SSOURL)
	}
	return ed
}
