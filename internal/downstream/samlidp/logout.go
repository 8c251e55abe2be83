package samlidp

import (
	"errors"
	"net/http"
	"time"

	"github.com/skolbro/skolbro/internal/samlslo"
)

// ErrNoSLO is returned when a vendor has no usable SingleLogoutService.
var ErrNoSLO = errors.New("samlidp: vendor has no single logout endpoint")

// logoutChecks are what a vendor's logout message must meet besides its
// signature: addressed to this IdP's SLO endpoint, issued by the vendor,
// and fresh.
func (idp *IdP) logoutChecks(v *Vendor) samlslo.Checks {
	return samlslo.Checks{Destination: idp.SLOURL, Issuer: v.EntityID, Now: idp.now(), Skew: idp.skew(), MaxAge: idp.maxRequestAge()}
}

// logoutVendor finds the vendor a message claims to come from. Only a
// vendor the bridge would send logout messages to may send one.
func (idp *IdP) logoutVendor(in *samlslo.Incoming) (*Vendor, error) {
	if idp.SLOURL == "" {
		return nil, &samlslo.Error{Reason: "no_slo", Status: http.StatusNotFound}
	}
	v, ok := idp.Vendor(in.Issuer)
	if !ok {
		return nil, &samlslo.Error{Reason: "unknown_vendor", Status: http.StatusBadRequest}
	}
	if len(v.SigningCerts) == 0 {
		return nil, &samlslo.Error{Reason: samlslo.ReasonUnsigned, Status: http.StatusBadRequest}
	}
	return v, nil
}

// ParseLogoutRequest verifies a vendor's LogoutRequest: signed by a key
// in the vendor's metadata (always required), addressed to this IdP's SLO
// endpoint, and fresh. Replay is the caller's to check (by ID).
func (idp *IdP) ParseLogoutRequest(in *samlslo.Incoming) (*samlslo.LogoutRequest, *Vendor, error) {
	v, err := idp.logoutVendor(in)
	if err != nil {
		return nil, nil, err
	}
	el, err := in.Verify(v.SigningCerts)
	if err != nil {
		return nil, nil, err
	}
	req, err := samlslo.ParseLogoutRequest(el)
	if err != nil {
		return nil, nil, err
	}
	if err := idp.logoutChecks(v).CheckRequest(req); err != nil {
		return nil, nil, err
	}
	return req, v, nil
}

// ParseLogoutResponse verifies a vendor's LogoutResponse to a request the
// bridge sent: signed, addressed here, fresh. The caller matches
// InResponseTo against the requests it sent.
func (idp *IdP) ParseLogoutResponse(in *samlslo.Incoming) (*samlslo.LogoutResponse, *Vendor, error) {
	v, err := idp.logoutVendor(in)
	if err != nil {
		return nil, nil, err
	}
	el, err := in.Verify(v.SigningCerts)
	if err != nil {
		return nil, nil, err
	}
	resp, err := samlslo.ParseLogoutResponse(el)
	if err != nil {
		return nil, nil, err
	}
	if err := idp.logoutChecks(v).CheckResponse(resp); err != nil {
		return nil, nil, err
	}
	return resp, v, nil
}

// LogoutRequestTo makes a signed LogoutRequest ending the session the
// vendor was given (nameID, sessionIndex), for the vendor's SLO endpoint
// (Redirect preferred). It returns the request's ID, which the vendor's
// LogoutResponse names.
func (idp *IdP) LogoutRequestTo(v *Vendor, nameID samlslo.NameID, sessionIndex, relayState string, lifetime time.Duration) (string, samlslo.Outgoing, error) {
	ep, ok := samlslo.Choose(v.SLO, "")
	if !ok {
		return "", samlslo.Outgoing{}, ErrNoSLO
	}
	id, err := idp.newID()
	if err != nil {
		return "", samlslo.Outgoing{}, err
	}
	now := idp.now()
	req := &samlslo.LogoutRequest{ID: id, Issuer: idp.EntityID, Destination: ep.Location, IssueInstant: now,
		NotOnOrAfter: now.Add(lifetime), NameID: nameID, Reason: "urn:oasis:names:tc:SAML:2.0:logout:user"}
	if sessionIndex != "" {
		req.SessionIndexes = []string{sessionIndex}
	}
	out, err := samlslo.Encode(ep.Binding, ep.Location, samlslo.ParamRequest, req.Element(), relayState, idp.Signer)
	return id, out, err
}

// LogoutResponseTo makes a signed LogoutResponse to the vendor's request
// inResponseTo, in the binding the request came with when the vendor has
// an endpoint for it.
func (idp *IdP) LogoutResponseTo(v *Vendor, inResponseTo, binding, status, subStatus, relayState string) (samlslo.Outgoing, error) {
	ep, ok := samlslo.Choose(v.SLO, binding)
	if !ok {
		return samlslo.Outgoing{}, ErrNoSLO
	}
	id, err := idp.newID()
	if err != nil {
		return samlslo.Outgoing{}, err
	}
	resp := &samlslo.LogoutResponse{ID: id, Issuer: idp.EntityID, Destination: ep.ResponseURL(), InResponseTo: inResponseTo,
		IssueInstant: idp.now(), Status: status, SubStatus: subStatus}
	return samlslo.Encode(ep.Binding, ep.ResponseURL(), samlslo.ParamResponse, resp.Element(), relayState, idp.Signer)
}
