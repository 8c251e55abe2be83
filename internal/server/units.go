package server

import (
	"context"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/release"
	"github.com/skolbro/skolbro/internal/units"
)

// enabledFor applies the admin's school unit choice to pol and decides
// whether the vendor is switched on for id (SECURITY.md case 47). It
// returns the policy to release under, or shows the refusal page, records
// the refusal and returns false. A store that cannot be read fails the
// login closed: the admin may have narrowed the file's list.
func (s *Server) enabledFor(w http.ResponseWriter, r *http.Request, org *Organiser, upstream string, pol *policy.Policy, protocol string, id *identity.Identity) (*policy.Policy, bool) {
	eff, err := units.New(org.Store, org.ID).Effective(r.Context(), pol)
	if err != nil {
		s.fail(w, r, failUnavailable, "store_unavailable", err)
		return nil, false
	}
	if !release.Enabled(eff, id) {
		zerolog.Ctx(r.Context()).Info().Str("vendor", pol.ID).Msg("vendor not enabled for the person's school units or affiliations")
		s.refuse(w, r, org, upstream, pol, protocol, id, failNotEnabled, audit.ReasonNotEnabled)
		return nil, false
	}
	return eff, true
}

// registerRows is the release register with the admin's school unit
// choices applied. Should the store not answer, the school units column
// says so rather than show the file's list, which may no longer hold.
func (s *Server) registerRows(org *Organiser, pols []*policy.Policy, requested map[string][]string) []audit.RegisterRow {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := units.New(org.Store, org.ID).Register(ctx, pols, requested)
	if err == nil {
		return rows
	}
	s.log.Error().Err(err).Msg("register: school unit choices unavailable")
	rows = audit.BuildRegister(pols, requested)
	for i := range rows {
		rows[i].EnabledSchoolUnits = "unknown: the store did not answer"
	}
	return rows
}
