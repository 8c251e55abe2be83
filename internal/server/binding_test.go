package server

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
)

// bindingEnv is a server with one organiser's binder (at the root).
type bindingEnv struct {
	s *Server
	b binder
}

func bindingServer(t *testing.T, key byte, secure bool) *bindingEnv {
	t.Helper()
	s := &Server{rand: rand.Reader, secureCookies: secure}
	return &bindingEnv{s: s, b: binder{key: bytes.Repeat([]byte{key}, 32), name: s.bindingName("a", "")}}
}

func (e *bindingEnv) setBinding(w http.ResponseWriter) (string, error) { return e.s.setBinding(w, e.b) }
func (e *bindingEnv) issued(v string) bool                             { return e.b.issued(v) }
func (e *bindingEnv) completedBinding(r *http.Request) (string, string) {
	return e.s.completedBinding(r, e.b)
}

// TestCase13_BindingValuesCarryAMAC: the bridge recognises the values it
// issued and nothing else: not a changed byte, not another key's value,
// not a value of the right length without a MAC (issue 19).
func TestCase13_BindingValuesCarryAMAC(t *testing.T) {
	s := bindingServer(t, 1, true)
	w := httptest.NewRecorder()
	v, err := s.setBinding(w)
	if err != nil {
		t.Fatal(err)
	}
	if !s.issued(v) {
		t.Fatal("a value the bridge issued is not recognised")
	}
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	for i := range raw {
		c := bytes.Clone(raw)
		c[i] ^= 1
		if s.issued(base64.RawURLEncoding.EncodeToString(c)) {
			t.Fatalf("a value with byte %d changed is recognised", i)
		}
	}
	if bindingServer(t, 2, true).issued(v) {
		t.Error("a value issued under another key is recognised")
	}
	for _, forged := range []string{"", v[:len(v)-1], v + "A", base64.RawURLEncoding.EncodeToString(raw[:bindingRandom]), "not base64!"} {
		if s.issued(forged) {
			t.Errorf("%q is recognised", forged)
		}
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != bindingCookieHost || !cs[0].Secure || !cs[0].HttpOnly || cs[0].Path != "/" ||
		cs[0].Domain != "" || cs[0].SameSite != http.SameSiteNoneMode {
		t.Errorf("cookie over https: %+v", cs)
	}
	// Plain-http dev mode: browsers refuse __Host- without Secure.
	w = httptest.NewRecorder()
	if _, err := bindingServer(t, 1, false).setBinding(w); err != nil {
		t.Fatal(err)
	}
	if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].Name != bindingCookieDev || cs[0].Secure || cs[0].SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie in dev mode: %+v", cs)
	}
}

// TestCase13_BindingAtACS: the ACS takes exactly one issued value.
func TestCase13_BindingAtACS(t *testing.T) {
	s := bindingServer(t, 1, true)
	v1, _ := s.setBinding(httptest.NewRecorder())
	v2, _ := s.setBinding(httptest.NewRecorder())
	forged := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, bindingRandom+bindingMAC))
	tests := []struct {
		name, cookie, want string
	}{
		{"one_issued", bindingCookieHost + "=" + v1, ""},
		{"none", "", reasonNoBinding},
		{"bare_name_only", bindingCookieDev + "=" + v1, reasonNoBinding},
		{"forged", bindingCookieHost + "=" + forged, reasonBindingForged},
		{"two_issued", bindingCookieHost + "=" + v1 + "; " + bindingCookieHost + "=" + v2, reasonBindingDuplicate},
		{"same_twice", bindingCookieHost + "=" + v1 + "; " + bindingCookieHost + "=" + v1, reasonBindingDuplicate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "https://bridge.example.se/saml/sp/acs", nil)
			if tc.cookie != "" {
				r.Header.Set("Cookie", tc.cookie)
			}
			got, reason := s.completedBinding(r)
			if reason != tc.want || (reason == "" && got != v1) || (reason != "" && got != "") {
				t.Errorf("completedBinding = value %v, reason %q; want reason %q", got != "", reason, tc.want)
			}
		})
	}
}

// TestCase44_BindingPerOrganiser: in a hub each organiser has its own
// binding cookie and key, so a value one organiser issued is not
// recognised by another, and logins at two organisers in one browser do
// not replace each other's cookie.
func TestCase44_BindingPerOrganiser(t *testing.T) {
	s := &Server{rand: rand.Reader, secureCookies: true}
	a := binder{key: bytes.Repeat([]byte{1}, 32), name: s.bindingName("a", "")}
	b := binder{key: bytes.Repeat([]byte{2}, 32), name: s.bindingName("b", "/o/b")}
	if a.name != bindingCookieHost || b.name != bindingCookieHost+"_b" {
		t.Fatalf("cookie names %q and %q", a.name, b.name)
	}
	w := httptest.NewRecorder()
	va, err := s.setBinding(w, a)
	if err != nil {
		t.Fatal(err)
	}
	if b.issued(va) {
		t.Error("organiser b recognises a value organiser a issued")
	}
	r := httptest.NewRequest(http.MethodPost, "https://bridge.example.se/o/b/saml/sp/acs", nil)
	r.Header.Set("Cookie", a.name+"="+va)
	if _, reason := s.completedBinding(r, b); reason != reasonNoBinding {
		t.Errorf("b's ACS with only a's cookie: reason %q, want %q", reason, reasonNoBinding)
	}
}
