// Package e2e runs whole logins in-process: a vendor SP (crewjam/saml)
// sends an AuthnRequest to the bridge, the bridge sends the browser to the
// test school IdP, the IdP answers the bridge, and the bridge answers the
// vendor. Tests assert what the vendor received.
package e2e

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/beevik/etree"
	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/demovendor"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/testidp"
)

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

type env struct {
	t    *testing.T
	demo *demo.Demo
	srv  *httptest.Server
	logs *syncBuffer
}

// startEnv starts the demo set-up over TLS with the given number of bridge
// instances behind a round-robin balancer, all on one store.
func startEnv(t *testing.T, instances int, newStore func(t *testing.T) store.Store) *env {
	t.Helper()
	return startEnvWith(t, instances, newStore, nil)
}

// startEnvWith is startEnv with a hook that may change the demo's files
// before the bridge is built from them.
func startEnvWith(t *testing.T, instances int, newStore func(t *testing.T) store.Store, prepare func(d *demo.Demo)) *env {
	t.Helper()
	return startEnvOpts(t, instances, newStore, prepare, demo.Options{})
}

// startEnvOpts is startEnvWith with demo options (e.g. an OIDC upstream).
func startEnvOpts(t *testing.T, instances int, newStore func(t *testing.T) store.Store, prepare func(d *demo.Demo), opts demo.Options) *env {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "https://" + srv.Listener.Addr().String()
	d, err := demo.SetupWith(base, t.TempDir(), time.Now(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(d)
	}
	logs := &syncBuffer{}
	log := zerolog.New(logs)
	st := newStore(t)
	var hs []http.Handler
	for i := 0; i < instances; i++ {
		h, err := d.HandlerWithStore(log.With().Int("instance", i).Logger(), st)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	var n atomic.Uint64
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs[int(n.Add(1)-1)%len(hs)].ServeHTTP(w, r)
	})
	srv.StartTLS()
	t.Cleanup(srv.Close)
	d.OIDCVendor.HTTPClient = srv.Client()
	if g := d.Grannkommun; g != nil {
		g.OIDCVendor.HTTPClient = srv.Client()
	}
	return &env{t: t, demo: d, srv: srv, logs: logs}
}

func memoryStore(t *testing.T) store.Store { return store.NewMemory(nil) }

// vendor returns the demo SAML vendor with name, of either organiser.
func (e *env) vendor(name string) *demovendor.Vendor {
	vs := append([]*demovendor.Vendor(nil), e.demo.Vendors...)
	if g := e.demo.Grannkommun; g != nil {
		vs = append(vs, g.Vendors...)
	}
	if sv := e.demo.SharedVendor; sv != nil {
		vs = append(vs, sv)
	}
	for _, v := range vs {
		if v.Name == name {
			return v
		}
	}
	e.t.Fatalf("no vendor %q", name)
	return nil
}

// result is one completed login as the vendor saw it.
type result struct {
	received     *demovendor.Received
	samlResponse string // the decoded XML the vendor was sent
	relayState   string
}

// login runs one whole login for user at vendor and returns what the
// vendor received. It fails the test on any unexpected page.
func (e *env) login(b *browser, vendorName, user string) result {
	e.t.Helper()
	return e.loginWith(b, vendorName, user, "user")
}

// loginWith is login with the test IdP's button: "user" logs in with a
// password, "user_otp" with a password and a one-time code.
func (e *env) loginWith(b *browser, vendorName, user, button string) result {
	e.t.Helper()
	v := e.vendor(vendorName)
	p, res := e.untilVendor(b, vendorName, user, button)
	p = b.submit(p, nil) // to the vendor, which checks it with crewjam/saml
	if p.status != http.StatusOK || !strings.HasPrefix(p.url.String(), v.Base) {
		e.t.Fatalf("vendor refused the response: %s: %.300s", p, p.body)
	}
	res.received = v.Last()
	if res.received == nil {
		e.t.Fatal("vendor recorded no login")
	}
	return res
}

// untilVendor runs loginWith's steps up to the bridge's answer: it returns
// the bridge's page, its auto-post to the vendor's ACS not yet sent, and
// the response and RelayState the vendor would get.
func (e *env) untilVendor(b *browser, vendorName, user, button string) (page, result) {
	e.t.Helper()
	v := e.vendor(vendorName)
	start, err := v.LoginURL("rs-" + vendorName)
	if err != nil {
		e.t.Fatal(err)
	}
	p := b.get(start)
	if p.status != http.StatusOK || p.url.Path != "/demo/idp/sso" {
		e.t.Fatalf("expected the test IdP's picker, got %s: %.300s", p, p.body)
	}
	p = b.submit(p, url.Values{button: {user}})
	if p.status != http.StatusOK {
		e.t.Fatalf("test IdP answered %s", p)
	}
	p = b.submit(p, nil) // the IdP's auto-post to the bridge's ACS
	if p.status != http.StatusOK {
		e.t.Fatalf("bridge ACS answered %s: %.500s", p, p.body)
	}
	fs, err := p.forms()
	if err != nil || len(fs) != 1 {
		e.t.Fatalf("expected the bridge's auto-post form, got %s", p)
	}
	if want := v.Base + "/acs"; fs[0].action != want {
		e.t.Fatalf("bridge posts to %q, want the vendor's ACS %q", fs[0].action, want)
	}
	xmlBytes, err := base64.StdEncoding.DecodeString(fs[0].fields.Get("SAMLResponse"))
	if err != nil {
		e.t.Fatal(err)
	}
	return p, result{samlResponse: string(xmlBytes), relayState: fs[0].fields.Get("RelayState")}
}

// attrs flattens what the vendor received: friendly name -> values.
func attrs(r *demovendor.Received) map[string][]string {
	out := map[string][]string{}
	for _, a := range r.Attributes {
		out[a.FriendlyName] = append(out[a.FriendlyName], a.Values...)
	}
	return out
}

var eppnShape = regexp.MustCompile(`^[a-z2-7]{16,64}@demo-kommun\.test$`)

func TestCase35_EachVendorGetsExactlyItsPolicy(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	tests := []struct {
		vendor, user string
		want         []string // attribute names; values checked below
		wantValues   map[string][]string
	}{
		{vendor: "learning-app", user: "anna.a",
			want: []string{"eduPersonPrincipalName", "eduPersonScopedAffiliation", "givenName", "sisSchoolUnitCode"},
			wantValues: map[string][]string{
				"eduPersonScopedAffiliation": {"student@" + demo.OrganiserScope},
				"givenName":                  {givenName(e, "anna.a")},
				"sisSchoolUnitCode":          {testidp.SchoolA},
			}},
		{vendor: "national-tests", user: "anna.a",
			want:       []string{"eduPersonPrincipalName", "eduPersonScopedAffiliation"},
			wantValues: map[string][]string{"eduPersonScopedAffiliation": {"student@" + demo.OrganiserScope}}},
	}
	for _, tc := range tests {
		t.Run(tc.vendor, func(t *testing.T) {
			b := newBrowser(t, e.srv.Client())
			res := e.login(b, tc.vendor, tc.user)
			got := attrs(res.received)
			var names []string
			for n := range got {
				names = append(names, n)
			}
			if diff := cmp.Diff(tc.want, names, sortStrings); diff != "" {
				t.Errorf("released attribute names (-want +got):\n%s", diff)
			}
			for n, want := range tc.wantValues {
				if diff := cmp.Diff(want, got[n]); diff != "" {
					t.Errorf("%s values (-want +got):\n%s", n, diff)
				}
			}
			eppn := got["eduPersonPrincipalName"]
			if len(eppn) != 1 || !eppnShape.MatchString(eppn[0]) {
				t.Errorf("EPPN %q is not an opaque pseudonym in the organiser's scope", eppn)
			}
			if res.relayState != "rs-"+tc.vendor {
				t.Errorf("RelayState = %q, want it passed back unchanged", res.relayState)
			}
			assertNoPersonalData(t, e, tc.user, res.samlResponse)
		})
	}
}

// assertNoPersonalData checks a vendor's response for the user's personal
// number (in any format), upstream identifiers and an ip:port Address.
func assertNoPersonalData(t *testing.T, e *env, login, xml string) {
	t.Helper()
	u, _ := e.demo.IdP.User(login)
	pnr := u.Attributes[testidp.AttrPersonalNumber][0]
	for _, form := range []string{pnr, pnr[2:], pnr[2:8] + "-" + pnr[8:]} {
		if strings.Contains(xml, form) {
			t.Errorf("the vendor's response contains the personal number")
		}
	}
	if strings.Contains(xml, u.NameID) {
		t.Errorf("the vendor's response contains the upstream NameID")
	}
	if strings.Contains(xml, u.Attributes[testidp.AttrEPPN][0]) {
		t.Errorf("the vendor's response contains the upstream EPPN")
	}
	if strings.Contains(xml, "Address=") {
		t.Errorf("SubjectConfirmationData carries an Address")
	}
}

func givenName(e *env, login string) string {
	u, _ := e.demo.IdP.User(login)
	return u.Attributes[testidp.AttrGivenName][0]
}

var sortStrings = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

func TestLogin_EPPNStableAcrossLoginsAndVendors(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	first := attrs(e.login(newBrowser(t, e.srv.Client()), "learning-app", "anna.a").received)["eduPersonPrincipalName"]
	second := attrs(e.login(newBrowser(t, e.srv.Client()), "learning-app", "anna.a").received)["eduPersonPrincipalName"]
	other := attrs(e.login(newBrowser(t, e.srv.Client()), "national-tests", "anna.a").received)["eduPersonPrincipalName"]
	classmate := attrs(e.login(newBrowser(t, e.srv.Client()), "learning-app", "bertil.b").received)["eduPersonPrincipalName"]
	if len(first) != 1 || first[0] != second[0] {
		t.Errorf("EPPN changed between two logins: %q then %q", first, second)
	}
	if first[0] != other[0] {
		t.Errorf("EPPN differs between vendors (%q, %q); it should be the same for every vendor", first, other)
	}
	if first[0] == classmate[0] {
		t.Errorf("two pupils got the same EPPN")
	}
}

func TestLogin_ProtectedPupilIsMasked(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	login := protectedLogin(t, e)
	res := e.login(newBrowser(t, e.srv.Client()), "learning-app", login)
	got := attrs(res.received)
	var names []string
	for n := range got {
		names = append(names, n)
	}
	want := []string{"eduPersonPrincipalName", "eduPersonScopedAffiliation"}
	if diff := cmp.Diff(want, names, sortStrings); diff != "" {
		t.Errorf("a protected pupil's release (-want +got):\n%s", diff)
	}
	u, _ := e.demo.IdP.User(login)
	content := contentWords(t, res.samlResponse)
	for _, v := range []string{u.Attributes[testidp.AttrGivenName][0], u.Attributes[testidp.AttrSurname][0]} {
		if content[v] {
			t.Errorf("a protected pupil's name reached the vendor")
		}
	}
	for _, code := range u.Attributes[testidp.AttrSchoolUnitCode] {
		if content[code] {
			t.Errorf("a protected pupil's school unit code reached the vendor")
		}
	}
	assertNoPersonalData(t, e, login, res.samlResponse)
}

func protectedLogin(t *testing.T, e *env) string {
	for _, u := range e.demo.IdP.Users {
		if m := u.Attributes[testidp.AttrSecurityMarking]; len(m) == 1 && m[0] == testidp.MarkingProtected {
			return u.Login
		}
	}
	t.Fatal("the demo has no protected pupil")
	return ""
}

// redisStores returns a miniredis store always, and a real Redis store
// when SKOLBRO_TEST_REDIS names one (required when CI=true).
func redisStores(t *testing.T) map[string]func(t *testing.T) store.Store {
	out := map[string]func(t *testing.T) store.Store{
		"miniredis": func(t *testing.T) store.Store {
			mr := miniredis.RunT(t)
			s, err := store.NewRedisFromConfig([]string{mr.Addr()}, "", "", 0, "", nil, "skolbro-e2e:")
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	addr := os.Getenv("SKOLBRO_TEST_REDIS")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but SKOLBRO_TEST_REDIS is not set: the real-Redis test must run in CI")
		}
		t.Log("SKOLBRO_TEST_REDIS not set: skipping the real-Redis variant")
		return out
	}
	out["redis"] = func(t *testing.T) store.Store {
		s, err := store.NewRedisFromConfig([]string{addr}, "", "", 0, "", nil, "skolbro-e2e-"+randomSuffix(t)+":")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return out
}

func randomSuffix(t *testing.T) string {
	return strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-") + "-" + time.Now().Format("150405.000000")
}

// TestLogin_TwoInstancesOneRedis runs logins through two bridge instances
// behind a round-robin balancer: every step of a login may land on the
// other instance. The EPPN must be the same whichever instance answers.
func TestLogin_TwoInstancesOneRedis(t *testing.T) {
	for name, newStore := range redisStores(t) {
		t.Run(name, func(t *testing.T) {
			e := startEnv(t, 2, newStore)
			var eppns []string
			for i := 0; i < 3; i++ {
				res := e.login(newBrowser(t, e.srv.Client()), "learning-app", "anna.a")
				eppns = append(eppns, attrs(res.received)["eduPersonPrincipalName"]...)
			}
			if len(eppns) != 3 || eppns[0] != eppns[1] || eppns[1] != eppns[2] {
				t.Errorf("EPPN differs across instances: %q", eppns)
			}
		})
	}
}

// contentWords returns every text node and attribute value of a SAML
// message outside signatures (whose base64 could contain any short string
// by chance), as a set.
func contentWords(t *testing.T, xml string) map[string]bool {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(xml); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	var walk func(el *etree.Element)
	walk = func(el *etree.Element) {
		if el.Tag == "Signature" {
			return
		}
		for _, a := range el.Attr {
			out[a.Value] = true
		}
		if txt := strings.TrimSpace(el.Text()); txt != "" {
			out[txt] = true
			for _, w := range strings.Fields(txt) {
				out[w] = true
			}
		}
		for _, c := range el.ChildElements() {
			walk(c)
		}
	}
	walk(doc.Root())
	return out
}
