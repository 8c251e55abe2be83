package e2e

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/metrics"
	"github.com/skolbro/skolbro/internal/testidp"
)

// A pupil whose directory entry was built from the personal number: the
// login name of one mail address and the display name carry it. The number
// is Skatteverket's test number.
const (
	pnrMail       = "191212121212@elev.skola.example.se"
	plainMail     = "tolvan.tolvansson@elev.skola.example.se"
	pnrName       = "Tolvan Tolvansson 19121212-1212"
	foreignEPPN   = "student1@evil.example"
	oidMail       = testidp.AttrMail
	oidDisplay    = testidp.AttrDisplayName
	reasonPNRText = `"reason":"value holds a personal number; dropped"`
)

// pnrEnv starts the demo with two extra test identities, tolvan.t (above)
// and mallory.m (a validly signed EPPN of another domain), and with mail
// and displayName in the learning-app and oidc-app policies.
func pnrEnv(t *testing.T) (*env, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
		d.Metrics = m
		at := "@" + demo.UpstreamScope
		d.IdP.Users = append(d.IdP.Users,
			testidp.User{
				Login: "tolvan.t", Label: "Elev, personnummer i e-post", NameID: "8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a61",
				Attributes: map[string][]string{
					testidp.AttrEPPN:              {"tolvan.t" + at},
					testidp.AttrScopedAffiliation: {"student" + at},
					testidp.AttrPersonalNumber:    {"191212121212"},
					testidp.AttrGivenName:         {"Tolvan"},
					testidp.AttrDisplayName:       {pnrName},
					testidp.AttrMail:              {pnrMail, plainMail},
					testidp.AttrSchoolUnitCode:    {testidp.SchoolA},
					testidp.AttrSecurityMarking:   {testidp.MarkingNone},
				},
			},
			testidp.User{
				Login: "mallory.m", Label: "Elev, annan domän", NameID: "8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a62",
				Attributes: map[string][]string{
					testidp.AttrEPPN:              {foreignEPPN},
					testidp.AttrScopedAffiliation: {"student" + at},
					testidp.AttrPersonalNumber:    {"201203154511"},
					testidp.AttrGivenName:         {"Mallory"},
					testidp.AttrSecurityMarking:   {testidp.MarkingNone},
				},
			})
		for _, name := range []string{"learning-app", "oidc-app"} {
			p := filepath.Join(d.Dir, "attribute-release", name+".yaml")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(string(b), "  - name: sisSchoolUnitCode\n") {
				t.Fatalf("%s no longer ends with its attribute list", name)
			}
			b = append(b, "  - name: mail\n  - name: displayName\n"...)
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	})
	return e, reg
}

// TestCase36_PersonalNumberInsideValueNotReleased: a vendor whose policy
// releases mail and displayName receives neither value that holds a
// personal number, in either protocol, while the rest of the release is
// unchanged; the bridge logs the attribute names (never the values),
// counts them, and shows them on the admin's release preview. The logs of
// these logins pass case 37's scan.
func TestCase36_PersonalNumberInsideValueNotReleased(t *testing.T) {
	e, reg := pnrEnv(t)

	t.Run("saml", func(t *testing.T) {
		res := e.login(newBrowser(t, e.srv.Client()), "learning-app", "tolvan.t")
		got := attrs(res.received)
		if diff := cmp.Diff([]string{plainMail}, got["mail"]); diff != "" {
			t.Errorf("mail (-want +got):\n%s", diff)
		}
		if v, ok := got["displayName"]; ok {
			t.Errorf("displayName released with %d value(s)", len(v))
		}
		if diff := cmp.Diff([]string{"Tolvan"}, got["givenName"]); diff != "" {
			t.Errorf("givenName (-want +got): the rest of the release changed\n%s", diff)
		}
		assertNoPersonalData(t, e, "tolvan.t", res.samlResponse)
		for name, values := range got {
			for _, v := range values {
				if identity.ContainsPersonalNumber(v) {
					t.Errorf("attribute %s holds a personal number", name)
				}
			}
		}
		// And a person without a number in any value still gets hers.
		anna := attrs(e.login(newBrowser(t, e.srv.Client()), "learning-app", "anna.a").received)
		if len(anna["mail"]) != 1 || len(anna["displayName"]) != 1 {
			t.Errorf("anna.a's mail and displayName were not released: %v", anna)
		}
	})

	t.Run("oidc", func(t *testing.T) {
		g := e.loginAny(newBrowser(t, e.srv.Client()), "oidc-app", "tolvan.t")
		if diff := cmp.Diff([]string{plainMail}, g.values["email"]); diff != "" {
			t.Errorf("email (-want +got):\n%s", diff)
		}
		if v, ok := g.values["name"]; ok {
			t.Errorf("name released with %d value(s)", len(v))
		}
		for claim, values := range g.values {
			for _, v := range values {
				if identity.ContainsPersonalNumber(v) {
					t.Errorf("claim %s holds a personal number", claim)
				}
			}
		}
	})

	logs := e.logs.String()
	for _, a := range []string{oidMail, oidDisplay} {
		if !strings.Contains(logs, `"attribute":"`+a+`",`+reasonPNRText) {
			t.Errorf("no log line names %s with the fixed reason", a)
		}
	}
	if got := counter(t, reg, metrics.NamePersonalNumberInValue, "attribute", oidMail); got != 2 {
		t.Errorf("%s{attribute=mail} = %v, want 2 (one per login)", metrics.NamePersonalNumberInValue, got)
	}

	t.Run("admin release preview", func(t *testing.T) {
		b := newBrowser(t, e.srv.Client())
		p := b.get(e.srv.URL + "/admin/")
		p = b.submit(p, url.Values{"user": {"fredrik.f"}})
		p = b.submit(p, nil)
		if p.status != http.StatusOK || p.url.Path != "/admin/" {
			t.Fatalf("admin login: %s", p)
		}
		prev := b.get(e.srv.URL + "/admin/preview")
		i := strings.Index(prev.body, `id="pnr-in-values"`)
		if prev.status != http.StatusOK || i < 0 {
			t.Fatalf("the preview does not list attributes dropped for a personal number: %s", prev)
		}
		box := prev.body[i:]
		box = box[:strings.Index(box, "</div>")]
		for _, want := range []string{oidMail, oidDisplay, "<code>mail</code>", "<code>displayName</code>"} {
			if !strings.Contains(box, want) {
				t.Errorf("the preview's list lacks %s", want)
			}
		}
		if identity.ContainsPersonalNumber(box) || strings.Contains(prev.body, pnrMail) || strings.Contains(prev.body, pnrName) {
			t.Error("the preview shows a dropped value")
		}
	})

	checkLogs(t, e, e.logs.String())
}

// TestCase44_ForeignScopedStableIDRefused: a validly signed assertion
// whose EPPN stable id is of a domain outside the upstream's scopes logs
// nobody in, and nothing reaches the vendor.
func TestCase44_ForeignScopedStableIDRefused(t *testing.T) {
	e, _ := pnrEnv(t)
	v := e.vendor("learning-app")
	before := v.Last()
	b := newBrowser(t, e.srv.Client())
	p := e.toBridgeACS(b, "learning-app", "mallory.m")
	f := onlyForm(t, p)
	assertErrorPage(t, b.post(f.action, f.fields), http.StatusBadRequest)
	if v.Last() != before {
		t.Error("the vendor received a login")
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "stable identifier's scope is not accepted") {
		t.Error("the refusal's cause was not logged")
	}
	if strings.Contains(logs, "evil.example") || strings.Contains(logs, "student1") {
		t.Error("the log holds the refused stable id")
	}
	checkLogs(t, e, logs)
}

// counter reads one labelled counter from reg.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
