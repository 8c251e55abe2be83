package samlsp

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"

	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/testidp"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// t0 is the fixed time the tests run at.
var t0 = time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC)

const (
	spEntityID  = "https://bridge.example.se/saml/sp"
	acsURL      = "https://bridge.example.se/saml/acs"
	idpEntityID = "https://idp.skola.example.se/idp"
	idpSSOURL   = "https://idp.skola.example.se/sso"
	scope       = "skola.example.se"
	browserA    = "browser-binding-A"
	browserB    = "browser-binding-B"
)

// testKeys are generated once: RSA key generation is slow, and the keys
// are never changed after generation.
type testKeys struct {
	idp, idpNext, attacker, idpEC *keys.Pair
}

var loadKeys = sync.OnceValues(func() (*testKeys, error) {
	var k testKeys
	var err error
	if k.idp, err = keys.Generate("idp", keys.RSA2048, t0); err != nil {
		return nil, err
	}
	if k.idpNext, err = keys.Generate("idp-next", keys.RSA2048, t0); err != nil {
		return nil, err
	}
	if k.attacker, err = keys.Generate("attacker", keys.RSA2048, t0); err != nil {
		return nil, err
	}
	if k.idpEC, err = keys.Generate("idp-ec", keys.P256, t0); err != nil {
		return nil, err
	}
	return &k, nil
})

func mustKeys(t testing.TB) *testKeys {
	t.Helper()
	k, err := loadKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signer(t testing.TB, p *keys.Pair) *xmlsig.Signer {
	t.Helper()
	s, err := xmlsig.NewSigner(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clock is a settable clock shared by the SP, the IdP and the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// memStore is a minimal store.Store for these tests (internal/store's
// implementations are written elsewhere). It honours TTLs on its clock,
// records the TTLs it was given, and can be made to fail.
type memStore struct {
	mu   sync.Mutex
	now  func() time.Time
	m    map[string]memEntry
	ttls map[string]time.Duration
	fail error
	ops  []string // "get <key>", "take <key>", ... in the order they came
}

type memEntry struct {
	v   []byte
	exp time.Time
}

func newMemStore(now func() time.Time) *memStore {
	return &memStore{now: now, m: map[string]memEntry{}, ttls: map[string]time.Duration{}}
}

func (s *memStore) live(key string) (memEntry, bool) {
	e, ok := s.m[key]
	if ok && !s.now().Before(e.exp) {
		delete(s.m, key)
		return memEntry{}, false
	}
	return e, ok
}

func (s *memStore) Put(_ context.Context, key string, v []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, "put "+key)
	if s.fail != nil {
		return s.fail
	}
	s.m[key] = memEntry{v: append([]byte(nil), v...), exp: s.now().Add(ttl)}
	s.ttls[key] = ttl
	return nil
}

func (s *memStore) Add(_ context.Context, key string, v []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, "add "+key)
	if s.fail != nil {
		return s.fail
	}
	if _, ok := s.live(key); ok {
		return store.ErrExists
	}
	s.m[key] = memEntry{v: append([]byte(nil), v...), exp: s.now().Add(ttl)}
	s.ttls[key] = ttl
	return nil
}

func (s *memStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, "get "+key)
	if s.fail != nil {
		return nil, s.fail
	}
	e, ok := s.live(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	return e.v, nil
}

func (s *memStore) Take(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, "take "+key)
	if s.fail != nil {
		return nil, s.fail
	}
	e, ok := s.live(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	delete(s.m, key)
	return e.v, nil
}

func (s *memStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, "delete "+key)
	if s.fail != nil {
		return s.fail
	}
	delete(s.m, key)
	return nil
}

func (s *memStore) Ping(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail
}

func (s *memStore) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *memStore) ttl(key string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ttls[key]
}

func (s *memStore) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.m {
		out = append(out, k)
	}
	return out
}

// fixture is one SP, one test IdP and their shared store and clock.
type fixture struct {
	t     testing.TB
	clock *clock
	store *memStore
	keys  *testKeys
	idp   *testidp.IdP
	sp    *SP
	user  testidp.User
}

type fixtureOpt func(*Config, *testidp.IdP)

func withCerts(p ...*keys.Pair) fixtureOpt {
	return func(c *Config, _ *testidp.IdP) {
		c.IdPCerts = nil
		for _, k := range p {
			c.IdPCerts = append(c.IdPCerts, k.Cert)
		}
	}
}

func withIdPSigner(s *xmlsig.Signer) fixtureOpt {
	return func(_ *Config, idp *testidp.IdP) { idp.Signer = s }
}

func newFixture(t testing.TB, opts ...fixtureOpt) *fixture {
	t.Helper()
	k := mustKeys(t)
	c := &clock{t: t0}
	st := newMemStore(c.Now)
	idp := testidp.New(idpEntityID, idpSSOURL, scope, signer(t, k.idp))
	idp.Now = c.Now
	idp.ACSURL = acsURL
	cfg := Config{
		EntityID:    spEntityID,
		ACSURL:      acsURL,
		IdPEntityID: idpEntityID,
		IdPSSOURL:   idpSSOURL,
		IdPCerts:    []*x509.Certificate{k.idp.Cert},
		Store:       st,
		Now:         c.Now,
	}
	for _, o := range opts {
		o(&cfg, idp)
	}
	sp, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := idp.User("anna.a")
	if !ok {
		t.Fatal("demo user anna.a missing")
	}
	return &fixture{t: t, clock: c, store: st, keys: k, idp: idp, sp: sp, user: u}
}

// secondSP returns another SP instance sharing f's store and clock, as a
// second bridge instance would.
func (f *fixture) secondSP() *SP {
	f.t.Helper()
	sp, err := New(Config{
		EntityID: spEntityID, ACSURL: acsURL, IdPEntityID: idpEntityID, IdPSSOURL: idpSSOURL,
		IdPCerts: []*x509.Certificate{f.keys.idp.Cert}, Store: f.store, Now: f.clock.Now,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return sp
}

// login starts a login for binding and returns the AuthnRequest as the IdP
// reads it.
func (f *fixture) login(binding string) testidp.Request {
	f.t.Helper()
	redirect, err := f.sp.StartLogin(context.Background(), binding, []byte("state-for-"+binding), "rs")
	if err != nil {
		f.t.Fatal(err)
	}
	u, err := url.Parse(redirect)
	if err != nil {
		f.t.Fatal(err)
	}
	req, err := testidp.ParseAuthnRequest(u.Query().Get("SAMLRequest"))
	if err != nil {
		f.t.Fatal(err)
	}
	return req
}

func (f *fixture) respond(req testidp.Request, opts ...testidp.Option) string {
	f.t.Helper()
	resp, err := f.idp.Respond(req, f.user, opts...)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

// personalData are the strings no error may contain: the test user's
// NameID and attribute values, and anything shaped like a personal number.
var (
	personalNumberShape = regexp.MustCompile(`\d{6,8}[-+]?\d{4}`)
	requestIDShape      = regexp.MustCompile(`[0-9a-f]{16}`)
)

func (f *fixture) checkNoPersonalData(t *testing.T, err error) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		msg := e.Error()
		if strings.Contains(msg, f.user.NameID) {
			t.Errorf("error %q contains the NameID", msg)
		}
		for name, vals := range f.user.Attributes {
			for _, v := range vals {
				if len(v) >= 3 && strings.Contains(msg, v) {
					t.Errorf("error %q contains the value of %s", msg, name)
				}
			}
		}
		if personalNumberShape.MatchString(msg) {
			t.Errorf("error %q contains something shaped like a personal number", msg)
		}
		if strings.ContainsAny(msg, "<>") || strings.Contains(msg, "example.se") || requestIDShape.MatchString(msg) {
			t.Errorf("error %q quotes input", msg)
		}
	}
}

// expectRefusal checks that HandleResponse refused with reason and status
// and released nothing.
func (f *fixture) expectRefusal(t *testing.T, sp *SP, resp, binding, reason string, status int) *Error {
	t.Helper()
	a, state, err := sp.HandleResponse(context.Background(), resp, binding)
	if a != nil || state != nil {
		t.Errorf("refused response released assertion %v / state %q", a != nil, state)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want *Error", err)
	}
	if e.Reason != reason || e.Status != status {
		t.Errorf("refusal = (%q, %d), want (%q, %d)", e.Reason, e.Status, reason, status)
	}
	f.checkNoPersonalData(t, err)
	return e
}

func (f *fixture) expectSuccess(t *testing.T, sp *SP, resp, binding string) *Assertion {
	t.Helper()
	a, state, err := sp.HandleResponse(context.Background(), resp, binding)
	if err != nil {
		t.Fatalf("HandleResponse: %v", err)
	}
	if a == nil {
		t.Fatal("no assertion")
	}
	if string(state) != "state-for-"+binding {
		t.Errorf("state = %q, want the one given to StartLogin", state)
	}
	return a
}

// decode and encode move between the base64 a test IdP returns and a
// document a test can mutate as text.
func decode(t testing.TB, resp string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func encode(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// Helpers for document hooks.

func assertionOf(doc *etree.Document) *etree.Element {
	return samlxml.Children(doc.Root(), samlxml.NSAssertion, "Assertion")[0]
}

func find(el *etree.Element, path string) *etree.Element {
	// Paths use the prefixes the test IdP writes.
	return el.FindElement(path)
}

func mustFind(t testing.TB, el *etree.Element, path string) *etree.Element {
	t.Helper()
	f := find(el, path)
	if f == nil {
		t.Fatalf("no %s", path)
	}
	return f
}

func removeSignature(el *etree.Element) *etree.Element {
	for _, c := range el.ChildElements() {
		if samlxml.Is(c, samlxml.NSDSig, "Signature") {
			el.RemoveChild(c)
			return c
		}
	}
	return nil
}

// manualSign signs el (a child of a document) enveloped with exclusive
// C14N like an IdP would, but with the signature and digest algorithms
// chosen freely, so that tests can make correctly computed signatures with
// algorithms the SP must refuse. It replaces any signature el has.
func manualSign(t testing.TB, el *etree.Element, key *rsa.PrivateKey, sigMethod, digestMethod, c14n string) {
	t.Helper()
	removeSignature(el)
	ctx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		t.Fatal(err)
	}
	det, err := etreeutils.NSDetatch(ctx, el)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("").Canonicalize(det)
	if err != nil {
		t.Fatal(err)
	}
	digest := hashFor(t, digestMethod, canon)

	sig := etree.NewElement("ds:Signature")
	sig.CreateAttr("xmlns:ds", samlxml.NSDSig)
	si := sig.CreateElement("ds:SignedInfo")
	si.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", c14n)
	si.CreateElement("ds:SignatureMethod").CreateAttr("Algorithm", sigMethod)
	ref := si.CreateElement("ds:Reference")
	ref.CreateAttr("URI", "#"+el.SelectAttrValue("ID", ""))
	tr := ref.CreateElement("ds:Transforms")
	tr.CreateElement("ds:Transform").CreateAttr("Algorithm", algEnveloped)
	tr.CreateElement("ds:Transform").CreateAttr("Algorithm", algExcC14N)
	ref.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", digestMethod)
	ref.CreateElement("ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(digest))

	siCopy, err := etreeutils.NSDetatch(etreeutils.NewDefaultNSContext(), si)
	if err != nil {
		t.Fatal(err)
	}
	siCopy.CreateAttr("xmlns:ds", samlxml.NSDSig)
	siCanon, err := dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("").Canonicalize(siCopy)
	if err != nil {
		t.Fatal(err)
	}
	var h crypto.Hash
	switch sigMethod {
	case "http://www.w3.org/2000/09/xmldsig#rsa-sha1":
		h = crypto.SHA1
	default:
		h = crypto.SHA256
	}
	sum := hashWith(h, siCanon)
	sv, err := rsa.SignPKCS1v15(nil, key, h, sum)
	if err != nil {
		t.Fatal(err)
	}
	sig.CreateElement("ds:SignatureValue").SetText(base64.StdEncoding.EncodeToString(sv))

	pos := 0
	for i, c := range el.Child {
		if e, ok := c.(*etree.Element); ok && e.Tag == "Issuer" {
			pos = i + 1
			break
		}
	}
	el.InsertChildAt(pos, sig)
}

func hashFor(t testing.TB, digestMethod string, b []byte) []byte {
	t.Helper()
	switch digestMethod {
	case "http://www.w3.org/2000/09/xmldsig#sha1":
		return hashWith(crypto.SHA1, b)
	case xmlsig.DigestSHA256:
		return hashWith(crypto.SHA256, b)
	}
	t.Fatalf("unknown digest %s", digestMethod)
	return nil
}

func hashWith(h crypto.Hash, b []byte) []byte {
	switch h {
	case crypto.SHA1:
		s := sha1.Sum(b)
		return s[:]
	default:
		s := sha256.Sum256(b)
		return s[:]
	}
}
