package testidp

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/autopost"
	"github.com/skolbro/skolbro/internal/samlxml"
)

// MaxRelayState is the longest RelayState the IdP carries (SAML bindings
// 3.4.3: 80 bytes).
const MaxRelayState = 80

// Errors for AuthnRequests the IdP does not answer. They carry no input.
var (
	ErrBadRequest   = errors.New("testidp: not a usable AuthnRequest")
	ErrUntrustedACS = errors.New("testidp: ACS URL not trusted")
)

// Metadata returns the IdP's EntityDescriptor: an IDPSSODescriptor with a
// signing KeyDescriptor, the HTTP-Redirect SSO endpoint and shibmd:Scope.
func (idp *IdP) Metadata() ([]byte, error) {
	if idp.Signer == nil {
		return nil, errors.New("testidp: no signer")
	}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	ed := doc.CreateElement("md:EntityDescriptor")
	ed.CreateAttr("xmlns:md", samlxml.NSMetadata)
	ed.CreateAttr("xmlns:ds", samlxml.NSDSig)
	ed.CreateAttr("xmlns:shibmd", nsShibMD)
	ed.CreateAttr("entityID", idp.EntityID)
	d := ed.CreateElement("md:IDPSSODescriptor")
	d.CreateAttr("protocolSupportEnumeration", samlxml.NSProtocol)
	d.CreateAttr("WantAuthnRequestsSigned", "false")
	if idp.Scope != "" {
		sc := d.CreateElement("md:Extensions").CreateElement("shibmd:Scope")
		sc.CreateAttr("regexp", "false")
		sc.SetText(idp.Scope)
	}
	kd := d.CreateElement("md:KeyDescriptor")
	kd.CreateAttr("use", "signing")
	kd.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
		SetText(base64.StdEncoding.EncodeToString(idp.Signer.Pair().Cert.Raw))
	if idp.SLOURL != "" {
		slo := d.CreateElement("md:SingleLogoutService")
		slo.CreateAttr("Binding", HTTPRedirectBinding)
		slo.CreateAttr("Location", idp.SLOURL)
	}
	d.CreateElement("md:NameIDFormat").SetText(NameIDPersistent)
	sso := d.CreateElement("md:SingleSignOnService")
	sso.CreateAttr("Binding", HTTPRedirectBinding)
	sso.CreateAttr("Location", idp.SSOURL)
	doc.Indent(2)
	return doc.WriteToBytes()
}

// ParseAuthnRequest reads an HTTP-Redirect SAMLRequest parameter (base64 of
// raw DEFLATE) into a Request. The ACS URL is empty when the request names
// none.
func ParseAuthnRequest(samlRequest string) (Request, error) {
	req, _, err := parseAuthnRequest(samlRequest)
	return req, err
}

// parseAuthnRequest also returns the request's Destination.
func parseAuthnRequest(samlRequest string) (Request, string, error) {
	raw, err := samlxml.Inflate(samlRequest)
	if err != nil {
		return Request{}, "", err
	}
	doc, err := samlxml.Parse(raw)
	if err != nil {
		return Request{}, "", err
	}
	root := doc.Root()
	if !samlxml.Is(root, samlxml.NSProtocol, "AuthnRequest") || root.SelectAttrValue("Version", "") != "2.0" {
		return Request{}, "", ErrBadRequest
	}
	iss, err := samlxml.Child(root, samlxml.NSAssertion, "Issuer")
	if err != nil || iss == nil {
		return Request{}, "", ErrBadRequest
	}
	issuer, err := samlxml.Text(iss)
	if err != nil || issuer == "" {
		return Request{}, "", ErrBadRequest
	}
	id := root.SelectAttrValue("ID", "")
	if id == "" || len(id) > 256 {
		return Request{}, "", ErrBadRequest
	}
	req := Request{ID: id, ACSURL: root.SelectAttrValue("AssertionConsumerServiceURL", ""), SPEntityID: issuer}
	return req, root.SelectAttrValue("Destination", ""), nil
}

// trusted resolves the ACS URL for req, or fails when it is not trusted.
func (idp *IdP) trusted(req Request) (Request, error) {
	if req.ACSURL == "" {
		req.ACSURL = idp.ACSURL
	}
	ok := false
	if idp.TrustACS != nil {
		ok = idp.TrustACS(req.SPEntityID, req.ACSURL)
	} else {
		ok = idp.ACSURL != "" && req.ACSURL == idp.ACSURL
	}
	if !ok {
		return Request{}, ErrUntrustedACS
	}
	return req, nil
}

var picker = template.Must(template.New("picker").Parse(`<!DOCTYPE html>
<html lang="sv">
<head>
<meta charset="utf-8">
<title>Test-IdP: välj användare</title>
</head>
<body>
<h1>Test-IdP</h1>
<p>Välj vem du vill logga in som. / Choose who to log in as.</p>
<form method="post">
<input type="hidden" name="SAMLRequest" value="{{.SAMLRequest}}">
{{- if .RelayState}}
<input type="hidden" name="RelayState" value="{{.RelayState}}">
{{- end}}
<ul>
{{- range .Users}}
<li><button type="submit" name="user" value="{{.Login}}">{{.Label}}</button></li>
{{- end}}
</ul>
</form>
</body>
</html>
`))

// ServeHTTP serves the SSO endpoint: GET with an HTTP-Redirect AuthnRequest
// shows the user picker; the picker's POST answers with an auto-submitting
// form that carries the signed response to the ACS. Only trusted ACS URLs
// are posted to.
func (idp *IdP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var samlRequest, relayState string
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		samlRequest, relayState = q.Get("SAMLRequest"), q.Get("RelayState")
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 2*samlxml.MaxMessageBytes)
		if err := r.ParseForm(); err != nil {
			status := http.StatusBadRequest
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				status = http.StatusRequestEntityTooLarge
			}
			http.Error(w, "bad request", status)
			return
		}
		samlRequest, relayState = r.PostForm.Get("SAMLRequest"), r.PostForm.Get("RelayState")
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if len(relayState) > MaxRelayState {
		http.Error(w, "RelayState too long", http.StatusBadRequest)
		return
	}
	req, dest, err := parseAuthnRequest(samlRequest)
	if err == nil && dest != "" && dest != idp.SSOURL {
		err = ErrBadRequest
	}
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, samlxml.ErrTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, "bad SAMLRequest", status)
		return
	}
	if req, err = idp.trusted(req); err != nil {
		http.Error(w, "untrusted ACS URL", http.StatusBadRequest)
		return
	}
	if r.Method == http.MethodGet {
		idp.servePicker(w, samlRequest, relayState)
		return
	}
	u, ok := idp.User(r.PostForm.Get("user"))
	if !ok {
		http.Error(w, "unknown user", http.StatusBadRequest)
		return
	}
	resp, err := idp.Respond(req, u)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	fields := map[string]string{"SAMLResponse": resp}
	if relayState != "" {
		fields["RelayState"] = relayState
	}
	autopost.Write(w, req.ACSURL, fields)
}

func (idp *IdP) servePicker(w http.ResponseWriter, samlRequest, relayState string) {
	var sb strings.Builder
	err := picker.Execute(&sb, struct {
		SAMLRequest, RelayState string
		Users                   []User
	}{samlRequest, relayState, idp.Users})
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	WritePage(w, sb.String())
}

// WritePage writes a test provider's HTML page (the user picker) with
// strict headers: no scripts, forms only to itself, never framed or cached.
// The test OIDC provider serves its picker through it too.
func WritePage(w http.ResponseWriter, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	_, _ = w.Write([]byte(body))
}
