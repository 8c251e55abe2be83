package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/skolbro/skolbro/internal/demovendor"
)

// glance, the vendor's light look at the responses --check-every spares
// from a full check, still refuses a response that is not a success to
// the vendor's own request at its own ACS.
func TestGlance(t *testing.T) {
	acs, _ := url.Parse("https://vendor.test/acs")
	w := &world{saml: &demovendor.Vendor{SP: &saml.ServiceProvider{AcsURL: *acs}}}
	resp := func(inResponseTo, dest, status, assertion string) string {
		return base64.StdEncoding.EncodeToString([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r" InResponseTo="` + inResponseTo +
			`" Destination="` + dest + `"><samlp:Status><samlp:StatusCode Value="` + status + `"/></samlp:Status>` + assertion + `</samlp:Response>`))
	}
	const ok, enc = "urn:oasis:names:tc:SAML:2.0:status:Success", `<saml:EncryptedAssertion>x</saml:EncryptedAssertion>`
	cases := []struct {
		name, form string
		want       bool
	}{
		{"success", resp("id-1", acs.String(), ok, enc), true},
		{"plain assertion", resp("id-1", acs.String(), ok, `<saml:Assertion ID="_a"></saml:Assertion>`), true},
		{"another request", resp("id-2", acs.String(), ok, enc), false},
		{"another ACS", resp("id-1", "https://evil.test/acs", ok, enc), false},
		{"failed", resp("id-1", acs.String(), "urn:oasis:names:tc:SAML:2.0:status:Responder", ""), false},
		{"no assertion", resp("id-1", acs.String(), ok, ""), false},
		{"not base64", "<samlp:Response", false},
	}
	for _, tc := range cases {
		if got := w.glance(tc.form, "id-1"); got != tc.want {
			t.Errorf("%s: glance = %v, want %v", tc.name, got, tc.want)
		}
	}
	if w.glance(resp("", acs.String(), ok, enc), "") {
		t.Error("a response to no request passed")
	}
}

// With --check-every the logins still complete, and the run says how
// the vendor checked them.
func TestCheckEveryRun(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{Concurrency: []int{2}, Duration: 3 * time.Second, CheckEvery: 3,
		Signatures: -1, Calibration: -1, JSON: true}, &out)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.CheckEvery != 3 || len(res.Phases) != 1 || res.Phases[0].Logins < 3 || len(res.Phases[0].Errors) != 0 {
		t.Fatalf("check every %d, phases %+v: want logins without errors, every third checked in full", res.CheckEvery, res.Phases)
	}
}
