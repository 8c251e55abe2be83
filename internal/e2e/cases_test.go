package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// TestCase40_UpstreamIdPKeyRollover: the school IdP lists two signing
// certificates during its rollover; logins signed with either work.
func TestCase40_UpstreamIdPKeyRollover(t *testing.T) {
	next, err := keys.Generate("school IdP next key (TEST ONLY)", keys.RSA2048, time.Now())
	must(t, err)
	e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
		p := filepath.Join(d.Dir, "upstream", "school-idp.xml")
		b, err := os.ReadFile(p)
		must(t, err)
		kd := `<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>` +
			certB64Full(next) + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`
		i := strings.Index(string(b), "<md:KeyDescriptor")
		if i < 0 {
			t.Fatal("the test IdP's metadata has no KeyDescriptor")
		}
		must(t, os.WriteFile(p, []byte(string(b[:i])+kd+string(b[i:])), 0o600))
	})
	e.login(newBrowser(t, e.srv.Client()), "learning-app", "anna.a") // signed with the old key
	old := e.demo.IdP.Signer
	s, err := xmlsig.NewSigner(next)
	must(t, err)
	e.demo.IdP.Signer = s
	defer func() { e.demo.IdP.Signer = old }()
	e.login(newBrowser(t, e.srv.Client()), "learning-app", "anna.a") // signed with the new key
}

// TestCase43_CookiesAndCrossSitePost: the cookie that binds a login to its
// browser is Secure, HttpOnly and SameSite=None over https (the school
// IdP's answer is a cross-site POST, which SameSite=Lax cookies do not
// follow), named with the __Host- prefix (Path=/, no Domain: no other host
// can plant one), carries no identity, and the ACS refuses a POST without
// it. The admin session's fixation test is in internal/admin; the
// binding's own tests are in binding_test.go.
func TestCase43_CookiesAndCrossSitePost(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	start, err := e.vendor("learning-app").LoginURL("rs")
	must(t, err)
	c := &http.Client{Transport: e.srv.Client().Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(start)
	must(t, err)
	resp.Body.Close()
	var found bool
	for _, ck := range resp.Cookies() {
		if ck.Name != bindingCookie {
			continue
		}
		found = true
		if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteNoneMode {
			t.Errorf("binding cookie: Secure=%v HttpOnly=%v SameSite=%v; want Secure, HttpOnly, SameSite=None", ck.Secure, ck.HttpOnly, ck.SameSite)
		}
		if ck.Path != "/" || ck.Domain != "" {
			t.Errorf("binding cookie: Path=%q Domain=%q; a __Host- cookie needs Path=/ and no Domain", ck.Path, ck.Domain)
		}
		if len(ck.Value) < 43 {
			t.Errorf("binding cookie value is too short to be unguessable")
		}
	}
	if !found {
		t.Fatal("no binding cookie was set when the login started")
	}
	// A cross-site POST that arrives without the cookie is refused.
	b := newBrowser(t, e.srv.Client())
	p := e.toBridgeACS(b, "learning-app", "anna.a")
	f := onlyForm(t, p)
	stranger := newBrowser(t, e.srv.Client())
	assertErrorPage(t, stranger.post(f.action, f.fields), http.StatusBadRequest)
}
