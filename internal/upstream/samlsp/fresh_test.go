package samlsp

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/testidp"
)

// What a vendor asks of a login reaches the school IdP: ForceAuthn,
// IsPassive and a RequestedAuthnContext; none of them unless asked
// (cases 48 and 49).
func TestCase48_StartLoginAsksTheIdP(t *testing.T) {
	tests := []struct {
		name string
		o    LoginOptions
		want testidp.Request
	}{
		{"nothing asked", LoginOptions{}, testidp.Request{}},
		{"fresh login", LoginOptions{ForceAuthn: true}, testidp.Request{ForceAuthn: true}},
		{"passive login", LoginOptions{IsPassive: true}, testidp.Request{IsPassive: true}},
		{"a level", LoginOptions{AuthnContextClassRefs: []string{"urn:x:otp", "urn:x:bankid"}},
			testidp.Request{AuthnContextClassRefs: []string{"urn:x:otp", "urn:x:bankid"}, Comparison: "exact"}},
		{"a minimum", LoginOptions{AuthnContextClassRefs: []string{"urn:x:otp"}, Comparison: "minimum"},
			testidp.Request{AuthnContextClassRefs: []string{"urn:x:otp"}, Comparison: "minimum"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			redirect, err := f.sp.StartLoginWith(context.Background(), browserA, nil, "", tc.o)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(redirect)
			if err != nil {
				t.Fatal(err)
			}
			got, err := testidp.ParseAuthnRequest(u.Query().Get("SAMLRequest"))
			if err != nil {
				t.Fatal(err)
			}
			got.ID, got.ACSURL, got.SPEntityID = "", "", ""
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("AuthnRequest (-want +got):\n%s", diff)
			}
		})
	}
}

// The IdP's NoPassive comes back with the login's state, so that the
// bridge can answer the vendor's passive login; only to the browser that
// started it.
func TestCase48_StatusCarriesTheState(t *testing.T) {
	f := newFixture(t)
	req := f.login(browserA)
	e := f.expectRefusal(t, f.sp, f.respond(req, testidp.Status(testidp.StatusResponder, testidp.StatusNoPassive)), browserA, ReasonStatus, http.StatusForbidden)
	if string(e.State) != "state-for-"+browserA || e.UpstreamSubStatus != testidp.StatusNoPassive {
		t.Errorf("state %q, sub-status %q", e.State, e.UpstreamSubStatus)
	}
	req = f.login(browserA)
	e = f.expectRefusal(t, f.sp, f.respond(req, testidp.Status(testidp.StatusResponder, testidp.StatusNoPassive)), browserB, ReasonBinding, http.StatusBadRequest)
	if e.State != nil {
		t.Errorf("another browser's refusal carries the state")
	}
}
