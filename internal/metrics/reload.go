package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// NameReloads counts configuration reloads by result.
const NameReloads = "skolbro_reload_total"

// Results of a reload, the values of the result label.
const (
	// ReloadApplied: the new configuration serves from now on.
	ReloadApplied = "applied"
	// ReloadRefused: the new configuration had an error; the running one
	// stays.
	ReloadRefused = "refused"
)

// Reloads counts configuration reloads (SIGHUP).
type Reloads struct {
	total *prometheus.CounterVec
}

// NewReloads registers skolbro_reload_total{result} on reg, with both
// results present at zero so that an alert on refusals works from the
// start.
func NewReloads(reg prometheus.Registerer) (*Reloads, error) {
	r := &Reloads{total: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameReloads,
		Help: "Configuration reloads, by result: applied, or refused (the new configuration had an error and the running one stays).",
	}, []string{"result"})}
	if err := reg.Register(r.total); err != nil {
		return nil, fmt.Errorf("metrics: register: %w", err)
	}
	r.total.WithLabelValues(ReloadApplied)
	r.total.WithLabelValues(ReloadRefused)
	return r, nil
}

// Count counts one reload with result ReloadApplied or ReloadRefused.
func (r *Reloads) Count(result string) {
	if r == nil {
		return
	}
	if result != ReloadApplied && result != ReloadRefused {
		result = Other
	}
	r.total.WithLabelValues(result).Inc()
}

// ResetKeyExpiry forgets every key's expiry, before a reload sets those
// of the keys it serves: a key no longer configured must not keep firing
// its alert.
func (m *Metrics) ResetKeyExpiry() { m.keyExpiry.Reset() }

// Total is the counter of reloads with result, for tests.
func (r *Reloads) Total(result string) prometheus.Counter { return r.total.WithLabelValues(result) }
