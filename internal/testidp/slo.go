package testidp

import (
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/skolbro/skolbro/internal/samlslo"
)

// SP is what the IdP knows of the one SP it logs out (the bridge): its
// entityID, its signing certificate and its SingleLogoutService.
type SP struct {
	EntityID string
	Cert     *x509.Certificate
	SLOURL   string
}

// sloState is the IdP's logout bookkeeping: the sessions it gave, and
// what happened to them. It is guarded by its mutex.
type sloState struct {
	mu sync.Mutex
	// sessions by SessionIndex: the user's login.
	sessions map[string]string
	// last SessionIndex per login.
	last map[string]string
	// loggedOut are the logins whose session a LogoutRequest ended.
	loggedOut []string
	// answers are the statuses of the SP's LogoutResponses to the IdP's
	// own requests, by request ID.
	answers map[string]string
}

func (idp *IdP) slo() *sloState {
	idp.sloOnce.Do(func() {
		idp.sloState = &sloState{sessions: map[string]string{}, last: map[string]string{}, answers: map[string]string{}}
	})
	return idp.sloState
}

// noteSession remembers a session the IdP gave u.
func (idp *IdP) noteSession(login, sessionIndex string) {
	st := idp.slo()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sessions[sessionIndex] = login
	st.last[login] = sessionIndex
}

// Session returns the SessionIndex of login's last session, if it is
// still open.
func (idp *IdP) Session(login string) (string, bool) {
	st := idp.slo()
	st.mu.Lock()
	defer st.mu.Unlock()
	si, ok := st.last[login]
	if !ok || st.sessions[si] == "" {
		return "", false
	}
	return si, true
}

// LoggedOut returns the logins whose session an SP's LogoutRequest ended.
func (idp *IdP) LoggedOut() []string {
	st := idp.slo()
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]string(nil), st.loggedOut...)
}

// Answer returns the status (and second-level status) the SP answered the
// IdP's LogoutRequest id with.
func (idp *IdP) Answer(id string) (string, bool) {
	st := idp.slo()
	st.mu.Lock()
	defer st.mu.Unlock()
	a, ok := st.answers[id]
	return a, ok
}

// LogoutOption changes a LogoutRequest the IdP sends (for attacks).
type LogoutOption func(*samlslo.LogoutRequest, *bool)

// Unsigned sends the LogoutRequest without a signature.
func Unsigned() LogoutOption { return func(_ *samlslo.LogoutRequest, sign *bool) { *sign = false } }

// WithNameID names another NameID value.
func WithNameID(v string) LogoutOption {
	return func(r *samlslo.LogoutRequest, _ *bool) { r.NameID.Value = v }
}

// WithSessionIndex names another SessionIndex.
func WithSessionIndex(si string) LogoutOption {
	return func(r *samlslo.LogoutRequest, _ *bool) { r.SessionIndexes = []string{si} }
}

// LogoutRequestURL makes an IdP-initiated LogoutRequest for login's last
// session, to the SP's SingleLogoutService (HTTP-Redirect, signed unless
// an option says otherwise), and returns the URL and the request's ID.
func (idp *IdP) LogoutRequestURL(login string, opts ...LogoutOption) (string, string, error) {
	u, ok := idp.User(login)
	if !ok {
		return "", "", errors.New("testidp: unknown user")
	}
	si, _ := idp.Session(login)
	id, err := idp.newID()
	if err != nil {
		return "", "", err
	}
	now := idp.now()
	req := &samlslo.LogoutRequest{ID: id, Issuer: idp.EntityID, Destination: idp.SP.SLOURL, IssueInstant: now,
		NotOnOrAfter: now.Add(defaultLifetime),
		NameID:       samlslo.NameID{Value: u.NameID, Format: NameIDPersistent, NameQualifier: idp.EntityID, SPNameQualifier: idp.SP.EntityID}}
	if si != "" {
		req.SessionIndexes = []string{si}
	}
	sign := true
	for _, o := range opts {
		o(req, &sign)
	}
	out, err := samlslo.Encode(samlslo.BindingRedirect, idp.SP.SLOURL, samlslo.ParamRequest, req.Element(), "", idp.Signer)
	if err != nil {
		return "", "", err
	}
	if !sign {
		// SigAlg and Signature come last: cut them off.
		if i := strings.Index(out.URL, "&SigAlg="); i >= 0 {
			return out.URL[:i], id, nil
		}
	}
	return out.URL, id, nil
}

// ServeSLO is the IdP's SingleLogoutService (HTTP-Redirect): the SP's
// LogoutRequest ends the session it names and is answered; the SP's
// LogoutResponse to the IdP's own request is recorded. Messages must be
// signed by the SP's certificate.
func (idp *IdP) ServeSLO(w http.ResponseWriter, r *http.Request) {
	in, err := samlslo.Read(r)
	if err != nil || in.Issuer != idp.SP.EntityID || idp.SP.Cert == nil {
		http.Error(w, "bad logout message", http.StatusBadRequest)
		return
	}
	el, err := in.Verify([]*x509.Certificate{idp.SP.Cert})
	if err != nil {
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	checks := samlslo.Checks{Destination: idp.SLOURL, Issuer: idp.SP.EntityID, Now: idp.now(), Skew: 2 * time.Minute, MaxAge: 10 * time.Minute}
	st := idp.slo()
	if in.Param == samlslo.ParamResponse {
		resp, err := samlslo.ParseLogoutResponse(el)
		if err != nil || checks.CheckResponse(resp) != nil {
			http.Error(w, "bad logout response", http.StatusBadRequest)
			return
		}
		st.mu.Lock()
		a := resp.Status
		if resp.SubStatus != "" {
			a += " " + resp.SubStatus
		}
		st.answers[resp.InResponseTo] = a
		st.mu.Unlock()
		WritePage(w, "<!DOCTYPE html><title>Test-IdP</title><p>Utloggad / Logged out</p>")
		return
	}
	req, err := samlslo.ParseLogoutRequest(el)
	if err != nil || checks.CheckRequest(req) != nil {
		http.Error(w, "bad logout request", http.StatusBadRequest)
		return
	}
	status := samlslo.StatusSuccess
	sub := ""
	st.mu.Lock()
	ended := false
	for _, si := range req.SessionIndexes {
		login := st.sessions[si]
		if u, ok := idp.User(login); ok && u.NameID == req.NameID.Value {
			delete(st.sessions, si)
			st.loggedOut = append(st.loggedOut, login)
			ended = true
		}
	}
	st.mu.Unlock()
	if !ended {
		status, sub = samlslo.StatusRequester, samlslo.StatusUnknownPrincipal
	}
	id, err := idp.newID()
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	resp := &samlslo.LogoutResponse{ID: id, Issuer: idp.EntityID, Destination: idp.SP.SLOURL, InResponseTo: req.ID,
		IssueInstant: idp.now(), Status: status, SubStatus: sub}
	out, err := samlslo.Encode(samlslo.BindingRedirect, idp.SP.SLOURL, samlslo.ParamResponse, resp.Element(), in.RelayState, idp.Signer)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, out.URL, http.StatusFound)
}
