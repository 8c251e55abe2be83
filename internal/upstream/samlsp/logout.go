package samlsp

import (
	"encoding/hex"
	"errors"
	"io"
	"net/http"

	"github.com/skolbro/skolbro/internal/samlslo"
)

// ErrNoSLO is returned when the IdP or the SP has no Single Logout
// endpoint, or the SP no key to sign with.
var ErrNoSLO = errors.New("samlsp: single logout is not configured")

// CanLogout reports whether the SP can send the IdP logout messages.
func (sp *SP) CanLogout() bool {
	_, ok := samlslo.Choose(sp.idpSLO, "")
	return ok && sp.signer != nil && sp.sloURL != ""
}

func (sp *SP) logoutChecks() samlslo.Checks {
	return samlslo.Checks{Destination: sp.sloURL, Issuer: sp.idpEntityID, Now: sp.now(), Skew: sp.skew, MaxAge: sp.requestTTL}
}

func (sp *SP) checkLogoutPeer(in *samlslo.Incoming) error {
	if !sp.CanLogout() {
		return &samlslo.Error{Reason: "no_slo", Status: http.StatusNotFound}
	}
	if in.Issuer != sp.idpEntityID {
		return &samlslo.Error{Reason: samlslo.ReasonIssuer, Status: http.StatusBadRequest}
	}
	return nil
}

// ParseLogoutRequest verifies the IdP's LogoutRequest: signed by a key in
// its metadata (always required), addressed to this SP's SLO endpoint,
// issued by the IdP, fresh. Replay is the caller's to check (by ID).
func (sp *SP) ParseLogoutRequest(in *samlslo.Incoming) (*samlslo.LogoutRequest, error) {
	if err := sp.checkLogoutPeer(in); err != nil {
		return nil, err
	}
	el, err := in.Verify(sp.IdPCerts())
	if err != nil {
		return nil, err
	}
	req, err := samlslo.ParseLogoutRequest(el)
	if err != nil {
		return nil, err
	}
	if err := sp.logoutChecks().CheckRequest(req); err != nil {
		return nil, err
	}
	return req, nil
}

// ParseLogoutResponse verifies the IdP's LogoutResponse to a request the
// SP sent; the caller matches InResponseTo.
func (sp *SP) ParseLogoutResponse(in *samlslo.Incoming) (*samlslo.LogoutResponse, error) {
	if err := sp.checkLogoutPeer(in); err != nil {
		return nil, err
	}
	el, err := in.Verify(sp.IdPCerts())
	if err != nil {
		return nil, err
	}
	resp, err := samlslo.ParseLogoutResponse(el)
	if err != nil {
		return nil, err
	}
	if err := sp.logoutChecks().CheckResponse(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func (sp *SP) newLogoutID() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(sp.rand, b); err != nil {
		return "", err
	}
	return "_" + hex.EncodeToString(b), nil
}

// LogoutRequestTo makes a signed LogoutRequest ending the IdP session the
// login received (its NameID as written, and SessionIndex), for the IdP's
// SLO endpoint (Redirect preferred). It returns the request's ID.
func (sp *SP) LogoutRequestTo(nameID samlslo.NameID, sessionIndex, relayState string) (string, samlslo.Outgoing, error) {
	if !sp.CanLogout() {
		return "", samlslo.Outgoing{}, ErrNoSLO
	}
	ep, _ := samlslo.Choose(sp.idpSLO, "")
	id, err := sp.newLogoutID()
	if err != nil {
		return "", samlslo.Outgoing{}, err
	}
	now := sp.now()
	req := &samlslo.LogoutRequest{ID: id, Issuer: sp.entityID, Destination: ep.Location, IssueInstant: now,
		NotOnOrAfter: now.Add(sp.requestTTL), NameID: nameID, Reason: "urn:oasis:names:tc:SAML:2.0:logout:user"}
	if sessionIndex != "" {
		req.SessionIndexes = []string{sessionIndex}
	}
	out, err := samlslo.Encode(ep.Binding, ep.Location, samlslo.ParamRequest, req.Element(), relayState, sp.signer)
	return id, out, err
}

// LogoutResponseTo answers the IdP's LogoutRequest inResponseTo, in the
// binding it came with when the IdP has an endpoint for it.
func (sp *SP) LogoutResponseTo(inResponseTo, binding, status, subStatus, relayState string) (samlslo.Outgoing, error) {
	if !sp.CanLogout() {
		return samlslo.Outgoing{}, ErrNoSLO
	}
	ep, _ := samlslo.Choose(sp.idpSLO, binding)
	id, err := sp.newLogoutID()
	if err != nil {
		return samlslo.Outgoing{}, err
	}
	resp := &samlslo.LogoutResponse{ID: id, Issuer: sp.entityID, Destination: ep.ResponseURL(), InResponseTo: inResponseTo,
		IssueInstant: sp.now(), Status: status, SubStatus: subStatus}
	return samlslo.Encode(ep.Binding, ep.ResponseURL(), samlslo.ParamResponse, resp.Element(), relayState, sp.signer)
}
