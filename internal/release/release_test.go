package release

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/skolbro/skolbro/internal/assurance"
	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/pseudonym"
)

const (
	scope  = "skola.example.se"
	pnText = "191212121212" // Skatteverket's test number 19121212-1212
	loaBas = "http://id.skolfederation.se/loa/bas"
	loa2FA = "http://id.skolfederation.se/loa/2fa"
)

var (
	authnInstant = time.Date(2026, 3, 2, 8, 15, 0, 0, time.UTC)
	testNow      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func deriver(t *testing.T) *pseudonym.Deriver {
	t.Helper()
	d, err := pseudonym.New(bytes.Repeat([]byte{9}, 32), scope)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func loadPolicy(t *testing.T, file string) *policy.Policy {
	t.Helper()
	p, problems := policy.LoadFile(filepath.Join("../../testdata/policies/valid", file), policy.At(testNow))
	if p == nil {
		t.Fatalf("LoadFile(%s): %v", file, problems)
	}
	return p
}

func def(t *testing.T, name string) attr.Def {
	t.Helper()
	d, ok := attr.Lookup(name)
	if !ok {
		t.Fatalf("attribute %q not in the table", name)
	}
	return d
}

// person returns a fresh identity with every kind of attribute.
func person(t *testing.T, p identity.Protection) *identity.Identity {
	t.Helper()
	pn, err := identity.ParsePersonalNumber(pnText, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return &identity.Identity{
		Upstream:       "school-idp",
		StableID:       identity.NewSecret("user-1"),
		PersonalNumber: pn,
		Attributes: identity.Attributes{
			attr.GivenName:      {"Tolvan"},
			attr.Surname:        {"Tolvansson"},
			attr.DisplayName:    {"Tolvan Tolvansson"},
			attr.Mail:           {"tolvan@skola.example.se"},
			attr.Affiliation:    {"student", "member"},
			attr.SchoolUnitCode: {"12345678"},
			// The upstream's own words never pass: only the organiser's
			// levels in Assurance below are released.
			attr.Assurance:   {"urn:x:upstream-own-word"},
			attr.Entitlement: {"urn:mace:example:entitlement"},
			// Values an upstream might send that must never pass through:
			attr.EPPN:                {"tolvan@upstream.example"},
			attr.PersonalIdentityNum: {pnText},
		},
		AuthnInstant: authnInstant,
		AuthnContext: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
		Assurance:    []string{loaBas},
		Protection:   p,
	}
}

func TestRelease(t *testing.T) {
	t.Parallel()
	d := deriver(t)
	stable := identity.NewSecret("user-1")
	learning := loadPolicy(t, "learning-app.yaml")
	dnp := loadPolicy(t, "dnp.yaml")
	registry := loadPolicy(t, "exam-registry.yaml")
	eppn := d.EPPN(stable)
	registryPairwise := d.PairwiseID(stable, "https://registry.example/shibboleth")

	base := func(p *policy.Policy) Released {
		return Released{
			VendorID: p.ID, EntityID: p.SAML.EntityID,
			AuthnInstant: authnInstant,
			AuthnContext: loaBas,
		}
	}
	with := func(r Released, nameID string, masked bool, attrs ...Attribute) *Released {
		r.NameID, r.Masked, r.Attributes = nameID, masked, attrs
		return &r
	}
	a := func(name string, values ...string) Attribute { return Attribute{Def: def(t, name), Values: values} }

	type level struct {
		name string
		p    identity.Protection
	}
	unprotected := []level{{"unprotected", identity.ProtectionNone}}
	protected := []level{
		{"unknown", identity.ProtectionUnknown},
		{"sekretessmarkering", identity.ProtectionSekretessmarkering},
		{"skyddad folkbokföring", identity.ProtectionSkyddadFolkbokforing},
		{"manual", identity.ProtectionManual},
	}
	tests := []struct {
		name   string
		policy *policy.Policy
		levels []level
		want   *Released
	}{
		{
			name: "learning app", policy: learning, levels: unprotected,
			want: with(base(learning), "", false,
				a(attr.EPPN, eppn),
				a(attr.ScopedAffiliation, "student@"+scope), // member is not on the allow-list
				a(attr.GivenName, "Tolvan"),
			),
		},
		{
			name: "learning app", policy: learning, levels: protected,
			want: with(base(learning), "", true,
				a(attr.EPPN, eppn),
				a(attr.ScopedAffiliation, "student@"+scope),
			),
		},
		{
			name: "dnp", policy: dnp, levels: unprotected,
			want: with(base(dnp), "", false,
				a(attr.EPPN, eppn),
				a(attr.ScopedAffiliation, "student@"+scope, "member@"+scope),
				a(attr.SchoolUnitCode, "12345678"),
			),
		},
		{
			name: "dnp", policy: dnp, levels: protected,
			want: with(base(dnp), "", true,
				a(attr.EPPN, eppn),
				a(attr.ScopedAffiliation, "student@"+scope, "member@"+scope),
			),
		},
		{
			name: "registry with personal number opt-in", policy: registry, levels: unprotected,
			want: with(base(registry), registryPairwise, false,
				a(attr.PairwiseID, registryPairwise),
				a(attr.ScopedAffiliation, "student@"+scope),
				a(attr.DisplayName, "Tolvan Tolvansson"),
				a(attr.PersonalIdentityNum, pnText),
			),
		},
		{
			name: "registry with personal number opt-in", policy: registry, levels: protected,
			want: with(base(registry), registryPairwise, true,
				a(attr.PairwiseID, registryPairwise),
				a(attr.ScopedAffiliation, "student@"+scope),
			),
		},
	}
	for _, tc := range tests {
		for _, lv := range tc.levels {
			t.Run(tc.name+"/"+lv.name, func(t *testing.T) {
				t.Parallel()
				got := Release(tc.policy, person(t, lv.p), d)
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Fatalf("released (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestPersonalNumberNeverLeaks scans every value released by every policy
// for every protection level: the personal number appears only with the
// opt-in, only for an unprotected person, and only as the opt-in attribute.
func TestPersonalNumberNeverLeaks(t *testing.T) {
	t.Parallel()
	d := deriver(t)
	policies := []*policy.Policy{
		loadPolicy(t, "learning-app.yaml"), loadPolicy(t, "dnp.yaml"), loadPolicy(t, "exam-registry.yaml"),
		// Everything releasable, without the opt-in.
		everything(t, nil),
	}
	levels := []identity.Protection{
		identity.ProtectionNone, identity.ProtectionUnknown, identity.ProtectionSekretessmarkering,
		identity.ProtectionSkyddadFolkbokforing, identity.ProtectionManual,
	}
	for _, p := range policies {
		for _, lv := range levels {
			r := Release(p, person(t, lv), d)
			wantPN := p.PersonalNumber != nil && lv == identity.ProtectionNone
			found := false
			for _, at := range r.Attributes {
				for _, v := range at.Values {
					for i := 0; i+6 <= len(pnText); i++ {
						if strings.Contains(v, pnText[i:i+6]) {
							if !wantPN || at.Def.Kind != attr.PersonalNumber {
								t.Fatalf("%s/%s: %s carries digits of the personal number", p.ID, lv, at.Def.Name)
							}
							found = true
						}
					}
				}
			}
			if found != wantPN {
				t.Fatalf("%s/%s: personal number released = %v, want %v", p.ID, lv, found, wantPN)
			}
			if strings.Contains(r.NameID, pnText[2:8]) {
				t.Fatalf("%s/%s: NameID carries digits of the personal number", p.ID, lv)
			}
		}
	}
}

// everything is a policy listing every non-personal-number attribute.
func everything(t *testing.T, optIn *policy.PersonalNumberOptIn) *policy.Policy {
	t.Helper()
	p := &policy.Policy{
		ID:             "everything",
		SAML:           &policy.SAMLSettings{EntityID: "https://everything.example/sp", NameID: policy.NameIDPairwise},
		PersonalNumber: optIn,
	}
	for _, d := range attr.All() {
		if d.Kind != attr.PersonalNumber {
			p.Attributes = append(p.Attributes, policy.Rule{Def: d})
		}
	}
	return p
}

func TestProtectedReleaseHasOneShape(t *testing.T) {
	t.Parallel()
	d := deriver(t)
	p := everything(t, &policy.PersonalNumberOptIn{Def: def(t, attr.PersonalIdentityNum), LegalBasis: "x", Reason: "y"})
	want := Release(p, person(t, identity.ProtectionUnknown), d)
	if !want.Masked {
		t.Fatal("Unknown protection was not masked")
	}
	for _, lv := range []identity.Protection{identity.ProtectionSekretessmarkering, identity.ProtectionSkyddadFolkbokforing, identity.ProtectionManual} {
		if diff := cmp.Diff(want, Release(p, person(t, lv), d)); diff != "" {
			t.Fatalf("%s differs from unknown (-unknown +%s):\n%s", lv, lv, diff)
		}
	}
	// Exactly the pseudonyms, affiliation and assurance.
	wantNames := []string{
		attr.EPPN, attr.ScopedAffiliation, attr.Affiliation, attr.Assurance,
		attr.TargetedID, attr.UniqueID, attr.SubjectID, attr.PairwiseID,
	}
	if diff := cmp.Diff(wantNames, want.Names()); diff != "" {
		t.Fatalf("names (-want +got):\n%s", diff)
	}
	for _, a := range want.Attributes {
		for _, v := range a.Values {
			if strings.Contains(strings.ToLower(v), "tolvan") {
				t.Fatalf("%s carries the name", a.Def.Name)
			}
		}
	}
}

func TestDerivedAttributes(t *testing.T) {
	t.Parallel()
	d := deriver(t)
	stable := identity.NewSecret("user-1")
	const sector = "https://everything.example/sp"
	r := Release(everything(t, nil), person(t, identity.ProtectionNone), d)
	got := map[string][]string{}
	for _, a := range r.Attributes {
		got[a.Def.Name] = a.Values
	}
	want := map[string][]string{
		attr.EPPN:       {d.EPPN(stable)},
		attr.UniqueID:   {d.EPPN(stable)},
		attr.SubjectID:  {d.SubjectID(stable)},
		attr.PairwiseID: {d.PairwiseID(stable, sector)},
		attr.TargetedID: {d.PairwiseID(stable, sector)},
	}
	for name, w := range want {
		if diff := cmp.Diff(w, got[name]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	if got[attr.EPPN][0] == "tolvan@upstream.example" {
		t.Error("the upstream EPPN was passed on")
	}
	if r.NameID != d.PairwiseID(stable, sector) {
		t.Error("pairwise NameID is not the pairwise-id")
	}
}

func TestWithoutStableIDOrDeriver(t *testing.T) {
	t.Parallel()
	d := deriver(t)
	p := everything(t, nil)
	noStable := person(t, identity.ProtectionNone)
	noStable.StableID = identity.Secret{}
	tests := []struct {
		name      string
		id        *identity.Identity
		d         *pseudonym.Deriver
		wantNames []string
	}{
		{"no stable id: no pseudonyms", noStable, d, []string{
			attr.ScopedAffiliation, attr.Affiliation, attr.Entitlement, attr.Assurance,
			attr.GivenName, attr.Surname, attr.DisplayName, attr.Mail, attr.SchoolUnitCode,
		}},
		{"no deriver: no pseudonyms and no scoped values", person(t, identity.ProtectionNone), nil, []string{
			attr.Affiliation, attr.Entitlement, attr.Assurance,
			attr.GivenName, attr.Surname, attr.DisplayName, attr.Mail, attr.SchoolUnitCode,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Release(p, tc.id, tc.d)
			if diff := cmp.Diff(tc.wantNames, r.Names()); diff != "" {
				t.Fatalf("names (-want +got):\n%s", diff)
			}
			if r.NameID != "" {
				t.Fatalf("NameID = %q, want transient", r.NameID)
			}
		})
	}
}

func TestNoSectorNoPairwise(t *testing.T) {
	t.Parallel()
	p := &policy.Policy{ID: "no-sector", Attributes: []policy.Rule{
		{Def: def(t, attr.PairwiseID)}, {Def: def(t, attr.TargetedID)}, {Def: def(t, attr.EPPN)},
	}}
	r := Release(p, person(t, identity.ProtectionNone), deriver(t))
	if diff := cmp.Diff([]string{attr.EPPN}, r.Names()); diff != "" {
		t.Fatalf("names (-want +got):\n%s", diff)
	}
}

func TestAllowLists(t *testing.T) {
	t.Parallel()
	d := deriver(t)
	id := person(t, identity.ProtectionNone)
	id.Assurance = []string{loa2FA}
	p := &policy.Policy{
		ID:   "lists",
		SAML: &policy.SAMLSettings{EntityID: "https://lists.example/sp", NameID: policy.NameIDTransient},
		Attributes: []policy.Rule{
			{Def: def(t, attr.ScopedAffiliation), Values: []string{"member", "faculty"}},
			{Def: def(t, attr.Affiliation), Values: []string{"student"}},
			{Def: def(t, attr.Assurance), Values: []string{loa2FA}},
			{Def: def(t, attr.SchoolUnitCode), Values: []string{"87654321"}}, // nothing matches: left out
			{Def: def(t, attr.GivenName)},
		},
	}
	want := []Attribute{
		{Def: def(t, attr.ScopedAffiliation), Values: []string{"member@" + scope}},
		{Def: def(t, attr.Affiliation), Values: []string{"student"}},
		{Def: def(t, attr.Assurance), Values: []string{loa2FA}},
		{Def: def(t, attr.GivenName), Values: []string{"Tolvan"}},
	}
	if diff := cmp.Diff(want, Release(p, id, d).Attributes); diff != "" {
		t.Fatalf("attributes (-want +got):\n%s", diff)
	}
}

func TestPairwiseDiffersAcrossVendors(t *testing.T) {
	t.Parallel()
	d := deriver(t)
	mk := func(entityID string) *policy.Policy {
		return &policy.Policy{
			ID:         "v",
			SAML:       &policy.SAMLSettings{EntityID: entityID, NameID: policy.NameIDPairwise},
			Attributes: []policy.Rule{{Def: def(t, attr.PairwiseID)}, {Def: def(t, attr.EPPN)}},
		}
	}
	id := person(t, identity.ProtectionNone)
	a := Release(mk("https://a.example/sp"), id, d)
	b := Release(mk("https://b.example/sp"), id, d)
	if a.NameID == b.NameID || a.Attributes[0].Values[0] == b.Attributes[0].Values[0] {
		t.Fatal("pairwise identifiers are the same for two vendors")
	}
	if a.Attributes[1].Values[0] != b.Attributes[1].Values[0] {
		t.Fatal("EPPN differs between vendors")
	}
}

func TestReleaseDoesNotMutateOrAlias(t *testing.T) {
	t.Parallel()
	d := deriver(t)
	opts := cmp.Options{
		cmp.AllowUnexported(identity.Secret{}, identity.PersonalNumber{}),
		cmpopts.IgnoreUnexported(policy.Policy{}),
	}
	for _, file := range []string{"learning-app.yaml", "dnp.yaml", "exam-registry.yaml"} {
		p := loadPolicy(t, file)
		pBefore := loadPolicy(t, file)
		id := person(t, identity.ProtectionNone)
		idBefore := person(t, identity.ProtectionNone)

		r := Release(p, id, d)
		if diff := cmp.Diff(idBefore, id, opts); diff != "" {
			t.Fatalf("%s: identity changed (-before +after):\n%s", file, diff)
		}
		if diff := cmp.Diff(pBefore, p, opts); diff != "" {
			t.Fatalf("%s: policy changed (-before +after):\n%s", file, diff)
		}
		// Writing into the result must not reach the inputs.
		for _, a := range r.Attributes {
			for i := range a.Values {
				a.Values[i] = "overwritten"
			}
		}
		if diff := cmp.Diff(idBefore, id, opts); diff != "" {
			t.Fatalf("%s: result shares slices with the identity:\n%s", file, diff)
		}
		if diff := cmp.Diff(pBefore, p, opts); diff != "" {
			t.Fatalf("%s: result shares slices with the policy:\n%s", file, diff)
		}
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	r := &Released{Attributes: []Attribute{
		{Def: attr.Def{Name: attr.EPPN}, Values: []string{"x"}},
		{Def: attr.Def{Name: attr.GivenName}, Values: []string{"Tolvan"}},
	}}
	if diff := cmp.Diff([]string{attr.EPPN, attr.GivenName}, r.Names()); diff != "" {
		t.Fatalf("Names (-want +got):\n%s", diff)
	}
	if len((&Released{}).Names()) != 0 {
		t.Fatal("Names of an empty release is not empty")
	}
}

// The vendor gets the organiser's level the login proved, named by the
// strongest proven level, and eduPersonAssurance as every proven level:
// never the upstream's own words, never more than proven (case 49).
func TestCase49_ReleasedLevelIsProven(t *testing.T) {
	t.Parallel()
	p := &policy.Policy{ID: "levels", SAML: &policy.SAMLSettings{EntityID: "https://levels.example/sp"},
		Attributes: []policy.Rule{{Def: def(t, attr.Assurance)}}}
	tests := []struct {
		name      string
		proven    []string
		wantClass string
		wantEPA   []string
	}{
		{"nothing proven is bas", nil, assurance.Bas, []string{assurance.Bas}},
		{"two-factor", []string{assurance.TwoFactor}, assurance.TwoFactor, []string{assurance.Bas, assurance.REFEDSMFA, assurance.TwoFactor}},
		{"loa2 is not two-factor", []string{assurance.LoA2}, assurance.LoA2, []string{assurance.Bas, assurance.LoA2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := person(t, identity.ProtectionNone)
			id.AuthnContext = "urn:x:upstream-class"
			id.Attributes[attr.Assurance] = []string{assurance.LoA4}
			id.Assurance = tc.proven
			r := Release(p, id, deriver(t))
			if r.AuthnContext != tc.wantClass {
				t.Errorf("AuthnContext = %q, want %q", r.AuthnContext, tc.wantClass)
			}
			want := []Attribute{{Def: def(t, attr.Assurance), Values: tc.wantEPA}}
			if diff := cmp.Diff(want, r.Attributes); diff != "" {
				t.Errorf("eduPersonAssurance (-want +got):\n%s", diff)
			}
		})
	}
}
