package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// sweepPerWrite is how many queued keys each write examines. The queue
// holds one item per entry (plus stale items of removed entries) and each
// write queues at most one, so a sweep of more than one item per write
// reaches every item queued now within len(queue)/sweepPerWrite writes:
// whatever has expired is gone after a bounded number of writes, whatever
// the keys and TTLs, with constant (amortised) work per write and no
// janitor goroutine.
const sweepPerWrite = 3

// Memory is a Store held in this process: the default for a single
// instance. Expiry follows the injected clock. It is safe for concurrent use.
type Memory struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[string]memoryEntry // nil once closed
	// queue holds one item per entry, in the order the sweep visits them,
	// plus items whose entry has since been removed (dropped when reached).
	queue   []sweepItem
	head    int    // index in queue of the next item to sweep
	lastGen uint64 // last generation handed out
}

type memoryEntry struct {
	value   []byte
	expires time.Time
	// gen ties the entry to its queue item; a key deleted and stored again
	// gets a new generation, so the old item is recognised as stale.
	gen uint64
}

type sweepItem struct {
	key string
	gen uint64
}

// expired reports whether e has expired at now; an entry expires at the
// instant its time to live has passed, as in Redis.
func (e memoryEntry) expired(now time.Time) bool {
	return !now.Before(e.expires)
}

var (
	_ Store       = (*Memory)(nil)
	_ MultiGetter = (*Memory)(nil)
)

// NewMemory returns an empty Memory store whose expiry follows now
// (time.Now when nil).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, entries: make(map[string]memoryEntry)}
}

// Put stores a copy of value under key for ttl, replacing any value.
func (m *Memory) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := m.begin(ctx, ttl); err != nil {
		return fmt.Errorf("store: memory put: %w", err)
	}
	v := clone(value)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		return fmt.Errorf("store: memory put: %w: %w", ErrBackend, ErrClosed)
	}
	now := m.now()
	m.store(key, v, now.Add(ttl))
	m.sweep(now)
	return nil
}

// Add stores a copy of value under key for ttl if key is absent or expired;
// otherwise it returns ErrExists and leaves the stored value unchanged.
func (m *Memory) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := m.begin(ctx, ttl); err != nil {
		return fmt.Errorf("store: memory add: %w", err)
	}
	v := clone(value)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		return fmt.Errorf("store: memory add: %w: %w", ErrBackend, ErrClosed)
	}
	now := m.now()
	if e, ok := m.entries[key]; ok && !e.expired(now) {
		return ErrExists
	}
	m.store(key, v, now.Add(ttl))
	m.sweep(now)
	return nil
}

// Get returns a copy of the value under key, or ErrNotFound.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: memory get: %w: %w", ErrBackend, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.lookup(key)
	if err != nil {
		return nil, err
	}
	return clone(e.value), nil
}

// GetMany returns copies of the values under keys, under one lock, as
// MultiGetter says.
func (m *Memory) GetMany(ctx context.Context, keys ...string) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: memory get: %w: %w", ErrBackend, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return collect(len(keys), func(i int) ([]byte, error) {
		e, err := m.lookup(keys[i])
		return clone(e.value), err
	})
}

// Take returns the value under key and deletes it, or returns ErrNotFound.
func (m *Memory) Take(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: memory take: %w: %w", ErrBackend, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.lookup(key)
	if err != nil {
		return nil, err
	}
	delete(m.entries, key)
	// The entry has left the map, so its slice has no other holder and can
	// be handed out without a copy.
	return e.value, nil
}

// Delete removes key; deleting an absent key is not an error.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: memory delete: %w: %w", ErrBackend, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		return fmt.Errorf("store: memory delete: %w: %w", ErrBackend, ErrClosed)
	}
	delete(m.entries, key)
	return nil
}

// Ping reports an error only once the store is closed.
func (m *Memory) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: memory ping: %w: %w", ErrBackend, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		return fmt.Errorf("store: memory ping: %w: %w", ErrBackend, ErrClosed)
	}
	return nil
}

// Close drops every entry; later calls return an error wrapping ErrBackend
// and ErrClosed. Closing twice is not an error.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = nil
	m.queue, m.head = nil, 0
	return nil
}

// begin checks what Put and Add can check before taking the lock.
func (m *Memory) begin(ctx context.Context, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrBackend, err)
	}
	return nil
}

// lookup returns the live entry under key, deleting it if it has expired.
// m.mu must be held.
func (m *Memory) lookup(key string) (memoryEntry, error) {
	if m.entries == nil {
		return memoryEntry{}, fmt.Errorf("store: memory: %w: %w", ErrBackend, ErrClosed)
	}
	e, ok := m.entries[key]
	if !ok {
		return memoryEntry{}, ErrNotFound
	}
	if e.expired(m.now()) {
		delete(m.entries, key)
		return memoryEntry{}, ErrNotFound
	}
	return e, nil
}

// store sets key's entry, queueing the key for the sweep unless it already
// has a live queue item. m.mu must be held.
func (m *Memory) store(key string, value []byte, expires time.Time) {
	e, ok := m.entries[key]
	if !ok {
		m.lastGen++
		e.gen = m.lastGen
		m.queue = append(m.queue, sweepItem{key: key, gen: e.gen})
	}
	e.value, e.expires = value, expires
	m.entries[key] = e
}

// sweep examines the next sweepPerWrite queued keys: an expired entry is
// deleted, a stale item dropped, and a live entry's item requeued at the
// back. m.mu must be held.
func (m *Memory) sweep(now time.Time) {
	for range sweepPerWrite {
		if m.head == len(m.queue) {
			break
		}
		it := m.queue[m.head]
		m.queue[m.head] = sweepItem{} // release the key string
		m.head++
		e, ok := m.entries[it.key]
		switch {
		case !ok || e.gen != it.gen:
			// Taken, deleted, or deleted and stored again under a newer item.
		case e.expired(now):
			delete(m.entries, it.key)
		default:
			m.queue = append(m.queue, it)
		}
	}
	// Drop the swept prefix once it is at least half the slice: a copy of
	// n items after at least n items were swept keeps the cost amortised
	// constant.
	if m.head >= 64 && 2*m.head >= len(m.queue) {
		rest := m.queue[m.head:]
		if cap(m.queue) >= 1024 && 4*len(rest) < cap(m.queue) {
			// After a flood has drained, give back most of its memory.
			m.queue = append(make([]sweepItem, 0, 2*len(rest)), rest...)
		} else {
			n := copy(m.queue, rest)
			clear(m.queue[n:])
			m.queue = m.queue[:n]
		}
		m.head = 0
	}
}

// len returns the number of entries held, expired ones included, and the
// number of queued sweep items (for tests).
func (m *Memory) len() (entries, queued int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries), len(m.queue) - m.head
}

// clone copies b into a new, never nil, slice.
func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}
