package demovendor

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Logout at the demo OIDC vendor: RP-initiated logout at the bridge's
// end_session_endpoint, and the bridge's front- and back-channel logout
// (the logout token is verified with go-oidc against the bridge's JWKS).

// backchannelEvent is the event a logout token must carry.
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// LoggedOutRedirect is the vendor's registered post-logout redirect URI.
func (v *OIDCVendor) LoggedOutRedirect() string { return v.Base + "/logged-out" }

// LoggedIn reports whether the vendor holds a session with sid.
func (v *OIDCVendor) LoggedIn(sid string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range v.sessions {
		if c.SID == sid {
			return true
		}
	}
	return false
}

// Logouts returns how many sessions the bridge's front- or back-channel
// logout ended, and the states the bridge sent the browser back with.
func (v *OIDCVendor) Logouts() (ended int, states []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.ended, append([]string(nil), v.returned...)
}

// SetBackchannelDelay makes the back-channel endpoint wait d before it
// answers (a slow vendor, for tests).
func (v *OIDCVendor) SetBackchannelDelay(d time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.delay = d
}

// EndSessionURL is the bridge's end_session_endpoint for logging out the
// session c, with the ID token as hint, the registered post-logout
// redirect URI (unless postLogout says another) and state.
func (v *OIDCVendor) EndSessionURL(ctx context.Context, c *Claims, postLogout, state string) (string, error) {
	p, err := v.discover(ctx)
	if err != nil {
		return "", err
	}
	var md struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&md); err != nil || md.EndSession == "" {
		return "", errors.New("the bridge has no end_session_endpoint")
	}
	if postLogout == "" {
		postLogout = v.LoggedOutRedirect()
	}
	q := url.Values{"id_token_hint": {c.rawIDToken}, "post_logout_redirect_uri": {postLogout}, "state": {state}}
	return md.EndSession + "?" + q.Encode(), nil
}

func (v *OIDCVendor) endSessions(sid string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for k, c := range v.sessions {
		if c.SID == sid {
			delete(v.sessions, k)
			v.ended++
		}
	}
}

// serveBackchannel takes a logout token: signed by the bridge, for this
// client, with the back-channel event and a sid, and no nonce.
func (v *OIDCVendor) serveBackchannel(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	v.mu.Lock()
	delay := v.delay
	v.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	p, err := v.discover(r.Context())
	if err != nil {
		http.Error(w, "bridge unreachable", http.StatusBadGateway)
		return
	}
	tok, err := p.Verifier(&oidc.Config{ClientID: v.ClientID}).Verify(v.ctx(r.Context()), r.PostFormValue("logout_token"))
	if err != nil {
		http.Error(w, "bad logout token", http.StatusBadRequest)
		return
	}
	var claims struct {
		SID    string                    `json:"sid"`
		Nonce  *string                   `json:"nonce"`
		Events map[string]map[string]any `json:"events"`
	}
	if err := tok.Claims(&claims); err != nil || claims.Nonce != nil || claims.SID == "" {
		http.Error(w, "bad logout token", http.StatusBadRequest)
		return
	}
	if _, ok := claims.Events[backchannelEvent]; !ok {
		http.Error(w, "bad logout token", http.StatusBadRequest)
		return
	}
	v.endSessions(claims.SID)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// serveFrontchannel ends the session sid names, when iss is the bridge.
func (v *OIDCVendor) serveFrontchannel(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("iss") != v.Issuer || q.Get("sid") == "" {
		http.Error(w, "bad front-channel logout", http.StatusBadRequest)
		return
	}
	v.endSessions(q.Get("sid"))
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
	// The bridge loads this page in a frame of its logout page.
	ancestors := "'none'"
	if u, err := url.Parse(v.Issuer); err == nil && u.Host != "" {
		ancestors = u.Scheme + "://" + u.Host
	}
	h.Del("X-Frame-Options")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors "+ancestors)
	_, _ = w.Write([]byte("<!doctype html><title>logged out</title>"))
}
