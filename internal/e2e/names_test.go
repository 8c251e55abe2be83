package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/mapping"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/testidp"
	"github.com/skolbro/skolbro/internal/upstreamnames"
)

// TestCase36_WrongSecurityMarkingNamedAndShown: with a security_marking
// name the school IdP never sends, every person is masked (fail closed,
// case 36), and now the admin can see why (issue 17): the log line of the
// failed source names the attribute it expected and says it was not sent;
// the bridge records which attribute names the IdP did send and how each
// was read (names only), and the admin's release preview shows them with
// a warning that the marking never arrived.
func TestCase36_WrongSecurityMarkingNamedAndShown(t *testing.T) {
	const wrong = "https://schemas.exempel.se/claims/securitymarking"
	st := store.NewMemory(nil)
	e := startEnvWith(t, 1, func(*testing.T) store.Store { return st }, func(d *demo.Demo) {
		p := filepath.Join(d.Dir, "skolbro.yaml")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(b), "security_marking: "+testidp.AttrSecurityMarking, "security_marking: "+wrong, 1)
		if s == string(b) {
			t.Fatal("the demo configuration has no security_marking to change")
		}
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	})
	got := attrs(e.login(newBrowser(t, e.srv.Client()), "learning-app", "anna.a").received)
	if got["givenName"] != nil || got["sisSchoolUnitCode"] != nil {
		t.Errorf("an unprotected pupil whose status cannot be read was not masked: %v", got)
	}

	// The log names the attribute expected, and that it was not sent.
	found := false
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var l struct {
			Message, Source, Reason, Attribute string
			Sent                               *bool  `json:"attribute_sent"`
			LoginID                            string `json:"login_id"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Message == "protection source failed: treated as protected" {
			found = true
			if l.Source != "upstream_attribute" || l.Reason != "missing" || l.Attribute != wrong || l.Sent == nil || *l.Sent || l.LoginID == "" {
				t.Errorf("protection failure logged as %s", line)
			}
		}
	}
	if !found {
		t.Fatal("no protection failure logged")
	}

	// The record: what the IdP sent, by name, and how each was read.
	rec, err := upstreamnames.Recent(context.Background(), st, "demo-kommun", "school-idp", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	uses := map[string]string{}
	for _, a := range rec.Attributes {
		uses[a.Attribute] = a.Use
	}
	for name, want := range map[string]string{
		testidp.AttrSecurityMarking: mapping.UseNone, // sent, but not under the configured name
		testidp.AttrEPPN:            mapping.UseStableID,
		testidp.AttrGivenName:       "givenName",
		testidp.AttrPersonalNumber:  mapping.UsePersonalNumber,
	} {
		if uses[name] != want {
			t.Errorf("record: %s read as %q, want %q", name, uses[name], want)
		}
	}
	if v := upstreamnames.NewView(rec, &mapping.Config{StableID: testidp.AttrEPPN, SecurityMarking: wrong}); v.SecurityMarkingSeen || len(v.NotSeen) != 1 || v.NotSeen[0] != wrong {
		t.Errorf("view: seen %v, not seen %v; want the configured marking never seen", v.SecurityMarkingSeen, v.NotSeen)
	}
	raw, _ := st.Get(context.Background(), upstreamnames.Key("demo-kommun", "school-idp"))
	u, _ := e.demo.IdP.User("anna.a")
	for _, values := range u.Attributes {
		for _, v := range values {
			if len(v) > 3 && strings.Contains(string(raw), v) {
				t.Errorf("the record holds an attribute value")
			}
		}
	}

	// The admin sees it on the release preview.
	b := newBrowser(t, e.srv.Client())
	p := b.get(e.srv.URL + "/admin/")
	if p = b.submit(b.submit(p, url.Values{"user": {"fredrik.f"}}), nil); p.url.Path != "/admin/" {
		t.Fatalf("the admin login ended at %s", p)
	}
	prev := b.get(e.srv.URL + "/admin/preview")
	for _, want := range []string{`id="upstream-school-idp"`, "<code>" + wrong + "</code> never arrived: everyone is masked", "<code>" + testidp.AttrSecurityMarking + "</code>"} {
		if !strings.Contains(prev.body, want) {
			t.Errorf("the release preview lacks %q", want)
		}
	}
	checkLogs(t, e, e.logs.String())
}
