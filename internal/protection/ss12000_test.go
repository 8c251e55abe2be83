package protection

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/protection/ss12000test"
)

const testToken = "test-token-5f1c2a"

func tokenFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newSS12000 returns a source on srv with a bearer token; change edits
// the configuration first.
func newSS12000(t *testing.T, srv *ss12000test.Server, change func(*SS12000Config)) *SS12000 {
	t.Helper()
	cfg := SS12000Config{
		BaseURL:         srv.URL(),
		BearerTokenFile: tokenFile(t, testToken+"\n"),
		RootCAs:         srv.CertPool(),
		Timeout:         5 * time.Second,
	}
	if change != nil {
		change(&cfg)
	}
	s, err := NewSS12000(cfg)
	if err != nil {
		t.Fatalf("NewSS12000: %v", err)
	}
	return s
}

func TestSS12000Answers(t *testing.T) {
	t.Parallel()
	pnr := testNumbers[0]
	other := testNumbers[1]
	personJSON := func(civic, marking string) string {
		return fmt.Sprintf(`{"id":"x","givenName":"A","familyName":"B","eduPersonPrincipalNames":["a@b.se"],"civicNo":{"value":%q},"securityMarking":%q}`, civic, marking)
	}
	tests := []struct {
		name    string
		setup   func(s *ss12000test.Server)
		method  string
		want    identity.Protection
		wantErr error // nil: success; errAny: any error
	}{
		{"ingen", func(s *ss12000test.Server) { s.Set(pnr, "Ingen") }, "", identity.ProtectionNone, nil},
		{"sekretessmarkering", func(s *ss12000test.Server) { s.Set(pnr, "Sekretessmarkering") }, "", identity.ProtectionSekretessmarkering, nil},
		{"skyddad folkbokföring", func(s *ss12000test.Server) { s.Set(pnr, "Skyddad folkbokföring") }, "", identity.ProtectionSkyddadFolkbokforing, nil},
		{"query method", func(s *ss12000test.Server) { s.Set(pnr, "Sekretessmarkering") }, MethodQuery, identity.ProtectionSekretessmarkering, nil},
		{"dashed civicNo in answer", func(s *ss12000test.Server) {
			s.SetBody(`{"data":[` + personJSON(pnr[:8]+"-"+pnr[8:], "Ingen") + `]}`)
		}, "", identity.ProtectionNone, nil},

		{"no such person", func(s *ss12000test.Server) { s.Set(other, "Ingen") }, "", identity.ProtectionUnknown, ErrMissing},
		{"no such person, query", func(s *ss12000test.Server) {}, MethodQuery, identity.ProtectionUnknown, ErrMissing},
		{"unknown marking", func(s *ss12000test.Server) { s.Set(pnr, "Hemlig") }, "", identity.ProtectionUnknown, errAny},
		{"marking in lower case", func(s *ss12000test.Server) { s.Set(pnr, "sekretessmarkering") }, "", identity.ProtectionUnknown, errAny},
		{"EGIL boolean marking", func(s *ss12000test.Server) {
			s.SetBody(`{"data":[{"civicNo":{"value":"` + pnr + `"},"securityMarking":true}]}`)
		}, "", identity.ProtectionUnknown, errAny},
		{"marking missing", func(s *ss12000test.Server) { s.Set(pnr, "") }, "", identity.ProtectionUnknown, errAny},
		{"several persons", func(s *ss12000test.Server) {
			s.SetBody(`{"data":[` + personJSON(pnr, "Ingen") + `,` + personJSON(pnr, "Ingen") + `]}`)
		}, "", identity.ProtectionUnknown, errAny},
		{"another person's number", func(s *ss12000test.Server) {
			s.SetBody(`{"data":[` + personJSON(other, "Ingen") + `]}`)
		}, "", identity.ProtectionUnknown, errAny},
		{"no civicNo", func(s *ss12000test.Server) {
			s.SetBody(`{"data":[{"securityMarking":"Ingen"}]}`)
		}, "", identity.ProtectionUnknown, errAny},
		{"bad JSON quoting the number", func(s *ss12000test.Server) { s.SetBody(`{"data":[` + pnr) }, "", identity.ProtectionUnknown, errAny},
		{"not a list of persons", func(s *ss12000test.Server) { s.SetBody(`{"persons":[]}`) }, "", identity.ProtectionUnknown, errAny},
		{"html", func(s *ss12000test.Server) { s.SetBody(`<html>` + pnr + `</html>`) }, "", identity.ProtectionUnknown, errAny},
		{"status 500", func(s *ss12000test.Server) { s.Set(pnr, "Ingen"); s.SetFailing(500) }, "", identity.ProtectionUnknown, errAny},
		{"status 403", func(s *ss12000test.Server) { s.Set(pnr, "Ingen"); s.SetFailing(403) }, "", identity.ProtectionUnknown, errAny},
		{"status 404", func(s *ss12000test.Server) { s.Set(pnr, "Ingen"); s.SetFailing(404) }, "", identity.ProtectionUnknown, errAny},
		{"too large", func(s *ss12000test.Server) {
			s.SetBody(`{"data":[` + personJSON(pnr, "Ingen") + `],"x":"` + strings.Repeat("a", maxSS12000Body) + `"}`)
		}, "", identity.ProtectionUnknown, errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := ss12000test.New(t, testToken)
			tc.setup(srv)
			s := newSS12000(t, srv, func(c *SS12000Config) { c.Method = tc.method })
			got, err := s.Status(bg, person(t, pnr))
			if got != tc.want {
				t.Errorf("Status = %v, want %v", got, tc.want)
			}
			switch {
			case tc.wantErr == nil && err != nil:
				t.Errorf("Status error = %v, want nil", err)
			case tc.wantErr != nil && err == nil:
				t.Errorf("Status error = nil, want an error")
			case tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Errorf("Status error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				assertNoNumberInText(t, "error", err.Error())
				if strings.Contains(err.Error(), testToken) {
					t.Error("error holds the token")
				}
			}
			wantReq := "POST /persons/lookup"
			if tc.method == MethodQuery {
				wantReq = "GET /persons"
			}
			if got := srv.LastRequest(); got != wantReq {
				t.Errorf("request = %q, want %q", got, wantReq)
			}
		})
	}
}

// errAny stands for any error in a table.
var errAny = errors.New("any error")

func TestSS12000NoPersonalNumber(t *testing.T) {
	t.Parallel()
	srv := ss12000test.New(t, testToken)
	s := newSS12000(t, srv, nil)
	got, err := s.Status(bg, person(t, ""))
	if !errors.Is(err, ErrMissing) || got != identity.ProtectionUnknown {
		t.Errorf("Status = %v, %v; want unknown, ErrMissing", got, err)
	}
	if srv.Requests() != 0 {
		t.Errorf("sent %d requests without a number", srv.Requests())
	}
}

func TestSS12000BearerToken(t *testing.T) {
	t.Parallel()
	srv := ss12000test.New(t, testToken)
	srv.Set(testNumbers[0], "Sekretessmarkering")

	good := newSS12000(t, srv, nil)
	if got, err := good.Status(bg, person(t, testNumbers[0])); err != nil || got != identity.ProtectionSekretessmarkering {
		t.Errorf("with the token: Status = %v, %v; want sekretessmarkering", got, err)
	}
	bad := newSS12000(t, srv, func(c *SS12000Config) { c.BearerTokenFile = tokenFile(t, "wrong-token") })
	got, err := bad.Status(bg, person(t, testNumbers[0]))
	if err == nil || got != identity.ProtectionUnknown || !strings.Contains(err.Error(), "401") {
		t.Errorf("with a wrong token: Status = %v, %v; want unknown and status 401", got, err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong-token") {
		t.Error("error holds the token")
	}
}

func TestSS12000ClientCertificate(t *testing.T) {
	t.Parallel()
	srv := ss12000test.New(t, "", ss12000test.WithClientCert())
	srv.Set(testNumbers[0], "Skyddad folkbokföring")

	withCert := newSS12000(t, srv, func(c *SS12000Config) {
		c.BearerTokenFile = ""
		c.ClientCert = srv.ClientCertificate()
	})
	if got, err := withCert.Status(bg, person(t, testNumbers[0])); err != nil || got != identity.ProtectionSkyddadFolkbokforing {
		t.Errorf("with the client certificate: Status = %v, %v; want skyddad folkbokföring", got, err)
	}

	// A token alone does not get past the TLS handshake.
	tokenOnly := newSS12000(t, srv, nil)
	got, err := tokenOnly.Status(bg, person(t, testNumbers[0]))
	if err == nil || got != identity.ProtectionUnknown {
		t.Errorf("without a client certificate: Status = %v, %v; want an error", got, err)
	}
	if err != nil {
		assertNoNumberInText(t, "error", err.Error())
	}

	// The client the source builds refuses TLS below 1.2.
	tr := withCert.client.Transport.(*http.Transport)
	if tr.TLSClientConfig.MinVersion < tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2 or later", tr.TLSClientConfig.MinVersion)
	}
	// An untrusted server is refused.
	untrusting := newSS12000(t, srv, func(c *SS12000Config) {
		c.ClientCert = srv.ClientCertificate()
		c.RootCAs = nil // the system pool does not know the test CA
	})
	if _, err := untrusting.Status(bg, person(t, testNumbers[0])); err == nil {
		t.Error("a server with an untrusted certificate was accepted")
	}
}

func TestSS12000Cache(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		ttl          time.Duration
		advance      time.Duration
		wantRequests int
	}{
		{"hit", time.Minute, 0, 1},
		{"hit just before expiry", time.Minute, time.Minute - time.Second, 1},
		{"expired", time.Minute, time.Minute, 2},
		{"disabled", 0, 0, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := ss12000test.New(t, testToken)
			srv.Set(testNumbers[0], "Sekretessmarkering")
			clock := &fakeClock{t: testNow}
			s := newSS12000(t, srv, func(c *SS12000Config) { c.CacheTTL = tc.ttl; c.Now = clock.Now })
			for i := range 2 {
				got, err := s.Status(bg, person(t, testNumbers[0]))
				if err != nil || got != identity.ProtectionSekretessmarkering {
					t.Fatalf("Status %d = %v, %v", i, got, err)
				}
				clock.Advance(tc.advance)
			}
			if got := srv.Requests(); got != tc.wantRequests {
				t.Errorf("requests = %d, want %d", got, tc.wantRequests)
			}
		})
	}
}

func TestSS12000CacheDoesNotKeepFailures(t *testing.T) {
	t.Parallel()
	srv := ss12000test.New(t, testToken)
	srv.Set(testNumbers[0], "Ingen")
	srv.SetFailing(503)
	s := newSS12000(t, srv, func(c *SS12000Config) { c.CacheTTL = time.Minute })
	if _, err := s.Status(bg, person(t, testNumbers[0])); err == nil {
		t.Fatal("Status succeeded on a failing server")
	}
	srv.SetFailing(0)
	if got, err := s.Status(bg, person(t, testNumbers[0])); err != nil || got != identity.ProtectionNone {
		t.Errorf("Status after recovery = %v, %v; want none", got, err)
	}
	if srv.Requests() != 2 {
		t.Errorf("requests = %d, want 2", srv.Requests())
	}
}

func TestSS12000CacheBounded(t *testing.T) {
	t.Parallel()
	srv := ss12000test.New(t, testToken)
	for _, n := range testNumbers {
		srv.Set(n, "Ingen")
	}
	s := newSS12000(t, srv, func(c *SS12000Config) { c.CacheTTL = time.Hour; c.CacheSize = 2 })
	for _, n := range testNumbers {
		if _, err := s.Status(bg, person(t, n)); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	size := len(s.cache)
	var keys bytes.Buffer
	for k := range s.cache {
		keys.Write(k[:])
	}
	s.mu.Unlock()
	if size != 2 {
		t.Errorf("cache holds %d answers, want 2", size)
	}
	assertNoTestNumber(t, "cache keys", keys.Bytes())
}

// TestSS12000Timeout: a slow API is a timeout failure through the
// Resolver, counted in the metrics, and the person is Unknown.
func TestSS12000Timeout(t *testing.T) {
	t.Parallel()
	srv := ss12000test.New(t, testToken)
	srv.Set(testNumbers[0], "Ingen")
	srv.SetDelay(time.Minute) // the server gives up when the client does
	s := newSS12000(t, srv, func(c *SS12000Config) { c.Timeout = 50 * time.Millisecond })
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Sources: []Source{s, &fakeSource{name: "other", outcome: saysNone}}, Metrics: m, SourceTimeout: 10 * time.Second}
	got, failures := r.Resolve(bg, person(t, testNumbers[0]))
	if got != identity.ProtectionUnknown {
		t.Errorf("Resolve = %v, want unknown", got)
	}
	if len(failures) != 1 || failures[0] != (Failure{Source: "ss12000", Reason: "timeout"}) {
		t.Errorf("failures = %v, want [{ss12000 timeout}]", failures)
	}
	if v := testutil.ToFloat64(m.failures.WithLabelValues("ss12000", "timeout")); v != 1 {
		t.Errorf("skolbro_protection_source_failures_total{ss12000,timeout} = %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.lookups.WithLabelValues("ss12000")); v != 1 {
		t.Errorf("skolbro_protection_lookups_total{ss12000} = %v, want 1", v)
	}
	// The error itself says timeout and nothing personal.
	_, err = s.Status(bg, person(t, testNumbers[0]))
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("Status error = %v, want ErrTimeout", err)
	} else {
		assertNoNumberInText(t, "error", err.Error())
	}
}

func TestNewSS12000Refuses(t *testing.T) {
	t.Parallel()
	good := tokenFile(t, testToken)
	tests := []struct {
		name string
		cfg  SS12000Config
	}{
		{"http URL", SS12000Config{BaseURL: "http://api.example.se/ss12000", BearerTokenFile: good}},
		{"no URL", SS12000Config{BearerTokenFile: good}},
		{"URL with query", SS12000Config{BaseURL: "https://api.example.se/?a=b", BearerTokenFile: good}},
		{"no credentials", SS12000Config{BaseURL: "https://api.example.se"}},
		{"missing token file", SS12000Config{BaseURL: "https://api.example.se", BearerTokenFile: filepath.Join(t.TempDir(), "none")}},
		{"empty token file", SS12000Config{BaseURL: "https://api.example.se", BearerTokenFile: tokenFile(t, " \n")}},
		{"two-line token file", SS12000Config{BaseURL: "https://api.example.se", BearerTokenFile: tokenFile(t, "a\nb")}},
		{"unknown method", SS12000Config{BaseURL: "https://api.example.se", BearerTokenFile: good, Method: "put"}},
		{"negative ttl", SS12000Config{BaseURL: "https://api.example.se", BearerTokenFile: good, CacheTTL: -time.Second}},
	}
	for _, tc := range tests {
		s, err := NewSS12000(tc.cfg)
		if err == nil {
			t.Errorf("%s: NewSS12000 = %v, want an error", tc.name, s)
			continue
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("%s: error holds the token", tc.name)
		}
	}
}
