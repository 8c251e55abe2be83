package server

import (
	"net/http"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/mapping"
	"github.com/skolbro/skolbro/internal/pnrvalues"
)

// notePersonalNumbersInValues counts, and records for check and the
// admin's release preview, the upstream attributes whose values the mapper
// dropped because they held a personal number. Names only: the values are
// gone. A record that cannot be written is logged and the login goes on;
// the record is a hint for the admin, nothing depends on it.
func (s *Server) notePersonalNumbersInValues(r *http.Request, org *Organiser, warnings []mapping.Warning) {
	var names []string
	for _, w := range warnings {
		if w.Reason != mapping.ReasonLooksLikePersonalNum {
			continue
		}
		names = append(names, w.Attribute)
		if s.metrics != nil {
			s.metrics.PersonalNumberInValue(w.Attribute)
		}
	}
	if len(names) == 0 || org.Store == nil {
		return
	}
	if err := pnrvalues.Record(r.Context(), org.Store, org.ID, names, s.now()); err != nil {
		zerolog.Ctx(r.Context()).Warn().Err(err).Msg("attributes dropped for a personal number could not be recorded")
	}
}
