package protection

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/store"
)

// realRedisEnv names the address of a real Redis; unset, the real-Redis
// tests are skipped, except in CI, which must run them.
const realRedisEnv = "SKOLBRO_TEST_REDIS"

func newMiniredisBackend(t *testing.T) backendUnderTest {
	mr := miniredis.RunT(t)
	s, err := store.NewRedisFromConfig([]string{mr.Addr()}, "", "", 0, "", nil, "skolbro-test:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	b := NewRedisRegister(s.Client(), s.Prefix())
	if err := b.Init(bg); err != nil {
		t.Fatal(err)
	}
	return backendUnderTest{
		backend: b,
		raw: func(t *testing.T) []byte {
			// Dump is miniredis's own rendering of every key and value.
			if !mr.Exists("skolbro-test:protect:register") {
				t.Fatal("the register hash is not where it should be")
			}
			return []byte(mr.Dump())
		},
	}
}

func TestRedisRegisterMiniredis(t *testing.T) {
	t.Parallel()
	runRegisterTests(t, newMiniredisBackend)
}

// newRealRedisBackend uses the Redis named by SKOLBRO_TEST_REDIS under a
// random prefix, deleted when t ends; the raw contents are read with
// HGETALL on a client of its own.
func newRealRedisBackend(t *testing.T) backendUnderTest {
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
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() {
		_ = client.Del(context.Background(), prefix+"protect:register").Err()
		_ = client.Close()
	})
	if err := client.Ping(bg).Err(); err != nil {
		t.Fatalf("real Redis at %s: %v", realRedisEnv, err)
	}
	rr := NewRedisRegister(client, prefix)
	if err := rr.Init(bg); err != nil {
		t.Fatal(err)
	}
	return backendUnderTest{
		backend: rr,
		raw: func(t *testing.T) []byte {
			all, err := client.HGetAll(bg, prefix+"protect:register").Result()
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for k, v := range all {
				lines = append(lines, k+" "+v)
			}
			sort.Strings(lines)
			return []byte(strings.Join(lines, "\n"))
		},
	}
}

func TestRedisRegisterReal(t *testing.T) {
	t.Parallel()
	newRealRedisBackend(t) // skips the whole test without a real Redis
	runRegisterTests(t, newRealRedisBackend)
}

// TestRedisRegisterSharedAndDown: two instances share one hash; a Redis
// that is gone is an error, never "not marked".
func TestRedisRegisterSharedAndDown(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	newReg := func() *Register {
		s, err := store.NewRedisFromConfig([]string{mr.Addr()}, "", "", 0, "", nil, "p:")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		b := NewRedisRegister(s.Client(), s.Prefix())
		if err := b.Init(bg); err != nil {
			t.Fatal(err)
		}
		r, err := NewRegister(b, testRegisterKey)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := newReg(), newReg()
	mustAdd(t, a, testNumbers[0], "")
	wantStatus(t, b, person(t, testNumbers[0]), identity.ProtectionManual)
	if keys, err := mr.HKeys("p:protect:register"); err != nil || len(keys) != 2 {
		t.Errorf("hash p:protect:register has keys %v, %v; want the marker and one entry", keys, err)
	}

	mr.Close()
	got, err := b.Status(bg, person(t, testNumbers[0]))
	if err == nil || !errors.Is(err, store.ErrBackend) || got != identity.ProtectionUnknown {
		t.Errorf("Status with Redis gone = %v, %v; want unknown and store.ErrBackend", got, err)
	}
	if err != nil {
		assertNoNumberInText(t, "error", err.Error())
	}
}
