package store

import (
	"context"
	"time"
)

// Namespace returns a store whose keys are prefix+key in st: each
// organiser of a hub keeps its pending logins, replay cache, codes and
// admin sessions apart from every other's, so that a key one organiser
// wrote is never found by another. An empty prefix returns st.
func Namespace(st Store, prefix string) Store {
	if prefix == "" {
		return st
	}
	return namespaced{st: st, prefix: prefix}
}

type namespaced struct {
	st     Store
	prefix string
}

func (n namespaced) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return n.st.Put(ctx, n.prefix+key, value, ttl)
}

func (n namespaced) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return n.st.Add(ctx, n.prefix+key, value, ttl)
}

func (n namespaced) Get(ctx context.Context, key string) ([]byte, error) {
	return n.st.Get(ctx, n.prefix+key)
}

func (n namespaced) GetMany(ctx context.Context, keys ...string) ([][]byte, error) {
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = n.prefix + k
	}
	return GetMany(ctx, n.st, full...)
}

func (n namespaced) Take(ctx context.Context, key string) ([]byte, error) {
	return n.st.Take(ctx, n.prefix+key)
}

func (n namespaced) Delete(ctx context.Context, key string) error {
	return n.st.Delete(ctx, n.prefix+key)
}

func (n namespaced) Ping(ctx context.Context) error { return n.st.Ping(ctx) }
