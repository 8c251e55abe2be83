package pnrvalues

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/store"
)

var (
	bg = context.Background()
	t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
)

const mail = "urn:oid:0.9.2342.19200300.100.1.3"

// stores returns the backends to run on: memory and miniredis always, a
// real Redis when SKOLBRO_TEST_REDIS names one (required when CI=true).
func stores(t *testing.T) map[string]func(t *testing.T) store.Store {
	out := map[string]func(t *testing.T) store.Store{
		"memory": func(t *testing.T) store.Store { return store.NewMemory(nil) },
		"miniredis": func(t *testing.T) store.Store {
			s, err := store.NewRedisFromConfig([]string{miniredis.RunT(t).Addr()}, "", "", 0, "", nil, "skolbro-test:")
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	addr := os.Getenv("SKOLBRO_TEST_REDIS")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but SKOLBRO_TEST_REDIS is not set")
		}
		return out
	}
	out["redis"] = func(t *testing.T) store.Store {
		prefix := fmt.Sprintf("skolbro-pnrvalues-test-%d:", time.Now().UnixNano())
		s, err := store.NewRedisFromConfig([]string{addr}, "", "", 0, "", nil, prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			s.Delete(bg, Key("org-a"))
			s.Delete(bg, Key("org-b"))
		})
		return s
	}
	return out
}

// TestCase36_RecordOfDroppedAttributes: what check and the release preview
// show: attribute names, counts and when last seen, per organiser, for
// Window.
func TestCase36_RecordOfDroppedAttributes(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st := newStore(t)
			if got, err := Recent(bg, st, "org-a", t0); err != nil || len(got) != 0 {
				t.Fatalf("empty record: %v, %v", got, err)
			}
			if err := Record(bg, st, "org-a", []string{mail, "displayName", mail}, t0); err != nil {
				t.Fatal(err)
			}
			later := t0.Add(24 * time.Hour)
			if err := Record(bg, st, "org-a", []string{"displayName"}, later); err != nil {
				t.Fatal(err)
			}
			if err := Record(bg, st, "org-b", []string{"uid"}, later); err != nil {
				t.Fatal(err)
			}
			got, err := Recent(bg, st, "org-a", later)
			if err != nil {
				t.Fatal(err)
			}
			want := []Entry{{Attribute: "displayName", Count: 2, LastSeen: later}, {Attribute: mail, Count: 2, LastSeen: t0}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("organiser A's record (-want +got):\n%s", diff)
			}
			// Organiser isolation (case 44): B's record holds only B's.
			gotB, _ := Recent(bg, st, "org-b", later)
			if diff := cmp.Diff([]Entry{{Attribute: "uid", Count: 1, LastSeen: later}}, gotB); diff != "" {
				t.Errorf("organiser B's record (-want +got):\n%s", diff)
			}
			// Recent means within Window of the last sighting.
			got, _ = Recent(bg, st, "org-a", t0.Add(Window))
			if diff := cmp.Diff([]Entry{{Attribute: "displayName", Count: 2, LastSeen: later}}, got); diff != "" {
				t.Errorf("after Window (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecordIsBounded(t *testing.T) {
	st := store.NewMemory(func() time.Time { return t0 })
	for i := 0; i < maxAttributes+10; i++ {
		if err := Record(bg, st, "org-a", []string{fmt.Sprintf("attr-%03d", i)}, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Recent(bg, st, "org-a", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != maxAttributes || got[0].Attribute != "attr-010" {
		t.Errorf("kept %d entries from %q; want the %d most recent", len(got), got[0].Attribute, maxAttributes)
	}
}

type failingStore struct{ store.Store }

func (failingStore) Get(context.Context, string) ([]byte, error) {
	return nil, errors.New("store down")
}

func TestRecordStoreErrors(t *testing.T) {
	st := failingStore{store.NewMemory(nil)}
	if err := Record(bg, st, "org-a", []string{mail}, t0); err == nil {
		t.Error("Record: no error from a failing store")
	}
	if _, err := Recent(bg, st, "org-a", t0); err == nil {
		t.Error("Recent: no error from a failing store")
	}
	if err := Record(bg, st, "org-a", nil, t0); err != nil {
		t.Errorf("Record of nothing touched the store: %v", err)
	}
	// An unreadable record starts afresh.
	mem := store.NewMemory(nil)
	mem.Put(bg, Key("org-a"), []byte("{not json"), time.Hour)
	if err := Record(bg, mem, "org-a", []string{mail}, t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := Recent(bg, mem, "org-a", t0); len(got) != 1 || got[0].Count != 1 {
		t.Errorf("after an unreadable record: %v", got)
	}
}
