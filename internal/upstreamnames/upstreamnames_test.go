package upstreamnames

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/mapping"
	"github.com/skolbro/skolbro/internal/store"
)

// The record keeps names and when each was last seen, per organiser and
// upstream, forgets what was not seen within Window, and stays bounded
// whatever the IdP sends.
func TestRecordNamesOnlyBoundedAndRecent(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory(nil)
	t0 := time.Date(2026, 1, 10, 8, 0, 0, 0, time.UTC)
	first := []mapping.NameUse{
		{Attribute: "urn:oid:2.5.4.42", FriendlyName: "givenName", Use: "givenName"},
		{Attribute: "urn:x:marking", Use: mapping.UseSecurityMarking},
	}
	if err := Add(ctx, st, "org-a", "idp", first, t0); err != nil {
		t.Fatal(err)
	}
	if err := Add(ctx, st, "org-a", "idp", first[:1], t0.Add(20*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	rec, err := Recent(ctx, st, "org-a", "idp", t0.Add(35*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range rec.Attributes {
		names = append(names, e.Attribute)
	}
	if diff := cmp.Diff([]string{"urn:oid:2.5.4.42"}, names); diff != "" {
		t.Errorf("names after 35 days (-want +got):\n%s", diff)
	}
	if rec.Seen("urn:x:marking") || !rec.Seen("givenName") {
		t.Errorf("Seen: marking %v (want false, last seen 35 days ago), givenName %v", rec.Seen("urn:x:marking"), rec.Seen("givenName"))
	}
	if other, _ := Recent(ctx, st, "org-b", "idp", t0); len(other.Attributes) != 0 {
		t.Errorf("another organiser's record holds %v", other.Attributes)
	}

	var many []mapping.NameUse
	for i := 0; i < 3*maxAttributes; i++ {
		many = append(many, mapping.NameUse{Attribute: fmt.Sprintf("urn:x:%d:%s", i, strings.Repeat("x", 2*maxNameLen))})
	}
	if err := Add(ctx, st, "org-a", "idp", many, t0); err != nil {
		t.Fatal(err)
	}
	rec, _ = Recent(ctx, st, "org-a", "idp", t0)
	if len(rec.Attributes) != maxAttributes {
		t.Errorf("%d names kept, want at most %d", len(rec.Attributes), maxAttributes)
	}
	for _, e := range rec.Attributes {
		if len(e.Attribute) > maxNameLen {
			t.Fatalf("a name of %d bytes kept", len(e.Attribute))
		}
	}
}

func TestViewNotSeen(t *testing.T) {
	rec := &Record{LastLogin: time.Now(), Attributes: []Entry{
		{NameUse: mapping.NameUse{Attribute: "urn:oid:1.3.6.1.4.1.5923.1.1.1.6", FriendlyName: "eduPersonPrincipalName", Use: mapping.UseStableID}},
	}}
	v := NewView(rec, &mapping.Config{StableID: "eduPersonPrincipalName", SecurityMarking: "urn:x:marking",
		Attributes: map[string]string{"http://schemas.example/claims/school": "sisSchoolUnitCode"}})
	if v.SecurityMarkingSeen {
		t.Error("the marking was never sent")
	}
	if diff := cmp.Diff([]string{"http://schemas.example/claims/school", "urn:x:marking"}, v.NotSeen); diff != "" {
		t.Errorf("NotSeen (-want +got):\n%s", diff)
	}
}
