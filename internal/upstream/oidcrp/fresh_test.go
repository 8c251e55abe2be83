package oidcrp_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/upstream/oidcrp"
)

// What a vendor asks of a login reaches the school IdP: prompt, max_age
// and acr_values; none of them unless asked (cases 48 and 49).
func TestCase48_StartLoginAsksTheIdP(t *testing.T) {
	t.Parallel()
	zero := int64(0)
	tests := []struct {
		name string
		o    oidcrp.LoginOptions
		want url.Values
	}{
		{"nothing asked", oidcrp.LoginOptions{}, url.Values{}},
		{"fresh login", oidcrp.LoginOptions{Prompt: "login", MaxAge: &zero}, url.Values{"prompt": {"login"}, "max_age": {"0"}}},
		{"passive login", oidcrp.LoginOptions{Prompt: "none"}, url.Values{"prompt": {"none"}}},
		{"levels", oidcrp.LoginOptions{ACRValues: []string{"urn:x:otp", "urn:x:bankid"}}, url.Values{"acr_values": {"urn:x:otp urn:x:bankid"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			raw, err := e.rp.StartLoginWith(context.Background(), browserA, nil, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			got := url.Values{}
			for _, k := range []string{"prompt", "max_age", "acr_values"} {
				if v, ok := u.Query()[k]; ok {
					got[k] = v
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("authorization parameters (-want +got):\n%s", diff)
			}
		})
	}
}

// The IdP's login_required comes back with the login's state, so that the
// bridge can answer the vendor's prompt=none; the amr values are read.
func TestCase48_ErrorCarriesTheStateAndAMRIsRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	authz := e.startLogin(t, browserA, []byte("flow-7"))
	cb := withQuery(e.choose(t, authz, "user", "anna.a"), func(q url.Values) {
		q.Del("code")
		q.Set("error", "login_required")
	})
	_, _, err := e.rp.HandleCallback(context.Background(), cb, browserA)
	var oe *oidcrp.Error
	if !errors.As(err, &oe) || oe.Reason != oidcrp.ReasonStatus || oe.Status != http.StatusForbidden ||
		oe.UpstreamError != "login_required" || string(oe.State) != "flow-7" {
		t.Fatalf("err = %v (%+v), want status login_required with the state", err, oe)
	}

	cb = e.choose(t, e.startLogin(t, browserA, nil), "user_otp", "david.d")
	res, _, err := e.rp.HandleCallback(context.Background(), cb, browserA)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"pwd", "otp", "mfa"}, res.AMR); diff != "" {
		t.Errorf("amr (-want +got):\n%s", diff)
	}
	if res.AuthnContext != "https://refeds.org/profile/mfa" {
		t.Errorf("acr %q", res.AuthnContext)
	}
}
