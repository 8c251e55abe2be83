package bench

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"

	"github.com/crewjam/saml"

	"github.com/skolbro/skolbro/internal/demovendor"
	"github.com/skolbro/skolbro/internal/testidp"
)

// Worlds the bench can run in.
const (
	// WorldRealistic is the chain a school organiser really has (issue
	// 13): a school IdP that signs both the Response and the Assertion of
	// 8–9 KB responses carrying a dozen attributes, several of them
	// multi-valued; vendors whose metadata carries an encryption key and
	// whose AuthnRequests are signed; the release log fsync'd per event,
	// info logging and metrics on.
	WorldRealistic = "realistic"
	// WorldLight is the demo as it is: small responses with the assertion
	// signed once, and vendors without encryption keys.
	WorldLight = "light"
)

// worldFile, in the bench's key directory, says which world a directory
// was written for, so that --target drives the IdP and vendors its bridge
// expects.
const worldFile = "world"

// SAML names of the attributes the realistic IdP adds to the demo's.
const (
	attrAffiliation = "urn:oid:1.3.6.1.4.1.5923.1.1.1.1"
	attrAssurance   = "urn:oid:1.3.6.1.4.1.5923.1.1.1.11"
	loaBas          = "http://id.skolfederation.se/loa/bas"
)

// Encryption methods the realistic vendor's metadata lists: AES-128-GCM
// and RSA-OAEP-MGF1P, which crewjam/saml (the bench's vendor) decrypts, as
// off-the-shelf SPs list GCM beside OAEP.
const (
	encAES128GCM    = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
	encRSAOAEPMGF1P = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
)

// realisticAttributes is what the realistic vendors' policies release:
// eight of the attributes the school IdP sends, two or three of them
// multi-valued.
var realisticAttributes = []map[string]any{
	{"name": "eduPersonPrincipalName"},
	{"name": "eduPersonScopedAffiliation", "values": []string{"student", "faculty", "employee", "member"}},
	{"name": "eduPersonAffiliation"},
	{"name": "givenName"},
	{"name": "sn"},
	{"name": "displayName"},
	{"name": "sisSchoolUnitCode"},
	{"name": "sisSchoolGrade"},
}

// realisticUsers are the demo's people as a school IdP really sends them:
// 11 attributes (10 for the teacher without a grade), with the unscoped
// affiliations and the assurance level added and mail left out, several
// multi-valued (affiliations, a teacher's school units, entitlements).
// Signed twice, a response to the bridge is 8.8–9.3 KiB, as the issue's
// SimpleSAMLphp answered. Everything is invented.
func realisticUsers(scope string) []testidp.User {
	users := testidp.DemoUsers(scope)
	for i := range users {
		a := users[i].Attributes
		var aff []string
		for _, v := range a[testidp.AttrScopedAffiliation] {
			role, _, _ := strings.Cut(v, "@")
			aff = append(aff, role)
		}
		a[attrAffiliation] = aff
		a[attrAssurance] = []string{loaBas}
		delete(a, testidp.AttrMail)
	}
	return users
}

// realisticVendorMetadata is the SAML vendor's metadata in the realistic
// world: a signing and an encryption key (crewjam/saml's own metadata)
// with the encryption methods a current SP lists, and
// AuthnRequestsSigned, so that the bridge refuses its unsigned requests.
func realisticVendorMetadata(v *demovendor.Vendor) ([]byte, error) {
	md := v.SP.Metadata()
	for i := range md.SPSSODescriptors {
		sd := &md.SPSSODescriptors[i]
		signed := true
		sd.AuthnRequestsSigned = &signed
		for j := range sd.KeyDescriptors {
			if sd.KeyDescriptors[j].Use == "encryption" {
				sd.KeyDescriptors[j].EncryptionMethods = []saml.EncryptionMethod{{Algorithm: encAES128GCM}, {Algorithm: encRSAOAEPMGF1P}}
			}
		}
	}
	return xml.MarshalIndent(md, "", "  ")
}

// writeRealistic turns a directory the demo wrote into the realistic
// world: the vendor's metadata with an encryption key, its policy
// releasing eight attributes, and the release log fsync'd per event.
func writeRealistic(dir string, saml *demovendor.Vendor, edits *[]yamlEdit) error {
	md, err := realisticVendorMetadata(saml)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "metadata", samlVendor+".xml"), md, 0o600); err != nil {
		return err
	}
	*edits = append(*edits,
		yamlEdit{[]string{"log_level"}, "info"},
		yamlEdit{[]string{"organiser", "audit", "sync"}, "each"})
	for _, v := range []string{samlVendor, oidcVendor} {
		if err := editYAML(filepath.Join(dir, "attribute-release", v+".yaml"),
			[]yamlEdit{{[]string{"attributes"}, realisticAttributes}}); err != nil {
			return err
		}
	}
	return nil
}

// readWorld returns the world a directory was written for; a directory
// from before worlds existed is the light one.
func readWorld(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, benchSubdir, worldFile))
	if err != nil {
		return WorldLight
	}
	if w := strings.TrimSpace(string(b)); w == WorldRealistic {
		return w
	}
	return WorldLight
}
