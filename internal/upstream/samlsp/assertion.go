package samlsp

import (
	"time"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/samlxml"
)

// validity is what readAssertion learns besides the Assertion.
type validity struct {
	inResponseTo string
	// acceptUntil is the last instant at which the assertion could pass
	// the time checks; the replay cache keeps its ID until then.
	acceptUntil time.Time
}

// parseInstant reads an xs:dateTime. The parse error is dropped: it would
// quote the input.
func parseInstant(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// notYet reports whether notBefore is still ahead of now, allowing the
// skew: at exactly notBefore-skew the assertion is accepted.
func (sp *SP) notYet(now, notBefore time.Time) bool {
	return now.Before(notBefore.Add(-sp.skew))
}

// expired reports whether notOnOrAfter has passed, allowing the skew: at
// exactly notOnOrAfter+skew the assertion is still accepted.
func (sp *SP) expired(now, notOnOrAfter time.Time) bool {
	return now.After(notOnOrAfter.Add(sp.skew))
}

// readAssertion checks the verified assertion v and reads it. v is the
// element goxmldsig rebuilt from the bytes it verified; nothing here looks
// at the received tree.
func (sp *SP) readAssertion(v *etree.Element, wantID string, now time.Time) (*Assertion, *validity, *Error) {
	if !samlxml.Is(v, samlxml.NSAssertion, "Assertion") || plainAttr(v, "Version") != "2.0" {
		return nil, nil, refuse(ReasonMalformed, errAssertionShape)
	}
	id := plainAttr(v, "ID")
	if id == "" || id != wantID || !idPattern.MatchString(id) {
		return nil, nil, refuse(ReasonBadSignature, errResponseChanged)
	}
	if e := sp.checkIssuer(v, true); e != nil {
		return nil, nil, e
	}
	issued, ok := parseInstant(plainAttr(v, "IssueInstant"))
	if !ok {
		return nil, nil, refuse(ReasonMalformed, errTime)
	}
	// An answer to a request made at most RequestTTL ago cannot be older
	// than that; this also bounds how long the replay cache must remember.
	if sp.notYet(now, issued) {
		return nil, nil, refuse(ReasonNotYetValid, errNotYetValid)
	}
	oldest := issued.Add(sp.requestTTL)
	if sp.expired(now, oldest) {
		return nil, nil, refuse(ReasonExpired, errExpired)
	}
	val := &validity{acceptUntil: oldest.Add(sp.skew)}
	limit := func(t time.Time) {
		if t = t.Add(sp.skew); t.Before(val.acceptUntil) {
			val.acceptUntil = t
		}
	}

	a := &Assertion{
		ID:            id,
		Issuer:        sp.idpEntityID,
		Attributes:    map[string][]string{},
		FriendlyNames: map[string]string{},
	}

	// Subject: one NameID, one bearer confirmation for this ACS.
	subj, err := samlxml.Child(v, samlxml.NSAssertion, "Subject")
	if err != nil || subj == nil {
		return nil, nil, refuse(ReasonMalformed, errSubject)
	}
	nid, err := samlxml.Child(subj, samlxml.NSAssertion, "NameID")
	if err != nil || nid == nil {
		return nil, nil, refuse(ReasonMalformed, errSubject)
	}
	if a.NameID, err = samlxml.Text(nid); err != nil || a.NameID == "" {
		return nil, nil, refuse(ReasonMalformed, errSubject)
	}
	a.NameIDFormat = plainAttr(nid, "Format")
	a.NameQualifier, a.SPNameQualifier = plainAttr(nid, "NameQualifier"), plainAttr(nid, "SPNameQualifier")
	for _, c := range subj.ChildElements() {
		if !samlxml.Is(c, samlxml.NSAssertion, "NameID") && !samlxml.Is(c, samlxml.NSAssertion, "SubjectConfirmation") {
			return nil, nil, refuse(ReasonMalformed, errSubject)
		}
	}
	confs := samlxml.Children(subj, samlxml.NSAssertion, "SubjectConfirmation")
	if len(confs) != 1 || plainAttr(confs[0], "Method") != BearerMethod {
		return nil, nil, refuse(ReasonSubjectConfirmation, errConfirmation)
	}
	scd, err := samlxml.Child(confs[0], samlxml.NSAssertion, "SubjectConfirmationData")
	if err != nil || scd == nil {
		return nil, nil, refuse(ReasonSubjectConfirmation, errConfirmation)
	}
	if plainAttr(scd, "Recipient") != sp.acsURL {
		return nil, nil, refuse(ReasonRecipient, errRecipient)
	}
	scdUntil, ok := parseInstant(plainAttr(scd, "NotOnOrAfter"))
	if !ok {
		return nil, nil, refuse(ReasonSubjectConfirmation, errTime)
	}
	if sp.expired(now, scdUntil) {
		return nil, nil, refuse(ReasonExpired, errExpired)
	}
	limit(scdUntil)
	if nb, ok := lookupAttr(scd, "NotBefore"); ok {
		t, ok := parseInstant(nb)
		if !ok {
			return nil, nil, refuse(ReasonSubjectConfirmation, errTime)
		}
		if sp.notYet(now, t) {
			return nil, nil, refuse(ReasonNotYetValid, errNotYetValid)
		}
	}
	val.inResponseTo = plainAttr(scd, "InResponseTo")
	if val.inResponseTo == "" {
		return nil, nil, refuse(ReasonInResponseTo, errInResponseTo)
	}

	// Conditions: required, because the audience restriction is.
	cond, err := samlxml.Child(v, samlxml.NSAssertion, "Conditions")
	if err != nil {
		return nil, nil, refuse(ReasonMalformed, errAssertionShape)
	}
	if cond == nil {
		return nil, nil, refuse(ReasonAudience, errAudience)
	}
	if nb, ok := lookupAttr(cond, "NotBefore"); ok {
		t, ok := parseInstant(nb)
		if !ok {
			return nil, nil, refuse(ReasonMalformed, errTime)
		}
		if sp.notYet(now, t) {
			return nil, nil, refuse(ReasonNotYetValid, errNotYetValid)
		}
	}
	if na, ok := lookupAttr(cond, "NotOnOrAfter"); ok {
		t, ok := parseInstant(na)
		if !ok {
			return nil, nil, refuse(ReasonMalformed, errTime)
		}
		if sp.expired(now, t) {
			return nil, nil, refuse(ReasonExpired, errExpired)
		}
		limit(t)
	}
	restrictions := 0
	for _, c := range cond.ChildElements() {
		switch {
		case samlxml.Is(c, samlxml.NSAssertion, "AudienceRestriction"):
			// Each restriction must name this SP (they are ANDed); within
			// one, any Audience may (they are ORed).
			restrictions++
			ok := false
			for _, au := range samlxml.Children(c, samlxml.NSAssertion, "Audience") {
				if t, err := samlxml.Text(au); err == nil && t == sp.entityID {
					ok = true
				}
			}
			if !ok {
				return nil, nil, refuse(ReasonAudience, errAudience)
			}
		case samlxml.Is(c, samlxml.NSAssertion, "OneTimeUse"), samlxml.Is(c, samlxml.NSAssertion, "ProxyRestriction"):
			// OneTimeUse is what the replay cache does anyway; the bridge
			// never passes the assertion itself on.
		default:
			// An unknown condition makes the assertion indeterminate
			// (saml-core 2.5.1.2), which is not valid.
			return nil, nil, refuse(ReasonMalformed, errCondition)
		}
	}
	if restrictions == 0 {
		return nil, nil, refuse(ReasonAudience, errAudience)
	}

	// Exactly one AuthnStatement.
	stmts := samlxml.Children(v, samlxml.NSAssertion, "AuthnStatement")
	if len(stmts) != 1 {
		return nil, nil, refuse(ReasonAuthnStatement, errAuthnStatement)
	}
	as := stmts[0]
	if a.AuthnInstant, ok = parseInstant(plainAttr(as, "AuthnInstant")); !ok {
		return nil, nil, refuse(ReasonAuthnStatement, errTime)
	}
	if sp.notYet(now, a.AuthnInstant) {
		return nil, nil, refuse(ReasonNotYetValid, errNotYetValid)
	}
	if sn, ok := lookupAttr(as, "SessionNotOnOrAfter"); ok {
		t, ok := parseInstant(sn)
		if !ok {
			return nil, nil, refuse(ReasonAuthnStatement, errTime)
		}
		if sp.expired(now, t) {
			return nil, nil, refuse(ReasonExpired, errExpired)
		}
	}
	a.SessionIndex = plainAttr(as, "SessionIndex")
	if ac, err := samlxml.Child(as, samlxml.NSAssertion, "AuthnContext"); err != nil {
		return nil, nil, refuse(ReasonAuthnStatement, errAuthnStatement)
	} else if ac != nil {
		ref, err := samlxml.Child(ac, samlxml.NSAssertion, "AuthnContextClassRef")
		if err != nil {
			return nil, nil, refuse(ReasonAuthnStatement, errAuthnStatement)
		}
		if ref != nil {
			if a.AuthnContext, err = samlxml.Text(ref); err != nil {
				return nil, nil, refuse(ReasonAuthnStatement, errAuthnStatement)
			}
		}
	}

	for _, st := range samlxml.Children(v, samlxml.NSAssertion, "AttributeStatement") {
		for _, at := range st.ChildElements() {
			if !samlxml.Is(at, samlxml.NSAssertion, "Attribute") {
				return nil, nil, refuse(ReasonMalformed, errAttribute)
			}
			name := plainAttr(at, "Name")
			if name == "" {
				return nil, nil, refuse(ReasonMalformed, errAttribute)
			}
			if fn := plainAttr(at, "FriendlyName"); fn != "" {
				a.FriendlyNames[name] = fn
			}
			vals := a.Attributes[name]
			for _, av := range at.ChildElements() {
				if !samlxml.Is(av, samlxml.NSAssertion, "AttributeValue") {
					return nil, nil, refuse(ReasonMalformed, errAttribute)
				}
				if len(av.ChildElements()) > 0 {
					continue // structured value: not a string the bridge reads
				}
				s, err := samlxml.Text(av)
				if err != nil {
					return nil, nil, refuse(ReasonMalformed, errAttribute)
				}
				vals = append(vals, s)
			}
			a.Attributes[name] = vals
		}
	}
	return a, val, nil
}
