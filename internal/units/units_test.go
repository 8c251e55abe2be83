package units

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/store"
)

var at = time.Date(2026, 2, 20, 10, 0, 0, 0, time.UTC)

const admin = "0123456789abcdef0123456789abcdef"

// stores returns every backend the choices are tested on: memory,
// miniredis, and a real Redis when SKOLBRO_TEST_REDIS names one (required
// when CI=true).
func stores(t *testing.T) map[string]func(t *testing.T) store.Store {
	out := map[string]func(t *testing.T) store.Store{
		"memory": func(*testing.T) store.Store { return store.NewMemory(nil) },
		"miniredis": func(t *testing.T) store.Store {
			mr := miniredis.RunT(t)
			s, err := store.NewRedisFromConfig([]string{mr.Addr()}, "", "", 0, "", nil, "skolbro-units-test:")
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
		prefix := "skolbro-units-test-" + hex.EncodeToString(b[:]) + ":"
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

func filePolicy() *policy.Policy {
	return &policy.Policy{ID: "learning-app", EnabledFor: policy.EnabledFor{
		SchoolUnits: []string{"12345678"}, Affiliations: []string{"student"},
	}}
}

// The admin's choice replaces the file's list, is seen at once by another
// instance on the same store, is logged with who and when, and a reset
// brings the file's list back while the log keeps the history.
func TestCase47_OverrideReplacesFileListAndIsLogged(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st := newStore(t)
			ctx := t.Context()
			one, two := New(st, "kommun-a"), New(st, "kommun-a") // two bridge instances
			p := filePolicy()

			eff, err := two.Effective(ctx, p)
			if err != nil || eff != p {
				t.Fatalf("without a choice: %v, %v; want the file's policy itself", eff, err)
			}

			if _, err := one.Change(ctx, p.ID, Change{At: at, By: admin, Action: ActionSet, Units: []string{"87654321", "11112222", "87654321"}}); err != nil {
				t.Fatal(err)
			}
			eff, err = two.Effective(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(policy.EnabledFor{SchoolUnits: []string{"11112222", "87654321"}, Affiliations: []string{"student"}}, eff.EnabledFor); diff != "" {
				t.Errorf("effective after set (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"12345678"}, p.EnabledFor.SchoolUnits); diff != "" {
				t.Errorf("the loaded policy changed (-want +got):\n%s", diff)
			}

			if _, err := two.Change(ctx, p.ID, Change{At: at.Add(time.Minute), By: admin, Action: ActionAll}); err != nil {
				t.Fatal(err)
			}
			if eff, _ = one.Effective(ctx, p); eff.EnabledFor.SchoolUnits != nil {
				t.Errorf("after all: %v, want every unit", eff.EnabledFor.SchoolUnits)
			}

			s, err := one.Change(ctx, p.ID, Change{At: at.Add(2 * time.Minute), By: admin, Action: ActionReset})
			if err != nil {
				t.Fatal(err)
			}
			if eff, _ = two.Effective(ctx, p); eff != p {
				t.Errorf("after reset the file's list must apply again")
			}
			want := []Change{
				{At: at, By: admin, Action: ActionSet, Units: []string{"11112222", "87654321"}},
				{At: at.Add(time.Minute), By: admin, Action: ActionAll},
				{At: at.Add(2 * time.Minute), By: admin, Action: ActionReset},
			}
			got, err := two.Get(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got.Changes, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("change log (-want +got):\n%s", diff)
			}
			if got.Override || s.Override {
				t.Errorf("override still set after reset")
			}
		})
	}
}

func TestCase47_ChangeRefusesBadInput(t *testing.T) {
	t.Parallel()
	o := New(store.NewMemory(nil), "kommun-a")
	for _, c := range []Change{
		{At: at, By: admin, Action: ActionSet},
		{At: at, By: admin, Action: ActionSet, Units: []string{"1234567"}},
		{At: at, By: admin, Action: ActionSet, Units: []string{"12345678", "abcdefgh"}},
		{At: at, By: admin, Action: "delete"},
		{At: at, Action: ActionAll},
		{By: admin, Action: ActionAll},
	} {
		if _, err := o.Change(t.Context(), "v", c); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: err %v, want ErrInvalid", c, err)
		}
	}
	if s, _ := o.Get(t.Context(), "v"); s.Override || len(s.Changes) != 0 {
		t.Errorf("a refused change was stored: %+v", s)
	}
}

func TestCase47_ChangeLogIsBounded(t *testing.T) {
	t.Parallel()
	o := New(store.NewMemory(nil), "kommun-a")
	for i := range MaxChanges + 7 {
		if _, err := o.Change(t.Context(), "v", Change{At: at.Add(time.Duration(i) * time.Second), By: admin, Action: ActionSet, Units: []string{fmt.Sprintf("%08d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := o.Get(t.Context(), "v")
	if len(s.Changes) != MaxChanges || s.Changes[len(s.Changes)-1].Units[0] != fmt.Sprintf("%08d", MaxChanges+6) || s.Changes[0].Units[0] != "00000007" {
		t.Errorf("%d changes kept, first %v, last %v", len(s.Changes), s.Changes[0].Units, s.Changes[len(s.Changes)-1].Units)
	}
}

// A change while another holds the vendor's lock is refused, not merged
// blindly; another vendor is not affected.
func TestCase47_ConcurrentChangeIsRefused(t *testing.T) {
	t.Parallel()
	st := store.NewMemory(nil)
	if err := st.Add(t.Context(), "units/kommun-a"+lockPrefix+"v", []byte{1}, time.Minute); err != nil {
		t.Fatal(err)
	}
	o := New(st, "kommun-a")
	if _, err := o.Change(t.Context(), "v", Change{At: at, By: admin, Action: ActionAll}); !errors.Is(err, ErrBusy) {
		t.Errorf("err %v, want ErrBusy", err)
	}
	if _, err := o.Change(t.Context(), "w", Change{At: at, By: admin, Action: ActionAll}); err != nil {
		t.Errorf("another vendor: %v", err)
	}
	// The lock is released after a change.
	if _, err := o.Change(t.Context(), "w", Change{At: at, By: admin, Action: ActionReset}); err != nil {
		t.Errorf("second change of w: %v", err)
	}
}

// A store that cannot answer, or a value that cannot be read, is an
// error, never "no choice": the admin may have narrowed the file's list.
func TestCase47_UnreadableChoiceFailsClosed(t *testing.T) {
	t.Parallel()
	st := store.NewMemory(nil)
	st.Put(t.Context(), "units/kommun-a"+keyPrefix+"learning-app", []byte("{not json"), time.Hour)
	if _, err := New(st, "kommun-a").Effective(t.Context(), filePolicy()); !errors.Is(err, store.ErrBackend) {
		t.Errorf("unreadable value: err %v, want store.ErrBackend", err)
	}
	closed := store.NewMemory(nil)
	closed.Close()
	if _, err := New(closed, "kommun-a").Effective(t.Context(), filePolicy()); !errors.Is(err, store.ErrBackend) {
		t.Errorf("closed store: err %v, want store.ErrBackend", err)
	}
}

// A stored set that is somehow empty enables no unit, never every unit.
func TestCase47_EmptyStoredSetEnablesNoOne(t *testing.T) {
	t.Parallel()
	p := State{Override: true}.Apply(filePolicy())
	if p.EnabledFor.SchoolUnits == nil || p.EnabledFor.Allows([]string{"12345678"}, []string{"student"}) {
		t.Errorf("empty override = %v: must enable no one", p.EnabledFor.SchoolUnits)
	}
}

func TestCase47_RegisterShowsTheChoice(t *testing.T) {
	t.Parallel()
	o := New(store.NewMemory(nil), "kommun-a")
	p := filePolicy()
	q := &policy.Policy{ID: "other"}
	if _, err := o.Change(t.Context(), p.ID, Change{At: at, By: admin, Action: ActionSet, Units: []string{"87654321"}}); err != nil {
		t.Fatal(err)
	}
	rows, err := o.Register(t.Context(), []*policy.Policy{p, q, nil}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]string{}
	for _, r := range rows {
		got[r.VendorID] = [2]string{r.EnabledSchoolUnits, r.EnabledAffiliations}
	}
	want := map[string][2]string{"learning-app": {"87654321", "student"}, "other": {"all", "all"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("register (-want +got):\n%s", diff)
	}
}

// Two organisers on one store (a hub) never see each other's choices,
// even for a vendor id they share.
func TestCase47_ChoicesArePerOrganiser(t *testing.T) {
	t.Parallel()
	st := store.NewMemory(nil)
	a, b := New(st, "kommun-a"), New(st, "kommun-b")
	if _, err := a.Change(t.Context(), "learning-app", Change{At: at, By: admin, Action: ActionSet, Units: []string{"87654321"}}); err != nil {
		t.Fatal(err)
	}
	p := filePolicy()
	if eff, err := b.Effective(t.Context(), p); err != nil || eff != p {
		t.Errorf("organiser B sees A's choice: %v, %v", eff.EnabledFor, err)
	}
	if s, _ := b.Get(t.Context(), "learning-app"); len(s.Changes) != 0 {
		t.Errorf("organiser B sees A's change log")
	}
}
