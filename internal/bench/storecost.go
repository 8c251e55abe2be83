package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skolbro/skolbro/internal/store"
)

// pendingClass is the store key class of a login waiting for the school
// IdP's answer (internal/upstream/samlsp).
const pendingClass = "sp:req"

// countingStore passes every call to a Store and records, per key class,
// how many records were written and how large they were. It keeps one
// copy of a pending-login record for measuring what such records cost in
// the store. Keys and values of other classes are never kept: the replay
// cache holds assertion ids, and nothing here may leak them.
type countingStore struct {
	store.Store

	mu      sync.Mutex
	classes map[string]*writeStats
	sample  []byte // one pending-login value (no personal data: see samlsp)
	keyLen  int
}

type writeStats struct {
	n          int
	keyBytes   int
	valueBytes int
	ttl        time.Duration
}

func newCountingStore(s store.Store) *countingStore {
	return &countingStore{Store: s, classes: map[string]*writeStats{}}
}

func (c *countingStore) record(key string, value []byte, ttl time.Duration) {
	class := keyClass(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.classes[class]
	if s == nil {
		s = &writeStats{}
		c.classes[class] = s
	}
	s.n++
	s.keyBytes += len(key)
	s.valueBytes += len(value)
	s.ttl = max(s.ttl, ttl)
	if class == pendingClass && c.sample == nil {
		c.sample = slices.Clone(value)
		c.keyLen = len(key)
	}
}

// Put implements store.Store.
func (c *countingStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.record(key, value, ttl)
	return c.Store.Put(ctx, key, value, ttl)
}

// Add implements store.Store.
func (c *countingStore) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.record(key, value, ttl)
	return c.Store.Add(ctx, key, value, ttl)
}

// StoreRecord is what one kind of store record costs.
type StoreRecord struct {
	Class string `json:"class"`
	// Writes is how many were written in the run.
	Writes int `json:"writes"`
	// PerLogin is writes per completed login.
	PerLogin float64 `json:"per_login"`
	// KeyBytes and ValueBytes are averages.
	KeyBytes   float64 `json:"key_bytes"`
	ValueBytes float64 `json:"value_bytes"`
	// TTLSeconds is the longest time to live given.
	TTLSeconds float64 `json:"ttl_s"`
}

func (c *countingStore) resetCounts() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.classes = map[string]*writeStats{}
}

func (c *countingStore) records(logins int) []StoreRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []StoreRecord
	for class, s := range c.classes {
		r := StoreRecord{Class: class, Writes: s.n, KeyBytes: float64(s.keyBytes) / float64(s.n),
			ValueBytes: float64(s.valueBytes) / float64(s.n), TTLSeconds: s.ttl.Seconds()}
		if logins > 0 {
			r.PerLogin = float64(s.n) / float64(logins)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b StoreRecord) int { return strings.Compare(a.Class, b.Class) })
	return out
}

func (c *countingStore) pendingSample() ([]byte, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sample, c.keyLen
}

// memoryBytesPerEntry measures what one record of keyLen and value costs
// in a fresh memory store, including the store's own bookkeeping (map
// entry, expiry queue): the live heap grown by n such records, divided by
// n. The store is the same type the bridge runs with; nothing else runs
// meanwhile that would keep much live heap, and n is large enough for
// the noise to vanish in the average.
func memoryBytesPerEntry(value []byte, keyLen, n int) (float64, error) {
	ctx := context.Background()
	keys := make([]string, n)
	for i := range keys {
		k := "sp:req:_" + strconv.Itoa(i)
		if pad := keyLen - len(k); pad > 0 {
			k += strings.Repeat("0", pad)
		}
		keys[i] = k
	}
	m := store.NewMemory(nil)
	defer m.Close()
	before := liveHeap()
	for _, k := range keys {
		// A fresh copy per record, as the bridge makes one per login.
		if err := m.Put(ctx, k, slices.Clone(value), 10*time.Minute); err != nil {
			return 0, fmt.Errorf("memory store: %w", err)
		}
	}
	after := liveHeap()
	runtime.KeepAlive(m)
	// The key strings were live before as well: count them in.
	keyBytes := 0
	for _, k := range keys {
		keyBytes += len(k)
	}
	return (float64(after-before) + float64(keyBytes)) / float64(n), nil
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
