package browsertest

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The forms a page holds, as the browser submits them: the first form's
// resolved action and hidden fields.
func TestForms(t *testing.T) {
	pageURL, _ := url.Parse("http://bridge.test/demo/idp/sso?SAMLRequest=abc")
	tests := []struct {
		name       string
		body       string
		wantAction string
		wantFields url.Values
		wantErr    bool
	}{
		{name: "autopost",
			body:       `<form id="autopost" method="post" action="http://vendor.test/acs"><input type="hidden" name="SAMLResponse" value="PHg+&amp;"><input type="hidden" name="RelayState" value="rs"><button type="submit">Go</button></form><form action="/other"><input type="hidden" name="x" value="y"></form>`,
			wantAction: "http://vendor.test/acs", wantFields: url.Values{"SAMLResponse": {"PHg+&"}, "RelayState": {"rs"}}},
		{name: "no_action_posts_to_the_page",
			body:       `<form method="post"><input type="hidden" name="SAMLRequest" value="abc"><input type="text" name="visible" value="v"><button name="user" value="anna.a">Anna</button></form>`,
			wantAction: pageURL.String(), wantFields: url.Values{"SAMLRequest": {"abc"}}},
		{name: "relative_action", body: `<form action="../acs"></form>`, wantAction: "http://bridge.test/demo/acs", wantFields: url.Values{}},
		{name: "no_form", body: `<p>error</p>`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := Page{URL: pageURL, Body: tc.body}.Forms()
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantErr {
				if len(fs) != 0 {
					t.Fatalf("%d forms on a page without one", len(fs))
				}
				return
			}
			if len(fs) == 0 {
				t.Fatal("no form found")
			}
			if fs[0].Action != tc.wantAction {
				t.Errorf("action %q, want %q", fs[0].Action, tc.wantAction)
			}
			if diff := cmp.Diff(tc.wantFields, fs[0].Fields); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}
