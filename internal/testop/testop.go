// Package testop is the built-in test OpenID Provider: a school IdP that
// speaks OIDC, with a user picker instead of a password, for the demo and
// the tests. It is written on go-jose directly and implements only what the
// bridge's relying party uses: discovery, a JWKS with one ES256 key made at
// start, the authorization code flow with PKCE S256 (required, plain
// refused), client_secret_basic and client_secret_post, single-use codes of
// at most 60 seconds, the exact redirect URI, and RFC 9207's iss parameter
// on every authorization response.
//
// Its users are internal/testidp's, with the SAML-named attributes turned
// into claims (see UserClaims). SetFault and SetClaimsHook make it issue bad
// ID tokens, for the relying party's tests.
package testop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/skolbro/skolbro/internal/testidp"
)

// Claim names the OP writes besides the standard ones (sub, given_name,
// family_name, name, email).
const (
	ClaimScopedAffiliation = "eduperson_scoped_affiliation"
	ClaimPrincipalName     = "eduperson_principal_name"
	ClaimEntitlement       = "eduperson_entitlement"
	ClaimSchoolUnitCodes   = "school_unit_codes"
	ClaimSchoolGrade       = "school_grade"
	// ClaimPersonalNumber is the Swedish OIDC claim for a personal
	// identity number (id.oidc.se).
	ClaimPersonalNumber  = "https://id.oidc.se/claim/personalIdentityNumber"
	ClaimSecurityMarking = "security_marking"
)

// ACR is the acr the OP writes for a login with a password; ACROTP for a
// password and a one-time code (REFEDS MFA, as many IdPs say it).
const (
	ACR    = testidp.PasswordProtected
	ACROTP = testidp.PasswordOTP
)

// AMR values (RFC 8176) the OP writes: pwd, or pwd, otp and mfa.
var (
	amrPassword = []string{"pwd"}
	amrOTP      = []string{"pwd", "otp", "mfa"}
)

// Lifetimes.
const (
	// CodeLifetime is how long an authorization code can be redeemed.
	CodeLifetime = 60 * time.Second
	// IDTokenLifetime is the ID token's exp minus its iat.
	IDTokenLifetime = 5 * time.Minute
	// maxCodes bounds the codes held at once; the demo must not grow
	// without bound when codes are never redeemed.
	maxCodes = 10000
)

// Fault makes the OP issue a bad ID token. Faults exist for tests.
type Fault int

// Faults.
const (
	// FaultNone issues correct ID tokens.
	FaultNone Fault = iota
	// FaultWrongIssuer writes another iss.
	FaultWrongIssuer
	// FaultWrongAudience writes another aud.
	FaultWrongAudience
	// FaultWrongNonce writes another nonce.
	FaultWrongNonce
	// FaultExpired writes an exp an hour in the past.
	FaultExpired
	// FaultOtherKey signs with a key that is not in the JWKS, under the
	// published kid: the signature does not verify.
	FaultOtherKey
	// FaultUnknownKID signs with a key that is not in the JWKS, under a kid
	// that is not there either.
	FaultUnknownKID
	// FaultAlgNone issues an unsigned token with alg "none".
	FaultAlgNone
	// FaultHS256 signs with HMAC-SHA256 keyed with the client secret (which
	// must then be at least 32 bytes long, as go-jose requires).
	FaultHS256
	// FaultNoIDToken leaves the ID token out of the token response.
	FaultNoIDToken
)

// OP is the test OpenID Provider for one client. Set Now and Rand before
// serving; everything else is safe for concurrent use.
type OP struct {
	// Now is the clock; New sets time.Now.
	Now func() time.Time
	// Rand is the source of codes and access tokens; New sets crypto/rand.
	Rand io.Reader

	issuer       string
	issuerPath   string
	clientID     string
	clientSecret string
	redirectURI  string
	users        []testidp.User

	key   *ecdsa.PrivateKey
	kid   string
	other *ecdsa.PrivateKey // the key of FaultOtherKey and FaultUnknownKID

	mu       sync.Mutex
	codes    map[string]*grant
	sessions map[string]*session
	fault    Fault
	editID   func(claims map[string]any)
	// sso and ignoreFreshness: see SetSessions and SetIgnoreFreshness.
	sso, ignoreFreshness bool
	// postLogout is the registered post-logout redirect URI; logouts
	// counts the end-session requests honoured.
	postLogout string
	logouts    int
}

// SetSessions makes the authorization endpoint remember a login in a
// cookie, as a real IdP's single sign-on does: a later request is
// answered at once with the earlier auth_time, unless prompt=login or
// max_age asks for a fresher one; prompt=none is answered without a
// picker (login_required when there is no session).
func (op *OP) SetSessions(on bool) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.sso = on
}

// SetIgnoreFreshness makes it answer from the session even when
// prompt=login or max_age asks for a fresher login: a misbehaving IdP,
// for tests.
func (op *OP) SetIgnoreFreshness(on bool) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.ignoreFreshness = on
}

func (op *OP) flags() (sso, ignoreFreshness bool) {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.sso, op.ignoreFreshness
}

// session is one remembered login.
type session struct {
	user     testidp.User
	acr      string
	amr      []string
	authTime time.Time
}

// grant is what an authorization code stands for.
type grant struct {
	user        testidp.User
	clientID    string
	redirectURI string
	challenge   string
	nonce       string
	authTime    time.Time
	acr         string
	amr         []string
	expires     time.Time
}

// New returns an OP whose issuer identifier is issuer (an absolute URL
// without a trailing slash; the OP's paths are below it), for one client
// with a secret and one exact redirect URI. It generates its ES256 key.
func New(issuer string, users []testidp.User, clientID, clientSecret, redirectURI string) *OP {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("testop: generate key: " + err.Error())
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("testop: generate key: " + err.Error())
	}
	jwk := jose.JSONWebKey{Key: key.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		panic("testop: key thumbprint: " + err.Error())
	}
	path := ""
	if u, err := url.Parse(issuer); err == nil {
		path = strings.TrimSuffix(u.Path, "/")
	}
	return &OP{
		Now:          time.Now,
		Rand:         rand.Reader,
		issuer:       issuer,
		issuerPath:   path,
		clientID:     clientID,
		clientSecret: clientSecret,
		redirectURI:  redirectURI,
		users:        append([]testidp.User(nil), users...),
		key:          key,
		kid:          base64.RawURLEncoding.EncodeToString(tp[:16]),
		other:        other,
		codes:        make(map[string]*grant),
	}
}

// Issuer returns the issuer identifier.
func (op *OP) Issuer() string { return op.issuer }

// KeyID returns the kid of the OP's signing key.
func (op *OP) KeyID() string { return op.kid }

// SetFault makes every following ID token bad in the way f says.
func (op *OP) SetFault(f Fault) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.fault = f
}

// SetClaimsHook makes the OP call edit on the claims of every following
// ID token before signing it; nil removes the hook.
func (op *OP) SetClaimsHook(edit func(claims map[string]any)) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.editID = edit
}

// user returns the user with login name login.
func (op *OP) user(login string) (testidp.User, bool) {
	for _, u := range op.users {
		if u.Login == login {
			return u, true
		}
	}
	return testidp.User{}, false
}

// UserClaims returns the claims an ID token carries about u: sub (the
// NameID), given_name, family_name, name, email, eduperson_principal_name,
// school_grade, the personal number and security_marking as strings, and
// eduperson_scoped_affiliation, eduperson_entitlement and school_unit_codes
// as arrays. Attributes the user lacks are left out.
func UserClaims(u testidp.User) map[string]any {
	c := map[string]any{"sub": u.NameID}
	single := map[string]string{
		testidp.AttrGivenName:       "given_name",
		testidp.AttrSurname:         "family_name",
		testidp.AttrDisplayName:     "name",
		testidp.AttrMail:            "email",
		testidp.AttrEPPN:            ClaimPrincipalName,
		testidp.AttrSchoolGrade:     ClaimSchoolGrade,
		testidp.AttrPersonalNumber:  ClaimPersonalNumber,
		testidp.AttrSecurityMarking: ClaimSecurityMarking,
	}
	multi := map[string]string{
		testidp.AttrScopedAffiliation: ClaimScopedAffiliation,
		testidp.AttrEntitlement:       ClaimEntitlement,
		testidp.AttrSchoolUnitCode:    ClaimSchoolUnitCodes,
	}
	for attrName, claim := range single {
		if v := u.Attributes[attrName]; len(v) > 0 {
			c[claim] = v[0]
		}
	}
	for attrName, claim := range multi {
		if v := u.Attributes[attrName]; len(v) > 0 {
			c[claim] = append([]string(nil), v...)
		}
	}
	return c
}

// idToken makes the signed ID token for g, applying the fault and hook.
func (op *OP) idToken(g *grant, now time.Time) (string, bool, error) {
	op.mu.Lock()
	fault, edit := op.fault, op.editID
	op.mu.Unlock()
	if fault == FaultNoIDToken {
		return "", false, nil
	}

	c := UserClaims(g.user)
	c["iss"] = op.issuer
	c["aud"] = g.clientID
	c["iat"] = now.Unix()
	c["exp"] = now.Add(IDTokenLifetime).Unix()
	c["auth_time"] = g.authTime.Unix()
	c["acr"] = g.acr
	c["amr"] = g.amr
	if g.nonce != "" {
		c["nonce"] = g.nonce
	}
	switch fault {
	case FaultWrongIssuer:
		c["iss"] = op.issuer + "/other"
	case FaultWrongAudience:
		c["aud"] = "another-client"
	case FaultWrongNonce:
		c["nonce"] = "not-the-nonce-of-this-request"
	case FaultExpired:
		c["iat"] = now.Add(-time.Hour - IDTokenLifetime).Unix()
		c["exp"] = now.Add(-time.Hour).Unix()
	}
	if edit != nil {
		edit(c)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", false, fmt.Errorf("testop: claims: %w", err)
	}

	var sk jose.SigningKey
	switch fault {
	case FaultAlgNone:
		return unsigned(payload), true, nil
	case FaultHS256:
		sk = jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: []byte(op.clientSecret), KeyID: op.kid}}
	case FaultOtherKey:
		sk = jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: op.other, KeyID: op.kid}}
	case FaultUnknownKID:
		sk = jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: op.other, KeyID: op.kid + "-unknown"}}
	default:
		sk = jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: op.key, KeyID: op.kid}}
	}
	signer, err := jose.NewSigner(sk, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", false, fmt.Errorf("testop: signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", false, fmt.Errorf("testop: sign: %w", err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		return "", false, fmt.Errorf("testop: serialize: %w", err)
	}
	return s, true, nil
}

// unsigned returns a JWT with alg "none" and an empty signature: go-jose
// refuses to make one, which is the point of the fault.
func unsigned(payload []byte) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + "."
}

// jwks returns the public JSON Web Key Set.
func (op *OP) jwks() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key:       op.key.Public(),
		KeyID:     op.kid,
		Algorithm: string(jose.ES256),
		Use:       "sig",
	}}}
}

// discovery returns the OpenID Provider Metadata.
func (op *OP) discovery() map[string]any {
	base := strings.TrimSuffix(op.issuer, "/")
	return map[string]any{
		"issuer":                                op.issuer,
		"authorization_endpoint":                base + "/authorize",
		"token_endpoint":                        base + "/token",
		"jwks_uri":                              base + "/jwks",
		"end_session_endpoint":                  base + "/logout",
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 []string{"authorization_code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{string(jose.ES256)},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":      []string{"S256"},
		"scopes_supported":                      []string{"openid", "profile", "email"},
		"claims_supported": []string{
			"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr",
			"given_name", "family_name", "name", "email",
			ClaimScopedAffiliation, ClaimPrincipalName, ClaimEntitlement,
			ClaimSchoolUnitCodes, ClaimSchoolGrade, ClaimPersonalNumber, ClaimSecurityMarking,
		},
		"authorization_response_iss_parameter_supported": true,
		"acr_values_supported":                           []string{ACR, ACROTP},
	}
}

// newCode stores g under a fresh code and returns the code.
func (op *OP) newCode(g *grant, now time.Time) (string, error) {
	code, err := op.random()
	if err != nil {
		return "", err
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	maps.DeleteFunc(op.codes, func(_ string, old *grant) bool { return !now.Before(old.expires) })
	if len(op.codes) >= maxCodes {
		return "", errTooManyCodes
	}
	op.codes[code] = g
	return code, nil
}

var errTooManyCodes = errors.New("testop: too many pending codes")

// takeCode redeems code: it is gone after the first presentation, whatever
// the outcome of the request.
func (op *OP) takeCode(code string) (*grant, bool) {
	op.mu.Lock()
	defer op.mu.Unlock()
	g, ok := op.codes[code]
	delete(op.codes, code)
	return g, ok
}

// random returns 32 random bytes in base64url.
func (op *OP) random() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(op.Rand, b); err != nil {
		return "", fmt.Errorf("testop: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
