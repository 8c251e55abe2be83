package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestOIDCLogoutURIs: post-logout redirect URIs and the front- and
// back-channel logout URIs are read as written, and a URI a browser or the
// bridge must never be sent to is an error naming its key.
func TestOIDCLogoutURIs(t *testing.T) {
	t.Parallel()
	good := `  post_logout_redirect_uris: ["https://quiz.example/bye", "http://127.0.0.1:8080/bye"]
  frontchannel_logout_uri: "https://quiz.example/fc"
  backchannel_logout_uri: "https://quiz.example/bc"
`
	dir := writePolicies(t, map[string]string{"quiz.yaml": oidcPolicy("quiz", []string{quizURI}, good)})
	policies, problems := LoadDir(dir, At(testNow))
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	o := byID(t, policies)["quiz"].OIDC
	if diff := cmp.Diff([]string{"https://quiz.example/bye", "http://127.0.0.1:8080/bye"}, o.PostLogoutRedirectURIs); diff != "" {
		t.Errorf("post-logout URIs (-want +got):\n%s", diff)
	}
	if o.FrontchannelLogoutURI != "https://quiz.example/fc" || o.BackchannelLogoutURI != "https://quiz.example/bc" {
		t.Errorf("logout URIs %q, %q", o.FrontchannelLogoutURI, o.BackchannelLogoutURI)
	}
	for _, tc := range []struct{ extra, key string }{
		{`  post_logout_redirect_uris: ["javascript:alert(1)"]` + "\n", "oidc.post_logout_redirect_uris[0]"},
		{`  post_logout_redirect_uris: ["https://quiz.example/ok", "http://quiz.example/bye"]` + "\n", "oidc.post_logout_redirect_uris[1]"},
		{`  post_logout_redirect_uris: ["https://quiz.example/bye#x"]` + "\n", "oidc.post_logout_redirect_uris[0]"},
		{`  frontchannel_logout_uri: "/fc"` + "\n", "oidc.frontchannel_logout_uri"},
		{`  backchannel_logout_uri: "http://quiz.example/bc"` + "\n", "oidc.backchannel_logout_uri"},
	} {
		dir := writePolicies(t, map[string]string{"quiz.yaml": oidcPolicy("quiz", []string{quizURI}, tc.extra)})
		_, problems := LoadDir(dir, At(testNow))
		found := false
		for _, p := range problems {
			if !p.Warning && strings.Contains(p.String(), tc.key) {
				found = true
			}
		}
		if !found {
			t.Errorf("%q: no error naming %s: %v", strings.TrimSpace(tc.extra), tc.key, problems)
		}
	}
}
