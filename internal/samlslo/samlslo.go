// Package samlslo reads and writes SAML Single Logout messages
// (LogoutRequest and LogoutResponse, SAML core 3.7) in the HTTP-Redirect
// and HTTP-POST bindings, for both of the bridge's sides: as IdP towards
// vendors and as SP towards the school IdP. It knows no peer: callers pass
// the peer's certificates and the checks that apply.
//
// Every message must be signed (SAML profiles 4.4.4.1: a front-channel
// logout message is authenticated by its signature): the Redirect binding
// with SigAlg and Signature over the query as sent, the POST binding with
// an enveloped signature. What a caller reads from a POST message comes
// from the element the signature verification rebuilt, never from the
// received tree.
package samlslo

import (
	"bytes"
	"compress/flate"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"

	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// Binding URIs.
const (
	BindingRedirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	BindingPOST     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
)

// Status codes of a LogoutResponse.
const (
	StatusSuccess          = "urn:oasis:names:tc:SAML:2.0:status:Success"
	StatusRequester        = "urn:oasis:names:tc:SAML:2.0:status:Requester"
	StatusResponder        = "urn:oasis:names:tc:SAML:2.0:status:Responder"
	StatusPartialLogout    = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
	StatusUnknownPrincipal = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"
	StatusRequestDenied    = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"
)

// Message parameter names.
const (
	ParamRequest  = "SAMLRequest"
	ParamResponse = "SAMLResponse"
)

// MaxRelayState is the binding limit on RelayState (bindings 3.4.3).
const MaxRelayState = 80

// Reasons a message is refused; fixed words, safe to log.
const (
	ReasonUnsigned       = "unsigned"
	ReasonBadSignature   = "bad_signature"
	ReasonWeakAlgorithm  = "weak_algorithm"
	ReasonMalformed      = "malformed"
	ReasonTooLarge       = "too_large"
	ReasonDTD            = "dtd"
	ReasonDuplicate      = "duplicate_parameter"
	ReasonRelayState     = "relay_state"
	ReasonNoMessage      = "no_message"
	ReasonMethod         = "method"
	ReasonDestination    = "destination"
	ReasonIssuer         = "issuer"
	ReasonStale          = "stale"
	ReasonExpired        = "expired"
	ReasonNoNameID       = "no_name_id"
	ReasonWrongMessage   = "wrong_message"
	ReasonInResponseTo   = "in_response_to"
	ReasonSessionIndexes = "session_indexes"
)

// Error is a refused message. Reason is one of the Reason constants; the
// cause never quotes the input.
type Error struct {
	Reason string
	Status int
	err    error
}

func (e *Error) Error() string {
	if e.err != nil {
		return "logout message refused: " + e.Reason + ": " + e.err.Error()
	}
	return "logout message refused: " + e.Reason
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.err }

func refuse(reason string, err error) *Error {
	status := http.StatusBadRequest
	switch reason {
	case ReasonTooLarge:
		status = http.StatusRequestEntityTooLarge
	case ReasonMethod:
		status = http.StatusMethodNotAllowed
	}
	return &Error{Reason: reason, Status: status, err: err}
}

// NameID is a NameID as logout messages carry it: exactly as it was
// issued, qualifiers included, because strict peers compare them.
type NameID struct {
	Value           string `json:"v"`
	Format          string `json:"f,omitempty"`
	NameQualifier   string `json:"q,omitempty"`
	SPNameQualifier string `json:"s,omitempty"`
}

// Endpoint is a SingleLogoutService from metadata.
type Endpoint struct {
	Binding          string
	Location         string
	ResponseLocation string
}

// ResponseURL is where LogoutResponses to this endpoint go.
func (e Endpoint) ResponseURL() string {
	if e.ResponseLocation != "" {
		return e.ResponseLocation
	}
	return e.Location
}

// Choose picks the endpoint to send to: the binding want when the peer
// has it, else Redirect, else POST. ok is false when there is none.
func Choose(eps []Endpoint, want string) (Endpoint, bool) {
	for _, b := range []string{want, BindingRedirect, BindingPOST} {
		for _, e := range eps {
			if b != "" && e.Binding == b {
				return e, true
			}
		}
	}
	return Endpoint{}, false
}

// LogoutRequest is a LogoutRequest to send, or one received and verified.
type LogoutRequest struct {
	ID           string
	Issuer       string
	Destination  string
	IssueInstant time.Time
	// NotOnOrAfter is zero when the message has none.
	NotOnOrAfter   time.Time
	NameID         NameID
	SessionIndexes []string
	// Reason is the optional reason URI.
	Reason string
}

// LogoutResponse is a LogoutResponse to send, or one received and verified.
type LogoutResponse struct {
	ID           string
	Issuer       string
	Destination  string
	InResponseTo string
	IssueInstant time.Time
	Status       string
	SubStatus    string
}

// Success reports whether the peer logged the session out entirely.
func (r *LogoutResponse) Success() bool {
	return r.Status == StatusSuccess && r.SubStatus != StatusPartialLogout
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// Element renders the request (unsigned).
func (r *LogoutRequest) Element() *etree.Element {
	el := etree.NewElement("samlp:LogoutRequest")
	el.CreateAttr("xmlns:samlp", samlxml.NSProtocol)
	el.CreateAttr("xmlns:saml", samlxml.NSAssertion)
	el.CreateAttr("ID", r.ID)
	el.CreateAttr("Version", "2.0")
	el.CreateAttr("IssueInstant", stamp(r.IssueInstant))
	el.CreateAttr("Destination", r.Destination)
	if !r.NotOnOrAfter.IsZero() {
		el.CreateAttr("NotOnOrAfter", stamp(r.NotOnOrAfter))
	}
	if r.Reason != "" {
		el.CreateAttr("Reason", r.Reason)
	}
	el.CreateElement("saml:Issuer").SetText(r.Issuer)
	nid := el.CreateElement("saml:NameID")
	if r.NameID.Format != "" {
		nid.CreateAttr("Format", r.NameID.Format)
	}
	if r.NameID.NameQualifier != "" {
		nid.CreateAttr("NameQualifier", r.NameID.NameQualifier)
	}
	if r.NameID.SPNameQualifier != "" {
		nid.CreateAttr("SPNameQualifier", r.NameID.SPNameQualifier)
	}
	nid.SetText(r.NameID.Value)
	for _, si := range r.SessionIndexes {
		el.CreateElement("samlp:SessionIndex").SetText(si)
	}
	return el
}

// Element renders the response (unsigned).
func (r *LogoutResponse) Element() *etree.Element {
	el := etree.NewElement("samlp:LogoutResponse")
	el.CreateAttr("xmlns:samlp", samlxml.NSProtocol)
	el.CreateAttr("xmlns:saml", samlxml.NSAssertion)
	el.CreateAttr("ID", r.ID)
	el.CreateAttr("Version", "2.0")
	el.CreateAttr("IssueInstant", stamp(r.IssueInstant))
	el.CreateAttr("Destination", r.Destination)
	if r.InResponseTo != "" {
		el.CreateAttr("InResponseTo", r.InResponseTo)
	}
	el.CreateElement("saml:Issuer").SetText(r.Issuer)
	sc := el.CreateElement("samlp:Status").CreateElement("samlp:StatusCode")
	sc.CreateAttr("Value", r.Status)
	if r.SubStatus != "" {
		sc.CreateElement("samlp:StatusCode").CreateAttr("Value", r.SubStatus)
	}
	return el
}

// Outgoing is a signed message ready for the browser: a URL to redirect
// to (Redirect binding), or a form to post (POST binding).
type Outgoing struct {
	Binding string
	// URL is the Redirect binding's whole URL.
	URL string
	// Action and Fields are the POST binding's form.
	Action string
	Fields map[string]string
}

// Encode signs el (a LogoutRequest or LogoutResponse with an ID) for the
// binding of ep and addresses it to to, with param (ParamRequest or
// ParamResponse) and relayState. In the Redirect binding the signature
// covers the query as sent (bindings 3.4.4.1); in the POST binding it is
// enveloped in the message.
func Encode(binding, to, param string, el *etree.Element, relayState string, signer *xmlsig.Signer) (Outgoing, error) {
	if len(relayState) > MaxRelayState {
		return Outgoing{}, errors.New("samlslo: RelayState longer than 80 bytes")
	}
	switch binding {
	case BindingRedirect:
		doc := etree.NewDocument()
		doc.SetRoot(el.Copy())
		xmlBytes, err := doc.WriteToBytes()
		if err != nil {
			return Outgoing{}, err
		}
		var buf bytes.Buffer
		fw, err := flate.NewWriter(&buf, flate.BestSpeed)
		if err != nil {
			return Outgoing{}, err
		}
		if _, err := fw.Write(xmlBytes); err != nil {
			return Outgoing{}, err
		}
		if err := fw.Close(); err != nil {
			return Outgoing{}, err
		}
		q := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
		if relayState != "" {
			q += "&RelayState=" + url.QueryEscape(relayState)
		}
		q += "&SigAlg=" + url.QueryEscape(signer.Method())
		sig, err := signer.SignString(q)
		if err != nil {
			return Outgoing{}, err
		}
		q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
		u, err := url.Parse(to)
		if err != nil {
			return Outgoing{}, err
		}
		if u.RawQuery != "" {
			q = u.RawQuery + "&" + q
		}
		u.RawQuery = q
		return Outgoing{Binding: binding, URL: u.String()}, nil
	case BindingPOST:
		signed, err := signer.SignEnveloped(el)
		if err != nil {
			return Outgoing{}, err
		}
		doc := etree.NewDocument()
		doc.SetRoot(signed)
		b, err := doc.WriteToBytes()
		if err != nil {
			return Outgoing{}, err
		}
		fields := map[string]string{param: base64.StdEncoding.EncodeToString(b)}
		if relayState != "" {
			fields["RelayState"] = relayState
		}
		return Outgoing{Binding: binding, Action: to, Fields: fields}, nil
	}
	return Outgoing{}, errors.New("samlslo: unsupported binding")
}

// Incoming is a logout message received at an SLO endpoint. Nothing in it
// is trusted until Verify succeeds.
type Incoming struct {
	// Param is ParamRequest or ParamResponse.
	Param      string
	Binding    string
	RelayState string
	// Issuer is the message's Issuer as received: it only selects whose
	// keys verify the message.
	Issuer string

	root *etree.Element
	// Redirect binding: the signed part of the query, as sent.
	sigAlg, signed string
	sig            []byte
	hasSig         bool
}

// Read reads a logout message from a GET (Redirect binding) or a POST
// (POST binding). It refuses repeated parameters, an over-long RelayState
// and hostile XML (samlxml's bounds).
func Read(r *http.Request) (*Incoming, error) {
	switch r.Method {
	case http.MethodGet:
		return readRedirect(r.URL.RawQuery)
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return nil, refuse(ReasonTooLarge, nil)
			}
			return nil, refuse(ReasonMalformed, nil)
		}
		return readPOST(r.PostForm)
	}
	return nil, refuse(ReasonMethod, nil)
}

var errBadEscape = errors.New("bad percent-encoding")

// rawParams splits a query into its still-encoded values; a binding
// parameter named twice (also under an encoded name) is refused, since a
// signature covers only one copy.
func rawParams(raw string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		name := k
		if dk, err := url.QueryUnescape(k); err == nil {
			name = dk
		}
		switch name {
		case ParamRequest, ParamResponse, "RelayState", "SigAlg", "Signature":
			if _, dup := out[name]; dup {
				return nil, refuse(ReasonDuplicate, nil)
			}
			if name != k {
				return nil, refuse(ReasonMalformed, errBadEscape) // the signed form must name it plainly
			}
			out[name] = v
		}
	}
	return out, nil
}

func readRedirect(raw string) (*Incoming, error) {
	p, err := rawParams(raw)
	if err != nil {
		return nil, err
	}
	in := &Incoming{Binding: BindingRedirect}
	_, isReq := p[ParamRequest]
	_, isResp := p[ParamResponse]
	switch {
	case isReq && isResp:
		return nil, refuse(ReasonDuplicate, nil)
	case isReq:
		in.Param = ParamRequest
	case isResp:
		in.Param = ParamResponse
	default:
		return nil, refuse(ReasonNoMessage, nil)
	}
	msg, err := url.QueryUnescape(p[in.Param])
	if err != nil {
		return nil, refuse(ReasonMalformed, errBadEscape)
	}
	encRelay, hasRelay := p["RelayState"]
	if hasRelay {
		if in.RelayState, err = url.QueryUnescape(encRelay); err != nil {
			return nil, refuse(ReasonMalformed, errBadEscape)
		}
	}
	if len(in.RelayState) > MaxRelayState {
		return nil, refuse(ReasonRelayState, nil)
	}
	xmlBytes, err := samlxml.Inflate(msg)
	if err != nil {
		return nil, xmlError(err)
	}
	if err := in.parse(xmlBytes); err != nil {
		return nil, err
	}
	encAlg, hasAlg := p["SigAlg"]
	encSig, hasSig := p["Signature"]
	if hasAlg != hasSig {
		return nil, refuse(ReasonBadSignature, nil)
	}
	if !hasSig {
		return in, nil
	}
	alg, err1 := url.QueryUnescape(encAlg)
	sigB64, err2 := url.QueryUnescape(encSig)
	sig, err3 := base64.StdEncoding.DecodeString(sigB64)
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, refuse(ReasonBadSignature, nil)
	}
	signed := in.Param + "=" + p[in.Param]
	if hasRelay {
		signed += "&RelayState=" + encRelay
	}
	signed += "&SigAlg=" + encAlg
	in.sigAlg, in.signed, in.sig, in.hasSig = alg, signed, sig, true
	return in, nil
}

func readPOST(form url.Values) (*Incoming, error) {
	for _, k := range []string{ParamRequest, ParamResponse, "RelayState"} {
		if len(form[k]) > 1 {
			return nil, refuse(ReasonDuplicate, nil)
		}
	}
	in := &Incoming{Binding: BindingPOST, RelayState: form.Get("RelayState")}
	switch req, resp := form.Get(ParamRequest), form.Get(ParamResponse); {
	case req != "" && resp != "":
		return nil, refuse(ReasonDuplicate, nil)
	case req != "":
		in.Param = ParamRequest
	case resp != "":
		in.Param = ParamResponse
	default:
		return nil, refuse(ReasonNoMessage, nil)
	}
	if len(in.RelayState) > MaxRelayState {
		return nil, refuse(ReasonRelayState, nil)
	}
	xmlBytes, err := samlxml.DecodeBase64(form.Get(in.Param))
	if err != nil {
		return nil, xmlError(err)
	}
	if err := in.parse(xmlBytes); err != nil {
		return nil, err
	}
	for _, c := range in.root.ChildElements() {
		if samlxml.Is(c, samlxml.NSDSig, "Signature") {
			in.hasSig = true
		}
	}
	return in, nil
}

func xmlError(err error) *Error {
	switch {
	case errors.Is(err, samlxml.ErrTooLarge):
		return refuse(ReasonTooLarge, err)
	case errors.Is(err, samlxml.ErrDTD):
		return refuse(ReasonDTD, err)
	}
	return refuse(ReasonMalformed, err)
}

func (in *Incoming) parse(b []byte) error {
	doc, err := samlxml.Parse(b)
	if err != nil {
		return xmlError(err)
	}
	root := doc.Root()
	want := "LogoutRequest"
	if in.Param == ParamResponse {
		want = "LogoutResponse"
	}
	if !samlxml.Is(root, samlxml.NSProtocol, want) {
		return refuse(ReasonWrongMessage, nil)
	}
	iss, err := samlxml.Child(root, samlxml.NSAssertion, "Issuer")
	if err != nil || iss == nil {
		return refuse(ReasonIssuer, nil)
	}
	if in.Issuer, err = samlxml.Text(iss); err != nil || in.Issuer == "" {
		return refuse(ReasonIssuer, nil)
	}
	in.root = root
	return nil
}

// Signed reports whether the message carries a signature (not whether it
// verifies).
func (in *Incoming) Signed() bool { return in.hasSig }

// Verify checks the message's signature against certs (a certificate in
// the message is never used) and returns the element to read from: the
// one the verification rebuilt (POST), or the parsed message whose every
// byte the query signature covers (Redirect). An unsigned message is
// refused: every logout message must be signed.
func (in *Incoming) Verify(certs []*x509.Certificate) (*etree.Element, error) {
	if !in.hasSig {
		return nil, refuse(ReasonUnsigned, nil)
	}
	if in.Binding == BindingRedirect {
		if err := xmlsig.VerifyRaw(in.sigAlg, []byte(in.signed), in.sig, certs); err != nil {
			if errors.Is(err, xmlsig.ErrWeakAlgorithm) {
				return nil, refuse(ReasonWeakAlgorithm, err)
			}
			return nil, refuse(ReasonBadSignature, err)
		}
		// An enveloped signature as well is not expected in this binding;
		// it is ignored, the query signature covers the whole message.
		return in.root, nil
	}
	if err := xmlsig.CheckAlgorithms(in.root); err != nil {
		if errors.Is(err, xmlsig.ErrWeakAlgorithm) {
			return nil, refuse(ReasonWeakAlgorithm, err)
		}
		return nil, refuse(ReasonBadSignature, err)
	}
	v, err := verifyEnveloped(in.root, certs)
	if err != nil {
		return nil, refuse(ReasonBadSignature, err)
	}
	return v, nil
}

var errSignature = errors.New("signature does not verify")

// verifyEnveloped verifies el's own enveloped signature by each of certs
// in turn, without the message's KeyInfo, and returns the element
// goxmldsig rebuilt from the bytes it verified. An ECDSA value in the
// XML-DSig form (r||s) is turned into the form Go verifies.
func verifyEnveloped(el *etree.Element, certs []*x509.Certificate) (*etree.Element, error) {
	nsCtx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		return nil, errSignature
	}
	det, err := etreeutils.NSDetatch(nsCtx, el)
	if err != nil {
		return nil, errSignature
	}
	if directSignature(det) == nil {
		return nil, errSignature
	}
	for _, sig := range []*etree.Element{directSignature(det)} {
		for _, ki := range samlxml.Children(sig, samlxml.NSDSig, "KeyInfo") {
			sig.RemoveChild(ki)
		}
	}
	for _, cert := range certs {
		cand := det
		if _, ok := cert.PublicKey.(*ecdsa.PublicKey); ok {
			cand = det.Copy()
			if err := fixECDSA(directSignature(cand), cert); err != nil {
				continue
			}
		}
		vctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
		out, err := vctx.Validate(cand)
		if err == nil && out != nil {
			return out, nil
		}
	}
	return nil, errSignature
}

func directSignature(el *etree.Element) *etree.Element {
	for _, c := range el.ChildElements() {
		if samlxml.Is(c, samlxml.NSDSig, "Signature") {
			return c
		}
	}
	return nil
}

func fixECDSA(sig *etree.Element, cert *x509.Certificate) error {
	si := samlxml.Children(sig, samlxml.NSDSig, "SignedInfo")
	sv := samlxml.Children(sig, samlxml.NSDSig, "SignatureValue")
	if len(si) != 1 || len(sv) != 1 {
		return nil
	}
	sm := samlxml.Children(si[0], samlxml.NSDSig, "SignatureMethod")
	if len(sm) != 1 {
		return nil
	}
	v, err := xmlsig.SignatureValueFor(sm[0].SelectAttrValue("Algorithm", ""), sv[0].Text(), cert)
	if err != nil {
		return errSignature
	}
	sv[0].SetText(v)
	return nil
}

// idPattern is an xsd:ID, bounded in length.
var idPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,255}$`)

// plainAttr returns the unprefixed attribute key of el.
func plainAttr(el *etree.Element, key string) string {
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == key {
			return a.Value
		}
	}
	return ""
}

func readCommon(v *etree.Element) (id, issuer, dest string, instant time.Time, err *Error) {
	if plainAttr(v, "Version") != "2.0" {
		return "", "", "", time.Time{}, refuse(ReasonMalformed, errors.New("version is not 2.0"))
	}
	id = plainAttr(v, "ID")
	if !idPattern.MatchString(id) {
		return "", "", "", time.Time{}, refuse(ReasonMalformed, errors.New("bad ID"))
	}
	iss, e := samlxml.Child(v, samlxml.NSAssertion, "Issuer")
	if e != nil || iss == nil {
		return "", "", "", time.Time{}, refuse(ReasonIssuer, nil)
	}
	if issuer, e = samlxml.Text(iss); e != nil || issuer == "" {
		return "", "", "", time.Time{}, refuse(ReasonIssuer, nil)
	}
	t, e := time.Parse(time.RFC3339Nano, plainAttr(v, "IssueInstant"))
	if e != nil {
		return "", "", "", time.Time{}, refuse(ReasonMalformed, errors.New("bad IssueInstant"))
	}
	return id, issuer, plainAttr(v, "Destination"), t, nil
}

// MaxSessionIndexes bounds the SessionIndex elements of one request.
const MaxSessionIndexes = 16

// ParseLogoutRequest reads a verified LogoutRequest element.
func ParseLogoutRequest(v *etree.Element) (*LogoutRequest, error) {
	if !samlxml.Is(v, samlxml.NSProtocol, "LogoutRequest") {
		return nil, refuse(ReasonWrongMessage, nil)
	}
	id, issuer, dest, instant, e := readCommon(v)
	if e != nil {
		return nil, e
	}
	r := &LogoutRequest{ID: id, Issuer: issuer, Destination: dest, IssueInstant: instant, Reason: plainAttr(v, "Reason")}
	if s := plainAttr(v, "NotOnOrAfter"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, refuse(ReasonMalformed, errors.New("bad NotOnOrAfter"))
		}
		r.NotOnOrAfter = t
	}
	nid, err := samlxml.Child(v, samlxml.NSAssertion, "NameID")
	if err != nil || nid == nil {
		// An EncryptedID or BaseID is not supported: the bridge never
		// issues one.
		return nil, refuse(ReasonNoNameID, nil)
	}
	if r.NameID.Value, err = samlxml.Text(nid); err != nil || r.NameID.Value == "" || len(r.NameID.Value) > 1024 {
		return nil, refuse(ReasonNoNameID, nil)
	}
	r.NameID.Format = plainAttr(nid, "Format")
	r.NameID.NameQualifier = plainAttr(nid, "NameQualifier")
	r.NameID.SPNameQualifier = plainAttr(nid, "SPNameQualifier")
	sis := samlxml.Children(v, samlxml.NSProtocol, "SessionIndex")
	if len(sis) > MaxSessionIndexes {
		return nil, refuse(ReasonSessionIndexes, nil)
	}
	for _, s := range sis {
		t, err := samlxml.Text(s)
		if err != nil || t == "" || len(t) > 256 {
			return nil, refuse(ReasonMalformed, errors.New("bad SessionIndex"))
		}
		r.SessionIndexes = append(r.SessionIndexes, t)
	}
	return r, nil
}

// ParseLogoutResponse reads a verified LogoutResponse element.
func ParseLogoutResponse(v *etree.Element) (*LogoutResponse, error) {
	if !samlxml.Is(v, samlxml.NSProtocol, "LogoutResponse") {
		return nil, refuse(ReasonWrongMessage, nil)
	}
	id, issuer, dest, instant, e := readCommon(v)
	if e != nil {
		return nil, e
	}
	r := &LogoutResponse{ID: id, Issuer: issuer, Destination: dest, IssueInstant: instant, InResponseTo: plainAttr(v, "InResponseTo")}
	if !idPattern.MatchString(r.InResponseTo) {
		return nil, refuse(ReasonInResponseTo, nil)
	}
	st, err := samlxml.Child(v, samlxml.NSProtocol, "Status")
	if err != nil || st == nil {
		return nil, refuse(ReasonMalformed, errors.New("no status"))
	}
	sc, err := samlxml.Child(st, samlxml.NSProtocol, "StatusCode")
	if err != nil || sc == nil {
		return nil, refuse(ReasonMalformed, errors.New("no status code"))
	}
	r.Status = plainAttr(sc, "Value")
	if sub, err := samlxml.Child(sc, samlxml.NSProtocol, "StatusCode"); err == nil && sub != nil {
		r.SubStatus = plainAttr(sub, "Value")
	}
	if r.Status == "" {
		return nil, refuse(ReasonMalformed, errors.New("empty status code"))
	}
	return r, nil
}

// Checks are what a receiver requires of a message besides its signature.
type Checks struct {
	// Destination is the receiving endpoint's URL. A signed message must
	// name it (bindings 3.4.5.2, 3.5.5.2), so that one signed for another
	// receiver is refused.
	Destination string
	// Issuer is the peer the keys belong to.
	Issuer string
	Now    time.Time
	// Skew is tolerated on every time check.
	Skew time.Duration
	// MaxAge refuses older messages.
	MaxAge time.Duration
}

func (c Checks) common(issuer, dest string, instant time.Time) error {
	if issuer != c.Issuer {
		return refuse(ReasonIssuer, nil)
	}
	if dest != c.Destination {
		return refuse(ReasonDestination, nil)
	}
	if instant.After(c.Now.Add(c.Skew)) || instant.Before(c.Now.Add(-c.MaxAge-c.Skew)) {
		return refuse(ReasonStale, nil)
	}
	return nil
}

// CheckRequest applies c to a verified request.
func (c Checks) CheckRequest(r *LogoutRequest) error {
	if err := c.common(r.Issuer, r.Destination, r.IssueInstant); err != nil {
		return err
	}
	if !r.NotOnOrAfter.IsZero() && !c.Now.Before(r.NotOnOrAfter.Add(c.Skew)) {
		return refuse(ReasonExpired, nil)
	}
	return nil
}

// CheckResponse applies c to a verified response.
func (c Checks) CheckResponse(r *LogoutResponse) error {
	return c.common(r.Issuer, r.Destination, r.IssueInstant)
}

// Matches reports whether a request names the session a participant was
// given: the same NameID value (and format and qualifiers where the
// request states them), and, when the request lists session indexes, the
// participant's among them (core 3.7.3.2: no SessionIndex means every
// session of the principal).
func Matches(r *LogoutRequest, nameID NameID, sessionIndex string) bool {
	got := r.NameID
	if got.Value != nameID.Value {
		return false
	}
	if got.Format != "" && got.Format != nameID.Format {
		return false
	}
	if got.NameQualifier != "" && got.NameQualifier != nameID.NameQualifier {
		return false
	}
	if got.SPNameQualifier != "" && got.SPNameQualifier != nameID.SPNameQualifier {
		return false
	}
	if len(r.SessionIndexes) == 0 {
		return true
	}
	for _, si := range r.SessionIndexes {
		if si == sessionIndex {
			return true
		}
	}
	return false
}
