package admin

import (
	"net/http"
	"strings"
	"testing"
)

// TestCase44_AdminUnderOrganiserPrefix: an organiser of a hub has its
// admin interface at /o/<id>/admin/: every route, link, form and redirect
// stays under the prefix, and the session cookie is the organiser's own
// (its own name, Path under the prefix), so it never reaches another
// organiser's admin.
func TestCase44_AdminUnderOrganiserPrefix(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(d *Deps) { d.Prefix = "/o/grann" })
	if w := e.get("/admin/", nil); w.Code != http.StatusNotFound {
		t.Errorf("the root /admin/ answers %d for a prefixed organiser", w.Code)
	}
	c, _ := e.login()
	if c.Name != CookieName+"_grann" || c.Path != "/o/grann/admin/" {
		t.Errorf("session cookie %q with Path %q", c.Name, c.Path)
	}
	w := e.get("/o/grann/admin/vendors", c)
	if w.Code != http.StatusOK {
		t.Fatalf("vendors page: %d", w.Code)
	}
	body := w.Body.String()
	for _, bad := range []string{`href="/admin`, `action="/admin`} {
		if strings.Contains(body, bad) {
			t.Errorf("the page links outside the prefix: %s", bad)
		}
	}
	if !strings.Contains(body, `href="/o/grann/admin/preview`) {
		t.Errorf("the page has no link under the prefix")
	}
}
