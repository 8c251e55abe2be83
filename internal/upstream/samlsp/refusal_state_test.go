package samlsp

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/testidp"
)

// TestCase09_RefusedAnswerNamesItsLogin: a response refused at the
// upstream side carries, as Error.State, the state of the pending login it
// answered, so that the bridge can record the refusal against the vendor:
// only when the browser posting it is the one that started that login,
// and without consuming the pending request (the browser can still finish
// with the IdP's genuine answer). Cases 2 (changed after signing), 9
// (signed by another key), 11 (audience), 14 (expired) and 20 (an error
// status, which ends the login) are each one row.
func TestCase09_RefusedAnswerNamesItsLogin(t *testing.T) {
	tamper := func(resp string) string {
		return encode(strings.Replace(decode(t, resp), ">anna.a@", ">mallory@", 1))
	}
	tests := []struct {
		name     string
		opts     func(f *fixture) []testidp.Option
		change   func(string) string
		reason   string
		status   int
		consumed bool
	}{
		{name: "changed_after_signing", change: tamper, reason: ReasonBadSignature, status: http.StatusBadRequest},
		{name: "signed_by_another_key", opts: func(f *fixture) []testidp.Option {
			return []testidp.Option{testidp.SignWith(signer(t, f.keys.attacker))}
		}, reason: ReasonBadSignature, status: http.StatusBadRequest},
		{name: "audience", opts: func(f *fixture) []testidp.Option {
			return []testidp.Option{testidp.BeforeSigning(func(doc *etree.Document) {
				mustFind(t, assertionOf(doc), pAudience).SetText("https://other.example.se/sp")
			})}
		}, reason: ReasonAudience, status: http.StatusBadRequest},
		{name: "expired", opts: func(*fixture) []testidp.Option {
			return []testidp.Option{testidp.At(t0.Add(-30 * time.Minute))}
		}, reason: ReasonExpired, status: http.StatusBadRequest},
		{name: "idp_error_status", opts: func(*fixture) []testidp.Option {
			return []testidp.Option{testidp.Status("urn:oasis:names:tc:SAML:2.0:status:Responder", "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed")}
		}, reason: ReasonStatus, status: http.StatusForbidden, consumed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			req := f.login(browserA)
			var opts []testidp.Option
			if tc.opts != nil {
				opts = tc.opts(f)
			}
			bad := f.respond(req, opts...)
			if tc.change != nil {
				bad = tc.change(bad)
			}
			// Another browser posting it names nothing: the browser
			// binding is checked before anything else (issue 19), so it is
			// refused for its binding.
			if e := f.expectRefusal(t, f.sp, bad, browserB, ReasonBinding, http.StatusBadRequest); e.State != nil {
				t.Errorf("another browser's refusal names the login: %q", e.State)
			}
			if tc.consumed {
				// The login ends with the IdP's error: A's own post
				// names it.
				f2 := newFixture(t)
				bad = f2.respond(f2.login(browserA), opts...)
				if e := f2.expectRefusal(t, f2.sp, bad, browserA, tc.reason, tc.status); string(e.State) != "state-for-"+browserA {
					t.Errorf("State = %q, want the login's state", e.State)
				}
				return
			}
			e := f.expectRefusal(t, f.sp, bad, browserA, tc.reason, tc.status)
			if string(e.State) != "state-for-"+browserA {
				t.Errorf("State = %q, want the login's state", e.State)
			}
			// The pending request was only looked at: the genuine answer
			// still completes the login.
			f.expectSuccess(t, f.sp, f.respond(req), browserA)
		})
	}
}

// TestCase15_ReplayNamesTheFirstLogin: with SetReplayNote, a replayed
// assertion is refused with the note kept for the login it was first
// accepted for, whichever browser replays it and on whichever instance;
// without a note nothing is named.
func TestCase15_ReplayNamesTheFirstLogin(t *testing.T) {
	f := newFixture(t)
	note := func(state []byte) []byte { return append([]byte("note:"), state...) }
	f.sp.SetReplayNote(note)
	resp := f.respond(f.login(browserA))
	f.expectSuccess(t, f.sp, resp, browserA)
	second := f.secondSP()
	second.SetReplayNote(note)
	for _, tc := range []struct {
		sp      *SP
		binding string
	}{{f.sp, browserA}, {f.sp, browserB}, {second, browserB}} {
		if e := f.expectRefusal(t, tc.sp, resp, tc.binding, ReasonReplay, http.StatusBadRequest); string(e.State) != "note:state-for-"+browserA {
			t.Errorf("replay from %s: State = %q, want the first login's note", tc.binding, e.State)
		}
	}

	plain := newFixture(t)
	resp = plain.respond(plain.login(browserA))
	plain.expectSuccess(t, plain.sp, resp, browserA)
	if e := plain.expectRefusal(t, plain.sp, resp, browserA, ReasonReplay, http.StatusBadRequest); e.State != nil {
		t.Errorf("without a note the replay names %q", e.State)
	}
}

// TestSuccessReadsPendingOnce: an accepted response costs the store one
// read of its pending request (the browser binding, and with it the note
// for the replay cache), the replay record and the redemption: with Redis
// each is a round trip on the login's path.
func TestSuccessReadsPendingOnce(t *testing.T) {
	f := newFixture(t)
	f.sp.SetReplayNote(func(state []byte) []byte { return append([]byte("note:"), state...) })
	req := f.login(browserA)
	resp := f.respond(req)
	st := f.sp.store.(*memStore)
	st.mu.Lock()
	st.ops = nil
	st.mu.Unlock()
	f.expectSuccess(t, f.sp, resp, browserA)
	st.mu.Lock()
	defer st.mu.Unlock()
	var kinds []string
	for _, op := range st.ops {
		kinds = append(kinds, strings.Fields(op)[0])
	}
	if got := strings.Join(kinds, ","); got != "get,add,take" {
		t.Errorf("store operations of an accepted response: %s, want get,add,take (%q)", got, st.ops)
	}
	for k, e := range st.m {
		if strings.HasPrefix(k, replayKeyPrefix) && string(e.v) != "note:state-for-"+browserA {
			t.Errorf("replay record %q, want the login's note", e.v)
		}
	}
}

// A refusal before any pending request can be named (not a Response, no
// InResponseTo, store down) carries no state.
func TestRefusalWithoutLoginNamesNothing(t *testing.T) {
	f := newFixture(t)
	req := f.login(browserA)
	noIRT := f.respond(req, testidp.BeforeSigning(func(doc *etree.Document) { doc.Root().RemoveAttr("InResponseTo") }))
	for _, resp := range []string{encode("<x/>"), noIRT} {
		_, _, err := f.sp.HandleResponse(context.Background(), resp, browserA)
		var e *Error
		if !errors.As(err, &e) || e.State != nil {
			t.Errorf("refusal %v names a login: %q", err, e.State)
		}
	}
}
