package mapping

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
)

const oidMail = "urn:oid:0.9.2342.19200300.100.1.3"

// TestCase36_PersonalNumberInsideValueDropped: a value that merely holds a
// personal number is never kept (the value, not the attribute), with a
// warning naming the attribute and never the value.
func TestCase36_PersonalNumberInsideValueDropped(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		attr  string
		value string
		kept  bool
	}{
		{"mail built from the number", oidMail, "191212121212@elev.skola.example.se", false},
		{"display name with the number", oidDisplayName, "Tolvan Tolvansson 19121212-1212", false},
		{"hyphen", oidDisplayName, "Tolvan 121212-1212", false},
		{"plus", oidDisplayName, "Tolvan 121212+1212", false},
		{"space", oidDisplayName, "Tolvan 19121212 1212", false},
		{"en dash", oidDisplayName, "Tolvan 120315–4511", false},
		{"separators in the date", oidDisplayName, "Tolvan 2012-03-15-4511", false},
		{"spaced dash", oidDisplayName, "Tolvan 20120315 - 4511", false},
		{"spaces in the date", oidDisplayName, "Tolvan 12 03 15 4511", false},
		{"full-width digits", oidMail, "１９１２１２１２１２１２@elev.skola.example.se", false},
		{"coordination number", oidMail, "197010632391@elev.skola.example.se", false},
		{"12 digits failing Luhn: kept", oidMail, "191212121213@elev.skola.example.se", true},
		{"no number: kept", oidMail, "tolvan.tolvansson@elev.skola.example.se", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, warnings, err := MapWithWarnings(baseConfig(), Input{Attributes: map[string][]string{
				oidEPPN:     {"t@skola.example.se"},
				tc.attr:     {tc.value, "Tolvan"},
				markingAttr: {"Ingen"},
			}}, now)
			if err != nil {
				t.Fatal(err)
			}
			def, _ := attr.Lookup(tc.attr)
			want := identity.Attributes{def.Name: {"Tolvan"}}
			var wantWarnings []Warning
			if tc.kept {
				want[def.Name] = []string{tc.value, "Tolvan"}
			} else {
				wantWarnings = []Warning{{Attribute: tc.attr, Reason: ReasonLooksLikePersonalNum}}
			}
			if diff := cmp.Diff(want, id.Attributes); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantWarnings, warnings, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			for _, w := range warnings {
				if strings.Contains(w.String(), tc.value) || identity.ContainsPersonalNumber(w.String()) {
					t.Errorf("warning %q carries the value", w)
				}
			}
		})
	}
}

// TestCase36_PersonalNumberDroppedIsRecorded: when the upstream sent a
// personal number the mapper could not keep, the identity says so, so that
// sources keyed by the number fail closed.
func TestCase36_PersonalNumberDroppedIsRecorded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		attrs       map[string][]string
		wantPN      string
		wantDropped bool
	}{
		{"none sent", map[string][]string{}, "", false},
		{"one", map[string][]string{oidPIN: {pn12}}, pn12, false},
		{"one, twice in two forms", map[string][]string{oidPIN: {pn10}, oidNIN: {pnDash}}, pn12, false},
		{"two different", map[string][]string{oidPIN: {pn12}, oidNIN: {pnB}}, "", true},
		{"two different in one attribute", map[string][]string{oidPIN: {pn12, pnB}}, "", true},
		{"unparsable", map[string][]string{oidPIN: {"191212121213"}}, "", true},
		{"unparsable beside a good one", map[string][]string{oidPIN: {pn12}, oidNIN: {"not a number"}}, pn12, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := Input{Attributes: map[string][]string{oidEPPN: {"t@skola.example.se"}, markingAttr: {"Ingen"}}}
			for k, v := range tc.attrs {
				in.Attributes[k] = v
			}
			id, err := Map(baseConfig(), in, now)
			if err != nil {
				t.Fatal(err)
			}
			if got := id.PersonalNumber.RevealPersonalNumber(); got != tc.wantPN {
				t.Errorf("personal number kept: %v, want %v", got != "", tc.wantPN != "")
			}
			if id.PersonalNumberDropped != tc.wantDropped {
				t.Errorf("PersonalNumberDropped = %v, want %v", id.PersonalNumberDropped, tc.wantDropped)
			}
		})
	}
}

// TestCase44_ScopedStableIDCheckedAgainstScopes: a validly signed
// assertion cannot name a person of another domain as its stable id. The
// scope is compared and kept in lower case; the part before it is
// case-sensitive, as README says.
func TestCase44_ScopedStableIDCheckedAgainstScopes(t *testing.T) {
	t.Parallel()
	const upn = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
	tests := []struct {
		name    string
		config  func(*Config)
		attrs   map[string][]string
		subject string
		want    string
		wantErr error
	}{
		{"accepted scope", nil, map[string][]string{oidEPPN: {"student1@skola.example.se"}}, "", "student1@skola.example.se", nil},
		{"another domain", nil, map[string][]string{oidEPPN: {"student1@evil.example"}}, "", "", ErrStableIDScope},
		{"a sub-domain is another domain", nil, map[string][]string{oidEPPN: {"student1@x.skola.example.se"}}, "", "", ErrStableIDScope},
		{"no scope", nil, map[string][]string{oidEPPN: {"student1"}}, "", "", ErrStableIDScope},
		{"empty scope", nil, map[string][]string{oidEPPN: {"student1@"}}, "", "", ErrStableIDScope},
		{"one good, one foreign", nil, map[string][]string{oidEPPN: {"student1@skola.example.se", "student1@evil.example"}}, "", "", ErrStableIDScope},
		{"no scopes configured", func(c *Config) { c.Scopes = nil }, map[string][]string{oidEPPN: {"student1@skola.example.se"}}, "", "", ErrStableIDScope},
		{"scope in upper case: lower-cased", nil, map[string][]string{oidEPPN: {"Student1@SKOLA.Example.se"}}, "", "Student1@skola.example.se", nil},
		{"scope cases of one person agree", nil, map[string][]string{oidEPPN: {"student1@SKOLA.example.se", "student1@skola.example.se"}}, "", "student1@skola.example.se", nil},
		{"the part before the scope is case-sensitive", nil, map[string][]string{oidEPPN: {"STUDENT1@skola.example.se"}}, "", "STUDENT1@skola.example.se", nil},
		{"upper and lower case are two people", nil, map[string][]string{oidEPPN: {"STUDENT1@skola.example.se", "student1@skola.example.se"}}, "", "", ErrAmbiguousStableID},
		{"a configured name for EPPN is checked too",
			func(c *Config) { c.StableID, c.Attributes = upn, map[string]string{upn: attr.EPPN} },
			map[string][]string{upn: {"student1@evil.example"}}, "", "", ErrStableIDScope},
		{"under another name with EPPN as FriendlyName", nil,
			map[string][]string{"urn:x:eppn": {"student1@evil.example"}}, "", "", ErrStableIDScope},
		{"subject-id", func(c *Config) { c.StableID = attr.SubjectID },
			map[string][]string{"urn:oasis:names:tc:SAML:attribute:subject-id": {"abc@evil.example"}}, "", "", ErrStableIDScope},
		{"an unscoped attribute is not checked", func(c *Config) { c.StableID = "urn:x:objectid" },
			map[string][]string{"urn:x:objectid": {"a@evil.example"}}, "", "a@evil.example", nil},
		{"NameID is not checked", func(c *Config) { c.StableID = NameID },
			map[string][]string{}, "a@evil.example", "a@evil.example", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := baseConfig()
			if tc.config != nil {
				tc.config(c)
			}
			in := Input{Subject: tc.subject, Attributes: tc.attrs,
				FriendlyNames: map[string]string{"urn:x:eppn": "eduPersonPrincipalName"}}
			id, err := Map(c, in, now)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if id != nil {
					t.Fatal("an identity came back with an error")
				}
				if strings.Contains(err.Error(), "student1") || strings.Contains(err.Error(), "evil") {
					t.Errorf("error %q carries the value", err)
				}
				return
			}
			if got := id.StableID.Reveal(); got != tc.want {
				t.Errorf("stable id %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCase44_AffiliationVocabularyAndScope: only eduPerson affiliation
// values pass, unscoped or with an accepted scope; faculty@evil.example
// sent as an unscoped affiliation would otherwise be released as
// faculty@evil.example@<the organiser's scope>.
func TestCase44_AffiliationVocabularyAndScope(t *testing.T) {
	t.Parallel()
	id, warnings, err := MapWithWarnings(baseConfig(), Input{Attributes: map[string][]string{
		oidEPPN: {"t@skola.example.se"},
		oidAffiliation: {
			"faculty@evil.example", "Student", "library-walk-in", "alum", "teacher", "member@skola.example.se",
		},
		oidScopedAff: {
			"staff@evil.example", "Employee@skola.example.se", "rektor@skola.example.se",
			"affiliate@skola.example.se", "faculty@evil.example@skola.example.se",
		},
		markingAttr: {"Ingen"},
	}}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := identity.Attributes{attr.Affiliation: {"student", "library-walk-in", "alum", "employee", "affiliate"}}
	if diff := cmp.Diff(want, id.Attributes); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	wantWarnings := []Warning{
		{Attribute: oidAffiliation, Reason: ReasonNotAffiliation},
		{Attribute: oidAffiliation, Reason: ReasonNotAffiliation},
		{Attribute: oidAffiliation, Reason: ReasonNotAffiliation},
		{Attribute: oidScopedAff, Reason: ReasonScopeNotAccepted},
		{Attribute: oidScopedAff, Reason: ReasonNotAffiliation},
		{Attribute: oidScopedAff, Reason: ReasonNotAffiliation},
	}
	if diff := cmp.Diff(wantWarnings, warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

// TestCase35_ControlCharactersDropped: a value with a control character
// inside (a line break in a mail address, a NUL, U+2028) is dropped with a
// warning; white space around a value, as a pretty-printed assertion has
// it, is trimmed and the value kept.
func TestCase35_ControlCharactersDropped(t *testing.T) {
	t.Parallel()
	id, warnings, err := MapWithWarnings(baseConfig(), Input{Attributes: map[string][]string{
		oidEPPN: {"t@skola.example.se"},
		oidMail: {
			"tolvan@skola.example.se\nBcc: x@evil.example", "a\x00b@skola.example.se", "a\u2028b@skola.example.se",
			"a\u2029b@skola.example.se", "a\x7fb@skola.example.se", "a\u0085b@skola.example.se",
			"\n   tolvan@skola.example.se\n  ",
		},
		oidScopedAff: {"student\r@skola.example.se"},
		oidGivenName: {"Tol\tvan"},
		markingAttr:  {"Ingen"},
	}}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := identity.Attributes{attr.Mail: {"tolvan@skola.example.se"}}
	if diff := cmp.Diff(want, id.Attributes); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	counts := map[string]int{}
	for _, w := range warnings {
		if w.Reason != ReasonControlCharacter {
			t.Errorf("unexpected warning %v", w)
		}
		counts[w.Attribute]++
	}
	if diff := cmp.Diff(map[string]int{oidMail: 6, oidScopedAff: 1, oidGivenName: 1}, counts); diff != "" {
		t.Errorf("control character warnings per attribute (-want +got):\n%s", diff)
	}
}

func TestScopedStableID(t *testing.T) {
	t.Parallel()
	const upn = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
	for _, tc := range []struct {
		stable string
		attrs  map[string]string
		want   bool
	}{
		{oidEPPN, nil, true},
		{attr.EPPN, nil, true},
		{"eduperson_principal_name", nil, true},
		{"urn:oasis:names:tc:SAML:attribute:pairwise-id", nil, true},
		{upn, map[string]string{upn: attr.EPPN}, true},
		{NameID, nil, false},
		{"sub", nil, false},
		{"urn:x:objectid", nil, false},
		{oidPIN, nil, false},
	} {
		c := &Config{StableID: tc.stable, Attributes: tc.attrs}
		if got := c.ScopedStableID(); got != tc.want {
			t.Errorf("ScopedStableID(%s) = %v, want %v", tc.stable, got, tc.want)
		}
	}
}
