package protection

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the Resolver asked and which sources failed. The
// labels are source names and fixed reasons only.
type Metrics struct {
	lookups  *prometheus.CounterVec
	failures *prometheus.CounterVec
}

// NewMetrics registers skolbro_protection_lookups_total{source} and
// skolbro_protection_source_failures_total{source,reason} with reg. A nil
// reg registers nothing (the counters still count, for tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skolbro_protection_lookups_total",
			Help: "Protection status lookups, by source.",
		}, []string{"source"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skolbro_protection_source_failures_total",
			Help: "Protection sources that could not answer, by source and reason (timeout, error, missing).",
		}, []string{"source", "reason"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.lookups, m.failures} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("protection: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *Metrics) lookup(source string) {
	if m != nil {
		m.lookups.WithLabelValues(source).Inc()
	}
}

func (m *Metrics) failure(source, reason string) {
	if m != nil {
		m.failures.WithLabelValues(source, reason).Inc()
	}
}
