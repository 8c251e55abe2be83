package samlmeta

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/samlxml"
)

func certB64(t *testing.T) (string, *x509.Certificate) {
	t.Helper()
	p, err := keys.Generate("idp", keys.P256, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(p.Cert.Raw), p.Cert
}

func keyDescriptor(use, cert string) string {
	u := ""
	if use != "" {
		u = ` use="` + use + `"`
	}
	return `<md:KeyDescriptor` + u + `><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>` +
		cert + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`
}

func entity(id, idpInner string) string {
	return `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="` + id + `">` +
		`<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` + idpInner +
		`</md:IDPSSODescriptor></md:EntityDescriptor>`
}

const (
	redirectSSO = `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.se/sso"/>`
	postSSO     = `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example.se/sso-post"/>`
)

func TestIdPSigningCerts(t *testing.T) {
	current, cCurrent := certB64(t)
	next, cNext := certB64(t)
	enc, _ := certB64(t)
	tests := []struct {
		name string
		kds  string
		want []*x509.Certificate
		err  error
	}{
		{"one_signing", keyDescriptor("signing", current), []*x509.Certificate{cCurrent}, nil},
		{"no_use_counts_as_signing", keyDescriptor("", current), []*x509.Certificate{cCurrent}, nil},
		{"rollover_two_signing", keyDescriptor("signing", current) + keyDescriptor("signing", next), []*x509.Certificate{cCurrent, cNext}, nil},
		{"encryption_left_out", keyDescriptor("encryption", enc) + keyDescriptor("signing", current), []*x509.Certificate{cCurrent}, nil},
		{"duplicates_once", keyDescriptor("signing", current) + keyDescriptor("", current), []*x509.Certificate{cCurrent}, nil},
		{"wrapped_base64", keyDescriptor("signing", wrap(current)), []*x509.Certificate{cCurrent}, nil},
		{"only_encryption", keyDescriptor("encryption", enc), nil, ErrNoCert},
		{"none", "", nil, ErrNoCert},
		{"bad_base64", keyDescriptor("signing", "!!!"), nil, ErrBadCert},
		{"not_a_certificate", keyDescriptor("signing", base64.StdEncoding.EncodeToString([]byte("nope"))), nil, ErrBadCert},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ed, err := ParseEntity([]byte(entity("https://idp.example.se", tc.kds+redirectSSO)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := IdPSigningCerts(ed)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d certs, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !got[i].Equal(tc.want[i]) {
					t.Errorf("cert %d differs", i)
				}
			}
		})
	}
}

func wrap(s string) string {
	var sb strings.Builder
	for len(s) > 64 {
		sb.WriteString(s[:64] + "\n      ")
		s = s[64:]
	}
	return sb.String() + s
}

func TestIdPSSORedirectURL(t *testing.T) {
	tests := []struct {
		name, sso, want string
		err             error
	}{
		{"redirect", postSSO + redirectSSO, "https://idp.example.se/sso", nil},
		{"post_only", postSSO, "", ErrNoSSO},
		{"http_allowed_for_demo", `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="http://localhost:8081/sso"/>`, "http://localhost:8081/sso", nil},
		{"relative_refused", `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https:///sso"/>`, "", ErrNoSSO},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ed, err := ParseEntity([]byte(entity("https://idp.example.se", tc.sso)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := IdPSSORedirectURL(ed)
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("got %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
	t.Run("javascript_location_refused_by_parser", func(t *testing.T) {
		_, err := ParseEntity([]byte(entity("https://idp.example.se",
			`<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="javascript:alert(1)"/>`)))
		if !errors.Is(err, ErrDecode) {
			t.Errorf("err = %v, want ErrDecode", err)
		}
	})
	t.Run("sp_metadata_has_no_idp", func(t *testing.T) {
		ed, err := ParseEntity([]byte(`<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="sp"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></md:EntityDescriptor>`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := IdPSSORedirectURL(ed); !errors.Is(err, ErrNoIdP) {
			t.Errorf("IdPSSORedirectURL err = %v", err)
		}
		if _, err := IdPSigningCerts(ed); !errors.Is(err, ErrNoIdP) {
			t.Errorf("IdPSigningCerts err = %v", err)
		}
	})
}

func TestParseEntityRefusals(t *testing.T) {
	tests := []struct {
		name string
		in   string
		err  error
	}{
		{"doctype", `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>` + entity("a", "&e;"), samlxml.ErrDTD},
		{"entities_descriptor", `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">` + entity("a", "") + `</md:EntitiesDescriptor>`, ErrNotEntity},
		{"foreign_namespace", `<md:EntityDescriptor xmlns:md="urn:x" entityID="a"/>`, ErrNotEntity},
		{"not_xml", `hello`, samlxml.ErrMalformed},
		{"too_large", entity("a", strings.Repeat(" ", samlxml.MaxMessageBytes)), samlxml.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ed, err := ParseEntity([]byte(tc.in))
			if ed != nil || !errors.Is(err, tc.err) {
				t.Errorf("got %v, %v; want error %v", ed != nil, err, tc.err)
			}
		})
	}
}

const aggregate = `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:shibmd="urn:mace:shibboleth:metadata:1.0" Name="fed">
<md:EntityDescriptor entityID="https://a.example.se"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<md:Extensions><shibmd:Scope regexp="false">a.example.se</shibmd:Scope><shibmd:Scope>skola-a.example.se</shibmd:Scope><shibmd:Scope regexp="true">^.*\.example\.se$</shibmd:Scope></md:Extensions>
</md:IDPSSODescriptor></md:EntityDescriptor>
<md:EntitiesDescriptor Name="inner">
<md:EntityDescriptor entityID="https://b.example.se"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<md:Extensions><shibmd:Scope>b.example.se</shibmd:Scope><x:Scope xmlns:x="urn:x">evil.example</x:Scope></md:Extensions>
</md:IDPSSODescriptor></md:EntityDescriptor>
</md:EntitiesDescriptor>
<md:EntityDescriptor entityID="https://c.example.se"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:Extensions><shibmd:Scope>c.example.se</shibmd:Scope></md:Extensions></md:SPSSODescriptor></md:EntityDescriptor>
</md:EntitiesDescriptor>`

func TestParseEntities(t *testing.T) {
	eds, err := ParseEntities([]byte(aggregate))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ed := range eds {
		ids = append(ids, ed.EntityID)
	}
	if d := cmp.Diff([]string{"https://a.example.se", "https://c.example.se", "https://b.example.se"}, ids); d != "" {
		t.Errorf("entities (-want +got):\n%s", d)
	}
	one, err := ParseEntities([]byte(entity("https://single.example.se", "")))
	if err != nil || len(one) != 1 || one[0].EntityID != "https://single.example.se" {
		t.Errorf("single entity: %v, %v", one, err)
	}
	if _, err := ParseEntities([]byte(`<md:AffiliationDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"/>`)); !errors.Is(err, ErrNotEntities) {
		t.Errorf("err = %v, want ErrNotEntities", err)
	}
}

func TestScopes(t *testing.T) {
	tests := []struct {
		name, entityID string
		want           []string
		err            error
	}{
		// The regexp scope is left out; string comparison cannot honour it.
		{"literal_scopes_only", "https://a.example.se", []string{"a.example.se", "skola-a.example.se"}, nil},
		{"nested_aggregate_foreign_namespace_ignored", "https://b.example.se", []string{"b.example.se"}, nil},
		{"sp_role_scopes_not_idp_scopes", "https://c.example.se", nil, nil},
		{"unknown_entity", "https://x.example.se", nil, ErrNoEntity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Scopes([]byte(aggregate), tc.entityID)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("scopes (-want +got):\n%s", d)
			}
		})
	}
	t.Run("comment_in_scope_refused", func(t *testing.T) {
		md := entity("https://a.example.se", `<md:Extensions><shibmd:Scope xmlns:shibmd="urn:mace:shibboleth:metadata:1.0">a.example.se<!---->.evil</shibmd:Scope></md:Extensions>`)
		if got, err := Scopes([]byte(md), "https://a.example.se"); err == nil {
			t.Errorf("Scopes = %q, want an error", got)
		}
	})
}
