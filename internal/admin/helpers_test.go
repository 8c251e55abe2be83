package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/pseudonym"
	"github.com/skolbro/skolbro/internal/release"
	"github.com/skolbro/skolbro/internal/store"
)

// The tests' clock starts here; classroom's agreement ends within 30 days
// of it and exam-records' has ended.
var testStart = time.Date(2026, 2, 20, 10, 0, 0, 0, time.UTC)

const (
	testEntitlement        = "urn:x-skolbro:entitlement:admin"
	testPrivacyEntitlement = "urn:x-skolbro:entitlement:privacy"
)

// Names and school codes of the test identities: none may appear in logs,
// and the protected pupil's must not appear in a masked release.
const (
	plainGiven, plainSurname, plainSchool        = "Astrid", "Lindqvist", "12345678"
	protectedGiven, protectedSurname, protSchool = "Elvira", "Hemlund", "87654321"
	scope                                        = "school.example"
	adminGiven                                   = "Torbjörn"
)

// withLuhn completes an 11-digit YYYYMMDDNNN with its control digit.
func withLuhn(first11 string) string {
	sum := 0
	for i, c := range first11[2:] {
		d := int(c - '0')
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return first11 + fmt.Sprint((10-sum%10)%10)
}

var (
	plainPNR     = withLuhn("20100315238")
	protectedPNR = withLuhn("20110704112")
	adminPNR     = withLuhn("19800101123")
)

// numberForms are the ways a 12-digit number can be written.
func numberForms(pnr string) []string {
	return []string{pnr, pnr[:8] + "-" + pnr[8:], pnr[2:], pnr[2:8] + "-" + pnr[8:]}
}

func mustPNR(t testing.TB, s string) identity.PersonalNumber {
	t.Helper()
	p, err := identity.ParsePersonalNumber(s, testStart)
	if err != nil {
		t.Fatalf("test number %s: %v", s, err)
	}
	return p
}

// clock is a settable clock shared by the admin and the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects log lines from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// countingStore counts the sessions written to the store.
type countingStore struct {
	store.Store
	mu   sync.Mutex
	puts int
}

func (s *countingStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if strings.HasPrefix(key, sessionKeyPrefix) {
		s.mu.Lock()
		s.puts++
		s.mu.Unlock()
	}
	return s.Store.Put(ctx, key, value, ttl)
}

func (s *countingStore) sessionPuts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts
}

// fakeProtection is an in-memory manual register keyed by the number.
type fakeProtection struct {
	mu      sync.Mutex
	entries map[string]ProtectionEntry
	calls   int
	down    bool
}

func shortKey(p identity.PersonalNumber) string {
	h := sha256.Sum256([]byte(p.RevealPersonalNumber()))
	return hex.EncodeToString(h[:])[:12]
}

func (f *fakeProtection) deps() *ProtectionDeps {
	return &ProtectionDeps{
		Add: func(_ context.Context, p identity.PersonalNumber, note string) (string, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.calls++
			k := shortKey(p)
			switch {
			case f.down:
				return "", fmt.Errorf("fake register: %w", store.ErrBackend)
			case note == "bad":
				return "", ErrBadNote
			case f.entries[k] != ProtectionEntry{}:
				return k, ErrAlreadyMarked
			}
			f.entries[k] = ProtectionEntry{Key: k, Added: "2026-02-20", Note: note}
			return k, nil
		},
		Remove: func(_ context.Context, p identity.PersonalNumber) (string, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.calls++
			k := shortKey(p)
			if _, ok := f.entries[k]; !ok {
				return k, fmt.Errorf("fake register: %w", ErrNotMarked)
			}
			delete(f.entries, k)
			return k, nil
		},
		List: func(context.Context) ([]ProtectionEntry, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.down {
				return nil, store.ErrBackend
			}
			var out []ProtectionEntry
			for _, e := range f.entries {
				out = append(out, e)
			}
			return out, nil
		},
	}
}

func (f *fakeProtection) count() (calls, entries int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, len(f.entries)
}

// fakeKey stands in for an audit subject key: a hash of the form and the
// identifier, as the audit keyer's MAC would be.
func fakeKey(form, v string) string {
	h := sha256.Sum256([]byte(form + ":" + v))
	return hex.EncodeToString(h[:])
}

func fakeSubjectKeys(p identity.PersonalNumber, sid identity.Secret) []string {
	var out []string
	if !p.IsZero() {
		out = append(out, fakeKey("pnr", p.RevealPersonalNumber()))
	}
	if !sid.IsZero() {
		out = append(out, fakeKey("sid", sid.Reveal()))
	}
	return out
}

// fakeActions is the admin action log: it keeps what it was given, and
// refuses everything while down.
type fakeActions struct {
	mu      sync.Mutex
	actions []Action
	down    bool
}

func (f *fakeActions) record(_ context.Context, a Action) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("fake action log: disk full")
	}
	f.actions = append(f.actions, a)
	return nil
}

func (f *fakeActions) all() []Action {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Action(nil), f.actions...)
}

func (f *fakeActions) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// fakeSubject answers subject access with fixed records and remembers the
// keys it was asked about.
type fakeSubject struct {
	mu    sync.Mutex
	calls int
	got   []string
}

func (f *fakeSubject) lookup(_ context.Context, keys []string) (SubjectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.got = append([]string(nil), keys...)
	return SubjectResult{
		Records: []SubjectRecord{
			{Time: testStart.Add(-48 * time.Hour), Vendor: "learning-app", Protocol: "saml", Attributes: []string{"eduPersonPrincipalName", "givenName"}, Outcome: OutcomeReleased},
			{Time: testStart.Add(-24 * time.Hour), Vendor: "learning-app", Protocol: "saml", Attributes: []string{"givenName"}, Outcome: OutcomeReleased},
			{Time: testStart.Add(-2 * time.Hour), Vendor: "exam-records", Protocol: "saml", Outcome: "refused", Reason: "agreement_ended"},
		},
		FilesScanned: 2,
		LogStart:     testStart.AddDate(0, -3, 0),
	}, nil
}

func (f *fakeSubject) state() (int, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.got
}

// env is one admin interface under test with its own store, clock and log.
type env struct {
	t       *testing.T
	admin   *Admin
	router  *mux.Router
	clock   *clock
	store   *countingStore
	logs    *syncBuffer
	prot    *fakeProtection
	subject *fakeSubject
	actions *fakeActions
	deriver *pseudonym.Deriver
	starts  int
	mu      sync.Mutex
}

type envOption func(*Deps)

func loadPolicies(t testing.TB) []*policy.Policy {
	t.Helper()
	ps, problems := policy.LoadDir("testdata/policies", policy.At(testStart))
	if policy.HasErrors(problems) || len(ps) != 3 {
		t.Fatalf("test policies: %d loaded, problems %v", len(ps), problems)
	}
	return ps
}

func testIdentities(t testing.TB) []PreviewIdentity {
	return []PreviewIdentity{
		{Login: "astrid.l", Label: "Elev / pupil", Identity: &identity.Identity{
			Upstream: "test-idp", StableID: identity.NewSecret("stable-astrid"),
			PersonalNumber: mustPNR(t, plainPNR), Protection: identity.ProtectionNone,
			Attributes: identity.Attributes{
				attr.GivenName: {plainGiven}, attr.Surname: {plainSurname},
				attr.Affiliation: {"student"}, attr.SchoolUnitCode: {plainSchool},
			},
		}},
		{Login: "elvira.h", Label: "Elev med skyddad folkbokföring / protected pupil", Identity: &identity.Identity{
			Upstream: "test-idp", StableID: identity.NewSecret("stable-elvira"),
			PersonalNumber: mustPNR(t, protectedPNR), Protection: identity.ProtectionSkyddadFolkbokforing,
			Attributes: identity.Attributes{
				attr.GivenName: {protectedGiven}, attr.Surname: {protectedSurname},
				attr.Affiliation: {"student"}, attr.SchoolUnitCode: {protSchool},
			},
		}},
	}
}

// adminIdentity is a privacy admin: both entitlements.
func adminIdentity(t testing.TB) *identity.Identity {
	return &identity.Identity{
		Upstream: "test-idp", StableID: identity.NewSecret("stable-admin"),
		PersonalNumber: mustPNR(t, adminPNR), Protection: identity.ProtectionNone,
		Attributes: identity.Attributes{
			attr.GivenName:   {adminGiven},
			attr.Entitlement: {"urn:x-other", testEntitlement, testPrivacyEntitlement},
		},
	}
}

// plainAdminIdentity carries the admin entitlement only.
func plainAdminIdentity(t testing.TB) *identity.Identity {
	id := adminIdentity(t)
	id.Attributes = identity.Attributes{attr.GivenName: {adminGiven}, attr.Entitlement: {testEntitlement}}
	return id
}

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{t: testStart}, logs: &syncBuffer{},
		prot: &fakeProtection{entries: map[string]ProtectionEntry{}}, subject: &fakeSubject{}, actions: &fakeActions{}}
	e.store = &countingStore{Store: store.NewMemory(e.clock.Now)}
	d, err := pseudonym.New(bytes.Repeat([]byte{7}, 32), scope)
	if err != nil {
		t.Fatal(err)
	}
	e.deriver = d
	policies := loadPolicies(t)
	deps := Deps{
		Organiser:  "Testkommunen",
		Policies:   func() []*policy.Policy { return policies },
		Release:    func(p *policy.Policy, id *identity.Identity) *release.Released { return release.Release(p, id, d) },
		Identities: testIdentities(t),
		RegisterRows: func() []RegisterRow {
			return []RegisterRow{{VendorID: "learning-app", DisplayName: "Test Learning App", Protocol: "saml",
				Purpose: "Pupils log in", AgreementEnds: time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC),
				Released: []string{"eduPersonPrincipalName", "givenName"}, ProtectedHandling: "default"}}
		},
		RegisterCSV: func(w io.Writer) error {
			_, err := io.WriteString(w, "vendor_id,display_name\nlearning-app,Test Learning App\n")
			return err
		},
		RegisterJSON: func(w io.Writer) error {
			_, err := io.WriteString(w, `[{"vendor_id":"learning-app"}]`+"\n")
			return err
		},
		SubjectAccess: e.subject.lookup,
		Protection:    e.prot.deps(),
		Store:         e.store,
		StartLogin: func(w http.ResponseWriter, r *http.Request) {
			e.mu.Lock()
			e.starts++
			e.mu.Unlock()
			http.Redirect(w, r, "https://idp.example/sso", http.StatusFound)
		},
		Entitlement:        testEntitlement,
		PrivacyEntitlement: testPrivacyEntitlement,
		SubjectKeys:        fakeSubjectKeys,
		RecordAction:       e.actions.record,
		AdminSubject:       func(*identity.Identity) string { return "subj-0123abcd" },
		Logger:             zerolog.New(e.logs),
		Now:                e.clock.Now,
	}
	for _, o := range opts {
		o(&deps)
	}
	a, err := New(deps)
	if err != nil {
		t.Fatal(err)
	}
	e.admin = a
	e.router = mux.NewRouter()
	a.Routes(e.router)
	t.Cleanup(func() { checkLogs(t, e.logs.String()) })
	return e
}

func (e *env) startCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.starts
}

// personalData finds what must never be logged: anything shaped like a
// personal number, and the test identities' names and school codes.
var pnrShape = regexp.MustCompile(`\d{6,8}[-+]?\d{4}`)

func personalData(logs string) []string {
	var found []string
	found = append(found, pnrShape.FindAllString(logs, -1)...)
	for _, s := range []string{plainGiven, plainSurname, plainSchool, protectedGiven, protectedSurname, protSchool, adminGiven} {
		if strings.Contains(logs, s) {
			found = append(found, s)
		}
	}
	return found
}

func checkLogs(t *testing.T, logs string) {
	t.Helper()
	if found := personalData(logs); len(found) > 0 {
		t.Errorf("logs contain personal data %q:\n%s", found, logs)
	}
}

func TestPersonalDataCheckCanFail(t *testing.T) {
	t.Parallel()
	for _, line := range []string{plainPNR, protectedPNR[2:8] + "-" + protectedPNR[8:], "hello " + protectedGiven} {
		if len(personalData(line)) == 0 {
			t.Errorf("personalData(%q) found nothing", line)
		}
	}
	if got := personalData(`{"page":"subject","outcome":"ok","admin_subject":"subj-0123abcd"}`); len(got) != 0 {
		t.Errorf("clean line flagged: %q", got)
	}
}

// request is one request to the admin interface.
type request struct {
	method, path string
	form         url.Values
	cookie       *http.Cookie
	header       http.Header
}

func (e *env) do(rq request) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	if rq.form != nil {
		body = strings.NewReader(rq.form.Encode())
	}
	method := rq.method
	if method == "" {
		method = http.MethodGet
	}
	r := httptest.NewRequest(method, "http://bridge.example"+rq.path, body)
	if rq.form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range rq.header {
		r.Header[k] = v
	}
	if rq.cookie != nil {
		r.AddCookie(rq.cookie)
	}
	w := httptest.NewRecorder()
	e.router.ServeHTTP(w, r)
	return w
}

func (e *env) get(path string, c *http.Cookie) *httptest.ResponseRecorder {
	return e.do(request{path: path, cookie: c})
}

func (e *env) post(path string, c *http.Cookie, form url.Values) *httptest.ResponseRecorder {
	return e.do(request{method: http.MethodPost, path: path, cookie: c, form: form})
}

// complete runs CompleteLogin for id, with the browser's cookie if any.
func (e *env) complete(id *identity.Identity, c *http.Cookie, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "http://bridge.example/saml/sp/acs", nil)
	for k, v := range header {
		r.Header[k] = v
	}
	if c != nil {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	e.admin.CompleteLogin(w, r, id)
	return w
}

func sessionCookie(w *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if strings.HasPrefix(c.Name, CookieName) && c.Value != "" && c.MaxAge >= 0 {
			return c
		}
	}
	return nil
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// login logs a privacy admin in and returns the session cookie and CSRF
// token.
func (e *env) login() (*http.Cookie, string) {
	e.t.Helper()
	return e.loginAs(adminIdentity(e.t))
}

// loginAs logs id in and returns the session cookie and CSRF token.
func (e *env) loginAs(id *identity.Identity) (*http.Cookie, string) {
	e.t.Helper()
	w := e.complete(id, nil, nil)
	c := sessionCookie(w)
	if w.Code != http.StatusSeeOther || c == nil {
		e.t.Fatalf("login: status %d, cookie %v", w.Code, c)
	}
	page := e.get(e.admin.path("/admin/"), c)
	m := csrfField.FindStringSubmatch(page.Body.String())
	if page.Code != http.StatusOK || m == nil {
		e.t.Fatalf("overview after login: status %d, csrf %v", page.Code, m)
	}
	return c, m[1]
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}
