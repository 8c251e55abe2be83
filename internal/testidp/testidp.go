// Package testidp is the built-in test school IdP: a SAML IdP with a user
// picker instead of a password, for the demo, the tests and load tests. It
// signs its responses like a real school IdP would, and its Respond options
// let tests mutate a response before and after signing to build attacks.
package testidp

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/beevik/etree"
	"github.com/russellhaering/goxmldsig/etreeutils"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// SAML URIs the IdP writes.
const (
	StatusSuccess     = "urn:oasis:names:tc:SAML:2.0:status:Success"
	StatusResponder   = "urn:oasis:names:tc:SAML:2.0:status:Responder"
	StatusRequester   = "urn:oasis:names:tc:SAML:2.0:status:Requester"
	StatusAuthnFailed = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
	NameIDPersistent  = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	NameIDEntity      = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
	AttrNameFormatURI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
	BearerMethod      = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	PasswordProtected = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
	// PasswordOTP is the class the IdP writes for a login with a password
	// and a one-time code: REFEDS MFA, as many IdPs say it.
	PasswordOTP          = "https://refeds.org/profile/mfa"
	StatusNoPassive      = "urn:oasis:names:tc:SAML:2.0:status:NoPassive"
	HTTPRedirectBinding  = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	HTTPPostBinding      = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
	nsXS                 = "http://www.w3.org/2001/XMLSchema"
	nsXSI                = "http://www.w3.org/2001/XMLSchema-instance"
	nsShibMD             = "urn:mace:shibboleth:metadata:1.0"
	defaultLifetime      = 5 * time.Minute
	securityMarkingLocal = "securityMarking"
)

// User is one identity the IdP can log in.
type User struct {
	Login string
	// Label is shown in the picker, e.g. "Elev, Skola A".
	Label  string
	NameID string
	// Attributes are keyed by SAML name (urn:oid:...).
	Attributes map[string][]string
}

// IdP is the test school IdP.
type IdP struct {
	EntityID string
	// SSOURL is the IdP's HTTP-Redirect SSO endpoint (where ServeHTTP runs).
	SSOURL string
	Signer *xmlsig.Signer
	Users  []User
	Now    func() time.Time
	Rand   io.Reader
	// Scope is the organiser's scope, published as shibmd:Scope.
	Scope string
	// ACSURL is the one ACS URL ServeHTTP posts responses to.
	ACSURL string
	// TrustACS, when set, decides instead of ACSURL which ACS URLs a
	// request may name.
	TrustACS func(spEntityID, acsURL string) bool
	// SLOURL is the IdP's SingleLogoutService (HTTP-Redirect, served by
	// ServeSLO); SP is the one SP it logs out. Both are optional.
	SLOURL string
	SP     SP
	// Options apply to every response, before those given to Respond
	// (the load test's realistic IdP signs the Response too).
	Options []Option

	sloOnce  sync.Once
	sloState *sloState
	mu       sync.Mutex
	sessions map[string]session
	// sso and ignoreForceAuthn: see SetSessions and SetIgnoreForceAuthn.
	sso, ignoreForceAuthn bool
}

// SetSessions makes ServeHTTP remember a login in a cookie, as a real
// IdP's single sign-on does: the next request without ForceAuthn is
// answered at once with the earlier AuthnInstant, and IsPassive is
// answered without a picker (NoPassive when there is no session).
func (idp *IdP) SetSessions(on bool) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.sso = on
}

// SetIgnoreForceAuthn makes ServeHTTP answer from the session even when
// asked for a fresh login: a misbehaving IdP, for tests.
func (idp *IdP) SetIgnoreForceAuthn(on bool) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.ignoreForceAuthn = on
}

func (idp *IdP) flags() (sso, ignoreForceAuthn bool) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return idp.sso, idp.ignoreForceAuthn
}

// session is one remembered login.
type session struct {
	login string
	class string
	at    time.Time
}

// Request is what the IdP needs from an AuthnRequest.
type Request struct {
	ID         string
	ACSURL     string
	SPEntityID string
	// ForceAuthn, IsPassive and the RequestedAuthnContext, as asked.
	ForceAuthn, IsPassive bool
	AuthnContextClassRefs []string
	Comparison            string
}

// New returns an IdP with DemoUsers(scope).
func New(entityID, ssoURL, scope string, signer *xmlsig.Signer) *IdP {
	return &IdP{
		EntityID: entityID,
		SSOURL:   ssoURL,
		Signer:   signer,
		Users:    DemoUsers(scope),
		Now:      time.Now,
		Rand:     rand.Reader,
		Scope:    scope,
	}
}

// User returns the user with login, if any.
func (idp *IdP) User(login string) (User, bool) {
	for _, u := range idp.Users {
		if u.Login == login {
			return u, true
		}
	}
	return User{}, false
}

type options struct {
	authnAt       time.Time
	class         string
	signAssertion bool
	signResponse  bool
	encrypt       func(*etree.Element) (*etree.Element, error)
	at            time.Time
	lifetime      time.Duration
	status        string
	subStatus     string
	signer        *xmlsig.Signer
	before, after []func(*etree.Document)
}

// Option changes how Respond builds a response.
type Option func(*options)

// SignResponse signs the Response as well as the Assertion.
func SignResponse() Option { return func(o *options) { o.signResponse = true } }

// UnsignedAssertion leaves the Assertion unsigned.
func UnsignedAssertion() Option { return func(o *options) { o.signAssertion = false } }

// At sets the issue instant instead of the IdP's clock.
func At(t time.Time) Option { return func(o *options) { o.at = t } }

// Lifetime sets how long the assertion is valid (default 5 minutes).
func Lifetime(d time.Duration) Option { return func(o *options) { o.lifetime = d } }

// Status makes a response with a non-Success status and no assertion;
// sub is an optional second-level status code.
func Status(code, sub string) Option {
	return func(o *options) { o.status, o.subStatus = code, sub }
}

// AuthnAt sets the AuthnInstant (default: the issue instant), e.g. an
// earlier login's.
func AuthnAt(t time.Time) Option { return func(o *options) { o.authnAt = t } }

// AuthnClass sets the AuthnContextClassRef (default PasswordProtected).
func AuthnClass(c string) Option { return func(o *options) { o.class = c } }

// SignWith signs with s instead of the IdP's Signer.
func SignWith(s *xmlsig.Signer) Option { return func(o *options) { o.signer = s } }

// BeforeSigning runs f on the document before anything is signed.
func BeforeSigning(f func(*etree.Document)) Option {
	return func(o *options) { o.before = append(o.before, f) }
}

// EncryptAssertion replaces the (signed) Assertion with what encrypt
// returns for it, a saml:EncryptedAssertion, before the Response is
// signed: the shape ADFS sends to an SP that publishes an encryption key.
func EncryptAssertion(encrypt func(assertion *etree.Element) (*etree.Element, error)) Option {
	return func(o *options) { o.encrypt = encrypt }
}

// AfterSigning runs f on the document after signing, before encoding.
func AfterSigning(f func(*etree.Document)) Option {
	return func(o *options) { o.after = append(o.after, f) }
}

// Respond builds a Response to req for u and returns it base64-encoded, as
// the HTTP-POST binding carries it. By default the Assertion is signed and
// the Response is not.
func (idp *IdP) Respond(req Request, u User, opts ...Option) (string, error) {
	o := options{signAssertion: true, lifetime: defaultLifetime, status: StatusSuccess, signer: idp.Signer, class: PasswordProtected}
	for _, opt := range idp.Options {
		opt(&o)
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.at.IsZero() {
		o.at = idp.now()
	}
	if o.authnAt.IsZero() {
		o.authnAt = o.at
	}
	doc, err := idp.build(req, u, &o)
	if err != nil {
		return "", err
	}
	for _, f := range o.before {
		f(doc)
	}
	if o.signAssertion {
		if err := signAssertions(doc, o.signer); err != nil {
			return "", err
		}
	}
	if o.encrypt != nil {
		root := doc.Root()
		for _, a := range root.ChildElements() {
			if a.Tag != "Assertion" {
				continue
			}
			enc, err := o.encrypt(a)
			if err != nil {
				return "", fmt.Errorf("testidp: encrypt assertion: %w", err)
			}
			root.InsertChildAt(a.Index(), enc)
			root.RemoveChild(a)
		}
	}
	if o.signResponse {
		if err := signRoot(doc, o.signer); err != nil {
			return "", err
		}
	}
	for _, f := range o.after {
		f(doc)
	}
	b, err := doc.WriteToBytes()
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func (idp *IdP) now() time.Time {
	if idp.Now != nil {
		return idp.Now()
	}
	return time.Now()
}

func (idp *IdP) newID() (string, error) {
	r := idp.Rand
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, 16)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("testidp: random id: %w", err)
	}
	return "_" + hex.EncodeToString(b), nil
}

// Timestamp formats t as SAML writes instants.
func Timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (idp *IdP) build(req Request, u User, o *options) (*etree.Document, error) {
	respID, err := idp.newID()
	if err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	resp := doc.CreateElement("samlp:Response")
	resp.CreateAttr("xmlns:samlp", samlxml.NSProtocol)
	resp.CreateAttr("xmlns:saml", samlxml.NSAssertion)
	resp.CreateAttr("ID", respID)
	resp.CreateAttr("Version", "2.0")
	resp.CreateAttr("IssueInstant", Timestamp(o.at))
	resp.CreateAttr("Destination", req.ACSURL)
	if req.ID != "" {
		resp.CreateAttr("InResponseTo", req.ID)
	}
	iss := resp.CreateElement("saml:Issuer")
	iss.CreateAttr("Format", NameIDEntity)
	iss.SetText(idp.EntityID)
	st := resp.CreateElement("samlp:Status")
	sc := st.CreateElement("samlp:StatusCode")
	sc.CreateAttr("Value", o.status)
	if o.subStatus != "" {
		sc.CreateElement("samlp:StatusCode").CreateAttr("Value", o.subStatus)
	}
	if o.status != StatusSuccess {
		return doc, nil
	}

	aID, err := idp.newID()
	if err != nil {
		return nil, err
	}
	sessionIndex, err := idp.newID()
	if err != nil {
		return nil, err
	}
	idp.noteSession(u.Login, sessionIndex)
	until := Timestamp(o.at.Add(o.lifetime))
	a := resp.CreateElement("saml:Assertion")
	// The assertion declares its own namespaces, as most IdPs write it, so
	// that it can be signed on its own.
	a.CreateAttr("xmlns:saml", samlxml.NSAssertion)
	a.CreateAttr("xmlns:xs", nsXS)
	a.CreateAttr("xmlns:xsi", nsXSI)
	a.CreateAttr("ID", aID)
	a.CreateAttr("Version", "2.0")
	a.CreateAttr("IssueInstant", Timestamp(o.at))
	ai := a.CreateElement("saml:Issuer")
	ai.CreateAttr("Format", NameIDEntity)
	ai.SetText(idp.EntityID)

	subj := a.CreateElement("saml:Subject")
	nid := subj.CreateElement("saml:NameID")
	nid.CreateAttr("Format", NameIDPersistent)
	nid.CreateAttr("NameQualifier", idp.EntityID)
	nid.CreateAttr("SPNameQualifier", req.SPEntityID)
	nid.SetText(u.NameID)
	conf := subj.CreateElement("saml:SubjectConfirmation")
	conf.CreateAttr("Method", BearerMethod)
	cd := conf.CreateElement("saml:SubjectConfirmationData")
	if req.ID != "" {
		cd.CreateAttr("InResponseTo", req.ID)
	}
	cd.CreateAttr("NotOnOrAfter", until)
	cd.CreateAttr("Recipient", req.ACSURL)

	cond := a.CreateElement("saml:Conditions")
	cond.CreateAttr("NotBefore", Timestamp(o.at))
	cond.CreateAttr("NotOnOrAfter", until)
	cond.CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText(req.SPEntityID)

	as := a.CreateElement("saml:AuthnStatement")
	as.CreateAttr("AuthnInstant", Timestamp(o.authnAt))
	as.CreateAttr("SessionIndex", sessionIndex)
	as.CreateElement("saml:AuthnContext").CreateElement("saml:AuthnContextClassRef").SetText(o.class)

	if len(u.Attributes) > 0 {
		stmt := a.CreateElement("saml:AttributeStatement")
		names := make([]string, 0, len(u.Attributes))
		for n := range u.Attributes {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			at := stmt.CreateElement("saml:Attribute")
			at.CreateAttr("Name", n)
			at.CreateAttr("NameFormat", AttrNameFormatURI)
			if fn := friendlyName(n); fn != "" {
				at.CreateAttr("FriendlyName", fn)
			}
			for _, v := range u.Attributes[n] {
				av := at.CreateElement("saml:AttributeValue")
				av.CreateAttr("xsi:type", "xs:string")
				av.SetText(v)
			}
		}
	}
	return doc, nil
}

func friendlyName(samlName string) string {
	if samlName == AttrSecurityMarking {
		return securityMarkingLocal
	}
	if d, ok := attr.Lookup(samlName); ok && d.SAMLName == samlName {
		return d.Name
	}
	return ""
}

// signAssertions signs every saml:Assertion that is a child of the root.
// Each is signed detached from the document, with the namespaces in scope
// declared on it, so that hooks may move namespace declarations around.
func signAssertions(doc *etree.Document, s *xmlsig.Signer) error {
	root := doc.Root()
	for _, a := range samlxml.Children(root, samlxml.NSAssertion, "Assertion") {
		signed, err := signDetached(a, s)
		if err != nil {
			return err
		}
		i := a.Index()
		root.RemoveChildAt(i)
		root.InsertChildAt(i, signed)
	}
	return nil
}

func signRoot(doc *etree.Document, s *xmlsig.Signer) error {
	signed, err := signDetached(doc.Root(), s)
	if err != nil {
		return err
	}
	doc.SetRoot(signed)
	return nil
}

func signDetached(el *etree.Element, s *xmlsig.Signer) (*etree.Element, error) {
	if s == nil {
		return nil, errors.New("testidp: no signer")
	}
	ctx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		return nil, fmt.Errorf("testidp: sign: %w", err)
	}
	det, err := etreeutils.NSDetatch(ctx, el)
	if err != nil {
		return nil, fmt.Errorf("testidp: sign: %w", err)
	}
	signed, err := s.SignEnveloped(det)
	if err != nil {
		return nil, fmt.Errorf("testidp: sign: %w", err)
	}
	return signed, nil
}
