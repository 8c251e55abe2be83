package oidcop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/go-jose/go-jose/v4/jwt"
)

// PathEndSession is the end_session_endpoint (OpenID Connect RP-Initiated
// Logout 1.0), served by the bridge's logout flow, which calls
// ParseEndSession.
const PathEndSession = "/oidc/logout"

// BackchannelEvent is the event a logout token carries (OpenID Connect
// Back-Channel Logout 1.0, section 2.4).
const BackchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// Bounds of logout.
const (
	// logoutTokenTTL is a logout token's lifetime: it is used at once.
	logoutTokenTTL = 2 * time.Minute
	maxEndSession  = 16 << 10
	maxHintLen     = 8 << 10
)

// EndSession is a validated RP-initiated logout request.
type EndSession struct {
	// ClientID, Sub and SID come from the id_token_hint: the vendor, and
	// the session it asks to end. All are "" without a hint.
	ClientID string
	Sub      string
	SID      string
	// PostLogoutRedirect is a redirect URI registered for the client,
	// exactly as registered, or "".
	PostLogoutRedirect string
	State              string
}

// ParseEndSession validates a GET or POST to the end_session_endpoint.
// The id_token_hint must be an ID token the provider signed (its expiry
// is not checked: a vendor logs out after its token expired); a client_id
// must be its audience; a post_logout_redirect_uri must be exactly one the
// client registered, or the request is refused (SECURITY.md case 50).
// Every error has Redirect "": the caller shows an error page and never
// redirects.
func (p *Provider) ParseEndSession(r *http.Request) (*EndSession, *Error) {
	var params url.Values
	switch r.Method {
	case http.MethodGet:
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, pageError(http.StatusBadRequest, CodeInvalidRequest, "malformed query")
		}
		params = q
	case http.MethodPost:
		r.Body = http.MaxBytesReader(nil, r.Body, maxEndSession)
		if err := r.ParseForm(); err != nil {
			return nil, pageError(http.StatusBadRequest, CodeInvalidRequest, "malformed form")
		}
		params = r.PostForm
	default:
		return nil, pageError(http.StatusMethodNotAllowed, CodeInvalidRequest, "use GET or POST")
	}
	for _, name := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state", "logout_hint", "ui_locales"} {
		if len(params[name]) > 1 {
			return nil, pageError(http.StatusBadRequest, CodeInvalidRequest, "a parameter is repeated")
		}
	}
	es := &EndSession{State: params.Get("state")}
	if len(es.State) > maxStateLen {
		return nil, pageError(http.StatusBadRequest, CodeInvalidRequest, "state is too long")
	}
	clientID := params.Get("client_id")
	if hint := params.Get("id_token_hint"); hint != "" {
		aud, sub, sid, err := p.verifyHint(hint)
		if err != nil {
			return nil, pageError(http.StatusBadRequest, CodeInvalidRequest, "id_token_hint is not an ID token of this provider")
		}
		if clientID != "" && clientID != aud {
			return nil, pageError(http.StatusBadRequest, CodeInvalidRequest, "client_id is not the id_token_hint's audience")
		}
		clientID, es.Sub, es.SID = aud, sub, sid
		es.ClientID = aud
	}
	if uri := params.Get("post_logout_redirect_uri"); uri != "" {
		c := p.Clients[clientID]
		if c == nil || !c.postLogoutRegistered(uri) {
			return nil, pageError(http.StatusBadRequest, CodeInvalidRequest, "post_logout_redirect_uri is not registered for this client")
		}
		es.PostLogoutRedirect = uri
	}
	return es, nil
}

// verifyHint checks an id_token_hint: signed by one of the provider's
// published keys with an algorithm it signs with, issued by it, for one
// registered client. It returns the audience, sub and sid.
func (p *Provider) verifyHint(hint string) (aud, sub, sid string, err error) {
	if len(hint) > maxHintLen {
		return "", "", "", errors.New("hint too long")
	}
	tok, err := jwt.ParseSigned(hint, idTokenAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return "", "", "", errors.New("not a signed JWT")
	}
	set := p.Keys.JWKS(p.now())
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 || keys[0].Algorithm != tok.Headers[0].Algorithm {
		return "", "", "", errors.New("unknown key")
	}
	var claims struct {
		jwt.Claims
		SID string `json:"sid"`
	}
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		return "", "", "", errors.New("bad signature")
	}
	if claims.Issuer != p.Issuer || len(claims.Audience) != 1 || p.Clients[claims.Audience[0]] == nil || claims.Subject == "" {
		return "", "", "", errors.New("not for a registered client of this issuer")
	}
	return claims.Audience[0], claims.Subject, claims.SID, nil
}

// PostLogoutURL is where the browser goes after an RP-initiated logout:
// the registered URI with the request's state.
func (p *Provider) PostLogoutURL(uri, state string) string {
	if state == "" {
		return uri
	}
	return addQuery(uri, url.Values{"state": {state}})
}

// FrontchannelURL is the client's front-channel logout URI with iss and
// sid (Front-Channel Logout 1.0, section 2), for a frame.
func (p *Provider) FrontchannelURL(c *Client, sid string) string {
	return addQuery(c.FrontchannelLogoutURI, url.Values{"iss": {p.Issuer}, "sid": {sid}})
}

// BackchannelLogout posts a signed logout token for the session (sub,
// sid) to the client's back-channel logout URI and reports whether the
// client confirmed (200 or 204). ctx bounds the call.
func (p *Provider) BackchannelLogout(ctx context.Context, c *Client, sub, sid string) error {
	if c.BackchannelLogoutURI == "" {
		return errors.New("oidcop: client has no back-channel logout URI")
	}
	token, err := p.logoutToken(c, sub, sid)
	if err != nil {
		return err
	}
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("oidcop: back-channel logout: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	client := p.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	// The URI is from the vendor's reviewed policy; a redirect from it is
	// not followed.
	cc := *client
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := cc.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return errors.New("oidcop: back-channel logout: no answer in time")
		}
		return errors.New("oidcop: back-channel logout: unreachable")
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("oidcop: back-channel logout: status %d", resp.StatusCode)
	}
	return nil
}

// logoutToken makes the logout token (Back-Channel Logout 1.0, 2.4): iss,
// aud, iat, exp, jti, events, sub and sid; never a nonce; typ logout+jwt.
func (p *Provider) logoutToken(c *Client, sub, sid string) (string, error) {
	now := p.now()
	key, err := p.Keys.signer(c.IDTokenAlg, now)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: key.spec.Alg,
		Key:       jose.JSONWebKey{Key: cryptosigner.Opaque(key.spec.Signer), KeyID: key.spec.KID},
	}, (&jose.SignerOptions{}).WithType("logout+jwt"))
	if err != nil {
		return "", fmt.Errorf("oidcop: logout token signer: %w", err)
	}
	jti, err := p.newSecret()
	if err != nil {
		return "", err
	}
	claims := map[string]any{
		"iss":    p.Issuer,
		"aud":    c.ID,
		"iat":    now.Unix(),
		"exp":    now.Add(logoutTokenTTL).Unix(),
		"jti":    jti,
		"events": map[string]any{BackchannelEvent: map[string]any{}},
	}
	if sub != "" {
		claims["sub"] = sub
	}
	if sid != "" {
		claims["sid"] = sid
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("oidcop: sign logout token: %w", err)
	}
	return s, nil
}

// postLogoutRegistered reports whether uri is exactly one of the client's
// post-logout redirect URIs.
func (c *Client) postLogoutRegistered(uri string) bool {
	for _, r := range c.PostLogoutRedirectURIs {
		if r == uri {
			return true
		}
	}
	return false
}

// NewSID returns a fresh sid: an opaque value per vendor and session, so
// that two vendors cannot join their users by it.
func (p *Provider) NewSID() (string, error) {
	s, err := p.newSecret()
	if err != nil {
		return "", err
	}
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:16]), nil
}

// logoutDiscovery is what discovery says about logout.
type logoutDiscovery struct {
	EndSessionEndpoint                 string `json:"end_session_endpoint"`
	FrontchannelLogoutSupported        bool   `json:"frontchannel_logout_supported"`
	FrontchannelLogoutSessionSupported bool   `json:"frontchannel_logout_session_supported"`
	BackchannelLogoutSupported         bool   `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported  bool   `json:"backchannel_logout_session_supported"`
}

func (p *Provider) logoutDiscovery() logoutDiscovery {
	return logoutDiscovery{
		EndSessionEndpoint:                 p.endpoint(PathEndSession),
		FrontchannelLogoutSupported:        true,
		FrontchannelLogoutSessionSupported: true,
		BackchannelLogoutSupported:         true,
		BackchannelLogoutSessionSupported:  true,
	}
}
