package store

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 8, 17, 8, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// clockedMemory is a Memory together with the clock that drives it, so that
// fastForward can find the clock from the Store it is given.
type clockedMemory struct {
	*Memory
	clock *fakeClock
}

func newClockedMemory(t *testing.T) *clockedMemory {
	t.Helper()
	clock := newFakeClock()
	m := NewMemory(clock.Now)
	t.Cleanup(func() { _ = m.Close() })
	return &clockedMemory{Memory: m, clock: clock}
}

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	RunConformance(t,
		func(t *testing.T) Store { return newClockedMemory(t) },
		func(t *testing.T, s Store, d time.Duration) { s.(*clockedMemory).clock.Advance(d) },
	)
}

// A flood of short-lived Puts must not grow the store without bound once
// the entries have expired, although nothing reads them back.
func TestMemoryStaysBounded(t *testing.T) {
	t.Parallel()
	const puts = 100_000
	tests := []struct {
		name string
		run  func(ctx context.Context, m *clockedMemory) error
		// maxEntries bounds the map, and maxQueued the sweep queue, after
		// the flood.
		maxEntries, maxQueued int
	}{
		{
			// Each entry has expired by the time of the next Put.
			name: "each-expired-before-next-put",
			run: func(ctx context.Context, m *clockedMemory) error {
				for i := range puts {
					if err := m.Put(ctx, strconv.Itoa(i), []byte("v"), time.Millisecond); err != nil {
						return err
					}
					m.clock.Advance(2 * time.Millisecond)
				}
				return nil
			},
			maxEntries: 2, maxQueued: 2,
		},
		{
			// Adds count as writes like Puts.
			name: "adds",
			run: func(ctx context.Context, m *clockedMemory) error {
				for i := range puts {
					if err := m.Add(ctx, strconv.Itoa(i), []byte("v"), time.Millisecond); err != nil {
						return err
					}
					m.clock.Advance(2 * time.Millisecond)
				}
				return nil
			},
			maxEntries: 2, maxQueued: 2,
		},
		{
			// A first flood expires all at once; a second flood of live
			// entries sweeps all of it away while it is written.
			name: "second-flood-sweeps-first",
			run: func(ctx context.Context, m *clockedMemory) error {
				for i := range puts {
					if err := m.Put(ctx, "a"+strconv.Itoa(i), []byte("v"), time.Millisecond); err != nil {
						return err
					}
				}
				m.clock.Advance(time.Second)
				for i := range puts {
					if err := m.Put(ctx, "b"+strconv.Itoa(i), []byte("v"), time.Hour); err != nil {
						return err
					}
				}
				return nil
			},
			maxEntries: puts, maxQueued: puts,
		},
		{
			// Keys taken straight after being stored leave queue items
			// behind; the sweep drops them.
			name: "put-then-take",
			run: func(ctx context.Context, m *clockedMemory) error {
				for i := range puts {
					if err := m.Put(ctx, strconv.Itoa(i), []byte("v"), time.Hour); err != nil {
						return err
					}
					if _, err := m.Take(ctx, strconv.Itoa(i)); err != nil {
						return err
					}
				}
				return nil
			},
			maxEntries: 0, maxQueued: 1,
		},
		{
			// One key taken and stored again over and over: the items of
			// its earlier lives are recognised as stale and dropped.
			name: "same-key-taken-and-stored-again",
			run: func(ctx context.Context, m *clockedMemory) error {
				for range puts {
					if err := m.Put(ctx, "k", []byte("v"), time.Hour); err != nil {
						return err
					}
					if _, err := m.Take(ctx, "k"); err != nil {
						return err
					}
				}
				return m.Put(ctx, "k", []byte("v"), time.Hour)
			},
			maxEntries: 1, maxQueued: 1,
		},
		{
			// One key replaced over and over is queued once.
			name: "same-key-replaced",
			run: func(ctx context.Context, m *clockedMemory) error {
				for range puts {
					if err := m.Put(ctx, "k", []byte("v"), time.Hour); err != nil {
						return err
					}
				}
				return nil
			},
			maxEntries: 1, maxQueued: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newClockedMemory(t)
			if err := tc.run(t.Context(), m); err != nil {
				t.Fatalf("flood: %v", err)
			}
			entries, queued := m.len()
			if entries > tc.maxEntries || queued > tc.maxQueued {
				t.Errorf("after the flood: %d entries and %d queued, want at most %d and %d", entries, queued, tc.maxEntries, tc.maxQueued)
			}
		})
	}
}

// Expired entries stay until a write sweeps them or a read finds them, so
// the bounds above are the sweep's doing, and each write sweeps a bounded
// number of them.
func TestMemorySweepIsBounded(t *testing.T) {
	t.Parallel()
	const n = 100
	m := newClockedMemory(t)
	ctx := t.Context()
	for i := range n {
		if err := m.Put(ctx, strconv.Itoa(i), []byte("v"), time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	m.clock.Advance(time.Second)
	if entries, _ := m.len(); entries != n {
		t.Fatalf("before any write: %d entries, want %d (expired, not yet swept)", entries, n)
	}
	// One write sweeps sweepPerWrite queue items, here all expired.
	if err := m.Put(ctx, "new", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if entries, _ := m.len(); entries != n-sweepPerWrite+1 {
		t.Fatalf("after one write: %d entries, want %d", entries, n-sweepPerWrite+1)
	}
	// A read of an expired entry removes it.
	for i := range n {
		if _, err := m.Get(ctx, strconv.Itoa(i)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get of expired entry = %v, want ErrNotFound", err)
		}
	}
	if entries, _ := m.len(); entries != 1 {
		t.Fatalf("after reading every expired key: %d entries, want 1", entries)
	}
}

func TestMemoryExpiryBoundary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		advance time.Duration
		wantErr error
	}{
		{"just-before", time.Second - time.Nanosecond, nil},
		{"at-ttl", time.Second, ErrNotFound},
		{"after", time.Second + time.Nanosecond, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newClockedMemory(t)
			if err := m.Put(t.Context(), "k", []byte("v"), time.Second); err != nil {
				t.Fatal(err)
			}
			m.clock.Advance(tc.advance)
			if _, err := m.Get(t.Context(), "k"); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Get after %v = %v, want %v", tc.advance, err, tc.wantErr)
			}
		})
	}
}

func TestMemoryClosed(t *testing.T) {
	t.Parallel()
	m := NewMemory(nil)
	ctx := t.Context()
	if err := m.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ops := map[string]func() error{
		"put":    func() error { return m.Put(ctx, "k", []byte("v"), time.Minute) },
		"add":    func() error { return m.Add(ctx, "k2", []byte("v"), time.Minute) },
		"get":    func() error { _, err := m.Get(ctx, "k"); return err },
		"take":   func() error { _, err := m.Take(ctx, "k"); return err },
		"delete": func() error { return m.Delete(ctx, "k") },
		"ping":   func() error { return m.Ping(ctx) },
	}
	for name, op := range ops {
		err := op()
		if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrBackend) || errors.Is(err, ErrNotFound) {
			t.Errorf("%s after Close = %v, want ErrClosed and ErrBackend, not ErrNotFound", name, err)
		}
	}
}

func TestMemoryCanceledContext(t *testing.T) {
	t.Parallel()
	m := newClockedMemory(t)
	if err := m.Put(t.Context(), "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := m.Take(ctx, "k"); !errors.Is(err, context.Canceled) || errors.Is(err, ErrNotFound) {
		t.Fatalf("Take with canceled context = %v, want context.Canceled", err)
	}
	// The canceled Take did not consume the value.
	if _, err := m.Get(t.Context(), "k"); err != nil {
		t.Fatalf("Get after canceled Take: %v", err)
	}
}

func BenchmarkMemoryPutTake(b *testing.B) {
	m := NewMemory(nil)
	defer m.Close()
	ctx := context.Background()
	value := []byte("0123456789abcdef0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Put(ctx, "bench", value, time.Minute); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Take(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}
