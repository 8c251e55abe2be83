package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skolbro/skolbro/internal/demo"
)

// quizVendor is a second OIDC vendor on the demo's host (the bridge's own,
// where oidc-app's redirect URI is too), with nothing serving its redirect
// URI: the test reads the code from the address the browser lands on.
type quizVendor struct {
	e        *env
	redirect string
}

const quizClient = "quiz"

// addQuizVendor writes the quiz vendor's policy, with no sector: the
// default.
func addQuizVendor(d *demo.Demo, secret string) {
	policy := `id: quiz
display_name: Quiz (second OIDC vendor on the same host)
oidc:
  client_id: ` + quizClient + `
  redirect_uris: ["` + d.Base + `/demo/vendor/quiz/callback"]
  client_auth: client_secret_basic
  client_secret_file: ../keys/quiz.secret
purpose: "Quizzes"
legal_basis: "Public interest task (GDPR art. 6.1 e)"
agreement:
  reference: "DEMO-PUB-QUIZ"
  ends: 2099-12-31
attributes:
  - name: eduPersonPrincipalName
`
	if err := os.WriteFile(filepath.Join(d.Dir, "keys", "quiz.secret"), []byte(secret), 0o600); err != nil {
		panic(err)
	}
	if err := os.WriteFile(filepath.Join(d.Dir, "attribute-release", "quiz.yaml"), []byte(policy), 0o600); err != nil {
		panic(err)
	}
}

func randomText() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// code logs user in at the quiz vendor through the bridge (authorization
// request, the school IdP, the bridge's redirect) and returns the code.
func (q *quizVendor) code(b *browser, user, verifier string) string {
	q.e.t.Helper()
	sum := sha256.Sum256([]byte(verifier))
	v := url.Values{
		"client_id": {quizClient}, "redirect_uri": {q.redirect}, "response_type": {"code"},
		"scope": {"openid"}, "state": {randomText()}, "nonce": {randomText()},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	p := b.get(q.e.srv.URL + "/oidc/authorize?" + v.Encode())
	if p.status != http.StatusOK {
		q.e.t.Fatalf("expected the school IdP's picker, got %s", p)
	}
	p = b.submit(p, url.Values{"user": {user}})
	if fs, _ := p.forms(); len(fs) == 1 && strings.HasSuffix(fs[0].action, "/saml/sp/acs") {
		p = b.submit(p, nil)
	}
	if p.url.Path != "/demo/vendor/quiz/callback" {
		q.e.t.Fatalf("the bridge did not send the browser to the quiz vendor: %s", p)
	}
	code := p.url.Query().Get("code")
	if code == "" {
		q.e.t.Fatalf("no code in the redirect (error %q)", p.url.Query().Get("error"))
	}
	return code
}

// token redeems code as client, returning the status and the decoded body.
func (q *quizVendor) token(code, verifier, client, secret string) (int, map[string]any) {
	q.e.t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {q.redirect}, "code_verifier": {verifier}}
	req, err := http.NewRequest(http.MethodPost, q.e.srv.URL+"/oidc/token", strings.NewReader(form.Encode()))
	must(q.e.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(client), url.QueryEscape(secret))
	return q.e.do(req)
}

func (e *env) do(req *http.Request) (int, map[string]any) {
	e.t.Helper()
	resp, err := e.srv.Client().Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func (e *env) userinfo(token string) (int, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/oidc/userinfo", nil)
	must(e.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	return e.do(req)
}

// TestCase33_TwoOIDCVendorsOnOneHost runs the bridge with two OIDC vendors
// whose redirect URIs are on one host, neither naming a sector. The same
// pupil gets a different sub at each (case 33). On the same set-up: the
// other vendor presenting the quiz vendor's code is refused and leaves the
// code working for its own client (case 29); a reused code revokes its
// access token (case 28); and the logs of all of it hold no code, token,
// secret or personal data (case 37).
func TestCase33_TwoOIDCVendorsOnOneHost(t *testing.T) {
	secret := randomText()
	e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) { addQuizVendor(d, secret) })
	q := &quizVendor{e: e, redirect: e.demo.Base + "/demo/vendor/quiz/callback"}
	if !strings.HasPrefix(e.demo.OIDCVendor.RedirectURL(), e.demo.Base+"/") {
		t.Fatal("the demo's OIDC vendor is not on the quiz vendor's host: the test shows nothing")
	}
	const user = "anna.a"

	appSub := e.loginAny(newBrowser(t, e.srv.Client()), "oidc-app", user).subject
	verifier := randomText()
	code := q.code(newBrowser(t, e.srv.Client()), user, verifier)
	var accessToken string

	t.Run("case 29: the other vendor cannot redeem or burn the code", func(t *testing.T) {
		status, body := q.token(code, verifier, e.demo.OIDCVendor.ClientID, e.demo.OIDCVendor.ClientSecret)
		if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("oidc-app presenting quiz's code: %d %v, want 400 invalid_grant", status, body["error"])
		}
	})

	t.Run("case 33: different subs for one pupil", func(t *testing.T) {
		status, body := q.token(code, verifier, quizClient, secret)
		if status != http.StatusOK {
			t.Fatalf("quiz redeeming its own code: %d %v", status, body["error"])
		}
		accessToken, _ = body["access_token"].(string)
		idToken, _ := body["id_token"].(string)
		status, info := e.userinfo(accessToken)
		if status != http.StatusOK {
			t.Fatalf("userinfo: %d", status)
		}
		quizSub, _ := info["sub"].(string)
		if parts := strings.Split(idToken, "."); len(parts) == 3 {
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			var claims map[string]any
			_ = json.Unmarshal(payload, &claims)
			if claims["sub"] != quizSub {
				t.Errorf("ID token sub %v, userinfo sub %q", claims["sub"], quizSub)
			}
		} else {
			t.Error("no ID token")
		}
		if quizSub == "" || appSub == "" || quizSub == appSub {
			t.Errorf("subs at two vendors on one host: quiz %q, oidc-app %q; want two different ones", quizSub, appSub)
		}
	})

	t.Run("case 28: a reused code revokes its token", func(t *testing.T) {
		if accessToken == "" {
			t.Skip("no token from the previous step")
		}
		if status, body := q.token(code, verifier, quizClient, secret); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("reuse: %d %v, want 400 invalid_grant", status, body["error"])
		}
		if status, _ := e.userinfo(accessToken); status != http.StatusUnauthorized {
			t.Errorf("userinfo after the reuse: %d, want 401", status)
		}
	})

	logs := e.logs.String()
	for _, reason := range []string{`"reason":"code_other_client"`, `"reason":"code_reused_token_revoked"`} {
		if !strings.Contains(logs, reason) {
			t.Errorf("logs lack %s", reason)
		}
	}
	for _, s := range []string{code, accessToken, secret, e.demo.OIDCVendor.ClientSecret, verifier} {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("logs hold a code, token, secret or verifier (%.6s...)", s)
		}
	}
	checkLogs(t, e, logs)
}
