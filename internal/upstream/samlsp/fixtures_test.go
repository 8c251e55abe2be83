package samlsp

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/testidp"
)

// update rewrites the stored fixtures (see testdata/saml/README.md):
//
//	go test ./internal/upstream/samlsp -run '^TestGenerateFixtures$' -update
var update = flag.Bool("update", false, "rewrite the signed SAML fixtures in testdata/saml")

// The stored fixtures and what they are made with. Everything that goes
// into a fixture is fixed, so that -update rewrites the same bytes until a
// case or the test IdP changes.
const (
	fixtureDir = "testdata/saml"
	// fixtureCertFile and fixtureKeyFile are the test IdP's signing pair,
	// generated once by -update when missing. TEST ONLY.
	fixtureCertFile = "idp-signing.crt"
	fixtureKeyFile  = "idp-signing-TEST-ONLY.key"
	// fixtureRequestID is the AuthnRequest every fixture answers; the
	// check pre-seeds the store with it as StartLogin would.
	fixtureRequestID = "_feed0000000000000000000000000001"
	fixtureBinding   = browserA
	// fixtureNameID is the fixed, invented subject of every fixture.
	fixtureNameID = "fixture-subject-0001"
)

// fixtureNow is the instant every fixture is issued and checked at.
func fixtureNow() time.Time { return time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC) }

// fixtureUser is a small invented person: no personal number and few
// attributes, so that the stored files stay small and carry nothing that
// looks like personal data.
func fixtureUser() testidp.User {
	return testidp.User{
		Login:  "fixture",
		NameID: fixtureNameID,
		Attributes: map[string][]string{
			testidp.AttrEPPN:              {"fx0001@" + scope},
			testidp.AttrScopedAffiliation: {"student@" + scope},
		},
	}
}

// fixtureCase is one stored response: how the test IdP makes it and the
// Reason HandleResponse must refuse it with ("" for the one it accepts).
type fixtureCase struct {
	name string
	// opts make the response with the fixture pair's RSA key.
	opts func(t testing.TB, key *rsa.PrivateKey) []testidp.Option
	// edit, when set, changes the serialised response (for input that
	// etree cannot build, such as a DOCTYPE).
	edit   func([]byte) []byte
	reason string
}

func fixtureCases() []fixtureCase {
	with := func(o ...testidp.Option) func(testing.TB, *rsa.PrivateKey) []testidp.Option {
		return func(testing.TB, *rsa.PrivateKey) []testidp.Option { return o }
	}
	cases := []fixtureCase{
		{name: "valid", opts: with()},
		{name: "unsigned", opts: with(testidp.UnsignedAssertion()), reason: ReasonUnsigned},
		{name: "tampered_nameid", opts: func(t testing.TB, _ *rsa.PrivateKey) []testidp.Option {
			return []testidp.Option{testidp.AfterSigning(func(doc *etree.Document) {
				mustFind(t, assertionOf(doc), pNameID).SetText("fixture-subject-0002")
			})}
		}, reason: ReasonBadSignature},
	}
	for n := 1; n <= 8; n++ {
		c := fixtureCase{name: "xsw" + string(rune('0'+n)), reason: ReasonAssertionCount}
		c.opts = func(t testing.TB, _ *rsa.PrivateKey) []testidp.Option {
			o := []testidp.Option{testidp.AfterSigning(xsw(t, n, true))}
			if n <= 2 {
				// XSW1 and XSW2 wrap a signed Response.
				o = append([]testidp.Option{testidp.SignResponse()}, o...)
			}
			return o
		}
		if n <= 2 {
			c.reason = ReasonWrapped
		}
		cases = append(cases, c)
	}
	return append(cases,
		fixtureCase{name: "sha1", opts: func(t testing.TB, key *rsa.PrivateKey) []testidp.Option {
			// A correct RSA-SHA1 signature with a SHA-1 digest, as IdPs
			// on old defaults make.
			return []testidp.Option{testidp.UnsignedAssertion(), testidp.AfterSigning(func(doc *etree.Document) {
				manualSign(t, assertionOf(doc), key, rsaSHA1, digestSHA1, algExcC14N)
			})}
		}, reason: ReasonSHA1},
		fixtureCase{name: "wrong_audience", opts: func(t testing.TB, _ *rsa.PrivateKey) []testidp.Option {
			// Signed by the IdP, but for another SP.
			return []testidp.Option{testidp.BeforeSigning(func(doc *etree.Document) {
				mustFind(t, assertionOf(doc), pAudience).SetText("https://other-sp.example.se/sp")
			})}
		}, reason: ReasonAudience},
		fixtureCase{name: "doctype", opts: with(), edit: func(b []byte) []byte {
			// The valid response behind an internal DTD subset.
			return append([]byte(`<!DOCTYPE r [<!ENTITY e "x">]>`), b...)
		}, reason: ReasonDTD},
	)
}

// seqReader is a deterministic byte stream, SHA-256 of a seed and a
// counter. Every case starts from the same seed, so cases share their IDs
// and differ only in what the case changes.
type seqReader struct {
	seed string
	ctr  uint64
	buf  []byte
}

func (r *seqReader) Read(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(r.buf) == 0 {
			h := sha256.New()
			h.Write([]byte(r.seed))
			_ = binary.Write(h, binary.BigEndian, r.ctr)
			r.ctr++
			r.buf = h.Sum(nil)
		}
		c := copy(p, r.buf)
		r.buf, p = r.buf[c:], p[c:]
	}
	return n, nil
}

// generateFixtures makes every case's response (the XML as posted, before
// base64) with pair. RSA PKCS #1 v1.5 signatures are deterministic, so
// the same pair gives the same bytes.
func generateFixtures(t testing.TB, pair *keys.Pair) map[string][]byte {
	t.Helper()
	key, ok := pair.Signer.(*rsa.PrivateKey)
	if !ok {
		t.Fatal("the fixture pair must be RSA")
	}
	req := testidp.Request{ID: fixtureRequestID, ACSURL: acsURL, SPEntityID: spEntityID}
	out := map[string][]byte{}
	for _, c := range fixtureCases() {
		idp := testidp.New(idpEntityID, idpSSOURL, scope, signer(t, pair))
		idp.Now = fixtureNow
		idp.Rand = &seqReader{seed: "skolbro saml fixtures"}
		resp, err := idp.Respond(req, fixtureUser(), c.opts(t, key)...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b := []byte(decode(t, resp))
		if c.edit != nil {
			b = c.edit(b)
		}
		out[c.name] = b
	}
	return out
}

// fixturePair loads the stored pair or, with -update and no pair stored
// yet, generates and stores one.
func fixturePair(t *testing.T) *keys.Pair {
	t.Helper()
	certPath := filepath.Join(fixtureDir, fixtureCertFile)
	keyPath := filepath.Join(fixtureDir, fixtureKeyFile)
	p, err := keys.Load(certPath, keyPath)
	if err == nil || !*update || !errors.Is(err, fs.ErrNotExist) {
		if err != nil {
			t.Fatalf("fixture signing pair: %v (run with -update to create it)", err)
		}
		return p
	}
	// Valid for five years from the fixtures' fixed clock.
	p, err = keys.Generate("skolbro test IdP (TEST ONLY)", keys.RSA2048, fixtureNow())
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := p.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	// pem.Decode skips text before the block, so the warning can lead.
	keyPEM = append([]byte("TEST ONLY: the signing key of the SAML fixtures in this directory.\nNever trust its certificate outside tests.\n\n"), keyPEM...)
	if err := os.MkdirAll(fixtureDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, p.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGenerateFixtures is the generator of the signed hostile fixtures in
// testdata/saml (SECURITY.md: "signed hostile SAML fixtures are generated
// by a script in testdata/ that the tests explain"). With -update it
// writes them; without, it checks that every stored fixture still gets the
// Reason its case expects from HandleResponse, at the fixed clock with the
// pending request in the store, and that generation is deterministic.
func TestGenerateFixtures(t *testing.T) {
	pair := fixturePair(t)
	cases := fixtureCases()

	if *update {
		for name, b := range generateFixtures(t, pair) {
			if err := os.WriteFile(filepath.Join(fixtureDir, name+".xml"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("deterministic", func(t *testing.T) {
		a, b := generateFixtures(t, pair), generateFixtures(t, pair)
		for _, c := range cases {
			if !bytes.Equal(a[c.name], b[c.name]) {
				t.Errorf("%s: two generations differ", c.name)
			}
		}
	})

	t.Run("no_unexplained_files", func(t *testing.T) {
		names := map[string]bool{}
		for _, c := range cases {
			names[c.name+".xml"] = true
		}
		stored, err := filepath.Glob(filepath.Join(fixtureDir, "*.xml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stored {
			if !names[filepath.Base(s)] {
				t.Errorf("%s is not made by any case: remove it or add its case", s)
			}
		}
	})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(fixtureDir, c.name+".xml"))
			if err != nil {
				t.Fatalf("stored fixture: %v (run with -update to write it)", err)
			}
			if len(b) > 16<<10 {
				t.Errorf("fixture is %d bytes; keep fixtures small", len(b))
			}
			f, sp := fixtureSP(t, pair.Cert)
			resp := encode(string(b))
			if c.reason == "" {
				a := f.expectSuccess(t, sp, resp, fixtureBinding)
				if a.NameID != fixtureNameID || a.Issuer != idpEntityID {
					t.Errorf("accepted NameID %q from %q", a.NameID, a.Issuer)
				}
				return
			}
			f.expectRefusal(t, sp, resp, fixtureBinding, c.reason, 400)
		})
	}

	// A hook that silently did nothing would leave a hostile fixture equal
	// to the valid one (the cases share IDs), testing nothing new.
	t.Run("cases_are_distinct", func(t *testing.T) {
		var seen [][]byte
		for _, c := range cases {
			b, err := os.ReadFile(filepath.Join(fixtureDir, c.name+".xml"))
			if err != nil {
				t.Skip("fixtures missing; reported above")
			}
			if slices.ContainsFunc(seen, func(s []byte) bool { return bytes.Equal(s, b) }) {
				t.Errorf("%s repeats another fixture", c.name)
			}
			seen = append(seen, b)
			if !strings.Contains(string(b), fixtureRequestID) {
				t.Errorf("%s does not answer the fixture request", c.name)
			}
		}
	})
}

// fixtureSP is an SP trusting cert, at the fixed clock, with a fresh
// store holding the pending request StartLogin would have stored for
// fixtureRequestID from fixtureBinding.
func fixtureSP(t *testing.T, cert *x509.Certificate) (*fixture, *SP) {
	t.Helper()
	c := &clock{t: fixtureNow()}
	st := newMemStore(c.Now)
	bh := sha256.Sum256([]byte(fixtureBinding))
	val, err := json.Marshal(pending{BindingHash: bh[:], State: []byte("state-for-" + fixtureBinding)})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(context.Background(), requestKeyPrefix+fixtureRequestID, val, DefaultRequestTTL); err != nil {
		t.Fatal(err)
	}
	sp, err := New(Config{
		EntityID: spEntityID, ACSURL: acsURL, IdPEntityID: idpEntityID, IdPSSOURL: idpSSOURL,
		IdPCerts: []*x509.Certificate{cert}, Store: st, Now: c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, clock: c, store: st, sp: sp, user: fixtureUser()}, sp
}
