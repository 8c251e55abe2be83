package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

// realRedisEnv names the address of a real Redis for the tests; when it is
// unset they are skipped, except in CI, which never skips silently.
const realRedisEnv = "SKOLBRO_TEST_REDIS"

// miniStore is a Redis store together with the miniredis it talks to, so
// that fastForward can find the server from the Store it is given.
type miniStore struct {
	*Redis
	mr *miniredis.Miniredis
}

func newMiniStore(t testing.TB) *miniStore {
	t.Helper()
	mr := miniredis.RunT(t)
	s, err := NewRedisFromConfig([]string{mr.Addr()}, "", "", 0, "", nil, "skolbro-test:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &miniStore{Redis: s, mr: mr}
}

// realRedis returns a store on the Redis named by SKOLBRO_TEST_REDIS, under
// a random prefix whose keys are deleted when t ends.
func realRedis(t testing.TB) *Redis {
	t.Helper()
	addr := os.Getenv(realRedisEnv)
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is unset; CI must test against a real Redis", realRedisEnv)
		}
		t.Skipf("%s is unset: no real Redis to test against", realRedisEnv)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	prefix := "skolbro-test-" + hex.EncodeToString(b[:]) + ":"
	s, err := NewRedisFromConfig([]string{addr}, "", "", 0, "", nil, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("real Redis at %s: %v", addr, err)
	}
	t.Cleanup(func() {
		// The suite deletes its own keys; this catches any it left behind.
		ctx := context.Background()
		var keys []string
		iter := s.client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleanup: scan: %v", err)
		}
		if len(keys) > 0 {
			t.Errorf("cleanup: %d keys left under the test prefix", len(keys))
			if err := s.client.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("cleanup: del: %v", err)
			}
		}
		_ = s.Close()
	})
	return s
}

func TestRedisConformance(t *testing.T) {
	t.Parallel()
	t.Run("miniredis", func(t *testing.T) {
		t.Parallel()
		RunConformance(t,
			func(t *testing.T) Store { return newMiniStore(t) },
			func(t *testing.T, s Store, d time.Duration) { s.(*miniStore).mr.FastForward(d) },
		)
	})
	t.Run("real", func(t *testing.T) {
		t.Parallel()
		s := realRedis(t)
		RunConformance(t,
			func(t *testing.T) Store { return s },
			// Real time has to pass; the suite keeps its short TTLs at a second.
			func(t *testing.T, _ Store, d time.Duration) { time.Sleep(d) },
		)
	})
}

// The prefix is put before every key, and nothing else is written.
func TestRedisPrefix(t *testing.T) {
	t.Parallel()
	s := newMiniStore(t)
	ctx := t.Context()
	if err := s.Put(ctx, "put", []byte("1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, "add", []byte("2"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"skolbro-test:add", "skolbro-test:put"}, s.mr.Keys()); diff != "" {
		t.Errorf("keys in Redis (-want +got):\n%s", diff)
	}
	// Put and Add set a time to live on the key.
	if ttl := s.mr.TTL("skolbro-test:put"); ttl != time.Minute {
		t.Errorf("TTL of put key = %v, want %v", ttl, time.Minute)
	}
	if ttl := s.mr.TTL("skolbro-test:add"); ttl != time.Minute {
		t.Errorf("TTL of added key = %v, want %v", ttl, time.Minute)
	}
	// A key written without the prefix is not visible.
	if err := s.mr.Set("bare", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "bare"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of unprefixed key = %v, want ErrNotFound", err)
	}
}

// freeAddr returns a local address on which nothing listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// A Redis that is down gives errors that callers can tell from a miss, and
// gives them on its own rather than when the caller's deadline runs out.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// down returns a store whose Redis is unreachable.
		down func(t *testing.T) *Redis
	}{
		{
			name: "server-closed-after-use",
			down: func(t *testing.T) *Redis {
				s := newMiniStore(t)
				// A pooled connection exists when the server goes away.
				if err := s.Put(t.Context(), "k", []byte("v"), time.Minute); err != nil {
					t.Fatal(err)
				}
				s.mr.Close()
				return s.Redis
			},
		},
		{
			name: "nothing-listening",
			down: func(t *testing.T) *Redis {
				s, err := NewRedisFromConfig([]string{freeAddr(t)}, "", "", 0, "", nil, "p:")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				return s
			},
		},
		{
			name: "client-closed",
			down: func(t *testing.T) *Redis {
				s := newMiniStore(t)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				return s.Redis
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.down(t)
			// A guard far beyond the store's own timeouts: the store must
			// fail before it, so that a dead Redis fails a login by itself.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			ops := []struct {
				name string
				call func() error
			}{
				{"put", func() error { return s.Put(ctx, "k", []byte("v"), time.Minute) }},
				{"add", func() error { return s.Add(ctx, "k", []byte("v"), time.Minute) }},
				{"get", func() error { _, err := s.Get(ctx, "k"); return err }},
				{"take", func() error { _, err := s.Take(ctx, "k"); return err }},
				{"delete", func() error { return s.Delete(ctx, "k") }},
				{"ping", func() error { return s.Ping(ctx) }},
			}
			for _, op := range ops {
				err := op.call()
				switch {
				case err == nil:
					t.Errorf("%s: no error from a Redis that is down", op.name)
				case errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists):
					t.Errorf("%s = %v; a Redis that is down must not look like a miss or a present key", op.name, err)
				case !errors.Is(err, ErrBackend):
					t.Errorf("%s = %v, want ErrBackend", op.name, err)
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("the store waited for the caller's deadline instead of failing on its own")
			}
		})
	}
}

// After Redis comes back, the same store works again without a restart.
func TestRedisRecovers(t *testing.T) {
	t.Parallel()
	s := newMiniStore(t)
	ctx := t.Context()
	if err := s.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	s.mr.Close()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded with the server closed")
	}
	if err := s.mr.Restart(); err != nil {
		t.Fatalf("restart miniredis: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
	if err := s.Put(ctx, "k2", []byte("v2"), time.Minute); err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
	got, err := s.Take(ctx, "k2")
	if err != nil || string(got) != "v2" {
		t.Fatalf("Take after restart = %q, %v; want %q", got, err, "v2")
	}
}

// A server error reply is reported without its text beyond the error code:
// older servers quote the command's arguments, the key among them.
func TestRedisServerErrorHidesArguments(t *testing.T) {
	t.Parallel()
	s := newMiniStore(t)
	const secretKey = "code-0123456789"
	s.mr.SetError("ERR unknown command 'GETDEL', with args beginning with: 'skolbro-test:" + secretKey + "'")
	_, err := s.Take(t.Context(), secretKey)
	if err == nil || errors.Is(err, ErrNotFound) || !errors.Is(err, ErrBackend) {
		t.Fatalf("Take with a server error = %v, want ErrBackend", err)
	}
	if diff := cmp.Diff("store: redis take: store: backend error: server replied ERR", err.Error()); diff != "" {
		t.Errorf("error text (-want +got):\n%s", diff)
	}
}

func TestReplyCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, msg, want string
	}{
		{"err", "ERR unknown command 'GETDEL', with args beginning with: 'k'", "ERR"},
		{"noauth", "NOAUTH Authentication required.", "NOAUTH"},
		{"code-only", "READONLY", "READONLY"},
		{"empty", "", "an error"},
		{"not-a-code", "secret-key is bad", "an error"},
		{"lower-case", "err something", "an error"},
		{"too-long", "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJ x", "an error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := replyCode(tc.msg); got != tc.want {
				t.Errorf("replyCode(%q) = %q, want %q", tc.msg, got, tc.want)
			}
		})
	}
}

func TestRedisOptions(t *testing.T) {
	t.Parallel()
	opts := RedisOptions([]string{"a:6379"}, "user", "pw", 2, "", nil)
	type timeouts struct {
		Dial, Read, Write, Pool   time.Duration
		MaxRetries, DialerRetries int
		ContextTimeoutEnabled     bool
	}
	got := timeouts{opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.PoolTimeout, opts.MaxRetries, opts.DialerRetries, opts.ContextTimeoutEnabled}
	want := timeouts{2 * time.Second, time.Second, time.Second, time.Second, -1, 1, true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("timeouts (-want +got):\n%s", diff)
	}

	tests := []struct {
		name       string
		addrs      []string
		db         int
		masterName string
		wantType   string // "" when NewRedisFromConfig must fail
	}{
		{"single", []string{"127.0.0.1:6379"}, 3, "", "*redis.Client"},
		{"cluster", []string{"127.0.0.1:7000", "127.0.0.1:7001"}, 0, "", "*redis.ClusterClient"},
		{"sentinel", []string{"127.0.0.1:26379", "127.0.0.1:26380"}, 1, "mymaster", "*redis.Client"},
		{"no-address", nil, 0, "", ""},
		{"empty-address", []string{""}, 0, "", ""},
		{"negative-db", []string{"127.0.0.1:6379"}, -1, "", ""},
		{"cluster-with-db", []string{"127.0.0.1:7000", "127.0.0.1:7001"}, 1, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := NewRedisFromConfig(tc.addrs, "", "", tc.db, tc.masterName, nil, "p:")
			if tc.wantType == "" {
				if err == nil {
					_ = s.Close()
					t.Fatal("NewRedisFromConfig succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("NewRedisFromConfig: %v", err)
			}
			defer s.Close()
			var gotType string
			switch c := s.client.(type) {
			case *redis.Client:
				gotType = "*redis.Client"
				if o := c.Options(); o.DialTimeout != 2*time.Second || o.ReadTimeout != time.Second || o.PoolTimeout != time.Second || o.DB != tc.db {
					t.Errorf("client options: dial %v, read %v, pool %v, db %d", o.DialTimeout, o.ReadTimeout, o.PoolTimeout, o.DB)
				}
			case *redis.ClusterClient:
				gotType = "*redis.ClusterClient"
				if o := c.Options(); o.DialTimeout != 2*time.Second || o.ReadTimeout != time.Second || o.PoolTimeout != time.Second {
					t.Errorf("cluster options: dial %v, read %v, pool %v", o.DialTimeout, o.ReadTimeout, o.PoolTimeout)
				}
			default:
				gotType = "other"
			}
			if gotType != tc.wantType {
				t.Errorf("client type = %s, want %s", gotType, tc.wantType)
			}
		})
	}
}

func BenchmarkRedisPutTake(b *testing.B) {
	bench := func(b *testing.B, s *Redis) {
		ctx := context.Background()
		value := []byte("0123456789abcdef0123456789abcdef")
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Put(ctx, "bench", value, time.Minute); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Take(ctx, "bench"); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("miniredis", func(b *testing.B) { bench(b, newMiniStore(b).Redis) })
	b.Run("real", func(b *testing.B) { bench(b, realRedis(b)) })
}
