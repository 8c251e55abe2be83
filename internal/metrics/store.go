package metrics

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/skolbro/skolbro/internal/store"
)

// InstrumentStore wraps s so that every operation's latency is observed
// and its failures counted by operation. store.ErrNotFound and
// store.ErrExists are answers, not failures, and are not counted. Results
// and errors pass through unchanged, so callers' errors.Is checks keep
// working.
//
// The wrapper hides s's own methods beyond store.Store (e.g.
// (*store.Redis).Client): take what needs them from s before wrapping, or
// use Unwrap. Close is passed on when s has one.
func (m *Metrics) InstrumentStore(s store.Store) store.Store {
	return &instrumented{inner: s, m: m}
}

// instrumented is a store.Store that reports to Metrics.
type instrumented struct {
	inner store.Store
	m     *Metrics
}

var _ store.Store = (*instrumented)(nil)

// Unwrap returns the wrapped store.
func (s *instrumented) Unwrap() store.Store { return s.inner }

func (s *instrumented) observe(op string, start time.Time, err error) {
	s.m.storeLatency.WithLabelValues(op).Observe(s.m.now().Sub(start).Seconds())
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrExists) {
		s.m.storeErrors.WithLabelValues(op).Inc()
	}
}

// Put calls the wrapped store's Put.
func (s *instrumented) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	start := s.m.now()
	err := s.inner.Put(ctx, key, value, ttl)
	s.observe("put", start, err)
	return err
}

// Add calls the wrapped store's Add.
func (s *instrumented) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	start := s.m.now()
	err := s.inner.Add(ctx, key, value, ttl)
	s.observe("add", start, err)
	return err
}

// Get calls the wrapped store's Get.
func (s *instrumented) Get(ctx context.Context, key string) ([]byte, error) {
	start := s.m.now()
	v, err := s.inner.Get(ctx, key)
	s.observe("get", start, err)
	return v, err
}

// GetMany calls the wrapped store's GetMany (store.GetMany: one Get per
// key when it has none).
func (s *instrumented) GetMany(ctx context.Context, keys ...string) ([][]byte, error) {
	start := s.m.now()
	v, err := store.GetMany(ctx, s.inner, keys...)
	s.observe("get_many", start, err)
	return v, err
}

// Take calls the wrapped store's Take.
func (s *instrumented) Take(ctx context.Context, key string) ([]byte, error) {
	start := s.m.now()
	v, err := s.inner.Take(ctx, key)
	s.observe("take", start, err)
	return v, err
}

// Delete calls the wrapped store's Delete.
func (s *instrumented) Delete(ctx context.Context, key string) error {
	start := s.m.now()
	err := s.inner.Delete(ctx, key)
	s.observe("delete", start, err)
	return err
}

// Ping calls the wrapped store's Ping.
func (s *instrumented) Ping(ctx context.Context) error {
	start := s.m.now()
	err := s.inner.Ping(ctx)
	s.observe("ping", start, err)
	return err
}

// Close closes the wrapped store when it has a Close method.
func (s *instrumented) Close() error {
	if c, ok := s.inner.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
