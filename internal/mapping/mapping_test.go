package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
)

const (
	oidGivenName   = "urn:oid:2.5.4.42"
	oidSurname     = "urn:oid:2.5.4.4"
	oidDisplayName = "urn:oid:2.16.840.1.113730.3.1.241"
	oidEPPN        = "urn:oid:1.3.6.1.4.1.5923.1.1.1.6"
	oidScopedAff   = "urn:oid:1.3.6.1.4.1.5923.1.1.1.9"
	oidAffiliation = "urn:oid:1.3.6.1.4.1.5923.1.1.1.1"
	oidPIN         = "urn:oid:1.2.752.29.4.13"
	oidNIN         = "urn:oid:1.3.6.1.4.1.2428.90.1.5"
	oidSchoolUnit  = "urn:oid:1.2.752.194.10.2.4"
	adfsGivenName  = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
	markingAttr    = "urn:x-skola:securityMarking"
	ppt            = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"

	pn12   = "191212121212" // Skatteverket's test number
	pnDash = "19121212-1212"
	pn10   = "121212+1212" // the plus: aged 100 or more, so 1912
	pnB    = "200001012384"
)

var (
	now     = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	instant = time.Date(2026, 3, 2, 7, 59, 58, 0, time.UTC)
)

func baseConfig() *Config {
	return &Config{
		Upstream:        "school-idp",
		StableID:        "eduPersonPrincipalName",
		SecurityMarking: markingAttr,
		Scopes:          []string{"skola.example.se"},
	}
}

// want is the comparable part of an Identity.
type want struct {
	Stable     string
	PN         string
	Attributes identity.Attributes
	Protection identity.Protection
}

func got(id *identity.Identity) want {
	return want{
		Stable:     id.StableID.Reveal(),
		PN:         id.PersonalNumber.RevealPersonalNumber(),
		Attributes: id.Attributes,
		Protection: id.Protection,
	}
}

func TestMap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		config   func(*Config)
		input    Input
		want     want
		warnings []Warning
	}{
		{
			name: "SAML names, friendly names and unknown attributes",
			input: Input{Attributes: map[string][]string{
				oidEPPN:          {"tolvan@skola.example.se"},
				oidGivenName:     {"Tolvan"},
				"sn":             {"Tolvansson"},
				oidSchoolUnit:    {"12345678", "87654321"},
				"urn:x:unknown":  {"dropped"},
				"favouriteColor": {"blue"},
				markingAttr:      {"Ingen"},
			}},
			want: want{
				Stable: "tolvan@skola.example.se",
				Attributes: identity.Attributes{
					attr.GivenName:      {"Tolvan"},
					attr.Surname:        {"Tolvansson"},
					attr.SchoolUnitCode: {"12345678", "87654321"},
				},
				Protection: identity.ProtectionNone,
			},
		},
		{
			name: "configured names, also by FriendlyName",
			config: func(c *Config) {
				c.Attributes = map[string]string{adfsGivenName: attr.GivenName, "surname": attr.Surname}
			},
			input: Input{
				Attributes: map[string][]string{
					oidEPPN:       {"tolvan@skola.example.se"},
					adfsGivenName: {"Tolvan"},
					"urn:x:sn":    {"Tolvansson"},
					// A FriendlyName alone does not map: it is advisory.
					"urn:x:dn":  {"Tolvan Tolvansson"},
					markingAttr: {"Ingen"},
				},
				FriendlyNames: map[string]string{"urn:x:sn": "surname", "urn:x:dn": "displayName"},
			},
			want: want{
				Stable:     "tolvan@skola.example.se",
				Attributes: identity.Attributes{attr.GivenName: {"Tolvan"}, attr.Surname: {"Tolvansson"}},
				Protection: identity.ProtectionNone,
			},
		},
		{
			name: "upstream EPPN and other derived attributes are not passed on",
			config: func(c *Config) {
				c.StableID = "urn:x:objectid"
			},
			input: Input{Attributes: map[string][]string{
				"urn:x:objectid": {"7f9c"},
				oidEPPN:          {"tolvan@skola.example.se"},
				"pairwise-id":    {"abc@skola.example.se"},
				markingAttr:      {"Ingen"},
			}},
			want: want{Stable: "7f9c", Attributes: identity.Attributes{}, Protection: identity.ProtectionNone},
		},
		{
			name:   "NameID as stable id",
			config: func(c *Config) { c.StableID = NameID },
			input: Input{Subject: " nameid-123 ", Attributes: map[string][]string{
				oidGivenName: {"Tolvan"}, markingAttr: {"Ingen"},
			}},
			want: want{Stable: "nameid-123", Attributes: identity.Attributes{attr.GivenName: {"Tolvan"}}, Protection: identity.ProtectionNone},
		},
		{
			name:   "personal number as stable id, normalised",
			config: func(c *Config) { c.StableID = attr.PersonalIdentityNum },
			input: Input{Attributes: map[string][]string{
				oidPIN:       {pnDash},
				oidGivenName: {"Tolvan"},
				markingAttr:  {"Ingen"},
			}},
			want: want{Stable: pn12, PN: pn12, Attributes: identity.Attributes{attr.GivenName: {"Tolvan"}}, Protection: identity.ProtectionNone},
		},
		{
			name: "personal number in the 10-digit form, twice in two attributes",
			input: Input{Attributes: map[string][]string{
				oidEPPN: {"t@skola.example.se"}, oidPIN: {pn10}, oidNIN: {pn12}, markingAttr: {"Ingen"},
			}},
			want: want{Stable: "t@skola.example.se", PN: pn12, Attributes: identity.Attributes{}, Protection: identity.ProtectionNone},
		},
		{
			name: "unparsable personal number is dropped with a warning",
			input: Input{Attributes: map[string][]string{
				oidEPPN: {"t@skola.example.se"}, oidPIN: {"191212121213"}, markingAttr: {"Ingen"},
			}},
			want:     want{Stable: "t@skola.example.se", Attributes: identity.Attributes{}, Protection: identity.ProtectionNone},
			warnings: []Warning{{Attribute: oidPIN, Reason: ReasonBadPersonalNumber}},
		},
		{
			name: "two different personal numbers: none kept",
			input: Input{Attributes: map[string][]string{
				oidEPPN: {"t@skola.example.se"}, oidPIN: {pn12}, oidNIN: {pnB}, markingAttr: {"Ingen"},
			}},
			want:     want{Stable: "t@skola.example.se", Attributes: identity.Attributes{}, Protection: identity.ProtectionNone},
			warnings: []Warning{{Attribute: oidNIN, Reason: ReasonSeveralPersonalNumber}},
		},
		{
			name: "configured personal number attribute replaces the default",
			config: func(c *Config) {
				c.PersonalNumber = []string{"urn:x:civicNo"}
			},
			input: Input{Attributes: map[string][]string{
				oidEPPN: {"t@skola.example.se"}, "urn:x:civicNo": {pnDash}, markingAttr: {"Ingen"},
			}},
			want: want{Stable: "t@skola.example.se", PN: pn12, Attributes: identity.Attributes{}, Protection: identity.ProtectionNone},
		},
		{
			name: "a personal number in a plain attribute is dropped",
			input: Input{Attributes: map[string][]string{
				oidEPPN: {"t@skola.example.se"}, oidDisplayName: {pnDash, "Tolvan"}, markingAttr: {"Ingen"},
			}},
			want:     want{Stable: "t@skola.example.se", Attributes: identity.Attributes{attr.DisplayName: {"Tolvan"}}, Protection: identity.ProtectionNone},
			warnings: []Warning{{Attribute: oidDisplayName, Reason: ReasonLooksLikePersonalNum}},
		},
		{
			name:   "scope filtering and affiliation merge",
			config: func(c *Config) { c.Scopes = []string{"skola.example.se", "Kommun.example.se"} },
			input: Input{Attributes: map[string][]string{
				oidEPPN: {"t@skola.example.se"},
				oidScopedAff: {
					"student@skola.example.se", "member@kommun.example.se", "faculty@other.example",
					"Staff@SKOLA.example.se", "employee",
				},
				oidAffiliation: {"member", "Student", "affiliate"},
				markingAttr:    {"Ingen"},
			}},
			want: want{
				Stable:     "t@skola.example.se",
				Attributes: identity.Attributes{attr.Affiliation: {"member", "student", "affiliate", "staff"}},
				Protection: identity.ProtectionNone,
			},
			warnings: []Warning{
				{Attribute: oidScopedAff, Reason: ReasonScopeNotAccepted},
				{Attribute: oidScopedAff, Reason: ReasonNoScope},
			},
		},
		{
			name:   "no scopes configured: every scoped value dropped",
			config: func(c *Config) { c.Scopes, c.StableID = nil, "urn:x:objectid" },
			input: Input{Attributes: map[string][]string{
				"urn:x:objectid": {"7f9c"}, oidScopedAff: {"student@skola.example.se"}, markingAttr: {"Ingen"},
			}},
			want:     want{Stable: "7f9c", Attributes: identity.Attributes{}, Protection: identity.ProtectionNone},
			warnings: []Warning{{Attribute: oidScopedAff, Reason: ReasonScopeNotAccepted}},
		},
		{
			name: "the security marking is not passed on",
			config: func(c *Config) {
				c.SecurityMarking = "securityMarking"
			},
			input: Input{Attributes: map[string][]string{
				oidEPPN: {"t@skola.example.se"}, "securityMarking": {"Sekretessmarkering"},
			}},
			want: want{Stable: "t@skola.example.se", Attributes: identity.Attributes{}, Protection: identity.ProtectionSekretessmarkering},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := baseConfig()
			if tc.config != nil {
				tc.config(c)
			}
			in := tc.input
			in.AuthnInstant, in.AuthnContext = instant, ppt
			id, warnings, err := MapWithWarnings(c, in, now)
			if err != nil {
				t.Fatalf("MapWithWarnings: %v", err)
			}
			if diff := cmp.Diff(tc.want, got(id)); diff != "" {
				t.Fatalf("identity (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.warnings, warnings, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("warnings (-want +got):\n%s", diff)
			}
			if id.Upstream != "school-idp" || !id.AuthnInstant.Equal(instant) || id.AuthnContext != ppt {
				t.Fatalf("upstream or authn fields not copied: %v", id)
			}
			for name, values := range id.Attributes {
				if attr.IsPersonalNumber(name) {
					t.Fatalf("personal number attribute %s stored in Attributes", name)
				}
				for _, v := range values {
					if strings.Contains(v, "121212") || strings.Contains(v, "000101") {
						t.Fatalf("%s holds a personal number", name)
					}
				}
			}
		})
	}
}

func TestMapErrors(t *testing.T) {
	t.Parallel()
	secret := "tolvan@skola.example.se"
	tests := []struct {
		name   string
		config func(*Config)
		input  Input
		want   error
	}{
		{"stable id attribute missing", nil, Input{Subject: secret, Attributes: map[string][]string{oidGivenName: {"Tolvan"}}}, ErrNoStableID},
		{"stable id attribute empty", nil, Input{Attributes: map[string][]string{oidEPPN: {" ", ""}}}, ErrNoStableID},
		{"stable id ambiguous", nil, Input{Attributes: map[string][]string{oidEPPN: {secret, "other@skola.example.se"}}}, ErrAmbiguousStableID},
		{"NameID missing", func(c *Config) { c.StableID = NameID }, Input{Attributes: map[string][]string{oidEPPN: {secret}}}, ErrNoStableID},
		{"no upstream", func(c *Config) { c.Upstream = "" }, Input{Attributes: map[string][]string{oidEPPN: {secret}}}, ErrConfig},
		{"no stable id configured", func(c *Config) { c.StableID = "" }, Input{Attributes: map[string][]string{oidEPPN: {secret}}}, ErrConfig},
		{"mapping to an unknown attribute", func(c *Config) { c.Attributes = map[string]string{"x": "favouriteColour"} }, Input{Attributes: map[string][]string{oidEPPN: {secret}}}, ErrConfig},
		{"bad scope", func(c *Config) { c.Scopes = []string{"a@b"} }, Input{Attributes: map[string][]string{oidEPPN: {secret}}}, ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := baseConfig()
			if tc.config != nil {
				tc.config(c)
			}
			id, err := Map(c, tc.input, now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if id != nil {
				t.Fatal("an identity came back with an error")
			}
			for _, values := range tc.input.Attributes {
				for _, v := range values {
					if strings.TrimSpace(v) != "" && strings.Contains(err.Error(), v) {
						t.Fatalf("error %q contains a value", err)
					}
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q contains the subject", err)
			}
		})
	}
	if _, err := Map(nil, Input{}, now); !errors.Is(err, ErrConfig) {
		t.Fatalf("nil config: err = %v", err)
	}
}

func TestProtection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		marking string // config
		values  []string
		absent  bool
		want    identity.Protection
	}{
		{"Ingen", markingAttr, []string{"Ingen"}, false, identity.ProtectionNone},
		{"ingen, lower case and spaces", markingAttr, []string{"  ingen "}, false, identity.ProtectionNone},
		{"EGIL false", markingAttr, []string{"false"}, false, identity.ProtectionNone},
		{"Sekretessmarkering", markingAttr, []string{"Sekretessmarkering"}, false, identity.ProtectionSekretessmarkering},
		{"Skyddad folkbokföring", markingAttr, []string{"Skyddad folkbokföring"}, false, identity.ProtectionSkyddadFolkbokforing},
		{"decomposed ö", markingAttr, []string{"Skyddad folkbokfo\u0308ring"}, false, identity.ProtectionSkyddadFolkbokforing},
		{"without diacritics", markingAttr, []string{"Skyddad folkbokforing"}, false, identity.ProtectionSkyddadFolkbokforing},
		{"EGIL true", markingAttr, []string{"TRUE"}, false, identity.ProtectionSkyddadFolkbokforing},
		{"unknown value", markingAttr, []string{"Fingerade personuppgifter"}, false, identity.ProtectionUnknown},
		{"empty value", markingAttr, []string{""}, false, identity.ProtectionUnknown},
		{"no values", markingAttr, []string{}, false, identity.ProtectionUnknown},
		{"attribute missing", markingAttr, nil, true, identity.ProtectionUnknown},
		{"several values: the strongest", markingAttr, []string{"Ingen", "Sekretessmarkering"}, false, identity.ProtectionSekretessmarkering},
		{"several values, one unknown", markingAttr, []string{"Ingen", "maybe"}, false, identity.ProtectionUnknown},
		{"not configured", "", []string{"Ingen"}, false, identity.ProtectionUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := baseConfig()
			c.SecurityMarking = tc.marking
			in := Input{Attributes: map[string][]string{oidEPPN: {"t@skola.example.se"}}}
			if !tc.absent {
				in.Attributes[markingAttr] = tc.values
			}
			id, err := Map(c, in, now)
			if err != nil {
				t.Fatal(err)
			}
			if id.Protection != tc.want {
				t.Fatalf("Protection = %v, want %v", id.Protection, tc.want)
			}
			if _, stored := id.Attributes[markingAttr]; stored {
				t.Fatal("the marking was stored as an attribute")
			}
		})
	}
}

// TestIdentityOutputsLeakNothing maps a person whose stable id is their
// personal number and checks every ordinary way of printing the result.
func TestIdentityOutputsLeakNothing(t *testing.T) {
	t.Parallel()
	c := baseConfig()
	c.StableID = attr.PersonalIdentityNum
	id, err := Map(c, Input{
		Attributes: map[string][]string{
			oidPIN:         {pnDash},
			oidGivenName:   {"Tolvan"},
			oidSurname:     {"Tolvansson"},
			oidDisplayName: {"Tolvan Tolvansson"},
			markingAttr:    {"Ingen"},
		},
		AuthnInstant: instant,
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if id.StableID.Reveal() != pn12 || id.PersonalNumber.RevealPersonalNumber() != pn12 {
		t.Fatal("stable id or personal number not kept")
	}

	jsonOut, err := json.Marshal(id)
	if err != nil {
		t.Fatal(err)
	}
	var zl bytes.Buffer
	logger := zerolog.New(&zl)
	logger.Info().Object("identity", id).Msg("login")
	logger.Info().Interface("identity", id).Msg("login")
	logger.Info().Stringer("pn", id.PersonalNumber).Stringer("stable", id.StableID).Msg("login")

	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", id),
		"%+v":  fmt.Sprintf("%+v", id),
		"%v *": fmt.Sprintf("%v", *id),
		// Through a slice: vet refuses %s on a type without String,
		// which is what a careless log line would do.
		"%s":      fmt.Sprintf("%s", []any{id}...),
		"json":    string(jsonOut),
		"zerolog": zl.String(),
	}
	pnPattern := regexp.MustCompile(`\d{6,8}[-+]?\d{4}`)
	for name, out := range outputs {
		if pnPattern.MatchString(out) {
			t.Errorf("%s output contains a personal number: %s", name, out)
		}
		if strings.Contains(out, "Tolvan") {
			t.Errorf("%s output contains a name: %s", name, out)
		}
		if !strings.Contains(out, "givenName") && name != "zerolog" {
			// The names of attributes are safe and should still show.
			t.Errorf("%s output lost the attribute names: %s", name, out)
		}
	}
	if !strings.Contains(zl.String(), `"personal_number_present":true`) {
		t.Errorf("zerolog output lacks personal_number_present: %s", zl.String())
	}
}
