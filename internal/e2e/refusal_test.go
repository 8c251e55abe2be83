package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/server"
	"github.com/skolbro/skolbro/internal/testidp"
)

// pickerFor starts a login at vendor (SAML or OIDC) and returns the
// school IdP's picker page.
func (e *env) pickerFor(b *browser, vendor string) page {
	e.t.Helper()
	var start string
	var err error
	if ov := e.demo.OIDCVendor; vendor == ov.Name {
		start, err = ov.LoginURL(context.Background())
	} else {
		start, err = e.vendor(vendor).LoginURL("rs")
	}
	if err != nil {
		e.t.Fatal(err)
	}
	p := b.get(start)
	if p.status != http.StatusOK {
		e.t.Fatalf("expected the school IdP's picker, got %s", p)
	}
	return p
}

// idpAnswer makes the test IdP's answer for user to the AuthnRequest on
// the picker page p, with opts; it returns the bridge's ACS and the
// base64 SAMLResponse.
func (e *env) idpAnswer(p page, user string, opts ...testidp.Option) (string, string) {
	e.t.Helper()
	req, err := testidp.ParseAuthnRequest(p.url.Query().Get("SAMLRequest"))
	if err != nil {
		e.t.Fatal(err)
	}
	req.ACSURL = e.srv.URL + "/saml/sp/acs"
	u, _ := e.demo.IdP.User(user)
	resp, err := e.demo.IdP.Respond(req, u, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	return req.ACSURL, resp
}

// refusalsWith returns the release log's refusal events with reason.
func refusalsWith(t *testing.T, e *env, reason string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ev := range events(t, e) {
		if ev["outcome"] == "refused" && ev["reason"] == reason {
			out = append(out, ev)
		}
	}
	return out
}

// assertRefusalEvent checks that exactly one refusal event with reason
// was written, for vendor over protocol through upstream, naming nobody
// and nothing released.
func assertRefusalEvent(t *testing.T, e *env, reason, vendor, protocol, upstream string) {
	t.Helper()
	var mine []map[string]any
	for _, ev := range refusalsWith(t, e, reason) {
		if ev["vendor"] == vendor {
			mine = append(mine, ev)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("%d refusal events %s for %s, want 1", len(mine), reason, vendor)
	}
	ev := mine[0]
	if ev["protocol"] != protocol || ev["upstream"] != upstream || ev["subject_key"] != "" || ev["masked"] != false || ev["txn_id"] == "" {
		t.Errorf("refusal event %v: want protocol %s, upstream %s, no subject key", ev, protocol, upstream)
	}
	if as, _ := ev["attributes"].([]any); len(as) != 0 {
		t.Errorf("a refusal event lists released attributes %v", as)
	}
}

// tamper changes a signed SAMLResponse after signing (the given name).
func tamper(t *testing.T, e *env, user, resp string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := e.demo.IdP.User(user)
	given := u.Attributes[testidp.AttrGivenName][0]
	changed := strings.Replace(string(raw), ">"+given+"<", ">Mallory<", 1)
	if changed == string(raw) {
		t.Fatal("test did not tamper")
	}
	return base64.StdEncoding.EncodeToString([]byte(changed))
}

// TestCase09_UpstreamRefusalsRecorded: an answer refused at the upstream
// (changed after signing, another audience, expired, the IdP's own error,
// a replay) writes one refusal event against the vendor the login was
// for, SAML and OIDC vendors alike, with the reason and no personal data;
// the person sees the usual error page.
func TestCase09_UpstreamRefusalsRecorded(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	otherAudience := testidp.BeforeSigning(func(doc *etree.Document) {
		for _, a := range doc.FindElements("//Audience") {
			a.SetText("https://other.example/sp")
		}
	})
	cases := []struct {
		name   string
		answer func(t *testing.T, b *browser, p page) (string, string)
		status int
		reason string
	}{
		{"changed after signing", func(t *testing.T, b *browser, p page) (string, string) {
			acs, resp := e.idpAnswer(p, "anna.a")
			return acs, tamper(t, e, "anna.a", resp)
		}, http.StatusBadRequest, "upstream_bad_signature"},
		{"another audience", func(t *testing.T, b *browser, p page) (string, string) {
			return e.idpAnswer(p, "anna.a", otherAudience)
		}, http.StatusBadRequest, "upstream_audience"},
		{"expired", func(t *testing.T, b *browser, p page) (string, string) {
			return e.idpAnswer(p, "anna.a", testidp.At(time.Now().Add(-time.Hour)))
		}, http.StatusBadRequest, "upstream_expired"},
		{"the IdP refused", func(t *testing.T, b *browser, p page) (string, string) {
			return e.idpAnswer(p, "anna.a", testidp.Status("urn:oasis:names:tc:SAML:2.0:status:Responder", "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"))
		}, http.StatusForbidden, "upstream_status"},
		{"replayed", func(t *testing.T, b *browser, p page) (string, string) {
			acs, resp := e.idpAnswer(p, "anna.a")
			if first := b.post(acs, url.Values{"SAMLResponse": {resp}}); first.status != http.StatusOK {
				t.Fatalf("the first post was refused: %s", first)
			}
			return acs, resp
		}, http.StatusBadRequest, "upstream_replay"},
	}
	for _, vendor := range []struct{ name, protocol string }{{"learning-app", "saml"}, {"oidc-app", "oidc"}} {
		for _, tc := range cases {
			t.Run(vendor.name+"/"+tc.name, func(t *testing.T) {
				b := newBrowser(t, e.srv.Client())
				acs, resp := tc.answer(t, b, e.pickerFor(b, vendor.name))
				assertErrorPage(t, b.post(acs, url.Values{"SAMLResponse": {resp}}), tc.status)
				assertRefusalEvent(t, e, tc.reason, vendor.name, vendor.protocol, "school-idp")
			})
		}
	}
	// An answer no pending login of this browser names (here: another
	// browser's) is refused and logged, but not recorded: the vendor is
	// unknown, and anyone could post such answers.
	t.Run("another browser's answer", func(t *testing.T) {
		before := len(events(t, e))
		victim, attacker := newBrowser(t, e.srv.Client()), newBrowser(t, e.srv.Client())
		acs, resp := e.idpAnswer(e.pickerFor(victim, "learning-app"), "bertil.b")
		e.pickerFor(attacker, "learning-app") // the attacker's own login in flight
		assertErrorPage(t, attacker.post(acs, url.Values{"SAMLResponse": {tamper(t, e, "bertil.b", resp)}}), http.StatusBadRequest)
		if after := len(events(t, e)); after != before {
			t.Errorf("an answer for another browser's login wrote %d events", after-before)
		}
	})
	assertReleaseLogClean(t, e)
	checkLogs(t, e, e.logs.String())
}

// TestCase34_UpstreamOIDCRefusalRecorded: with an OIDC school IdP, a
// callback refused after it named this browser's pending login (here the
// RFC 9207 iss of another IdP) writes a refusal event against the vendor.
func TestCase34_UpstreamOIDCRefusalRecorded(t *testing.T) {
	e := startEnvOpts(t, 1, memoryStore, nil, demo.Options{UpstreamOIDC: true})
	for _, vendor := range []struct{ name, protocol string }{{"learning-app", "saml"}, {"oidc-app", "oidc"}} {
		t.Run(vendor.name, func(t *testing.T) {
			b := newBrowser(t, e.srv.Client())
			p := e.pickerFor(b, vendor.name)
			state := p.url.Query().Get("state")
			if state == "" {
				t.Fatalf("the OIDC IdP's picker has no state: %s", p)
			}
			cb := e.srv.URL + "/oidc/rp/callback?" + url.Values{"state": {state}, "code": {"x"}, "iss": {"https://evil.example"}}.Encode()
			assertErrorPage(t, b.get(cb), http.StatusBadRequest)
			assertRefusalEvent(t, e, "upstream_iss", vendor.name, vendor.protocol, "school-oidc-idp")
		})
	}
	assertReleaseLogClean(t, e)
	checkLogs(t, e, e.logs.String())
}

// TestCase42_RefusalEventsCappedPerClient: one pending login answered
// badly over and over writes at most the per-client cap of refusal
// events; the rest are only counted and logged, so refused answers are
// no cheap way to fill the release log's disk.
func TestCase42_RefusalEventsCappedPerClient(t *testing.T) {
	e := startEnv(t, 1, memoryStore)
	b := newBrowser(t, e.srv.Client())
	acs, resp := e.idpAnswer(e.pickerFor(b, "learning-app"), "anna.a")
	bad := tamper(t, e, "anna.a", resp)
	const posts = server.DefaultRefusalEventsPerMinute + 15
	for i := 0; i < posts; i++ {
		if p := b.post(acs, url.Values{"SAMLResponse": {bad}}); p.status != http.StatusBadRequest {
			t.Fatalf("post %d: %s", i, p)
		}
	}
	if got := len(refusalsWith(t, e, "upstream_bad_signature")); got != server.DefaultRefusalEventsPerMinute {
		t.Errorf("%d refusal events for %d refused answers, want the cap %d", got, posts, server.DefaultRefusalEventsPerMinute)
	}
	logs := e.logs.String()
	if n := strings.Count(logs, "refusal event not recorded"); n != posts-server.DefaultRefusalEventsPerMinute {
		t.Errorf("%d capped refusals logged, want %d", n, posts-server.DefaultRefusalEventsPerMinute)
	}
	// The pending login was only looked at: the genuine answer completes.
	if p := b.post(acs, url.Values{"SAMLResponse": {resp}}); p.status != http.StatusOK {
		t.Errorf("the genuine answer after the refusals: %s", p)
	}
	checkLogs(t, e, logs)
}

// assertReleaseLogClean scans the release log as checkLogs scans the
// logs: nothing shaped like a personal number outside hex keys, no name
// or upstream identifier of a test identity, no SAML message.
func assertReleaseLogClean(t *testing.T, e *env) {
	t.Helper()
	evs := events(t, e)
	if len(evs) == 0 {
		t.Fatal("the release log is empty")
	}
	for _, ev := range evs {
		for k, v := range ev {
			s, _ := json.Marshal(v)
			if str, ok := v.(string); ok && hexValue.MatchString(str) {
				continue
			}
			if list, ok := v.([]any); ok && allHex(list) {
				continue // subject_keys: HMACs, whose hex may hold digit runs
			}
			if personalNumberPattern.Match(s) {
				t.Errorf("release log field %q holds something shaped like a personal number", k)
			}
		}
	}
	raw, _ := json.Marshal(evs)
	for _, u := range e.demo.IdP.Users {
		secrets := []string{u.NameID}
		for _, n := range []string{testidp.AttrGivenName, testidp.AttrSurname, testidp.AttrDisplayName, testidp.AttrMail, testidp.AttrEPPN} {
			secrets = append(secrets, u.Attributes[n]...)
		}
		for _, s := range secrets {
			if strings.Contains(string(raw), s) {
				t.Errorf("the release log holds a test identity's name or identifier")
			}
		}
	}
	for _, s := range []string{"SAMLResponse", "Assertion", "<saml", "Mallory"} {
		if strings.Contains(string(raw), s) {
			t.Errorf("the release log holds %q", s)
		}
	}
}

// allHex reports whether every element of list is a hex MAC.
func allHex(list []any) bool {
	for _, x := range list {
		if str, ok := x.(string); !ok || !hexValue.MatchString(str) {
			return false
		}
	}
	return len(list) > 0
}
