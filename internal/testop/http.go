package testop

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skolbro/skolbro/internal/testidp"
)

// maxFormBytes bounds the bodies of the picker and token requests.
const maxFormBytes = 64 << 10

// pkcePattern is a code_verifier (RFC 7636 4.1) and, at exactly 43
// characters, an S256 code_challenge.
var pkcePattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// Handler returns the OP's endpoints: /.well-known/openid-configuration,
// /jwks, /authorize (GET shows the picker, POST answers) and /token, below
// the issuer's path. It serves whether the issuer's path prefix is
// stripped by the mux or not.
func (op *OP) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if op.issuerPath != "" {
			if rest, ok := strings.CutPrefix(p, op.issuerPath); ok && (rest == "" || rest[0] == '/') {
				p = rest
			}
		}
		switch p {
		case "/.well-known/openid-configuration":
			op.serveJSON(w, r, op.discovery())
		case "/jwks":
			op.serveJSON(w, r, op.jwks())
		case "/authorize":
			op.serveAuthorize(w, r)
		case "/token":
			op.serveToken(w, r)
		case "/logout":
			op.serveEndSession(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

func (op *OP) serveJSON(w http.ResponseWriter, r *http.Request, v any) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// authzRequest holds the parameters of an authorization request.
type authzRequest struct {
	ResponseType, ClientID, RedirectURI, Scope, State string
	Nonce, CodeChallenge, CodeChallengeMethod         string
	Prompt, MaxAge                                    string
}

var authzParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state",
	"nonce", "code_challenge", "code_challenge_method", "prompt", "max_age"}

func readAuthz(v url.Values) (authzRequest, bool) {
	for _, name := range authzParams {
		if len(v[name]) > 1 { // RFC 6749 3.1: no parameter twice
			return authzRequest{}, false
		}
	}
	return authzRequest{
		ResponseType:        v.Get("response_type"),
		ClientID:            v.Get("client_id"),
		RedirectURI:         v.Get("redirect_uri"),
		Scope:               v.Get("scope"),
		State:               v.Get("state"),
		Nonce:               v.Get("nonce"),
		CodeChallenge:       v.Get("code_challenge"),
		CodeChallengeMethod: v.Get("code_challenge_method"),
		Prompt:              v.Get("prompt"),
		MaxAge:              v.Get("max_age"),
	}, true
}

// serveAuthorize is the authorization endpoint. An unknown client or a
// redirect URI that is not the registered one, byte for byte, gets an
// error page; every other error goes back to the client with iss.
func (op *OP) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	var v url.Values
	switch r.Method {
	case http.MethodGet:
		v = r.URL.Query()
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		v = r.PostForm
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	req, ok := readAuthz(v)
	if !ok {
		http.Error(w, "repeated parameter", http.StatusBadRequest)
		return
	}
	if req.ClientID != op.clientID {
		http.Error(w, "unknown client", http.StatusBadRequest)
		return
	}
	if req.RedirectURI != op.redirectURI {
		http.Error(w, "redirect_uri is not registered", http.StatusBadRequest)
		return
	}
	switch {
	case req.ResponseType != "code":
		op.redirectError(w, r, req, "unsupported_response_type")
		return
	case !slices.Contains(strings.Fields(req.Scope), "openid"):
		op.redirectError(w, r, req, "invalid_scope")
		return
	case req.CodeChallengeMethod != "S256" || len(req.CodeChallenge) != 43 || !pkcePattern.MatchString(req.CodeChallenge):
		op.redirectError(w, r, req, "invalid_request")
		return
	}
	if r.Method == http.MethodGet {
		_, ignoreFreshness := op.flags()
		if s, ok := op.session(r); ok && (ignoreFreshness || op.freshEnough(req, s)) {
			// Single sign-on: the earlier login, as it was.
			op.issue(w, r, req, s)
			return
		}
		if req.Prompt == "none" {
			op.redirectError(w, r, req, "login_required")
			return
		}
		op.servePicker(w, req)
		return
	}
	if v.Get("cancel") != "" {
		op.redirectError(w, r, req, "access_denied")
		return
	}
	login, acr, amr := v.Get("user"), ACR, amrPassword
	if l := v.Get("user_otp"); l != "" {
		login, acr, amr = l, ACROTP, amrOTP
	}
	u, ok := op.user(login)
	if !ok {
		http.Error(w, "unknown user", http.StatusBadRequest)
		return
	}
	s := &session{user: u, acr: acr, amr: amr, authTime: op.Now()}
	if sso, _ := op.flags(); sso {
		if err := op.remember(w, s); err != nil {
			op.redirectError(w, r, req, "server_error")
			return
		}
	}
	op.issue(w, r, req, s)
}

// freshEnough reports whether s meets the request's prompt and max_age.
func (op *OP) freshEnough(req authzRequest, s *session) bool {
	if slices.Contains(strings.Fields(req.Prompt), "login") {
		return false
	}
	if req.MaxAge != "" {
		n, err := strconv.ParseInt(req.MaxAge, 10, 64)
		if err != nil || op.Now().Sub(s.authTime) > time.Duration(n)*time.Second {
			return false
		}
	}
	return true
}

// sessionCookie is the test OP's single sign-on cookie.
const sessionCookie = "testop_session"

func (op *OP) session(r *http.Request) (*session, bool) {
	if sso, _ := op.flags(); !sso {
		return nil, false
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, false
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	s, ok := op.sessions[c.Value]
	return s, ok
}

func (op *OP) remember(w http.ResponseWriter, s *session) error {
	id, err := op.random()
	if err != nil {
		return err
	}
	op.mu.Lock()
	if op.sessions == nil {
		op.sessions = map[string]*session{}
	}
	op.sessions[id] = s
	op.mu.Unlock()
	path := op.issuerPath
	if path == "" {
		path = "/"
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: path, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return nil
}

// issue answers req with a code for the login s.
func (op *OP) issue(w http.ResponseWriter, r *http.Request, req authzRequest, s *session) {
	now := op.Now()
	code, err := op.newCode(&grant{
		user:        s.user,
		clientID:    req.ClientID,
		redirectURI: req.RedirectURI,
		challenge:   req.CodeChallenge,
		nonce:       req.Nonce,
		authTime:    s.authTime,
		acr:         s.acr,
		amr:         s.amr,
		expires:     now.Add(CodeLifetime),
	}, now)
	if err != nil {
		op.redirectError(w, r, req, "temporarily_unavailable")
		return
	}
	op.redirect(w, r, req, url.Values{"code": {code}})
}

func (op *OP) redirectError(w http.ResponseWriter, r *http.Request, req authzRequest, code string) {
	op.redirect(w, r, req, url.Values{"error": {code}})
}

// redirect sends the authorization response to the registered redirect
// URI, with state and iss (RFC 9207).
func (op *OP) redirect(w http.ResponseWriter, r *http.Request, req authzRequest, params url.Values) {
	u, err := url.Parse(op.redirectURI)
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusInternalServerError)
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if req.State != "" {
		q.Set("state", req.State)
	}
	q.Set("iss", op.issuer)
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

var picker = template.Must(template.New("picker").Parse(`<!DOCTYPE html>
<html lang="sv">
<head>
<meta charset="utf-8">
<title>Test-OP: välj användare</title>
</head>
<body>
<h1>Test-OP (OIDC)</h1>
<p>Välj vem du vill logga in som. / Choose who to log in as.</p>
<form method="post">
{{- range $k, $v := .Params}}
<input type="hidden" name="{{$k}}" value="{{$v}}">
{{- end}}
<ul>
{{- range .Users}}
<li>{{.Label}}:
<button type="submit" name="user" value="{{.Login}}">lösenord / password</button>
<button type="submit" name="user_otp" value="{{.Login}}">lösenord och engångskod / password and one-time code</button></li>
{{- end}}
</ul>
<p><button type="submit" name="cancel" value="1">Avbryt / Cancel</button></p>
</form>
</body>
</html>
`))

func (op *OP) servePicker(w http.ResponseWriter, req authzRequest) {
	params := map[string]string{
		"response_type":         req.ResponseType,
		"client_id":             req.ClientID,
		"redirect_uri":          req.RedirectURI,
		"scope":                 req.Scope,
		"code_challenge":        req.CodeChallenge,
		"code_challenge_method": req.CodeChallengeMethod,
	}
	if req.State != "" {
		params["state"] = req.State
	}
	if req.Nonce != "" {
		params["nonce"] = req.Nonce
	}
	var sb strings.Builder
	if err := picker.Execute(&sb, struct {
		Params map[string]string
		Users  any
	}{params, op.users}); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	testidp.WritePage(w, sb.String())
}

// tokenError answers the token endpoint with an OAuth error (RFC 6749 5.2).
func tokenError(w http.ResponseWriter, status int, code string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="testop"`)
	}
	writeJSON(w, status, map[string]string{"error": code})
}

// serveToken is the token endpoint: authorization_code only, the client
// authenticated by client_secret_basic or client_secret_post (not both),
// the code redeemed once, PKCE S256 checked.
func (op *OP) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	f := r.PostForm
	for _, name := range []string{"grant_type", "code", "redirect_uri", "code_verifier", "client_id", "client_secret"} {
		if len(f[name]) > 1 {
			tokenError(w, http.StatusBadRequest, "invalid_request")
			return
		}
	}
	clientID, ok := op.authenticate(r)
	if !ok {
		tokenError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if f.Get("grant_type") != "authorization_code" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	g, ok := op.takeCode(f.Get("code"))
	now := op.Now()
	verifier := f.Get("code_verifier")
	switch {
	case !ok, !now.Before(g.expires), g.clientID != clientID, g.redirectURI != f.Get("redirect_uri"):
		tokenError(w, http.StatusBadRequest, "invalid_grant")
		return
	case !pkcePattern.MatchString(verifier) || !challengeMatches(verifier, g.challenge):
		tokenError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	idToken, withID, err := op.idToken(g, now)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error")
		return
	}
	access, err := op.random()
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error")
		return
	}
	resp := map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   int(IDTokenLifetime / time.Second),
	}
	if withID {
		resp["id_token"] = idToken
	}
	writeJSON(w, http.StatusOK, resp)
}

// authenticate returns the client id when the request authenticates the
// client with one method.
func (op *OP) authenticate(r *http.Request) (string, bool) {
	f := r.PostForm
	user, pass, basic := r.BasicAuth()
	_, postSecret := f["client_secret"]
	if basic && postSecret {
		return "", false
	}
	var id, secret string
	if basic {
		// RFC 6749 2.3.1: both are form-urlencoded inside the header.
		var err1, err2 error
		id, err1 = url.QueryUnescape(user)
		secret, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return "", false
		}
		if fid := f.Get("client_id"); fid != "" && fid != id {
			return "", false
		}
	} else {
		id, secret = f.Get("client_id"), f.Get("client_secret")
	}
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(op.clientID)) == 1
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(op.clientSecret)) == 1
	if !idOK || !secretOK || op.clientSecret == "" {
		return "", false
	}
	return id, true
}

// challengeMatches checks an S256 challenge (RFC 7636 4.6).
func challengeMatches(verifier, challenge string) bool {
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}
