package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/slo"
	"github.com/skolbro/skolbro/internal/store"
)

// Single Logout (issue 14). At every completed login the bridge records,
// per organiser and per browser, which vendors the browser logged in to
// and what each was given to name the session by (package slo, sealed
// under a token only the browser's cookie holds). A logout started by a
// vendor, by the school IdP, by an OIDC vendor's end-session request or
// by the person on the logout page ends every other vendor's session that
// can be ended, then the school IdP's, then answers whoever asked.

// Defaults of LogoutOptions.
const (
	DefaultLogoutSessionTTL = 12 * time.Hour
	DefaultLogoutVendorWait = 5 * time.Second
	// logoutOpTTL bounds one logout from start to answer.
	logoutOpTTL = 15 * time.Minute
)

// Store key prefixes of logout records that are not sealed: they hold
// only message ids, handles and outcomes.
const (
	prefixLogoutSeen     = "slo:seen:" // hash of issuer and message ID: replay cache
	prefixLogoutRequest  = "slo:rq:"   // vendor LogoutRequest ID -> which logout and vendor
	prefixLogoutAnswer   = "slo:ans:"  // logout handle and vendor index -> outcome
	prefixUpstreamLogout = "slo:uprq:" // upstream LogoutRequest ID or end-session state -> logout handle
)

// LogoutOptions configure an organiser's Single Logout.
type LogoutOptions struct {
	// SessionTTL is how long a browser's logins are remembered for
	// logout: the longest session a vendor or the school IdP keeps.
	SessionTTL time.Duration
	// VendorWait bounds how long the logout waits for one vendor's
	// answer; a vendor that does not answer in time does not hold up the
	// others, and the logout is reported partial.
	VendorWait time.Duration
}

func (o LogoutOptions) sessionTTL() time.Duration {
	if o.SessionTTL > 0 {
		return o.SessionTTL
	}
	return DefaultLogoutSessionTTL
}

func (o LogoutOptions) vendorWait() time.Duration {
	if o.VendorWait > 0 {
		return o.VendorWait
	}
	return DefaultLogoutVendorWait
}

// Cookie names. Over https they carry the __Host- prefix: Secure, Path=/
// and no Domain, so no other host can set or read them.
const (
	sessionCookieBase = "skolbro_sess"
	logoutCookieBase  = "skolbro_slo"
)

func (s *Server) cookieName(org *Organiser, base string) string {
	name := base
	if org.Prefix != "" {
		name += "_" + org.ID
	}
	if s.secureCookies {
		name = "__Host-" + name
	}
	return name
}

// setLogoutCookie sets (or, with maxAge < 0, clears) one of the logout
// cookies. SameSite=None over https, as the binding cookie: a school IdP
// or a vendor sends its logout message as a cross-site POST, which
// SameSite=Lax cookies do not follow. Lax on plain http (dev), where
// browsers refuse None without Secure.
func (s *Server) setLogoutCookie(w http.ResponseWriter, name, value string, maxAge int) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, MaxAge: maxAge}
	if s.secureCookies {
		c.Secure = true
		c.SameSite = http.SameSiteNoneMode
	} else {
		c.SameSite = http.SameSiteLaxMode
	}
	http.SetCookie(w, c)
}

// token returns the browser's token from cookie name, if it has one of the
// right shape.
func token(r *http.Request, name string) (string, bool) {
	c, err := r.Cookie(name)
	if err != nil || !slo.ValidToken(c.Value) {
		return "", false
	}
	return c.Value, true
}

func sessions(org *Organiser) slo.Sealed {
	return slo.Sealed{Store: org.Store, Prefix: slo.PrefixSession}
}

func logoutOps(org *Organiser) slo.Sealed {
	return slo.Sealed{Store: org.Store, Prefix: slo.PrefixOp}
}

type upstreamSessionKey struct{}

// withUpstreamSession hands the school IdP's session (its NameID and
// SessionIndex, or sid) from the ACS or callback to finish, which records
// it when the login completes.
func withUpstreamSession(r *http.Request, u *slo.Upstream) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), upstreamSessionKey{}, u))
}

func upstreamSession(r *http.Request) *slo.Upstream {
	u, _ := r.Context().Value(upstreamSessionKey{}).(*slo.Upstream)
	return u
}

// rememberLogin adds a completed login at a vendor to the browser's
// logout record and gives the browser a fresh token for it: a token
// planted before the login (session fixation, case 43) never names the
// record afterwards. A record of another person, or of another school
// IdP, is not continued: the new login starts a record of its own. It
// reports false, after showing the error page, when the store cannot
// record it: the vendor then receives nothing, since it could not be
// logged out later.
func (s *Server) rememberLogin(w http.ResponseWriter, r *http.Request, org *Organiser, p slo.Participant) bool {
	ctx := r.Context()
	up := upstreamSession(r)
	name := s.cookieName(org, sessionCookieBase)
	var sess slo.Session
	old, hadOld := token(r, name)
	if hadOld {
		switch err := sessions(org).Get(ctx, old, &sess); {
		case err == nil && sess.SameUpstream(up):
		case err == nil, errors.Is(err, store.ErrNotFound), errors.Is(err, slo.ErrSealed):
			sess = slo.Session{}
		default:
			s.fail(w, r, failUnavailable, "store_unavailable", err)
			return false
		}
	}
	if sess.Upstream == nil {
		sess = slo.Session{Started: s.now()}
	}
	// The school IdP's latest session is the one to end: it may have
	// asked the person again (ForceAuthn, an expired session).
	sess.Upstream = up
	sess.Add(p)
	tok, err := slo.NewToken(s.rand)
	if err != nil {
		s.fail(w, r, failInternal, "random", err)
		return false
	}
	ttl := org.Logout.sessionTTL()
	if err := sessions(org).Put(ctx, tok, &sess, ttl); err != nil {
		s.fail(w, r, failUnavailable, "store_unavailable", err)
		return false
	}
	if hadOld {
		_ = sessions(org).Delete(ctx, old)
	}
	s.setLogoutCookie(w, name, tok, int(ttl/time.Second))
	zerolog.Ctx(ctx).Debug().Str("vendor", p.Vendor).Int("vendors_in_session", len(sess.Vendors)).Msg("logout session recorded")
	return true
}

// seenLogout records a logout message's ID from issuer, and reports
// false when it was seen before (a replay, case 50). The ID is kept a
// little longer than a message stays acceptable.
func seenLogout(ctx context.Context, org *Organiser, issuer, id string, keep time.Duration) (bool, error) {
	h := sha256.Sum256([]byte(issuer + "\x00" + id))
	err := org.Store.Add(ctx, prefixLogoutSeen+hex.EncodeToString(h[:]), []byte{1}, keep)
	if errors.Is(err, store.ErrExists) {
		return false, nil
	}
	return err == nil, err
}
