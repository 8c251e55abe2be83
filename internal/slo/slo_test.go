package slo

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/samlslo"
	"github.com/skolbro/skolbro/internal/store"
)

func testSession() *Session {
	return &Session{
		Upstream: &Upstream{ID: "school-idp", Protocol: ProtocolSAML, Subject: "anna.andersson@skola.example.se",
			NameID: &samlslo.NameID{Value: "anna.andersson@skola.example.se"}, SessionIndex: "_idp-si"},
		Vendors: []Participant{
			{Vendor: "learning-app", Protocol: ProtocolSAML, EntityID: "https://app.example/sp",
				NameID: &samlslo.NameID{Value: "_transient-nameid"}, SessionIndex: "_si"},
			{Vendor: "oidc-app", Protocol: ProtocolOIDC, ClientID: "oidc-app", Sub: "pairwise-sub", SID: "vendor-sid"},
		},
		Started: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC),
	}
}

// TestSealedRecordsOpenOnlyWithTheirToken: a record reads back under its
// token, holds nothing in the clear, is named by no part of the token,
// and opens neither under another token nor under another key.
func TestSealedRecordsOpenOnlyWithTheirToken(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory(nil)
	defer mem.Close()
	rec := &recorder{Store: mem}
	s := Sealed{Store: rec, Prefix: PrefixSession}
	tok, err := NewToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ValidToken(tok) || ValidToken(tok+"x") || ValidToken("") {
		t.Fatal("ValidToken")
	}
	want := testSession()
	if err := s.Put(ctx, tok, want, time.Hour); err != nil {
		t.Fatal(err)
	}
	var got Session
	if err := s.Get(ctx, tok, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, &got); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	for _, secret := range []string{"anna.andersson", "_transient-nameid", "pairwise-sub", "vendor-sid", "learning-app", tok} {
		if bytes.Contains(rec.value, []byte(secret)) || bytes.Contains([]byte(rec.key), []byte(secret)) {
			t.Errorf("the store sees %q in the clear", secret)
		}
	}
	other, _ := NewToken(nil)
	if err := s.Get(ctx, other, &got); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another token finds the record: %v", err)
	}
	// The sealed value copied under another token's key does not open.
	if err := mem.Put(ctx, PrefixSession+Handle(other), rec.value, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Get(ctx, other, &got); !errors.Is(err, ErrSealed) {
		t.Errorf("a record moved to another key opened: %v", err)
	}
	if FormToken(tok) == FormToken(other) || FormToken(tok) == Handle(tok) {
		t.Errorf("form tokens are not per token, or equal the handle")
	}
}

// TestTakeOnce: of two takes, one gets the session.
func TestTakeOnce(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory(nil)
	defer mem.Close()
	s := Sealed{Store: mem, Prefix: PrefixSession}
	tok, _ := NewToken(nil)
	if err := s.Put(ctx, tok, testSession(), time.Hour); err != nil {
		t.Fatal(err)
	}
	var a, b Session
	if err := s.Take(ctx, tok, &a); err != nil {
		t.Fatal(err)
	}
	if err := s.Take(ctx, tok, &b); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second take: %v", err)
	}
}

func TestSessionAddAndSameUpstream(t *testing.T) {
	s := testSession()
	s.Add(Participant{Vendor: "learning-app", Protocol: ProtocolSAML, NameID: &samlslo.NameID{Value: "_new"}})
	if len(s.Vendors) != 2 || s.Vendors[0].NameID.Value != "_new" {
		t.Errorf("a second login at a vendor did not replace the first: %+v", s.Vendors)
	}
	s.Add(Participant{Vendor: "national-tests", Protocol: ProtocolSAML})
	if len(s.Vendors) != 3 {
		t.Errorf("a new vendor was not added")
	}
	same := *s.Upstream
	same.SessionIndex = "_later"
	if !s.SameUpstream(&same) {
		t.Errorf("a later login of the same person is another person")
	}
	other := same
	other.Subject = "bertil@skola.example.se"
	if s.SameUpstream(&other) || s.SameUpstream(nil) {
		t.Errorf("another person continues the record")
	}
}

type recorder struct {
	store.Store
	key   string
	value []byte
}

func (r *recorder) Put(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	r.key, r.value = k, append([]byte(nil), v...)
	return r.Store.Put(ctx, k, v, ttl)
}
