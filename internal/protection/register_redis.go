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

// RedisRegister is a RegisterBackend on one Redis hash,
// "<prefix>protect:register", so that every bridge instance sharing the
// Redis sees the same markings at once. Use the store's client and prefix:
// NewRedisRegister(s.Client(), s.Prefix()).
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

// Set stores val under key (HSET).
func (r *RedisRegister) Set(ctx context.Context, key string, val []byte) error {
	if err := r.client.HSet(ctx, r.key, key, val).Err(); err != nil {
		return redisRegisterError("set", err)
	}
	return nil
}

// Delete removes key (HDEL).
func (r *RedisRegister) Delete(ctx context.Context, key string) error {
	if err := r.client.HDel(ctx, r.key, key).Err(); err != nil {
		return redisRegisterError("delete", err)
	}
	return nil
}

// Get returns the value under key (HGET), or store.ErrNotFound.
func (r *RedisRegister) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := r.client.HGet(ctx, r.key, key).Bytes()
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, redis.Nil):
		return nil, store.ErrNotFound
	default:
		return nil, redisRegisterError("get", err)
	}
}

// List returns every entry (HGETALL).
func (r *RedisRegister) List(ctx context.Context) (map[string][]byte, error) {
	all, err := r.client.HGetAll(ctx, r.key).Result()
	if err != nil {
		return nil, redisRegisterError("list", err)
	}
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
