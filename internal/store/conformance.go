package store

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Time to live in the conformance suite. ShortTTL entries are expected to
// expire after fastForward(2*ShortTTL); it is short so that a run against a
// real Redis, where fastForward sleeps, stays quick. LongTTL entries must
// outlive every test.
const (
	conformanceShortTTL = time.Second
	conformanceLongTTL  = 10 * time.Minute
)

// RunConformance runs the behaviour every Store must have as parallel
// sub-tests of t. newStore returns the store for one sub-test (it may be
// fresh or shared, and should register its own cleanup); fastForward makes
// d pass for s, by advancing an injected clock or by sleeping. Both are
// called from parallel sub-tests. Every sub-test uses its own keys, derived
// from its name, and deletes them when it ends, so the suite can run against
// a shared real Redis.
func RunConformance(t *testing.T, newStore func(t *testing.T) Store, fastForward func(t *testing.T, s Store, d time.Duration)) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, c *conformance)
	}{
		{"put-get", testPutGet},
		{"put-replaces", testPutReplaces},
		{"put-replaces-ttl", testPutReplacesTTL},
		{"get-missing", testGetMissing},
		{"take-returns-then-not-found", testTake},
		{"take-missing", testTakeMissing},
		{"add-absent-then-present", testAdd},
		{"add-after-expiry", testAddAfterExpiry},
		{"add-after-take-and-delete", testAddAfterTakeAndDelete},
		{"delete", testDelete},
		{"put-expires", testPutExpires},
		{"add-expires", testAddExpires},
		{"invalid-ttl", testInvalidTTL},
		{"values-not-aliased", testNotAliased},
		{"empty-value", testEmptyValue},
		{"binary-value", testBinaryValue},
		{"large-value", testLargeValue},
		{"concurrent-take", testConcurrentTake},
		{"concurrent-add", testConcurrentAdd},
		{"get-many", testGetMany},
		{"ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			c := &conformance{t: t, s: s, ctx: context.Background()}
			c.fastForward = func(d time.Duration) { fastForward(t, s, d) }
			tc.run(t, c)
		})
	}
}

// conformance carries one sub-test's store and helpers.
type conformance struct {
	t           *testing.T
	s           Store
	ctx         context.Context
	fastForward func(d time.Duration)
	n           int
}

// key returns a key unique to this sub-test and deletes it when the
// sub-test ends (before the store's own cleanup, which was registered
// earlier).
func (c *conformance) key() string {
	c.n++
	k := "conformance/" + c.t.Name() + "/" + strconv.Itoa(c.n)
	c.t.Cleanup(func() {
		if err := c.s.Delete(context.Background(), k); err != nil {
			c.t.Errorf("cleanup: Delete: %v", err)
		}
	})
	return k
}

func (c *conformance) put(key string, value []byte, ttl time.Duration) {
	c.t.Helper()
	if err := c.s.Put(c.ctx, key, value, ttl); err != nil {
		c.t.Fatalf("Put: %v", err)
	}
}

// want checks that Get returns value without consuming it.
func (c *conformance) want(key string, value []byte) {
	c.t.Helper()
	got, err := c.s.Get(c.ctx, key)
	if err != nil {
		c.t.Fatalf("Get: %v, want value %q", err, value)
	}
	if !bytes.Equal(got, value) {
		c.t.Fatalf("Get = %q, want %q", got, value)
	}
}

// wantMissing checks that Get reports ErrNotFound.
func (c *conformance) wantMissing(key string) {
	c.t.Helper()
	got, err := c.s.Get(c.ctx, key)
	if !errors.Is(err, ErrNotFound) {
		c.t.Fatalf("Get = %q, %v; want ErrNotFound", got, err)
	}
}

func testPutGet(t *testing.T, c *conformance) {
	k := c.key()
	c.put(k, []byte("v1"), conformanceLongTTL)
	c.want(k, []byte("v1"))
	c.want(k, []byte("v1")) // Get does not consume
}

func testPutReplaces(t *testing.T, c *conformance) {
	k := c.key()
	c.put(k, []byte("first"), conformanceLongTTL)
	c.put(k, []byte("second"), conformanceLongTTL)
	c.want(k, []byte("second"))
}

// Put replaces the time to live too: a short entry overwritten by a long
// one survives the short one's expiry.
func testPutReplacesTTL(t *testing.T, c *conformance) {
	k := c.key()
	c.put(k, []byte("short"), conformanceShortTTL)
	c.put(k, []byte("long"), conformanceLongTTL)
	c.fastForward(2 * conformanceShortTTL)
	c.want(k, []byte("long"))
}

func testGetMissing(t *testing.T, c *conformance) {
	c.wantMissing(c.key())
}

func testTake(t *testing.T, c *conformance) {
	k := c.key()
	c.put(k, []byte("once"), conformanceLongTTL)
	got, err := c.s.Take(c.ctx, k)
	if err != nil || !bytes.Equal(got, []byte("once")) {
		t.Fatalf("first Take = %q, %v; want %q, nil", got, err, "once")
	}
	got, err = c.s.Take(c.ctx, k)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Take = %q, %v; want ErrNotFound", got, err)
	}
	c.wantMissing(k)
}

func testTakeMissing(t *testing.T, c *conformance) {
	got, err := c.s.Take(c.ctx, c.key())
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Take = %q, %v; want ErrNotFound", got, err)
	}
}

func testAdd(t *testing.T, c *conformance) {
	k := c.key()
	if err := c.s.Add(c.ctx, k, []byte("first"), conformanceLongTTL); err != nil {
		t.Fatalf("Add on absent key: %v", err)
	}
	err := c.s.Add(c.ctx, k, []byte("second"), conformanceLongTTL)
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Add on present key = %v, want ErrExists", err)
	}
	c.want(k, []byte("first"))

	// Add also refuses a key that Put stored.
	k2 := c.key()
	c.put(k2, []byte("put"), conformanceLongTTL)
	if err := c.s.Add(c.ctx, k2, []byte("add"), conformanceLongTTL); !errors.Is(err, ErrExists) {
		t.Fatalf("Add on key stored by Put = %v, want ErrExists", err)
	}
	c.want(k2, []byte("put"))
}

func testAddAfterExpiry(t *testing.T, c *conformance) {
	k := c.key()
	if err := c.s.Add(c.ctx, k, []byte("old"), conformanceShortTTL); err != nil {
		t.Fatalf("first Add: %v", err)
	}
	c.fastForward(2 * conformanceShortTTL)
	if err := c.s.Add(c.ctx, k, []byte("new"), conformanceLongTTL); err != nil {
		t.Fatalf("Add after expiry: %v", err)
	}
	c.want(k, []byte("new"))
}

func testAddAfterTakeAndDelete(t *testing.T, c *conformance) {
	k := c.key()
	c.put(k, []byte("v"), conformanceLongTTL)
	if _, err := c.s.Take(c.ctx, k); err != nil {
		t.Fatalf("Take: %v", err)
	}
	if err := c.s.Add(c.ctx, k, []byte("after-take"), conformanceLongTTL); err != nil {
		t.Fatalf("Add after Take: %v", err)
	}
	if err := c.s.Delete(c.ctx, k); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := c.s.Add(c.ctx, k, []byte("after-delete"), conformanceLongTTL); err != nil {
		t.Fatalf("Add after Delete: %v", err)
	}
	c.want(k, []byte("after-delete"))
}

func testDelete(t *testing.T, c *conformance) {
	k, other := c.key(), c.key()
	c.put(k, []byte("v"), conformanceLongTTL)
	c.put(other, []byte("other"), conformanceLongTTL)
	if err := c.s.Delete(c.ctx, k); err != nil {
		t.Fatalf("Delete of present key: %v", err)
	}
	c.wantMissing(k)
	c.want(other, []byte("other"))
	if err := c.s.Delete(c.ctx, k); err != nil {
		t.Fatalf("Delete of deleted key: %v", err)
	}
	if err := c.s.Delete(c.ctx, c.key()); err != nil {
		t.Fatalf("Delete of never stored key: %v", err)
	}
}

func testPutExpires(t *testing.T, c *conformance) {
	k, long := c.key(), c.key()
	c.put(k, []byte("v"), conformanceShortTTL)
	c.put(long, []byte("long"), conformanceLongTTL)
	c.want(k, []byte("v"))
	c.fastForward(2 * conformanceShortTTL)
	c.wantMissing(k)
	if got, err := c.s.Take(c.ctx, k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Take after expiry = %q, %v; want ErrNotFound", got, err)
	}
	c.want(long, []byte("long"))
}

func testAddExpires(t *testing.T, c *conformance) {
	k := c.key()
	if err := c.s.Add(c.ctx, k, []byte("v"), conformanceShortTTL); err != nil {
		t.Fatalf("Add: %v", err)
	}
	c.want(k, []byte("v"))
	c.fastForward(2 * conformanceShortTTL)
	c.wantMissing(k)
	if got, err := c.s.Take(c.ctx, k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Take after expiry = %q, %v; want ErrNotFound", got, err)
	}
}

func testInvalidTTL(t *testing.T, c *conformance) {
	for _, ttl := range []time.Duration{0, -time.Second, time.Millisecond - 1, time.Nanosecond} {
		k := c.key()
		if err := c.s.Put(c.ctx, k, []byte("v"), ttl); !errors.Is(err, ErrInvalidTTL) {
			t.Errorf("Put with ttl %v = %v, want ErrInvalidTTL", ttl, err)
		}
		if err := c.s.Add(c.ctx, k, []byte("v"), ttl); !errors.Is(err, ErrInvalidTTL) {
			t.Errorf("Add with ttl %v = %v, want ErrInvalidTTL", ttl, err)
		}
		c.wantMissing(k)
	}
	k := c.key()
	c.put(k, []byte("v"), MinTTL) // the shortest valid ttl is accepted
}

func testNotAliased(t *testing.T, c *conformance) {
	k := c.key()
	in := []byte("original")
	c.put(k, in, conformanceLongTTL)
	copy(in, "CHANGED!")
	c.want(k, []byte("original"))

	out, err := c.s.Get(c.ctx, k)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	copy(out, "CHANGED!")
	c.want(k, []byte("original"))

	k2 := c.key()
	in2 := []byte("added")
	if err := c.s.Add(c.ctx, k2, in2, conformanceLongTTL); err != nil {
		t.Fatalf("Add: %v", err)
	}
	copy(in2, "XXXXX")
	c.want(k2, []byte("added"))

	// Appending to a returned slice must not write into the store either.
	out, err = c.s.Get(c.ctx, k2)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	_ = append(out[:1], "YYYY"...)
	c.want(k2, []byte("added"))
}

func testEmptyValue(t *testing.T, c *conformance) {
	for _, v := range [][]byte{nil, {}} {
		k := c.key()
		c.put(k, v, conformanceLongTTL)
		got, err := c.s.Get(c.ctx, k)
		if err != nil || len(got) != 0 {
			t.Fatalf("Get of empty value = %q, %v; want empty, nil", got, err)
		}
		got, err = c.s.Take(c.ctx, k)
		if err != nil || len(got) != 0 {
			t.Fatalf("Take of empty value = %q, %v; want empty, nil", got, err)
		}
		c.wantMissing(k)
	}
	k := c.key()
	if err := c.s.Add(c.ctx, k, nil, conformanceLongTTL); err != nil {
		t.Fatalf("Add of empty value: %v", err)
	}
	// An empty value is still a value: a second Add is refused.
	if err := c.s.Add(c.ctx, k, []byte("x"), conformanceLongTTL); !errors.Is(err, ErrExists) {
		t.Fatalf("Add over empty value = %v, want ErrExists", err)
	}
}

func testBinaryValue(t *testing.T, c *conformance) {
	v := make([]byte, 0, 512)
	for i := range 256 {
		v = append(v, byte(i))
	}
	v = append(v, "\r\n$-1\r\n\x00\xff\xfe"...) // protocol-looking bytes and invalid UTF-8
	k := c.key()
	c.put(k, v, conformanceLongTTL)
	c.want(k, v)
	got, err := c.s.Take(c.ctx, k)
	if err != nil || !bytes.Equal(got, v) {
		t.Fatalf("Take of binary value = %q, %v; want %q", got, err, v)
	}
}

func testLargeValue(t *testing.T, c *conformance) {
	v := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16) // 64 KiB
	k := c.key()
	c.put(k, v, conformanceLongTTL)
	c.want(k, v)
}

const concurrency = 50

func testConcurrentTake(t *testing.T, c *conformance) {
	k := c.key()
	c.put(k, []byte("prize"), conformanceLongTTL)
	var (
		start            = make(chan struct{})
		wg               sync.WaitGroup
		mu               sync.Mutex
		wins, misses     int
		otherErrs        []error
		wrongWinnerValue []byte
	)
	for range concurrency {
		wg.Go(func() {
			<-start
			v, err := c.s.Take(c.ctx, k)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
				if !bytes.Equal(v, []byte("prize")) {
					wrongWinnerValue = v
				}
			case errors.Is(err, ErrNotFound):
				misses++
			default:
				otherErrs = append(otherErrs, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(otherErrs) > 0 {
		t.Fatalf("Take errors other than ErrNotFound: %v", otherErrs)
	}
	if wins != 1 || misses != concurrency-1 {
		t.Fatalf("%d concurrent Takes: %d got the value and %d ErrNotFound; want 1 and %d", concurrency, wins, misses, concurrency-1)
	}
	if wrongWinnerValue != nil {
		t.Fatalf("winning Take got %q, want %q", wrongWinnerValue, "prize")
	}
	c.wantMissing(k)
}

func testConcurrentAdd(t *testing.T, c *conformance) {
	k := c.key()
	var (
		start     = make(chan struct{})
		wg        sync.WaitGroup
		mu        sync.Mutex
		winners   []int
		exists    int
		otherErrs []error
	)
	for i := range concurrency {
		wg.Go(func() {
			<-start
			err := c.s.Add(c.ctx, k, []byte(strconv.Itoa(i)), conformanceLongTTL)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, i)
			case errors.Is(err, ErrExists):
				exists++
			default:
				otherErrs = append(otherErrs, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(otherErrs) > 0 {
		t.Fatalf("Add errors other than ErrExists: %v", otherErrs)
	}
	if len(winners) != 1 || exists != concurrency-1 {
		t.Fatalf("%d concurrent Adds: %d succeeded and %d got ErrExists; want 1 and %d", concurrency, len(winners), exists, concurrency-1)
	}
	// The stored value is the winner's.
	c.want(k, []byte(strconv.Itoa(winners[0])))
}

// testGetMany: GetMany answers key by key, in order, through the store's
// own MultiGetter where it has one; nil means absent, and an empty value is
// present. It consumes nothing.
func testGetMany(t *testing.T, c *conformance) {
	full, empty, missing, expired := c.key(), c.key(), c.key(), c.key()
	c.put(full, []byte("v1"), conformanceLongTTL)
	c.put(empty, nil, conformanceLongTTL)
	c.put(expired, []byte("old"), conformanceShortTTL)
	c.fastForward(2 * conformanceShortTTL)
	keys := []string{full, missing, empty, expired, full}
	for _, via := range []string{"GetMany", "MultiGetter"} {
		var got [][]byte
		var err error
		if via == "GetMany" {
			got, err = GetMany(c.ctx, c.s, keys...)
		} else if m, ok := c.s.(MultiGetter); ok {
			got, err = m.GetMany(c.ctx, keys...)
		} else {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", via, err)
		}
		if len(got) != len(keys) {
			t.Fatalf("%s returned %d values for %d keys", via, len(got), len(keys))
		}
		if string(got[0]) != "v1" || string(got[4]) != "v1" {
			t.Errorf("%s: present key = %q, %q; want v1", via, got[0], got[4])
		}
		if got[1] != nil || got[3] != nil {
			t.Errorf("%s: absent and expired keys = %q, %q; want nil", via, got[1], got[3])
		}
		if got[2] == nil || len(got[2]) != 0 {
			t.Errorf("%s: empty value = %#v; want empty, not nil", via, got[2])
		}
		got[0][0] = 'X' // a copy: the stored value is not changed
	}
	c.want(full, []byte("v1"))
	c.want(empty, nil)
	if got, err := GetMany(c.ctx, c.s); err != nil || len(got) != 0 {
		t.Errorf("GetMany of no keys = %q, %v", got, err)
	}
}

func testPing(t *testing.T, c *conformance) {
	if err := c.s.Ping(c.ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
