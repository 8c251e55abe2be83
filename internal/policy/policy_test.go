package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/skolbro/skolbro/internal/attr"
)

const (
	validDir  = "../../testdata/policies/valid"
	brokenDir = "../../testdata/policies/broken"
)

// testNow is after every valid agreement's start and before its end.
var testNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func def(t *testing.T, name string) attr.Def {
	t.Helper()
	d, ok := attr.Lookup(name)
	if !ok {
		t.Fatalf("attribute %q not in the table", name)
	}
	return d
}

func date(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestLoadFileValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file         string
		want         Policy
		wantProblems []Problem
	}{
		{
			file: "learning-app.yaml",
			want: Policy{
				ID:          "learning-app",
				DisplayName: "Demo Learning App",
				Purpose:     "Pupils and teachers log in to the learning app; EPPN to keep their work, affiliation to pick the pupil or teacher view, first name to greet them.",
				LegalBasis:  "Public interest (GDPR art. 6.1 e), Skollagen (2010:800)",
				EPPN:        EPPNShared,
				SAML: &SAMLSettings{
					EntityID: "https://learning.example/sp", NameID: NameIDTransient,
					Sign: SignAuto, Encrypt: EncryptAuto,
				},
				Agreement: Agreement{Reference: "PUB-2025-014", Ends: date("2027-06-30")},
				Attributes: []Rule{
					{Def: def(t, attr.EPPN)},
					{Def: def(t, attr.ScopedAffiliation), Values: []string{"student", "faculty"}},
					{Def: def(t, attr.GivenName)},
				},
			},
		},
		{
			file: "dnp.yaml",
			want: Policy{
				ID:          "dnp",
				DisplayName: "Digitala nationella prov (Skolverket)",
				Purpose:     "Pupils sit the national tests; EPPN matches the provisioned pupil, affiliation and school unit pick the test session.",
				LegalBasis:  "Legal obligation (GDPR art. 6.1 c), Skolförordningen (2011:185)",
				EPPN:        EPPNShared,
				SAML: &SAMLSettings{
					EntityID: "https://dnp.skolverket.example/sp", NameID: NameIDTransient,
					Sign: SignAssertionAndResponse, SignatureAlgorithm: RSASHA256, Encrypt: EncryptAuto,
				},
				Agreement: Agreement{Reference: "SKOLV-DNP-2026", Ends: date("2028-12-31")},
				Attributes: []Rule{
					{Def: def(t, attr.EPPN)},
					{Def: def(t, attr.ScopedAffiliation)},
					{Def: def(t, attr.SchoolUnitCode)},
				},
			},
		},
		{
			file: "exam-registry.yaml",
			want: Policy{
				ID:          "exam-registry",
				DisplayName: "Exam Registry",
				Purpose:     "Grades are registered against the national student register, which is keyed by personal number.",
				LegalBasis:  "Legal obligation (GDPR art. 6.1 c), Skolförordningen (2011:185) 6 kap.",
				EPPN:        EPPNShared,
				SAML: &SAMLSettings{
					EntityID: "https://registry.example/shibboleth", NameID: NameIDPairwise,
					Sign: SignAssertion, SignatureAlgorithm: ECDSASHA256, Encrypt: EncryptRequired,
				},
				Agreement: Agreement{Reference: "PUB-2024-101", Ends: date("2026-12-31")},
				Attributes: []Rule{
					{Def: def(t, attr.PairwiseID)},
					{Def: def(t, attr.ScopedAffiliation), Values: []string{"student"}},
					{Def: def(t, attr.DisplayName)},
				},
				PersonalNumber: &PersonalNumberOptIn{
					Def:        def(t, attr.PersonalIdentityNum),
					LegalBasis: "Skolförordningen (2011:185) 6 kap. 11 §",
					Reason:     "The national register has no other key for a pupil.",
				},
			},
			wantProblems: []Problem{{
				Key: "personal_number", Line: 21, Warning: true,
				Message: "this vendor may receive personal numbers (never for protected persons); review the legal basis and reason",
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(validDir, tc.file)
			got, problems := LoadFile(path, At(testNow))
			for i := range tc.wantProblems {
				tc.wantProblems[i].File = path
			}
			if diff := cmp.Diff(tc.wantProblems, problems, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("problems (-want +got):\n%s", diff)
			}
			if got == nil {
				t.Fatal("LoadFile returned no policy")
			}
			tc.want.File = path
			tc.want.Hash = fileHash(t, path)
			if diff := cmp.Diff(&tc.want, got, cmpopts.IgnoreUnexported(Policy{})); diff != "" {
				t.Fatalf("policy (-want +got):\n%s", diff)
			}
			if !got.AgreementActive(testNow) {
				t.Fatal("agreement not active at testNow")
			}
		})
	}
}

// brokenCases lists, for every file in testdata/policies/broken, the exact
// problems LoadFile reports for it alone (File is filled in by the test).
var brokenCases = map[string][]Problem{
	"unknown-key.yaml":          {{Key: "colour", Line: 13, Message: `unknown key "colour"`}},
	"unknown-nested-key.yaml":   {{Key: "attributes[0].value", Line: 13, Message: `unknown key "value"`}},
	"duplicate-key.yaml":        {{Key: "purpose", Line: 13, Message: `key "purpose" appears twice (first on line 6)`}},
	"wrong-type.yaml":           {{Key: "attributes", Line: 11, Message: "must be a list"}},
	"syntax-error.yaml":         {{Line: 8, Message: "invalid YAML: did not find expected ',' or ']'"}},
	"missing-id.yaml":           {{Key: "id", Line: 2, Message: "is required: a short vendor id of a-z, 0-9 and -"}},
	"bad-id.yaml":               {{Key: "id", Line: 2, Message: `"Bad_Id" must be 1-63 characters of a-z, 0-9 and -, starting with a letter or digit`}},
	"missing-display-name.yaml": {{Key: "display_name", Line: 2, Message: "is required: the vendor's or service's name"}},
	"missing-purpose.yaml":      {{Key: "purpose", Line: 2, Message: "is required: why the vendor needs each attribute"}},
	"missing-legal-basis.yaml":  {{Key: "legal_basis", Line: 7, Message: "is required: the GDPR legal basis of the processing"}},
	"missing-agreement.yaml":    {{Key: "agreement", Line: 2, Message: "is required: the data processing agreement's reference and end date"}},
	"missing-agreement-reference.yaml": {
		{Key: "agreement.reference", Line: 8, Message: "is required: the agreement's reference"},
	},
	"missing-agreement-ends.yaml": {{Key: "agreement.ends", Line: 8, Message: "is required: the agreement's last day, YYYY-MM-DD"}},
	"bad-date.yaml":               {{Key: "agreement.ends", Line: 10, Message: `"2030-02-30" is not a date in the form YYYY-MM-DD`}},
	"agreement-ended.yaml": {
		{Key: "agreement.ends", Line: 10, Warning: true, Message: "the agreement ended on 2025-06-30: renew it or remove this vendor"},
	},
	"missing-saml.yaml": {{Key: "saml", Line: 2, Message: "is required: a vendor needs a saml or an oidc section"}},
	"oidc-incomplete.yaml": {
		{Key: "oidc.redirect_uris", Line: 4, Message: "is required: the vendor's exact redirect URIs"},
		{Key: "oidc.jwks_file", Line: 4, Message: "is required for private_key_jwt: the vendor's public keys (JWKS)"},
	},
	"mask-keep-no-reason.yaml": {{Key: "protected[0].reason", Line: 15, Message: "is required: why this vendor must get the real value for protected persons"}},
	"mask-unlisted.yaml":       {{Key: "protected[0].attribute", Line: 14, Message: "sisSchoolUnitCode is not in this policy's attributes: there is nothing to mask"}},
	"dnp-personal-number.yaml": {
		{Key: "personal_number", Line: 12, Message: "this vendor may receive personal numbers (never for protected persons); review the legal basis and reason", Warning: true},
		{Key: "personal_number", Line: 12, Message: "the dnp preset never releases personal numbers"},
	},
	"bad-entity-id.yaml":           {{Key: "saml.entity_id", Line: 5, Message: `"vendor-sp" is not an absolute URI of at most 1024 characters`}},
	"bad-name-id.yaml":             {{Key: "saml.name_id", Line: 6, Message: `unknown value "persistent"; use one of transient, pairwise`}},
	"bad-sign.yaml":                {{Key: "saml.sign", Line: 6, Message: `unknown value "everything"; use one of auto, assertion_and_response, assertion, response`}},
	"bad-signature-algorithm.yaml": {{Key: "saml.signature_algorithm", Line: 6, Message: `unknown value "rsa-sha1"; use one of rsa-sha256, ecdsa-sha256`}},
	"bad-encrypt.yaml":             {{Key: "saml.encrypt", Line: 6, Message: `unknown value "always"; use one of auto, never, required, cbc`}},
	"unknown-attribute.yaml":       {{Key: "attributes[1].name", Line: 13, Message: `unknown attribute "favouriteColour"`}},
	"duplicate-attribute.yaml":     {{Key: "attributes[2].name", Line: 14, Message: "attribute givenName is listed twice (also attributes[1])"}},
	"values-on-derived.yaml":       {{Key: "attributes[0].values", Line: 13, Message: "eduPersonPrincipalName is computed by the bridge: an allow-list of values makes no sense"}},
	"empty-values.yaml":            {{Key: "attributes[1].values", Line: 14, Message: "is empty; leave values out to release every value"}},
	"personal-number-in-attributes.yaml": {
		{Key: "attributes[1].name", Line: 13, Message: "norEduPersonNIN is a personal number: release it only through the personal_number opt-in"},
	},
	"bad-affiliation-value.yaml": {
		{Key: "attributes[1].values[0]", Line: 14, Message: `"student@skola.example.se": give the unscoped value; the bridge adds its own scope`},
		{Key: "attributes[1].values[1]", Line: 14, Message: `unknown affiliation "studnet"; use student, faculty, staff, employee, member, affiliate, alum or library-walk-in`},
	},
	"personal-number-no-legal-basis.yaml": {
		{Key: "personal_number.legal_basis", Line: 13, Message: "is required: the legal basis for releasing personal numbers to this vendor"},
		optInWarning(13),
	},
	"personal-number-no-reason.yaml": {
		{Key: "personal_number.reason", Line: 13, Message: "is required: why this vendor cannot work with a pseudonym"},
		optInWarning(13),
	},
	"personal-number-wrong-attribute.yaml": {
		optInWarning(13),
		{Key: "personal_number.attribute", Line: 14, Message: "givenName is not a personal number attribute; use personalIdentityNumber or norEduPersonNIN"},
	},
	// Each of these is fine alone; LoadDir reports them as a pair.
	"duplicate-id-a.yaml":        nil,
	"duplicate-id-b.yaml":        nil,
	"duplicate-entity-id-a.yaml": nil,
	"duplicate-entity-id-b.yaml": nil,
}

func optInWarning(line int) Problem {
	return Problem{
		Key: "personal_number", Line: line, Warning: true,
		Message: "this vendor may receive personal numbers (never for protected persons); review the legal basis and reason",
	}
}

// dirOnlyProblems are reported only when the files are loaded together.
func dirOnlyProblems() []Problem {
	return []Problem{
		{
			File: filepath.Join(brokenDir, "duplicate-id-b.yaml"), Key: "id", Line: 2,
			Message: `id "duplicate-id" is also used by ` + filepath.Join(brokenDir, "duplicate-id-a.yaml") + ":2",
		},
		{
			File: filepath.Join(brokenDir, "duplicate-entity-id-b.yaml"), Key: "saml.entity_id", Line: 5,
			Message: `entity_id "https://shared.example/sp" is also used by ` + filepath.Join(brokenDir, "duplicate-entity-id-a.yaml") + ":5",
		},
	}
}

func TestBrokenFiles(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(brokenDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(brokenCases) {
		t.Errorf("broken/ holds %d files, the table %d: give every broken file a case", len(files), len(brokenCases))
	}
	for _, path := range files {
		name := filepath.Base(path)
		want, ok := brokenCases[name]
		if !ok {
			t.Errorf("%s has no case in brokenCases", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want := append([]Problem(nil), want...)
			for i := range want {
				want[i].File = path
			}
			got, problems := LoadFile(path, At(testNow))
			if diff := cmp.Diff(want, problems, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("problems (-want +got):\n%s", diff)
			}
			for _, p := range problems {
				if p.Line <= 0 || p.File != path || p.Message == "" {
					t.Errorf("problem %+v lacks a file, line or message", p)
				}
			}
			if HasErrors(problems) != (got == nil) {
				t.Fatalf("policy returned = %v with errors = %v", got != nil, HasErrors(problems))
			}
		})
	}
}

func TestLoadDirReportsEverythingAtOnce(t *testing.T) {
	t.Parallel()
	policies, problems := LoadDir(brokenDir, At(testNow))

	var want []Problem
	for name, ps := range brokenCases {
		for _, p := range ps {
			p.File = filepath.Join(brokenDir, name)
			want = append(want, p)
		}
	}
	want = append(want, dirOnlyProblems()...)
	sortForCompare(want)
	got := append([]Problem(nil), problems...)
	sortForCompare(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("problems (-want +got):\n%s", diff)
	}
	if !HasErrors(problems) {
		t.Fatal("HasErrors = false")
	}

	// Only files without errors of their own come back; of a duplicate
	// pair, the first.
	var ids []string
	for _, p := range policies {
		ids = append(ids, p.ID)
	}
	sort.Strings(ids)
	if diff := cmp.Diff([]string{"agreement-ended", "duplicate-entity-id-a", "duplicate-id"}, ids); diff != "" {
		t.Fatalf("policies (-want +got):\n%s", diff)
	}
	for _, p := range policies {
		if p.File == filepath.Join(brokenDir, "duplicate-id-b.yaml") {
			t.Fatal("the second file of a duplicate id was returned")
		}
	}
}

func sortForCompare(ps []Problem) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].String() < ps[j].String() })
}

func TestLoadDirValid(t *testing.T) {
	t.Parallel()
	policies, problems := LoadDir(validDir, At(testNow))
	want := []Problem{func() Problem {
		p := optInWarning(21)
		p.File = filepath.Join(validDir, "exam-registry.yaml")
		return p
	}()}
	if diff := cmp.Diff(want, problems); diff != "" {
		t.Fatalf("problems (-want +got):\n%s", diff)
	}
	if HasErrors(problems) {
		t.Fatal("HasErrors = true for warnings only")
	}
	set := NewSet(policies)
	var ids []string
	for _, p := range set.All() {
		ids = append(ids, p.ID)
	}
	if diff := cmp.Diff([]string{"dnp", "exam-registry", "learning-app"}, ids); diff != "" {
		t.Fatalf("All (-want +got):\n%s", diff)
	}
	lookups := []struct {
		name   string
		get    func() (*Policy, bool)
		wantID string
	}{
		{"by id", func() (*Policy, bool) { return set.ByID("dnp") }, "dnp"},
		{"by entityID", func() (*Policy, bool) { return set.BySAMLEntityID("https://registry.example/shibboleth") }, "exam-registry"},
		{"unknown id", func() (*Policy, bool) { return set.ByID("nope") }, ""},
		{"unknown entityID", func() (*Policy, bool) { return set.BySAMLEntityID("https://learning.example/sp/") }, ""},
		{"id is not an entityID", func() (*Policy, bool) { return set.BySAMLEntityID("dnp") }, ""},
	}
	for _, tc := range lookups {
		p, ok := tc.get()
		if ok != (tc.wantID != "") || (ok && p.ID != tc.wantID) {
			t.Errorf("%s: got (%v, %v), want id %q", tc.name, p, ok, tc.wantID)
		}
	}
}

func TestSetFirstWinsAndAllIsACopy(t *testing.T) {
	t.Parallel()
	a := &Policy{ID: "a", SAML: &SAMLSettings{EntityID: "https://x.example/sp"}}
	a2 := &Policy{ID: "a", SAML: &SAMLSettings{EntityID: "https://y.example/sp"}}
	b := &Policy{ID: "b", SAML: &SAMLSettings{EntityID: "https://x.example/sp"}}
	set := NewSet([]*Policy{a, a2, b, nil})
	if p, _ := set.ByID("a"); p != a {
		t.Fatal("ByID(a) is not the first policy")
	}
	if p, _ := set.BySAMLEntityID("https://x.example/sp"); p != a {
		t.Fatal("entityID lookup is not the first policy")
	}
	if _, ok := set.BySAMLEntityID("https://y.example/sp"); ok {
		t.Fatal("a policy with a duplicate id was indexed")
	}
	all := set.All()
	all[0] = nil
	if set.All()[0] != a {
		t.Fatal("All returned the internal slice")
	}
}

func TestLoadFileEdgeCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    []Problem
	}{
		{"empty file", "", []Problem{{Line: 1, Message: "empty policy file"}}},
		{"comment only", "# nothing\n", []Problem{{Line: 1, Message: "empty policy file"}}},
		{"two documents", "id: a\n---\nid: b\n", []Problem{{Line: 2, Message: "more than one YAML document; put one vendor in each file"}}},
		{"not a mapping", "- id: a\n", []Problem{{Line: 1, Message: "must be a mapping of keys to values"}}},
		{"tab indentation", "id: a\nsaml:\n\tentity_id: x\n", []Problem{{Line: 3, Message: "invalid YAML: found character that cannot start any token"}}},
		{"list where a value belongs", strings.Join([]string{
			"id: [a, b]",
			"display_name: X",
			"saml: {entity_id: 'https://x.example/sp'}",
			"purpose: P",
			"legal_basis: L",
			"agreement: {reference: R, ends: 2030-01-01}",
		}, "\n"), []Problem{{Key: "id", Line: 1, Message: "must be a single value, not a list or mapping"}}},
		{"attribute rule as a bare name", strings.Join([]string{
			"id: a",
			"display_name: X",
			"saml: {entity_id: 'https://x.example/sp'}",
			"purpose: P",
			"legal_basis: L",
			"agreement: {reference: R, ends: 2030-01-01}",
			"attributes:",
			"  - givenName",
		}, "\n"), []Problem{{Key: "attributes[0]", Line: 8, Message: "must be a mapping of keys to values"}}},
		{"unknown keys and missing keys together", strings.Join([]string{
			"id: a",
			"saml:",
			"  entityid: https://x.example/sp",
			"purpose: P",
			"legal_basis: L",
			"agreement: {reference: R, ends: 2030-01-01}",
		}, "\n"), []Problem{
			{Key: "display_name", Line: 1, Message: "is required: the vendor's or service's name"},
			{Key: "saml.entity_id", Line: 2, Message: "is required: the vendor's SAML entityID"},
			{Key: "saml.entityid", Line: 3, Message: `unknown key "entityid"`},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "p.yaml")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, problems := LoadFile(path, At(testNow))
			for i := range tc.want {
				tc.want[i].File = path
			}
			if diff := cmp.Diff(tc.want, problems); diff != "" {
				t.Fatalf("problems (-want +got):\n%s", diff)
			}
			if got != nil {
				t.Fatal("a policy came back despite errors")
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, problems := LoadFile(filepath.Join(dir, "nope.yaml")); len(problems) != 1 || !HasErrors(problems) {
		t.Fatalf("missing file: problems = %v", problems)
	}
	if _, problems := LoadDir(filepath.Join(dir, "nope")); len(problems) != 1 || !HasErrors(problems) {
		t.Fatalf("missing dir: problems = %v", problems)
	}
	policies, problems := LoadDir(dir)
	if len(policies) != 0 || len(problems) != 1 || HasErrors(problems) {
		t.Fatalf("empty dir: got %v, %v; want one warning", policies, problems)
	}
}

func TestAgreementActive(t *testing.T) {
	t.Parallel()
	p := &Policy{Agreement: Agreement{Ends: date("2027-06-30")}}
	tests := []struct {
		name string
		now  time.Time
		want bool
	}{
		{"long before", date("2025-01-01"), true},
		{"start of the last day", date("2027-06-30"), true},
		{"last second of the last day", time.Date(2027, 6, 30, 23, 59, 59, 0, time.UTC), true},
		{"the day after", date("2027-07-01"), false},
		{"same instant in another zone", time.Date(2027, 7, 1, 1, 0, 0, 0, time.FixedZone("CEST", 2*3600)), true},
		{"a year later", date("2028-06-30"), false},
	}
	for _, tc := range tests {
		if got := p.AgreementActive(tc.now); got != tc.want {
			t.Errorf("%s: AgreementActive = %v, want %v", tc.name, got, tc.want)
		}
	}
	if (&Policy{}).AgreementActive(testNow) {
		t.Error("a policy without an end date is active")
	}
}

func TestProblemString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    Problem
		want string
	}{
		{"full", Problem{File: "attribute-release/x.yaml", Key: "attributes[2].name", Line: 12, Message: `unknown attribute "foo"`},
			`attribute-release/x.yaml:12: attributes[2].name: unknown attribute "foo"`},
		{"warning", Problem{File: "a.yaml", Key: "personal_number", Line: 3, Message: "review", Warning: true},
			"a.yaml:3: personal_number: warning: review"},
		{"no key or line", Problem{File: "dir", Message: "cannot read"}, "dir: cannot read"},
	}
	for _, tc := range tests {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestRuleAllows(t *testing.T) {
	t.Parallel()
	all := Rule{}
	some := Rule{Values: []string{"student"}}
	if !all.Allows("anything") || !some.Allows("student") || some.Allows("faculty") || some.Allows("Student") {
		t.Fatal("Allows disagrees with the allow-list")
	}
}

// TestCase25_EncryptCBCIsAnExplicitChoice: AES-CBC for a vendor is a value
// of saml.encrypt that a policy names, never a default; check (internal/app)
// refuses a vendor that lists only CBC unless its policy names it.
func TestCase25_EncryptCBCIsAnExplicitChoice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value string
		want  EncryptMode
	}{
		{"", EncryptAuto},
		{"cbc", EncryptCBC},
		{"never", EncryptNever},
	} {
		t.Run("encrypt "+tc.value, func(t *testing.T) {
			t.Parallel()
			content := strings.Join([]string{
				"id: old-sp",
				"display_name: Old SP",
				"saml:",
				"  entity_id: https://old-sp.example/shibboleth",
				"  encrypt: " + tc.value,
				"purpose: P",
				"legal_basis: L",
				"agreement: {reference: R, ends: 2030-01-01}",
				"attributes:",
				"  - name: eduPersonPrincipalName",
			}, "\n")
			path := filepath.Join(t.TempDir(), "old-sp.yaml")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			p, problems := LoadFile(path, At(testNow))
			if len(problems) != 0 || p == nil {
				t.Fatalf("problems: %v", problems)
			}
			if p.SAML.Encrypt != tc.want {
				t.Errorf("encrypt %q, want %q", p.SAML.Encrypt, tc.want)
			}
		})
	}
}
