package audit

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/policy"
)

// registerNow is inside every test agreement.
var registerNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func loadPolicies(t *testing.T, dirs ...string) []*policy.Policy {
	t.Helper()
	var all []*policy.Policy
	for _, dir := range dirs {
		ps, problems := policy.LoadDir(dir, policy.At(registerNow))
		if policy.HasErrors(problems) {
			t.Fatalf("policies in %s have errors: %v", dir, problems)
		}
		all = append(all, ps...)
	}
	return all
}

func samlName(t *testing.T, name string) string {
	t.Helper()
	d, ok := attr.Lookup(name)
	if !ok {
		t.Fatalf("unknown attribute %s", name)
	}
	return d.SAMLName
}

func date(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestBuildRegister(t *testing.T) {
	t.Parallel()
	policies := loadPolicies(t, validPolicyDir, "testdata/policies")
	requested := map[string][]string{
		// DNP's metadata asks for a given name it does not get, and for
		// something the bridge does not know; it gets a school unit code
		// it did not ask for.
		"https://dnp.skolverket.example/sp": {
			samlName(t, attr.EPPN), samlName(t, attr.ScopedAffiliation),
			samlName(t, attr.GivenName), "urn:example:shoe-size",
		},
		// The registry asks for norEduPersonNIN; the policy opts in to
		// personalIdentityNumber instead.
		"https://registry.example/shibboleth": {
			samlName(t, attr.PairwiseID), samlName(t, attr.ScopedAffiliation),
			samlName(t, attr.DisplayName), samlName(t, attr.NorEduPersonNIN),
		},
		// The classroom service requests exactly what it gets.
		"https://classroom.example/saml": {
			samlName(t, attr.GivenName), samlName(t, attr.EPPN), samlName(t, attr.SchoolUnitCode),
		},
		// learning-app's metadata requests nothing (not in the map).
	}
	want := []RegisterRow{
		{
			VendorID: "classroom", DisplayName: "Classroom Service", Protocol: "saml, oidc",
			EntityIDOrClientID: "https://classroom.example/saml, classroom-web",
			Purpose:            "Teachers hand out and collect assignments; the given name lets a teacher recognise the pupil.",
			LegalBasis:         "Public interest (GDPR art. 6.1 e), Skollagen (2010:800)",
			AgreementReference: "PUB-2025-077", AgreementEnds: date("2026-02-15"),
			Released:             []string{attr.EPPN, attr.GivenName, attr.SchoolUnitCode},
			ProtectedHandling:    "givenName [sekretessmarkering]: keep (The teacher must recognise the pupil); sisSchoolUnitCode: replace; other attributes: default",
			RequestedNotReleased: []string{}, ReleasedNotRequested: []string{},
			EnabledSchoolUnits: "12345678; 87654321", EnabledAffiliations: "student; faculty",
		},
		{
			VendorID: "dnp", DisplayName: "Digitala nationella prov (Skolverket)", Protocol: "saml",
			EntityIDOrClientID: "https://dnp.skolverket.example/sp",
			Purpose:            "Pupils sit the national tests; EPPN matches the provisioned pupil, affiliation and school unit pick the test session.",
			LegalBasis:         "Legal obligation (GDPR art. 6.1 c), Skolförordningen (2011:185)",
			AgreementReference: "SKOLV-DNP-2026", AgreementEnds: date("2028-12-31"),
			Released:             []string{attr.EPPN, attr.ScopedAffiliation, attr.SchoolUnitCode},
			ProtectedHandling:    "default",
			RequestedNotReleased: []string{attr.GivenName, "urn:example:shoe-size"},
			ReleasedNotRequested: []string{attr.SchoolUnitCode},
			EnabledSchoolUnits:   "all", EnabledAffiliations: "all",
		},
		{
			VendorID: "exam-registry", DisplayName: "Exam Registry", Protocol: "saml",
			EntityIDOrClientID: "https://registry.example/shibboleth",
			Purpose:            "Grades are registered against the national student register, which is keyed by personal number.",
			LegalBasis:         "Legal obligation (GDPR art. 6.1 c), Skolförordningen (2011:185) 6 kap.",
			AgreementReference: "PUB-2024-101", AgreementEnds: date("2026-12-31"),
			Released:             []string{attr.PairwiseID, attr.ScopedAffiliation, attr.DisplayName},
			PersonalNumber:       attr.PersonalIdentityNum,
			ProtectedHandling:    "default",
			RequestedNotReleased: []string{attr.NorEduPersonNIN},
			ReleasedNotRequested: []string{attr.PersonalIdentityNum},
			EnabledSchoolUnits:   "all", EnabledAffiliations: "all",
		},
		{
			VendorID: "learning-app", DisplayName: "Demo Learning App", Protocol: "saml",
			EntityIDOrClientID: "https://learning.example/sp",
			Purpose:            "Pupils and teachers log in to the learning app; EPPN to keep their work, affiliation to pick the pupil or teacher view, first name to greet them.",
			LegalBasis:         "Public interest (GDPR art. 6.1 e), Skollagen (2010:800)",
			AgreementReference: "PUB-2025-014", AgreementEnds: date("2027-06-30"),
			Released:             []string{attr.EPPN, attr.ScopedAffiliation, attr.GivenName},
			ProtectedHandling:    "default",
			RequestedNotReleased: []string{},
			ReleasedNotRequested: []string{attr.EPPN, attr.ScopedAffiliation, attr.GivenName},
			EnabledSchoolUnits:   "all", EnabledAffiliations: "all",
		},
	}
	got := BuildRegister(policies, requested)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("register (-want +got):\n%s", diff)
	}

	// Without metadata there is nothing to compare.
	for _, row := range BuildRegister(policies, nil) {
		if row.RequestedNotReleased != nil || row.ReleasedNotRequested != nil {
			t.Errorf("%s: comparison without metadata: %v / %v", row.VendorID, row.RequestedNotReleased, row.ReleasedNotRequested)
		}
	}
}

func TestWriteRegister(t *testing.T) {
	t.Parallel()
	rows := BuildRegister(loadPolicies(t, validPolicyDir), map[string][]string{})
	rows = append(rows, RegisterRow{VendorID: "x", Purpose: "=cmd|' /C calc'!A0", Released: []string{}})

	var buf bytes.Buffer
	if err := WriteRegisterCSV(&buf, rows); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(registerHeader, recs[0]); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	wantRegistry := []string{
		"exam-registry", "Exam Registry", "saml", "https://registry.example/shibboleth",
		"Grades are registered against the national student register, which is keyed by personal number.",
		"Legal obligation (GDPR art. 6.1 c), Skolförordningen (2011:185) 6 kap.",
		"PUB-2024-101", "2026-12-31", "pairwise-id; eduPersonScopedAffiliation; displayName",
		"personalIdentityNumber", "default", "",
		"pairwise-id; eduPersonScopedAffiliation; displayName; personalIdentityNumber",
		"all", "all",
	}
	if diff := cmp.Diff(wantRegistry, recs[2]); diff != "" {
		t.Errorf("exam-registry row (-want +got):\n%s", diff)
	}
	if got := recs[4][4]; got != "'=cmd|' /C calc'!A0" {
		t.Errorf("formula-looking cell written as %q", got)
	}

	buf.Reset()
	if err := WriteRegisterJSON(&buf, rows[:3]); err != nil {
		t.Fatal(err)
	}
	var back []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != 3 {
		t.Fatalf("%d JSON rows, want 3", len(back))
	}
	if got := back[1]["agreement_ends"]; got != "2026-12-31" {
		t.Errorf("agreement_ends = %v, want the date as in the policy", got)
	}
	if got := back[1]["personal_number"]; got != "personalIdentityNumber" {
		t.Errorf("personal_number = %v", got)
	}
	var keys []string
	for k := range back[1] {
		keys = append(keys, k)
	}
	if diff := cmp.Diff(registerHeader, keys, cmpSorted); diff != "" {
		t.Errorf("JSON keys (-want +got):\n%s", diff)
	}
}

func TestExpiringAgreements(t *testing.T) {
	t.Parallel()
	policies := loadPolicies(t, validPolicyDir, "testdata/policies")
	ended := &policy.Policy{ID: "old-vendor", Agreement: policy.Agreement{Reference: "x", Ends: date("2025-12-31")}}
	noDate := &policy.Policy{ID: "no-date"}
	policies = append(policies, ended, noDate, nil)
	day := 24 * time.Hour
	tests := []struct {
		name   string
		now    time.Time
		within time.Duration
		want   []Expiring
	}{
		{
			name: "60 days", now: registerNow, within: 60 * day,
			want: []Expiring{
				{VendorID: "old-vendor", Ends: date("2025-12-31"), DaysLeft: -1},
				{VendorID: "classroom", Ends: date("2026-02-15"), DaysLeft: 45},
			},
		},
		{
			name: "a year", now: registerNow, within: 365 * day,
			want: []Expiring{
				{VendorID: "old-vendor", Ends: date("2025-12-31"), DaysLeft: -1},
				{VendorID: "classroom", Ends: date("2026-02-15"), DaysLeft: 45},
				{VendorID: "exam-registry", Ends: date("2026-12-31"), DaysLeft: 364},
			},
		},
		{
			name: "last second of the last day, within one second", now: date("2026-12-31").Add(day - time.Second), within: time.Second,
			want: []Expiring{
				{VendorID: "old-vendor", Ends: date("2025-12-31"), DaysLeft: -365},
				{VendorID: "classroom", Ends: date("2026-02-15"), DaysLeft: -319},
				{VendorID: "exam-registry", Ends: date("2026-12-31"), DaysLeft: 0},
			},
		},
		{
			name: "nothing within zero before the end", now: date("2025-06-01"), within: 0,
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, ExpiringAgreements(policies, tc.now, tc.within)); diff != "" {
				t.Errorf("ExpiringAgreements (-want +got):\n%s", diff)
			}
		})
	}
	if got := (Expiring{VendorID: "dnp", Ends: date("2028-12-31"), DaysLeft: 3}).String(); got != "dnp: agreement ends on 2028-12-31 (3 days left)" {
		t.Errorf("String() = %q", got)
	}
}

func TestUpdateAgreementGauge(t *testing.T) {
	t.Parallel()
	policies := loadPolicies(t, validPolicyDir)
	got := map[string]float64{}
	UpdateAgreementGauge(func(v string, d float64) { got[v] = d }, policies, registerNow)
	want := map[string]float64{"dnp": 1095, "exam-registry": 364, "learning-app": 545}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("gauge (-want +got):\n%s", diff)
	}
}
