package testop

import (
	"net/http"
	"net/url"
)

// SetPostLogoutRedirectURI registers the one URI the end_session_endpoint
// sends the browser back to.
func (op *OP) SetPostLogoutRedirectURI(uri string) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.postLogout = uri
}

// Logouts returns how many end-session requests the OP has honoured.
func (op *OP) Logouts() int {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.logouts
}

// serveEndSession is the end_session_endpoint (RP-Initiated Logout 1.0):
// the registered client with the registered post-logout URI is sent back
// with its state; anything else gets an error page.
func (op *OP) serveEndSession(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	op.mu.Lock()
	registered := op.postLogout
	ok := registered != "" && q.Get("client_id") == op.clientID && q.Get("post_logout_redirect_uri") == registered
	if ok {
		op.logouts++
	}
	op.mu.Unlock()
	if !ok {
		http.Error(w, "unknown client or post_logout_redirect_uri", http.StatusBadRequest)
		return
	}
	to := registered
	if st := q.Get("state"); st != "" {
		to += "?" + url.Values{"state": {st}}.Encode()
	}
	http.Redirect(w, r, to, http.StatusFound)
}
