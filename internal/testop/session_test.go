package testop_test

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// With Sessions, a browser that logged in is answered at once with the
// earlier auth_time and method; prompt=login and an exceeded max_age show
// the picker again, and prompt=none without a session is login_required.
func TestSessions(t *testing.T) {
	f := newFixture(t, false)
	f.op.SetSessions(true)
	jar, _ := cookiejar.New(nil)
	f.client.Jar = jar
	get := func(extra url.Values) *http.Response {
		t.Helper()
		p := authzParams()
		for k, v := range extra {
			p[k] = v
		}
		resp, err := f.client.Get(f.op.Issuer() + "/authorize?" + p.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	errorOf := func(resp *http.Response) string {
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return loc.Query().Get("error")
	}
	claimsOf := func(resp *http.Response) map[string]any {
		t.Helper()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		status, body, _ := f.token(t, tokenForm(loc.Query().Get("code")), true)
		if status != http.StatusOK {
			t.Fatalf("token: %d", status)
		}
		jws, err := jose.ParseSignedCompact(body["id_token"].(string), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
			t.Fatal(err)
		}
		return c
	}

	if resp := get(url.Values{"prompt": {"none"}}); resp.StatusCode != http.StatusFound || errorOf(resp) != "login_required" {
		t.Fatalf("prompt=none without a session: %d %q", resp.StatusCode, errorOf(resp))
	}
	if resp := get(nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("no session: want the picker, got %d", resp.StatusCode)
	}
	p := authzParams()
	p.Set("user_otp", "david.d")
	first := f.authorize(t, p)
	if c := claimsOf(first); c["acr"] != "https://refeds.org/profile/mfa" {
		t.Errorf("password and one-time code: acr %v", c["acr"])
	}

	f.offset.Store(int64(10 * time.Minute))
	resp := get(url.Values{"prompt": {"none"}})
	if resp.StatusCode != http.StatusFound || errorOf(resp) != "" {
		t.Fatalf("prompt=none with a session: %d %q", resp.StatusCode, errorOf(resp))
	}
	c := claimsOf(resp)
	if c["auth_time"] != float64(t0.Unix()) || c["acr"] != "https://refeds.org/profile/mfa" {
		t.Errorf("single sign-on: auth_time %v acr %v; want the first login's", c["auth_time"], c["acr"])
	}
	for _, fresh := range []url.Values{{"prompt": {"login"}}, {"max_age": {"60"}}} {
		if resp := get(fresh); resp.StatusCode != http.StatusOK {
			t.Errorf("%v: want the picker, got %d", fresh, resp.StatusCode)
		}
	}
	if resp := get(url.Values{"max_age": {"3600"}}); resp.StatusCode != http.StatusFound {
		t.Errorf("max_age not exceeded: want single sign-on, got %d", resp.StatusCode)
	}
	f.op.SetIgnoreFreshness(true)
	if resp := get(url.Values{"prompt": {"login"}}); resp.StatusCode != http.StatusFound {
		t.Errorf("IgnoreFreshness: want the old session, got %d", resp.StatusCode)
	}
}
