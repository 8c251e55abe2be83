package protection

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/protection/ss12000test"
	"github.com/skolbro/skolbro/internal/store"
)

// dropped is a login whose personal number the mapper dropped, keeping
// kept (or none when kept is "").
func dropped(t *testing.T, kept string) *identity.Identity {
	id := person(t, kept)
	id.PersonalNumberDropped = true
	return id
}

// TestCase36_RegisterFailsClosedWithoutNumber: with the register as the
// only source, a login without a personal number, or whose number the
// mapper dropped (two different ones, or one that does not parse), is
// masked with a fixed reason, logged and counted. A person in the register
// whose kept number finds them is still "manual".
func TestCase36_RegisterFailsClosedWithoutNumber(t *testing.T) {
	t.Parallel()
	fr := NewFileRegister(filepath.Join(t.TempDir(), "protect.json"))
	if err := fr.Init(bg); err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegister(fr, testRegisterKey)
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, reg, testNumbers[0], "")
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	res := &Resolver{Sources: []Source{reg}, Metrics: m}

	tests := []struct {
		name       string
		id         *identity.Identity
		want       identity.Protection
		wantReason string // "" when the register answers
	}{
		{"no personal number at all", person(t, ""), identity.ProtectionUnknown, ReasonNoPersonalNumber},
		{"two different numbers (both dropped)", dropped(t, ""), identity.ProtectionUnknown, ReasonPersonalNumberDropped},
		{"an unparsable number (dropped)", dropped(t, ""), identity.ProtectionUnknown, ReasonPersonalNumberDropped},
		{"an unparsable one beside a kept, unmarked one", dropped(t, testNumbers[1]), identity.ProtectionUnknown, ReasonPersonalNumberDropped},
		{"an unparsable one beside a kept, marked one", dropped(t, testNumbers[0]), identity.ProtectionManual, ""},
		// Controls: the register still answers for a usable number.
		{"marked", person(t, testNumbers[0]), identity.ProtectionManual, ""},
		{"not marked", person(t, testNumbers[1]), identity.ProtectionNone, ""},
	}
	for _, tc := range tests {
		got, failures := res.Resolve(bg, tc.id)
		if got != tc.want {
			t.Errorf("%s: Resolve = %v, want %v", tc.name, got, tc.want)
		}
		if tc.want != identity.ProtectionNone && !got.Protected() {
			t.Errorf("%s: not masked", tc.name)
		}
		var want []Failure
		if tc.wantReason != "" {
			want = []Failure{{Source: SourceRegister, Reason: tc.wantReason}}
		}
		if len(failures) != len(want) || (len(want) == 1 && failures[0] != want[0]) {
			t.Errorf("%s: failures = %v, want %v", tc.name, failures, want)
		}
		_, err := reg.Status(bg, tc.id)
		if tc.wantReason != "" && (err == nil || !errors.Is(err, ErrMissing)) {
			t.Errorf("%s: Status error %v does not wrap ErrMissing", tc.name, err)
		}
		if err != nil {
			assertNoNumberInText(t, tc.name+": error", err.Error())
		}
	}
	for reason, want := range map[string]float64{ReasonNoPersonalNumber: 1, ReasonPersonalNumberDropped: 3} {
		if got := testutil.ToFloat64(m.failures.WithLabelValues(SourceRegister, reason)); got != want {
			t.Errorf("failures{register,%s} = %v, want %v", reason, got, want)
		}
	}
}

// TestCase36_SS12000FailsClosedOnDroppedNumber: SS 12000 is keyed by the
// number too: a dropped number fails it unless the kept number already
// shows the person protected.
func TestCase36_SS12000FailsClosedOnDroppedNumber(t *testing.T) {
	t.Parallel()
	srv := ss12000test.New(t, testToken)
	srv.Set(testNumbers[0], "Ingen")
	srv.Set(testNumbers[1], "Sekretessmarkering")
	res := &Resolver{Sources: []Source{newSS12000(t, srv, nil)}}
	tests := []struct {
		name       string
		id         *identity.Identity
		want       identity.Protection
		wantReason string
	}{
		{"no personal number", person(t, ""), identity.ProtectionUnknown, ReasonNoPersonalNumber},
		{"dropped, none kept", dropped(t, ""), identity.ProtectionUnknown, ReasonPersonalNumberDropped},
		{"dropped, kept one unmarked", dropped(t, testNumbers[0]), identity.ProtectionUnknown, ReasonPersonalNumberDropped},
		{"dropped, kept one marked", dropped(t, testNumbers[1]), identity.ProtectionSekretessmarkering, ""},
		{"control: unmarked", person(t, testNumbers[0]), identity.ProtectionNone, ""},
	}
	for _, tc := range tests {
		got, failures := res.Resolve(bg, tc.id)
		if got != tc.want {
			t.Errorf("%s: Resolve = %v, want %v", tc.name, got, tc.want)
		}
		var want []Failure
		if tc.wantReason != "" {
			want = []Failure{{Source: SourceSS12000, Reason: tc.wantReason}}
		}
		if len(failures) != len(want) || (len(want) == 1 && failures[0] != want[0]) {
			t.Errorf("%s: failures = %v, want %v", tc.name, failures, want)
		}
	}
}

// registerStore is a Redis-kept register with a way to lose its data the
// way Redis does.
type registerStore struct {
	name    string
	backend *RedisRegister
	// lose removes the register's data: FLUSHALL on miniredis; on a
	// shared real Redis, deleting the register's hash (what eviction or a
	// flush does to it) without touching anyone else's keys.
	lose func(t *testing.T)
	// legacy writes an entry straight into the hash, as a bridge from
	// before markers did.
	legacy func(t *testing.T, key, val string)
}

func registerStores(t *testing.T) []registerStore {
	mr := miniredis.RunT(t)
	mc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = mc.Close() })
	out := []registerStore{{
		name:    "miniredis",
		backend: NewRedisRegister(mc, "m:"),
		lose:    func(*testing.T) { mr.FlushAll() },
		legacy: func(t *testing.T, key, val string) {
			if err := mc.HSet(bg, "m:protect:register", key, val).Err(); err != nil {
				t.Fatal(err)
			}
		},
	}}
	addr := os.Getenv(realRedisEnv)
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is unset; CI must test against a real Redis", realRedisEnv)
		}
		t.Logf("%s is unset: real Redis variant skipped", realRedisEnv)
		return out
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	prefix := "skolbro-test-flush-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000000") + ":"
	hash := prefix + "protect:register"
	t.Cleanup(func() {
		_ = c.Del(context.Background(), hash).Err()
		_ = c.Close()
	})
	if err := c.Ping(bg).Err(); err != nil {
		t.Fatalf("real Redis at %s: %v", addr, err)
	}
	return append(out, registerStore{
		name:    "redis",
		backend: NewRedisRegister(c, prefix),
		lose: func(t *testing.T) {
			if err := c.Del(bg, hash).Err(); err != nil {
				t.Fatal(err)
			}
		},
		legacy: func(t *testing.T, key, val string) {
			if err := c.HSet(bg, hash, key, val).Err(); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// TestCase36_RedisRegisterDataLossFailsClosed: a Redis-kept register
// whose data is lost (flush, restart without persistence, eviction) is
// not "nobody is marked": every lookup fails (masked, reason
// not_initialised), Ready fails, the gauge drops to 0, adding a person
// does not quietly recreate it, and only `protect init` re-initialises it
// on purpose.
func TestCase36_RedisRegisterDataLossFailsClosed(t *testing.T) {
	t.Parallel()
	for _, rs := range registerStores(t) {
		t.Run(rs.name, func(t *testing.T) {
			m, err := NewMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			reg, err := NewRegister(rs.backend, testRegisterKey)
			if err != nil {
				t.Fatal(err)
			}
			reg.SetMetrics(m)
			res := &Resolver{Sources: []Source{reg}, Metrics: m}
			marked, unmarked := person(t, testNumbers[0]), person(t, testNumbers[1])

			// Never initialised: not ready, and adding is refused.
			if err := reg.Ready(bg); !errors.Is(err, ErrRegisterNotInitialised) {
				t.Fatalf("Ready before init = %v, want ErrRegisterNotInitialised", err)
			}
			if err := reg.Add(bg, mustPNR(t, testNumbers[0]), "", testNow); !errors.Is(err, ErrRegisterNotInitialised) {
				t.Fatalf("Add before init = %v, want ErrRegisterNotInitialised", err)
			}
			if _, err := runCommand(t, reg, "init", ""); err != nil {
				t.Fatal(err)
			}
			mustAdd(t, reg, testNumbers[0], "")
			if err := reg.Ready(bg); err != nil {
				t.Fatalf("Ready after init: %v", err)
			}
			if got := testutil.ToFloat64(m.registerState); got != 1 {
				t.Errorf("register_ready = %v after init, want 1", got)
			}
			if got, _ := res.Resolve(bg, unmarked); got != identity.ProtectionNone {
				t.Fatalf("unmarked person before the loss: %v, want none", got)
			}

			rs.lose(t)

			for name, id := range map[string]*identity.Identity{"marked": marked, "unmarked": unmarked} {
				got, failures := res.Resolve(bg, id)
				if !got.Protected() || got != identity.ProtectionUnknown {
					t.Errorf("%s person after the loss: %v, want unknown (masked)", name, got)
				}
				if len(failures) != 1 || failures[0] != (Failure{SourceRegister, ReasonNotInitialised}) {
					t.Errorf("%s person after the loss: failures %v, want register/not_initialised", name, failures)
				}
			}
			if got := testutil.ToFloat64(m.failures.WithLabelValues(SourceRegister, ReasonNotInitialised)); got != 2 {
				t.Errorf("failures{register,not_initialised} = %v, want 2", got)
			}
			if err := reg.Ready(bg); !errors.Is(err, ErrRegisterNotInitialised) {
				t.Errorf("Ready after the loss = %v, want ErrRegisterNotInitialised", err)
			}
			if got := testutil.ToFloat64(m.registerState); got != 0 {
				t.Errorf("register_ready = %v after the loss, want 0", got)
			}
			if _, err := reg.List(bg); !errors.Is(err, ErrRegisterNotInitialised) {
				t.Errorf("List after the loss = %v, want ErrRegisterNotInitialised", err)
			}
			// An admin adding someone does not bring the register back.
			if err := reg.Add(bg, mustPNR(t, testNumbers[2]), "", testNow); !errors.Is(err, ErrRegisterNotInitialised) {
				t.Errorf("Add after the loss = %v, want ErrRegisterNotInitialised", err)
			}
			if err := reg.Ready(bg); err == nil {
				t.Errorf("Ready after an Add into the lost register: nil")
			}

			// Re-initialised on purpose: the command says the register is
			// empty and what that means; then the admin adds people again.
			out, err := runCommand(t, reg, "init", "")
			if err != nil || !strings.Contains(out, "holds no markings") || !strings.Contains(out, "restore") {
				t.Errorf("init after the loss: %v, output %q", err, out)
			}
			if err := reg.Ready(bg); err != nil {
				t.Errorf("Ready after re-init: %v", err)
			}
			mustAdd(t, reg, testNumbers[0], "")
			wantStatus(t, reg, marked, identity.ProtectionManual)
			wantStatus(t, reg, unmarked, identity.ProtectionNone)
			if out, err := runCommand(t, reg, "init", ""); err != nil || !strings.Contains(out, "already initialised") {
				t.Errorf("init of an initialised register: %v, %q", err, out)
			}
		})
	}
}

// TestCase36_RedisRegisterLegacyAdoptedByInit: a register written before
// markers existed fails closed until `protect init` adopts it, markings
// kept.
func TestCase36_RedisRegisterLegacyAdoptedByInit(t *testing.T) {
	t.Parallel()
	for _, rs := range registerStores(t) {
		t.Run(rs.name, func(t *testing.T) {
			reg, err := NewRegister(rs.backend, testRegisterKey)
			if err != nil {
				t.Fatal(err)
			}
			rs.legacy(t, reg.keyFor(mustPNR(t, testNumbers[0])), `{"level":"manual","added":"2024-01-01"}`)
			res := &Resolver{Sources: []Source{reg}}
			if got, failures := res.Resolve(bg, person(t, testNumbers[1])); got != identity.ProtectionUnknown || len(failures) != 1 || failures[0].Reason != ReasonNotInitialised {
				t.Errorf("before init: %v, %v; want unknown, not_initialised", got, failures)
			}
			out, err := runCommand(t, reg, "init", "")
			if err != nil || !strings.Contains(out, "1 marking") {
				t.Fatalf("init: %v, %q", err, out)
			}
			wantStatus(t, reg, person(t, testNumbers[0]), identity.ProtectionManual)
			wantStatus(t, reg, person(t, testNumbers[1]), identity.ProtectionNone)
			entries, err := reg.List(bg)
			if err != nil || len(entries) != 1 {
				t.Errorf("List = %v, %v; want the one legacy entry (not the marker)", entries, err)
			}
		})
	}
}

// TestCase36_FileRegisterMissingIsNotInitialised: the file backend's
// missing file fails Ready and counts as not_initialised.
func TestCase36_FileRegisterMissingIsNotInitialised(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "protect.json")
	reg := newFileRegister(t, path)
	if err := reg.Ready(bg); !errors.Is(err, ErrRegisterFileMissing) {
		t.Errorf("Ready without the file = %v, want ErrRegisterFileMissing", err)
	}
	res := &Resolver{Sources: []Source{reg}}
	if got, failures := res.Resolve(bg, person(t, testNumbers[0])); got != identity.ProtectionUnknown || len(failures) != 1 || failures[0].Reason != ReasonNotInitialised {
		t.Errorf("Resolve without the file = %v, %v; want unknown, not_initialised", got, failures)
	}
	if _, err := runCommand(t, reg, "init", ""); err != nil {
		t.Fatal(err)
	}
	if err := reg.Ready(bg); err != nil {
		t.Errorf("Ready after init: %v", err)
	}
	if err := os.WriteFile(path, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := reg.Ready(bg); !errors.Is(err, ErrRegisterFileBad) {
		t.Errorf("Ready with a broken file = %v, want ErrRegisterFileBad", err)
	}
}

// TestRedisRegisterMarkerIsNotAnEntry: the marker cannot be read, set or
// deleted as an entry.
func TestRedisRegisterMarkerIsNotAnEntry(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	s, err := store.NewRedisFromConfig([]string{mr.Addr()}, "", "", 0, "", nil, "p:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	b := NewRedisRegister(s.Client(), s.Prefix())
	if err := b.Init(bg); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(bg, redisMarkerField); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(marker) = %v, want ErrNotFound", err)
	}
	if err := b.Set(bg, redisMarkerField, []byte(`{}`)); err == nil {
		t.Error("Set(marker) succeeded")
	}
	if err := b.Delete(bg, redisMarkerField); err == nil {
		t.Error("Delete(marker) succeeded")
	}
	if err := b.Ready(bg); err != nil {
		t.Errorf("Ready: %v", err)
	}
}
