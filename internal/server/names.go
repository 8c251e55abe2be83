package server

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/mapping"
	"github.com/skolbro/skolbro/internal/upstreamnames"
)

// namesEvery bounds how often one set of upstream attribute names is
// written to the record: most logins of an upstream send the same names,
// and the record needs only their last sighting to the minute.
const namesEvery = time.Minute

// namesThrottle remembers when each set of names was last recorded.
type namesThrottle struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// due reports whether key's names should be recorded at now, and if so
// marks them recorded.
func (t *namesThrottle) due(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil || len(t.last) > 1024 {
		t.last = map[string]time.Time{}
	}
	if at, ok := t.last[key]; ok && now.Sub(at) < namesEvery {
		return false
	}
	t.last[key] = now
	return true
}

// noteUpstreamNames records which attribute names the school IdP sent in
// this login and how each was read (upstreamnames), for `skolbro inspect`
// and check. Names only: no value. A record that cannot be written is
// logged and the login goes on; nothing depends on it.
func (s *Server) noteUpstreamNames(r *http.Request, org *Organiser, up *Upstream, in mapping.Input) {
	if org.Store == nil || up.Mapping == nil {
		return
	}
	names := mapping.Describe(up.Mapping, in)
	var sig strings.Builder
	sig.WriteString(org.ID + "\x00" + up.ID)
	for _, n := range names {
		sig.WriteString("\x00" + n.Attribute + "\x01" + n.FriendlyName + "\x01" + n.Use)
	}
	if !s.names.due(sig.String(), s.now()) {
		return
	}
	if err := upstreamnames.Add(r.Context(), org.Store, org.ID, up.ID, names, s.now()); err != nil {
		zerolog.Ctx(r.Context()).Warn().Err(err).Msg("the upstream's attribute names could not be recorded")
	}
}
