package samlslo

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

var t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// signers are made once: RSA generation is slow under -race.
var signers = sync.OnceValue(func() map[string]*xmlsig.Signer {
	m := map[string]*xmlsig.Signer{}
	for _, n := range []struct {
		name string
		alg  keys.Algorithm
	}{{"peer", keys.RSA2048}, {"other", keys.RSA2048}, {"peer-ec", keys.P256}} {
		p, err := keys.Generate(n.name+" (TEST ONLY)", n.alg, t0.Add(-time.Hour))
		if err != nil {
			panic(err)
		}
		s, err := xmlsig.NewSigner(p)
		if err != nil {
			panic(err)
		}
		m[n.name] = s
	}
	return m
})

func certOf(name string) []*x509.Certificate {
	return []*x509.Certificate{signers()[name].Pair().Cert}
}

const dest = "https://bridge.example.se/saml/idp/slo"

func testRequest() *LogoutRequest {
	return &LogoutRequest{ID: "_req1", Issuer: "https://vendor.example/sp", Destination: dest, IssueInstant: t0,
		NotOnOrAfter:   t0.Add(5 * time.Minute),
		NameID:         NameID{Value: "_nid", Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:transient", NameQualifier: "https://bridge.example.se/saml/idp/metadata", SPNameQualifier: "https://vendor.example/sp"},
		SessionIndexes: []string{"_si1"}, Reason: "urn:oasis:names:tc:SAML:2.0:logout:user"}
}

// deliver makes the request a browser would make for out.
func deliver(t *testing.T, out Outgoing) *http.Request {
	t.Helper()
	if out.URL != "" {
		return httptest.NewRequest(http.MethodGet, out.URL, nil)
	}
	form := url.Values{}
	for k, v := range out.Fields {
		form.Set(k, v)
	}
	r := httptest.NewRequest(http.MethodPost, out.Action, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func checks() Checks {
	return Checks{Destination: dest, Issuer: "https://vendor.example/sp", Now: t0.Add(time.Minute), Skew: 2 * time.Minute, MaxAge: 10 * time.Minute}
}

func TestRequestRoundTrip(t *testing.T) {
	for _, binding := range []string{BindingRedirect, BindingPOST} {
		for _, key := range []string{"peer", "peer-ec"} {
			t.Run(binding+"/"+key, func(t *testing.T) {
				want := testRequest()
				out, err := Encode(binding, dest, ParamRequest, want.Element(), "rs-1", signers()[key])
				if err != nil {
					t.Fatal(err)
				}
				in, err := Read(deliver(t, out))
				if err != nil {
					t.Fatal(err)
				}
				if in.Param != ParamRequest || in.Binding != binding || in.RelayState != "rs-1" || in.Issuer != want.Issuer {
					t.Errorf("read %+v", in)
				}
				el, err := in.Verify(certOf(key))
				if err != nil {
					t.Fatal(err)
				}
				got, err := ParseLogoutRequest(el)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("request (-want +got):\n%s", diff)
				}
				if err := checks().CheckRequest(got); err != nil {
					t.Errorf("checks: %v", err)
				}
			})
		}
	}
}

func TestResponseRoundTrip(t *testing.T) {
	for _, binding := range []string{BindingRedirect, BindingPOST} {
		t.Run(binding, func(t *testing.T) {
			want := &LogoutResponse{ID: "_resp1", Issuer: "https://vendor.example/sp", Destination: dest, InResponseTo: "_req9",
				IssueInstant: t0, Status: StatusSuccess, SubStatus: StatusPartialLogout}
			out, err := Encode(binding, dest, ParamResponse, want.Element(), "", signers()["peer"])
			if err != nil {
				t.Fatal(err)
			}
			in, err := Read(deliver(t, out))
			if err != nil {
				t.Fatal(err)
			}
			el, err := in.Verify(certOf("peer"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseLogoutResponse(el)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			if got.Success() {
				t.Errorf("a PartialLogout counts as a complete logout")
			}
		})
	}
}

func reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return "not an *Error: " + err.Error()
}

// TestCase50_LogoutMessagesRefused: unsigned messages, signatures by
// another key or over a changed message, SHA-1, repeated parameters and
// long RelayStates are refused.
func TestCase50_LogoutMessagesRefused(t *testing.T) {
	redirect := func(t *testing.T, key string) string {
		out, err := Encode(BindingRedirect, dest, ParamRequest, testRequest().Element(), "rs", signers()[key])
		if err != nil {
			t.Fatal(err)
		}
		return out.URL
	}
	tests := []struct {
		name   string
		req    func(t *testing.T) *http.Request
		certs  []*x509.Certificate
		reason string
	}{
		{"unsigned redirect", func(t *testing.T) *http.Request {
			u := redirect(t, "peer")
			return httptest.NewRequest(http.MethodGet, u[:strings.Index(u, "&SigAlg=")], nil)
		}, certOf("peer"), ReasonUnsigned},
		{"unsigned post", func(t *testing.T) *http.Request {
			b64 := Outgoing{Action: dest, Fields: map[string]string{ParamRequest: encodePlain(t, testRequest())}}
			return deliver(t, b64)
		}, certOf("peer"), ReasonUnsigned},
		{"redirect signed by another key", func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodGet, redirect(t, "other"), nil)
		}, certOf("peer"), ReasonBadSignature},
		{"post signed by another key", func(t *testing.T) *http.Request {
			out, err := Encode(BindingPOST, dest, ParamRequest, testRequest().Element(), "", signers()["other"])
			if err != nil {
				t.Fatal(err)
			}
			return deliver(t, out)
		}, certOf("peer"), ReasonBadSignature},
		{"relay state changed after signing", func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodGet, strings.Replace(redirect(t, "peer"), "RelayState=rs", "RelayState=rx", 1), nil)
		}, certOf("peer"), ReasonBadSignature},
		{"SHA-1 signature algorithm", func(t *testing.T) *http.Request {
			u := redirect(t, "peer")
			return httptest.NewRequest(http.MethodGet, strings.Replace(u, url.QueryEscape(xmlsig.RSASHA256), url.QueryEscape("http://www.w3.org/2000/09/xmldsig#rsa-sha1"), 1), nil)
		}, certOf("peer"), ReasonWeakAlgorithm},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, err := Read(tc.req(t))
			if err == nil {
				_, err = in.Verify(tc.certs)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if got := reason(err); got != tc.reason {
				t.Errorf("reason %q, want %q", got, tc.reason)
			}
		})
	}
	for _, tc := range []struct{ name, query, reason string }{
		{"repeated message", "SAMLRequest=a&SAMLRequest=b", ReasonDuplicate},
		{"encoded repeat", "SAMLRequest=a&SAML%52equest=b", ReasonDuplicate},
		{"long relay state", "SAMLRequest=a&RelayState=" + strings.Repeat("x", 81), ReasonRelayState},
		{"no message", "RelayState=x", ReasonNoMessage},
		{"not deflate", "SAMLRequest=bm90IHNhbWw%3D", ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(httptest.NewRequest(http.MethodGet, dest+"?"+tc.query, nil))
			if err == nil || reason(err) != tc.reason {
				t.Errorf("got %v, want reason %s", err, tc.reason)
			}
		})
	}
}

// encodePlain is the POST binding's field for r, unsigned.
func encodePlain(t *testing.T, r *LogoutRequest) string {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(r.Element())
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestChecks(t *testing.T) {
	c := checks()
	for _, tc := range []struct {
		name   string
		change func(r *LogoutRequest)
		reason string
	}{
		{"ok", func(*LogoutRequest) {}, ""},
		{"another destination", func(r *LogoutRequest) { r.Destination = dest + "x" }, ReasonDestination},
		{"no destination", func(r *LogoutRequest) { r.Destination = "" }, ReasonDestination},
		{"another issuer", func(r *LogoutRequest) { r.Issuer = "https://other.example/sp" }, ReasonIssuer},
		{"from the future", func(r *LogoutRequest) { r.IssueInstant = c.Now.Add(3 * time.Minute) }, ReasonStale},
		{"too old", func(r *LogoutRequest) { r.IssueInstant = c.Now.Add(-13 * time.Minute) }, ReasonStale},
		{"expired", func(r *LogoutRequest) { r.NotOnOrAfter = c.Now.Add(-3 * time.Minute) }, ReasonExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testRequest()
			tc.change(r)
			err := c.CheckRequest(r)
			switch {
			case tc.reason == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.reason != "" && (err == nil || reason(err) != tc.reason):
				t.Errorf("got %v, want %s", err, tc.reason)
			}
		})
	}
}

// TestCase50_MatchesOnlyTheSessionGiven: a request names a participant's
// session only with its NameID (and, where stated, its format, qualifiers
// and one of its session indexes).
func TestCase50_MatchesOnlyTheSessionGiven(t *testing.T) {
	base := testRequest()
	given, si := base.NameID, "_si1"
	for _, tc := range []struct {
		name   string
		change func(r *LogoutRequest)
		want   bool
	}{
		{"exact", func(*LogoutRequest) {}, true},
		{"no session index: every session of the NameID", func(r *LogoutRequest) { r.SessionIndexes = nil }, true},
		{"one of several session indexes", func(r *LogoutRequest) { r.SessionIndexes = []string{"_x", "_si1"} }, true},
		{"qualifiers left out", func(r *LogoutRequest) { r.NameID.NameQualifier, r.NameID.SPNameQualifier, r.NameID.Format = "", "", "" }, true},
		{"another NameID", func(r *LogoutRequest) { r.NameID.Value = "_other" }, false},
		{"another session index", func(r *LogoutRequest) { r.SessionIndexes = []string{"_si2"} }, false},
		{"another format", func(r *LogoutRequest) { r.NameID.Format = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" }, false},
		{"another SPNameQualifier", func(r *LogoutRequest) { r.NameID.SPNameQualifier = "https://other.example/sp" }, false},
		{"another NameQualifier", func(r *LogoutRequest) { r.NameID.NameQualifier = "https://other.example/idp" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testRequest()
			tc.change(r)
			if got := Matches(r, given, si); got != tc.want {
				t.Errorf("Matches = %v, want %v", got, tc.want)
			}
		})
	}
}
