package pseudonym

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/identity"
)

// TestCase36_GenerationGivesNewIdentifiers: generation 0 is the stable id
// itself (every existing pseudonym stays as it was); every later
// generation gives every kind of identifier a new value, the same one each
// time, different per generation and per person, and never containing the
// stable id.
func TestCase36_GenerationGivesNewIdentifiers(t *testing.T) {
	t.Parallel()
	d := mustNew(t, testKey(7), "skola.example.se")
	anna := identity.NewSecret("anna@school.example")
	if got := d.Generation(anna, 0); got.Reveal() != anna.Reveal() {
		t.Fatal("generation 0 is not the stable id: every existing pseudonym would change")
	}
	all := func(s identity.Secret) []string {
		return []string{d.EPPN(s), d.SubjectID(s), d.PairwiseID(s, "https://sp.example/sp"),
			d.PairwiseSub(s, "https://rp.example"), d.PairwiseEPPN(s, "https://sp.example/sp")}
	}
	seen := map[string]string{}
	for g := 0; g <= 3; g++ {
		gs := d.Generation(anna, g)
		if g > 0 && strings.Contains(gs.Reveal(), anna.Reveal()) {
			t.Errorf("generation %d's input holds the stable id", g)
		}
		if again := d.Generation(anna, g); again.Reveal() != gs.Reveal() {
			t.Errorf("generation %d is not deterministic", g)
		}
		for i, v := range all(gs) {
			if prev, dup := seen[v]; dup {
				t.Errorf("generation %d identifier %d repeats %s", g, i, prev)
			}
			seen[v] = "an earlier one"
			if i < 3 && !oasisID.MatchString(v) {
				t.Errorf("generation %d identifier %d %q has not the OASIS form", g, i, v)
			}
		}
	}
	bertil := identity.NewSecret("bertil@school.example")
	if d.EPPN(d.Generation(bertil, 1)) == d.EPPN(d.Generation(anna, 1)) {
		t.Error("two people share generation 1's EPPN")
	}
	if d.Generation(identity.Secret{}, 2).Reveal() != "" {
		t.Error("no stable id must stay none")
	}
}

// TestCase36_GenerationRecordKeysHideThePerson: the store keys name a
// person by MAC only, one per kind, and depend on the key.
func TestCase36_GenerationRecordKeysHideThePerson(t *testing.T) {
	t.Parallel()
	d := mustNew(t, testKey(7), "skola.example.se")
	pn, err := identity.ParsePersonalNumber("201012242382", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	gk, rk := d.GenerationKey(identity.NewSecret("201012242382")), d.RequestKey(pn)
	for _, k := range []string{gk, rk} {
		if !hex64.MatchString(k) || strings.Contains(k, "1012242382") {
			t.Errorf("record key %q is not an opaque MAC", k)
		}
	}
	if gk == rk {
		t.Error("the generation and request keys of one value coincide: the labels do not separate them")
	}
	if other := mustNew(t, testKey(8), "skola.example.se"); other.RequestKey(pn) == rk {
		t.Error("the request key does not depend on the pseudonym key")
	}
}

// TestCase33_PairwiseEPPN: stable for one vendor, different across
// vendors, unlinkable to the shared EPPN and the pairwise-id, in the
// organiser's scope.
func TestCase33_PairwiseEPPN(t *testing.T) {
	t.Parallel()
	d := mustNew(t, testKey(7), "skola.example.se")
	s := identity.NewSecret("anna@school.example")
	a1, a2 := d.PairwiseEPPN(s, "https://a.example/sp"), d.PairwiseEPPN(s, "https://a.example/sp")
	b := d.PairwiseEPPN(s, "https://b.example/sp")
	if a1 != a2 {
		t.Error("the pairwise EPPN is not stable for one vendor")
	}
	if a1 == b {
		t.Error("two vendors got the same pairwise EPPN")
	}
	if a1 == d.EPPN(s) || a1 == d.PairwiseID(s, "https://a.example/sp") {
		t.Error("the pairwise EPPN equals the shared EPPN or the pairwise-id")
	}
	if !strings.HasSuffix(a1, "@skola.example.se") || !oasisID.MatchString(a1) {
		t.Errorf("pairwise EPPN %q is not <opaque>@scope", a1)
	}
}
