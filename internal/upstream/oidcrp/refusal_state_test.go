package oidcrp_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/skolbro/skolbro/internal/testop"
	"github.com/skolbro/skolbro/internal/upstream/oidcrp"
)

// TestCase34_RefusedCallbackNamesItsLogin: once a callback has redeemed
// this browser's pending login, every later refusal (a bad ID token, the
// wrong iss, the IdP's error) carries that login's state as Error.State,
// so that the bridge can record the refusal against the vendor. Before
// that (an unknown state, another browser's) nothing is named.
func TestCase34_RefusedCallbackNamesItsLogin(t *testing.T) {
	t.Parallel()
	state := []byte("pending-vendor-login")
	cases := []struct {
		name   string
		fault  testop.Fault
		edit   func(url.Values)
		cancel bool
		reason string
		status int
	}{
		{name: "bad signature", fault: testop.FaultOtherKey, reason: oidcrp.ReasonIDToken, status: http.StatusBadRequest},
		{name: "expired", fault: testop.FaultExpired, reason: oidcrp.ReasonExpired, status: http.StatusBadRequest},
		{name: "wrong audience", fault: testop.FaultWrongAudience, reason: oidcrp.ReasonIDToken, status: http.StatusBadRequest},
		{name: "iss of another IdP", edit: func(q url.Values) { q.Set("iss", "https://evil.example") }, reason: oidcrp.ReasonIss, status: http.StatusBadRequest},
		{name: "IdP refused", cancel: true, reason: oidcrp.ReasonStatus, status: http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.op.SetFault(tc.fault)
			var cb *http.Request
			if tc.cancel {
				cb = e.choose(t, e.startLogin(t, browserA, state), "cancel", "1")
			} else {
				cb = e.login(t, browserA, "anna.a", state)
			}
			if tc.edit != nil {
				cb = withQuery(cb, tc.edit)
			}
			res, st, err := e.rp.HandleCallback(context.Background(), cb, browserA)
			if got := refusal(t, res, st, err, tc.reason, tc.status); string(got.State) != string(state) {
				t.Errorf("State = %q, want the pending login's", got.State)
			}
			// The state is spent: a second try names nothing.
			res, st, err = e.rp.HandleCallback(context.Background(), cb, browserA)
			if got := refusal(t, res, st, err, oidcrp.ReasonState, http.StatusBadRequest); got.State != nil {
				t.Errorf("a spent state names a login: %q", got.State)
			}
		})
	}
	t.Run("another browser", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		cb := e.login(t, browserA, "anna.a", state)
		res, st, err := e.rp.HandleCallback(context.Background(), cb, browserB)
		if got := refusal(t, res, st, err, oidcrp.ReasonBinding, http.StatusBadRequest); got.State != nil {
			t.Errorf("another browser's refusal names the login: %q", got.State)
		}
	})
}
