package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/store"
)

// CookieName is the admin session cookie. It cannot carry the __Host-
// prefix: that needs Path=/, and the cookie is kept to /admin/.
const CookieName = "skolbro_admin"

// cookieName is this admin interface's session cookie: CookieName at the
// root, with the prefix's organiser appended elsewhere, so that sessions
// of two organisers in one browser never meet.
func (a *Admin) cookieName() string {
	if a.d.Prefix == "" {
		return CookieName
	}
	return CookieName + "_" + strings.ReplaceAll(strings.TrimPrefix(a.d.Prefix, "/o/"), "/", "_")
}

// sessionKeyPrefix prefixes the store keys of sessions. The key holds a
// hash of the session id, so that whoever reads the store cannot use it.
const sessionKeyPrefix = "admin/session/"

// maxForm bounds a POSTed admin form: a number, a note and a token.
const maxForm = 16 << 10

// session is what the store holds for a logged-in admin: no personal data,
// at most an opaque subject key for the action log.
type session struct {
	Created time.Time `json:"c"`
	Seen    time.Time `json:"s"`
	CSRF    string    `json:"t"`
	Subject string    `json:"u,omitempty"`
	// Privacy is set when the admin carried the privacy entitlement at
	// login (subject access, the protection register).
	Privacy bool `json:"p,omitempty"`

	key string // the store key; not stored
}

type ctxKey struct{}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(ctxKey{}).(*session)
	return s
}

// storeKey maps a cookie value to its store key, or "" for a value that
// cannot be a session id (not worth a store round trip).
func storeKey(cookie string) string {
	b, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil || len(b) != 32 {
		return ""
	}
	h := sha256.Sum256(b)
	return sessionKeyPrefix + hex.EncodeToString(h[:])
}

func (a *Admin) random() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(a.rand, b); err != nil {
		return "", fmt.Errorf("admin: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ttl is how long the store keeps s from now: until it would expire idle,
// or its absolute end if that comes first.
func ttl(s *session, now time.Time) time.Duration {
	d := s.Seen.Add(IdleTimeout).Sub(now)
	if end := s.Created.Add(AbsoluteTimeout).Sub(now); end < d {
		d = end
	}
	return d
}

func (s *session) expired(now time.Time) bool {
	return !now.Before(s.Seen.Add(IdleTimeout)) || !now.Before(s.Created.Add(AbsoluteTimeout))
}

var errNoSession = errors.New("admin: no session")

// load returns the session the request's cookie names and is still valid,
// errNoSession when there is none, or a store error.
func (a *Admin) load(r *http.Request) (*session, error) {
	c, err := r.Cookie(a.cookieName())
	if err != nil {
		return nil, errNoSession
	}
	key := storeKey(c.Value)
	if key == "" {
		return nil, errNoSession
	}
	b, err := a.d.Store.Get(r.Context(), key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("admin: session get: %w", err)
	}
	var s session
	if json.Unmarshal(b, &s) != nil || s.CSRF == "" {
		return nil, errNoSession
	}
	s.key = key
	if now := a.now(); s.expired(now) {
		// The store's TTL runs on its own clock; the session's own times
		// decide.
		_ = a.d.Store.Delete(r.Context(), key)
		return nil, errNoSession
	}
	return &s, nil
}

// save writes s with its remaining lifetime.
func (a *Admin) save(ctx context.Context, s *session) error {
	now := a.now()
	d := ttl(s, now)
	if d < store.MinTTL {
		return errNoSession
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("admin: session encode: %w", err)
	}
	if err := a.d.Store.Put(ctx, s.key, b, d); err != nil {
		return fmt.Errorf("admin: session put: %w", err)
	}
	return nil
}

func (a *Admin) setCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     a.cookieName(),
		Value:    value,
		Path:     a.path("/admin/"),
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   a.d.SecureCookies,
		SameSite: http.SameSiteStrictMode,
	})
}

func (a *Admin) clearCookie(w http.ResponseWriter) { a.setCookie(w, "", -1) }

// forget deletes the session the request's cookie names, valid or not.
func (a *Admin) forget(r *http.Request) {
	if c, err := r.Cookie(a.cookieName()); err == nil {
		if key := storeKey(c.Value); key != "" {
			_ = a.d.Store.Delete(r.Context(), key)
		}
	}
}

// entitled reports whether id carries the admin entitlement.
func (a *Admin) entitled(id *identity.Identity) bool {
	return id != nil && slices.Contains(id.Attributes[attr.Entitlement], a.d.Entitlement)
}

// CompleteLogin finishes an admin's upstream login. An identity without
// the entitlement gets a 403 page and no session. Otherwise any session the
// browser brought is deleted and a fresh one is created (session fixation,
// SECURITY.md case 43), and the browser is sent to /admin/.
//
// The cookie is SameSite=Strict, which a browser does not send on a
// navigation that a cross-site page started, such as a redirect answering
// the IdP's POST. So a cross-site request gets a page that moves on by
// itself (meta refresh, no script) with a link, which is same-site.
func (a *Admin) CompleteLogin(w http.ResponseWriter, r *http.Request, id *identity.Identity) {
	a.headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.completeLogin(w, r, id)
	})).ServeHTTP(w, r)
}

func (a *Admin) completeLogin(w http.ResponseWriter, r *http.Request, id *identity.Identity) {
	a.forget(r)
	if !a.entitled(id) {
		a.clearCookie(w)
		a.log(r).Warn().Str("page", "login").Str("action", "login").Str("outcome", "refused").
			Str("reason", "entitlement").Msg("admin action")
		a.render(w, r, http.StatusForbidden, "message", msgForbidden.TitleSV+" / "+msgForbidden.TitleEN, nil, msgForbidden)
		return
	}
	sid, err := a.random()
	if err != nil {
		a.log(r).Error().Err(err).Msg("admin login failed")
		a.render(w, r, http.StatusInternalServerError, "message", msgInternal.TitleEN, nil, msgInternal)
		return
	}
	csrf, err := a.random()
	if err != nil {
		a.log(r).Error().Err(err).Msg("admin login failed")
		a.render(w, r, http.StatusInternalServerError, "message", msgInternal.TitleEN, nil, msgInternal)
		return
	}
	now := a.now()
	s := &session{Created: now, Seen: now, CSRF: csrf, key: storeKey(sid),
		Privacy: a.d.PrivacyEntitlement != "" && slices.Contains(id.Attributes[attr.Entitlement], a.d.PrivacyEntitlement)}
	if a.d.AdminSubject != nil {
		s.Subject = a.d.AdminSubject(id)
	}
	if err := a.save(r.Context(), s); err != nil {
		a.log(r).Error().Err(err).Msg("admin login failed")
		a.render(w, r, http.StatusServiceUnavailable, "message", msgUnavailable.TitleEN, nil, msgUnavailable)
		return
	}
	a.setCookie(w, sid, 0)
	a.action(r, s, "login", "login", "ok")
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		m := msgLoggedIn
		m.Refresh = true
		a.render(w, r, http.StatusOK, "message", m.TitleSV+" / "+m.TitleEN, nil, m)
		return
	}
	http.Redirect(w, r, a.path("/admin/"), http.StatusSeeOther)
}

// handleLogin starts an upstream login, or goes to the overview for an
// admin who is logged in already.
func (a *Admin) handleLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		a.fail(w, r, http.StatusMethodNotAllowed, msgMethod)
		return
	}
	if _, err := a.load(r); err == nil {
		http.Redirect(w, r, a.path("/admin/"), http.StatusSeeOther)
		return
	}
	a.d.StartLogin(w, r)
}

// authed wraps a page that needs a session. In order: security headers;
// the session (GET without one goes to the login, anything else is
// refused); the method; for a POST the CSRF token, before the handler sees
// anything of the request.
func (a *Admin) authed(page string, methods []string, h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return a.headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := a.load(r)
		if err != nil && !errors.Is(err, errNoSession) {
			a.log(r).Error().Err(err).Str("page", page).Msg("admin session store unavailable")
			a.fail(w, r, http.StatusServiceUnavailable, msgUnavailable)
			return
		}
		if s == nil {
			if _, err := r.Cookie(a.cookieName()); err == nil {
				a.clearCookie(w)
			}
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, a.path("/admin/login"), http.StatusSeeOther)
				return
			}
			a.action(r, nil, page, r.Method, "no_session")
			a.fail(w, r, http.StatusForbidden, msgCSRF)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, s))
		if methods != nil && !slices.Contains(methods, r.Method) &&
			!(r.Method == http.MethodHead && slices.Contains(methods, http.MethodGet)) {
			w.Header().Set("Allow", strings.Join(methods, ", "))
			a.fail(w, r, http.StatusMethodNotAllowed, msgMethod)
			return
		}
		if r.Method == http.MethodPost {
			if !a.checkCSRF(w, r, s, page) {
				return
			}
		}
		s.Seen = a.now()
		if err := a.save(r.Context(), s); err != nil {
			a.log(r).Error().Err(err).Str("page", page).Msg("admin session store unavailable")
			a.fail(w, r, http.StatusServiceUnavailable, msgUnavailable)
			return
		}
		h(w, r, s)
	}))
}

// checkCSRF parses the (bounded) form and compares its token with the
// session's in constant time. A request a browser marks as cross-site is
// refused as well: the SameSite=Strict cookie should not have been sent.
func (a *Admin) checkCSRF(w http.ResponseWriter, r *http.Request, s *session, page string) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		a.action(r, s, page, "post", "cross_site")
		a.fail(w, r, http.StatusForbidden, msgCSRF)
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			a.action(r, s, page, "post", "too_large")
			a.fail(w, r, http.StatusRequestEntityTooLarge, msgTooLarge)
			return false
		}
		a.action(r, s, page, "post", "bad_form")
		a.fail(w, r, http.StatusBadRequest, msgCSRF)
		return false
	}
	got := r.PostForm.Get("csrf")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
		a.action(r, s, page, "post", "csrf")
		a.fail(w, r, http.StatusForbidden, msgCSRF)
		return false
	}
	return true
}

// handleLogout ends the session (POST with CSRF token only).
func (a *Admin) handleLogout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := a.d.Store.Delete(r.Context(), s.key); err != nil {
		a.log(r).Error().Err(err).Msg("admin logout: session delete failed")
		a.fail(w, r, http.StatusServiceUnavailable, msgUnavailable)
		return
	}
	a.clearCookie(w)
	a.action(r, s, "logout", "logout", "ok")
	a.render(w, r, http.StatusOK, "message", msgLoggedOut.TitleSV+" / "+msgLoggedOut.TitleEN, nil, msgLoggedOut)
}
