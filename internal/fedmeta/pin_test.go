package fedmeta

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/keys"
)

// A source trusted by a pinned TLS key: an unsigned document without
// validUntil (as ADFS publishes) is used for MaxAge; a server whose key is
// not pinned is refused, whatever its certificate; the last good copy
// serves while the server is down and expires MaxAge after it was fetched.
func TestCase39_PinnedTLSSource(t *testing.T) {
	c := newClock()
	doc := aggregateXML(aggOpts{entities: 2}) // unsigned, no validUntil
	m := newMetaServer(t, doc)
	pinned := Pin(m.Certificate().RawSubjectPublicKeyInfo)
	src := func(url string, pins ...string) *Source {
		return &Source{Name: "upstream-school", URL: url, TLSPins: pins, CacheDir: t.TempDir(), MaxAge: 24 * time.Hour, Now: c.Now}
	}

	s := src(m.URL, pinned)
	agg, err := s.Load(context.Background())
	if err != nil {
		t.Fatalf("pinned server: %v", err)
	}
	if len(agg.Entities) != 2 || agg.FromCache || !agg.ValidUntil.Equal(c.Now().Add(24*time.Hour)) {
		t.Errorf("aggregate: %d entities, from cache %v, valid until %v", len(agg.Entities), agg.FromCache, agg.ValidUntil)
	}

	// Another server with another key, serving the same document.
	k, err := keys.Generate("other", keys.P256, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(doc) }))
	other.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{k.Cert.Raw}, PrivateKey: k.Signer}}}
	other.StartTLS()
	defer other.Close()
	if _, err := src(other.URL, pinned).Load(context.Background()); !errors.Is(err, ErrUnreachable) {
		t.Errorf("a server with an unpinned key: %v, want unreachable", err)
	}
	noAge := src(m.URL, pinned)
	noAge.MaxAge = 0
	if _, err := noAge.Load(context.Background()); !errors.Is(err, ErrNoValidUntil) {
		t.Errorf("no validUntil and no MaxAge: %v", err)
	}

	m.set(500, nil)
	agg, err = s.Load(context.Background())
	if err != nil || !agg.FromCache || len(agg.Entities) != 2 {
		t.Fatalf("server down: %v (from cache %v)", err, agg != nil && agg.FromCache)
	}
	c.Set(c.Now().Add(25 * time.Hour))
	if _, err := s.Load(context.Background()); err == nil {
		t.Error("a last good copy older than MaxAge was used")
	}

	for _, bad := range []*Source{
		{Name: "x", URL: m.URL}, // neither key nor pin
		{Name: "x", URL: "file:///tmp/md.xml", TLSPins: []string{pinned}}, // a pin needs https
		{Name: "x", URL: m.URL, TLSPins: []string{"sha1/AAAA"}},           // not a SHA-256 pin
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}
