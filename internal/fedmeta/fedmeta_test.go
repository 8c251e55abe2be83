package fedmeta

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skolbro/skolbro/internal/xmlsig"
)

// TestCase39_LoadRefusesBadAggregates covers what Source.Load accepts and refuses from an https
// source without a last-good copy, and which fixed reason a refusal has.
func TestCase39_LoadRefusesBadAggregates(t *testing.T) {
	t.Parallel()
	c := newClock()
	now := c.Now()
	week := now.Add(7 * 24 * time.Hour)
	operator := signerFor(t, testKeys().operator)
	valid := signedAggregate(t, now, 6)

	cases := []struct {
		name       string
		status     int
		body       []byte
		maxBytes   int64
		wantReason string
	}{
		{name: "valid aggregate", body: valid},
		{
			name:       "tampered after signing",
			body:       bytes.Replace(valid, []byte("https://sp1.example.com/saml/acs"), []byte("https://evil.example.com/saml/acs"), 1),
			wantReason: ReasonBadSignature,
		},
		{
			name:       "signed by another key",
			body:       signXML(t, aggregateXML(aggOpts{entities: 6, id: "_a", validUntil: week}), signerFor(t, testKeys().other)),
			wantReason: ReasonBadSignature,
		},
		{
			name:       "signed by another key carrying the operator's certificate",
			body:       bytes.Replace(signXML(t, aggregateXML(aggOpts{entities: 6, id: "_a", validUntil: week}), signerFor(t, testKeys().other)), []byte(b64(testKeys().other.Cert.Raw)), []byte(b64(testKeys().operator.Cert.Raw)), 1),
			wantReason: ReasonBadSignature,
		},
		{
			name:       "expired",
			body:       signXML(t, aggregateXML(aggOpts{entities: 6, id: "_a", validUntil: now.Add(-time.Second)}), operator),
			wantReason: ReasonExpired,
		},
		{
			name:       "valid until exactly now",
			body:       signXML(t, aggregateXML(aggOpts{entities: 6, id: "_a", validUntil: now}), operator),
			wantReason: ReasonExpired,
		},
		{
			name:       "without validUntil",
			body:       signXML(t, aggregateXML(aggOpts{entities: 6, id: "_a"}), operator),
			wantReason: ReasonNoValidUntil,
		},
		{
			name:       "unsigned",
			body:       aggregateXML(aggOpts{entities: 6, id: "_a", validUntil: week}),
			wantReason: ReasonBadSignature,
		},
		{
			name:       "RSA-SHA1 signature method",
			body:       bytes.Replace(valid, []byte("xmldsig-more#rsa-sha256"), []byte("xmldsig#rsa-sha1"), 1),
			wantReason: ReasonBadSignature,
		},
		{
			name:       "SHA-1 digest",
			body:       bytes.Replace(valid, []byte("xmlenc#sha256"), []byte("xmldsig#sha1"), 1),
			wantReason: ReasonBadSignature,
		},
		{
			name:       "a DOCTYPE is refused",
			body:       signXML(t, aggregateXML(aggOpts{entities: 2, id: "_a", validUntil: week, prolog: "<!DOCTYPE md:EntitiesDescriptor [<!ENTITY x \"y\">]>\n"}), operator),
			wantReason: ReasonMalformed,
		},
		{
			name:       "not metadata",
			body:       []byte(`<html xmlns="http://www.w3.org/1999/xhtml"><body>maintenance</body></html>`),
			wantReason: ReasonMalformed,
		},
		{
			name:       "not well-formed",
			body:       valid[:len(valid)/2],
			wantReason: ReasonMalformed,
		},
		{
			name:       "larger than MaxBytes",
			body:       valid,
			maxBytes:   int64(len(valid) - 1),
			wantReason: ReasonTooLarge,
		},
		{name: "exactly MaxBytes", body: valid, maxBytes: int64(len(valid))},
		{name: "HTTP error", status: http.StatusServiceUnavailable, body: valid, wantReason: ReasonUnreachable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newMetaServer(t, tc.body)
			if tc.status != 0 {
				srv.set(tc.status, tc.body)
			}
			src := srv.source(t, c)
			src.MaxBytes = tc.maxBytes
			agg, err := src.Load(t.Context())
			if got := Reason(err); got != tc.wantReason {
				t.Fatalf("Load: reason %q (%v), want %q", got, err, tc.wantReason)
			}
			cached, cerr := os.ReadFile(filepath.Join(src.CacheDir, "testfed.xml"))
			if tc.wantReason != "" {
				if agg != nil {
					t.Error("Load returned an aggregate with its error")
				}
				if cerr == nil {
					t.Error("a refused aggregate was written as the last-good copy")
				}
				return
			}
			if agg.FromCache || agg.Problem != nil {
				t.Errorf("FromCache %v, Problem %v: want a fresh copy", agg.FromCache, agg.Problem)
			}
			if !agg.ValidUntil.Equal(week) || agg.CacheDuration != time.Hour {
				t.Errorf("ValidUntil %v CacheDuration %v, want %v and 1h", agg.ValidUntil, agg.CacheDuration, week)
			}
			if len(agg.Entities) != 6 || agg.Skipped != 0 {
				t.Errorf("%d entities, %d skipped; want 6 and 0", len(agg.Entities), agg.Skipped)
			}
			sp := agg.Entities["https://sp1.example.com/saml"]
			if sp == nil || len(sp.SPSSODescriptors) != 1 || sp.SPSSODescriptors[0].AssertionConsumerServices[0].Location != "https://sp1.example.com/saml/acs" {
				t.Errorf("SP entity not decoded: %+v", sp)
			}
			idp := agg.Entities["https://idp0.example.se/idp"]
			if idp == nil || len(idp.IDPSSODescriptors) != 1 || len(idp.IDPSSODescriptors[0].KeyDescriptors) != 1 {
				t.Errorf("IdP entity not decoded: %+v", idp)
			}
			if diff := cmp.Diff([]string{"school0.example.se"}, agg.Scopes["https://idp0.example.se/idp"]); diff != "" {
				t.Errorf("scopes (-want +got):\n%s", diff)
			}
			wantAlgs := map[string][]string{"https://sp3.example.com/saml": {xmlsig.ECDSASHA256, xmlsig.RSASHA256}}
			if diff := cmp.Diff(wantAlgs, agg.SigningMethods); diff != "" {
				t.Errorf("signing methods (-want +got):\n%s", diff)
			}
			if cerr != nil || !bytes.Equal(cached, tc.body) {
				t.Errorf("last-good copy not written as served (%v)", cerr)
			}
		})
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestCase39_LastGoodCopy: when the source fails, the verified copy on disk is
// used until its own validUntil, and a bad aggregate never replaces it.
func TestCase39_LastGoodCopy(t *testing.T) {
	t.Parallel()
	c := newClock()
	start := c.Now()
	good := signedAggregate(t, start, 4)
	validUntil := start.Add(7 * 24 * time.Hour)
	srv := newMetaServer(t, good)
	src := srv.source(t, c)
	if _, err := src.Load(t.Context()); err != nil {
		t.Fatalf("first load: %v", err)
	}

	later := signXML(t, aggregateXML(aggOpts{entities: 4, id: "_x", validUntil: validUntil.Add(time.Hour)}), signerFor(t, testKeys().other))
	steps := []struct {
		name       string
		at         time.Time
		status     int
		body       []byte
		wantCache  bool
		wantReason string // of Problem, or of the error when wantErr
		wantErr    bool
	}{
		{name: "source unreachable uses the last-good copy", at: start.Add(time.Hour), status: 503, wantCache: true, wantReason: ReasonUnreachable},
		{name: "bad signature uses the last-good copy", at: start.Add(2 * time.Hour), status: 200, body: later, wantCache: true, wantReason: ReasonBadSignature},
		{name: "last second before validUntil", at: validUntil.Add(-time.Second), status: 503, wantCache: true, wantReason: ReasonUnreachable},
		{name: "at validUntil the copy is no longer used", at: validUntil, status: 503, wantErr: true, wantReason: ReasonUnreachable},
	}
	for _, st := range steps {
		c.Set(st.at)
		srv.set(st.status, st.body)
		agg, err := src.Load(t.Context())
		if st.wantErr {
			if err == nil || Reason(err) != st.wantReason {
				t.Fatalf("%s: err %v (reason %q), want reason %q", st.name, err, Reason(err), st.wantReason)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if agg.FromCache != st.wantCache || Reason(agg.Problem) != st.wantReason {
			t.Errorf("%s: FromCache %v Problem %q, want %v %q", st.name, agg.FromCache, Reason(agg.Problem), st.wantCache, st.wantReason)
		}
		if _, ok := agg.Entities["https://idp0.example.se/idp"]; !ok || !agg.ValidUntil.Equal(validUntil) {
			t.Errorf("%s: not the last-good aggregate", st.name)
		}
		if want := st.at.Add(src.MinRefresh); !agg.NextRefresh.Equal(want) {
			t.Errorf("%s: NextRefresh %v, want %v", st.name, agg.NextRefresh, want)
		}
	}
	onDisk, err := os.ReadFile(filepath.Join(src.CacheDir, "testfed.xml"))
	if err != nil || !bytes.Equal(onDisk, good) {
		t.Errorf("last-good copy changed on disk (%v)", err)
	}
}

// TestLastGoodCopyReverified: a copy on disk changed after it was saved
// is refused like any other input.
func TestLastGoodCopyReverified(t *testing.T) {
	t.Parallel()
	c := newClock()
	srv := newMetaServer(t, signedAggregate(t, c.Now(), 4))
	src := srv.source(t, c)
	if _, err := src.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(src.CacheDir, "testfed.xml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("https://sp1.example.com/saml/acs"), []byte("https://evil.example.com/saml/acs"), 1)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	srv.set(http.StatusBadGateway, nil)
	agg, err := src.Load(t.Context())
	if agg != nil || Reason(err) != ReasonUnreachable {
		t.Fatalf("Load = %v, %v; want no aggregate and reason unreachable", agg, err)
	}
	if !strings.Contains(err.Error(), "last-good copy: "+ReasonBadSignature) {
		t.Errorf("error %q does not say why the copy on disk was refused", err)
	}
}

// TestUnreachableWithoutCopy: no source and no usable copy is an error.
func TestUnreachableWithoutCopy(t *testing.T) {
	t.Parallel()
	c := newClock()
	closed := httptest.NewTLSServer(http.NotFoundHandler())
	closedURL, client := closed.URL, closed.Client()
	closed.Close()
	cases := []struct {
		name     string
		cacheDir string
	}{
		{name: "no cache directory configured"},
		{name: "empty cache directory", cacheDir: t.TempDir()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := &Source{
				Name: "down", URL: closedURL + "/md.xml", SigningCert: testKeys().operator.Cert,
				CacheDir: tc.cacheDir, HTTPClient: client, Now: c.Now,
			}
			agg, err := src.Load(t.Context())
			if agg != nil || !errors.Is(err, ErrUnreachable) || Reason(err) != ReasonUnreachable {
				t.Fatalf("Load = %v, %v; want no aggregate and ErrUnreachable", agg, err)
			}
		})
	}
}

// TestCacheDurationBounded: the next refresh honours cacheDuration within
// MinRefresh and MaxRefresh, and comes before validUntil.
func TestCacheDurationBounded(t *testing.T) {
	t.Parallel()
	c := newClock()
	now := c.Now()
	cases := []struct {
		name          string
		cacheDuration string
		validUntil    time.Duration
		want          time.Duration
	}{
		{name: "below MinRefresh", cacheDuration: "PT1M", validUntil: 48 * time.Hour, want: 15 * time.Minute},
		{name: "within bounds", cacheDuration: "PT1H", validUntil: 48 * time.Hour, want: time.Hour},
		{name: "above MaxRefresh", cacheDuration: "P7D", validUntil: 30 * 24 * time.Hour, want: 6 * time.Hour},
		{name: "absent means MaxRefresh", validUntil: 48 * time.Hour, want: 6 * time.Hour},
		{name: "validUntil sooner than cacheDuration", cacheDuration: "PT6H", validUntil: 2 * time.Hour, want: 90 * time.Minute},
		{name: "validUntil very soon still waits MinRefresh", cacheDuration: "PT6H", validUntil: 10 * time.Minute, want: 15 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := signXML(t, aggregateXML(aggOpts{entities: 2, id: "_a", validUntil: now.Add(tc.validUntil), cacheDuration: tc.cacheDuration}), signerFor(t, testKeys().operator))
			src := newMetaServer(t, body).source(t, c)
			agg, err := src.Load(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got := agg.NextRefresh.Sub(now); got != tc.want {
				t.Errorf("next refresh in %v, want %v", got, tc.want)
			}
		})
	}
}

// TestFileSource: file:// URLs and plain paths are read and verified like
// https sources.
func TestFileSource(t *testing.T) {
	t.Parallel()
	c := newClock()
	dir := t.TempDir()
	path := filepath.Join(dir, "federation.xml")
	if err := os.WriteFile(path, signedAggregate(t, c.Now(), 4), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, url  string
		wantReason string
	}{
		{name: "a file:// source", url: "file://" + path},
		{name: "a plain path", url: path},
		{name: "missing file", url: filepath.Join(dir, "missing.xml"), wantReason: ReasonUnreachable},
		{name: "file URL with a host", url: "file://example.org" + path, wantReason: ReasonConfig},
		{name: "plain http", url: "http://md.example.org/md.xml", wantReason: ReasonConfig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := &Source{Name: "file", URL: tc.url, SigningCert: testKeys().operator.Cert, Now: c.Now}
			agg, err := src.Load(t.Context())
			if Reason(err) != tc.wantReason {
				t.Fatalf("Load: %v, want reason %q", err, tc.wantReason)
			}
			if err == nil && len(agg.Entities) != 4 {
				t.Errorf("%d entities, want 4", len(agg.Entities))
			}
		})
	}
}

// TestRedirectToHTTPRefused: a redirect may not leave https.
func TestRedirectToHTTPRefused(t *testing.T) {
	t.Parallel()
	c := newClock()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(signedAggregate(t, c.Now(), 2))
	}))
	t.Cleanup(plain.Close)
	redir := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/md.xml", http.StatusFound))
	t.Cleanup(redir.Close)
	src := &Source{Name: "r", URL: redir.URL, SigningCert: testKeys().operator.Cert, HTTPClient: redir.Client(), Now: c.Now}
	if _, err := src.Load(t.Context()); Reason(err) != ReasonUnreachable {
		t.Fatalf("Load: %v, want reason unreachable", err)
	}
}

// TestEntitiesSkipped: entities that cannot be used are left out, the
// rest of the aggregate is kept.
func TestEntitiesSkipped(t *testing.T) {
	t.Parallel()
	c := newClock()
	now := c.Now()
	body := string(aggregateXML(aggOpts{entities: 4, id: "_a", validUntil: now.Add(time.Hour)}))
	// An expired entity, a duplicate of an earlier one, one without entityID.
	body = strings.Replace(body, `entityID="https://sp1.example.com/saml"`, `entityID="https://sp1.example.com/saml" validUntil="`+now.Add(-time.Minute).Format(time.RFC3339)+`"`, 1)
	body = strings.Replace(body, `entityID="https://sp3.example.com/saml"`, `entityID="https://idp0.example.se/idp"`, 1)
	body = strings.Replace(body, `entityID="https://idp2.example.se/idp"`, ``, 1)
	signed := signXML(t, []byte(body), signerFor(t, testKeys().operator))
	agg, err := newMetaServer(t, signed).source(t, c).Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if agg.Skipped != 3 || len(agg.Entities) != 1 {
		t.Fatalf("%d entities, %d skipped; want 1 and 3", len(agg.Entities), agg.Skipped)
	}
	if ed := agg.Entities["https://idp0.example.se/idp"]; ed == nil || len(ed.IDPSSODescriptors) != 1 {
		t.Error("the first occurrence of a duplicated entityID must win")
	}
}

// TestLargeAggregate: a signed aggregate of 3000 SP and IdP entities loads
// within the default bounds.
func TestLargeAggregate(t *testing.T) {
	t.Parallel()
	c := newClock()
	body := signedAggregate(t, c.Now(), 3000)
	t.Logf("aggregate of 3000 entities: %.1f MB", float64(len(body))/1e6)
	agg, err := newMetaServer(t, body).source(t, c).Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(agg.Entities) != 3000 || len(agg.Scopes) != 1500 {
		t.Errorf("%d entities and %d IdPs with scopes, want 3000 and 1500", len(agg.Entities), len(agg.Scopes))
	}
}

// TestValidate reports every problem at once.
func TestValidate(t *testing.T) {
	t.Parallel()
	err := (&Source{Name: "bad name", URL: "ftp://x", MinRefresh: time.Hour, MaxRefresh: time.Minute}).Validate()
	if Reason(err) != ReasonConfig {
		t.Fatalf("Validate: %v, want reason config", err)
	}
	for _, want := range []string{"name", "url", "signing certificate", "min refresh"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not mention %q", err, want)
		}
	}
}
