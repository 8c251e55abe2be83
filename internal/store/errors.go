package store

import (
	"errors"
	"time"
)

// ErrInvalidTTL is returned by Put and Add for a time to live under one
// millisecond: Redis counts expiry in milliseconds, and an entry that expires
// at once is a caller's bug, not a value to store.
var ErrInvalidTTL = errors.New("store: ttl under 1ms")

// ErrBackend marks every failure that is not an answer about the key: a
// backend that is down, slow, closed or misconfigured. Callers fail closed on
// it (503), while ErrNotFound means a real miss.
var ErrBackend = errors.New("store: backend error")

// ErrClosed is returned, together with ErrBackend, by a store used after Close.
var ErrClosed = errors.New("store: closed")

// MinTTL is the shortest time to live Put and Add accept.
const MinTTL = time.Millisecond

func checkTTL(ttl time.Duration) error {
	if ttl < MinTTL {
		return ErrInvalidTTL
	}
	return nil
}
