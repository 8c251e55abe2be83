package samlmeta

import (
	"reflect"
	"testing"
)

// SigningMethods reads alg:SigningMethod in order, the SP role's list
// before the entity's.
func TestSigningMethods(t *testing.T) {
	const ecdsa, rsa = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	md := func(entityExt, spExt string) []byte {
		return []byte(`<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:alg="urn:oasis:names:tc:SAML:metadata:algsupport" entityID="https://sp.example/">` +
			entityExt + `<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` + spExt +
			`<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.example/acs" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>`)
	}
	ext := func(ms ...string) string {
		s := "<md:Extensions>"
		for _, m := range ms {
			s += `<alg:SigningMethod Algorithm="` + m + `"/>`
		}
		return s + "</md:Extensions>"
	}
	for _, tc := range []struct {
		name string
		md   []byte
		want []string
	}{
		{"entity level", md(ext(ecdsa, rsa), ""), []string{ecdsa, rsa}},
		{"role level first", md(ext(rsa), ext(ecdsa)), []string{ecdsa}},
		{"none", md("", ""), nil},
	} {
		got, err := SigningMethods(tc.md, "https://sp.example/")
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v %v, want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := SigningMethods(md("", ""), "https://other.example/"); err == nil {
		t.Error("an entity not in the document gave no error")
	}
}
