package protection

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/skolbro/skolbro/internal/store"
)

// redisRegisterKey is the hash holding the register, after the prefix.
const redisRegisterKey = "protect:register"

// redisMarkerField is the hash field Init writes. Entry keys are hex MACs,
// so no entry can take this name.
const redisMarkerField = "!initialised"

// redisMarkerValue is the marker's value.
const redisMarkerValue = `{"register":"` + registerLabel + `"}`

// RedisRegister is a RegisterBackend on one Redis hash,
// "<prefix>protect:register", so that every bridge instance sharing the
// Redis sees the same markings at once. Use the store's client and prefix:
// NewRedisRegister(s.Client(), s.Prefix()).
//
// Redis can lose the whole hash without an error: a restart without
// persistence, a failover to a replica that missed the writes, FLUSHDB,
// eviction under maxmemory. A lost register must not read as "nobody is
// marked", so Init writes a marker field into the hash, and Get, List and
// Ready fail with ErrRegisterNotInitialised while it is missing. The
// marker lives in the same hash as the entries, so that whatever removes
// the hash removes the marker with it. It cannot tell a replica that kept
// the hash but missed the latest writes; persistence and
// `maxmemory-policy noeviction` are still required (see README).
type RedisRegister struct {
	client redis.UniversalClient
	key    string
}

var _ RegisterBackend = (*RedisRegister)(nil)

// NewRedisRegister returns a backend on client keeping the register in the
// hash prefix+"protect:register".
func NewRedisRegister(client redis.UniversalClient, prefix string) *RedisRegister {
	return &RedisRegister{client: client, key: prefix + redisRegisterKey}
}

// Init writes the marker (HSETNX), creating the register, or adopting an
// existing one written before markers existed. An initialised register is
// left as it is.
func (r *RedisRegister) Init(ctx context.Context) error {
	if err := r.client.HSetNX(ctx, r.key, redisMarkerField, redisMarkerValue).Err(); err != nil {
		return redisRegisterError("init", err)
	}
	return nil
}

// Ready returns ErrRegisterNotInitialised when the marker is missing, and
// a backend error when Redis does not answer.
func (r *RedisRegister) Ready(ctx context.Context) error {
	ok, err := r.client.HExists(ctx, r.key, redisMarkerField).Result()
	switch {
	case err != nil:
		return redisRegisterError("ready", err)
	case !ok:
		return ErrRegisterNotInitialised
	}
	return nil
}

// Set stores val under key (HSET). It does not check the marker: an entry
// written into a lost register leaves the marker missing, which still
// fails every lookup.
func (r *RedisRegister) Set(ctx context.Context, key string, val []byte) error {
	if key == redisMarkerField {
		return errors.New("protection: redis register: reserved key")
	}
	if err := r.client.HSet(ctx, r.key, key, val).Err(); err != nil {
		return redisRegisterError("set", err)
	}
	return nil
}

// Delete removes key (HDEL).
func (r *RedisRegister) Delete(ctx context.Context, key string) error {
	if key == redisMarkerField {
		return errors.New("protection: redis register: reserved key")
	}
	if err := r.client.HDel(ctx, r.key, key).Err(); err != nil {
		return redisRegisterError("delete", err)
	}
	return nil
}

// Get returns the value under key, store.ErrNotFound, or
// ErrRegisterNotInitialised when the marker is missing. The marker and
// the entry are read in one command (HMGET), so that no flush can fall
// between them.
func (r *RedisRegister) Get(ctx context.Context, key string) ([]byte, error) {
	vals, err := r.client.HMGet(ctx, r.key, redisMarkerField, key).Result()
	if err != nil {
		return nil, redisRegisterError("get", err)
	}
	if len(vals) != 2 || vals[0] == nil {
		return nil, ErrRegisterNotInitialised
	}
	if key == redisMarkerField || vals[1] == nil {
		return nil, store.ErrNotFound
	}
	v, ok := vals[1].(string)
	if !ok {
		return nil, fmt.Errorf("protection: redis register get: %w: unexpected reply", store.ErrBackend)
	}
	return []byte(v), nil
}

// List returns every entry (HGETALL), or ErrRegisterNotInitialised when
// the marker is missing.
func (r *RedisRegister) List(ctx context.Context) (map[string][]byte, error) {
	all, err := r.client.HGetAll(ctx, r.key).Result()
	if err != nil {
		return nil, redisRegisterError("list", err)
	}
	if _, ok := all[redisMarkerField]; !ok {
		return nil, ErrRegisterNotInitialised
	}
	delete(all, redisMarkerField)
	out := make(map[string][]byte, len(all))
	for k, v := range all {
		out[k] = []byte(v)
	}
	return out, nil
}

// redisRegisterError wraps a client error with store.ErrBackend. Keys here
// are MACs, values hold no number; an error reply is still cut to its first
// word, as the store does, since it may quote arguments.
func redisRegisterError(op string, err error) error {
	var reply redis.Error
	if errors.As(err, &reply) {
		return fmt.Errorf("protection: redis register %s: %w: server replied with an error", op, store.ErrBackend)
	}
	return fmt.Errorf("protection: redis register %s: %w: %w", op, store.ErrBackend, err)
}
