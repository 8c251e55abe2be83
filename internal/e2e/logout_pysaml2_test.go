package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/skolbro/skolbro/internal/samlslo"
)

// Single Logout with a vendor the project did not write: the pysaml2 SP
// (testdata/pysaml2/sp.py) sends a signed HTTP-Redirect LogoutRequest and
// verifies the bridge's LogoutResponse; it receives the bridge's own
// LogoutRequest when another vendor logs out, and answers it. pysaml2 has
// no web server here: the simulated browser stops where it would reach
// pysaml2's SingleLogoutService, and the test hands that URL to sp.py.

// pysaml2Logout is what sp.py logout, logout_response and slo print.
type pysaml2Logout struct {
	URL            string   `json:"url"`
	RequestID      string   `json:"request_id"`
	Status         string   `json:"status"`
	SubStatus      string   `json:"sub_status"`
	InResponseTo   string   `json:"in_response_to"`
	NameID         string   `json:"name_id"`
	SessionIndexes []string `json:"session_indexes"`
	Answered       string   `json:"answered"`
}

// pysaml2Session logs user in at the pysaml2 vendor in browser b and
// returns the NameID and SessionIndex pysaml2 accepted.
func pysaml2Session(t *testing.T, e *env, sp *pysaml2SP, b *browser, user string) (nameID, sessionIndex string) {
	t.Helper()
	var login pysaml2Login
	if msg, ok := sp.run(t, &login, "login", sp.dir, sp.idpMetadata, "rs-slo"); !ok {
		t.Fatalf("sp.py login failed: %s", msg)
	}
	p := b.submit(b.submit(b.get(login.URL), formValue("user", user)), nil)
	f := onlyForm(t, p)
	var got struct {
		NameID       string `json:"name_id"`
		SessionIndex string `json:"session_index"`
	}
	file := sp.dir + "/response-slo.b64"
	writeSPFile(t, file, []byte(f.fields.Get("SAMLResponse")))
	if msg, ok := sp.run(t, &got, "acs", sp.dir, sp.idpMetadata, login.RequestID, file); !ok {
		t.Fatalf("pysaml2 refused the login: %s", msg)
	}
	if got.NameID == "" || got.SessionIndex == "" {
		t.Fatalf("pysaml2 got NameID %q and SessionIndex %q", got.NameID, got.SessionIndex)
	}
	return got.NameID, got.SessionIndex
}

// TestCase50_PySAML2VendorLogout: pysaml2 logs out through the bridge (the
// school IdP's session ends too), and verifies the bridge's answer.
func TestCase50_PySAML2VendorLogout(t *testing.T) {
	t.Parallel()
	requirePySAML2(t)
	e, sp := startPySAML2Env(t)
	b := newBrowser(t, e.srv.Client())
	nid, si := pysaml2Session(t, e, sp, b, "anna.a")
	la := e.loginAny(b, "learning-app", "anna.a").subject

	var req pysaml2Logout
	if msg, ok := sp.run(t, &req, "logout", sp.dir, sp.idpMetadata, nid, si, "rs-out"); !ok {
		t.Fatalf("sp.py logout failed: %s", msg)
	}
	if !strings.HasPrefix(req.URL, e.demo.Base+"/saml/idp/slo?") {
		t.Fatalf("pysaml2 sends its LogoutRequest to %.80q, not the bridge's SLO", req.URL)
	}
	p := e.followLogout(b, b.get(req.URL))
	if p.url.Path != "/pysaml2/slo" {
		t.Fatalf("the logout did not end at pysaml2's SLO: %s: %.300s", p, p.body)
	}
	var resp pysaml2Logout
	if msg, ok := sp.run(t, &resp, "logout_response", sp.dir, sp.idpMetadata, p.url.String()); !ok {
		t.Fatalf("pysaml2 refused the bridge's LogoutResponse: %s", msg)
	}
	if resp.Status != samlslo.StatusSuccess || resp.SubStatus != "" || resp.InResponseTo != req.RequestID {
		t.Errorf("pysaml2 read status %q/%q in response to %q, want Success to %q", resp.Status, resp.SubStatus, resp.InResponseTo, req.RequestID)
	}
	if e.vendor("learning-app").LoggedIn(la) {
		t.Errorf("the other vendor still holds the session")
	}
	if _, open := e.demo.IdP.Session("anna.a"); open {
		t.Errorf("the school IdP's session is still open")
	}
	checkLogs(t, e, e.logs.String())
}

// TestCase50_PySAML2ReceivesTheBridgesLogoutRequest: another vendor's
// logout reaches pysaml2 as a signed HTTP-Redirect LogoutRequest naming the
// NameID and SessionIndex it was given, and its answer counts.
func TestCase50_PySAML2ReceivesTheBridgesLogoutRequest(t *testing.T) {
	t.Parallel()
	requirePySAML2(t)
	e, sp := startPySAML2Env(t)
	b := newBrowser(t, e.srv.Client())
	nid, si := pysaml2Session(t, e, sp, b, "anna.a")
	e.loginAny(b, "learning-app", "anna.a")

	f := b.post(e.vendor("learning-app").Base+"/logout", nil)
	p := b.submit(f, nil) // the vendor's LogoutRequest to the bridge
	if !strings.HasSuffix(p.url.Path, "/logout/run") {
		t.Fatalf("no logout page: %s: %.300s", p, p.body)
	}
	frames := iframeSrc.FindAllStringSubmatch(p.body, -1)
	if len(frames) != 1 {
		t.Fatalf("%d frames, want one for pysaml2", len(frames))
	}
	src, _ := p.url.Parse(strings.ReplaceAll(frames[0][1], "&amp;", "&"))
	fp := b.get(src.String()) // ends where pysaml2's SLO would take it
	if fp.url.Path != "/pysaml2/slo" || fp.url.Query().Get("SAMLRequest") == "" {
		t.Fatalf("the frame did not carry a LogoutRequest to pysaml2: %s", fp)
	}
	var got pysaml2Logout
	if msg, ok := sp.run(t, &got, "slo", sp.dir, sp.idpMetadata, fp.url.String(), nid); !ok {
		t.Fatalf("pysaml2 refused the bridge's LogoutRequest: %s", msg)
	}
	if got.NameID != nid || len(got.SessionIndexes) != 1 || got.SessionIndexes[0] != si || got.Answered != samlslo.StatusSuccess {
		t.Errorf("pysaml2 read NameID %q, SessionIndexes %q and answered %q; want its own NameID and SessionIndex, Success",
			got.NameID, got.SessionIndexes, got.Answered)
	}
	if ap := b.get(got.URL); ap.status != http.StatusOK {
		t.Fatalf("the bridge did not take pysaml2's answer: %s: %.300s", ap, ap.body)
	}
	p = e.followLogout(b, b.submit(p, nil))
	if got := e.vendor("learning-app").LastLogoutAnswer(); got != samlslo.StatusSuccess {
		t.Errorf("the vendor that asked was answered %q, want Success (pysaml2 confirmed)", got)
	}
	checkLogs(t, e, e.logs.String())
}
