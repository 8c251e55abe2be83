// Package demovendor is the demo's vendor: a SAML SP built on
// github.com/crewjam/saml's ServiceProvider (an implementation independent
// of the bridge's own IdP code) whose page shows exactly which attributes
// it received. It is used by `skolbro demo` and by end-to-end tests; it is
// not meant to be a model vendor.
package demovendor

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/skolbro/skolbro/internal/keys"
)

// Vendor is one demo vendor mounted under Base (e.g. http://127.0.0.1:8080/demo/vendor/learning-app).
type Vendor struct {
	Name string
	Base string
	SP   *saml.ServiceProvider

	mu       sync.Mutex
	requests map[string]time.Time // outstanding AuthnRequest ids
	sessions map[string]*Received // demo session cookie -> what arrived
	last     *Received
	history  []*Received // the most recent logins, newest first, for comparison

	// Single Logout (slo.go).
	bridgeLogouts int
	logoutAnswer  string
	hang          chan struct{}
}

// Received is what a login delivered to the vendor.
type Received struct {
	At           time.Time
	NameID       string
	NameFormat   string
	SessionIndex string
	// AuthnContext is the AuthnContextClassRef, AuthnInstant the
	// AuthnStatement's instant.
	AuthnContext string
	AuthnInstant time.Time
	Attributes   []Attribute
}

// Attribute is one received attribute.
type Attribute struct {
	Name, FriendlyName string
	Values             []string
}

// New makes a vendor with a fresh test key pair. Its metadata lists no
// encryption key, so that the bridge sends it signed, unencrypted
// assertions (crewjam/saml cannot decrypt AES-GCM reliably).
func New(name, base string, now time.Time) (*Vendor, error) {
	pair, err := keys.Generate("demo vendor "+name+" (TEST ONLY)", keys.RSA2048, now)
	if err != nil {
		return nil, err
	}
	mdURL, _ := url.Parse(base + "/metadata")
	acsURL, _ := url.Parse(base + "/acs")
	sloURL, _ := url.Parse(base + "/slo")
	sp := &saml.ServiceProvider{
		EntityID:          base + "/metadata",
		Key:               pair.Signer,
		Certificate:       pair.Cert,
		MetadataURL:       *mdURL,
		AcsURL:            *acsURL,
		AuthnNameIDFormat: saml.TransientNameIDFormat,
		SignatureMethod:   "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
		SloURL:            *sloURL,
		LogoutBindings:    []string{saml.HTTPPostBinding},
	}
	return &Vendor{Name: name, Base: base, SP: sp, requests: map[string]time.Time{}, sessions: map[string]*Received{}}, nil
}

// Metadata returns the vendor's SP metadata without encryption keys.
func (v *Vendor) Metadata() ([]byte, error) {
	md := v.SP.Metadata()
	for i := range md.SPSSODescriptors {
		var kds []saml.KeyDescriptor
		for _, kd := range md.SPSSODescriptors[i].KeyDescriptors {
			if kd.Use != "encryption" {
				kds = append(kds, kd)
			}
		}
		md.SPSSODescriptors[i].KeyDescriptors = kds
	}
	return xml.MarshalIndent(md, "", "  ")
}

// SetIdPMetadata gives the vendor the bridge's IdP metadata.
func (v *Vendor) SetIdPMetadata(b []byte) error {
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal(b, &ed); err != nil {
		return err
	}
	v.SP.IDPMetadata = &ed
	return nil
}

// errNoIdP is returned for a login before the vendor has the bridge's
// metadata (its organiser is disabled in the demo).
var errNoIdP = errors.New("demo vendor: the bridge's IdP metadata is not known")

// LoginURL makes an AuthnRequest and returns the bridge URL to send the
// browser to (HTTP-Redirect binding).
func (v *Vendor) LoginURL(relayState string) (string, error) {
	return v.LoginURLWith(relayState, nil)
}

// LoginURLWith is LoginURL with change applied to the AuthnRequest before
// it is encoded (ForceAuthn, IsPassive, a RequestedAuthnContext).
func (v *Vendor) LoginURLWith(relayState string, change func(*saml.AuthnRequest)) (string, error) {
	if v.SP.IDPMetadata == nil {
		return "", errNoIdP
	}
	req, err := v.SP.MakeAuthenticationRequest(v.SP.GetSSOBindingLocation(saml.HTTPRedirectBinding), saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		return "", err
	}
	if change != nil {
		change(req)
	}
	u, err := req.Redirect(relayState, v.SP)
	if err != nil {
		return "", err
	}
	v.mu.Lock()
	v.requests[req.ID] = time.Now()
	v.mu.Unlock()
	return u.String(), nil
}

// LoginURLWithIDPList is LoginURL with a Scoping/IDPList naming the
// school IdPs the person belongs to, as a vendor that knows sends it to
// skip the bridge's discovery page. crewjam/saml cannot write Scoping, so
// the request is encoded and signed here as its Redirect would.
func (v *Vendor) LoginURLWithIDPList(relayState string, providerIDs []string) (string, error) {
	if v.SP.IDPMetadata == nil {
		return "", errNoIdP
	}
	req, err := v.SP.MakeAuthenticationRequest(v.SP.GetSSOBindingLocation(saml.HTTPRedirectBinding), saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		return "", err
	}
	el := req.Element()
	list := el.CreateElement("samlp:Scoping").CreateElement("samlp:IDPList")
	for _, id := range providerIDs {
		list.CreateElement("samlp:IDPEntry").CreateAttr("ProviderID", id)
	}
	doc := etree.NewDocument()
	doc.SetRoot(el)
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	if _, err := doc.WriteTo(fw); err != nil {
		return "", err
	}
	if err := fw.Close(); err != nil {
		return "", err
	}
	// The signed query keeps its parameters in this order (SAML bindings
	// 3.4.4.1).
	query := "SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relayState != "" {
		query += "&RelayState=" + url.QueryEscape(relayState)
	}
	query += "&SigAlg=" + url.QueryEscape(v.SP.SignatureMethod)
	ctx, err := saml.GetSigningContext(v.SP)
	if err != nil {
		return "", err
	}
	sig, err := ctx.SignString(query)
	if err != nil {
		return "", err
	}
	query += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	v.mu.Lock()
	v.requests[req.ID] = time.Now()
	v.mu.Unlock()
	return req.Destination + "?" + query, nil
}

// Consume validates a SAMLResponse POSTed to the ACS with crewjam/saml and
// returns what it carried.
func (v *Vendor) Consume(r *http.Request) (*Received, error) {
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	v.mu.Lock()
	ids := make([]string, 0, len(v.requests))
	for id := range v.requests {
		ids = append(ids, id)
	}
	v.mu.Unlock()
	a, err := v.SP.ParseResponse(r, ids)
	if err != nil {
		// InvalidResponseError carries the whole response: never print it.
		return nil, fmt.Errorf("demo vendor %s: response refused", v.Name)
	}
	v.mu.Lock()
	for _, id := range ids {
		if a.Subject != nil {
			for _, sc := range a.Subject.SubjectConfirmations {
				if sc.SubjectConfirmationData != nil && sc.SubjectConfirmationData.InResponseTo == id {
					delete(v.requests, id)
				}
			}
		}
	}
	v.mu.Unlock()
	rec := &Received{At: time.Now()}
	if a.Subject != nil && a.Subject.NameID != nil {
		rec.NameID, rec.NameFormat = a.Subject.NameID.Value, a.Subject.NameID.Format
	}
	for _, as := range a.AuthnStatements {
		rec.SessionIndex = as.SessionIndex
		rec.AuthnInstant = as.AuthnInstant
		if as.AuthnContext.AuthnContextClassRef != nil {
			rec.AuthnContext = as.AuthnContext.AuthnContextClassRef.Value
		}
	}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			ra := Attribute{Name: at.Name, FriendlyName: at.FriendlyName}
			for _, val := range at.Values {
				ra.Values = append(ra.Values, val.Value)
			}
			rec.Attributes = append(rec.Attributes, ra)
		}
	}
	sort.Slice(rec.Attributes, func(i, j int) bool { return rec.Attributes[i].FriendlyName < rec.Attributes[j].FriendlyName })
	return rec, nil
}

var page = template.Must(template.New("vendor").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Name}} (demo vendor)</title><link rel="stylesheet" href="/static/skolbro.css"></head><body><main>
<p class="muted">Demo vendor · SAML SP built on crewjam/saml · entityID <code>{{.EntityID}}</code></p>
<h1>{{.Name}}</h1>
{{if .Received}}
<p>The bridge's response was accepted (signature checked against the bridge's IdP metadata). This is <strong>everything</strong> this vendor received:</p>
<div class="box"><table>
<tr><th>NameID</th><td><code>{{.Received.NameID}}</code><br><span class="muted">{{.Received.NameFormat}}</span></td></tr>
<tr><th>AuthnContextClassRef<br><span class="muted">how strongly the person logged in</span></th><td><code id="authn-context">{{.Received.AuthnContext}}</code><br><span class="muted">AuthnInstant {{.Received.AuthnInstant.Format "2006-01-02 15:04:05Z07:00"}}</span></td></tr>
{{range .Received.Attributes}}<tr><th>{{.FriendlyName}}<br><span class="muted"><code>{{.Name}}</code></span></th><td>{{range .Values}}<code>{{.}}</code><br>{{end}}</td></tr>
{{else}}<tr><td colspan="2">No attributes.</td></tr>{{end}}
</table></div>
{{end}}
{{with .Compare}}{{if gt (len .Logins) 1}}
<h2>Recent logins side by side</h2>
<p class="muted">Log in as a pupil, then as the pupil with protected identity, and compare: the protected pupil's school, name and
grade are withheld, and nothing in the response says why.</p>
<div class="box"><table>
<tr><th>attribute</th>{{range .Logins}}<th>{{.At.Format "15:04:05"}}</th>{{end}}</tr>
{{range .Rows}}<tr><th>{{.Name}}</th>{{range .Cells}}<td>{{range .}}<code>{{.}}</code><br>{{else}}<span class="muted">–</span>{{end}}</td>{{end}}</tr>{{end}}
</table></div>{{end}}{{end}}
<form method="post" action="{{.Base}}/login"><button type="submit">Log in with the school account (via skolbro)</button></form>
{{if .Received}}<form method="post" action="{{.Base}}/logout"><button type="submit">Log out everywhere (Single Logout via skolbro)</button></form>{{end}}
<p><a href="/demo/">Back to the demo overview</a></p>
</main></body></html>`))

// ServeHTTP serves the vendor's pages: index, login, acs, metadata.
func (v *Vendor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.URL.Path {
	case "", "/":
		var rec *Received
		if c, err := r.Cookie("demo_vendor_" + v.Name); err == nil {
			v.mu.Lock()
			rec = v.sessions[c.Value]
			v.mu.Unlock()
		}
		v.mu.Lock()
		cmp := comparison(v.history)
		v.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, map[string]any{"Name": v.Name, "Base": v.Base, "EntityID": v.SP.EntityID, "Received": rec, "Compare": cmp})
	case "/login":
		if r.Method != http.MethodPost {
			http.Error(w, "use the button", http.StatusMethodNotAllowed)
			return
		}
		to, err := v.LoginURL("demo")
		if err != nil {
			http.Error(w, "cannot start login", http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, to, http.StatusFound)
	case "/acs":
		rec, err := v.Consume(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		sid := hex.EncodeToString(b)
		v.mu.Lock()
		v.sessions[sid] = rec
		v.last = rec
		v.history = append([]*Received{rec}, v.history...)
		if len(v.history) > 4 {
			v.history = v.history[:4]
		}
		v.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "demo_vendor_" + v.Name, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, v.Base+"/", http.StatusSeeOther)
	case "/slo":
		v.serveSLO(w, r)
	case "/logout":
		if r.Method != http.MethodPost {
			http.Error(w, "use the button", http.StatusMethodNotAllowed)
			return
		}
		var rec *Received
		if c, err := r.Cookie("demo_vendor_" + v.Name); err == nil {
			v.mu.Lock()
			rec = v.sessions[c.Value]
			v.mu.Unlock()
		}
		if rec == nil {
			http.Redirect(w, r, v.Base+"/", http.StatusSeeOther)
			return
		}
		page, err := v.LogoutForm(rec, "")
		if err != nil {
			http.Error(w, "cannot start logout", http.StatusInternalServerError)
			return
		}
		v.writeCrewjamForm(w, page, false)
	case "/metadata":
		b, err := v.Metadata()
		if err != nil {
			http.Error(w, "metadata", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Write(bytes.TrimSpace(b))
	default:
		http.NotFound(w, r)
	}
}

// Last returns what the most recent login delivered (for tests).
func (v *Vendor) Last() *Received {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.last
}

type compareRow struct {
	Name  string
	Cells [][]string
}

type compareTable struct {
	Logins []*Received
	Rows   []compareRow
}

// comparison lays out recent logins as columns, one row per attribute.
func comparison(history []*Received) compareTable {
	t := compareTable{Logins: history}
	var names []string
	seen := map[string]bool{}
	for _, r := range history {
		for _, a := range r.Attributes {
			if !seen[a.FriendlyName] {
				seen[a.FriendlyName] = true
				names = append(names, a.FriendlyName)
			}
		}
	}
	sort.Strings(names)
	for _, n := range names {
		row := compareRow{Name: n}
		for _, r := range history {
			var vals []string
			for _, a := range r.Attributes {
				if a.FriendlyName == n {
					vals = append(vals, a.Values...)
				}
			}
			row.Cells = append(row.Cells, vals)
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}
