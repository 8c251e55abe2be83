package demovendor

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// Single Logout at the demo vendor, with crewjam/saml where it has the
// parts: the vendor's own LogoutRequest and its LogoutResponse are
// crewjam's (HTTP-POST binding, enveloped signature), and the bridge's
// LogoutResponse is checked by crewjam. crewjam cannot read a
// LogoutRequest, so the bridge's is verified here with goxmldsig against
// the bridge's metadata. The vendor lists only the POST binding: crewjam
// writes Redirect-binding messages with an enveloped signature, which the
// binding does not allow.

// LoggedIn reports whether the vendor holds a session for nameID.
func (v *Vendor) LoggedIn(nameID string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, rec := range v.sessions {
		if rec.NameID == nameID {
			return true
		}
	}
	return false
}

// LogoutsByBridge returns how many LogoutRequests from the bridge ended a
// session here.
func (v *Vendor) LogoutsByBridge() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.bridgeLogouts
}

// LastLogoutAnswer is the status (and second-level status) of the
// bridge's answer to the vendor's own last LogoutRequest, "" before one.
func (v *Vendor) LastLogoutAnswer() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.logoutAnswer
}

// SetSLOHang makes the vendor's SLO endpoint never answer the bridge's
// LogoutRequest until release is closed (a slow vendor, for tests).
func (v *Vendor) SetSLOHang(release chan struct{}) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.hang = release
}

// LogoutForm starts the vendor's own logout of the session rec: the
// crewjam page that posts a signed LogoutRequest to the bridge.
func (v *Vendor) LogoutForm(rec *Received, relayState string) ([]byte, error) {
	return v.SP.MakePostLogoutRequest(rec.NameID, relayState)
}

func (v *Vendor) serveSLO(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if r.Form.Get("SAMLResponse") != "" {
		v.takeLogoutResponse(w, r)
		return
	}
	req, err := v.readLogoutRequest(r.PostForm.Get("SAMLRequest"))
	if err != nil {
		http.Error(w, "demo vendor "+v.Name+": logout request refused", http.StatusForbidden)
		return
	}
	v.mu.Lock()
	hang := v.hang
	v.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return
	}
	v.mu.Lock()
	ended := false
	for sid, rec := range v.sessions {
		if req.NameID != nil && rec.NameID == req.NameID.Value &&
			(req.SessionIndex == nil || req.SessionIndex.Value == rec.SessionIndex) {
			delete(v.sessions, sid)
			ended = true
		}
	}
	if ended {
		v.bridgeLogouts++
	}
	v.mu.Unlock()
	page, err := v.SP.MakePostLogoutResponse(req.ID, r.PostForm.Get("RelayState"))
	if err != nil {
		http.Error(w, "cannot answer", http.StatusInternalServerError)
		return
	}
	// The bridge loads this page in a frame of its logout page.
	v.writeCrewjamForm(w, page, true)
}

// writeCrewjamForm writes one of crewjam's auto-posting pages (an inline
// script, no nonce) with a policy that lets it run and post to the bridge
// only, framed by the bridge when framed is set. The demo mounts the
// vendor inside the bridge's server, whose default policy would block it.
func (v *Vendor) writeCrewjamForm(w http.ResponseWriter, page []byte, framed bool) {
	origin := "'none'"
	if u, err := url.Parse(v.SP.IDPMetadata.EntityID); err == nil && u.Host != "" {
		origin = u.Scheme + "://" + u.Host
	}
	ancestors := "'none'"
	h := w.Header()
	if framed {
		ancestors = origin
		h.Del("X-Frame-Options") // frame-ancestors decides
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; form-action "+origin+"; frame-ancestors "+ancestors)
	_, _ = w.Write(page)
}

// readLogoutRequest verifies the bridge's LogoutRequest (POST binding)
// against the signing keys in the bridge's IdP metadata and returns it.
func (v *Vendor) readLogoutRequest(b64 string) (*saml.LogoutRequest, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for _, d := range v.SP.IDPMetadata.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, xc := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(xc.Data), ""))
				if err != nil {
					continue
				}
				if c, err := x509.ParseCertificate(der); err == nil {
					certs = append(certs, c)
				}
			}
		}
	}
	verified, err := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: certs}).Validate(doc.Root())
	if err != nil {
		return nil, errors.New("signature does not verify")
	}
	out := etree.NewDocument()
	out.SetRoot(verified)
	vb, err := out.WriteToBytes()
	if err != nil {
		return nil, err
	}
	var req saml.LogoutRequest
	if err := xml.Unmarshal(vb, &req); err != nil {
		return nil, err
	}
	if req.Destination != v.SP.SloURL.String() || req.Issuer == nil || req.Issuer.Value != v.SP.IDPMetadata.EntityID {
		return nil, errors.New("not for this vendor")
	}
	return &req, nil
}

// takeLogoutResponse checks the bridge's answer to the vendor's own
// LogoutRequest with crewjam and ends the vendor's session.
func (v *Vendor) takeLogoutResponse(w http.ResponseWriter, r *http.Request) {
	if err := v.SP.ValidateLogoutResponseRequest(r); err != nil {
		http.Error(w, "demo vendor "+v.Name+": logout response refused", http.StatusForbidden)
		return
	}
	status := ""
	if raw, err := base64.StdEncoding.DecodeString(r.Form.Get("SAMLResponse")); err == nil {
		var resp saml.LogoutResponse
		if xml.Unmarshal(raw, &resp) == nil {
			status = resp.Status.StatusCode.Value
			if sub := resp.Status.StatusCode.StatusCode; sub != nil {
				status += " " + sub.Value
			}
		}
	}
	v.mu.Lock()
	v.logoutAnswer = status
	if c, err := r.Cookie("demo_vendor_" + v.Name); err == nil {
		delete(v.sessions, c.Value)
	}
	v.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "demo_vendor_" + v.Name, Value: "", Path: "/", MaxAge: -1})
	http.Redirect(w, r, v.Base+"/", http.StatusSeeOther)
}
