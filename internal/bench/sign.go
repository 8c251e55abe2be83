package bench

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"runtime"
	"time"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/xmlsig"
)

// SignatureCost is what one XML signature costs with the bridge's signer,
// measured in the same run as the logins.
type SignatureCost struct {
	Method string `json:"method"`
	Key    string `json:"key"`
	N      int    `json:"n"`
	// CPUMicros is the CPU time of one SignEnveloped of an assertion like
	// those the bridge sends (canonicalisation, digest, private-key
	// operation); WallMicros its wall time.
	CPUMicros  float64 `json:"cpu_us"`
	WallMicros float64 `json:"wall_us"`
	// CryptoMicros is the private-key operation alone (wall time).
	CryptoMicros float64 `json:"crypto_us"`
}

func keyName(s *xmlsig.Signer) string {
	switch k := s.Pair().Signer.(type) {
	case *rsa.PrivateKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PrivateKey:
		return k.Curve.Params().Name
	}
	return "unknown"
}

// measureSignature signs a representative assertion n times on one locked
// OS thread.
func measureSignature(s *xmlsig.Signer, n int) (SignatureCost, error) {
	out := SignatureCost{Method: s.Method(), Key: keyName(s), N: n}
	el := sampleAssertion()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// One untimed signature: the first pays for lazy initialisation.
	if _, err := s.SignEnveloped(el); err != nil {
		return out, err
	}
	cpu0, ok0 := threadCPU()
	start := time.Now()
	for range n {
		if _, err := s.SignEnveloped(el); err != nil {
			return out, err
		}
	}
	wall := time.Since(start)
	cpu1, ok1 := threadCPU()
	out.WallMicros = float64(wall.Microseconds()) / float64(n)
	if ok0 && ok1 {
		out.CPUMicros = float64((cpu1 - cpu0).Microseconds()) / float64(n)
	}
	digest := sha256.Sum256([]byte("skolbro bench"))
	start = time.Now()
	for range n {
		if _, err := s.Pair().Signer.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			return out, err
		}
	}
	out.CryptoMicros = float64(time.Since(start).Microseconds()) / float64(n)
	return out, nil
}

// sampleAssertion is shaped like the assertions the bridge sends the demo
// learning app: a transient NameID, conditions, an authentication
// statement and four released attributes. The values are invented.
func sampleAssertion() *etree.Element {
	a := etree.NewElement("saml:Assertion")
	a.CreateAttr("xmlns:saml", "urn:oasis:names:tc:SAML:2.0:assertion")
	a.CreateAttr("xmlns:xs", "http://www.w3.org/2001/XMLSchema")
	a.CreateAttr("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
	a.CreateAttr("ID", "_0123456789abcdef0123456789abcdef01234567")
	a.CreateAttr("Version", "2.0")
	a.CreateAttr("IssueInstant", "2030-01-15T10:00:00.000Z")
	a.CreateElement("saml:Issuer").SetText("http://127.0.0.1:8080/saml/idp/metadata")
	subj := a.CreateElement("saml:Subject")
	nid := subj.CreateElement("saml:NameID")
	nid.CreateAttr("Format", "urn:oasis:names:tc:SAML:2.0:nameid-format:transient")
	nid.CreateAttr("NameQualifier", "http://127.0.0.1:8080/saml/idp/metadata")
	nid.CreateAttr("SPNameQualifier", "http://127.0.0.1:8080/demo/vendor/learning-app/metadata")
	nid.SetText("_89abcdef0123456789abcdef0123456789abcdef")
	scd := subj.CreateElement("saml:SubjectConfirmation")
	scd.CreateAttr("Method", "urn:oasis:names:tc:SAML:2.0:cm:bearer")
	d := scd.CreateElement("saml:SubjectConfirmationData")
	d.CreateAttr("InResponseTo", "id-0123456789abcdef0123456789abcdef01234567")
	d.CreateAttr("NotOnOrAfter", "2030-01-15T10:05:00.000Z")
	d.CreateAttr("Recipient", "http://127.0.0.1:8080/demo/vendor/learning-app/acs")
	c := a.CreateElement("saml:Conditions")
	c.CreateAttr("NotBefore", "2030-01-15T10:00:00.000Z")
	c.CreateAttr("NotOnOrAfter", "2030-01-15T10:05:00.000Z")
	c.CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText("http://127.0.0.1:8080/demo/vendor/learning-app/metadata")
	as := a.CreateElement("saml:AuthnStatement")
	as.CreateAttr("AuthnInstant", "2030-01-15T10:00:00.000Z")
	as.CreateAttr("SessionIndex", "_fedcba9876543210fedcba9876543210fedcba98")
	as.CreateElement("saml:AuthnContext").CreateElement("saml:AuthnContextClassRef").
		SetText("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")
	st := a.CreateElement("saml:AttributeStatement")
	for _, at := range [][3]string{
		{"urn:oid:1.3.6.1.4.1.5923.1.1.1.6", "eduPersonPrincipalName", "abcdefghijklmnopqrstuvwxyz234567@demo-kommun.test"},
		{"urn:oid:1.3.6.1.4.1.5923.1.1.1.9", "eduPersonScopedAffiliation", "student@demo-kommun.test"},
		{"urn:oid:2.5.4.42", "givenName", "Testperson"},
		{"urn:oid:1.2.752.194.10.2.4", "sisSchoolUnitCode", "12345678"},
	} {
		e := st.CreateElement("saml:Attribute")
		e.CreateAttr("Name", at[0])
		e.CreateAttr("NameFormat", "urn:oasis:names:tc:SAML:2.0:attrname-format:uri")
		e.CreateAttr("FriendlyName", at[1])
		v := e.CreateElement("saml:AttributeValue")
		v.CreateAttr("xsi:type", "xs:string")
		v.SetText(at[2])
	}
	return a
}
