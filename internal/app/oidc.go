package app

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/downstream/oidcop"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/store"
)

// buildOP makes the OpenID Provider for the policies with an oidc section,
// or returns nil when there are none.
func buildOP(rep *Report, cfg *config.Config, o *config.Organiser, pols []*policy.Policy, st store.Store, now func() time.Time) *oidcop.Provider {
	clients := map[string]*oidcop.Client{}
	for _, p := range pols {
		if p.OIDC == nil {
			continue
		}
		c, err := oidcop.ClientFromPolicy(p)
		if err != nil {
			rep.errorf(p.File, "oidc", "%v", err)
			continue
		}
		if prev, dup := clients[c.ID]; dup {
			rep.errorf(p.File, "oidc.client_id", "%q is also the client id of vendor %s", c.ID, prev.VendorID)
			continue
		}
		clients[c.ID] = c
	}
	ks0, keysAt := cfg.SigningKeys(o)
	oidcKeys := ks0.OIDC
	if len(clients) == 0 && len(oidcKeys) == 0 {
		return nil
	}
	file := cfg.File()
	if len(oidcKeys) == 0 {
		rep.errorf(file, o.Key("keys.oidc"), "required: OIDC vendors are configured, so ID tokens need signing keys")
		return nil
	}
	var specs []oidcop.KeySpec
	for i, k := range oidcKeys {
		key := fmt.Sprintf("%s.oidc[%d]", keysAt, i)
		signer, err := keys.LoadSigner(cfg.Path(k.Key))
		if err != nil {
			rep.errorf(file, key+".key", "%v", err)
			continue
		}
		spec := oidcop.KeySpec{KID: k.KID, Signer: signer}
		switch signer.(type) {
		case *ecdsa.PrivateKey:
			spec.Alg = jose.ES256
		case *rsa.PrivateKey:
			spec.Alg = jose.RS256
		}
		if k.UseFrom != "" {
			spec.UseFrom, _ = time.Parse(time.DateOnly, k.UseFrom)
		}
		if k.RetireAt != "" {
			spec.RetireAt, _ = time.Parse(time.DateOnly, k.RetireAt)
		}
		specs = append(specs, spec)
	}
	ks, err := oidcop.NewKeySet(specs)
	if err != nil {
		rep.errorf(file, keysAt+".oidc", "%v", err)
		return nil
	}
	op := &oidcop.Provider{
		Issuer:  strings.TrimRight(cfg.OrganiserURL(o, ""), "/"),
		Keys:    ks,
		Clients: clients,
		Store:   st,
		Now:     now,
	}
	if err := op.Validate(); err != nil {
		rep.errorf(file, keysAt+".oidc", "%v", err)
		return nil
	}
	return op
}
