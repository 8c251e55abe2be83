package protection

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the Resolver asked and which sources failed, and
// whether the manual register can answer. The labels are source names and
// fixed reasons only.
type Metrics struct {
	lookups       *prometheus.CounterVec
	failures      *prometheus.CounterVec
	registerState prometheus.Gauge
}

// NewMetrics registers skolbro_protection_lookups_total{source},
// skolbro_protection_source_failures_total{source,reason} and
// skolbro_protection_register_ready with reg. A nil reg registers nothing
// (the counters still count, for tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skolbro_protection_lookups_total",
			Help: "Protection status lookups, by source.",
		}, []string{"source"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skolbro_protection_source_failures_total",
			Help: "Protection sources that could not answer, by source and reason (timeout, error, missing, no_personal_number, personal_number_dropped, not_initialised); every one masked the person.",
		}, []string{"source", "reason"}),
		registerState: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skolbro_protection_register_ready",
			Help: "1 when the manual protection register answered its last check or lookup, 0 when it could not (unreachable, or its data lost: every person is masked and readiness fails).",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.lookups, m.failures, m.registerState} {
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

func (m *Metrics) registerReady(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.registerState.Set(1)
	} else {
		m.registerState.Set(0)
	}
}
