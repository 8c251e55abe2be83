package demovendor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDCVendor is the demo's OIDC vendor: a relying party built on
// github.com/coreos/go-oidc and golang.org/x/oauth2, independent of the
// bridge's own OP code, whose page shows the claims it received.
type OIDCVendor struct {
	Name         string
	Base         string // e.g. http://127.0.0.1:8080/demo/vendor/oidc-app
	Issuer       string // the bridge
	ClientID     string
	ClientSecret string
	// HTTPClient is used towards the bridge (discovery, JWKS, token).
	HTTPClient *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
	pending  map[string]pendingAuth // state -> verifier, nonce
	last     *Claims
	sessions map[string]*Claims

	// Logout (oidc_logout.go).
	ended    int
	returned []string
	delay    time.Duration
}

type pendingAuth struct{ verifier, nonce string }

// Claims is what one login delivered.
type Claims struct {
	At      time.Time
	Subject string
	// SID is the ID token's sid: the session the bridge logs out.
	SID string
	// ACR is the acr claim; AuthTime the auth_time claim (zero without).
	ACR      string
	AuthTime time.Time
	Claims   []Claim

	rawIDToken string
}

// Claim is one ID token claim the vendor received (protocol claims such as
// iss, aud, exp left out).
type Claim struct {
	Name   string
	Values []string
}

// NewOIDC makes an OIDC demo vendor with a random client secret.
func NewOIDC(name, base, issuer string) (*OIDCVendor, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return &OIDCVendor{Name: name, Base: base, Issuer: issuer, ClientID: name,
		ClientSecret: hex.EncodeToString(b), pending: map[string]pendingAuth{}, sessions: map[string]*Claims{}}, nil
}

// RedirectURL is the vendor's registered redirect URI.
func (v *OIDCVendor) RedirectURL() string { return v.Base + "/callback" }

func (v *OIDCVendor) ctx(ctx context.Context) context.Context {
	if v.HTTPClient != nil {
		return oidc.ClientContext(ctx, v.HTTPClient)
	}
	return ctx
}

// discover finds the bridge lazily: the bridge may not be listening yet
// when the vendor is made.
func (v *OIDCVendor) discover(ctx context.Context) (*oidc.Provider, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.provider != nil {
		return v.provider, nil
	}
	p, err := oidc.NewProvider(v.ctx(ctx), v.Issuer)
	if err != nil {
		return nil, err
	}
	v.provider = p
	return p, nil
}

func (v *OIDCVendor) config(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: v.ClientID, ClientSecret: v.ClientSecret, RedirectURL: v.RedirectURL(),
		Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile"}}
}

// LoginURL starts an authorization code flow with PKCE and a nonce.
func (v *OIDCVendor) LoginURL(ctx context.Context) (string, error) {
	return v.LoginURLWith(ctx, nil)
}

// LoginURLWith is LoginURL with further authorization parameters (prompt,
// max_age, acr_values, claims).
func (v *OIDCVendor) LoginURLWith(ctx context.Context, extra map[string]string) (string, error) {
	p, err := v.discover(ctx)
	if err != nil {
		return "", err
	}
	state, nonce, verifier := randHex(), randHex(), oauth2.GenerateVerifier()
	v.mu.Lock()
	v.pending[state] = pendingAuth{verifier: verifier, nonce: nonce}
	v.mu.Unlock()
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	for k, val := range extra {
		opts = append(opts, oauth2.SetAuthURLParam(k, val))
	}
	return v.config(p).AuthCodeURL(state, opts...), nil
}

func randHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Callback redeems the code and verifies the ID token (signature, iss,
// aud, expiry with go-oidc; the nonce here).
func (v *OIDCVendor) Callback(r *http.Request) (*Claims, error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return nil, fmt.Errorf("the bridge answered %s", e)
	}
	if iss := q.Get("iss"); iss != v.Issuer {
		return nil, errors.New("iss in the authorization response is not the bridge (RFC 9207)")
	}
	v.mu.Lock()
	pa, ok := v.pending[q.Get("state")]
	delete(v.pending, q.Get("state"))
	v.mu.Unlock()
	if !ok {
		return nil, errors.New("unknown state")
	}
	p, err := v.discover(r.Context())
	if err != nil {
		return nil, err
	}
	ctx := v.ctx(r.Context())
	tok, err := v.config(p).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pa.verifier))
	if err != nil {
		return nil, errors.New("code exchange failed")
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: v.ClientID}).Verify(ctx, raw)
	if err != nil {
		return nil, errors.New("the ID token did not verify")
	}
	if idt.Nonce != pa.nonce {
		return nil, errors.New("the ID token's nonce is not ours")
	}
	var all map[string]any
	if err := idt.Claims(&all); err != nil {
		return nil, err
	}
	c := &Claims{At: time.Now(), Subject: idt.Subject, rawIDToken: raw}
	if sid, ok := all["sid"].(string); ok {
		c.SID = sid
	}
	if acr, ok := all["acr"].(string); ok {
		c.ACR = acr
	}
	if at, ok := all["auth_time"].(float64); ok {
		c.AuthTime = time.Unix(int64(at), 0).UTC()
	}
	for name, val := range all {
		switch name {
		case "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "sub", "acr", "sid":
			continue
		}
		c.Claims = append(c.Claims, Claim{Name: name, Values: flatten(val)})
	}
	sort.Slice(c.Claims, func(i, j int) bool { return c.Claims[i].Name < c.Claims[j].Name })
	return c, nil
}

func flatten(v any) []string {
	switch t := v.(type) {
	case []any:
		var out []string
		for _, e := range t {
			out = append(out, flatten(e)...)
		}
		return out
	case string:
		return []string{t}
	default:
		b, _ := json.Marshal(t)
		return []string{string(b)}
	}
}

// Last returns what the most recent login delivered (for tests).
func (v *OIDCVendor) Last() *Claims {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.last
}

var oidcPage = template.Must(template.New("oidc").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Name}} (demo OIDC vendor)</title><link rel="stylesheet" href="/static/skolbro.css"></head><body><main>
<p class="muted">Demo vendor · OpenID Connect relying party built on coreos/go-oidc · client id <code>{{.ClientID}}</code></p>
<h1>{{.Name}}</h1>
{{with .Claims}}
<p>The ID token verified against the bridge's JWKS (signature, issuer, audience, nonce). This is <strong>everything</strong> it carried:</p>
<div class="box"><table>
<tr><th>sub (pairwise)</th><td><code>{{.Subject}}</code></td></tr>
<tr><th>acr<br><span class="muted">how strongly the person logged in</span></th><td><code id="acr">{{.ACR}}</code></td></tr>
{{range .Claims}}<tr><th>{{.Name}}</th><td>{{range .Values}}<code>{{.}}</code><br>{{end}}</td></tr>{{end}}
</table></div>{{end}}
<form method="post" action="{{.Base}}/login"><button type="submit">Log in with the school account (via skolbro, OIDC)</button></form>
{{if .Claims}}<form method="post" action="{{.Base}}/logout"><button type="submit">Log out everywhere (via skolbro)</button></form>{{end}}
<p><a href="/demo/">Back to the demo overview</a></p>
</main></body></html>`))

// ServeHTTP serves the vendor's pages: index, login, callback.
func (v *OIDCVendor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.URL.Path {
	case "", "/":
		var c *Claims
		if ck, err := r.Cookie("demo_vendor_" + v.Name); err == nil {
			v.mu.Lock()
			c = v.sessions[ck.Value]
			v.mu.Unlock()
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = oidcPage.Execute(w, map[string]any{"Name": v.Name, "Base": v.Base, "ClientID": v.ClientID, "Claims": c})
	case "/login":
		if r.Method != http.MethodPost {
			http.Error(w, "use the button", http.StatusMethodNotAllowed)
			return
		}
		to, err := v.LoginURL(r.Context())
		if err != nil {
			http.Error(w, "cannot reach the bridge", http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, to, http.StatusFound)
	case "/callback":
		c, err := v.Callback(r)
		if err != nil {
			http.Error(w, "demo OIDC vendor: "+err.Error(), http.StatusForbidden)
			return
		}
		sid := randHex()
		v.mu.Lock()
		v.sessions[sid] = c
		v.last = c
		v.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "demo_vendor_" + v.Name, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, v.Base+"/", http.StatusSeeOther)
	case "/backchannel":
		v.serveBackchannel(w, r)
	case "/frontchannel":
		v.serveFrontchannel(w, r)
	case "/logged-out":
		v.mu.Lock()
		v.returned = append(v.returned, r.URL.Query().Get("state"))
		if ck, err := r.Cookie("demo_vendor_" + v.Name); err == nil {
			delete(v.sessions, ck.Value)
		}
		v.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "demo_vendor_" + v.Name, Value: "", Path: "/", MaxAge: -1})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html><title>logged out</title><p>Logged out.</p>"))
	case "/logout":
		if r.Method != http.MethodPost {
			http.Error(w, "use the button", http.StatusMethodNotAllowed)
			return
		}
		var c *Claims
		if ck, err := r.Cookie("demo_vendor_" + v.Name); err == nil {
			v.mu.Lock()
			c = v.sessions[ck.Value]
			v.mu.Unlock()
		}
		if c == nil {
			http.Redirect(w, r, v.Base+"/", http.StatusSeeOther)
			return
		}
		to, err := v.EndSessionURL(r.Context(), c, "", randHex())
		if err != nil {
			http.Error(w, "cannot reach the bridge", http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, to, http.StatusFound)
	default:
		http.NotFound(w, r)
	}
}
