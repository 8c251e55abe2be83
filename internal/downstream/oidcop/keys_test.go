package oidcop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"
)

func TestCase32_KeyRotation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	t0 := f.clock.Now()
	switchAt := t0.Add(24 * time.Hour)
	retireAt := t0.Add(48 * time.Hour)
	keys, err := NewKeySet([]KeySpec{
		{KID: "old", Signer: testKey("op-ec"), Alg: jose.ES256, UseFrom: t0.Add(-time.Hour), RetireAt: retireAt},
		{KID: "next", Signer: testKey("op-ec-next"), Alg: jose.ES256, UseFrom: switchAt},
		{KID: "rsa", Signer: testKey("op-rsa"), Alg: jose.RS256, UseFrom: t0.Add(-time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.p.Keys = keys
	if err := f.p.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	// Before the switch: the next key is published but not used.
	if got := jwksKIDs(t, f); !cmp.Equal(got, []string{"next", "old", "rsa"}, sortStrings) {
		t.Errorf("JWKS before the switch: %v, want old, next and rsa", got)
	}
	oldToken := f.idToken(jwtClientID, jwtRedirect)
	if kid := tokenKID(t, oldToken); kid != "old" {
		t.Fatalf("token before the switch signed by %q, want old", kid)
	}

	// After the switch: new tokens use the next key, the old key is still
	// published, and a token it signed still verifies against the JWKS
	// served now (a relying party that refetches finds it).
	f.clock.Advance(24*time.Hour + time.Second)
	newToken := f.idToken(jwtClientID, jwtRedirect)
	if kid := tokenKID(t, newToken); kid != "next" {
		t.Errorf("token after the switch signed by %q, want next", kid)
	}
	served := servedJWKS(t, f)
	for name, tok := range map[string]string{"old token": oldToken, "new token": newToken} {
		if err := verifyWith(tok, served); err != nil {
			t.Errorf("%s does not verify against the JWKS after the switch: %v", name, err)
		}
	}

	// After RetireAt the old key is gone.
	f.clock.Advance(24 * time.Hour)
	if got := jwksKIDs(t, f); !cmp.Equal(got, []string{"next", "rsa"}, sortStrings) {
		t.Errorf("JWKS after retirement: %v, want next and rsa", got)
	}
	if err := verifyWith(oldToken, servedJWKS(t, f)); err == nil {
		t.Error("the retired key still verifies")
	}
}

func TestKeySetSigningChoice(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	keys, err := NewKeySet([]KeySpec{
		{KID: "a", Signer: testKey("op-ec"), Alg: jose.ES256, UseFrom: t0, RetireAt: t0.Add(72 * time.Hour)},
		{KID: "c", Signer: testKey("op-ec-next"), Alg: jose.ES256, UseFrom: t0.Add(48 * time.Hour)},
		{KID: "b", Signer: testKey("client-ec"), Alg: jose.ES256, UseFrom: t0.Add(24 * time.Hour), RetireAt: t0.Add(96 * time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at      time.Duration
		wantKID string
	}{
		{-time.Second, ""},
		{0, "a"},
		{24*time.Hour - time.Second, "a"},
		{24 * time.Hour, "b"},
		{48 * time.Hour, "c"},
		{100 * time.Hour, "c"},
	}
	for _, tt := range tests {
		kid, err := keys.SigningKID(jose.ES256, t0.Add(tt.at))
		if tt.wantKID == "" {
			if err == nil {
				t.Errorf("at %s: signs with %q before any key is in use", tt.at, kid)
			}
			continue
		}
		if kid != tt.wantKID {
			t.Errorf("at %s: kid %q, want %q (err %v)", tt.at, kid, tt.wantKID, err)
		}
	}
	if _, err := keys.SigningKID(jose.RS256, t0); err == nil {
		t.Error("an RS256 key was found in an ES256-only set")
	}
	// Every key, even one not yet in use, is published until retired.
	if got := kidsOf(keys.JWKS(t0.Add(-time.Hour))); !cmp.Equal(got, []string{"a", "b", "c"}, sortStrings) {
		t.Errorf("JWKS before any use: %v", got)
	}
	if got := kidsOf(keys.JWKS(t0.Add(72 * time.Hour))); !cmp.Equal(got, []string{"b", "c"}, sortStrings) {
		t.Errorf("JWKS at a's RetireAt: %v", got)
	}
	for _, k := range keys.JWKS(t0).Keys {
		if !k.IsPublic() || k.Use != "sig" || k.Algorithm != "ES256" {
			t.Errorf("published key %q: public %v use %q alg %q", k.KeyID, k.IsPublic(), k.Use, k.Algorithm)
		}
	}
}

func TestNewKeySetRefuses(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		specs []KeySpec
	}{
		{"none", nil},
		{"no kid", []KeySpec{{Signer: testKey("op-ec"), Alg: jose.ES256}}},
		{"duplicate kid", []KeySpec{{KID: "a", Signer: testKey("op-ec"), Alg: jose.ES256}, {KID: "a", Signer: testKey("op-ec-next"), Alg: jose.ES256}}},
		{"no signer", []KeySpec{{KID: "a", Alg: jose.ES256}}},
		{"EC key as RS256", []KeySpec{{KID: "a", Signer: testKey("op-ec"), Alg: jose.RS256}}},
		{"RSA key as ES256", []KeySpec{{KID: "a", Signer: testKey("op-rsa"), Alg: jose.ES256}}},
		{"RSA key as PS256", []KeySpec{{KID: "a", Signer: testKey("op-rsa"), Alg: jose.PS256}}},
		{"HS256", []KeySpec{{KID: "a", Signer: testKey("op-rsa"), Alg: jose.HS256}}},
		{"P-384 key", []KeySpec{{KID: "a", Signer: p384, Alg: jose.ES256}}},
		{"1024-bit RSA", []KeySpec{{KID: "a", Signer: small, Alg: jose.RS256}}},
		{"retired before use", []KeySpec{{KID: "a", Signer: testKey("op-ec"), Alg: jose.ES256, UseFrom: t0, RetireAt: t0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewKeySet(tt.specs); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// A key must stay published until the tokens it signed have expired.
func TestValidateKeyRetirement(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		retire  time.Duration // after t0; the next key starts at t0+24h
		next    bool
		wantErr bool
	}{
		{"retired a token lifetime after the switch", 24*time.Hour + DefaultTokenTTL, true, false},
		{"retired before its tokens expire", 24*time.Hour + DefaultTokenTTL - time.Second, true, true},
		{"retired with no successor", 48 * time.Hour, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs := []KeySpec{{KID: "old", Signer: testKey("op-ec"), Alg: jose.ES256, UseFrom: t0, RetireAt: t0.Add(tt.retire)}}
			if tt.next {
				specs = append(specs, KeySpec{KID: "next", Signer: testKey("op-ec-next"), Alg: jose.ES256, UseFrom: t0.Add(24 * time.Hour)})
			}
			keys, err := NewKeySet(specs)
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(t)
			f.p.Keys = keys
			f.p.Clients[basicClient].IDTokenAlg = jose.ES256
			err = f.p.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate: %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// idToken runs a whole flow for client and returns the ID token.
func (f *fixture) idToken(client, redirect string) string {
	f.t.Helper()
	code := f.code(client, redirect)
	var w = f.postToken(f.jwtTokenForm(code), "", "")
	if client == basicClient {
		w = f.postToken(basicTokenForm(code), basicClient, basicSecret)
	}
	tr, e := decodeTokenResponse(f.t, w)
	if e != "" {
		f.t.Fatalf("token: %s", e)
	}
	return tr.IDToken
}

func servedJWKS(t *testing.T, f *fixture) jose.JSONWebKeySet {
	t.Helper()
	w := f.do(httptestGet(testIssuer + PathJWKS))
	if w.Code != http.StatusOK {
		t.Fatalf("JWKS status %d", w.Code)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Fatalf("JWKS serves a non-public key %q", k.KeyID)
		}
	}
	return set
}

func jwksKIDs(t *testing.T, f *fixture) []string { return kidsOf(servedJWKS(t, f)) }

func kidsOf(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func tokenKID(t *testing.T, raw string) string {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Headers[0].KeyID
}

// verifyWith verifies raw with the key its kid names in set, as a relying
// party does.
func verifyWith(raw string, set jose.JSONWebKeySet) error {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return err
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		return errUnknownKID
	}
	var c jwt.Claims
	return tok.Claims(keys[0].Key, &c)
}

var errUnknownKID = errors.New("kid not in the JWKS")
