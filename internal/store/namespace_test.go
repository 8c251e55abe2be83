package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A namespaced store is a store: it passes the same conformance suite.
func TestNamespaceConformance(t *testing.T) {
	t.Parallel()
	RunConformance(t,
		func(t *testing.T) Store {
			m := newClockedMemory(t)
			return clockedNamespace{Store: Namespace(m, "o/a/"), m: m}
		},
		func(t *testing.T, s Store, d time.Duration) { s.(clockedNamespace).m.clock.Advance(d) },
	)
}

type clockedNamespace struct {
	Store
	m *clockedMemory
}

// Two organisers' namespaces over one backend never see each other's keys
// (SECURITY.md case 44: store keys are per organiser).
func TestCase44_StoreKeysPerOrganiser(t *testing.T) {
	ctx := context.Background()
	m := newClockedMemory(t)
	a, b := Namespace(m, "o/a/"), Namespace(m, "o/b/")
	if err := a.Put(ctx, "pending:x", []byte("A"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "pending:x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("B read A's key: %v", err)
	}
	if _, err := b.Take(ctx, "pending:x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("B took A's key: %v", err)
	}
	if err := b.Add(ctx, "pending:x", []byte("B"), time.Minute); err != nil {
		t.Fatalf("B's Add collided with A's key: %v", err)
	}
	if v, err := a.Take(ctx, "pending:x"); err != nil || string(v) != "A" {
		t.Fatalf("A's key = %q, %v", v, err)
	}
}
