package fedmeta

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/crewjam/saml"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, as NewRefresher registers them.
const (
	MetricRefreshFailures = "skolbro_metadata_refresh_failures_total"
	MetricValidUntil      = "skolbro_metadata_valid_until_seconds"
)

// Refresher keeps the last good Aggregate of each Source in memory and
// refreshes it on the source's schedule. It is safe for concurrent use.
type Refresher struct {
	sources []*Source
	// sleep waits for d or until ctx ends; a field so that tests drive the
	// schedule without waiting.
	sleep func(ctx context.Context, d time.Duration) error

	mu    sync.RWMutex
	state []sourceState // parallel to sources

	hooksMu sync.Mutex
	hooks   []func()
}

// OnRefresh adds f, called after every refresh of any source (outside the
// refresher's lock), so that what was built from an aggregate (an
// upstream's trusted keys) follows it.
func (r *Refresher) OnRefresh(f func()) {
	r.hooksMu.Lock()
	defer r.hooksMu.Unlock()
	r.hooks = append(r.hooks, f)
}

func (r *Refresher) runHooks() {
	r.hooksMu.Lock()
	hooks := slices.Clone(r.hooks)
	r.hooksMu.Unlock()
	for _, f := range hooks {
		f()
	}
}

type sourceState struct {
	agg         *Aggregate
	lastSuccess time.Time
	lastError   string
	nextRefresh time.Time
	failedInRow int
	failures    map[string]uint64 // by reason
}

// Status is what check and metrics report about one source.
type Status struct {
	Source string
	// LastSuccess is when the source itself last gave a verified aggregate.
	LastSuccess time.Time
	// LastError is the fixed reason of the last refresh's problem, "" when
	// the last refresh succeeded.
	LastError string
	// ValidUntil is the validUntil of the aggregate in use; zero when none.
	ValidUntil time.Time
	// NextRefresh is when the source is fetched next.
	NextRefresh time.Time
	// FromCache reports that the aggregate in use is the last-good copy
	// read from disk after the source failed.
	FromCache bool
	// Entities counts the entities of the aggregate in use.
	Entities int
	// Failures counts failed refreshes by reason since start.
	Failures map[string]uint64
}

// NewRefresher returns a Refresher for sources, which must be valid and
// have distinct names. Entity looks sources up in the order given. Its
// metrics, MetricRefreshFailures{source,reason} and MetricValidUntil{source},
// are registered on reg; a nil reg registers nothing.
func NewRefresher(sources []*Source, reg prometheus.Registerer) (*Refresher, error) {
	var errs []error
	seen := map[string]bool{}
	for _, s := range sources {
		if s == nil {
			errs = append(errs, fmt.Errorf("fedmeta: %w: nil source", ErrConfig))
			continue
		}
		if err := s.Validate(); err != nil {
			errs = append(errs, err)
		}
		if seen[s.Name] {
			errs = append(errs, fmt.Errorf("fedmeta: source %q: %w: duplicate name", s.Name, ErrConfig))
		}
		seen[s.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r := &Refresher{
		sources: slices.Clone(sources),
		sleep:   sleepCtx,
		state:   make([]sourceState, len(sources)),
	}
	for i := range r.state {
		r.state[i].failures = map[string]uint64{}
	}
	if reg != nil {
		if err := reg.Register(newCollector(r)); err != nil {
			return nil, fmt.Errorf("fedmeta: registering metrics: %w", err)
		}
	}
	return r, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Refresh loads every source once, now. It returns the failures of the
// sources left without a usable aggregate, each carrying its fixed reason;
// a source that fell back to its last-good copy is not an error here but
// shows in Status.
func (r *Refresher) Refresh(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(r.sources))
	for i := range r.sources {
		wg.Go(func() { errs[i] = r.refresh(ctx, i) })
	}
	wg.Wait()
	r.runHooks()
	return errors.Join(errs...)
}

// Run refreshes each source on its schedule until ctx ends: at once, unless
// a Refresh before it already scheduled the next refresh. Callers log
// failures from Status; Run itself logs nothing.
func (r *Refresher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range r.sources {
		wg.Go(func() {
			for {
				r.mu.RLock()
				next := r.state[i].nextRefresh
				r.mu.RUnlock()
				if d := next.Sub(r.sources[i].now()); d > 0 {
					if r.sleep(ctx, d) != nil {
						return
					}
				}
				if ctx.Err() != nil {
					return
				}
				_ = r.refresh(ctx, i)
				r.runHooks()
			}
		})
	}
	wg.Wait()
}

// refresh loads source i and records the outcome.
func (r *Refresher) refresh(ctx context.Context, i int) error {
	s := r.sources[i]
	agg, err := s.Load(ctx)
	now := s.now()

	r.mu.Lock()
	defer r.mu.Unlock()
	st := &r.state[i]
	problem := err
	if err == nil {
		problem = agg.Problem
	}
	switch {
	case ctx.Err() != nil:
		// Shutting down: whatever happened is not the source's fault.
		return err
	case err == nil && !agg.FromCache:
		st.agg = agg
		st.lastSuccess = now
		st.failedInRow = 0
		st.nextRefresh = agg.NextRefresh
	default:
		// The in-memory copy is kept when it outlives the one on disk
		// (for instance when the disk copy could not be written).
		if err == nil && (st.agg == nil || !st.agg.ValidUntil.After(agg.ValidUntil)) {
			st.agg = agg
		}
		st.failedInRow++
		// Back off from MinRefresh, doubling up to MaxRefresh.
		d := s.minRefresh()
		for n := 1; n < st.failedInRow && d < s.maxRefresh(); n++ {
			d *= 2
		}
		st.nextRefresh = now.Add(min(d, s.maxRefresh()))
	}
	st.lastError = Reason(problem)
	if problem != nil {
		st.failures[st.lastError]++
	}
	return err
}

// Entity returns the descriptor of entityID from the first source, in the
// order given to NewRefresher, whose aggregate in use is unexpired and
// lists it. The descriptor is shared: do not modify it.
func (r *Refresher) Entity(entityID string) (*saml.EntityDescriptor, bool) {
	agg := r.find(entityID)
	if agg == nil {
		return nil, false
	}
	return agg.Entities[entityID], true
}

// Scopes returns the literal shibmd:Scope values of the IdP entityID, from
// the same aggregate Entity would use.
func (r *Refresher) Scopes(entityID string) ([]string, bool) {
	agg := r.find(entityID)
	if agg == nil {
		return nil, false
	}
	return slices.Clone(agg.Scopes[entityID]), true
}

// Vendor is Entity for a vendor (an SP), with the alg:SigningMethod
// algorithms its metadata announces (nil when none), both from one
// aggregate: a refresh between two lookups cannot pair a descriptor with
// another copy's methods.
func (r *Refresher) Vendor(entityID string) (*saml.EntityDescriptor, []string, bool) {
	agg := r.find(entityID)
	if agg == nil {
		return nil, nil, false
	}
	return agg.Entities[entityID], slices.Clone(agg.SigningMethods[entityID]), true
}

// EntityIn is Entity from the named source alone, Private or not: an
// upstream IdP's descriptor from its own metadata URL. An expired
// aggregate gives nothing.
func (r *Refresher) EntityIn(source, entityID string) (*saml.EntityDescriptor, []string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for i, st := range r.state {
		if r.sources[i].Name != source || st.agg == nil || !r.sources[i].now().Before(st.agg.ValidUntil) {
			continue
		}
		ed, ok := st.agg.Entities[entityID]
		return ed, slices.Clone(st.agg.Scopes[entityID]), ok
	}
	return nil, nil, false
}

// Only returns the one entityID of the named source's aggregate in use,
// when it lists exactly one.
func (r *Refresher) Only(source string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for i, st := range r.state {
		if r.sources[i].Name == source && st.agg != nil && len(st.agg.Entities) == 1 {
			for id := range st.agg.Entities {
				return id, true
			}
		}
	}
	return "", false
}

func (r *Refresher) find(entityID string) *Aggregate {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for i, st := range r.state {
		if st.agg == nil || r.sources[i].Private || !r.sources[i].now().Before(st.agg.ValidUntil) {
			continue
		}
		if _, ok := st.agg.Entities[entityID]; ok {
			return st.agg
		}
	}
	return nil
}

// Status returns the state of every source, in the order given.
func (r *Refresher) Status() []Status {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Status, len(r.sources))
	for i, st := range r.state {
		out[i] = Status{
			Source:      r.sources[i].Name,
			LastSuccess: st.lastSuccess,
			LastError:   st.lastError,
			NextRefresh: st.nextRefresh,
			Failures:    make(map[string]uint64, len(st.failures)),
		}
		for k, v := range st.failures {
			out[i].Failures[k] = v
		}
		if st.agg != nil {
			out[i].ValidUntil = st.agg.ValidUntil
			out[i].FromCache = st.agg.FromCache
			out[i].Entities = len(st.agg.Entities)
		}
	}
	return out
}

// collector exposes the refresher's metrics, read from Status at scrape
// time so that they can never disagree with it.
type collector struct {
	r                    *Refresher
	failures, validUntil *prometheus.Desc
}

// metricReasons are the reasons a refresh can fail with, exported at zero
// from the start so that rate() and increase() see the first failure.
var metricReasons = []string{
	ReasonUnreachable, ReasonTooLarge, ReasonBadSignature, ReasonExpired,
	ReasonNoValidUntil, ReasonMalformed, ReasonCacheWrite,
}

func newCollector(r *Refresher) *collector {
	return &collector{
		r: r,
		failures: prometheus.NewDesc(MetricRefreshFailures,
			"Metadata refreshes that failed, by source and fixed reason.",
			[]string{"source", "reason"}, nil),
		validUntil: prometheus.NewDesc(MetricValidUntil,
			"validUntil of the metadata aggregate in use, by source, as a Unix time; absent while a source has none.",
			[]string{"source"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.failures
	ch <- c.validUntil
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.r.Status() {
		for _, reason := range metricReasons {
			ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(st.Failures[reason]), st.Source, reason)
		}
		for reason, n := range st.Failures {
			if !slices.Contains(metricReasons, reason) {
				ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(n), st.Source, reason)
			}
		}
		if !st.ValidUntil.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.validUntil, prometheus.GaugeValue, float64(st.ValidUntil.Unix()), st.Source)
		}
	}
}
