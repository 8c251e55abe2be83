package e2e

import (
	"encoding/base64"
	"fmt"
	"net/url"
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

// A vendor known only from a signed federation aggregate is served because
// a release policy names it; the aggregate's other entities are not.
func TestFederation_VendorFromSignedAggregate(t *testing.T) {
	e := startEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
		op, err := keys.Generate("federation operator (TEST ONLY)", keys.RSA2048, time.Now())
		must(t, err)
		signer, err := xmlsig.NewSigner(op)
		must(t, err)
		local := filepath.Join(d.Dir, "metadata", "national-tests.xml")
		vendorMD, err := os.ReadFile(local)
		must(t, err)
		must(t, os.Remove(local)) // the vendor is now known only from the aggregate
		vd := etree.NewDocument()
		must(t, vd.ReadFromBytes(vendorMD))
		agg := etree.NewElement("md:EntitiesDescriptor")
		agg.CreateAttr("xmlns:md", "urn:oasis:names:tc:SAML:2.0:metadata")
		agg.CreateAttr("xmlns:ds", "http://www.w3.org/2000/09/xmldsig#")
		agg.CreateAttr("Name", "urn:test:federation")
		agg.AddChild(vd.Root().Copy())
		other := etree.NewDocument()
		must(t, other.ReadFromString(strings.ReplaceAll(string(vendorMD), d.Base+"/demo/vendor/national-tests", "https://unlisted.example")))
		agg.AddChild(other.Root().Copy())
		signed, err := fedmeta.Sign(agg, signer, time.Now().Add(24*time.Hour), time.Hour)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(d.Dir, "aggregate.xml"), signed, 0o600))
		must(t, os.WriteFile(filepath.Join(d.Dir, "keys", "operator.crt"), op.CertPEM(), 0o600))
		cfg := filepath.Join(d.Dir, "skolbro.yaml")
		b, _ := os.ReadFile(cfg)
		section := fmt.Sprintf("  federation:\n    - name: testfed\n      url: %s\n      signing_cert: keys/operator.crt\n      cache_dir: fedcache\n  metadata_dir: metadata", filepath.Join(d.Dir, "aggregate.xml"))
		must(t, os.WriteFile(cfg, []byte(strings.Replace(string(b), "  metadata_dir: metadata", section, 1)), 0o600))
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
		op, err := keys.Generate("federation operator (TEST ONLY)", keys.RSA2048, time.Now())
		must(t, err)
		signer, err := xmlsig.NewSigner(op)
		must(t, err)
		idpMD, err := d.IdP.Metadata()
		must(t, err)
		id := etree.NewDocument()
		must(t, id.ReadFromBytes(idpMD))
		agg := etree.NewElement("md:EntitiesDescriptor")
		agg.CreateAttr("xmlns:md", "urn:oasis:names:tc:SAML:2.0:metadata")
		agg.CreateAttr("xmlns:ds", "http://www.w3.org/2000/09/xmldsig#")
		agg.CreateAttr("Name", "urn:test:federation")
		agg.AddChild(id.Root().Copy())
		signed, err := fedmeta.Sign(agg, signer, time.Now().Add(24*time.Hour), time.Hour)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(d.Dir, "aggregate.xml"), signed, 0o600))
		must(t, os.WriteFile(filepath.Join(d.Dir, "keys", "operator.crt"), op.CertPEM(), 0o600))
		cfg := filepath.Join(d.Dir, "skolbro.yaml")
		b, _ := os.ReadFile(cfg)
		s := strings.Replace(string(b), "  metadata_dir: metadata", fmt.Sprintf("  federation:\n    - name: testfed\n      url: %s\n      signing_cert: keys/operator.crt\n      cache_dir: fedcache\n  metadata_dir: metadata", filepath.Join(d.Dir, "aggregate.xml")), 1)
		const file = "    metadata: upstream/school-idp.xml\n"
		if !strings.Contains(s, file) {
			t.Fatal("the demo configuration changed: no upstream metadata line")
		}
		s = strings.Replace(s, file, "    metadata_from_federation: true\n    entity_id: "+d.IdP.EntityID+"\n", 1)
		must(t, os.WriteFile(cfg, []byte(s), 0o600))
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
		op, err := keys.Generate("federation operator (TEST ONLY)", keys.RSA2048, time.Now())
		must(t, err)
		signer, err := xmlsig.NewSigner(op)
		must(t, err)
		local := filepath.Join(d.Dir, "metadata", "national-tests.xml")
		vendorMD, err := os.ReadFile(local)
		must(t, err)
		must(t, os.Remove(local))
		vd := etree.NewDocument()
		must(t, vd.ReadFromBytes(vendorMD))
		spd := vd.Root().FindElement("./SPSSODescriptor")
		if spd == nil {
			t.Fatal("the demo vendor's metadata has no SPSSODescriptor")
		}
		ext := etree.NewElement("md:Extensions")
		m := ext.CreateElement("alg:SigningMethod")
		m.CreateAttr("xmlns:alg", samlmeta.NSAlgSupport)
		m.CreateAttr("Algorithm", xmlsig.ECDSASHA256)
		spd.InsertChildAt(0, ext)
		agg := etree.NewElement("md:EntitiesDescriptor")
		agg.CreateAttr("xmlns:md", "urn:oasis:names:tc:SAML:2.0:metadata")
		agg.CreateAttr("xmlns:ds", "http://www.w3.org/2000/09/xmldsig#")
		agg.CreateAttr("Name", "urn:test:federation")
		agg.AddChild(vd.Root().Copy())
		signed, err := fedmeta.Sign(agg, signer, time.Now().Add(24*time.Hour), time.Hour)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(d.Dir, "aggregate.xml"), signed, 0o600))
		must(t, os.WriteFile(filepath.Join(d.Dir, "keys", "operator.crt"), op.CertPEM(), 0o600))
		ec, err := keys.Generate("organiser ECDSA signing (TEST ONLY)", keys.P256, time.Now())
		must(t, err)
		ecKey, err := ec.KeyPEM()
		must(t, err)
		must(t, os.WriteFile(filepath.Join(d.Dir, "keys", "signing-ec.crt"), ec.CertPEM(), 0o600))
		must(t, os.WriteFile(filepath.Join(d.Dir, "keys", "signing-ec.key"), ecKey, 0o600))
		cfg := filepath.Join(d.Dir, "skolbro.yaml")
		b, _ := os.ReadFile(cfg)
		s := strings.Replace(string(b), "  metadata_dir: metadata", fmt.Sprintf("  federation:\n    - name: testfed\n      url: %s\n      signing_cert: keys/operator.crt\n      cache_dir: fedcache\n  metadata_dir: metadata", filepath.Join(d.Dir, "aggregate.xml")), 1)
		const keysLine = "  keys:\n"
		if !strings.Contains(s, keysLine) {
			t.Fatal("the demo configuration changed: no organiser keys section")
		}
		s = strings.Replace(s, keysLine, keysLine+"    signing_ecdsa:\n      cert: keys/signing-ec.crt\n      key: keys/signing-ec.key\n", 1)
		must(t, os.WriteFile(cfg, []byte(s), 0o600))
	})
	for vendor, want := range map[string]string{"national-tests": xmlsig.ECDSASHA256, "learning-app": xmlsig.RSASHA256} {
		// Up to the bridge's answer only: the demo vendors check with
		// crewjam/saml, whose goxmldsig takes ECDSA values in ASN.1 DER,
		// not the r||s that XML-DSig defines and the bridge sends.
		v := e.vendor(vendor)
		start, err := v.LoginURL("rs-" + vendor)
		must(t, err)
		b := newBrowser(t, e.srv.Client())
		p := b.submit(b.get(start), url.Values{"user": {"anna.a"}})
		p = b.submit(p, nil) // the IdP's auto-post to the bridge's ACS
		fs, err := p.forms()
		if err != nil || len(fs) != 1 || fs[0].action != v.Base+"/acs" {
			t.Fatalf("%s: expected the bridge's auto-post to the vendor, got %s", vendor, p)
		}
		raw, err := base64.StdEncoding.DecodeString(fs[0].fields.Get("SAMLResponse"))
		must(t, err)
		doc := etree.NewDocument()
		must(t, doc.ReadFromBytes(raw))
		sm := doc.FindElement("//Assertion/Signature/SignedInfo/SignatureMethod")
		if sm == nil {
			t.Fatalf("%s: the assertion is not signed", vendor)
		}
		if got := sm.SelectAttrValue("Algorithm", ""); got != want {
			t.Errorf("%s: assertion signed with %s, want %s", vendor, got, want)
		}
	}
}
