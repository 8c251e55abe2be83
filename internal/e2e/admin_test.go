package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// An admin logs in through the school IdP and must carry the admin
// entitlement; a pupil cannot.
func TestAdmin_LoginThroughUpstream(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	login := func(user string) (page, *browser) {
		b := newBrowser(t, e.srv.Client())
		p := b.get(e.srv.URL + "/admin/")
		if p.url.Path != "/demo/idp/sso" {
			t.Fatalf("/admin/ without a session should lead to the school IdP, got %s", p)
		}
		p = b.submit(p, url.Values{"user": {user}})
		p = b.submit(p, nil) // the auto-post to the bridge's ACS
		return p, b
	}
	p, b := login("fredrik.f")
	if p.status != http.StatusOK || p.url.Path != "/admin/" {
		t.Fatalf("the admin did not reach /admin/: %s: %.300s", p, p.body)
	}
	prev := b.get(e.srv.URL + "/admin/preview?vendor=learning-app")
	if prev.status != http.StatusOK || !strings.Contains(prev.body, "eduPersonPrincipalName") {
		t.Errorf("release preview: %s", prev)
	}
	if reg := b.get(e.srv.URL + "/admin/register.csv"); reg.status != http.StatusOK || !strings.Contains(reg.body, "learning-app") {
		t.Errorf("register export: %s %.200s", reg, reg.body)
	}
	if p, _ := login("anna.a"); p.status != http.StatusForbidden {
		t.Errorf("a pupil without the entitlement got %s", p)
	}
	checkLogs(t, e, e.logs.String())
}
