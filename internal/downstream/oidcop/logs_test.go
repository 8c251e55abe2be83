package oidcop

import (
	"bytes"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/rs/zerolog"
)

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogsCarryNoSecrets runs successes and failures with a request
// logger and checks that no code, token, assertion, secret or claim value
// reaches the log (SECURITY.md case 37), while refusals are logged.
func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var buf lockedBuffer
	logger := zerolog.New(&buf)
	withLog := func(r *http.Request) *http.Request { return r.WithContext(logger.WithContext(r.Context())) }

	var secrets []string
	post := func(form url.Values, user, pass string) tokenResponse {
		r := httptestPost(testIssuer+PathToken, encodeForm(form), "application/x-www-form-urlencoded")
		if user != "" {
			r.SetBasicAuth(user, pass)
		}
		w := f.do(withLog(r))
		tr, _ := decodeTokenResponse(t, w)
		return tr
	}

	code := f.code(basicClient, basicRedir)
	tr := post(basicTokenForm(code), basicClient, basicSecret)
	if tr.AccessToken == "" {
		t.Fatal("no token issued")
	}
	secrets = append(secrets, code, tr.AccessToken, tr.IDToken, basicSecret)
	post(basicTokenForm(code), basicClient, basicSecret) // reuse
	foreign := f.code(jwtClientID, jwtRedirect)
	secrets = append(secrets, foreign)
	post(basicTokenForm(foreign), basicClient, basicSecret)                         // another client's code
	post(basicTokenForm(f.code(basicClient, basicRedir)), basicClient, "wrong-one") // bad secret
	wrongVerifier := basicTokenForm(f.code(basicClient, basicRedir))
	wrongVerifier.Set("code_verifier", strings.Repeat("v", 50))
	post(wrongVerifier, basicClient, basicSecret)
	assertion := f.assertion(testKey("client-ec-other"), "a-ec", jose.ES256, nil)
	secrets = append(secrets, assertion)
	post(withAssertion(f.jwtTokenForm(f.code(jwtClientID, jwtRedirect)), assertion), "", "")
	for _, tok := range []string{tr.AccessToken, "made-up-token"} {
		r := httptestGet(testIssuer + PathUserinfo)
		r.Header.Set("Authorization", "Bearer "+tok)
		f.do(withLog(r))
	}
	secrets = append(secrets, "Testa", "abc123", "12345678", "sub-vendor-b", "st-123", "n-456", testVerifier)

	logs := buf.String()
	if !strings.Contains(logs, "oidc token request refused") {
		t.Errorf("refusals were not logged:\n%s", logs)
	}
	for _, reason := range []string{"code_reused_token_revoked", "code_other_client"} {
		if !strings.Contains(logs, `"reason":"`+reason+`"`) {
			t.Errorf("the refusal %s was not logged", reason)
		}
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("log contains a secret or personal value %.12q...", s)
		}
	}
	if regexp.MustCompile(`\d{6,8}[-+]?\d{4}`).MatchString(logs) {
		t.Error("log contains something like a personal number")
	}
}

func encodeForm(v url.Values) string { return v.Encode() }
