package samlxml

import (
	"bytes"
	"testing"

	rtvalidator "github.com/mattermost/xml-roundtrip-validator"
)

// roundTrip must refuse exactly what the validator's own Validate refuses:
// it only reads the input differently.
func TestRoundTripAgreesWithValidator(t *testing.T) {
	t.Parallel()
	const ok = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_a"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">x</saml:Issuer></samlp:Response>`
	tests := []struct {
		name     string
		in       string
		wantFail bool
	}{
		{"well_formed", ok, false},
		{"default_namespace", `<Response xmlns="urn:oasis:names:tc:SAML:2.0:protocol"><Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">x</Issuer></Response>`, false},
		{"escaped_text", `<a b="&lt;&amp;&quot;">x &amp; &lt;y&gt; ö</a>`, false},
		{"colon_attribute", `<a ::attr="x"/>`, true},
		{"colon_prefixed_element", `<:saml:NameID xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">x</:saml:NameID>`, true},
		{"double_colon_element", `<a:b:c xmlns:a="urn:a"/>`, true},
		{"truncated", ok[:len(ok)/2], true},
		{"not_xml", `Anna Andersson`, false},
		{"empty", ``, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := rtvalidator.Validate(bytes.NewReader([]byte(tc.in))) != nil
			got := roundTrip([]byte(tc.in)) != nil
			if got != want {
				t.Errorf("roundTrip refuses: %v, Validate refuses: %v", got, want)
			}
			if got != tc.wantFail {
				t.Errorf("roundTrip refuses: %v, want %v", got, tc.wantFail)
			}
		})
	}
}
