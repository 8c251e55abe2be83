package samlidp

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// MaxRelayState is the SAML binding limit on RelayState (SECURITY.md case 23).
const MaxRelayState = 80

// Request is a validated AuthnRequest: everything the bridge needs to
// answer it later. It holds no personal data.
type Request struct {
	ID             string `json:"id"`
	VendorEntityID string `json:"vendor"`
	ACSURL         string `json:"acs"`
	RelayState     string `json:"relay_state,omitempty"`
	// ForceAuthn asks for a fresh login; the bridge asks the school IdP
	// for one and refuses an older one.
	ForceAuthn bool `json:"force_authn,omitempty"`
	// IsPassive asks for a login without interaction; the bridge passes
	// it to the school IdP, whose NoPassive comes back to the vendor.
	IsPassive bool `json:"is_passive,omitempty"`
	// AuthnContext is the RequestedAuthnContext, or nil.
	AuthnContext *RequestedAuthnContext `json:"authn_context,omitempty"`
	// NameIDFormat is the NameIDPolicy format the vendor asked for, if any.
	NameIDFormat string `json:"name_id_format,omitempty"`
	// IDPList are the ProviderIDs of Scoping/IDPList: the school IdPs the
	// vendor says the person belongs to (a discovery hint, never an
	// authorisation).
	IDPList []string `json:"idp_list,omitempty"`
}

// RequestedAuthnContext is what a vendor asked of the authentication.
type RequestedAuthnContext struct {
	// Comparison is exact (the default), minimum, better or maximum.
	Comparison string `json:"comparison,omitempty"`
	// Classes are the AuthnContextClassRef values, in order.
	Classes []string `json:"classes,omitempty"`
	// DeclRefs is set when the vendor named AuthnContextDeclRefs, which
	// the bridge cannot meet.
	DeclRefs bool `json:"decl_refs,omitempty"`
}

// Bounds on a RequestedAuthnContext.
const (
	maxRequestedClasses = 16
	maxClassLen         = 1024
)

// Error is a refused AuthnRequest. Reason is a fixed snake_case word, safe
// to log and to use as a metric label; the user sees a fixed page. No
// response is ever POSTed for a refused request, because its ACS URL cannot
// be trusted (SECURITY.md case 21).
type Error struct {
	Reason string
	Status int
	err    error
}

func (e *Error) Error() string {
	if e.err != nil {
		return "authn request refused: " + e.Reason + ": " + e.err.Error()
	}
	return "authn request refused: " + e.Reason
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.err }

func refuse(reason string, err error) *Error {
	return &Error{Reason: reason, Status: http.StatusBadRequest, err: err}
}

// ParseRequest reads an AuthnRequest from either binding: HTTP-Redirect
// (GET, deflated, signature in the query) or HTTP-POST (base64, enveloped
// signature).
func (idp *IdP) ParseRequest(r *http.Request) (*Request, error) {
	switch r.Method {
	case http.MethodGet:
		return idp.parseRedirect(r)
	case http.MethodPost:
		return idp.parsePOST(r)
	}
	return nil, &Error{Reason: "method", Status: http.StatusMethodNotAllowed}
}

// errBadEscape replaces url.EscapeError, whose message quotes the input.
var errBadEscape = errors.New("bad percent-encoding")

// duplicateParam reports whether a Redirect binding parameter occurs more
// than once, also under a percent-encoded name: which copy counts would
// depend on the parser that reads it, and a signature covers only one.
func duplicateParam(raw string) bool {
	seen := map[string]bool{}
	for _, kv := range strings.Split(raw, "&") {
		k, _, _ := strings.Cut(kv, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		switch k {
		case "SAMLRequest", "RelayState", "SigAlg", "Signature":
			if seen[k] {
				return true
			}
			seen[k] = true
		}
	}
	return false
}

// rawQueryParam returns the still-encoded value of name, as the Redirect
// binding signs the encoded form exactly as sent.
func rawQueryParam(raw, name string) (string, bool) {
	found, val := false, ""
	for _, kv := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k == name {
			if found {
				return "", false // duplicates are ambiguous: refuse
			}
			found, val = true, v
		}
	}
	return val, found
}

func (idp *IdP) parseRedirect(r *http.Request) (*Request, error) {
	raw := r.URL.RawQuery
	if duplicateParam(raw) {
		return nil, refuse("duplicate_parameter", nil)
	}
	encReq, ok := rawQueryParam(raw, "SAMLRequest")
	if !ok {
		return nil, refuse("no_request", nil)
	}
	samlRequest, err := url.QueryUnescape(encReq)
	if err != nil {
		return nil, refuse("malformed", errBadEscape)
	}
	relay := ""
	encRelay, hasRelay := rawQueryParam(raw, "RelayState")
	if hasRelay {
		if relay, err = url.QueryUnescape(encRelay); err != nil {
			return nil, refuse("malformed", errBadEscape)
		}
	}
	xmlBytes, err := samlxml.Inflate(samlRequest)
	if err != nil {
		return nil, xmlError(err)
	}
	req, root, vendor, err := idp.parseRequestXML(xmlBytes, relay)
	if err != nil {
		return nil, err
	}
	encSigAlg, hasSigAlg := rawQueryParam(raw, "SigAlg")
	encSig, hasSig := rawQueryParam(raw, "Signature")
	if hasSig != hasSigAlg {
		return nil, refuse("bad_signature", nil)
	}
	if !hasSig {
		if vendor.AuthnRequestsSigned {
			return nil, refuse("unsigned", nil)
		}
		return req, nil
	}
	if err := requireDestination(root); err != nil {
		return nil, err
	}
	sigAlg, err1 := url.QueryUnescape(encSigAlg)
	sigB64, err2 := url.QueryUnescape(encSig)
	sig, err3 := base64.StdEncoding.DecodeString(sigB64)
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, refuse("bad_signature", nil)
	}
	signed := "SAMLRequest=" + encReq
	if hasRelay {
		signed += "&RelayState=" + encRelay
	}
	signed += "&SigAlg=" + encSigAlg
	if err := xmlsig.VerifyRaw(sigAlg, []byte(signed), sig, vendor.SigningCerts); err != nil {
		if errors.Is(err, xmlsig.ErrWeakAlgorithm) {
			return nil, refuse("weak_algorithm", err)
		}
		return nil, refuse("bad_signature", err)
	}
	return req, nil
}

func (idp *IdP) parsePOST(r *http.Request) (*Request, error) {
	if err := r.ParseForm(); err != nil {
		return nil, refuse("malformed", err)
	}
	relay := r.PostForm.Get("RelayState")
	xmlBytes, err := samlxml.DecodeBase64(r.PostForm.Get("SAMLRequest"))
	if err != nil {
		return nil, xmlError(err)
	}
	req, root, vendor, err := idp.parseRequestXML(xmlBytes, relay)
	if err != nil {
		return nil, err
	}
	hasSig := false
	for _, c := range root.ChildElements() {
		if samlxml.Is(c, samlxml.NSDSig, "Signature") {
			hasSig = true
		}
	}
	if !hasSig {
		if vendor.AuthnRequestsSigned {
			return nil, refuse("unsigned", nil)
		}
		return req, nil
	}
	if err := requireDestination(root); err != nil {
		return nil, err
	}
	if _, err := xmlsig.VerifyEnveloped(root, vendor.SigningCerts, idp.now); err != nil {
		if errors.Is(err, xmlsig.ErrWeakAlgorithm) {
			return nil, refuse("weak_algorithm", err)
		}
		return nil, refuse("bad_signature", err)
	}
	return req, nil
}

// requireDestination refuses a signed request without Destination, as the
// SAML bindings (3.4.5.2, 3.5.5.2) require: without it, a request a vendor
// signed for another IdP would be accepted here until it is stale. A
// Destination that is present was already compared with the SSO URL.
func requireDestination(root *etree.Element) error {
	if _, ok := destination(root); !ok {
		return refuse("no_destination", nil)
	}
	return nil
}

// destination returns the request's unprefixed Destination attribute and
// whether it is present; a prefixed one (another namespace) is not it.
func destination(root *etree.Element) (string, bool) {
	for _, a := range root.Attr {
		if a.Space == "" && a.Key == "Destination" {
			return a.Value, true
		}
	}
	return "", false
}

func xmlError(err error) *Error {
	switch {
	case errors.Is(err, samlxml.ErrTooLarge):
		return &Error{Reason: "too_large", Status: http.StatusRequestEntityTooLarge, err: err}
	case errors.Is(err, samlxml.ErrDTD):
		return refuse("dtd", err)
	}
	return refuse("malformed", err)
}

// parseRequestXML checks the request's content. The signature is checked
// by the caller, after the vendor (and so its keys) is known; nothing from
// the request is used to respond before that.
func (idp *IdP) parseRequestXML(b []byte, relay string) (*Request, *etree.Element, *Vendor, error) {
	if len(relay) > MaxRelayState {
		return nil, nil, nil, refuse("relay_state", nil)
	}
	doc, err := samlxml.Parse(b)
	if err != nil {
		return nil, nil, nil, xmlError(err)
	}
	root := doc.Root()
	if !samlxml.Is(root, samlxml.NSProtocol, "AuthnRequest") {
		return nil, nil, nil, refuse("malformed", errors.New("not an AuthnRequest"))
	}
	if root.SelectAttrValue("Version", "") != "2.0" {
		return nil, nil, nil, refuse("malformed", errors.New("version is not 2.0"))
	}
	id := root.SelectAttrValue("ID", "")
	if id == "" || len(id) > 256 {
		return nil, nil, nil, refuse("malformed", errors.New("bad ID"))
	}
	issuerEl, err := samlxml.Child(root, samlxml.NSAssertion, "Issuer")
	if err != nil || issuerEl == nil {
		return nil, nil, nil, refuse("no_issuer", err)
	}
	issuer, err := samlxml.Text(issuerEl)
	if err != nil {
		return nil, nil, nil, refuse("malformed", err)
	}
	vendor, ok := idp.Vendor(issuer)
	if !ok {
		return nil, nil, nil, refuse("unknown_vendor", nil)
	}
	// A Destination, when present (even empty), must be this IdP's SSO
	// URL; a signed request must have one (requireDestination).
	if d, ok := destination(root); ok && d != idp.SSOURL {
		return nil, nil, nil, refuse("destination", nil)
	}
	instant, err := time.Parse(time.RFC3339Nano, root.SelectAttrValue("IssueInstant", ""))
	if err != nil {
		return nil, nil, nil, refuse("malformed", errors.New("bad IssueInstant"))
	}
	now := idp.now()
	if instant.After(now.Add(idp.skew())) || instant.Before(now.Add(-idp.maxRequestAge())) {
		return nil, nil, nil, refuse("stale", nil)
	}
	if pb := root.SelectAttrValue("ProtocolBinding", ""); pb != "" && pb != BindingPOST {
		return nil, nil, nil, refuse("binding", nil)
	}
	var acs ACS
	acsURL := root.SelectAttrValue("AssertionConsumerServiceURL", "")
	acsIndex := root.SelectAttrValue("AssertionConsumerServiceIndex", "")
	switch {
	case acsURL != "" && acsIndex != "":
		return nil, nil, nil, refuse("acs", errors.New("both ACS URL and index"))
	case acsURL != "":
		if acs, ok = vendor.ACSByURL(acsURL); !ok {
			return nil, nil, nil, refuse("acs", nil)
		}
	case acsIndex != "":
		i, err := strconv.Atoi(acsIndex)
		if err != nil {
			return nil, nil, nil, refuse("acs", nil)
		}
		if acs, ok = vendor.ACSByIndex(i); !ok {
			return nil, nil, nil, refuse("acs", nil)
		}
	default:
		acs = vendor.DefaultACS()
	}
	nameIDFormat := ""
	nip, err := samlxml.Child(root, samlxml.NSProtocol, "NameIDPolicy")
	if err != nil {
		return nil, nil, nil, refuse("malformed", err)
	}
	if nip != nil {
		nameIDFormat = nip.SelectAttrValue("Format", "")
		if len(nameIDFormat) > 256 {
			return nil, nil, nil, refuse("malformed", errors.New("NameIDPolicy format too long"))
		}
	}
	var idpList []string
	if sc, err := samlxml.Child(root, samlxml.NSProtocol, "Scoping"); err == nil && sc != nil {
		if il, err := samlxml.Child(sc, samlxml.NSProtocol, "IDPList"); err == nil && il != nil {
			for _, e := range il.ChildElements() {
				if e.Tag == "IDPEntry" && len(idpList) < 16 {
					if id := e.SelectAttrValue("ProviderID", ""); id != "" && len(id) <= 1024 {
						idpList = append(idpList, id)
					}
				}
			}
		}
	}
	rac, err := requestedAuthnContext(root)
	if err != nil {
		return nil, nil, nil, err
	}
	fa, ip := root.SelectAttrValue("ForceAuthn", ""), root.SelectAttrValue("IsPassive", "")
	return &Request{
		IDPList:        idpList,
		ID:             id,
		VendorEntityID: vendor.EntityID,
		ACSURL:         acs.URL,
		RelayState:     relay,
		ForceAuthn:     fa == "true" || fa == "1",
		IsPassive:      ip == "true" || ip == "1",
		NameIDFormat:   nameIDFormat,
		AuthnContext:   rac,
	}, root, vendor, nil
}

// requestedAuthnContext reads samlp:RequestedAuthnContext, bounded. A
// comparison that is not one of SAML's four is refused as malformed.
func requestedAuthnContext(root *etree.Element) (*RequestedAuthnContext, error) {
	el, err := samlxml.Child(root, samlxml.NSProtocol, "RequestedAuthnContext")
	if err != nil {
		return nil, refuse("malformed", err)
	}
	if el == nil {
		return nil, nil
	}
	rac := &RequestedAuthnContext{Comparison: el.SelectAttrValue("Comparison", "exact")}
	switch rac.Comparison {
	case "exact", "minimum", "better", "maximum":
	default:
		return nil, refuse("malformed", errors.New("unknown RequestedAuthnContext comparison"))
	}
	for _, c := range el.ChildElements() {
		switch {
		case samlxml.Is(c, samlxml.NSAssertion, "AuthnContextClassRef"):
			v, err := samlxml.Text(c)
			v = strings.TrimSpace(v)
			if err != nil || v == "" || len(v) > maxClassLen || len(rac.Classes) >= maxRequestedClasses {
				return nil, refuse("malformed", errors.New("bad AuthnContextClassRef"))
			}
			rac.Classes = append(rac.Classes, v)
		case samlxml.Is(c, samlxml.NSAssertion, "AuthnContextDeclRef"):
			rac.DeclRefs = true
		default:
			return nil, refuse("malformed", errors.New("unexpected element in RequestedAuthnContext"))
		}
	}
	if len(rac.Classes) == 0 && !rac.DeclRefs {
		return nil, refuse("malformed", errors.New("empty RequestedAuthnContext"))
	}
	return rac, nil
}
