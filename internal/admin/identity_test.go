package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/identity"
)

// fakeIdentities records requests by number, as package generation would
// (there by MAC), and can be down.
type fakeIdentities struct {
	mu        sync.Mutex
	requested map[string]time.Time
	down      bool
}

func (f *fakeIdentities) deps(now func() time.Time) *NewIdentityDeps {
	status := func(pn identity.PersonalNumber) IdentityStatus {
		at, ok := f.requested[pn.RevealPersonalNumber()]
		if !ok {
			return IdentityStatus{}
		}
		return IdentityStatus{Requested: at, Pending: true}
	}
	return &NewIdentityDeps{
		Request: func(_ context.Context, pn identity.PersonalNumber) (IdentityStatus, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.down {
				return IdentityStatus{}, errors.New("store: backend error")
			}
			f.requested[pn.RevealPersonalNumber()] = now()
			return status(pn), nil
		},
		Status: func(_ context.Context, pn identity.PersonalNumber) (IdentityStatus, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.down {
				return IdentityStatus{}, errors.New("store: backend error")
			}
			return status(pn), nil
		},
	}
}

// TestCase36_NewIdentityPage: the admin asks for a new identity by
// personal number (CSRF-checked), sees the date, and never sees the
// number again; a bad number or an unreachable store is a clear page
// with nothing changed; without the feature the page does not exist.
func TestCase36_NewIdentityPage(t *testing.T) {
	t.Parallel()
	ids := &fakeIdentities{requested: map[string]time.Time{}}
	var e *env
	e = newEnv(t, func(d *Deps) { d.NewIdentity = ids.deps(func() time.Time { return e.clock.Now() }) })
	c, tok := e.login()
	if w := e.get("/admin/identity", c); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `href="/admin/identity"`) {
		t.Fatalf("GET: %d", w.Code)
	}
	if w := e.post("/admin/identity", c, form("action", "request", "pnr", protectedPNR)); w.Code != http.StatusForbidden || len(ids.requested) != 0 {
		t.Errorf("without the CSRF token: %d, %d requests", w.Code, len(ids.requested))
	}
	steps := []struct {
		name    string
		form    []string
		down    bool
		status  int
		message string
	}{
		{"request", []string{"action", "request", "pnr", protectedPNR}, false, http.StatusOK, "New identity requested: <strong>2026-02-20</strong>, utfärdas vid nästa inloggning / issued at the next login"},
		{"status, other form of the number", []string{"action", "status", "pnr", protectedPNR[2:8] + "-" + protectedPNR[8:]}, false, http.StatusOK, "No new identity has been issued at a login"},
		{"bad number", []string{"action", "request", "pnr", "19000101-0000"}, false, http.StatusBadRequest, "not a valid"},
		{"unknown action", []string{"action", "revert", "pnr", protectedPNR}, false, http.StatusBadRequest, "Unknown action"},
		{"store down", []string{"action", "request", "pnr", plainPNR}, true, http.StatusServiceUnavailable, "could not be reached"},
	}
	for _, s := range steps {
		ids.mu.Lock()
		ids.down = s.down
		ids.mu.Unlock()
		w := e.post("/admin/identity", c, form(append(s.form, "csrf", tok)...))
		body := w.Body.String()
		if w.Code != s.status || !strings.Contains(body, s.message) {
			t.Errorf("%s: status %d, want %d and %q\n%s", s.name, w.Code, s.status, s.message, body)
		}
		for _, f := range append(numberForms(protectedPNR), numberForms(plainPNR)...) {
			if strings.Contains(body, f) {
				t.Errorf("%s: page shows a number", s.name)
			}
		}
	}
	if len(ids.requested) != 1 {
		t.Errorf("%d requests recorded, want 1", len(ids.requested))
	}
	if !strings.Contains(e.logs.String(), `"page":"identity","action":"request","outcome":"ok"`) {
		t.Errorf("admin action not logged")
	}

	plain := newEnv(t)
	pc, _ := plain.login()
	if w := plain.get("/admin/identity", pc); w.Code != http.StatusNotFound || strings.Contains(plain.get("/admin/", pc).Body.String(), `href="/admin/identity"`) {
		t.Errorf("without NewIdentity the page answers %d or is linked", w.Code)
	}
}
