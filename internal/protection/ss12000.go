package protection

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/skolbro/skolbro/internal/identity"
)

// Defaults of SS12000Config.
const (
	DefaultSS12000Timeout   = 2 * time.Second
	DefaultSS12000CacheTTL  = 60 * time.Second
	DefaultSS12000CacheSize = 10000
)

// Request methods of SS12000Config.Method.
const (
	// MethodLookup sends POST {base}/persons/lookup with the body
	// {"civicNos":["YYYYMMDDNNNN"]}: the number stays out of URLs and so
	// out of access logs and proxies. The default.
	MethodLookup = "lookup"
	// MethodQuery sends GET {base}/persons?civicNo=YYYYMMDDNNNN, for APIs
	// without the lookup endpoint. The number is then in the URL, where
	// the API's access log may keep it.
	MethodQuery = "query"
)

// maxSS12000Body bounds the response read: one or a few persons.
const maxSS12000Body = 1 << 20

// SS 12000 securityMarking values.
const (
	markingNone       = "Ingen"
	markingSekretess  = "Sekretessmarkering"
	markingSkyddad    = "Skyddad folkbokföring"
	ss12000CacheLabel = "skolbro-ss12000-cache-v1"
)

// SS12000Config configures the SS 12000 source.
type SS12000Config struct {
	// BaseURL is the API's base, e.g. https://api.example.se/ss12000/v2.0;
	// it must be https.
	BaseURL string
	// Method is MethodLookup (default) or MethodQuery.
	Method string
	// BearerTokenFile holds an access token, read once by NewSS12000 and
	// sent as "Authorization: Bearer". Optional if ClientCert is set.
	BearerTokenFile string
	// ClientCert authenticates the bridge with mutual TLS. Optional if
	// BearerTokenFile is set.
	ClientCert *tls.Certificate
	// RootCAs verifies the API's certificate; nil means the system pool.
	RootCAs *x509.CertPool
	// Timeout bounds one request (also with HTTPClient); zero means
	// DefaultSS12000Timeout.
	Timeout time.Duration
	// CacheTTL is how long an answer is reused; zero disables the cache.
	// The configuration's default is DefaultSS12000CacheTTL. A person
	// marked in SS 12000 may be released unmasked for up to this long.
	CacheTTL time.Duration
	// CacheSize bounds the cache; zero means DefaultSS12000CacheSize.
	CacheSize int
	// HTTPClient replaces the client NewSS12000 builds (TLS 1.2 or later,
	// Timeout, ClientCert, RootCAs, no redirects).
	HTTPClient *http.Client

	// Now and Rand replace the clock and the randomness of the cache's
	// key, for tests; nil means time.Now and crypto/rand.
	Now  func() time.Time
	Rand io.Reader
}

// SS12000 asks an SS 12000 API for a person's securityMarking (SS 12000
// version 2: Person.securityMarking, one of "Ingen", "Sekretessmarkering"
// and "Skyddad folkbokföring"). It finds the person by personal number
// (Person.civicNo), with the request Method names, and expects the API's
// list of persons, {"data":[Person]}.
//
// Any answer but exactly one person with that civicNo and a known marking
// is an error: a status other than 200, a body that is not such JSON, no
// person (ErrMissing), several persons, a person with another number, a
// missing or unknown marking, and a timeout (ErrTimeout). A person without
// a personal number cannot be looked up (ErrMissing).
//
// Answers are cached for CacheTTL, keyed by an HMAC of the number under a
// random key made at start, never by the number. It is safe for concurrent
// use.
type SS12000 struct {
	lookupURL string
	queryURL  string
	method    string
	token     string
	client    *http.Client
	timeout   time.Duration
	ttl       time.Duration
	now       func() time.Time

	cacheKey  []byte
	cacheSize int
	mu        sync.Mutex
	cache     map[[sha256.Size]byte]cached
}

type cached struct {
	level   identity.Protection
	expires time.Time
}

var _ Source = (*SS12000)(nil)

// NewSS12000 checks cfg, reads the token file and builds the source.
func NewSS12000(cfg SS12000Config) (*SS12000, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("protection: ss12000: base URL must be an https URL without query")
	}
	base := strings.TrimSuffix(u.String(), "/")
	s := &SS12000{
		lookupURL: base + "/persons/lookup",
		queryURL:  base + "/persons",
		method:    cfg.Method,
		client:    cfg.HTTPClient,
		ttl:       cfg.CacheTTL,
		now:       cfg.Now,
		cacheSize: cfg.CacheSize,
		cache:     map[[sha256.Size]byte]cached{},
	}
	switch s.method {
	case "":
		s.method = MethodLookup
	case MethodLookup, MethodQuery:
	default:
		return nil, errors.New("protection: ss12000: method must be lookup or query")
	}
	if cfg.BearerTokenFile != "" {
		b, err := os.ReadFile(cfg.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("protection: ss12000: bearer token file: %w", err)
		}
		s.token = strings.TrimSpace(string(b))
		if s.token == "" || strings.ContainsAny(s.token, "\r\n") {
			return nil, errors.New("protection: ss12000: bearer token file must hold one token")
		}
	}
	if s.token == "" && cfg.ClientCert == nil && cfg.HTTPClient == nil {
		return nil, errors.New("protection: ss12000: neither a bearer token nor a client certificate")
	}
	if cfg.CacheTTL < 0 {
		return nil, errors.New("protection: ss12000: negative cache ttl")
	}
	if s.cacheSize <= 0 {
		s.cacheSize = DefaultSS12000CacheSize
	}
	if s.now == nil {
		s.now = time.Now
	}
	r := cfg.Rand
	if r == nil {
		r = rand.Reader
	}
	s.cacheKey = make([]byte, 32)
	if _, err := io.ReadFull(r, s.cacheKey); err != nil {
		return nil, fmt.Errorf("protection: ss12000: cache key: %w", err)
	}
	s.timeout = cfg.Timeout
	if s.timeout <= 0 {
		s.timeout = DefaultSS12000Timeout
	}
	if s.client == nil {
		s.client = newSS12000Client(s.timeout, cfg.ClientCert, cfg.RootCAs)
	}
	return s, nil
}

// newSS12000Client builds the HTTP client: TLS 1.2 or later, the client
// certificate if any, and no redirects (a redirect would carry the token
// and the number elsewhere).
func newSS12000Client(timeout time.Duration, cert *tls.Certificate, roots *x509.CertPool) *http.Client {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     tc,
			TLSHandshakeTimeout: timeout,
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        16,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Name returns "ss12000".
func (s *SS12000) Name() string { return SourceSS12000 }

// Status asks the API (or the cache) for the person's securityMarking.
// Like the register, it fails for a login without a personal number
// (ErrNoPersonalNumber) and for one whose number the mapper dropped,
// unless the kept number already shows the person protected
// (ErrPersonalNumberDropped); both wrap ErrMissing.
func (s *SS12000) Status(ctx context.Context, id *identity.Identity) (identity.Protection, error) {
	if id.PersonalNumber.IsZero() {
		if id.PersonalNumberDropped {
			return identity.ProtectionUnknown, fmt.Errorf("protection: ss12000: %w: %w", ErrPersonalNumberDropped, ErrMissing)
		}
		return identity.ProtectionUnknown, fmt.Errorf("protection: ss12000: nothing to look up: %w: %w", ErrNoPersonalNumber, ErrMissing)
	}
	pnr := id.PersonalNumber.RevealPersonalNumber()
	key := s.cacheKeyFor(pnr)
	level, ok := s.cached(key)
	if !ok {
		var err error
		if level, err = s.fetch(ctx, pnr); err != nil {
			return identity.ProtectionUnknown, err
		}
		s.store(key, level)
	}
	if id.PersonalNumberDropped && !level.Protected() {
		// The kept number is not marked; the dropped one may be.
		return identity.ProtectionUnknown, fmt.Errorf("protection: ss12000: %w: %w", ErrPersonalNumberDropped, ErrMissing)
	}
	return level, nil
}

// fetch sends one request and reads the answer, within the timeout also
// when the HTTP client was given.
func (s *SS12000) fetch(ctx context.Context, pnr string) (identity.Protection, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var req *http.Request
	var err error
	if s.method == MethodQuery {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, s.queryURL+"?"+url.Values{"civicNo": {pnr}}.Encode(), nil)
	} else {
		body, _ := json.Marshal(struct {
			CivicNos []string `json:"civicNos"`
		}{[]string{pnr}})
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, s.lookupURL, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if err != nil {
		return identity.ProtectionUnknown, errors.New("protection: ss12000: cannot build the request")
	}
	req.Header.Set("Accept", "application/json")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return identity.ProtectionUnknown, requestError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxSS12000Body))
		return identity.ProtectionUnknown, fmt.Errorf("protection: ss12000: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSS12000Body+1))
	if err != nil {
		return identity.ProtectionUnknown, requestError(ctx, err)
	}
	if len(b) > maxSS12000Body {
		return identity.ProtectionUnknown, errors.New("protection: ss12000: response too large")
	}
	return parsePersons(b, pnr)
}

// requestError makes a fixed error of a transport error. The *url.Error's
// URL is dropped: with MethodQuery it holds the number.
func requestError(ctx context.Context, err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("protection: ss12000: %w", ErrTimeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("protection: ss12000: request failed: %w", err)
}

// persons is the part of SS 12000's list of persons the source reads.
type persons struct {
	Data *[]struct {
		CivicNo *struct {
			Value string `json:"value"`
		} `json:"civicNo"`
		SecurityMarking *string `json:"securityMarking"`
	} `json:"data"`
}

// parsePersons reads the marking of the one person with civic number pnr.
func parsePersons(b []byte, pnr string) (identity.Protection, error) {
	var p persons
	if err := json.Unmarshal(b, &p); err != nil || p.Data == nil {
		// The decoder's message may quote the body; it is not kept.
		return identity.ProtectionUnknown, errors.New("protection: ss12000: response is not a list of persons")
	}
	switch n := len(*p.Data); {
	case n == 0:
		return identity.ProtectionUnknown, fmt.Errorf("protection: ss12000: no such person: %w", ErrMissing)
	case n > 1:
		return identity.ProtectionUnknown, errors.New("protection: ss12000: several persons for one number")
	}
	person := (*p.Data)[0]
	// A server that ignores the filter answers with someone else.
	if person.CivicNo == nil || strings.ReplaceAll(person.CivicNo.Value, "-", "") != pnr {
		return identity.ProtectionUnknown, errors.New("protection: ss12000: the person returned has another civic number")
	}
	if person.SecurityMarking == nil {
		return identity.ProtectionUnknown, errors.New("protection: ss12000: person without securityMarking")
	}
	switch *person.SecurityMarking {
	case markingNone:
		return identity.ProtectionNone, nil
	case markingSekretess:
		return identity.ProtectionSekretessmarkering, nil
	case markingSkyddad:
		return identity.ProtectionSkyddadFolkbokforing, nil
	default:
		return identity.ProtectionUnknown, errors.New("protection: ss12000: unknown securityMarking value")
	}
}

func (s *SS12000) cacheKeyFor(pnr string) [sha256.Size]byte {
	m := hmac.New(sha256.New, s.cacheKey)
	m.Write([]byte(ss12000CacheLabel))
	m.Write([]byte(pnr))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

func (s *SS12000) cached(key [sha256.Size]byte) (identity.Protection, bool) {
	if s.ttl <= 0 {
		return identity.ProtectionUnknown, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cache[key]
	if !ok {
		return identity.ProtectionUnknown, false
	}
	if !s.now().Before(c.expires) {
		delete(s.cache, key)
		return identity.ProtectionUnknown, false
	}
	return c.level, true
}

// store keeps an answer. A full cache first drops expired answers, then,
// if still full, arbitrary ones (map order) until there is room.
func (s *SS12000) store(key [sha256.Size]byte, level identity.Protection) {
	if s.ttl <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if _, ok := s.cache[key]; !ok && len(s.cache) >= s.cacheSize {
		for k, c := range s.cache {
			if !now.Before(c.expires) {
				delete(s.cache, k)
			}
		}
		for k := range s.cache {
			if len(s.cache) < s.cacheSize {
				break
			}
			delete(s.cache, k)
		}
	}
	s.cache[key] = cached{level: level, expires: now.Add(s.ttl)}
}
