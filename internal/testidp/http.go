package testidp

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
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
	req.ForceAuthn = isTrue(root.SelectAttrValue("ForceAuthn", ""))
	req.IsPassive = isTrue(root.SelectAttrValue("IsPassive", ""))
	if rac, err := samlxml.Child(root, samlxml.NSProtocol, "RequestedAuthnContext"); err == nil && rac != nil {
		req.Comparison = rac.SelectAttrValue("Comparison", "exact")
		for _, c := range samlxml.Children(rac, samlxml.NSAssertion, "AuthnContextClassRef") {
			if v, err := samlxml.Text(c); err == nil {
				req.AuthnContextClassRefs = append(req.AuthnContextClassRefs, v)
			}
		}
	}
	return req, root.SelectAttrValue("Destination", ""), nil
}

func isTrue(v string) bool { return v == "true" || v == "1" }

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
<p>Välj vem du vill logga in som, och hur. / Choose who to log in as, and how.</p>
<form method="post">
<input type="hidden" name="SAMLRequest" value="{{.SAMLRequest}}">
{{- if .RelayState}}
<input type="hidden" name="RelayState" value="{{.RelayState}}">
{{- end}}
<ul>
{{- range .Users}}
<li>{{.Label}}:
<button type="submit" name="user" value="{{.Login}}">lösenord / password</button>
<button type="submit" name="user_otp" value="{{.Login}}">lösenord och engångskod / password and one-time code</button></li>
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
		_, ignoreForceAuthn := idp.flags()
		if sess, ok := idp.session(r); ok && (!req.ForceAuthn || ignoreForceAuthn) {
			// Single sign-on: the earlier login, as it was.
			if u, ok := idp.User(sess.login); ok {
				idp.answer(w, req, u, relayState, AuthnAt(sess.at), AuthnClass(sess.class))
				return
			}
		}
		if req.IsPassive {
			idp.answer(w, req, User{}, relayState, Status(StatusResponder, StatusNoPassive))
			return
		}
		idp.servePicker(w, samlRequest, relayState)
		return
	}
	login, class := r.PostForm.Get("user"), PasswordProtected
	if l := r.PostForm.Get("user_otp"); l != "" {
		login, class = l, PasswordOTP
	}
	u, ok := idp.User(login)
	if !ok {
		http.Error(w, "unknown user", http.StatusBadRequest)
		return
	}
	now := idp.now()
	if sso, _ := idp.flags(); sso {
		if err := idp.remember(w, session{login: u.Login, class: class, at: now}); err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
	}
	idp.answer(w, req, u, relayState, At(now), AuthnClass(class))
}

// sessionCookie is the test IdP's single sign-on cookie.
const sessionCookie = "testidp_session"

// session returns the browser's remembered login, if sessions are on.
func (idp *IdP) session(r *http.Request) (session, bool) {
	if sso, _ := idp.flags(); !sso {
		return session{}, false
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	idp.mu.Lock()
	defer idp.mu.Unlock()
	s, ok := idp.sessions[c.Value]
	return s, ok
}

// remember keeps s under a fresh cookie.
func (idp *IdP) remember(w http.ResponseWriter, s session) error {
	id, err := idp.newID()
	if err != nil {
		return err
	}
	idp.mu.Lock()
	if idp.sessions == nil {
		idp.sessions = map[string]session{}
	}
	idp.sessions[id] = s
	idp.mu.Unlock()
	path := "/"
	if u, err := url.Parse(idp.SSOURL); err == nil && u.Path != "" {
		path = u.Path
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: path, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return nil
}

// answer posts a response to req's ACS.
func (idp *IdP) answer(w http.ResponseWriter, req Request, u User, relayState string, opts ...Option) {
	resp, err := idp.Respond(req, u, opts...)
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
