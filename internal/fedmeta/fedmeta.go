// Package fedmeta loads signed SAML metadata aggregates from federation
// operators (Skolfederation, SWAMID, eduGAIN through FIDUS) and signs the
// bridge's own metadata.
//
// Nothing in an aggregate is used before its enveloped signature on the
// root element has verified with the operator's certificate, and only the
// verified bytes are decoded. An aggregate without validUntil, or past it,
// is refused. When a refresh fails, the last good copy on disk is used,
// verified again on every read and still bound by its own validUntil
// (SECURITY.md case 39).
//
// Errors carry one of a few fixed reasons (see Reason), usable as a metric
// label and safe to log: no metadata content is ever put into an error.
package fedmeta

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// Defaults for the zero values of Source's fields.
const (
	DefaultMaxBytes   = 64 << 20
	DefaultMinRefresh = 10 * time.Minute
	DefaultMaxRefresh = 4 * time.Hour
	// DefaultHTTPTimeout bounds one download with the default client;
	// large aggregates on slow links need more than a few seconds.
	DefaultHTTPTimeout = 2 * time.Minute
	maxRedirects       = 5
)

// Fixed reasons, as Reason returns them and metrics label them.
const (
	ReasonUnreachable  = "unreachable"
	ReasonTooLarge     = "too_large"
	ReasonBadSignature = "bad_signature"
	ReasonExpired      = "expired"
	ReasonNoValidUntil = "no_valid_until"
	ReasonMalformed    = "malformed"
	// ReasonCacheWrite: the aggregate verified but the last-good copy could
	// not be saved. The aggregate is still used.
	ReasonCacheWrite = "cache_write"
	// ReasonConfig: the Source itself is misconfigured.
	ReasonConfig = "config"
)

// reasonError is a failure class; its text is the fixed reason alone, as
// the errors that wrap it name the package and the source.
type reasonError string

func (e reasonError) Error() string { return string(e) }

// Sentinel errors, one per reason. Errors from this package wrap exactly one
// of them; test with errors.Is or read the label with Reason.
var (
	ErrUnreachable  error = reasonError(ReasonUnreachable)
	ErrTooLarge     error = reasonError(ReasonTooLarge)
	ErrBadSignature error = reasonError(ReasonBadSignature)
	ErrExpired      error = reasonError(ReasonExpired)
	ErrNoValidUntil error = reasonError(ReasonNoValidUntil)
	ErrMalformed    error = reasonError(ReasonMalformed)
	ErrCacheWrite   error = reasonError(ReasonCacheWrite)
	ErrConfig       error = reasonError(ReasonConfig)
)

// Reason returns the fixed reason an error from this package carries, ""
// for nil, and "unknown" for an error from elsewhere.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var r reasonError
	if errors.As(err, &r) {
		return string(r)
	}
	return "unknown"
}

// Source is one federation metadata aggregate and how to trust it.
type Source struct {
	// Name identifies the source in errors, status, metrics and the cache
	// file name: letters, digits, '.', '_' and '-'.
	Name string
	// URL is https://..., file://... or a plain file path. Plain http is
	// refused: the signature protects integrity, but TLS keeps an attacker
	// on the path from replaying an older, still valid aggregate.
	URL string
	// SigningCert is the operator's metadata signing certificate, obtained
	// out of band. It is the only key trusted for this source.
	SigningCert *x509.Certificate
	// CacheDir holds the last good copy; empty disables it.
	CacheDir string
	// MinRefresh and MaxRefresh bound the published cacheDuration when
	// scheduling the next refresh (defaults DefaultMinRefresh and
	// DefaultMaxRefresh). A missing cacheDuration means MaxRefresh.
	MinRefresh, MaxRefresh time.Duration
	// HTTPClient fetches https URLs; nil means a client with
	// DefaultHTTPTimeout. Redirects are followed to https URLs only.
	HTTPClient *http.Client
	// MaxBytes bounds the document (default DefaultMaxBytes).
	MaxBytes int64
	// Now is the clock (default time.Now).
	Now func() time.Time
	// TLSPins, for a source without a SigningCert, are the only keys the
	// https server may present: "sha256/" and the standard base64 of the
	// SHA-256 of its certificate's SubjectPublicKeyInfo (as curl's
	// --pinnedpubkey and HPKP write it). The document is then trusted
	// because it came over that connection, and no signature is needed:
	// what a school IdP such as ADFS or Entra ID publishes is signed, if at
	// all, by the very key that rolls over. The last-good copy on disk is
	// the bridge's own file.
	TLSPins []string
	// MaxAge, above zero, accepts a document without validUntil (ADFS and
	// Entra ID publish none) as valid for MaxAge after it was fetched.
	MaxAge time.Duration
	// Private keeps the source out of Entity and Scopes (an upstream IdP's
	// own metadata, not a federation's): read it with EntityIn.
	Private bool
}

// Aggregate is a verified, unexpired metadata document.
type Aggregate struct {
	// Source is the Name of the Source it came from.
	Source string
	// ValidUntil is the root element's validUntil.
	ValidUntil time.Time
	// CacheDuration is the root element's cacheDuration as published; zero
	// when absent.
	CacheDuration time.Duration
	// NextRefresh is when the source should be fetched again: CacheDuration
	// bounded by MinRefresh and MaxRefresh, and never after ValidUntil.
	NextRefresh time.Time
	// Entities maps entityID to its descriptor. Entities with their own
	// validUntil in the past, without an entityID, that do not decode, or
	// whose entityID appeared earlier in the document are left out and
	// counted in Skipped. The descriptors are shared: do not modify them.
	Entities map[string]*saml.EntityDescriptor
	// Scopes maps an IdP's entityID to the literal shibmd:Scope values of
	// its IDPSSODescriptor (crewjam's types drop Extensions). Scopes marked
	// regexp="true" are left out.
	Scopes map[string][]string
	// SigningMethods maps a vendor's (an SP's) entityID to the
	// alg:SigningMethod algorithms its metadata announces, in its order of
	// preference (samlmeta.EntitySigningMethods); absent when none.
	SigningMethods map[string][]string
	// Skipped counts the entities left out of Entities.
	Skipped int
	// Raw is the document exactly as fetched and verified; it is what the
	// last-good copy on disk holds.
	Raw []byte
	// FromCache reports that this is the last-good copy from CacheDir
	// because the source itself failed.
	FromCache bool
	// Problem, when not nil, is a failure that did not prevent use: why the
	// source was not used (FromCache is true), or that the verified copy
	// could not be saved to CacheDir (ErrCacheWrite).
	Problem error
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate reports every configuration problem of s at once. It changes
// nothing.
func (s *Source) Validate() error {
	var errs []error
	if !namePattern.MatchString(s.Name) {
		errs = append(errs, errors.New("name: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"))
	}
	if _, _, err := s.location(); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	}
	switch {
	case s.SigningCert == nil && len(s.TLSPins) == 0:
		errs = append(errs, errors.New("signing certificate: missing (or pin the https server's key)"))
	case len(s.TLSPins) > 0:
		if u, _, _ := s.location(); u == "" {
			errs = append(errs, errors.New("tls pins: the URL must be https"))
		}
		for _, p := range s.TLSPins {
			if _, err := parsePin(p); err != nil {
				errs = append(errs, fmt.Errorf("tls pin %q: %w", p, err))
			}
		}
	}
	if s.MinRefresh < 0 || s.MaxRefresh < 0 || s.MaxBytes < 0 {
		errs = append(errs, errors.New("refresh bounds and size limit must not be negative"))
	}
	if s.minRefresh() > s.maxRefresh() {
		errs = append(errs, errors.New("min refresh is longer than max refresh"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("fedmeta: source %q: %w: %w", s.Name, ErrConfig, errors.Join(errs...))
	}
	return nil
}

func (s *Source) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Source) maxBytes() int64 {
	if s.MaxBytes > 0 {
		return s.MaxBytes
	}
	return DefaultMaxBytes
}

func (s *Source) minRefresh() time.Duration {
	if s.MinRefresh > 0 {
		return s.MinRefresh
	}
	return DefaultMinRefresh
}

func (s *Source) maxRefresh() time.Duration {
	if s.MaxRefresh > 0 {
		return s.MaxRefresh
	}
	return DefaultMaxRefresh
}

// location returns the https URL or the file path of the source.
func (s *Source) location() (httpsURL, path string, err error) {
	if s.URL == "" {
		return "", "", errors.New("missing")
	}
	if !strings.Contains(s.URL, "://") {
		return "", s.URL, nil
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		return "", "", errors.New("does not parse")
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return "", "", errors.New("https URL without a host")
		}
		return s.URL, "", nil
	case "file":
		if (u.Host != "" && u.Host != "localhost") || u.Path == "" {
			return "", "", errors.New("file URL must be file:///absolute/path")
		}
		return "", u.Path, nil
	}
	return "", "", errors.New("scheme must be https or file")
}

// Load fetches the aggregate, verifies it and, on success, saves it as the
// last-good copy. When the source fails for any reason, the last-good copy
// is verified again and returned with FromCache set and Problem holding the
// source's failure. When neither is usable, the error carries the source's
// failure reason.
func (s *Source) Load(ctx context.Context) (*Aggregate, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	now := s.now()
	b, err := s.fetch(ctx)
	var agg *Aggregate
	if err == nil {
		agg, err = s.decode(b, now)
	}
	if err == nil {
		if werr := s.writeCache(b); werr != nil {
			agg.Problem = werr
		}
		return agg, nil
	}
	fetchErr := fmt.Errorf("fedmeta: source %q: %w", s.Name, err)

	cached, cerr := s.loadCache(now)
	if cerr != nil {
		return nil, errors.Join(fetchErr, cerr)
	}
	cached.FromCache = true
	cached.Problem = fetchErr
	// Retry the source soon; the refresher backs off further.
	cached.NextRefresh = now.Add(s.minRefresh())
	return cached, nil
}

// fetch reads the document from the source, bounded by MaxBytes.
func (s *Source) fetch(ctx context.Context) ([]byte, error) {
	httpsURL, path, err := s.location()
	if err != nil {
		return nil, ErrConfig
	}
	if path != "" {
		return readFileBounded(path, s.maxBytes())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, httpsURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml;q=0.9")
	resp, err := s.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: HTTP status %d", ErrUnreachable, resp.StatusCode)
	}
	if resp.ContentLength > s.maxBytes() {
		return nil, ErrTooLarge
	}
	return readBounded(resp.Body, s.maxBytes())
}

// client returns the HTTP client with a redirect policy that stays on https.
// It is a copy, so that a caller's client is not changed.
func (s *Source) client() *http.Client {
	c := &http.Client{Timeout: DefaultHTTPTimeout}
	if s.HTTPClient != nil {
		cp := *s.HTTPClient
		c = &cp
	}
	if len(s.TLSPins) > 0 {
		c.Transport = pinnedTransport(s.TLSPins)
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" {
			return errors.New("redirect to a non-https URL")
		}
		if len(via) >= maxRedirects {
			return errors.New("too many redirects")
		}
		return nil
	}
	return c
}

func readBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	if int64(len(b)) > limit {
		return nil, ErrTooLarge
	}
	return b, nil
}

func readFileBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > limit {
		return nil, ErrTooLarge
	}
	return readBounded(f, limit)
}

// decode verifies b and turns it into an Aggregate as of now.
func (s *Source) decode(b []byte, now time.Time) (*Aggregate, error) {
	return s.decodeAt(b, now, now)
}

// decodeAt is decode for a document fetched at fetched (the last-good
// copy's time, for MaxAge).
func (s *Source) decodeAt(b []byte, now, fetched time.Time) (*Aggregate, error) {
	var root *etree.Element
	var err error
	if s.SigningCert != nil {
		root, err = verifyDocument(b, []*x509.Certificate{s.SigningCert}, now)
	} else {
		root, err = readDocument(b) // trusted by its pinned TLS connection
	}
	if err != nil {
		return nil, err
	}
	agg, err := aggregateFrom(root, now, fetched, s.MaxAge)
	if err != nil {
		return nil, err
	}
	agg.Source = s.Name
	agg.Raw = b
	agg.NextRefresh = nextRefresh(now, agg.CacheDuration, agg.ValidUntil, s.minRefresh(), s.maxRefresh())
	return agg, nil
}

// nextRefresh bounds the published cacheDuration (MaxRefresh when absent)
// and, when validUntil comes sooner, refreshes at three quarters of the time
// left so that a good copy replaces this one before it expires.
func nextRefresh(now time.Time, cacheDuration time.Duration, validUntil time.Time, lo, hi time.Duration) time.Time {
	d := cacheDuration
	if d <= 0 {
		d = hi
	}
	d = min(max(d, lo), hi)
	if left := validUntil.Sub(now); left < d {
		d = max(left*3/4, lo)
	}
	return now.Add(d)
}

func (s *Source) cachePath() string {
	return filepath.Join(s.CacheDir, s.Name+".xml")
}

// writeCache replaces the last-good copy atomically: write a temporary file
// in the same directory, sync it, rename it over the old copy.
func (s *Source) writeCache(b []byte) error {
	if s.CacheDir == "" {
		return nil
	}
	fail := func(err error) error { return fmt.Errorf("fedmeta: source %q: %w: %w", s.Name, ErrCacheWrite, err) }
	if err := os.MkdirAll(s.CacheDir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.CacheDir, "."+s.Name+".*.tmp")
	if err != nil {
		return fail(err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.cachePath())
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fail(err)
	}
	// Make the rename durable; not every platform can sync a directory.
	if d, err := os.Open(s.CacheDir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// loadCache reads and verifies the last-good copy as of now.
func (s *Source) loadCache(now time.Time) (*Aggregate, error) {
	if s.CacheDir == "" {
		return nil, errors.New("fedmeta: no last-good copy configured")
	}
	b, err := readFileBounded(s.cachePath(), s.maxBytes())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errors.New("fedmeta: no last-good copy on disk")
		}
		return nil, fmt.Errorf("fedmeta: last-good copy: %s", Reason(err))
	}
	fetched := now
	if fi, err := os.Stat(s.cachePath()); err == nil {
		fetched = fi.ModTime()
	}
	agg, err := s.decodeAt(b, now, fetched)
	if err != nil {
		// Only the reason: the source's failure is the error callers see.
		return nil, fmt.Errorf("fedmeta: last-good copy: %s", Reason(err))
	}
	return agg, nil
}
