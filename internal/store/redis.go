package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeouts for NewRedisFromConfig: short, so that a dead or unreachable
// Redis fails a login with 503 within seconds instead of hanging it.
const (
	redisDialTimeout  = 2 * time.Second
	redisReadTimeout  = time.Second
	redisWriteTimeout = time.Second
	redisPoolTimeout  = time.Second
)

// Redis is a Store on Redis, for several bridge instances sharing state. It
// is built on redis.UniversalClient, so a single server, Sentinel or Cluster
// is a matter of configuration. Take needs Redis 6.2 or later (GETDEL).
type Redis struct {
	client redis.UniversalClient
	prefix string
	// acks, when above 0, is the number of replicas that must confirm
	// every write (WAIT) before it counts; see RequireReplicaAcks.
	acks       int
	ackTimeout time.Duration
}

// ErrNotReplicated is returned (wrapped in ErrBackend) for a write that
// fewer replicas than RequireReplicaAcks asks for confirmed in time. The
// write may have reached the master: a caller fails closed, as for any
// backend error.
var ErrNotReplicated = errors.New("store: redis: write not confirmed by enough replicas")

// RequireReplicaAcks makes every write (Put, Add, Take, Delete) wait until
// n replicas have it (Redis WAIT, sent on the same connection as the
// write), at most timeout. Redis replicates asynchronously: without this,
// a write the master confirmed can be lost when a replica that missed it
// is promoted, and a spent code or an assertion id recorded against
// replay comes back to life across the failover. A write not confirmed in
// time returns ErrNotReplicated, so the login fails closed (503) instead.
// n = 0 turns it off (the default).
func (r *Redis) RequireReplicaAcks(n int, timeout time.Duration) {
	r.acks, r.ackTimeout = n, timeout
}

// write runs one write command and, with RequireReplicaAcks, a WAIT on the
// same connection (the master that owns key, in a Cluster).
func (r *Redis) write(ctx context.Context, op, key string, cmd func(redis.Cmdable) redis.Cmder) (redis.Cmder, error) {
	if r.acks <= 0 {
		c := cmd(r.client)
		return c, nil
	}
	var node redis.Cmdable = r.client
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		n, err := cc.MasterForKey(ctx, r.prefix+key)
		if err != nil {
			return nil, backendError(op, err)
		}
		node = n
	}
	pipe := node.Pipeline()
	c := cmd(pipe)
	w := pipe.Do(ctx, "wait", r.acks, r.ackTimeout.Milliseconds())
	_, _ = pipe.Exec(ctx) // each command's error is read below
	if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
		return nil, backendError(op, err)
	}
	if err := w.Err(); err != nil {
		return nil, backendError(op, err)
	}
	if n, err := w.Int64(); err != nil || n < int64(r.acks) {
		return nil, fmt.Errorf("store: redis %s: %w: %w (%d of %d)", op, ErrBackend, ErrNotReplicated, n, r.acks)
	}
	return c, nil
}

var _ Store = (*Redis)(nil)

// NewRedis returns a Store on client that puts prefix before every key, so
// that several deployments or tests can share one Redis. The client's own
// options decide timeouts and retries: RedisOptions explains the ones that
// suit this store.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// Client returns the client the store uses, for other parts that keep their
// own data in the same Redis (the protection register).
func (r *Redis) Client() redis.UniversalClient { return r.client }

// Prefix returns the key prefix the store puts before every key.
func (r *Redis) Prefix() string { return r.prefix }

// RedisOptions returns client options for NewRedisFromConfig: one address
// is a single server, several are a Cluster, and a non-empty masterName
// means Sentinel (addrs are then the sentinels; username and password are
// used for the master and the sentinels alike).
//
// Commands are not retried: Take (GETDEL) and Add (SET NX) are not
// idempotent, and a retry after a lost reply would turn a success into a
// false ErrNotFound or ErrExists. Dialing is tried once per command, with
// short timeouts, so a dead Redis fails fast.
func RedisOptions(addrs []string, username, password string, db int, masterName string, tlsConfig *tls.Config) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs:            append([]string(nil), addrs...),
		Username:         username,
		Password:         password,
		SentinelUsername: username,
		SentinelPassword: password,
		DB:               db,
		MasterName:       masterName,
		TLSConfig:        tlsConfig,

		DialTimeout:           redisDialTimeout,
		DialerRetries:         1,
		ReadTimeout:           redisReadTimeout,
		WriteTimeout:          redisWriteTimeout,
		PoolTimeout:           redisPoolTimeout,
		MaxRetries:            -1, // -1 means none; 0 would mean the default of 3
		ContextTimeoutEnabled: true,
	}
}

// NewRedisFromConfig builds a UniversalClient from RedisOptions and returns
// a Store on it with the given key prefix. It does not connect: use Ping to
// check that Redis is reachable.
func NewRedisFromConfig(addrs []string, username, password string, db int, masterName string, tlsConfig *tls.Config, prefix string) (*Redis, error) {
	if len(addrs) == 0 {
		return nil, errors.New("store: redis: no address")
	}
	for _, a := range addrs {
		if a == "" {
			return nil, errors.New("store: redis: empty address")
		}
	}
	if db < 0 {
		return nil, errors.New("store: redis: negative database number")
	}
	if db != 0 && masterName == "" && len(addrs) > 1 {
		return nil, errors.New("store: redis: a cluster has only database 0")
	}
	opts := RedisOptions(addrs, username, password, db, masterName, tlsConfig)
	return NewRedis(redis.NewUniversalClient(opts), prefix), nil
}

// Put stores value under key for ttl, replacing any value (SET PX).
func (r *Redis) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return fmt.Errorf("store: redis put: %w", err)
	}
	c, err := r.write(ctx, "put", key, func(c redis.Cmdable) redis.Cmder { return c.Set(ctx, r.prefix+key, value, ttl) })
	if err != nil {
		return err
	}
	if err := c.Err(); err != nil {
		return backendError("put", err)
	}
	return nil
}

// Add stores value under key for ttl only if key is absent (SET NX PX);
// otherwise it returns ErrExists.
func (r *Redis) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return fmt.Errorf("store: redis add: %w", err)
	}
	c, err := r.write(ctx, "add", key, func(c redis.Cmdable) redis.Cmder { return c.SetNX(ctx, r.prefix+key, value, ttl) })
	if err != nil {
		return err
	}
	ok, err := c.(*redis.BoolCmd).Result()
	if err != nil {
		return backendError("add", err)
	}
	if !ok {
		return ErrExists
	}
	return nil
}

// Get returns the value under key (GET), or ErrNotFound.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := r.client.Get(ctx, r.prefix+key).Bytes()
	return result("get", v, err)
}

// GetMany returns the values under keys as MultiGetter says, with one
// pipeline of GETs: one round trip (one per node holding a key, in a
// Cluster).
func (r *Redis) GetMany(ctx context.Context, keys ...string) ([][]byte, error) {
	cmds := make([]*redis.StringCmd, len(keys))
	// Pipelined's own error is the first command's that failed, redis.Nil
	// included: each command is read below instead.
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, r.prefix+k)
		}
		return nil
	})
	return collect(len(cmds), func(i int) ([]byte, error) {
		v, err := cmds[i].Bytes()
		return result("get", v, err)
	})
}

// Take returns the value under key and deletes it in one command (GETDEL),
// or returns ErrNotFound.
func (r *Redis) Take(ctx context.Context, key string) ([]byte, error) {
	c, err := r.write(ctx, "take", key, func(c redis.Cmdable) redis.Cmder { return c.GetDel(ctx, r.prefix+key) })
	if err != nil {
		return nil, err
	}
	v, err := c.(*redis.StringCmd).Bytes()
	return result("take", v, err)
}

// Delete removes key (DEL); deleting an absent key is not an error.
func (r *Redis) Delete(ctx context.Context, key string) error {
	c, err := r.write(ctx, "delete", key, func(c redis.Cmdable) redis.Cmder { return c.Del(ctx, r.prefix+key) })
	if err != nil {
		return err
	}
	if err := c.Err(); err != nil {
		return backendError("delete", err)
	}
	return nil
}

// Ping reports whether Redis answers (PING).
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return backendError("ping", err)
	}
	return nil
}

// Close closes the client and its connections.
func (r *Redis) Close() error {
	if err := r.client.Close(); err != nil {
		return backendError("close", err)
	}
	return nil
}

// result maps a reply to Get and Take: redis.Nil, and only redis.Nil, is a
// miss.
func result(op string, v []byte, err error) ([]byte, error) {
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, redis.Nil):
		return nil, ErrNotFound
	default:
		return nil, backendError(op, err)
	}
}

// backendError wraps a client error with ErrBackend; redis.ErrClosed is
// also reported as ErrClosed. Network and client errors name an address or
// a failure, never a key or a value. An error reply from the server can
// quote the command's arguments (older servers answer an unknown command
// with "with args beginning with: <key>"), and keys can be codes, so only
// its first word (ERR, NOAUTH, READONLY, ...) is kept.
func backendError(op string, err error) error {
	if errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("store: redis %s: %w: %w: %w", op, ErrBackend, ErrClosed, err)
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		return fmt.Errorf("store: redis %s: %w: server replied %s", op, ErrBackend, replyCode(reply.Error()))
	}
	return fmt.Errorf("store: redis %s: %w: %w", op, ErrBackend, err)
}

// replyCode returns the first word of a Redis error reply, if it looks like
// an error code (upper-case letters only), and "an error" otherwise.
func replyCode(msg string) string {
	code, _, _ := strings.Cut(msg, " ")
	if code == "" || len(code) > 32 {
		return "an error"
	}
	for _, c := range code {
		if c < 'A' || c > 'Z' {
			return "an error"
		}
	}
	return code
}
