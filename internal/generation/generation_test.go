package generation

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/pseudonym"
	"github.com/skolbro/skolbro/internal/store"
)

var t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

const (
	stableID = "anna.a@skola.example.se"
	pnrText  = "201012242382" // fictional, Luhn-correct
)

// stores returns every backend generations are tested on: memory,
// miniredis, and a real Redis when SKOLBRO_TEST_REDIS names one (required
// when CI=true).
func stores(t *testing.T) map[string]func(t *testing.T) store.Store {
	out := map[string]func(t *testing.T) store.Store{
		"memory": func(*testing.T) store.Store { return store.NewMemory(nil) },
		"miniredis": func(t *testing.T) store.Store {
			mr := miniredis.RunT(t)
			s, err := store.NewRedisFromConfig([]string{mr.Addr()}, "", "", 0, "", nil, "skolbro-gen-test:")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	addr := os.Getenv("SKOLBRO_TEST_REDIS")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but SKOLBRO_TEST_REDIS is not set: the real-Redis variant must run in CI")
		}
		t.Log("SKOLBRO_TEST_REDIS not set: skipping the real-Redis variant")
		return out
	}
	out["redis"] = func(t *testing.T) store.Store {
		var b [8]byte
		rand.Read(b[:])
		prefix := "skolbro-gen-test-" + hex.EncodeToString(b[:]) + ":"
		s, err := store.NewRedisFromConfig([]string{addr}, "", "", 0, "", nil, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(context.Background()); err != nil {
			t.Fatalf("real Redis at %s: %v", addr, err)
		}
		t.Cleanup(func() {
			ctx := context.Background()
			iter := s.Client().Scan(ctx, 0, prefix+"*", 1000).Iterator()
			for iter.Next(ctx) {
				s.Client().Del(ctx, iter.Val())
			}
			s.Close()
		})
		return s
	}
	return out
}

func deriver(t *testing.T) *pseudonym.Deriver {
	t.Helper()
	d, err := pseudonym.New(bytes.Repeat([]byte{3}, 32), "skola.example.se")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func person(t *testing.T, p identity.Protection, withPNR bool) *identity.Identity {
	t.Helper()
	id := &identity.Identity{StableID: identity.NewSecret(stableID), Protection: p}
	if withPNR {
		pn, err := identity.ParsePersonalNumber(pnrText, t0)
		if err != nil {
			t.Fatal(err)
		}
		id.PersonalNumber = pn
	}
	return id
}

// step is one login and what it must decide.
type step struct {
	level   identity.Protection
	request bool // an admin asks for a new identity before this login
	noPNR   bool // the login carries no personal number
	want    int
	started string
}

func run(t *testing.T, k *Keeper, steps []step) {
	t.Helper()
	ctx := context.Background()
	for i, s := range steps {
		now := t0.Add(time.Duration(i) * time.Hour)
		if s.request {
			if _, err := k.Request(ctx, person(t, identity.ProtectionNone, true).PersonalNumber, now); err != nil {
				t.Fatalf("step %d: request: %v", i, err)
			}
		}
		got, err := k.ForLogin(ctx, person(t, s.level, !s.noPNR), now)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got.Generation != s.want || got.Started != s.started {
			t.Fatalf("step %d (%s): got generation %d started %q, want %d %q", i, s.level, got.Generation, got.Started, s.want, s.started)
		}
	}
}

var (
	none    = identity.ProtectionNone
	unknown = identity.ProtectionUnknown
	manual  = identity.ProtectionManual
	secrecy = identity.ProtectionSekretessmarkering
	skyddad = identity.ProtectionSkyddadFolkbokforing
)

// TestCase36_NewIdentityWhenProtectionBegins: the first login seen
// protected by any positive marking starts generation 1; later protected
// logins keep it; unprotection keeps it too (never back to 0); a marking
// after having been seen unprotected starts another.
func TestCase36_NewIdentityWhenProtectionBegins(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for _, lv := range []identity.Protection{secrecy, skyddad, manual} {
				t.Run(lv.String(), func(t *testing.T) {
					k := New(newStore(t), deriver(t))
					run(t, k, []step{
						{level: none, want: 0},
						{level: none, want: 0},
						{level: lv, want: 1, started: CauseProtected},
						{level: lv, want: 1},
						{level: lv, noPNR: true, want: 1},
						{level: none, want: 1}, // unprotected: not reverted
						{level: none, want: 1},
						{level: lv, want: 2, started: CauseProtected}, // protected again after vendors saw 1 unmasked
						{level: lv, want: 2},
					})
				})
			}
		})
	}
}

// TestCase36_UnknownStartsNoGeneration: a status that could not be
// determined masks the login (release's business) but never starts a
// generation, and does not count as being seen unprotected either: an
// outage of a source must not give everyone a new identity.
func TestCase36_UnknownStartsNoGeneration(t *testing.T) {
	k := New(store.NewMemory(nil), deriver(t))
	run(t, k, []step{
		{level: unknown, want: 0},
		{level: unknown, want: 0},
		{level: manual, want: 1, started: CauseProtected},
		{level: unknown, want: 1},
		{level: manual, want: 1}, // Unknown in between was not "seen unprotected"
	})
}

// TestCase36_NewIdentityOnRequest: an admin's request is issued at the
// next login carrying the personal number, once; two requests before
// that login are one new identity; a login without the number cannot
// apply it; Status reports the dates.
func TestCase36_NewIdentityOnRequest(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			k := New(newStore(t), deriver(t))
			ctx := context.Background()
			pn := person(t, none, true).PersonalNumber
			st, err := k.Status(ctx, pn)
			if err != nil || !st.Requested.IsZero() || st.Pending || !st.Issued.IsZero() {
				t.Fatalf("status before anything: %+v, %v", st, err)
			}
			run(t, k, []step{
				{level: none, want: 0},
				{level: none, request: true, noPNR: true, want: 0}, // cannot be applied without the number
				{level: none, want: 1, started: CauseRequested},
				{level: none, want: 1},
			})
			st, err = k.Status(ctx, pn)
			if err != nil || st.Pending || !st.Issued.Equal(t0.Add(2*time.Hour)) || st.IssuedCause != CauseRequested || !st.Requested.Equal(t0.Add(time.Hour)) {
				t.Fatalf("status after the request was issued: %+v, %v", st, err)
			}
			// Vendors saw generation 1 unmasked: a marking now is another.
			if g, err := k.ForLogin(ctx, person(t, manual, true), t0.Add(5*time.Hour)); err != nil || g.Generation != 2 || g.Started != CauseProtected {
				t.Fatalf("protected after an unprotected request: %+v, %v", g, err)
			}
			// Two requests before a login: one new identity.
			if _, err := k.Request(ctx, pn, t0.Add(10*time.Hour)); err != nil {
				t.Fatal(err)
			}
			st2, err := k.Request(ctx, pn, t0.Add(11*time.Hour))
			if err != nil || !st2.Pending || !st2.Requested.Equal(t0.Add(10*time.Hour)) {
				t.Fatalf("second request while one is pending: %+v, %v", st2, err)
			}
			g, err := k.ForLogin(ctx, person(t, manual, true), t0.Add(12*time.Hour))
			if err != nil || g.Generation != 3 || g.Started != CauseRequested {
				t.Fatalf("login after two requests: %+v, %v", g, err)
			}
			if g, _ := k.ForLogin(ctx, person(t, manual, true), t0.Add(13*time.Hour)); g.Generation != 3 {
				t.Fatalf("a second login after the request moved on to %d", g.Generation)
			}
		})
	}
}

// TestCase36_GenerationSharedByInstances: many logins at once, on two
// instances sharing the store, at the moment protection begins: every one
// of them gets generation 1 and exactly one started it.
func TestCase36_GenerationSharedByInstances(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st := newStore(t)
			instances := []*Keeper{New(st, deriver(t)), New(st, deriver(t))}
			var wg sync.WaitGroup
			var mu sync.Mutex
			gens := map[int]int{}
			started := 0
			for i := range 16 {
				wg.Go(func() {
					g, err := instances[i%2].ForLogin(context.Background(), person(t, manual, true), t0)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						t.Error(err)
						return
					}
					gens[g.Generation]++
					if g.Started != "" {
						started++
					}
				})
			}
			wg.Wait()
			if gens[1] != 16 || started != 1 {
				t.Errorf("generations %v, %d started; want all 16 in generation 1, one started", gens, started)
			}
		})
	}
}

// recordingStore remembers every key and value written, and can fail.
type recordingStore struct {
	store.Store
	mu     sync.Mutex
	writes []string
	fail   error
}

func (r *recordingStore) note(key string, value []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, key, string(value))
	return r.fail
}

func (r *recordingStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := r.note(key, value); err != nil {
		return err
	}
	return r.Store.Put(ctx, key, value, ttl)
}

func (r *recordingStore) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := r.note(key, value); err != nil {
		return err
	}
	return r.Store.Add(ctx, key, value, ttl)
}

func (r *recordingStore) Get(ctx context.Context, key string) ([]byte, error) {
	r.mu.Lock()
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	return r.Store.Get(ctx, key)
}

// TestCase36_GenerationRecordsHoldNoPersonalData: keys are MACs, values
// dates and fixed words; no stable id, no personal number.
func TestCase36_GenerationRecordsHoldNoPersonalData(t *testing.T) {
	rs := &recordingStore{Store: store.NewMemory(nil)}
	k := New(rs, deriver(t))
	run(t, k, []step{
		{level: manual, want: 1, started: CauseProtected},
		{level: none, want: 1},
		{level: none, request: true, want: 2, started: CauseRequested},
	})
	if len(rs.writes) == 0 {
		t.Fatal("nothing was written")
	}
	all := strings.Join(rs.writes, "\n")
	for _, secret := range []string{stableID, "anna", pnrText, pnrText[2:], pnrText[2:8]} {
		if strings.Contains(all, secret) {
			t.Errorf("the generation records hold %q", secret)
		}
	}
}

// TestCase38_GenerationStoreDownFailsClosed: when the store cannot be
// read the bridge cannot know which identifiers a person may still get:
// ForLogin returns the error (the login fails with 503), never a guess.
func TestCase38_GenerationStoreDownFailsClosed(t *testing.T) {
	rs := &recordingStore{Store: store.NewMemory(nil)}
	k := New(rs, deriver(t))
	run(t, k, []step{{level: manual, want: 1, started: CauseProtected}})
	down := errors.Join(store.ErrBackend, errors.New("dial tcp: connection refused"))
	rs.fail = down
	for _, lv := range []identity.Protection{none, manual, unknown} {
		if g, err := k.ForLogin(context.Background(), person(t, lv, true), t0); err == nil {
			t.Errorf("%s: store down, yet generation %d was decided", lv, g.Generation)
		}
	}
	if _, err := k.Request(context.Background(), person(t, none, true).PersonalNumber, t0); err == nil {
		t.Error("a request was accepted with the store down")
	}
	rs.fail = nil
	run(t, k, []step{{level: none, want: 1}})
}

// A nil Keeper (no pseudonym key) and a login without a stable id give
// generation 0 without touching any store.
func TestNoKeeperNoStableID(t *testing.T) {
	var k *Keeper
	if g, err := k.ForLogin(context.Background(), person(t, manual, true), t0); err != nil || g.Generation != 0 {
		t.Errorf("nil keeper: %+v %v", g, err)
	}
	if _, err := k.Request(context.Background(), person(t, none, true).PersonalNumber, t0); !errors.Is(err, ErrNoKeeper) {
		t.Errorf("nil keeper request: %v", err)
	}
	rs := &recordingStore{Store: store.NewMemory(nil), fail: errors.New("must not be called")}
	id := person(t, manual, true)
	id.StableID = identity.Secret{}
	if g, err := New(rs, deriver(t)).ForLogin(context.Background(), id, t0); err != nil || g.Generation != 0 {
		t.Errorf("no stable id: %+v %v", g, err)
	}
}

// countingStore counts the calls that reach the store (each a round trip
// with Redis).
type countingStore struct {
	*store.Memory
	mu    sync.Mutex
	calls []string
}

func (c *countingStore) count(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, op)
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.count("get")
	return c.Memory.Get(ctx, key)
}

func (c *countingStore) GetMany(ctx context.Context, keys ...string) ([][]byte, error) {
	c.count("get_many")
	return c.Memory.GetMany(ctx, keys...)
}

func (c *countingStore) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.count("add")
	return c.Memory.Add(ctx, key, value, ttl)
}

// TestForLoginOneReadForMost: a login of a person with no new identity
// and no admin request, the common case, costs the store one call; one
// with a generation reads on from there.
func TestForLoginOneReadForMost(t *testing.T) {
	cs := &countingStore{Memory: store.NewMemory(nil)}
	k := New(cs, deriver(t))
	for _, withPNR := range []bool{true, false} {
		cs.calls = nil
		if g, err := k.ForLogin(context.Background(), person(t, none, withPNR), t0); err != nil || g.Generation != 0 {
			t.Fatalf("ForLogin = %+v, %v", g, err)
		}
		if got := strings.Join(cs.calls, ","); got != "get_many" {
			t.Errorf("with a personal number %v: store calls %s, want get_many", withPNR, got)
		}
	}
	run(t, k, []step{{level: manual, want: 1, started: CauseProtected}})
	cs.calls = nil
	if g, err := k.ForLogin(context.Background(), person(t, manual, true), t0); err != nil || g.Generation != 1 || g.Started != "" {
		t.Fatalf("ForLogin after generation 1 = %+v, %v", g, err)
	}
	// The claim of generation 1 came with the first read; 2 is probed.
	if got := strings.Join(cs.calls, ","); got != "get_many,get,get" {
		t.Errorf("a person in generation 1: store calls %s, want get_many,get (claim 2),get (unprotected mark)", got)
	}
}
