package app

import (
	"fmt"
	"sort"

	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/downstream/samlidp"
	"github.com/skolbro/skolbro/internal/policy"
)

// noteLogout tells the admin which vendors a Single Logout cannot reach,
// and, for an upstream, that the school IdP cannot be logged out: each
// such logout is reported partial, and a pupil on a shared computer must
// close the browser.
func noteLogout(rep *Report, o *config.Organiser, pols []*policy.Policy, vendors map[string]*samlidp.Vendor) {
	var ids []string
	for _, p := range pols {
		switch {
		case p.SAML != nil:
			if v, ok := vendors[p.SAML.EntityID]; ok && len(v.SLO) == 0 {
				ids = append(ids, p.ID)
			}
		case p.OIDC != nil:
			if p.OIDC.FrontchannelLogoutURI == "" && p.OIDC.BackchannelLogoutURI == "" {
				ids = append(ids, p.ID)
			}
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s: vendor %s has no single logout endpoint: a logout elsewhere cannot end its session and is reported partial", o.ID, id))
	}
}
