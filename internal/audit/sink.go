package audit

import (
	"context"
	"errors"
)

// Metric names, for whoever registers the metrics.
const (
	// MetricWriteErrors counts events a FileSink failed to write or sync.
	MetricWriteErrors = "skolbro_audit_write_errors_total"
	// MetricAgreementDaysLeft is the gauge UpdateAgreementGauge feeds,
	// labelled by vendor.
	MetricAgreementDaysLeft = "skolbro_agreement_days_left"
)

// Counter is the part of a metrics counter a sink uses; a Prometheus
// Counter satisfies it.
type Counter interface{ Inc() }

// Sink receives audit events. Write returns only once the event is as
// durable as the sink promises (for FileSink: on disk); an error means the
// event may be missing and the caller should fail the login closed.
type Sink interface {
	Write(ctx context.Context, e Event) error
	Close() error
}

// NopSink discards events; for tests and tools that log nothing.
type NopSink struct{}

// Write discards e.
func (NopSink) Write(context.Context, Event) error { return nil }

// Close does nothing.
func (NopSink) Close() error { return nil }

// MultiSink writes every event to each of its sinks in order.
type MultiSink []Sink

// Write writes e to every sink, also after one fails, and joins the errors.
func (m MultiSink) Write(ctx context.Context, e Event) error {
	var errs []error
	for _, s := range m {
		if err := s.Write(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close closes every sink and joins the errors.
func (m MultiSink) Close() error {
	var errs []error
	for _, s := range m {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
