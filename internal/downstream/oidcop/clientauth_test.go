package oidcop

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestCase31_ClientAssertion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ec := testKey("client-ec")
	pubDER, err := x509.MarshalPKIXPublicKey(ec.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	now := f.clock.Now()

	reused := f.assertion(ec, "a-ec", jose.ES256, nil)
	if _, e := decodeTokenResponse(t, f.postToken(withAssertion(f.jwtTokenForm(f.code(jwtClientID, jwtRedirect)), reused), "", "")); e != "" {
		t.Fatalf("first use of the assertion: %q", e)
	}

	tests := []struct {
		name      string
		assertion func() string
		form      func(url.Values)
		wantErr   string
	}{
		{"valid ES256 (control)", func() string { return f.assertion(ec, "a-ec", jose.ES256, nil) }, nil, ""},
		{"valid RS256 (control)", func() string { return f.assertion(testKey("client-rsa"), "a-rsa", jose.RS256, nil) }, nil, ""},
		{"valid PS256 (control)", func() string { return f.assertion(testKey("client-rsa"), "a-rsa", jose.PS256, nil) }, nil, ""},
		{"aud is the issuer (control)", func() string {
			return f.assertion(ec, "a-ec", jose.ES256, func(c map[string]any) { c["aud"] = testIssuer })
		}, nil, ""},
		{"alg none", func() string { return unsignedJWT(t, "a-ec", assertionClaimsAt(now)) }, nil, CodeInvalidClient},
		{"HS256 keyed with the client's public key PEM", func() string {
			return signJWT(t, jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: pubPEM, KeyID: "a-ec"}}, assertionClaimsAt(now))
		}, nil, CodeInvalidClient},
		{"HS256 keyed with the client's public key DER", func() string {
			return signJWT(t, jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: pubDER, KeyID: "a-ec"}}, assertionClaimsAt(now))
		}, nil, CodeInvalidClient},
		{"wrong aud", func() string {
			return f.assertion(ec, "a-ec", jose.ES256, func(c map[string]any) { c["aud"] = "https://other.example/token" })
		}, nil, CodeInvalidClient},
		{"aud with an extra value", func() string {
			return f.assertion(ec, "a-ec", jose.ES256, func(c map[string]any) { c["aud"] = []string{testIssuer + PathToken, "https://other.example"} })
		}, nil, CodeInvalidClient},
		{"no aud", func() string { return f.assertion(ec, "a-ec", jose.ES256, func(c map[string]any) { delete(c, "aud") }) }, nil, CodeInvalidClient},
		{"reused jti", func() string { return reused }, nil, CodeInvalidClient},
		{"expired", func() string {
			return f.assertion(ec, "a-ec", jose.ES256, func(c map[string]any) { c["exp"] = now.Add(-time.Second).Unix() })
		}, nil, CodeInvalidClient},
		{"expires now", func() string {
			return f.assertion(ec, "a-ec", jose.ES256, func(c map[string]any) { c["exp"] = now.Unix() })
		}, nil, CodeInvalidClient},
		{"no exp", func() string { return f.assertion(ec, "a-ec", jose.ES256, func(c map[string]any) { delete(c, "exp") }) }, nil, CodeInvalidClient},
		{"lifetime too long", func() string {
			return f.assertion(ec, "a-ec", jose.ES256, func(c map[string]any) { c["exp"] = now.Add(time.Hour).Unix() })
		}, nil, CodeInvalidClient},
		{"iat in the future", func() string {
			return f.assertion(ec, "a-ec", jose.ES256, func(c map[string]any) { c["iat"] = now.Add(10 * time.Minute).Unix() })
		}, nil, CodeInvalidClient},
		{"iat long ago", func() string {
			return f.assertion(ec, "a-ec", jose.ES256, func(c map[string]any) { c["iat"] = now.Add(-time.Hour).Unix() })
		}, nil, CodeInvalidClient},
		{"nbf in the future", func() string {
			return f.assertion(ec, "a-ec", jose.ES256, func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() })
		}, nil, CodeInvalidClient},
		{"no jti", func() string { return f.assertion(ec, "a-ec", jose.ES256, func(c map[string]any) { delete(c, "jti") }) }, nil, CodeInvalidClient},
		{"unknown kid", func() string { return f.assertion(ec, "a-ec-2", jose.ES256, nil) }, nil, CodeInvalidClient},
		{"no kid", func() string { return f.assertion(ec, "", jose.ES256, nil) }, nil, CodeInvalidClient},
		{"signed by another key under the client's kid", func() string {
			return f.assertion(testKey("client-ec-other"), "a-ec", jose.ES256, nil)
		}, nil, CodeInvalidClient},
		{"signed by the provider's own key", func() string { return f.assertion(testKey("op-ec"), "a-ec", jose.ES256, nil) }, nil, CodeInvalidClient},
		{"RSA key named for an EC kid", func() string { return f.assertion(testKey("client-rsa"), "a-ec", jose.RS256, nil) }, nil, CodeInvalidClient},
		{"iss is another client", func() string {
			return f.assertion(ec, "a-ec", jose.ES256, func(c map[string]any) { c["iss"] = basicClient; c["sub"] = basicClient })
		}, nil, CodeInvalidClient},
		{"sub differs from iss", func() string {
			return f.assertion(ec, "a-ec", jose.ES256, func(c map[string]any) { c["sub"] = "someone" })
		}, nil, CodeInvalidClient},
		{"client_id differs", func() string { return f.assertion(ec, "a-ec", jose.ES256, nil) },
			func(v url.Values) { v.Set("client_id", basicClient) }, CodeInvalidClient},
		{"wrong assertion type", func() string { return f.assertion(ec, "a-ec", jose.ES256, nil) },
			func(v url.Values) {
				v.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
			}, CodeInvalidClient},
		{"not a JWT", func() string { return "not-a-jwt" }, nil, CodeInvalidClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := withAssertion(f.jwtTokenForm(f.code(jwtClientID, jwtRedirect)), tt.assertion())
			if tt.form != nil {
				tt.form(form)
			}
			w := f.postToken(form, "", "")
			_, e := decodeTokenResponse(t, w)
			if e != tt.wantErr {
				t.Fatalf("error = %q, want %q", e, tt.wantErr)
			}
			if e == CodeInvalidClient && w.Code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", w.Code)
			}
		})
	}

	t.Run("assertion for a client_secret_basic client", func(t *testing.T) {
		form := basicTokenForm(f.code(basicClient, basicRedir))
		form.Set("client_assertion_type", JWTBearerAssertion)
		form.Set("client_assertion", f.assertion(ec, "a-ec", jose.ES256, func(c map[string]any) {
			c["iss"] = basicClient
			c["sub"] = basicClient
		}))
		if _, e := decodeTokenResponse(t, f.postToken(form, "", "")); e != CodeInvalidClient {
			t.Errorf("error = %q, want invalid_client", e)
		}
	})
}

func withAssertion(v url.Values, assertion string) url.Values {
	v.Set("client_assertion", assertion)
	return v
}

func assertionClaimsAt(now time.Time) map[string]any {
	return map[string]any{
		"iss": jwtClientID, "sub": jwtClientID, "aud": testIssuer + PathToken,
		"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": "jti-" + now.Format(time.RFC3339Nano),
	}
}

// unsignedJWT builds an alg none token by hand: go-jose refuses to.
func unsignedJWT(t *testing.T, kid string, claims map[string]any) string {
	t.Helper()
	h, err := json.Marshal(map[string]string{"alg": "none", "kid": kid, "typ": "JWT"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}
