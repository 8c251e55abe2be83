package e2e

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/store"
)

// TestKeyRollover walks the bridge's signing key rollover as README
// documents it: announce the next key in metadata, wait until vendors have
// refreshed, switch, retire the old key. A vendor logs in at every step,
// with the metadata it would have at that point (crewjam/saml checks the
// signature against it).
func TestKeyRollover(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	base := "https://" + srv.Listener.Addr().String()
	d, err := demo.Setup(base, t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var current atomic.Value
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		current.Load().(http.Handler).ServeHTTP(w, r)
	})
	st := store.NewMemory(nil)
	logs := &syncBuffer{}
	cfgPath := filepath.Join(d.Dir, "skolbro.yaml")
	original, _ := os.ReadFile(cfgPath)
	next, err := keys.Generate("skolbro next signing key (TEST ONLY)", keys.RSA2048, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := writePairFiles(filepath.Join(d.Dir, "keys"), "next", next); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, demo: d, srv: srv, logs: logs}
	vendor := e.vendor("learning-app")
	build := func(cfg string) []byte {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		h, err := d.HandlerWithStore(zerolog.New(logs), st)
		if err != nil {
			t.Fatal(err)
		}
		current.Store(h)
		resp, err := srv.Client().Get(base + "/saml/idp/metadata")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := new(strings.Builder)
		if _, err := copyBody(b, resp); err != nil {
			t.Fatal(err)
		}
		return []byte(b.String())
	}
	login := func(step string) {
		t.Helper()
		res := e.login(newBrowser(t, srv.Client()), "learning-app", "anna.a")
		if len(attrs(res.received)["eduPersonPrincipalName"]) != 1 {
			t.Errorf("%s: login failed", step)
		}
	}
	announce := strings.Replace(string(original), "  pseudonym:", "    next_signing_cert: keys/next.crt\n  pseudonym:", 1)
	switched := strings.NewReplacer("cert: keys/signing.crt", "cert: keys/next.crt", "key: keys/signing.key", "key: keys/next.key").Replace(string(original))

	// Step 0: key A only.
	current.Store(http.NotFoundHandler())
	srv.StartTLS()
	defer srv.Close()
	d.OIDCVendor.HTTPClient = srv.Client()
	mdA := build(string(original))
	must(t, vendor.SetIdPMetadata(mdA))
	login("0: key A")

	// Step 1: announce B. A vendor that has not refreshed yet still works.
	mdAB := build(announce)
	must(t, vendor.SetIdPMetadata(mdA))
	login("1: announced, vendor not refreshed")
	if !strings.Contains(string(mdAB), certB64(next)) {
		t.Fatal("the next key is not announced in the metadata")
	}
	must(t, vendor.SetIdPMetadata(mdAB)) // vendors refresh while the bridge waits

	// Step 2: switch to B. The vendor has A+B from the announcement.
	build(switched)
	must(t, vendor.SetIdPMetadata(mdAB))
	login("2: switched, vendor holds the announced key")

	// Step 3: retire A: the metadata lists B only, logins go on.
	mdB := build(switched)
	if strings.Contains(string(mdB), certB64FromFile(t, filepath.Join(d.Dir, "keys", "signing.crt"))) {
		t.Error("the retired key is still published")
	}
	must(t, vendor.SetIdPMetadata(mdB))
	login("3: old key retired")

	// Without the announcement a vendor would have failed at the switch:
	// this is why the procedure waits.
	must(t, vendor.SetIdPMetadata(mdA))
	b := newBrowser(t, srv.Client())
	start, _ := vendor.LoginURL("rs")
	p := b.submit(b.submit(b.get(start), formValue("user", "anna.a")), nil)
	if p2 := b.submit(p, nil); p2.status == http.StatusOK && strings.HasPrefix(p2.url.String(), vendor.Base) {
		t.Error("a vendor with only the old key accepted a response signed by the new one: the test proves nothing")
	}
}
