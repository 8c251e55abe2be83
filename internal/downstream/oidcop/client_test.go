package oidcop

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/policy"
)

func writeFile(t *testing.T, dir, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func jwksJSON(t *testing.T, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func oidcPolicy(auth policy.ClientAuth, jwks, secret string) *policy.Policy {
	return &policy.Policy{
		ID: "vendor-x",
		OIDC: &policy.OIDCSettings{
			ClientID:         "x-client",
			RedirectURIs:     []string{"https://x.example/cb"},
			ClientAuth:       auth,
			JWKSFile:         jwks,
			ClientSecretFile: secret,
			IDTokenAlg:       "RS256",
			Sector:           "x.example",
		},
	}
}

func TestClientFromPolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ecPub := jose.JSONWebKey{Key: testKey("client-ec").Public(), KeyID: "k1", Use: "sig"}
	rsaPub := jose.JSONWebKey{Key: testKey("client-rsa").Public(), KeyID: "k2", Algorithm: "PS256"}
	goodJWKS := writeFile(t, dir, "good.jwks", jwksJSON(t, ecPub, rsaPub), 0o644)
	secret := strings.Repeat("z", 40)
	goodSecret := writeFile(t, dir, "good.secret", []byte(secret+"\n"), 0o600)

	t.Run("private_key_jwt", func(t *testing.T) {
		c, err := ClientFromPolicy(oidcPolicy(policy.PrivateKeyJWT, goodJWKS, ""))
		if err != nil {
			t.Fatal(err)
		}
		if c.ID != "x-client" || c.VendorID != "vendor-x" || c.IDTokenAlg != jose.RS256 || c.Auth != policy.PrivateKeyJWT {
			t.Errorf("client %+v", c)
		}
		if diff := cmp.Diff([]string{"https://x.example/cb"}, c.RedirectURIs); diff != "" {
			t.Error(diff)
		}
		if got := kidsOf(*c.JWKS); !cmp.Equal(got, []string{"k1", "k2"}) {
			t.Errorf("kids %v", got)
		}
	})
	t.Run("client_secret_basic", func(t *testing.T) {
		c, err := ClientFromPolicy(oidcPolicy(policy.ClientSecretBasic, "", goodSecret))
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256([]byte(secret))
		if !cmp.Equal(c.SecretHash, want[:]) {
			t.Error("SecretHash is not the SHA-256 of the trimmed secret")
		}
	})
	t.Run("default alg ES256", func(t *testing.T) {
		p := oidcPolicy(policy.ClientSecretBasic, "", goodSecret)
		p.OIDC.IDTokenAlg = ""
		c, err := ClientFromPolicy(p)
		if err != nil || c.IDTokenAlg != jose.ES256 {
			t.Errorf("alg %v, err %v", c, err)
		}
	})

	privJWK := jose.JSONWebKey{Key: testKey("client-ec"), KeyID: "priv"}
	tests := []struct {
		name string
		pol  func() *policy.Policy
	}{
		{"no oidc section", func() *policy.Policy { return &policy.Policy{ID: "v"} }},
		{"missing jwks file", func() *policy.Policy {
			return oidcPolicy(policy.PrivateKeyJWT, filepath.Join(dir, "nope.jwks"), "")
		}},
		{"jwks with a private key", func() *policy.Policy {
			return oidcPolicy(policy.PrivateKeyJWT, writeFile(t, dir, "priv.jwks", jwksJSON(t, privJWK), 0o600), "")
		}},
		{"jwks with a symmetric key", func() *policy.Policy {
			sym := jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "sym"}
			return oidcPolicy(policy.PrivateKeyJWT, writeFile(t, dir, "sym.jwks", jwksJSON(t, sym), 0o600), "")
		}},
		{"jwks key without kid", func() *policy.Policy {
			k := jose.JSONWebKey{Key: testKey("client-ec").Public()}
			return oidcPolicy(policy.PrivateKeyJWT, writeFile(t, dir, "nokid.jwks", jwksJSON(t, k), 0o644), "")
		}},
		{"jwks key for encryption", func() *policy.Policy {
			k := jose.JSONWebKey{Key: testKey("client-ec").Public(), KeyID: "enc", Use: "enc"}
			return oidcPolicy(policy.PrivateKeyJWT, writeFile(t, dir, "enc.jwks", jwksJSON(t, k), 0o644), "")
		}},
		{"jwks duplicate kid", func() *policy.Policy {
			k2 := rsaPub
			k2.KeyID = "k1"
			return oidcPolicy(policy.PrivateKeyJWT, writeFile(t, dir, "dup.jwks", jwksJSON(t, ecPub, k2), 0o644), "")
		}},
		{"empty jwks", func() *policy.Policy {
			return oidcPolicy(policy.PrivateKeyJWT, writeFile(t, dir, "empty.jwks", []byte(`{"keys":[]}`), 0o644), "")
		}},
		{"jwks not JSON", func() *policy.Policy {
			return oidcPolicy(policy.PrivateKeyJWT, writeFile(t, dir, "bad.jwks", []byte(`keys`), 0o644), "")
		}},
		{"secret readable by others", func() *policy.Policy {
			return oidcPolicy(policy.ClientSecretBasic, "", writeFile(t, dir, "open.secret", []byte(secret), 0o644))
		}},
		{"secret too short", func() *policy.Policy {
			return oidcPolicy(policy.ClientSecretBasic, "", writeFile(t, dir, "short.secret", []byte("short\n"), 0o600))
		}},
		{"missing secret file", func() *policy.Policy {
			return oidcPolicy(policy.ClientSecretBasic, "", filepath.Join(dir, "nope.secret"))
		}},
		{"bad id token alg", func() *policy.Policy {
			p := oidcPolicy(policy.ClientSecretBasic, "", goodSecret)
			p.OIDC.IDTokenAlg = "HS256"
			return p
		}},
		{"unknown client auth", func() *policy.Policy { return oidcPolicy("client_secret_post", "", goodSecret) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := ClientFromPolicy(tt.pol()); err == nil {
				t.Errorf("accepted: %+v", c)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(p *Provider)
	}{
		{"http issuer", func(p *Provider) { p.Issuer = "http://bro.example.se" }},
		{"issuer with slash", func(p *Provider) { p.Issuer = testIssuer + "/" }},
		{"issuer with query", func(p *Provider) { p.Issuer = testIssuer + "?a=b" }},
		{"relative issuer", func(p *Provider) { p.Issuer = "/bro" }},
		{"no keys", func(p *Provider) { p.Keys = nil }},
		{"no store", func(p *Provider) { p.Store = nil }},
		{"code TTL 61s", func(p *Provider) { p.CodeTTL = 61e9 }},
		{"negative code TTL", func(p *Provider) { p.CodeTTL = -1 }},
		{"token TTL 2h", func(p *Provider) { p.TokenTTL = 7200e9 }},
		{"client under another id", func(p *Provider) { p.Clients["other"] = p.Clients[basicClient] }},
		{"client without redirect URIs", func(p *Provider) { p.Clients[basicClient].RedirectURIs = nil }},
		{"client without secret hash", func(p *Provider) { p.Clients[basicClient].SecretHash = nil }},
		{"client alg without a key", func(p *Provider) {
			keys, err := NewKeySet([]KeySpec{{KID: "e", Signer: testKey("op-ec"), Alg: jose.ES256}})
			if err != nil {
				panic(err)
			}
			p.Keys = keys
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			tt.change(f.p)
			if err := f.p.Validate(); err == nil {
				t.Error("accepted")
			}
		})
	}
	t.Run("http on loopback for development", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.p.Issuer = "http://127.0.0.1:8080"
		if err := f.p.Validate(); err != nil {
			t.Error(err)
		}
	})
}
