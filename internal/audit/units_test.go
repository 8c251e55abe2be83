package audit

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/policy"
)

// The register shows, per vendor, the school units and affiliations it is
// enabled for, "all" when it is not restricted (case 47), in every format.
func TestCase47_RegisterShowsEnabledUnits(t *testing.T) {
	t.Parallel()
	policies := loadPolicies(t, "testdata/policies", validPolicyDir)
	// As the admin's choice arrives: a copy with other units.
	var chosen *policy.Policy
	for _, p := range policies {
		if p.ID == "learning-app" {
			chosen = p.WithSchoolUnits([]string{"11112222"})
		}
	}
	policies = append(policies, chosen)
	rows := BuildRegister(policies, nil)
	got := map[string][]string{}
	for _, r := range rows {
		got[r.VendorID] = append(got[r.VendorID], r.EnabledSchoolUnits+" / "+r.EnabledAffiliations)
	}
	want := map[string][]string{
		"classroom":     {"12345678; 87654321 / student; faculty"},
		"dnp":           {"all / all"},
		"exam-registry": {"all / all"},
		"learning-app":  {"all / all", "11112222 / all"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("enabled for (-want +got):\n%s", diff)
	}

	var buf bytes.Buffer
	if err := WriteRegisterCSV(&buf, rows[:1]); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	n := len(recs[0])
	if diff := cmp.Diff([]string{"enabled_school_units", "enabled_affiliations", "12345678; 87654321", "student; faculty"},
		[]string{recs[0][n-2], recs[0][n-1], recs[1][n-2], recs[1][n-1]}); diff != "" {
		t.Errorf("CSV columns (-want +got):\n%s", diff)
	}
	buf.Reset()
	if err := WriteRegisterJSON(&buf, rows[:2]); err != nil {
		t.Fatal(err)
	}
	var back []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back[0]["enabled_school_units"] != "12345678; 87654321" || back[1]["enabled_school_units"] != "all" || back[1]["enabled_affiliations"] != "all" {
		t.Errorf("JSON: %v / %v", back[0]["enabled_school_units"], back[1]["enabled_school_units"])
	}
}

// The refusal of case 47 is a valid release log event: a fixed label,
// no attributes.
func TestCase47_NotEnabledRefusalEvent(t *testing.T) {
	t.Parallel()
	p := &policy.Policy{ID: "learning-app", Hash: "abcd"}
	e := RefusalEvent(registerNow, "0123456789abcdef01234567", "school-idp", ProtocolOIDC, p.ID, p, ReasonNotEnabled, "")
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	if e.Reason != "not_enabled_for_unit" || e.Outcome != OutcomeRefused || len(e.Attributes) != 0 {
		t.Errorf("event %+v", e)
	}
}
