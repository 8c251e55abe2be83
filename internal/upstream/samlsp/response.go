package samlsp

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/store"
)

// Assertion is what the bridge takes from a verified assertion.
type Assertion struct {
	ID, Issuer           string
	NameID, NameIDFormat string
	SessionIndex         string
	AuthnInstant         time.Time
	AuthnContext         string
	// Attributes are keyed by the Attribute's Name (e.g. urn:oid:...);
	// values are the full text. Values that are elements (such as a NameID
	// inside eduPersonTargetedID) are left out.
	Attributes map[string][]string
	// FriendlyNames maps Name to FriendlyName where one was given.
	FriendlyNames map[string]string

	// NameQualifier and SPNameQualifier are the NameID's, as written: a
	// LogoutRequest to the IdP names the NameID exactly as issued.
	NameQualifier, SPNameQualifier string
}

// Fixed causes. None carries input.
var (
	errNotResponse     = errors.New("root is not a SAML 2.0 Response")
	errBadID           = errors.New("missing or malformed ID")
	errDuplicateAttr   = errors.New("duplicate attribute on an element")
	errDuplicateID     = errors.New("duplicate ID in document")
	errNestedResponse  = errors.New("response inside response")
	errEncrypted       = errors.New("encrypted content is not supported")
	errDestination     = errors.New("destination is not this ACS")
	errIssuer          = errors.New("issuer is not the IdP")
	errAssertionCount  = errors.New("not exactly one assertion as a child of the response")
	errComment         = errors.New("comment or processing instruction inside the response")
	errDirective       = errors.New("declaration inside the response")
	errStatus          = errors.New("missing or malformed status")
	errUpstreamStatus  = errors.New("IdP returned a non-Success status")
	errInResponseTo    = errors.New("InResponseTo missing or not matching")
	errUnknownRequest  = errors.New("no pending request for InResponseTo")
	errBinding         = errors.New("pending request belongs to another browser")
	errReplay          = errors.New("assertion already used")
	errPending         = errors.New("pending request does not decode")
	errTime            = errors.New("missing or malformed time")
	errNotYetValid     = errors.New("assertion not yet valid")
	errExpired         = errors.New("assertion expired")
	errAudience        = errors.New("audience restriction missing or not this SP")
	errRecipient       = errors.New("recipient is not this ACS")
	errConfirmation    = errors.New("not exactly one bearer subject confirmation")
	errSubject         = errors.New("missing or malformed subject")
	errAuthnStatement  = errors.New("not exactly one authn statement")
	errAttribute       = errors.New("malformed attribute")
	errCondition       = errors.New("unknown condition")
	errAssertionShape  = errors.New("malformed assertion")
	errResponseChanged = errors.New("verified element differs from the received one")
)

// idPattern is an xsd:ID as IdPs write them (goxmldsig resolves
// references with the same pattern), bounded in length.
var idPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,255}$`)

// requestIDPattern matches the IDs StartLogin makes; anything else cannot
// be one of ours and is not looked up.
var requestIDPattern = regexp.MustCompile(`^_[0-9a-f]{32}$`)

// HandleResponse validates a base64 SAMLResponse from the ACS POST, for
// the browser identified by binding, and returns the assertion and the
// state given to StartLogin. Every refusal is an *Error.
func (sp *SP) HandleResponse(ctx context.Context, samlResponse string, binding string) (*Assertion, []byte, error) {
	var inResponseTo string
	a, state, e := sp.handle(ctx, samlResponse, binding, &inResponseTo)
	if e != nil {
		if e.State == nil && e.Reason != ReasonStoreUnavailable && e.Reason != ReasonBinding && requestIDPattern.MatchString(inResponseTo) {
			e.State = sp.peekState(ctx, inResponseTo, binding)
		}
		return nil, nil, e
	}
	return a, state, nil
}

// peekState returns the state of the pending request id when this
// browser (binding) started it, without consuming it: the refused
// response, verified or not, only chose which of the browser's own
// pending logins to look at. nil when there is none or the store fails.
func (sp *SP) peekState(ctx context.Context, id, binding string) []byte {
	p, err := sp.peekPending(ctx, id)
	if err != nil || binding == "" {
		return nil
	}
	h := sha256.Sum256([]byte(binding))
	if subtle.ConstantTimeCompare(h[:], p.BindingHash) != 1 {
		return nil
	}
	return p.State
}

// peekPending reads the pending request id without consuming it.
func (sp *SP) peekPending(ctx context.Context, id string) (*pending, error) {
	val, err := sp.store.Get(ctx, requestKeyPrefix+id)
	if err != nil {
		return nil, err
	}
	var p pending
	if err := json.Unmarshal(val, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// noteFor is what the replay cache keeps for the pending login p (read
// by checkPending before the signatures were verified; nil when it was
// not pending): its note (SetReplayNote), or one byte.
func (sp *SP) noteFor(p *pending) []byte {
	if f := sp.replayNote.Load(); f != nil && p != nil {
		// The assertion is verified and names p's id: whichever browser
		// posted it, that login is the one it was issued for.
		if n := (*f)(p.State); len(n) > 0 {
			return n
		}
	}
	return []byte{1}
}

// replayedState returns the note kept for a replayed assertion, or nil.
func (sp *SP) replayedState(ctx context.Context, key string) []byte {
	b, err := sp.store.Get(ctx, key)
	if err != nil || len(b) < 2 {
		return nil
	}
	return b
}

func parseError(err error) *Error {
	switch {
	case errors.Is(err, samlxml.ErrTooLarge):
		return refuse(ReasonTooLarge, samlxml.ErrTooLarge)
	case errors.Is(err, samlxml.ErrDTD):
		return refuse(ReasonDTD, samlxml.ErrDTD)
	case errors.Is(err, samlxml.ErrTooDeep):
		return refuse(ReasonTooDeep, samlxml.ErrTooDeep)
	case errors.Is(err, samlxml.ErrTooManyNS):
		return refuse(ReasonTooManyNamespaces, samlxml.ErrTooManyNS)
	case errors.Is(err, samlxml.ErrTooManyNodes):
		return refuse(ReasonTooManyNodes, samlxml.ErrTooManyNodes)
	case errors.Is(err, samlxml.ErrRoundTrip):
		return refuse(ReasonRoundTrip, samlxml.ErrRoundTrip)
	}
	return refuse(ReasonMalformed, samlxml.ErrMalformed)
}

// scan is what one walk over the received tree finds.
type scan struct {
	assertions []*etree.Element // local name Assertion, any namespace
	// encAssertions are the elements of local name EncryptedAssertion.
	encAssertions []*etree.Element
	// inEncrypted counts the EncryptedAssertions the walk is inside, where
	// EncryptedData and EncryptedKey belong.
	inEncrypted int
	signatures  []*etree.Element // local name Signature, any namespace
	responses   int              // local name Response, any namespace
	encrypted   bool             // an Encrypted* element outside an EncryptedAssertion
	comments    bool             // a comment or PI inside the root
	directive   bool             // a <!...> declaration inside the root
	ids         map[string]bool
	dupID       bool
	dupAttr     bool
}

func (s *scan) walk(el *etree.Element) {
	switch el.Tag {
	case "Assertion":
		s.assertions = append(s.assertions, el)
	case "Signature":
		s.signatures = append(s.signatures, el)
	case "Response":
		s.responses++
	case "EncryptedAssertion":
		s.encAssertions = append(s.encAssertions, el)
		s.inEncrypted++
		defer func() { s.inEncrypted-- }()
	case "EncryptedData", "EncryptedKey":
		if s.inEncrypted == 0 {
			s.encrypted = true
		}
	case "EncryptedID", "EncryptedAttribute":
		s.encrypted = true
	}
	// Two attributes with one local name (ID and x:ID) are refused even
	// in different namespaces: etree's SelectAttr, which goxmldsig uses
	// for ID, matches any prefix and takes the first.
	if len(el.Attr) > 1 {
		seen := make(map[string]bool, len(el.Attr))
		for _, a := range el.Attr {
			if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
				continue
			}
			if seen[a.Key] {
				s.dupAttr = true
			}
			seen[a.Key] = true
		}
	}
	for _, a := range el.Attr {
		if a.Key == "ID" || a.Key == "Id" || a.Key == "id" {
			if s.ids[a.Value] {
				s.dupID = true
			}
			s.ids[a.Value] = true
		}
	}
	for _, t := range el.Child {
		switch c := t.(type) {
		case *etree.Element:
			s.walk(c)
		case *etree.Comment, *etree.ProcInst:
			s.comments = true
		case *etree.Directive:
			s.directive = true
		}
	}
}

// handle does HandleResponse's work; it sets *inResponseTo to the
// Response's InResponseTo as soon as it has read it (not yet verified).
func (sp *SP) handle(ctx context.Context, samlResponse, binding string, inResponseToOut *string) (*Assertion, []byte, *Error) {
	if binding == "" {
		return nil, nil, refuse(ReasonBinding, errBinding)
	}
	raw, err := samlxml.DecodeBase64(samlResponse)
	if err != nil {
		return nil, nil, parseError(err)
	}
	// Parse also refuses two same-named attributes on one element, of
	// which etree would keep the last.
	doc, err := samlxml.Parse(raw)
	if err != nil {
		return nil, nil, parseError(err)
	}
	root := doc.Root()
	if !samlxml.Is(root, samlxml.NSProtocol, "Response") || plainAttr(root, "Version") != "2.0" {
		return nil, nil, refuse(ReasonMalformed, errNotResponse)
	}
	if !idPattern.MatchString(plainAttr(root, "ID")) {
		return nil, nil, refuse(ReasonMalformed, errBadID)
	}
	*inResponseToOut = plainAttr(root, "InResponseTo")

	s := scan{ids: map[string]bool{}}
	s.walk(root)
	switch {
	case s.dupAttr:
		return nil, nil, refuse(ReasonMalformed, errDuplicateAttr)
	case s.directive:
		return nil, nil, refuse(ReasonMalformed, errDirective)
	case s.dupID:
		return nil, nil, refuse(ReasonDuplicateID, errDuplicateID)
	case s.responses != 1:
		return nil, nil, refuse(ReasonWrapped, errNestedResponse)
	case s.encrypted, len(s.encAssertions) > 0 && len(sp.decryptionKeys) == 0:
		// Refused before any decryption is attempted: encrypted NameIDs
		// and attributes are not supported, and an SP without an
		// encryption key has none to decrypt with.
		return nil, nil, refuse(ReasonEncryptedUnsupported, errEncrypted)
	case s.comments:
		// Canonicalisation drops comments, so "a<!---->b" would verify and
		// read as "ab" while a naive reader sees "a": refuse it outright.
		return nil, nil, refuse(ReasonComment, errComment)
	}

	if plainAttr(root, "Destination") != sp.acsURL {
		return nil, nil, refuse(ReasonDestination, errDestination)
	}
	if e := sp.checkIssuer(root, false); e != nil {
		return nil, nil, e
	}

	// Success needs exactly one saml:Assertion as a direct child of the
	// Response; an error status needs none. Every Assertion anywhere, in
	// any namespace, counts: copies hidden in Extensions, Advice or a
	// Signature's Object are how wrapping attacks work.
	code, sub, e := readStatus(root)
	if e != nil {
		return nil, nil, e
	}
	var assertion *etree.Element
	encrypted := len(s.encAssertions) > 0
	switch {
	case code == StatusSuccess && encrypted:
		// One EncryptedAssertion, a child of the Response, and no plain
		// assertion anywhere beside it.
		if len(s.encAssertions) != 1 || len(s.assertions) != 0 || s.encAssertions[0].Parent() != root ||
			!samlxml.Is(s.encAssertions[0], samlxml.NSAssertion, "EncryptedAssertion") {
			return nil, nil, refuse(ReasonAssertionCount, errTwoEncrypted)
		}
	case code == StatusSuccess:
		if len(s.assertions) != 1 || s.assertions[0].Parent() != root ||
			!samlxml.Is(s.assertions[0], samlxml.NSAssertion, "Assertion") {
			return nil, nil, refuse(ReasonAssertionCount, errAssertionCount)
		}
		if sp.requireEncryption {
			return nil, nil, refuse(ReasonUnencrypted, errUnencrypted)
		}
		assertion = s.assertions[0]
	case len(s.assertions) != 0 || encrypted:
		return nil, nil, refuse(ReasonAssertionCount, errAssertionCount)
	}

	if e := checkSignatures(s.signatures, root, assertion); e != nil {
		return nil, nil, e
	}

	// A signed Response must verify; from then on the Response's own
	// fields are read from the verified copy.
	resp := root
	if directSignature(root) != nil {
		v, err := sp.verify(root)
		if err != nil {
			return nil, nil, refuse(ReasonBadSignature, err)
		}
		if !samlxml.Is(v, samlxml.NSProtocol, "Response") || plainAttr(v, "ID") != plainAttr(root, "ID") {
			return nil, nil, refuse(ReasonBadSignature, errResponseChanged)
		}
		resp = v
		if code, sub, e = readStatus(resp); e != nil {
			return nil, nil, e
		}
	}
	inResponseTo := plainAttr(resp, "InResponseTo")
	if !requestIDPattern.MatchString(inResponseTo) {
		return nil, nil, refuse(ReasonInResponseTo, errInResponseTo)
	}
	// The browser binding is checked before anything is consumed or
	// recorded: a response posted from another browser is refused and
	// stays usable by the browser that started the login (issue 19).
	// Nothing here trusts the unsigned InResponseTo; the signed one must
	// match it below. A request that is not (or no longer) pending is
	// refused further on, after the replay check, so that a replayed
	// assertion is reported as one.
	pend, e := sp.checkPending(ctx, inResponseTo, binding)
	if e != nil && e.Reason != ReasonInResponseTo {
		return nil, nil, e
	}

	if code != StatusSuccess {
		// The user's login ends here: consume the pending request (only
		// the browser that started it may), then report the IdP's status.
		p, e := sp.takePending(ctx, inResponseTo, binding)
		if e != nil {
			return nil, nil, e
		}
		e = refuse(ReasonStatus, errUpstreamStatus)
		e.UpstreamStatus, e.UpstreamSubStatus = safeStatus(code), safeStatus(sub)
		e.State = p.State
		return nil, nil, e
	}

	if encrypted {
		// Decrypted from the verified copy of a signed Response, whose
		// signature covers the ciphertext.
		var e *Error
		enc := samlxml.Children(resp, samlxml.NSAssertion, "EncryptedAssertion")
		if len(enc) != 1 {
			return nil, nil, refuse(ReasonAssertionCount, errTwoEncrypted)
		}
		if assertion, e = sp.decryptAssertion(enc[0], directSignature(root) != nil); e != nil {
			return nil, nil, e
		}
	}
	if directSignature(assertion) == nil {
		return nil, nil, refuse(ReasonUnsigned, errNoSignature)
	}
	verified, err := sp.verify(assertion)
	if err != nil {
		return nil, nil, refuse(ReasonBadSignature, err)
	}
	now := sp.now()
	a, v, e := sp.readAssertion(verified, plainAttr(assertion, "ID"), now)
	if e != nil {
		return nil, nil, e
	}
	if v.inResponseTo != inResponseTo {
		return nil, nil, refuse(ReasonInResponseTo, errInResponseTo)
	}

	// Replay cache: an assertion is accepted once, across every instance
	// sharing the store, for as long as it could be accepted at all.
	ttl := v.acceptUntil.Sub(now) + time.Second
	if ttl < time.Second {
		ttl = time.Second
	}
	replayKey := replayKeyPrefix + sp.idpEntityID + "|" + a.ID
	if err := sp.store.Add(ctx, replayKey, sp.noteFor(pend), ttl); err != nil {
		if errors.Is(err, store.ErrExists) {
			e := refuse(ReasonReplay, errReplay)
			e.State = sp.replayedState(ctx, replayKey)
			return nil, nil, e
		}
		return nil, nil, refuse(ReasonStoreUnavailable, fmt.Errorf("replay cache: %w", err))
	}

	p, e := sp.takePending(ctx, inResponseTo, binding)
	if e != nil {
		return nil, nil, e
	}
	return a, p.State, nil
}

// lookupAttr returns el's unqualified attribute key. SAML's own
// attributes are unqualified; etree's SelectAttr would also match x:key.
func lookupAttr(el *etree.Element, key string) (string, bool) {
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// plainAttr returns el's unqualified attribute key, or "".
func plainAttr(el *etree.Element, key string) string {
	v, _ := lookupAttr(el, key)
	return v
}

// checkPending checks that the pending request id exists and belongs to
// the browser binding, without consuming it.
func (sp *SP) checkPending(ctx context.Context, id, binding string) (*pending, *Error) {
	val, err := sp.store.Get(ctx, requestKeyPrefix+id)
	return pendingFor(val, err, binding)
}

// takePending redeems the pending request id for the browser binding.
// Callers have checked the binding with checkPending first, so that a
// request is only ever consumed by its own browser.
func (sp *SP) takePending(ctx context.Context, id, binding string) (*pending, *Error) {
	val, err := sp.store.Take(ctx, requestKeyPrefix+id)
	return pendingFor(val, err, binding)
}

// pendingFor decodes a pending request read from the store and checks
// that it belongs to binding.
func pendingFor(val []byte, err error, binding string) (*pending, *Error) {
	if errors.Is(err, store.ErrNotFound) {
		return nil, refuse(ReasonInResponseTo, errUnknownRequest)
	}
	if err != nil {
		return nil, refuse(ReasonStoreUnavailable, fmt.Errorf("pending request: %w", err))
	}
	var p pending
	if err := json.Unmarshal(val, &p); err != nil {
		return nil, refuse(ReasonInResponseTo, errPending)
	}
	h := sha256.Sum256([]byte(binding))
	if subtle.ConstantTimeCompare(h[:], p.BindingHash) != 1 {
		return nil, refuse(ReasonBinding, errBinding)
	}
	return &p, nil
}

// checkIssuer checks el's saml:Issuer: it must be the IdP, with the entity
// format or none. required says whether it may be absent.
func (sp *SP) checkIssuer(el *etree.Element, required bool) *Error {
	iss, err := samlxml.Child(el, samlxml.NSAssertion, "Issuer")
	if err != nil {
		return refuse(ReasonIssuer, errIssuer)
	}
	if iss == nil {
		if required {
			return refuse(ReasonIssuer, errIssuer)
		}
		return nil
	}
	v, err := samlxml.Text(iss)
	if err != nil || v != sp.idpEntityID {
		return refuse(ReasonIssuer, errIssuer)
	}
	if f, ok := lookupAttr(iss, "Format"); ok && f != NameIDEntity {
		return refuse(ReasonIssuer, errIssuer)
	}
	return nil
}

// readStatus returns the top-level and second-level status codes.
func readStatus(resp *etree.Element) (string, string, *Error) {
	st, err := samlxml.Child(resp, samlxml.NSProtocol, "Status")
	if err != nil || st == nil {
		return "", "", refuse(ReasonMalformed, errStatus)
	}
	sc, err := samlxml.Child(st, samlxml.NSProtocol, "StatusCode")
	if err != nil || sc == nil {
		return "", "", refuse(ReasonMalformed, errStatus)
	}
	code := plainAttr(sc, "Value")
	if code == "" {
		return "", "", refuse(ReasonMalformed, errStatus)
	}
	sub := ""
	inner, err := samlxml.Child(sc, samlxml.NSProtocol, "StatusCode")
	if err != nil {
		return "", "", refuse(ReasonMalformed, errStatus)
	}
	if inner != nil {
		sub = plainAttr(inner, "Value")
	}
	return code, sub, nil
}
