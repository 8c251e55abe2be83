package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	dsig "github.com/russellhaering/goxmldsig"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/skolbro/skolbro/internal/app"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/demovendor"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/metrics"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/ratelimit"
	"github.com/skolbro/skolbro/internal/server"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/testidp"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// world is everything around the bridge: the school IdP, the vendors and
// the transport every simulated browser shares. The IdP and the vendors
// answer in this process without a network hop (their cost is not what is
// measured, and sparing it leaves more CPU to the bridge); every request
// to the bridge goes over TCP, in-process or to --target alike.
type world struct {
	// kind is WorldRealistic or WorldLight.
	kind  string
	cfg   *config.Config
	base  *url.URL
	idp   *testidp.IdP
	saml  *demovendor.Vendor
	oidc  *demovendor.OIDCVendor
	users []string
	next  atomic.Uint64
	rt    *router
	// checkEvery: the SAML vendor checks every checkEvery-th response
	// with crewjam/saml, the others only for what a vendor reads first
	// (see samlACS). 0 or 1: every one.
	checkEvery uint64
	checked    atomic.Uint64
	// api is a client without cookies towards the bridge (metadata, the
	// OIDC vendor's back channel).
	api *http.Client
}

// loadWorld reads a directory WriteConfig prepared. target, when set, is
// where the bridge really listens, if not at the configuration's
// external_url.
func loadWorld(dir string, target *url.URL) (*world, error) {
	cfg, err := config.Load(filepath.Join(dir, configFile))
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(cfg.ExternalURL)
	if err != nil {
		return nil, err
	}
	kd := filepath.Join(dir, benchSubdir)
	idpPair, err := keys.Load(filepath.Join(kd, "idp.crt"), filepath.Join(kd, "idp.key"))
	if err != nil {
		return nil, fmt.Errorf("bench: %s was not prepared by --write-config: %w", dir, err)
	}
	idpSigner, err := xmlsig.NewSigner(idpPair)
	if err != nil {
		return nil, err
	}
	b := base.Scheme + "://" + base.Host
	w := &world{kind: readWorld(dir), cfg: cfg, base: base}
	w.idp = testidp.New(b+"/demo/idp/metadata", b+"/demo/idp/sso", demo.UpstreamScope, idpSigner)
	w.idp.ACSURL = b + "/saml/sp/acs"
	if w.kind == WorldRealistic {
		// As SimpleSAMLphp answers by default: the Response signed too.
		w.idp.Users = realisticUsers(demo.UpstreamScope)
		w.idp.Options = []testidp.Option{testidp.SignResponse()}
	}
	for _, u := range w.idp.Users {
		w.users = append(w.users, u.Login)
	}
	if w.saml, err = demovendor.New(samlVendor, b+"/demo/vendor/"+samlVendor, time.Now()); err != nil {
		return nil, err
	}
	vp, err := keys.Load(filepath.Join(kd, "vendor-"+samlVendor+".crt"), filepath.Join(kd, "vendor-"+samlVendor+".key"))
	if err != nil {
		return nil, err
	}
	w.saml.SP.Key, w.saml.SP.Certificate = vp.Signer, vp.Cert
	w.saml.SP.SignatureVerifier = derVerifier{}
	if w.oidc, err = demovendor.NewOIDC(oidcVendor, b+"/demo/vendor/"+oidcVendor, b); err != nil {
		return nil, err
	}
	secret, err := os.ReadFile(filepath.Join(dir, "keys", oidcVendor+".secret"))
	if err != nil {
		return nil, err
	}
	w.oidc.ClientSecret = strings.TrimSpace(string(secret))

	remote := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		// Below serve's IdleTimeout (60 s), so that the client closes an
		// idle connection first: otherwise a POST sent on a connection
		// the bridge is closing just then fails, which is no fault of the
		// bridge (the likely cause of 2 transport errors in 90,000 logins
		// of a 10-minute soak).
		IdleConnTimeout:    30 * time.Second,
		DisableCompression: true,
	}
	w.rt = &router{base: base, target: target, remote: remote, local: w.localHandler(), hops: newLatencySet(endpoints...)}
	w.api = &http.Client{Transport: w.rt, Timeout: 30 * time.Second}
	w.oidc.HTTPClient = w.api
	return w, nil
}

// connect fetches the bridge's IdP metadata for the SAML vendor.
func (w *world) connect(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.base.Scheme+"://"+w.base.Host+"/saml/idp/metadata", nil)
	if err != nil {
		return err
	}
	resp, err := w.api.Do(req)
	if err != nil {
		return fmt.Errorf("bench: the bridge cannot be reached: %w", err)
	}
	defer resp.Body.Close()
	md, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: the bridge's IdP metadata: status %d", resp.StatusCode)
	}
	return w.saml.SetIdPMetadata(md)
}

// signaturesPerLogin reads the SAML vendor's policy: what the bridge signs
// in each response to it.
func (w *world) signaturesPerLogin() (int, error) {
	p, problems := policy.LoadFile(filepath.Join(w.cfg.Path(w.cfg.Organisers[0].PolicyDir), samlVendor+".yaml"))
	if p == nil || p.SAML == nil {
		return 0, fmt.Errorf("bench: the %s policy: %v", samlVendor, problems)
	}
	if p.SAML.Sign == policy.SignAssertionAndResponse {
		return 2, nil
	}
	// The bench's vendors (crewjam/saml) say WantAssertionsSigned="true":
	// auto signs the assertion alone.
	return 1, nil
}

// user picks the next test identity, round robin over all of them
// (pupils, staff and the protected pupil, whose login is masked).
func (w *world) user() string {
	return w.users[int(w.next.Add(1)-1)%len(w.users)]
}

func (w *world) localHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/demo/idp/sso", labelled(compIdP, w.idp))
	mux.Handle("/demo/vendor/"+samlVendor+"/acs", labelled(compVendor, http.HandlerFunc(w.samlACS)))
	mux.Handle("/demo/vendor/"+oidcVendor+"/callback", labelled(compVendor, http.HandlerFunc(w.oidcCallback)))
	return mux
}

func labelled(component string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		pprof.Do(r.Context(), pprof.Labels(labelComponent, component), func(context.Context) { h.ServeHTTP(rw, r) })
	})
}

// requestIDKey carries the id of the vendor's AuthnRequest in a login's
// context, so that the vendor checks InResponseTo against exactly it.
type requestIDKey struct{}

// samlACS is the SAML vendor's ACS: crewjam/saml checks the bridge's
// response as a vendor would (signatures, audience, InResponseTo, times).
// It keeps no session: a load test would only grow it.
func (w *world) samlACS(rw http.ResponseWriter, r *http.Request) {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	if err := r.ParseForm(); err != nil {
		http.Error(rw, "bad form", http.StatusBadRequest)
		return
	}
	if n := w.checked.Add(1); w.checkEvery > 1 && n%w.checkEvery != 0 {
		if !w.glance(r.PostForm.Get("SAMLResponse"), id) {
			http.Error(rw, "response refused", http.StatusForbidden)
			return
		}
		io.WriteString(rw, "ok")
		return
	}
	if _, err := w.saml.SP.ParseResponse(r, []string{id}); err != nil {
		// InvalidResponseError carries the whole response: never print it.
		http.Error(rw, "response refused", http.StatusForbidden)
		return
	}
	io.WriteString(rw, "ok")
}

// glance is the SAML vendor's light look at a response it does not check
// in full (--check-every): a successful Response to its own request, at
// its own ACS, carrying an encrypted or plain assertion. It spares the
// load generator a decryption and a signature check per login, so that
// more of the machine is left to the bridge; the full checks still run
// on every check-every-th response, and any failure counts as an error.
func (w *world) glance(form, requestID string) bool {
	b, err := base64.StdEncoding.DecodeString(form)
	if err != nil || requestID == "" {
		return false
	}
	acs := w.saml.SP.AcsURL.String()
	return bytes.Contains(b, []byte(`InResponseTo="`+requestID+`"`)) &&
		bytes.Contains(b, []byte(`Destination="`+acs+`"`)) &&
		bytes.Contains(b, []byte(`Value="urn:oasis:names:tc:SAML:2.0:status:Success"`)) &&
		(bytes.Contains(b, []byte(":EncryptedAssertion")) || bytes.Contains(b, []byte(":Assertion ")))
}

// derVerifier lets crewjam/saml check ECDSA signatures as XML-DSig writes
// them: goxmldsig verifies an ECDSA SignatureValue only in ASN.1 form, and
// the bridge writes r||s (XML-DSig 1.1, 6.4.3; xmlsec1 and Shibboleth
// expect that). It converts the value of the element's own signature, on
// a copy, and leaves everything else to goxmldsig. An RSA signature passes
// through unchanged.
type derVerifier struct{}

func (derVerifier) VerifySignature(vc *dsig.ValidationContext, el *etree.Element) error {
	el = el.Copy()
	if sv := el.FindElement("./Signature/SignatureValue"); sv != nil &&
		el.FindElement("./Signature/SignedInfo/SignatureMethod[@Algorithm='"+xmlsig.ECDSASHA256+"']") != nil {
		rs, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(sv.Text()), ""))
		if err == nil && len(rs) == 64 {
			var b cryptobyte.Builder
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1BigInt(new(big.Int).SetBytes(rs[:32]))
				b.AddASN1BigInt(new(big.Int).SetBytes(rs[32:]))
			})
			if der, err := b.Bytes(); err == nil {
				sv.SetText(base64.StdEncoding.EncodeToString(der))
			}
		}
	}
	_, err := vc.Validate(el)
	return err
}

// oidcCallback is the OIDC vendor's redirect URI: go-oidc redeems the code
// and verifies the ID token.
func (w *world) oidcCallback(rw http.ResponseWriter, r *http.Request) {
	if _, err := w.oidc.Callback(r); err != nil {
		http.Error(rw, "login refused", http.StatusForbidden)
		return
	}
	io.WriteString(rw, "ok")
}

// startLogin makes the vendor's request and returns the URL the browser
// starts at, and a context carrying what the vendor must remember.
func (w *world) startLogin(ctx context.Context, protocol string) (string, context.Context, error) {
	if protocol == "oidc" {
		u, err := w.oidc.LoginURL(ctx)
		return u, ctx, err
	}
	sp := w.saml.SP
	req, err := sp.MakeAuthenticationRequest(sp.GetSSOBindingLocation(saml.HTTPRedirectBinding), saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		return "", ctx, err
	}
	u, err := req.Redirect("bench", sp)
	if err != nil {
		return "", ctx, err
	}
	return u.String(), context.WithValue(ctx, requestIDKey{}, req.ID), nil
}

// router sends requests under /demo/ to the in-process IdP and vendors
// and everything else to the bridge, timing each bridge request from the
// client's side (until the response headers).
type router struct {
	base   *url.URL
	target *url.URL
	remote http.RoundTripper
	local  http.Handler
	hops   latencySet
}

func (t *router) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasPrefix(req.URL.Path, "/demo/") {
		return t.serveLocal(req)
	}
	out := req
	if t.target != nil && req.URL.Host == t.base.Host {
		out = req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host, out.Host = t.target.Scheme, t.target.Host, ""
	}
	start := time.Now()
	resp, err := t.remote.RoundTrip(out)
	if err == nil {
		t.hops.add(endpointOf(req.URL.Path), time.Since(start))
		resp.Request = req
	}
	return resp, err
}

func (t *router) serveLocal(req *http.Request) (*http.Response, error) {
	sreq := req.Clone(req.Context())
	sreq.RequestURI = req.URL.RequestURI()
	sreq.RemoteAddr = "127.0.0.1:1"
	sreq.Host = req.URL.Host
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.local.ServeHTTP(rec, sreq)
	if req.Body != nil {
		req.Body.Close()
	}
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// bridge is the bridge running in this process, built from the
// configuration exactly as `skolbro serve` builds it, on its own
// listener.
type bridge struct {
	srv    *http.Server
	meter  *meter
	store  *countingStore
	redis  *store.Redis // set with the redis store
	signer *xmlsig.Signer
	closes []func()
}

// startBridge builds and starts the bridge from cfg on ln. Its work, and
// that of every goroutine it starts (connection handlers, the release
// log's writer), carries the profiler label component=bridge.
func startBridge(cfg *config.Config, ln net.Listener) (*bridge, error) {
	b := &bridge{}
	var err error
	pprof.Do(context.Background(), pprof.Labels(labelComponent, compBridge, labelEndpoint, "http"), func(context.Context) {
		err = b.start(cfg, ln)
	})
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *bridge) start(cfg *config.Config, ln net.Listener) error {
	var st store.Store
	if cfg.Store.Type == "redis" {
		r, err := store.NewRedisFromConfig(cfg.Store.Redis.Addrs, "", "", cfg.Store.Redis.DB, "", nil, cfg.Store.Redis.Prefix)
		if err != nil {
			return err
		}
		b.closes = append(b.closes, func() { r.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := r.Ping(ctx); err != nil {
			return fmt.Errorf("bench: Redis at %v: %w", cfg.Store.Redis.Addrs, err)
		}
		b.redis, st = r, r
	} else {
		m := store.NewMemory(nil)
		b.closes = append(b.closes, func() { m.Close() })
		st = m
	}
	// As serve wires it: metrics around the store and every request, and
	// the configured limits (WriteConfig raises the per-client and
	// per-vendor ones unless asked to keep them: the bench is one client
	// address and one vendor).
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		return err
	}
	b.store = newCountingStore(st)
	instrumented := m.InstrumentStore(b.store)
	lim := cfg.Limits
	clientIP, err := ratelimit.NewClientIP(lim.TrustedProxies, lim.ClientIPHeader)
	if err != nil {
		return err
	}
	clientLimit, err := ratelimit.New(lim.PerClientRPS, lim.Burst, ratelimit.WithMaxKeys(lim.MaxTrackedClients), ratelimit.OnReject(m.Refusal))
	if err != nil {
		return err
	}
	vendorLimit, err := ratelimit.New(lim.PerVendorRPS, lim.Burst)
	if err != nil {
		return err
	}
	orgs, rep := app.BuildWith(cfg, instrumented, app.Options{Now: time.Now})
	if err := rep.Err(); err != nil {
		return fmt.Errorf("bench: the bridge's configuration: %w", err)
	}
	closeAudits, err := app.OpenAudits(cfg, orgs, time.Now)
	if err != nil {
		return err
	}
	b.closes = append(b.closes, closeAudits)
	org := orgs[0]
	b.signer = org.IdP.Signer
	if s, ok := org.IdP.AltSigners[xmlsig.ECDSASHA256]; ok {
		b.signer = s // the SAML vendor's policy asks for ECDSA (--sign-alg ecdsa)
	}
	// Logs go nowhere, but at the configured level: formatting them is
	// part of what the bridge costs.
	log := zerolog.New(io.Discard).Level(logLevel(cfg.LogLevel)).With().Timestamp().Logger()
	srv, err := server.New(server.Options{Organisers: orgs, Store: instrumented, Logger: log,
		SecureCookies: strings.HasPrefix(cfg.ExternalURL, "https://"),
		Metrics:       m, ClientLimit: clientLimit, ClientIP: clientIP, VendorLimit: vendorLimit,
		MaxInFlight: lim.MaxInFlight})
	if err != nil {
		return err
	}
	b.meter = newMeter(srv.Handler())
	b.srv = &http.Server{Handler: b.meter, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 32 << 10}
	go b.srv.Serve(ln)
	return nil
}

func logLevel(s string) zerolog.Level {
	l, err := zerolog.ParseLevel(s)
	if err != nil {
		return zerolog.InfoLevel
	}
	return l
}

func (b *bridge) close() {
	if b.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			b.srv.Close()
		}
	}
	for i := len(b.closes) - 1; i >= 0; i-- {
		b.closes[i]()
	}
}
