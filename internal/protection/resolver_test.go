package protection

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/skolbro/skolbro/internal/identity"
)

// outcome is what a fake source does.
type outcome int

const (
	saysNone outcome = iota
	saysSekretess
	saysSkyddad
	saysManual
	saysUnknown // answers ProtectionUnknown without an error
	failsError
	failsMissing
	failsTimeout // waits for its context to end
	hangs        // ignores its context until the test ends
	hangsReading // like hangs, then reads the identity
	panics
)

type fakeSource struct {
	name    string
	outcome outcome
	release chan struct{} // for hangs
}

func (f *fakeSource) Name() string { return f.name }

func (f *fakeSource) Status(ctx context.Context, id *identity.Identity) (identity.Protection, error) {
	switch f.outcome {
	case saysNone:
		return identity.ProtectionNone, nil
	case saysSekretess:
		return identity.ProtectionSekretessmarkering, nil
	case saysSkyddad:
		return identity.ProtectionSkyddadFolkbokforing, nil
	case saysManual:
		return identity.ProtectionManual, nil
	case saysUnknown:
		return identity.ProtectionUnknown, nil
	case failsError:
		return identity.ProtectionUnknown, errors.New("backend down")
	case failsMissing:
		return identity.ProtectionUnknown, fmt.Errorf("nothing: %w", ErrMissing)
	case failsTimeout:
		<-ctx.Done()
		return identity.ProtectionUnknown, ctx.Err()
	case hangs:
		<-f.release
		return identity.ProtectionNone, nil
	case hangsReading:
		for {
			p := id.Protection
			select {
			case <-f.release:
				return p, nil
			default:
				runtime.Gosched()
			}
		}
	case panics:
		panic("source bug")
	}
	panic("unknown outcome")
}

func sources(t *testing.T, outcomes ...outcome) []Source {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	out := make([]Source, len(outcomes))
	for i, o := range outcomes {
		out[i] = &fakeSource{name: fmt.Sprintf("s%d", i), outcome: o, release: release}
	}
	return out
}

// TestResolveCombination is the combination table: every source result,
// alone, together with each kind of failure, and the order of protected
// levels.
func TestResolveCombination(t *testing.T) {
	t.Parallel()
	var (
		none      = identity.ProtectionNone
		unknown   = identity.ProtectionUnknown
		sekretess = identity.ProtectionSekretessmarkering
		skyddad   = identity.ProtectionSkyddadFolkbokforing
		manual    = identity.ProtectionManual
	)
	f := func(i int, reason string) Failure { return Failure{Source: fmt.Sprintf("s%d", i), Reason: reason} }
	tests := []struct {
		name     string
		outcomes []outcome
		want     identity.Protection
		failures []Failure
	}{
		{"no sources", nil, unknown, nil},

		{"none alone", []outcome{saysNone}, none, nil},
		{"sekretess alone", []outcome{saysSekretess}, sekretess, nil},
		{"skyddad alone", []outcome{saysSkyddad}, skyddad, nil},
		{"manual alone", []outcome{saysManual}, manual, nil},
		{"error alone", []outcome{failsError}, unknown, []Failure{f(0, ReasonError)}},
		{"missing alone", []outcome{failsMissing}, unknown, []Failure{f(0, ReasonMissing)}},
		{"timeout alone", []outcome{failsTimeout}, unknown, []Failure{f(0, ReasonTimeout)}},
		{"unknown answer counts as missing", []outcome{saysUnknown}, unknown, []Failure{f(0, ReasonMissing)}},
		{"panic counts as error", []outcome{panics}, unknown, []Failure{f(0, ReasonError)}},
		{"source ignoring its context times out", []outcome{hangs}, unknown, []Failure{f(0, ReasonTimeout)}},

		{"none and none", []outcome{saysNone, saysNone}, none, nil},
		{"none and none and none", []outcome{saysNone, saysNone, saysNone}, none, nil},

		{"none with error", []outcome{saysNone, failsError}, unknown, []Failure{f(1, ReasonError)}},
		{"none with missing", []outcome{saysNone, failsMissing}, unknown, []Failure{f(1, ReasonMissing)}},
		{"none with timeout", []outcome{saysNone, failsTimeout}, unknown, []Failure{f(1, ReasonTimeout)}},
		{"error before none", []outcome{failsError, saysNone}, unknown, []Failure{f(0, ReasonError)}},

		{"sekretess with error", []outcome{saysSekretess, failsError}, sekretess, []Failure{f(1, ReasonError)}},
		{"sekretess with missing", []outcome{saysSekretess, failsMissing}, sekretess, []Failure{f(1, ReasonMissing)}},
		{"sekretess with timeout", []outcome{saysSekretess, failsTimeout}, sekretess, []Failure{f(1, ReasonTimeout)}},
		{"skyddad with error", []outcome{failsError, saysSkyddad}, skyddad, []Failure{f(0, ReasonError)}},
		{"skyddad with missing", []outcome{saysSkyddad, failsMissing}, skyddad, []Failure{f(1, ReasonMissing)}},
		{"skyddad with timeout", []outcome{failsTimeout, saysSkyddad}, skyddad, []Failure{f(0, ReasonTimeout)}},
		{"manual with error", []outcome{saysManual, failsError}, manual, []Failure{f(1, ReasonError)}},
		{"manual with missing", []outcome{failsMissing, saysManual}, manual, []Failure{f(0, ReasonMissing)}},
		{"manual with timeout", []outcome{saysManual, failsTimeout}, manual, []Failure{f(1, ReasonTimeout)}},

		{"protected wins over none", []outcome{saysNone, saysSekretess}, sekretess, nil},
		{"skyddad over sekretess", []outcome{saysSekretess, saysSkyddad}, skyddad, nil},
		{"skyddad over sekretess, reversed", []outcome{saysSkyddad, saysSekretess}, skyddad, nil},
		{"manual over skyddad", []outcome{saysSkyddad, saysManual}, manual, nil},
		{"manual over sekretess", []outcome{saysManual, saysSekretess}, manual, nil},
		{"manual over all", []outcome{saysSekretess, saysManual, saysSkyddad, saysNone}, manual, nil},
		{"every failure kind", []outcome{failsError, failsMissing, failsTimeout}, unknown,
			[]Failure{f(0, ReasonError), f(1, ReasonMissing), f(2, ReasonTimeout)}},
		{"every failure kind and a marking", []outcome{failsError, saysSekretess, failsMissing, failsTimeout}, sekretess,
			[]Failure{f(0, ReasonError), f(2, ReasonMissing), f(3, ReasonTimeout)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &Resolver{Sources: sources(t, tc.outcomes...), SourceTimeout: 50 * time.Millisecond}
			got, failures := r.Resolve(bg, &identity.Identity{})
			if got != tc.want {
				t.Errorf("Resolve = %v, want %v", got, tc.want)
			}
			if diff := cmp.Diff(tc.failures, failures); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
		})
	}
}

// TestResolveCancelledContext: a caller's context that ends first ends the
// call, and every source still out is a timeout.
func TestResolveCancelledContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(bg)
	cancel()
	r := &Resolver{Sources: sources(t, hangs, saysSekretess), SourceTimeout: time.Hour}
	got, failures := r.Resolve(ctx, &identity.Identity{})
	// The answering source may or may not have been heard before the
	// cancellation was noticed; the hanging one never is.
	if got != identity.ProtectionUnknown && got != identity.ProtectionSekretessmarkering {
		t.Errorf("Resolve = %v, want unknown or sekretessmarkering", got)
	}
	if !got.Protected() {
		t.Errorf("Resolve = %v, which is not protected", got)
	}
	if len(failures) == 0 || failures[0] != (Failure{Source: "s0", Reason: ReasonTimeout}) {
		t.Errorf("failures = %v, want s0 timeout first", failures)
	}
}

// TestResolveLateSourceDoesNotRace: the caller may store the result in
// the identity while a timed-out source still reads it (run with -race).
func TestResolveLateSourceDoesNotRace(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	done := make(chan struct{})
	src := &fakeSource{name: "late", outcome: hangsReading, release: release}
	wrapped := sourceFunc(func(ctx context.Context, id *identity.Identity) (identity.Protection, error) {
		defer close(done)
		return src.Status(ctx, id)
	})
	id := &identity.Identity{}
	r := &Resolver{Sources: []Source{wrapped}, SourceTimeout: 10 * time.Millisecond}
	level, _ := r.Resolve(bg, id)
	id.Protection = level
	close(release)
	<-done
}

type sourceFunc func(context.Context, *identity.Identity) (identity.Protection, error)

func (sourceFunc) Name() string { return "func" }
func (f sourceFunc) Status(ctx context.Context, id *identity.Identity) (identity.Protection, error) {
	return f(ctx, id)
}

func TestResolveMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Sources: sources(t, saysNone, failsError, failsMissing), Metrics: m, SourceTimeout: time.Second}
	for range 2 {
		r.Resolve(bg, &identity.Identity{})
	}
	tests := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"lookups s0", m.lookups.WithLabelValues("s0"), 2},
		{"lookups s1", m.lookups.WithLabelValues("s1"), 2},
		{"failures s0 error", m.failures.WithLabelValues("s0", ReasonError), 0},
		{"failures s1 error", m.failures.WithLabelValues("s1", ReasonError), 2},
		{"failures s2 missing", m.failures.WithLabelValues("s2", ReasonMissing), 2},
		{"failures s2 error", m.failures.WithLabelValues("s2", ReasonError), 0},
	}
	for _, tc := range tests {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Registered under the names the dashboards use.
	n, err := testutil.GatherAndCount(reg, "skolbro_protection_lookups_total", "skolbro_protection_source_failures_total")
	if err != nil || n == 0 {
		t.Errorf("GatherAndCount = %d, %v; want the two metric families", n, err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering the metrics twice on one registry succeeded")
	}
}

func TestUpstreamAttribute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      identity.Protection
		want    identity.Protection
		wantErr error
	}{
		{"none", identity.ProtectionNone, identity.ProtectionNone, nil},
		{"sekretess", identity.ProtectionSekretessmarkering, identity.ProtectionSekretessmarkering, nil},
		{"skyddad", identity.ProtectionSkyddadFolkbokforing, identity.ProtectionSkyddadFolkbokforing, nil},
		{"unknown is missing", identity.ProtectionUnknown, identity.ProtectionUnknown, ErrMissing},
		{"out of range is missing", identity.Protection(99), identity.ProtectionUnknown, ErrMissing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := UpstreamAttribute{}.Status(bg, &identity.Identity{Protection: tc.in})
			if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("Status = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
	if got := (UpstreamAttribute{}).Name(); got != "upstream_attribute" {
		t.Errorf("Name = %q", got)
	}
	// Through the Resolver, a missing attribute is a "missing" failure.
	r := &Resolver{Sources: []Source{UpstreamAttribute{}}}
	got, failures := r.Resolve(bg, &identity.Identity{})
	if got != identity.ProtectionUnknown || len(failures) != 1 || failures[0] != (Failure{"upstream_attribute", ReasonMissing}) {
		t.Errorf("Resolve = %v, %v; want unknown with one missing failure", got, failures)
	}
}
