// Package samlsp is the bridge as a SAML service provider towards the
// school's IdP: it sends AuthnRequests with the HTTP-Redirect binding and
// validates the HTTP-POST responses itself, on etree and goxmldsig, rather
// than with crewjam/saml's ParseResponse, whose gaps SECURITY.md lists.
//
// Validation fails closed. Everything the bridge uses from an assertion is
// read from the element goxmldsig returns after verifying the signature (the
// canonical bytes it hashed), never from the received tree; the received tree
// is only inspected to refuse it (wrapping, second assertions, algorithms,
// comments, duplicate IDs).
package samlsp

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/samlslo"
	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// SAML URIs used here.
const (
	HTTPPostBinding     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
	HTTPRedirectBinding = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	StatusSuccess       = "urn:oasis:names:tc:SAML:2.0:status:Success"
	BearerMethod        = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	NameIDEntity        = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
)

// Defaults and bounds of Config.
const (
	DefaultClockSkew  = 2 * time.Minute
	MaxClockSkew      = 5 * time.Minute
	DefaultRequestTTL = 10 * time.Minute
	MaxRequestTTL     = time.Hour
	// MaxRelayState is the longest RelayState StartLogin sends (SAML
	// bindings 3.4.3).
	MaxRelayState = 80
)

// Store key prefixes.
const (
	requestKeyPrefix = "sp:req:"
	replayKeyPrefix  = "sp:replay:"
)

// Config configures an SP.
type Config struct {
	// EntityID is the bridge's SP entityID, the audience it requires.
	EntityID string
	// ACSURL is the bridge's ACS (HTTP-POST) URL; Destination and Recipient
	// must equal it exactly.
	ACSURL      string
	IdPEntityID string
	// IdPSSOURL is the IdP's HTTP-Redirect SSO endpoint.
	IdPSSOURL string
	// IdPCerts are the signing certificates from the IdP's metadata; a
	// signature by any of them is accepted. Certificates in messages are
	// never used.
	IdPCerts []*x509.Certificate
	Store    store.Store
	// ClockSkew is allowed on every time check, in both directions. Zero
	// means DefaultClockSkew; more than MaxClockSkew is refused.
	ClockSkew time.Duration
	// RequestTTL is how long a pending AuthnRequest can be answered. Zero
	// means DefaultRequestTTL.
	RequestTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of request IDs; nil means crypto/rand.
	Rand io.Reader
	// Signer signs the SP's logout messages; its certificate is published
	// in the SP metadata. Single Logout needs it.
	Signer *xmlsig.Signer
	// SLOURL is the SP's SingleLogoutService (both bindings); IdPSLO are
	// the IdP's, from its metadata. Without both, the IdP is not sent
	// logout requests and its own are refused.
	SLOURL string
	IdPSLO []samlslo.Endpoint
	// DecryptionKeys decrypt EncryptedAssertions: the SP's encryption key
	// and, during a rollover, the next one. Each is published in the SP
	// metadata. Without any, an encrypted assertion is refused.
	DecryptionKeys []DecryptionKey
	// RequireEncryption refuses an assertion that is not encrypted.
	RequireEncryption bool
}

// SP is the bridge's SAML SP for one upstream IdP. It is safe for
// concurrent use.
type SP struct {
	entityID, acsURL string
	idpEntityID      string
	ssoURL           *url.URL
	// certs are the IdP's signing certificates; SetIdPCerts swaps them
	// when its metadata is refreshed.
	certs             atomic.Pointer[[]*x509.Certificate]
	store             store.Store
	skew, requestTTL  time.Duration
	now               func() time.Time
	rand              io.Reader
	signer            *xmlsig.Signer
	sloURL            string
	idpSLO            []samlslo.Endpoint
	decryptionKeys    []DecryptionKey
	requireEncryption bool
	// deflaters is a free list of DEFLATE writers: each holds about 1 MB
	// of compressor state, whatever the level, and allocating one for every
	// AuthnRequest made the garbage collector run several times as often.
	// Not a sync.Pool, which every second collection empties: under load
	// that is every few logins. It holds GOMAXPROCS writers at most (the
	// deflate step never waits, so no more run at once) and a writer keeps
	// nothing of one request once Reset for the next.
	deflaters chan *flate.Writer
	// replayNote, when set, says what the replay cache keeps of an
	// accepted login's state (see SetReplayNote).
	replayNote atomic.Pointer[func([]byte) []byte]
}

// SetReplayNote makes the replay cache keep note(state) of every accepted
// login, where state is what StartLogin was given, so that a replay of
// the assertion is refused with that note as Error.State: the caller can
// then tell which vendor's login was replayed. note must return no
// personal data and should return little (it lives as long as the
// assertion could be accepted); nil or an empty result keeps nothing.
// state comes from the read of the pending request that every response
// makes anyway, so the note costs no store read of its own.
func (sp *SP) SetReplayNote(note func(state []byte) []byte) {
	if note == nil {
		sp.replayNote.Store(nil)
		return
	}
	sp.replayNote.Store(&note)
}

// deflater returns a DEFLATE writer onto w, reused when one is free. The
// level is BestSpeed: on a request of a few hundred bytes it compresses
// within a few percent of BestCompression, and its Reset is constant time
// where the other levels clear 640 KB of hash tables.
func (sp *SP) deflater(w io.Writer) (*flate.Writer, error) {
	select {
	case fw := <-sp.deflaters:
		fw.Reset(w)
		return fw, nil
	default:
		return flate.NewWriter(w, flate.BestSpeed)
	}
}

// freeDeflater returns fw to the free list, or drops it when the list is
// full.
func (sp *SP) freeDeflater(fw *flate.Writer) {
	select {
	case sp.deflaters <- fw:
	default:
	}
}

// New checks cfg and returns an SP.
func New(cfg Config) (*SP, error) {
	var errs []error
	if cfg.EntityID == "" {
		errs = append(errs, errors.New("samlsp: EntityID is empty"))
	}
	if !absoluteHTTP(cfg.ACSURL) {
		errs = append(errs, errors.New("samlsp: ACSURL must be an absolute http(s) URL"))
	}
	if cfg.IdPEntityID == "" {
		errs = append(errs, errors.New("samlsp: IdPEntityID is empty"))
	}
	sso, err := url.Parse(cfg.IdPSSOURL)
	if err != nil || !absoluteHTTP(cfg.IdPSSOURL) {
		errs = append(errs, errors.New("samlsp: IdPSSOURL must be an absolute http(s) URL"))
	}
	if len(cfg.IdPCerts) == 0 {
		errs = append(errs, errors.New("samlsp: no IdP signing certificate"))
	}
	for _, c := range cfg.IdPCerts {
		if c == nil {
			errs = append(errs, errors.New("samlsp: nil IdP certificate"))
			break
		}
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("samlsp: Store is nil"))
	}
	if cfg.SLOURL != "" && !absoluteHTTP(cfg.SLOURL) {
		errs = append(errs, errors.New("samlsp: SLOURL must be an absolute http(s) URL"))
	}
	for _, e := range cfg.IdPSLO {
		if !absoluteHTTP(e.Location) || (e.ResponseLocation != "" && !absoluteHTTP(e.ResponseLocation)) {
			errs = append(errs, errors.New("samlsp: an IdP SingleLogoutService is not an absolute http(s) URL"))
			break
		}
	}
	if err := checkDecryptionKeys(cfg.DecryptionKeys); err != nil {
		errs = append(errs, err)
	}
	if cfg.RequireEncryption && len(cfg.DecryptionKeys) == 0 {
		errs = append(errs, errors.New("samlsp: RequireEncryption without a decryption key"))
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.ClockSkew < 0 || cfg.ClockSkew > MaxClockSkew {
		errs = append(errs, fmt.Errorf("samlsp: ClockSkew must be between 0 and %v", MaxClockSkew))
	}
	if cfg.RequestTTL == 0 {
		cfg.RequestTTL = DefaultRequestTTL
	}
	if cfg.RequestTTL < 0 || cfg.RequestTTL > MaxRequestTTL {
		errs = append(errs, fmt.Errorf("samlsp: RequestTTL must be between 0 and %v", MaxRequestTTL))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	sp := &SP{
		entityID:    cfg.EntityID,
		acsURL:      cfg.ACSURL,
		idpEntityID: cfg.IdPEntityID,
		ssoURL:      sso,
		store:       cfg.Store,
		skew:        cfg.ClockSkew,
		requestTTL:  cfg.RequestTTL,
		now:         cfg.Now,
		rand:        cfg.Rand,
		deflaters:   make(chan *flate.Writer, runtime.GOMAXPROCS(0)),
		signer:      cfg.Signer,
		sloURL:      cfg.SLOURL,
		idpSLO:      append([]samlslo.Endpoint(nil), cfg.IdPSLO...),

		decryptionKeys:    append([]DecryptionKey(nil), cfg.DecryptionKeys...),
		requireEncryption: cfg.RequireEncryption,
	}
	sp.SetIdPCerts(cfg.IdPCerts)
	return sp, nil
}

// SetIdPCerts replaces the IdP signing certificates, as a metadata refresh
// finds them, atomically: a response being checked keeps the set it
// started with. An empty set refuses every response (the metadata has
// expired).
func (sp *SP) SetIdPCerts(certs []*x509.Certificate) {
	c := append([]*x509.Certificate(nil), certs...)
	sp.certs.Store(&c)
}

// IdPCerts returns the IdP signing certificates in use.
func (sp *SP) IdPCerts() []*x509.Certificate { return *sp.certs.Load() }

func absoluteHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil
}

// pending is what the store holds for a request on its way to the IdP.
type pending struct {
	// BindingHash is SHA-256 of the browser binding: the store never holds
	// the binding itself.
	BindingHash []byte `json:"b"`
	State       []byte `json:"s,omitempty"`
}

// StartLogin makes an AuthnRequest and returns the IdP's HTTP-Redirect URL
// for the browser. The pending request is stored under its ID for
// RequestTTL, with SHA-256 of binding (an opaque string the server derives
// from a browser cookie) and state (opaque bytes returned by
// HandleResponse; not personal data). relayState goes into the URL as it
// is; at most MaxRelayState bytes.
func (sp *SP) StartLogin(ctx context.Context, binding string, state []byte, relayState string) (string, error) {
	return sp.StartLoginWith(ctx, binding, state, relayState, LoginOptions{})
}

// LoginOptions are what a login asks of the IdP beyond identification.
type LoginOptions struct {
	// ForceAuthn asks the IdP to authenticate the person afresh.
	ForceAuthn bool
	// IsPassive asks the IdP not to interact with the person; without a
	// session it answers NoPassive.
	IsPassive bool
	// AuthnContextClassRefs, when set, are sent as a RequestedAuthnContext
	// with Comparison (exact when empty).
	AuthnContextClassRefs []string
	Comparison            string
}

// StartLoginWith is StartLogin with what the login asks of the IdP.
func (sp *SP) StartLoginWith(ctx context.Context, binding string, state []byte, relayState string, o LoginOptions) (string, error) {
	if binding == "" {
		return "", errors.New("samlsp: empty browser binding")
	}
	if len(relayState) > MaxRelayState {
		return "", errors.New("samlsp: RelayState longer than 80 bytes")
	}
	idb := make([]byte, 16)
	if _, err := io.ReadFull(sp.rand, idb); err != nil {
		return "", fmt.Errorf("samlsp: request id: %w", err)
	}
	id := "_" + hex.EncodeToString(idb)
	now := sp.now().UTC()

	doc := etree.NewDocument()
	req := doc.CreateElement("samlp:AuthnRequest")
	req.CreateAttr("xmlns:samlp", samlxml.NSProtocol)
	req.CreateAttr("xmlns:saml", samlxml.NSAssertion)
	req.CreateAttr("ID", id)
	req.CreateAttr("Version", "2.0")
	req.CreateAttr("IssueInstant", now.Format("2006-01-02T15:04:05.000Z"))
	req.CreateAttr("Destination", sp.ssoURL.String())
	req.CreateAttr("AssertionConsumerServiceURL", sp.acsURL)
	req.CreateAttr("ProtocolBinding", HTTPPostBinding)
	if o.ForceAuthn {
		req.CreateAttr("ForceAuthn", "true")
	}
	if o.IsPassive {
		req.CreateAttr("IsPassive", "true")
	}
	req.CreateElement("saml:Issuer").SetText(sp.entityID)
	req.CreateElement("samlp:NameIDPolicy").CreateAttr("AllowCreate", "true")
	if len(o.AuthnContextClassRefs) > 0 {
		rac := req.CreateElement("samlp:RequestedAuthnContext")
		comparison := o.Comparison
		if comparison == "" {
			comparison = "exact"
		}
		rac.CreateAttr("Comparison", comparison)
		for _, c := range o.AuthnContextClassRefs {
			rac.CreateElement("saml:AuthnContextClassRef").SetText(c)
		}
	}
	xmlBytes, err := doc.WriteToBytes()
	if err != nil {
		return "", fmt.Errorf("samlsp: authn request: %w", err)
	}
	var deflated bytes.Buffer
	fw, err := sp.deflater(&deflated)
	if err != nil {
		return "", fmt.Errorf("samlsp: deflate: %w", err)
	}
	if _, err := fw.Write(xmlBytes); err != nil {
		return "", fmt.Errorf("samlsp: deflate: %w", err)
	}
	if err := fw.Close(); err != nil {
		return "", fmt.Errorf("samlsp: deflate: %w", err)
	}
	sp.freeDeflater(fw)

	bh := sha256.Sum256([]byte(binding))
	val, err := json.Marshal(pending{BindingHash: bh[:], State: state})
	if err != nil {
		return "", fmt.Errorf("samlsp: pending request: %w", err)
	}
	if err := sp.store.Put(ctx, requestKeyPrefix+id, val, sp.requestTTL); err != nil {
		return "", refuse(ReasonStoreUnavailable, fmt.Errorf("store pending request: %w", err))
	}

	u := *sp.ssoURL
	q := u.Query()
	q.Set("SAMLRequest", base64.StdEncoding.EncodeToString(deflated.Bytes()))
	if relayState != "" {
		q.Set("RelayState", relayState)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Metadata returns the SP's EntityDescriptor: an SPSSODescriptor that does
// not sign its AuthnRequests, wants signed assertions, and has one
// HTTP-POST ACS; with a Signer, its signing key (for logout messages), and
// with an SLOURL, its SingleLogoutService in both bindings.
func (sp *SP) Metadata() ([]byte, error) {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	ed := doc.CreateElement("md:EntityDescriptor")
	ed.CreateAttr("xmlns:md", samlxml.NSMetadata)
	ed.CreateAttr("entityID", sp.entityID)
	d := ed.CreateElement("md:SPSSODescriptor")
	d.CreateAttr("protocolSupportEnumeration", samlxml.NSProtocol)
	d.CreateAttr("AuthnRequestsSigned", "false")
	d.CreateAttr("WantAssertionsSigned", "true")
	if sp.signer != nil {
		ed.CreateAttr("xmlns:ds", samlxml.NSDSig)
		kd := d.CreateElement("md:KeyDescriptor")
		kd.CreateAttr("use", "signing")
		kd.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
			SetText(base64.StdEncoding.EncodeToString(sp.signer.Pair().Cert.Raw))
	}
	for _, k := range sp.decryptionKeys {
		if sp.signer == nil && ed.SelectAttr("xmlns:ds") == nil {
			ed.CreateAttr("xmlns:ds", samlxml.NSDSig)
		}
		kd := d.CreateElement("md:KeyDescriptor")
		kd.CreateAttr("use", "encryption")
		kd.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
			SetText(base64.StdEncoding.EncodeToString(k.Cert.Raw))
		for _, m := range encryptionMethods {
			kd.CreateElement("md:EncryptionMethod").CreateAttr("Algorithm", m)
		}
	}
	if sp.sloURL != "" {
		for _, b := range []string{HTTPRedirectBinding, HTTPPostBinding} {
			e := d.CreateElement("md:SingleLogoutService")
			e.CreateAttr("Binding", b)
			e.CreateAttr("Location", sp.sloURL)
		}
	}
	acs := d.CreateElement("md:AssertionConsumerService")
	acs.CreateAttr("Binding", HTTPPostBinding)
	acs.CreateAttr("Location", sp.acsURL)
	acs.CreateAttr("index", "0")
	acs.CreateAttr("isDefault", "true")
	doc.Indent(2)
	return doc.WriteToBytes()
}
