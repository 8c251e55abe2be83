package audit

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/pseudonym"
	"github.com/skolbro/skolbro/internal/release"
)

const validPolicyDir = "../../testdata/policies/valid"

// TestEventHasNoFieldForValues pins Event's fields and their types. A new
// field is a new place personal data could go: it must be added here,
// after review, or this test fails.
func TestEventHasNoFieldForValues(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"Time": "time.Time", "TxnID": "string", "Upstream": "string", "Vendor": "string",
		"Protocol": "string", "Attributes": "[]string", "PolicyVersion": "string",
		"Masked": "bool", "Outcome": "string", "Reason": "string", "SubjectKey": "string",
		"SubjectKeys": "[]string", // hex MACs only, checked by Validate
		// The identity generation: a small number, no value can go there.
		"Generation": "int",
		// A sector kind label, checked by Validate.
		"Sector": "string",
	}
	got := map[string]string{}
	typ := reflect.TypeOf(Event{})
	for i := 0; i < typ.NumField(); i++ {
		got[typ.Field(i).Name] = typ.Field(i).Type.String()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Event fields changed (-want +got):\n%s", diff)
	}
}

func validEvent() Event {
	return Event{
		Time: testNow, TxnID: "0a1b2c3d4e5f", Upstream: "school-idp", Vendor: "learning-app",
		Protocol: ProtocolSAML, Attributes: []string{attr.EPPN, attr.GivenName},
		PolicyVersion: strings.Repeat("ab", 32), Outcome: OutcomeReleased,
		SubjectKey: strings.Repeat("0f", 32),
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*Event)
		ok     bool
	}{
		{"valid release", func(*Event) {}, true},
		{"valid refusal", func(e *Event) {
			e.Outcome, e.Reason, e.Attributes = OutcomeRefused, "agreement_ended", nil
		}, true},
		{"refusal of an unknown vendor by entityID", func(e *Event) {
			e.Outcome, e.Reason, e.Vendor, e.PolicyVersion = OutcomeRefused, "unknown_vendor", "https://unknown.example/sp", ""
		}, true},
		{"no subject key", func(e *Event) { e.SubjectKey = "" }, true},
		{"oidc", func(e *Event) { e.Protocol = ProtocolOIDC }, true},
		{"attribute value instead of a name", func(e *Event) { e.Attributes = []string{"Tolvan"} }, false},
		{"personal number as attribute", func(e *Event) { e.Attributes = []string{pupilPN} }, false},
		{"SAML name instead of friendly name", func(e *Event) { e.Attributes = []string{"urn:oid:2.5.4.42"} }, false},
		{"name=value pair", func(e *Event) { e.Attributes = []string{"givenName=Tolvan"} }, false},
		{"unknown protocol", func(e *Event) { e.Protocol = "cas" }, false},
		{"unknown outcome", func(e *Event) { e.Outcome = "maybe" }, false},
		{"refusal without reason", func(e *Event) { e.Outcome = OutcomeRefused }, false},
		{"reason is free text", func(e *Event) { e.Outcome, e.Reason = OutcomeRefused, "Tolvan was refused" }, false},
		{"reason on a release", func(e *Event) { e.Reason = "agreement_ended" }, false},
		{"subject key not hex", func(e *Event) { e.SubjectKey = pupilPN }, false},
		{"subject key short", func(e *Event) { e.SubjectKey = "abcd" }, false},
		{"every subject key", func(e *Event) { e.SubjectKeys = []string{e.SubjectKey, strings.Repeat("1a", 32)} }, true},
		{"subject keys not led by the subject key", func(e *Event) { e.SubjectKeys = []string{strings.Repeat("1a", 32), e.SubjectKey} }, false},
		{"subject keys without a subject key", func(e *Event) { e.SubjectKey, e.SubjectKeys = "", []string{strings.Repeat("1a", 32)} }, false},
		{"a subject key repeated", func(e *Event) { e.SubjectKeys = []string{e.SubjectKey, e.SubjectKey} }, false},
		{"a personal number among the subject keys", func(e *Event) { e.SubjectKeys = []string{e.SubjectKey, pupilPN} }, false},
		{"too many subject keys", func(e *Event) {
			e.SubjectKeys = []string{e.SubjectKey}
			for i := 0; i < maxSubjectKeys; i++ {
				e.SubjectKeys = append(e.SubjectKeys, strings.Repeat(string(rune('a'+i)), 64))
			}
		}, false},
		{"policy version not hex", func(e *Event) { e.PolicyVersion = "v1 by Tolvan" }, false},
		{"txn id with spaces", func(e *Event) { e.TxnID = "a b" }, false},
		{"empty vendor", func(e *Event) { e.Vendor = "" }, false},
		{"vendor with a newline", func(e *Event) { e.Vendor = "a\nb" }, false},
		{"upstream too long", func(e *Event) { e.Upstream = strings.Repeat("u", 2000) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := validEvent()
			tc.change(&e)
			err := e.Validate()
			if tc.ok && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if !tc.ok {
				if !errors.Is(err, ErrInvalidEvent) {
					t.Fatalf("Validate() = %v, want ErrInvalidEvent", err)
				}
				if strings.Contains(err.Error(), "Tolvan") || pnPattern.MatchString(err.Error()) {
					t.Errorf("error %q carries the refused content", err)
				}
			}
		})
	}
}

func TestEventJSONKeys(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(validEvent())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	want := []string{"attributes", "masked", "outcome", "policy_version", "protocol", "subject_key", "time", "txn_id", "upstream", "vendor"}
	if diff := cmp.Diff(want, keys, cmpSorted); diff != "" {
		t.Errorf("JSON keys (-want +got):\n%s", diff)
	}
}

var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string{}, in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

// TestReleasedEventsCarryNoValues releases real attribute values (a
// personal number and a name, under the exam registry's opt-in) and
// checks that the written lines hold neither, field by field.
func TestReleasedEventsCarryNoValues(t *testing.T) {
	t.Parallel()
	policies, problems := policy.LoadDir(validPolicyDir, policy.At(testNow.AddDate(0, -1, 0)))
	if policy.HasErrors(problems) {
		t.Fatalf("valid policies have errors: %v", problems)
	}
	d, err := pseudonym.New([]byte("pseudonym-key-0123456789abcdef012345"), "skola.example.se")
	if err != nil {
		t.Fatal(err)
	}
	keyer := testKeyer(t)
	dir := t.TempDir()
	sink, err := OpenFileSink(FileSinkConfig{Dir: dir, Now: newClock(testNow).Now})
	if err != nil {
		t.Fatal(err)
	}
	people := []struct {
		pn    string
		names []string
		level identity.Protection
	}{
		{pupilPN, pupilNames, identity.ProtectionNone},
		{classmatePN, mateNames, identity.ProtectionSkyddadFolkbokforing},
	}
	var wantNames [][]string
	for _, person := range people {
		id := &identity.Identity{
			Upstream:       "school-idp",
			StableID:       identity.NewSecret("stable-" + person.pn),
			PersonalNumber: mustPN(t, person.pn),
			Attributes: identity.Attributes{
				attr.GivenName:      {person.names[0]},
				attr.Surname:        {person.names[1]},
				attr.DisplayName:    {person.names[2]},
				attr.Affiliation:    {"student"},
				attr.SchoolUnitCode: {"87654321"},
			},
			Protection: person.level,
		}
		for _, p := range policies {
			r := release.Release(p, id, d)
			if p.ID == "exam-registry" && person.level == identity.ProtectionNone {
				// The release carries the values this test looks for.
				if got := r.Attributes[len(r.Attributes)-1].Values[0]; got != person.pn {
					t.Fatalf("test setup: exam registry release lacks the personal number")
				}
			}
			e := ReleaseEvent(testNow, "req-1", id.Upstream, ProtocolSAML, p, r, keyer.Key(id))
			if err := sink.Write(context.Background(), e); err != nil {
				t.Fatalf("Write: %v", err)
			}
			wantNames = append(wantNames, r.Names())
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, dir)
	if len(lines) != len(wantNames) {
		t.Fatalf("got %d lines, want %d", len(lines), len(wantNames))
	}
	for i, line := range lines {
		checkNoPersonalData(t, line)
		if strings.Contains(line, people[0].pn[2:]) || strings.Contains(line, people[1].pn[2:]) {
			t.Errorf("line %d holds a personal number", i)
		}
		var e Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantNames[i], e.Attributes); diff != "" {
			t.Errorf("line %d attribute names (-want +got):\n%s", i, diff)
		}
	}
}

// TestPersonalDataCheckCanFail proves the line check used above catches
// what it is meant to catch, and ignores digit runs in hex fields.
func TestPersonalDataCheckCanFail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		line string
		want []string
	}{
		{"clean", `{"vendor":"dnp","attributes":["givenName"],"subject_key":"0123456789012345abcdef"}`, nil},
		{"number in vendor", `{"vendor":"x` + pupilPN + `"}`, []string{"vendor looks like a personal number"}},
		{"10-digit number with dash", `{"txn_id":"100315-1234"}`, []string{"txn_id looks like a personal number"}},
		{"name in attributes", `{"attributes":["Alva Andersson"]}`, []string{
			"attributes holds a test person's name", "attributes holds a test person's name", "attributes holds a test person's name",
		}},
		{"value in a hex field", `{"subject_key":"Tolvan"}`, []string{"subject_key is not hex"}},
		{"nested object", `{"upstream":{"a":1}}`, []string{"upstream is an object; events are flat"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := personalDataProblems(tc.line)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEventRoundTrip(t *testing.T) {
	t.Parallel()
	clk := newClock(testNow)
	dir := t.TempDir()
	sink, err := OpenFileSink(FileSinkConfig{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	release := validEvent()
	release.Time = testNow.In(time.FixedZone("CET", 3600)) // stored in UTC
	refusal := Event{
		TxnID: "req-2", Upstream: "school-idp", Vendor: "dnp", Protocol: ProtocolOIDC,
		Outcome: OutcomeRefused, Reason: "agreement_ended", Masked: true,
	}
	for _, e := range []Event{release, refusal} {
		if err := sink.Write(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	var got []Event
	for _, line := range readLines(t, dir) {
		var e Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	wantRelease := validEvent()
	wantRefusal := refusal
	wantRefusal.Time = testNow // zero time: the sink's clock
	wantRefusal.Attributes = []string{}
	if diff := cmp.Diff([]Event{wantRelease, wantRefusal}, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if filepath.Base(sink.File()) != "releases-20261124T101500Z.jsonl" {
		t.Errorf("file name %q", filepath.Base(sink.File()))
	}
}
