package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// NamePersonalNumberInValue counts upstream values the mapper dropped
// because they held a personal number, by upstream attribute name.
const NamePersonalNumberInValue = "skolbro_personal_number_in_value_total"

// valueMetrics are the counters about upstream values.
type valueMetrics struct {
	pnrInValue *prometheus.CounterVec
	attributes *guard
}

func (v *valueMetrics) register(reg prometheus.Registerer) error {
	v.pnrInValue = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NamePersonalNumberInValue,
		Help: "Upstream values dropped because they held a personal number (e.g. a mail address built from it), by upstream attribute name.",
	}, []string{"attribute"})
	v.attributes = newGuard(maxLabelValues)
	if err := reg.Register(v.pnrInValue); err != nil {
		return fmt.Errorf("metrics: register: %w", err)
	}
	return nil
}

// PersonalNumberInValue counts one value of the upstream attribute that
// was dropped because it held a personal number. The label is the
// attribute's name, never the value.
func (m *Metrics) PersonalNumberInValue(attribute string) {
	m.values.pnrInValue.WithLabelValues(m.values.attributes.value(attribute)).Inc()
}
