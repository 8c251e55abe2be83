package oidcop

import (
	"bytes"
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/pseudonym"
	"github.com/skolbro/skolbro/internal/release"
)

func TestCase33_PairwiseSub(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d, err := pseudonym.New(bytes.Repeat([]byte{7}, 32), "skola.example.se")
	if err != nil {
		t.Fatal(err)
	}
	eppn, _ := attr.Lookup(attr.EPPN)
	pol := func(id, clientID, redirect, sector string) *policy.Policy {
		return &policy.Policy{
			ID:         id,
			OIDC:       &policy.OIDCSettings{ClientID: clientID, RedirectURIs: []string{redirect}, Sector: sector},
			Attributes: []policy.Rule{{Def: eppn}},
		}
	}
	policies := map[string]*policy.Policy{
		jwtClientID: pol("vendor-a", jwtClientID, jwtRedirect, "app.vendor-a.example"),
		basicClient: pol("vendor-b", basicClient, basicRedir, "vendor-b.example"),
	}
	person := func(stable string) *identity.Identity {
		return &identity.Identity{
			Upstream:     "skola-idp",
			StableID:     identity.NewSecret(stable),
			Attributes:   identity.Attributes{},
			AuthnInstant: f.clock.Now(),
			Protection:   identity.ProtectionNone,
		}
	}
	redirects := map[string]string{jwtClientID: jwtRedirect, basicClient: basicRedir}

	// sub logs person in at client through the whole flow and returns the
	// sub of the ID token and of userinfo, which must agree.
	sub := func(client string, id *identity.Identity) string {
		t.Helper()
		req, perr := f.parse(authParams(client, redirects[client]))
		if perr != nil {
			t.Fatal(perr)
		}
		rel := release.Release(policies[client], id, d)
		loc, err := f.p.Complete(context.Background(), req, rel)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(loc)
		code := u.Query().Get("code")
		form := basicTokenForm(code)
		user, pass := basicClient, basicSecret
		if client == jwtClientID {
			form, user, pass = f.jwtTokenForm(code), "", ""
		}
		tr, e := decodeTokenResponse(t, f.postToken(form, user, pass))
		if e != "" {
			t.Fatal(e)
		}
		claims, _ := f.idTokenClaims(tr.IDToken)
		s, _ := claims["sub"].(string)
		if s == "" || s != rel.Sub {
			t.Fatalf("ID token sub %q, want the release's pairwise sub %q", s, rel.Sub)
		}
		info := decodeJSON(t, f.userinfo(tr.AccessToken).Body.Bytes())
		if info["sub"] != s {
			t.Fatalf("userinfo sub %v, ID token sub %q", info["sub"], s)
		}
		f.clock.Advance(time.Second)
		return s
	}

	alice, bob := person("alice-stable"), person("bob-stable")
	aliceA1 := sub(jwtClientID, alice)
	aliceA2 := sub(jwtClientID, alice)
	aliceB := sub(basicClient, alice)
	bobA := sub(jwtClientID, bob)

	if aliceA1 != aliceA2 {
		t.Errorf("sub for one vendor changed between logins: %q, %q", aliceA1, aliceA2)
	}
	if aliceA1 == aliceB {
		t.Errorf("the same sub %q for two vendors with different sectors", aliceA1)
	}
	if aliceA1 == bobA {
		t.Errorf("two people share sub %q", aliceA1)
	}
	for _, s := range []string{aliceA1, aliceB} {
		if s == "alice-stable" || bytes.Contains([]byte(s), []byte("alice")) {
			t.Errorf("sub %q reveals the stable id", s)
		}
	}

	t.Run("release without a sector has no sub: no code", func(t *testing.T) {
		p := pol("vendor-a", jwtClientID, jwtRedirect, "")
		rel := release.Release(p, alice, d)
		req, perr := f.parse(authParams(jwtClientID, jwtRedirect))
		if perr != nil {
			t.Fatal(perr)
		}
		if _, err := f.p.Complete(context.Background(), req, rel); err == nil {
			t.Error("issued a code without a pairwise sub")
		}
	})
}
