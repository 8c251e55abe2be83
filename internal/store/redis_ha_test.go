package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The variables .ci/redis-ha prints: a real Sentinel set-up (a master, a
// replica, three sentinels) and a real three-master Cluster.
const (
	sentinelEnv       = "SKOLBRO_TEST_SENTINEL"
	sentinelMasterEnv = "SKOLBRO_TEST_SENTINEL_MASTER"
	clusterEnv        = "SKOLBRO_TEST_CLUSTER"
)

// haAddrs returns the comma-separated addresses in env, skipping the test
// when it is unset, except in CI, which never skips silently.
func haAddrs(t testing.TB, env string) []string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is unset; CI must run .ci/redis-ha start and test against it", env)
		}
		t.Skipf("%s is unset: run `eval \"$(.ci/redis-ha start)\"` to test against Sentinel and Cluster", env)
	}
	return strings.Split(v, ",")
}

func randomPrefix(t testing.TB) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "skolbro-test-" + hex.EncodeToString(b[:]) + ":"
}

// haStore returns a store on the set-up in env under a random prefix,
// and checks at the end that the tests left no key behind (on every
// master, for a Cluster).
func haStore(t testing.TB, addrs []string, master string) *Redis {
	t.Helper()
	prefix := randomPrefix(t)
	s, err := NewRedisFromConfig(addrs, "", "", 0, master, nil, prefix)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("%v: %v", addrs, err)
	}
	t.Cleanup(func() {
		leftover := func(c *redis.Client) error {
			keys, err := c.Keys(ctx, prefix+"*").Result()
			if err != nil || len(keys) == 0 {
				return err
			}
			t.Errorf("cleanup: %d keys left under the test prefix", len(keys))
			return c.Del(ctx, keys...).Err()
		}
		var err error
		if cc, ok := s.client.(*redis.ClusterClient); ok {
			err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return leftover(c) })
		} else {
			err = leftover(s.client.(*redis.Client))
		}
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		_ = s.Close()
	})
	return s
}

func sleepFor(_ *testing.T, _ Store, d time.Duration) { time.Sleep(d) }

// TestRedisClusterConformance runs the store's conformance suite on a
// real three-master Cluster. Every command the store sends names one key,
// so no operation spans slots and no hash tag is needed.
func TestRedisClusterConformance(t *testing.T) {
	t.Parallel()
	s := haStore(t, haAddrs(t, clusterEnv), "")
	if _, ok := s.client.(*redis.ClusterClient); !ok {
		t.Fatalf("several addresses gave a %T, want a Cluster client", s.client)
	}
	RunConformance(t, func(t *testing.T) Store { return s }, sleepFor)
}

// TestRedisSentinel runs the conformance suite through Sentinel with every
// write confirmed by the replica (WAIT), then kills the master in the
// middle of writes (SECURITY.md cases 15 and 38): while the sentinels fail
// over, every operation fails with ErrBackend (a login answers 503), the
// same client recovers on the promoted replica without a restart, and no
// assertion id or spent code recorded before or during the failover can
// be recorded again after it. The killed master is started again and
// rejoins as the new master's replica.
func TestRedisSentinel(t *testing.T) {
	addrs := haAddrs(t, sentinelEnv)
	master := os.Getenv(sentinelMasterEnv)
	if master == "" {
		t.Fatalf("%s is unset", sentinelMasterEnv)
	}
	waitForReplica(t, addrs[0], master)

	t.Run("conformance", func(t *testing.T) {
		s := haStore(t, addrs, master)
		s.RequireReplicaAcks(1, 2*time.Second)
		RunConformance(t, func(t *testing.T) Store { return s }, sleepFor)
	})

	t.Run("failover", func(t *testing.T) {
		ctx := context.Background()
		s := haStore(t, addrs, master)
		s.RequireReplicaAcks(1, time.Second)
		const ttl = 10 * time.Minute

		// Before: assertion ids recorded against replay, and codes.
		var recorded []string
		for i := range 20 {
			id := fmt.Sprintf("replay/%d", i)
			if err := s.Add(ctx, id, []byte("1"), ttl); err != nil {
				t.Fatalf("before the failover: %v", err)
			}
			recorded = append(recorded, id)
			code := fmt.Sprintf("code/%d", i)
			if err := s.Put(ctx, code, []byte("c"), ttl); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Take(ctx, code); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			for _, id := range recorded {
				_ = s.Delete(context.Background(), id)
			}
		})

		old := masterAddr(t, addrs[0], master)
		restart := killServer(t, old)

		// During: writes go on; each fails closed or succeeds. Once the
		// sentinels have promoted the replica, the crashed server is
		// started again (as an orchestrator would) and becomes its
		// replica: with replica_acks 1 and one replica, writes fail closed
		// until then.
		var failed, after int
		var tried []string
		t.Cleanup(func() {
			for _, id := range tried {
				_ = s.Delete(context.Background(), id)
			}
		})
		restarted := ""
		deadline := time.Now().Add(90 * time.Second)
		for i := 0; after < 20; i++ {
			if time.Now().After(deadline) {
				t.Fatalf("no recovery within 90 s (%d failed operations, restarted: %q)", failed, restarted)
			}
			if restarted == "" {
				if m := masterAddr(t, addrs[0], master); m != old {
					restart(m)
					restarted = m
				}
			}
			id := fmt.Sprintf("during/%d", i)
			tried = append(tried, id) // a write that failed closed may still be there
			err := s.Add(ctx, id, []byte("1"), ttl)
			switch {
			case err == nil:
				recorded = append(recorded, id)
				if restarted != "" {
					after++
				}
			case errors.Is(err, ErrBackend):
				failed++
				after = 0 // not yet steady on the new master
				time.Sleep(20 * time.Millisecond)
			default:
				t.Fatalf("during the failover: %v, want ErrBackend", err)
			}
		}
		if failed == 0 {
			t.Error("no operation failed while the master was down: the test did not see the failover")
		}
		// The loop ends only after the sentinels promoted the replica
		// (restarted names the promoted one). Under load they may fail over once more,
		// back to the restarted server: that is still a failover, and
		// what follows must hold on whichever master is current.
		if restarted == "" {
			t.Fatal("the sentinels did not promote the replica")
		}
		now := masterAddr(t, addrs[0], master)

		// After: nothing recorded can be recorded again.
		for _, id := range recorded {
			if err := s.Add(ctx, id, []byte("again"), ttl); !errors.Is(err, ErrExists) {
				t.Errorf("%s after the failover: %v, want ErrExists (a replay would be accepted)", id, err)
			}
		}
		for i := range 20 {
			if _, err := s.Take(ctx, fmt.Sprintf("code/%d", i)); !errors.Is(err, ErrNotFound) {
				t.Errorf("spent code %d after the failover: %v, want ErrNotFound", i, err)
			}
		}
		t.Logf("%d operations failed closed during the failover from %s to %s (master now %s)", failed, old, restarted, now)
		waitForReplica(t, addrs[0], master)
	})
}

// TestRedisReplicaAcksFailClosed: a write that no replica confirms (the
// machine's Redis has none) is an error, never a silent success.
func TestRedisReplicaAcksFailClosed(t *testing.T) {
	t.Parallel()
	s := realRedis(t)
	s.RequireReplicaAcks(1, 100*time.Millisecond)
	ctx := context.Background()
	err := s.Add(ctx, "acks", []byte("1"), time.Minute)
	if !errors.Is(err, ErrBackend) || !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("Add with no replica: %v, want ErrBackend and ErrNotReplicated", err)
	}
	_ = s.Delete(context.Background(), "acks") // fails the same way; clean up without acks
	s.RequireReplicaAcks(0, 0)
	if err := s.Delete(ctx, "acks"); err != nil {
		t.Fatal(err)
	}
}

func sentinelClient(t *testing.T, addr string) *redis.SentinelClient {
	c := redis.NewSentinelClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// masterAddr asks a sentinel for the current master.
func masterAddr(t *testing.T, sentinel, master string) string {
	t.Helper()
	a, err := sentinelClient(t, sentinel).GetMasterAddrByName(context.Background(), master).Result()
	if err != nil || len(a) != 2 {
		t.Fatalf("sentinel %s: master %q: %v", sentinel, master, err)
	}
	return net.JoinHostPort(a[0], a[1])
}

// waitForReplica waits until the master has a replica whose link is up,
// so that writes confirmed by WAIT can succeed.
func waitForReplica(t *testing.T, sentinel, master string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		m := masterAddr(t, sentinel, master)
		c := redis.NewClient(&redis.Options{Addr: m})
		info, err := c.Info(context.Background(), "replication").Result()
		_ = c.Close()
		if err == nil && strings.Contains(info, "role:master") && strings.Contains(info, "connected_slaves:1") &&
			strings.Contains(info, ",state=online,") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("master %s has no online replica after a minute: %v\n%s", m, err, info)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// killServer kills the redis-server at addr with SIGKILL (a crash: nothing
// is flushed or handed over) and returns a function that starts it again,
// with the same port and directory, as a replica of the given master.
func killServer(t *testing.T, addr string) (restart func(newMaster string)) {
	t.Helper()
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	pid := 0
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	dir, err := c.ConfigGet(ctx, "dir").Result()
	if err != nil || pid == 0 {
		t.Fatalf("redis at %s: pid %d, dir %v: %v", addr, pid, dir, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	return func(newMaster string) {
		host, mport, _ := net.SplitHostPort(newMaster)
		d := dir["dir"]
		out, err := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--daemonize", "yes",
			"--dir", d, "--pidfile", d+"/redis.pid", "--logfile", d+"/redis.log",
			"--save", "", "--appendonly", "no", "--enable-debug-command", "local",
			"--replicaof", host, mport).CombinedOutput()
		if err != nil {
			t.Fatalf("restarting redis on %s: %v: %s", port, err, out)
		}
	}
}
