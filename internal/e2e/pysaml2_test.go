package e2e

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/testidp"
	"github.com/skolbro/skolbro/internal/xmlenc"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// The pysaml2 vendor is an SP the project did not write: Debian's
// python3-pysaml2, driven by testdata/pysaml2/sp.py. It signs its
// AuthnRequest itself, and verifies the bridge's signatures and decrypts its
// EncryptedAssertion with xmlsec1, so a pass here means the bridge's output
// is readable by an independent implementation, not only by crewjam/saml.

const (
	// systemPython sees Debian's packages; the python3 first on PATH may
	// be another interpreter without them.
	systemPython = "/usr/bin/python3"
	spScript     = "../../testdata/pysaml2/sp.py"
)

// requirePySAML2 skips the test when pysaml2 or xmlsec1 is not installed,
// except in CI, where the test must run.
func requirePySAML2(t *testing.T) {
	t.Helper()
	var missing []string
	if err := exec.Command(systemPython, "-c", "import saml2").Run(); err != nil {
		missing = append(missing, "python3-pysaml2 (for "+systemPython+")")
	}
	if _, err := exec.LookPath("xmlsec1"); err != nil {
		missing = append(missing, "xmlsec1")
	}
	if len(missing) == 0 {
		return
	}
	msg := "missing " + strings.Join(missing, " and ") + ": apt-get install python3-pysaml2 xmlsec1"
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but " + msg)
	}
	t.Skip(msg)
}

// pysaml2SP is the pysaml2 vendor's work directory and URLs.
type pysaml2SP struct {
	dir      string
	entityID string
	acsURL   string
	// idpMetadata is the bridge's IdP metadata as the SP reads it.
	idpMetadata string
	// encryption is the SP's encryption key pair.
	encryption *keys.Pair
}

// run runs one sp.py subcommand and decodes its JSON output into out.
// On failure it returns pysaml2's complaint from stderr.
func (sp *pysaml2SP) run(t *testing.T, out any, args ...string) (stderr string, ok bool) {
	t.Helper()
	cmd := exec.Command(systemPython, append([]string{spScript}, args...)...)
	// Keep another interpreter's settings away from the system Python.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PYTHON") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Run(); err != nil {
		return se.String(), false
	}
	if err := json.Unmarshal(so.Bytes(), out); err != nil {
		t.Fatalf("sp.py %s: output is not JSON: %v", args[0], err)
	}
	return se.String(), true
}

// startPySAML2Env starts the demo set-up as startEnv does, with one more
// vendor: the pysaml2 SP, its metadata and release policy written into the
// demo's directories before the bridge is built, as an admin would add it.
func startPySAML2Env(t *testing.T) (*env, *pysaml2SP) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "https://" + srv.Listener.Addr().String()
	d, err := demo.Setup(base, t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sp := &pysaml2SP{
		dir:      t.TempDir(),
		entityID: base + "/pysaml2/metadata",
		acsURL:   base + "/pysaml2/acs",
	}
	for _, name := range []string{"sp-signing", "sp-encryption"} {
		p, err := keys.Generate("pysaml2 test SP "+name+" (TEST ONLY)", keys.RSA2048, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		kp, err := p.KeyPEM()
		if err != nil {
			t.Fatal(err)
		}
		writeSPFile(t, filepath.Join(sp.dir, name+".crt"), p.CertPEM())
		writeSPFile(t, filepath.Join(sp.dir, name+".key"), kp)
		if name == "sp-encryption" {
			sp.encryption = p
		}
	}
	var md struct {
		EntityID string `json:"entity_id"`
	}
	if msg, ok := sp.run(t, &md, "metadata", sp.dir, base); !ok {
		t.Fatalf("sp.py metadata failed: %s", msg)
	}
	if md.EntityID != sp.entityID {
		t.Fatalf("pysaml2 SP entityID = %q, want %q", md.EntityID, sp.entityID)
	}
	spMD, err := os.ReadFile(filepath.Join(sp.dir, "sp-metadata.xml"))
	if err != nil {
		t.Fatal(err)
	}
	writeSPFile(t, filepath.Join(d.Dir, "metadata", "pysaml2.xml"), spMD)
	writeSPFile(t, filepath.Join(d.Dir, "attribute-release", "pysaml2.yaml"), []byte(`# pysaml2 test vendor (TEST ONLY)
id: pysaml2
display_name: pysaml2 test SP
saml:
  entity_id: "`+sp.entityID+`"
  name_id: pairwise
  sign: assertion_and_response
  signature_algorithm: rsa-sha256
  encrypt: auto
purpose: "End-to-end test against an independent SAML implementation."
legal_basis: "Public interest task (GDPR art. 6.1 e), Skollagen (2010:800)"
agreement:
  reference: "TEST-PYSAML2"
  ends: 2099-12-31
attributes:
  - name: eduPersonPrincipalName
  - name: eduPersonScopedAffiliation
    values: [student, faculty]
  - name: givenName
  - name: sisSchoolUnitCode
`))

	logs := &syncBuffer{}
	h, err := d.HandlerWithStore(zerolog.New(logs), memoryStore(t))
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.StartTLS()
	t.Cleanup(srv.Close)
	e := &env{t: t, demo: d, srv: srv, logs: logs}

	// The SP reads the bridge's metadata from a local file: it fetches
	// nothing itself, so it needs no trust in the test TLS certificate.
	resp, err := srv.Client().Get(base + "/saml/idp/metadata")
	if err != nil {
		t.Fatal(err)
	}
	idpMD, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("IdP metadata: status %d, %v", resp.StatusCode, err)
	}
	sp.idpMetadata = filepath.Join(sp.dir, "idp-metadata.xml")
	writeSPFile(t, sp.idpMetadata, idpMD)
	return e, sp
}

// writeSPFile writes a file only the test reads or hands to sp.py.
func writeSPFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// pysaml2Login is what sp.py login prints.
type pysaml2Login struct {
	URL       string `json:"url"`
	RequestID string `json:"request_id"`
}

// pysaml2Result is what sp.py acs prints about a response pysaml2 accepted.
type pysaml2Result struct {
	NameID         string              `json:"name_id"`
	NameIDFormat   string              `json:"name_id_format"`
	Attributes     map[string][]string `json:"attributes"`
	AttributeNames map[string]string   `json:"attribute_names"`
	// Ava is pysaml2's own reading through its bundled attribute maps:
	// known OIDs under their map name, unknown ones under the SAML name.
	Ava             map[string][]string `json:"ava"`
	Issuer          string              `json:"issuer"`
	InResponseTo    string              `json:"in_response_to"`
	AssertionSigned bool                `json:"assertion_signed"`
	ResponseSigned  bool                `json:"response_signed"`
	Encrypted       bool                `json:"encrypted"`
}

// breakSignature flips one bit of the decoded Signature query parameter,
// leaving every other parameter byte for byte as pysaml2 sent it.
func breakSignature(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(u.RawQuery, "&")
	found := false
	for i, kv := range parts {
		k, v, _ := strings.Cut(kv, "=")
		if k != "Signature" {
			continue
		}
		dec, err := url.QueryUnescape(v)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := base64.StdEncoding.DecodeString(dec)
		if err != nil || len(sig) == 0 {
			t.Fatalf("Signature parameter is not base64: %v", err)
		}
		sig[len(sig)/2] ^= 0x01
		parts[i] = "Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
		found = true
	}
	if !found {
		t.Fatal("pysaml2's AuthnRequest URL has no Signature parameter: it did not sign")
	}
	u.RawQuery = strings.Join(parts, "&")
	return u.String()
}

// dropSignature removes Signature and SigAlg, as an SP that does not sign.
func dropSignature(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, kv := range strings.Split(u.RawQuery, "&") {
		if k, _, _ := strings.Cut(kv, "="); k != "Signature" && k != "SigAlg" {
			kept = append(kept, kv)
		}
	}
	u.RawQuery = strings.Join(kept, "&")
	return u.String()
}

// responseShape counts the Response's direct Assertion and
// EncryptedAssertion children.
func responseShape(t *testing.T, doc []byte) (plain, encrypted int) {
	t.Helper()
	var r struct {
		XMLName    xml.Name
		Assertions []struct {
			XMLName xml.Name
		} `xml:",any"`
	}
	if err := xml.Unmarshal(doc, &r); err != nil {
		t.Fatalf("the bridge's SAMLResponse is not XML: %v", err)
	}
	const nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	if r.XMLName != (xml.Name{Space: "urn:oasis:names:tc:SAML:2.0:protocol", Local: "Response"}) {
		t.Fatalf("the bridge's SAMLResponse is a %v", r.XMLName)
	}
	for _, c := range r.Assertions {
		switch c.XMLName {
		case xml.Name{Space: nsAssertion, Local: "Assertion"}:
			plain++
		case xml.Name{Space: nsAssertion, Local: "EncryptedAssertion"}:
			encrypted++
		}
	}
	return plain, encrypted
}

// pysaml2Flow is one login as far as the bridge's auto-post to pysaml2.
type pysaml2Flow struct {
	login        pysaml2Login
	samlResponse string // base64, as posted
	doc          []byte // decoded
}

// runPySAML2Login asks pysaml2 for an AuthnRequest, logs user in at the
// test IdP and returns the bridge's auto-post form to pysaml2's ACS,
// checking its action and RelayState on the way.
func runPySAML2Login(t *testing.T, e *env, sp *pysaml2SP, user, relay string) pysaml2Flow {
	t.Helper()
	var f pysaml2Flow
	if msg, ok := sp.run(t, &f.login, "login", sp.dir, sp.idpMetadata, relay); !ok {
		t.Fatalf("sp.py login failed: %s", msg)
	}
	b := newBrowser(t, e.srv.Client())
	p := b.get(f.login.URL)
	if p.status != http.StatusOK || p.url.Path != "/demo/idp/sso" {
		t.Fatalf("expected the test IdP's picker, got %s: %.300s", p, p.body)
	}
	p = b.submit(p, url.Values{"user": {user}})
	if p.status != http.StatusOK {
		t.Fatalf("test IdP answered %s", p)
	}
	p = b.submit(p, nil) // the IdP's auto-post to the bridge's ACS
	if p.status != http.StatusOK {
		t.Fatalf("bridge ACS answered %s: %.500s", p, p.body)
	}
	fs, err := p.forms()
	if err != nil || len(fs) != 1 {
		t.Fatalf("expected the bridge's auto-post form, got %s", p)
	}
	if fs[0].action != sp.acsURL {
		t.Errorf("bridge posts to %q, want pysaml2's ACS %q", fs[0].action, sp.acsURL)
	}
	if got := fs[0].fields.Get("RelayState"); got != relay {
		t.Errorf("RelayState = %q, want %q back unchanged", got, relay)
	}
	f.samlResponse = fs[0].fields.Get("SAMLResponse")
	if f.doc, err = base64.StdEncoding.DecodeString(f.samlResponse); err != nil {
		t.Fatalf("SAMLResponse is not base64: %v", err)
	}
	return f
}

// acs hands a SAMLResponse (base64) to pysaml2's ACS for requestID.
func (sp *pysaml2SP) acs(t *testing.T, name, requestID, samlResponse string) (pysaml2Result, string, bool) {
	t.Helper()
	file := filepath.Join(sp.dir, "response-"+strings.ReplaceAll(name, "/", "-")+".b64")
	writeSPFile(t, file, []byte(samlResponse))
	var got pysaml2Result
	msg, ok := sp.run(t, &got, "acs", sp.dir, sp.idpMetadata, requestID, file)
	return got, msg, ok
}

// logReasons returns the "reason" fields of the bridge's log lines written
// after offset.
func logReasons(t *testing.T, logs string, offset int) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(logs[offset:], "\n") {
		if line == "" {
			continue
		}
		var l struct {
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line is not JSON: %v", err)
		}
		if l.Reason != "" {
			out = append(out, l.Reason)
		}
	}
	return out
}

// TestPySAML2Vendor logs a pupil in at a vendor SP built on pysaml2: the SP
// signs its AuthnRequest (HTTP-Redirect, RSA-SHA256), the bridge answers
// with a signed Response holding a signed, encrypted assertion, and pysaml2
// must accept it with signed assertions required. AuthnRequests whose
// signature is broken or missing must be refused with an error page.
func TestPySAML2Vendor(t *testing.T) {
	t.Parallel()
	requirePySAML2(t)
	e, sp := startPySAML2Env(t)
	bridgeEntityID := e.demo.Base + "/saml/idp/metadata"

	t.Run("login", func(t *testing.T) {
		f := runPySAML2Login(t, e, sp, "anna.a", "rs-pysaml2-login")
		plain, encrypted := responseShape(t, f.doc)
		if plain != 0 || encrypted != 1 {
			t.Errorf("Response has %d plain and %d encrypted assertions, want 0 and 1", plain, encrypted)
		}
		assertNoPersonalData(t, e, "anna.a", string(f.doc))

		got, msg, ok := sp.acs(t, t.Name(), f.login.RequestID, f.samlResponse)
		if !ok {
			t.Fatalf("pysaml2 refused the bridge's response: %s", msg)
		}
		if got.Issuer != bridgeEntityID {
			t.Errorf("issuer = %q, want the bridge's IdP entityID %q", got.Issuer, bridgeEntityID)
		}
		if got.InResponseTo != f.login.RequestID {
			t.Errorf("InResponseTo = %q, want %q", got.InResponseTo, f.login.RequestID)
		}
		if !got.Encrypted {
			t.Errorf("pysaml2 did not receive an encrypted assertion")
		}
		if !got.AssertionSigned {
			t.Errorf("the decrypted assertion is not signed")
		}
		if !got.ResponseSigned {
			t.Errorf("the Response is not signed (policy: assertion_and_response)")
		}
		if got.NameIDFormat != "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" || got.NameID == "" {
			t.Errorf("NameID %q has format %q, want a persistent one", got.NameID, got.NameIDFormat)
		}

		eppn := got.Attributes["eduPersonPrincipalName"]
		if len(eppn) != 1 || !eppnShape.MatchString(eppn[0]) {
			t.Errorf("EPPN %q is not an opaque pseudonym in the organiser's scope", eppn)
		}
		if len(eppn) == 1 && got.NameID == eppn[0] {
			t.Errorf("the pairwise NameID equals the EPPN")
		}
		want := map[string][]string{
			"eduPersonPrincipalName":     eppn, // shape checked above
			"eduPersonScopedAffiliation": {"student@" + demo.OrganiserScope},
			"givenName":                  {givenName(e, "anna.a")},
			"sisSchoolUnitCode":          {testidp.SchoolA},
		}
		if diff := cmp.Diff(want, got.Attributes); diff != "" {
			t.Errorf("attributes pysaml2 accepted (-want +got):\n%s", diff)
		}
		wantNames := map[string]string{
			"eduPersonPrincipalName":     "urn:oid:1.3.6.1.4.1.5923.1.1.1.6",
			"eduPersonScopedAffiliation": "urn:oid:1.3.6.1.4.1.5923.1.1.1.9",
			"givenName":                  "urn:oid:2.5.4.42",
			"sisSchoolUnitCode":          "urn:oid:1.2.752.194.10.2.4",
		}
		if diff := cmp.Diff(wantNames, got.AttributeNames); diff != "" {
			t.Errorf("attribute SAML names (-want +got):\n%s", diff)
		}
		// pysaml2's attribute maps know the eduPerson and givenName OIDs but
		// not sisSchoolUnitCode, which it keeps under its SAML name.
		wantAva := map[string][]string{
			"eduPersonPrincipalName":     eppn,
			"eduPersonScopedAffiliation": {"student@" + demo.OrganiserScope},
			"givenName":                  {givenName(e, "anna.a")},
			"urn:oid:1.2.752.194.10.2.4": {testidp.SchoolA},
		}
		if diff := cmp.Diff(wantAva, got.Ava); diff != "" {
			t.Errorf("pysaml2's attribute map view (-want +got):\n%s", diff)
		}
	})

	refused := []struct {
		name string
		// tamper changes pysaml2's AuthnRequest URL.
		tamper func(t *testing.T, raw string) string
		// wantReason is the reason the bridge logs for the refusal.
		wantReason string
	}{
		{name: "broken_request_signature", tamper: breakSignature, wantReason: "vendor_bad_signature"},
		{name: "unsigned_request", tamper: dropSignature, wantReason: "vendor_unsigned"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			var login pysaml2Login
			if msg, ok := sp.run(t, &login, "login", sp.dir, sp.idpMetadata, "rs-"+tc.name); !ok {
				t.Fatalf("sp.py login failed: %s", msg)
			}
			if !strings.HasPrefix(login.URL, e.demo.Base+"/saml/idp/sso?") {
				t.Fatalf("pysaml2 sends the browser to %.80q, not the bridge's SSO", login.URL)
			}
			offset := len(e.logs.String())
			p := newBrowser(t, e.srv.Client()).get(tc.tamper(t, login.URL))
			if p.status != http.StatusBadRequest {
				t.Errorf("bridge answered %s, want 400", p)
			}
			if p.url.Path != "/saml/idp/sso" {
				t.Errorf("bridge sent the browser on to %s", p.url.Path)
			}
			if fs, err := p.forms(); err != nil || len(fs) != 0 {
				t.Errorf("the error page has %d forms (err %v), want none", len(fs), err)
			}
			if strings.Contains(p.body, "SAMLResponse") {
				t.Errorf("the error page carries a SAMLResponse")
			}
			if diff := cmp.Diff([]string{tc.wantReason}, logReasons(t, e.logs.String(), offset)); diff != "" {
				t.Errorf("logged refusal reasons (-want +got):\n%s", diff)
			}
		})
	}
}

// resealer decrypts the bridge's EncryptedAssertion with the SP's key, lets
// a test change the assertion, encrypts it again to the SP and signs the
// Response again with the bridge's key: what an attacker holding only the
// bridge's response-signing key, but not the assertion's signature, could
// produce.
type resealer struct {
	spEnc  *keys.Pair
	bridge *xmlsig.Signer
}

func (r resealer) reseal(t *testing.T, doc []byte, edit func(t *testing.T, assertion *etree.Element)) []byte {
	t.Helper()
	d, err := samlxml.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	resp := d.Root()
	if sig, _ := samlxml.Child(resp, samlxml.NSDSig, "Signature"); sig != nil {
		resp.RemoveChild(sig)
	}
	ea, err := samlxml.Child(resp, samlxml.NSAssertion, "EncryptedAssertion")
	if err != nil || ea == nil {
		t.Fatalf("no single EncryptedAssertion: %v", err)
	}
	a, err := xmlenc.Decrypt(ea, r.spEnc.Signer.(crypto.Decrypter), xmlenc.DecryptOptions{})
	if err != nil {
		t.Fatalf("decrypting with the SP's key: %v", err)
	}
	edit(t, a)
	nea, err := xmlenc.EncryptAssertion(a, r.spEnc.Cert, xmlenc.Options{DataMethod: xmlenc.AES256GCM, KeyTransport: xmlenc.RSAOAEPMGF1P}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	resp.InsertChildAt(ea.Index(), nea)
	resp.RemoveChild(ea)
	signed, err := r.bridge.SignEnveloped(resp)
	if err != nil {
		t.Fatal(err)
	}
	out := etree.NewDocument()
	out.SetRoot(signed)
	b, err := out.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPySAML2Vendor_RefusesTamperedResponses shows that the pysaml2 SP's
// acceptance in TestPySAML2Vendor means something: the same SP, fed a
// changed copy of a response the bridge made, refuses it. The "resealed"
// control proves the re-encryption and re-signing themselves are sound, so
// each refusal is caused by its change alone.
func TestPySAML2Vendor_RefusesTamperedResponses(t *testing.T) {
	t.Parallel()
	requirePySAML2(t)
	e, sp := startPySAML2Env(t)
	f := runPySAML2Login(t, e, sp, "anna.a", "rs-pysaml2-tamper")
	bridgeKey, err := keys.Load(filepath.Join(e.demo.Dir, "keys", "signing.crt"), filepath.Join(e.demo.Dir, "keys", "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	bridgeSigner, err := xmlsig.NewSigner(bridgeKey)
	if err != nil {
		t.Fatal(err)
	}
	r := resealer{spEnc: sp.encryption, bridge: bridgeSigner}
	unchanged := func(*testing.T, *etree.Element) {}

	tests := []struct {
		name      string
		requestID string // "" means the login's own
		response  func(t *testing.T) []byte
		// wantRefusal are fragments of pysaml2's complaint on stderr (its
		// exception, and the xmlsec1 command that failed, which names the
		// element whose signature was checked); none means accepted.
		wantRefusal []string
	}{
		{name: "as_sent", response: func(*testing.T) []byte { return f.doc }},
		{name: "resealed_unchanged", response: func(t *testing.T) []byte { return r.reseal(t, f.doc, unchanged) }},
		{name: "other_request_id", requestID: "id-not-outstanding",
			response:    func(*testing.T) []byte { return f.doc },
			wantRefusal: []string{"UnsolicitedResponse"}},
		{name: "destination_changed_after_signing",
			response: func(t *testing.T) []byte {
				return bytes.Replace(f.doc, []byte(`Destination="`+sp.acsURL+`"`), []byte(`Destination="`+sp.acsURL+`?x"`), 1)
			},
			wantRefusal: []string{"SignatureError", "--id-attr:ID', 'urn:oasis:names:tc:SAML:2.0:protocol:Response'"}},
		{name: "resealed_assertion_unsigned",
			response: func(t *testing.T) []byte {
				return r.reseal(t, f.doc, func(t *testing.T, a *etree.Element) {
					sig, err := samlxml.Child(a, samlxml.NSDSig, "Signature")
					if err != nil || sig == nil {
						t.Fatal("the decrypted assertion has no signature to remove")
					}
					a.RemoveChild(sig)
				})
			},
			wantRefusal: []string{"SignatureError: Signature missing for assertion"}},
		{name: "resealed_attribute_changed",
			response: func(t *testing.T) []byte {
				return r.reseal(t, f.doc, func(t *testing.T, a *etree.Element) {
					v := a.FindElement(".//AttributeValue[text()='" + testidp.SchoolA + "']")
					if v == nil {
						t.Fatal("no school unit code value to change")
					}
					v.SetText("87654321")
				})
			},
			wantRefusal: []string{"SignatureError", "--id-attr:ID', 'urn:oasis:names:tc:SAML:2.0:assertion:Assertion'"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reqID := tc.requestID
			if reqID == "" {
				reqID = f.login.RequestID
			}
			got, msg, ok := sp.acs(t, tc.name, reqID, base64.StdEncoding.EncodeToString(tc.response(t)))
			switch {
			case len(tc.wantRefusal) == 0 && !ok:
				t.Fatalf("pysaml2 refused: %s", msg)
			case len(tc.wantRefusal) == 0:
				if diff := cmp.Diff([]string{testidp.SchoolA}, got.Attributes["sisSchoolUnitCode"]); diff != "" {
					t.Errorf("pysaml2 accepted it but read (-want +got):\n%s", diff)
				}
			case ok:
				t.Errorf("pysaml2 accepted the changed response; it read %+v", got.Attributes)
			default:
				for _, w := range tc.wantRefusal {
					if !strings.Contains(msg, w) {
						t.Errorf("pysaml2 refused, but its complaint lacks %q: %s", w, msg)
					}
				}
			}
		})
	}
}
