package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"

	"github.com/rs/zerolog"
)

// The login binding cookie ties a login's upstream leg to the browser that
// started it (SECURITY.md cases 13 and 43, issue 19). It is not a session:
// it carries no identity, and the pending request it points to is
// consumed by the ACS (or the OIDC callback).
//
// An attacker who could choose a victim's binding could start a login in
// its own browser with that value, sign in as its own pupil, and make the
// victim's browser post the answer: the victim would then work in the
// attacker's account (login CSRF). So:
//   - Over https the cookie is named with the __Host- prefix: browsers
//     accept it only when Secure, with Path=/ and no Domain, so a sibling
//     host under the municipality's domain cannot plant one.
//   - Values are random with a MAC under the organiser's binding key; a
//     value the bridge did not issue is replaced at login start and
//     refused at the ACS.
//   - A request with two cookies of the name is refused at the ACS (a
//     planted copy with a longer Path is sent first, in browsers that do
//     not enforce the prefix) and replaced at login start.
//   - The value is replaced after a completed login, so that a value seen
//     before a login is worthless after it.
//
// Plain-http dev mode cannot use the prefix (browsers refuse __Host-
// without Secure) and uses the bare name, with SameSite=Lax.
const (
	bindingCookieHost = "__Host-skolbro_login"
	bindingCookieDev  = "skolbro_login"
	// bindingMaxAge outlives any pending login (a pending request lives
	// at most an hour).
	bindingMaxAge = 3600
	bindingRandom = 32
	bindingMAC    = 16
	// minBindingKey is the shortest binding key New accepts.
	minBindingKey = 32
)

// bindingLabel keeps the MAC's messages apart from any other use of the key.
const bindingLabel = "skolbro login binding v1\x00"

// Binding refusal reasons, logged and counted.
const (
	reasonNoBinding        = "upstream_no_binding"
	reasonBindingDuplicate = "upstream_binding_duplicate"
	reasonBindingForged    = "upstream_binding_unrecognised"
)

// binder is one organiser's (or the hub entity's) binding: its own
// cookie name and key. In a hub each organiser has its own, so that one
// organiser's key never vouches for a value at another, and logins at
// two organisers in one browser run side by side.
type binder struct {
	key  []byte
	name string
}

// bindingName is the cookie name of the binding of the entity served
// under prefix: the name a single-organiser bridge always used at the
// root, with the id appended elsewhere.
func (s *Server) bindingName(id, prefix string) string {
	name := bindingCookieDev
	if s.secureCookies {
		name = bindingCookieHost
	}
	if prefix != "" {
		name += "_" + id
	}
	return name
}

// bindingValues returns the value of every cookie of the binding's name
// the request carries, in the order sent.
func (s *Server) bindingValues(r *http.Request, b binder) []string {
	var out []string
	for _, c := range r.Cookies() {
		if c.Name == b.name {
			out = append(out, c.Value)
		}
	}
	return out
}

func (b binder) tag(random []byte) []byte {
	m := hmac.New(sha256.New, b.key)
	io.WriteString(m, bindingLabel)
	m.Write(random)
	return m.Sum(nil)[:bindingMAC]
}

// issued reports whether v is a binding value this binder issued.
func (b binder) issued(v string) bool {
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(raw) != bindingRandom+bindingMAC {
		return false
	}
	return hmac.Equal(raw[bindingRandom:], b.tag(raw[:bindingRandom]))
}

// setBinding issues a fresh binding value and sets the cookie.
// SameSite=None (with Secure) because the upstream IdP answers with a
// cross-site POST, which SameSite=Lax cookies do not follow.
func (s *Server) setBinding(w http.ResponseWriter, bd binder) (string, error) {
	b := make([]byte, bindingRandom, bindingRandom+bindingMAC)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", err
	}
	v := base64.RawURLEncoding.EncodeToString(append(b, bd.tag(b)...))
	c := &http.Cookie{Name: bd.name, Value: v, Path: "/", HttpOnly: true, MaxAge: bindingMaxAge}
	if s.secureCookies {
		c.Secure = true
		c.SameSite = http.SameSiteNoneMode
	} else {
		c.SameSite = http.SameSiteLaxMode
	}
	http.SetCookie(w, c)
	return v, nil
}

// binding returns the browser's binding for a login that starts now: the
// one it has, when that is a single value the bridge issued (so that
// logins in two tabs can run side by side), or a fresh one.
func (s *Server) binding(w http.ResponseWriter, r *http.Request, b binder) (string, error) {
	vs := s.bindingValues(r, b)
	if len(vs) == 1 && b.issued(vs[0]) {
		return vs[0], nil
	}
	if len(vs) > 0 {
		reason := "binding_unrecognised"
		if len(vs) > 1 {
			reason = "binding_duplicate"
		}
		// No values: they are the attacker's or the victim's secret.
		zerolog.Ctx(r.Context()).Warn().Str("reason", reason).Int("cookies", len(vs)).
			Msg("login binding cookie replaced")
	}
	return s.setBinding(w, b)
}

// completedBinding returns the binding the request brings to the ACS or
// the OIDC callback, or the reason to refuse it: none, more than one, or a
// value the bridge did not issue.
func (s *Server) completedBinding(r *http.Request, b binder) (string, string) {
	vs := s.bindingValues(r, b)
	switch {
	case len(vs) == 0:
		return "", reasonNoBinding
	case len(vs) > 1:
		return "", reasonBindingDuplicate
	case !b.issued(vs[0]):
		return "", reasonBindingForged
	}
	return vs[0], ""
}

// failBindingReason shows the page for a binding refused at the ACS or
// the OIDC callback.
func (s *Server) failBindingReason(w http.ResponseWriter, r *http.Request, reason string) {
	if reason == reasonNoBinding {
		s.fail(w, r, failExpired, reason, nil)
		return
	}
	s.fail(w, r, failBinding, reason, nil)
}

// rotateBinding replaces the binding after a completed login: whatever
// value the browser had before, planted or not, is worthless afterwards.
// It returns false, having shown the error page, when no value could be
// made.
func (s *Server) rotateBinding(w http.ResponseWriter, r *http.Request, b binder) bool {
	if _, err := s.setBinding(w, b); err != nil {
		s.fail(w, r, failInternal, "binding", err)
		return false
	}
	return true
}
