package mapping

import (
	"testing"

	"github.com/skolbro/skolbro/internal/testidp"
)

// BenchmarkMap times mapping a school IdP's answer into an identity: the
// demo pupil's ten attributes, with a stable identifier, a personal number
// and a security marking, as the bridge's SAML upstream delivers them.
func BenchmarkMap(b *testing.B) {
	const scope = "skola.example.se"
	users := testidp.DemoUsers(scope)
	u := users[0]
	c := &Config{
		Upstream:        "school-idp",
		StableID:        testidp.AttrEPPN,
		SecurityMarking: testidp.AttrSecurityMarking,
		Scopes:          []string{scope},
	}
	in := Input{Subject: u.NameID, Attributes: u.Attributes, AuthnInstant: instant,
		AuthnContext: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := MapWithWarnings(c, in, now); err != nil {
			b.Fatal(err)
		}
	}
}
