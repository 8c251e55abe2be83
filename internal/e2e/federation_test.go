package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/fedmeta"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/samlmeta"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// federate publishes entities in a federation aggregate signed by a new
// operator key, and adds that federation (file URL, pinned operator
// certificate, last-good copy in fedcache) to the demo's configuration.
func federate(t *testing.T, d *demo.Demo, entities ...*etree.Element) {
	t.Helper()
	op, err := keys.Generate("federation operator (TEST ONLY)", keys.RSA2048, time.Now())
	must(t, err)
	signer, err := xmlsig.NewSigner(op)
	must(t, err)
	agg := etree.NewElement("md:EntitiesDescriptor")
	agg.CreateAttr("xmlns:md", "urn:oasis:names:tc:SAML:2.0:metadata")
	agg.CreateAttr("xmlns:ds", "http://www.w3.org/2000/09/xmldsig#")
	agg.CreateAttr("Name", "urn:test:federation")
	for _, e := range entities {
		agg.AddChild(e)
	}
	signed, err := fedmeta.Sign(agg, signer, time.Now().Add(24*time.Hour), time.Hour)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(d.Dir, "aggregate.xml"), signed, 0o600))
	must(t, os.WriteFile(filepath.Join(d.Dir, "keys", "operator.crt"), op.CertPEM(), 0o600))
	editConfig(t, d, "  metadata_dir: metadata", fmt.Sprintf("  federation:\n    - name: testfed\n      url: %s\n      signing_cert: keys/operator.crt\n      cache_dir: fedcache\n  metadata_dir: metadata", filepath.Join(d.Dir, "aggregate.xml")))
}

// editConfig replaces the first old in the demo's skolbro.yaml with new;
// old must be there.
func editConfig(t *testing.T, d *demo.Demo, old, new string) {
	t.Helper()
	cfg := filepath.Join(d.Dir, "skolbro.yaml")
	b, err := os.ReadFile(cfg)
	must(t, err)
	if !strings.Contains(string(b), old) {
		t.Fatalf("the demo configuration changed: no %q", old)
	}
	must(t, os.WriteFile(cfg, []byte(strings.Replace(string(b), old, new, 1)), 0o600))
}

// federatedOnly removes the demo vendor name's local metadata, so that it
// is known only from a federation, and returns that metadata.
func federatedOnly(t *testing.T, d *demo.Demo, name string) []byte {
	t.Helper()
	local := filepath.Join(d.Dir, "metadata", name+".xml")
	md, err := os.ReadFile(local)
	must(t, err)
	must(t, os.Remove(local))
	return md
}

// root parses an XML document and returns its root element.
func root(t *testing.T, b []byte) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	must(t, doc.ReadFromBytes(b))
	return doc.Root()
}

// A vendor known only from a signed federation aggregate is served because
// a release policy names it; the aggregate's other entities are not.
func TestFederation_VendorFromSignedAggregate(t *testing.T) {
	e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
		vendorMD := federatedOnly(t, d, "national-tests")
		other := []byte(strings.ReplaceAll(string(vendorMD), d.Base+"/demo/vendor/national-tests", "https://unlisted.example"))
		federate(t, d, root(t, vendorMD), root(t, other))
	})
	res := e.login(newBrowser(t, e.srv.Client()), "national-tests", "anna.a")
	if len(attrs(res.received)["eduPersonPrincipalName"]) != 1 {
		t.Errorf("the vendor from the aggregate did not get its release")
	}
	if _, err := os.Stat(filepath.Join(e.demo.Dir, "fedcache")); err != nil {
		t.Errorf("no last-good copy was kept: %v", err)
	}
}

// The school IdP's own metadata taken from a signed federation aggregate
// by its entityID (metadata_from_federation), instead of a pinned file:
// logins work, and the upstream trusts exactly the aggregate's key for it.
func TestFederation_UpstreamFromSignedAggregate(t *testing.T) {
	e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
		idpMD, err := d.IdP.Metadata()
		must(t, err)
		federate(t, d, root(t, idpMD))
		editConfig(t, d, "    metadata: upstream/school-idp.xml\n", "    metadata_from_federation: true\n    entity_id: "+d.IdP.EntityID+"\n")
		must(t, os.Remove(filepath.Join(d.Dir, "upstream", "school-idp.xml")))
	})
	res := e.login(newBrowser(t, e.srv.Client()), "learning-app", "anna.a")
	if len(attrs(res.received)["eduPersonPrincipalName"]) != 1 {
		t.Errorf("no login through the IdP taken from the aggregate")
	}
	certs := e.demo.Built[0].Upstreams[0].SP.IdPCerts()
	if len(certs) != 1 || !certs[0].Equal(e.demo.IdP.Signer.Pair().Cert) {
		t.Errorf("the upstream trusts %d keys, want the aggregate's one", len(certs))
	}
}

// A vendor known only from a federation aggregate, whose metadata there
// announces ECDSA first (alg:SigningMethod), gets ECDSA-signed assertions
// when the organiser has an ECDSA key, as a vendor from metadata_dir
// does: crewjam's descriptor drops the extension, so the aggregate's
// parse must keep it.
func TestFederation_VendorAnnouncingECDSA(t *testing.T) {
	e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
		vendor := root(t, federatedOnly(t, d, "national-tests"))
		spd := vendor.FindElement("./SPSSODescriptor")
		if spd == nil {
			t.Fatal("the demo vendor's metadata has no SPSSODescriptor")
		}
		ext := etree.NewElement("md:Extensions")
		m := ext.CreateElement("alg:SigningMethod")
		m.CreateAttr("xmlns:alg", samlmeta.NSAlgSupport)
		m.CreateAttr("Algorithm", xmlsig.ECDSASHA256)
		spd.InsertChildAt(0, ext)
		federate(t, d, vendor)
		ec, err := keys.Generate("organiser ECDSA signing (TEST ONLY)", keys.P256, time.Now())
		must(t, err)
		ecKey, err := ec.KeyPEM()
		must(t, err)
		must(t, os.WriteFile(filepath.Join(d.Dir, "keys", "signing-ec.crt"), ec.CertPEM(), 0o600))
		must(t, os.WriteFile(filepath.Join(d.Dir, "keys", "signing-ec.key"), ecKey, 0o600))
		editConfig(t, d, "  keys:\n", "  keys:\n    signing_ecdsa:\n      cert: keys/signing-ec.crt\n      key: keys/signing-ec.key\n")
	})
	for vendor, want := range map[string]string{"national-tests": xmlsig.ECDSASHA256, "learning-app": xmlsig.RSASHA256} {
		// Up to the bridge's answer only: the demo vendors check with
		// crewjam/saml, whose goxmldsig takes ECDSA values in ASN.1 DER,
		// not the r||s that XML-DSig defines and the bridge sends.
		_, res := e.untilVendor(newBrowser(t, e.srv.Client()), vendor, "anna.a", "user")
		sm := root(t, []byte(res.samlResponse)).FindElement("//Assertion/Signature/SignedInfo/SignatureMethod")
		if sm == nil {
			t.Fatalf("%s: the assertion is not signed", vendor)
		}
		if got := sm.SelectAttrValue("Algorithm", ""); got != want {
			t.Errorf("%s: assertion signed with %s, want %s", vendor, got, want)
		}
	}
}
