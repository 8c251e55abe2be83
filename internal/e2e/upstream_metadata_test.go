package e2e

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/fedmeta"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/metrics"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/testidp"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// idpMetadataWith is the school IdP's metadata listing certs as its
// signing keys, in order.
func idpMetadataWith(t *testing.T, idp *testidp.IdP, certs ...*x509.Certificate) []byte {
	t.Helper()
	md, err := idp.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(md); err != nil {
		t.Fatal(err)
	}
	kd := doc.FindElement("//KeyDescriptor")
	parent := kd.Parent()
	at := kd.Index()
	parent.RemoveChild(kd)
	for i, c := range certs {
		k := kd.Copy()
		k.FindElement(".//X509Certificate").SetText(base64.StdEncoding.EncodeToString(c.Raw))
		parent.InsertChildAt(at+i, k)
	}
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCase40_UpstreamMetadataURLRollover serves the school IdP's metadata
// from a URL the bridge fetches over a pinned TLS connection, and walks an
// IdP signing key rollover as ADFS does it, without a restart or reload
// (issue 17 item 2, SECURITY.md cases 39 and 40): the IdP announces its
// next key, the bridge picks it up on its own refresh, the IdP switches,
// and the old key is retired. A login succeeds at every step; after the
// retirement the old key is refused. When the URL then fails, the last
// good copy keeps serving, also for a bridge started during the outage.
func TestCase40_UpstreamMetadataURLRollover(t *testing.T) {
	var served atomic.Pointer[[]byte]
	mdSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := served.Load()
		if b == nil {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Write(*b)
	}))
	defer mdSrv.Close()
	pin := fedmeta.Pin(mdSrv.Certificate().RawSubjectPublicKeyInfo)
	serve := func(b []byte) { served.Store(&b) }

	var oldCert *x509.Certificate
	e := startLiveEnvWith(t, 1, memoryStore, func(d *demo.Demo) {
		oldCert = d.IdP.Signer.Pair().Cert
		serve(idpMetadataWith(t, d.IdP, oldCert))
		cfg := filepath.Join(d.Dir, "skolbro.yaml")
		b, err := os.ReadFile(cfg)
		must(t, err)
		const file = "    metadata: upstream/school-idp.xml\n"
		if !strings.Contains(string(b), file) {
			t.Fatal("the demo configuration changed: no upstream metadata line")
		}
		must(t, os.WriteFile(cfg, []byte(strings.Replace(string(b), file,
			"    metadata_url: "+mdSrv.URL+"/FederationMetadata.xml\n"+
				"    metadata_tls_pins: [\""+pin+"\"]\n"+
				"    metadata_min_refresh: 100ms\n    metadata_max_refresh: 100ms\n", 1)), 0o600))
	})
	next, err := keys.Generate("school IdP next signing key (TEST ONLY)", keys.RSA2048, time.Now())
	must(t, err)
	nextSigner, err := xmlsig.NewSigner(next)
	must(t, err)
	oldSigner := e.demo.IdP.Signer
	sp := func() []*x509.Certificate { return e.lives[0].Organisers()[0].Upstreams[0].SP.IdPCerts() }
	waitCerts := func(want ...*x509.Certificate) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			got := sp()
			same := len(got) == len(want)
			for i := range got {
				same = same && got[i].Equal(want[i])
			}
			if same {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the bridge trusts %d IdP keys after 15 s, want %d", len(got), len(want))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	login := func(step string, ok bool) {
		t.Helper()
		err := e.tryLogin(context.Background(), "learning-app", "anna.a")
		if ok && err != nil {
			t.Fatalf("%s: login failed: %v", step, err)
		}
		if !ok && err == nil {
			t.Fatalf("%s: login accepted", step)
		}
	}

	login("before", true)
	serve(idpMetadataWith(t, e.demo.IdP, oldCert, next.Cert))
	waitCerts(oldCert, next.Cert)
	login("next key announced, old key signing", true)
	e.demo.IdP.Signer = nextSigner
	login("switched to the next key", true)
	serve(idpMetadataWith(t, e.demo.IdP, next.Cert))
	waitCerts(next.Cert)
	login("old key retired", true)
	e.demo.IdP.Signer = oldSigner
	login("signed by the retired key", false)
	e.demo.IdP.Signer = nextSigner

	// Case 39: the URL fails; the last good copy serves.
	served.Store(nil)
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := e.lives[0].Organisers()[0].Federation.Status()
		if len(st) == 1 && st[0].LastError != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failing URL was not noticed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	login("metadata URL down", true)
	reloads, err := metrics.NewReloads(prometheus.NewRegistry())
	must(t, err)
	_, live, err := e.demo.LiveHandler(zerolog.Nop(), store.NewMemory(nil), reloads)
	if err != nil {
		t.Fatalf("a bridge started while the URL is down: %v", err)
	}
	defer live.Close()
	if got := live.Organisers()[0].Upstreams[0].SP.IdPCerts(); len(got) != 1 || !got[0].Equal(next.Cert) {
		t.Errorf("a bridge started while the URL is down trusts %d keys, want the last good copy's", len(got))
	}
}
