// Package store is the bridge's small key-value state: pending login
// requests, the assertion replay cache, and (later) authorization codes.
// Values are opaque bytes with a time to live. Implementations: Memory, the
// single-instance default, and Redis, for several instances.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by Get and Take when the key is absent or expired.
var ErrNotFound = errors.New("store: not found")

// ErrExists is returned by Add when the key is already present.
var ErrExists = errors.New("store: key exists")

// Store is shared state. Every method is safe for concurrent use, also
// across instances sharing one backend.
type Store interface {
	// Put stores value under key for ttl, replacing any value.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Add stores value under key for ttl only if key is absent; otherwise
	// it returns ErrExists. It is atomic: of concurrent Adds of one key,
	// exactly one succeeds. The replay cache is built on it.
	Add(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Get returns the value under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Take returns the value under key and deletes it, atomically: of
	// concurrent Takes of one key, exactly one gets the value and the others
	// get ErrNotFound. Request ids and codes are redeemed with it.
	Take(ctx context.Context, key string) ([]byte, error)
	// Delete removes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// Ping reports whether the backend is reachable.
	Ping(ctx context.Context) error
}

// MultiGetter is a Store that reads several keys in one call: Redis in one
// round trip (a pipeline) instead of one per key. Use GetMany, which
// falls back to one Get per key for a store that is not one.
type MultiGetter interface {
	// GetMany returns the values under keys, in their order: nil for a
	// key that is absent or expired, a non-nil slice (empty for an empty
	// value) for one that is present. Any other failure fails the call.
	GetMany(ctx context.Context, keys ...string) ([][]byte, error)
}

// GetMany reads keys from s as MultiGetter.GetMany says: in one call when
// s is a MultiGetter, else with one Get per key.
func GetMany(ctx context.Context, s Store, keys ...string) ([][]byte, error) {
	if m, ok := s.(MultiGetter); ok {
		return m.GetMany(ctx, keys...)
	}
	return collect(len(keys), func(i int) ([]byte, error) { return s.Get(ctx, keys[i]) })
}

// collect builds GetMany's answer from n reads, read(i) answering as Get
// does for the i-th key: ErrNotFound becomes nil, any other error fails
// the whole answer.
func collect(n int, read func(i int) ([]byte, error)) ([][]byte, error) {
	out := make([][]byte, n)
	for i := range out {
		v, err := read(i)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return nil, err
		case v == nil:
			out[i] = []byte{} // present but empty: nil means only "absent"
		default:
			out[i] = v
		}
	}
	return out, nil
}
