// Package ratelimit protects the bridge from bursts (SECURITY.md case 42):
// token buckets per key (a client address, a vendor) with a hard cap on
// how many keys are tracked, and a cap on requests in flight that sheds
// load with a quick 503 instead of letting latency grow without bound.
//
// Keys are addresses and vendor ids, never request content. Nothing here
// logs; rejections are reported through OnReject (for metrics).
package ratelimit

import (
	"container/list"
	"errors"
	"math"
	"sync"
	"time"
)

// DefaultMaxKeys is how many keys a Limiter tracks unless WithMaxKeys says
// otherwise: a few megabytes at most.
const DefaultMaxKeys = 50_000

// Reasons passed to OnReject.
const (
	// ReasonRateLimited: a key ran out of tokens (429).
	ReasonRateLimited = "rate_limited"
	// ReasonOverloaded: too many requests in flight (503).
	ReasonOverloaded = "overloaded"
)

// Option configures a Limiter or MaxInFlight.
type Option func(*options)

type options struct {
	now      func() time.Time
	maxKeys  int
	onReject func(reason string)
}

// WithClock sets the clock buckets refill by (time.Now by default).
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithMaxKeys caps the keys a Limiter tracks. When a new key arrives at
// the cap, the least recently seen key is forgotten: it starts again with
// a full bucket if it comes back, which for a key idle long enough to be
// the oldest is usually what it would have had anyway.
func WithMaxKeys(n int) Option {
	return func(o *options) { o.maxKeys = n }
}

// OnReject is called with ReasonRateLimited or ReasonOverloaded for every
// request turned away, e.g. to count it in metrics. It must be fast.
func OnReject(f func(reason string)) Option {
	return func(o *options) { o.onReject = f }
}

func build(opts []Option) options {
	o := options{now: time.Now, maxKeys: DefaultMaxKeys}
	for _, f := range opts {
		f(&o)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.onReject == nil {
		o.onReject = func(string) {}
	}
	return o
}

// Limiter is a set of token buckets, one per key: each holds up to burst
// tokens, refills at rate tokens per second, and a request takes one.
// Memory is bounded by the key cap (least recently seen keys are evicted),
// whatever the number of distinct keys offered. It is safe for concurrent
// use.
type Limiter struct {
	rate  float64
	burst float64
	opts  options

	mu    sync.Mutex
	items map[string]*list.Element // key -> element holding *bucket
	lru   *list.List               // front: most recently seen
}

type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

// New returns a Limiter allowing rate requests per second per key, with
// bursts of up to burst requests.
func New(rate float64, burst int, opts ...Option) (*Limiter, error) {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil, errors.New("ratelimit: rate must be a positive number")
	}
	if burst < 1 {
		return nil, errors.New("ratelimit: burst must be at least 1")
	}
	o := build(opts)
	if o.maxKeys < 1 {
		return nil, errors.New("ratelimit: the key cap must be at least 1")
	}
	return &Limiter{rate: rate, burst: float64(burst), opts: o,
		items: make(map[string]*list.Element), lru: list.New()}, nil
}

// Allow takes a token for key. When none is left it returns false and how
// long until one will be.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := l.opts.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if e, found := l.items[key]; found {
		l.lru.MoveToFront(e)
		b = e.Value.(*bucket)
		// A clock that steps back refills nothing until it catches up.
		if d := now.Sub(b.last); d > 0 {
			b.tokens = math.Min(l.burst, b.tokens+d.Seconds()*l.rate)
			b.last = now
		}
	} else {
		for len(l.items) >= l.opts.maxKeys {
			oldest := l.lru.Back()
			l.lru.Remove(oldest)
			delete(l.items, oldest.Value.(*bucket).key)
		}
		b = &bucket{key: key, tokens: l.burst, last: now}
		l.items[key] = l.lru.PushFront(b)
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration(math.Ceil((1 - b.tokens) / l.rate * float64(time.Second)))
	return false, wait
}

// Len returns how many keys are tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.items)
}
