// Package ops tests the bridge's behaviour under operational faults, with
// real processes where it matters: a Redis that dies and comes back
// (SECURITY.md case 38), two `skolbro serve` processes behind a
// round-robin proxy on one Redis, SIGTERM in the middle of a login (case
// 41), and bursts beyond the configured rate (case 42).
//
// The tests start their own redis-server and build the skolbro binary with
// `go build`. They skip when redis-server or go is missing on a developer
// machine and fail when CI=true.
package ops

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/browsertest"
	"github.com/skolbro/skolbro/internal/demovendor"
	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/testidp"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// inCI reports whether missing tools must fail the test instead of
// skipping it.
func inCI() bool { return os.Getenv("CI") == "true" }

// need skips (or, in CI, fails) the test for a missing tool.
func need(t *testing.T, format string, args ...any) {
	t.Helper()
	if inCI() {
		t.Fatalf("CI=true: "+format, args...)
	}
	t.Skipf(format, args...)
}

// waitFor polls cond every 50 ms until it holds or limit passes. It is a
// bound on waiting for a process, not an assertion on time.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects output written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// ---- redis-server, a process of the test's own ----

type redisServer struct {
	t    *testing.T
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedis starts redis-server on a free port of 127.0.0.1, without
// persistence, and waits until it answers PING.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		need(t, "redis-server is not installed")
	}
	r := &redisServer{t: t, bin: bin, port: freePort(t), dir: t.TempDir()}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

// start (re)starts the server on its port.
func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	out := &syncBuffer{}
	r.cmd.Stdout, r.cmd.Stderr = out, out
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("redis-server: %v", err)
	}
	done := make(chan struct{})
	r.done = done
	go func(c *exec.Cmd) { _ = c.Wait(); close(done) }(r.cmd)
	if !waitFor(15*time.Second, func() bool { return redisPing(r.addr()) == nil }) {
		r.t.Fatalf("redis-server on %s did not answer PING:\n%s", r.addr(), out)
	}
}

// kill ends the server at once, as a crash would (SIGKILL).
func (r *redisServer) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// signal sends sig to the server (SIGSTOP makes it hang, SIGCONT resumes).
func (r *redisServer) signal(sig syscall.Signal) {
	r.t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("signal redis-server: %v", err)
	}
}

// redisPing sends PING in the Redis protocol and expects PONG.
func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("redis answered %q", line)
	}
	return nil
}

// redisForProcesses returns a Redis address for the multi-process tests:
// SKOLBRO_TEST_REDIS when set, otherwise a redis-server of the test's own.
func redisForProcesses(t *testing.T) string {
	t.Helper()
	if addr := os.Getenv("SKOLBRO_TEST_REDIS"); addr != "" {
		if err := redisPing(addr); err != nil {
			need(t, "SKOLBRO_TEST_REDIS=%s does not answer: %v", addr, err)
		}
		return addr
	}
	return startRedis(t).addr()
}

// ---- the skolbro binary and its processes ----

// buildSkolbro builds cmd/skolbro into a temporary directory.
func buildSkolbro(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		need(t, "the go command is not on PATH")
	}
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s", root)
	}
	bin := filepath.Join(t.TempDir(), "skolbro")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/skolbro")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/skolbro: %v\n%s", err, out)
	}
	return bin
}

// procLog collects a process's output and picks out the address from its
// "listening" log line.
type procLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	partial []byte
	addr    chan string
}

func newProcLog() *procLog { return &procLog{addr: make(chan string, 1)} }

func (p *procLog) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf.Write(b)
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		var line struct {
			Message string `json:"message"`
			Addr    string `json:"addr"`
		}
		if json.Unmarshal(p.partial[:i], &line) == nil && line.Message == "listening" && line.Addr != "" {
			select {
			case p.addr <- line.Addr:
			default:
			}
		}
		p.partial = p.partial[i+1:]
	}
	return len(b), nil
}

func (p *procLog) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// bridgeProc is one `skolbro serve` process.
type bridgeProc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	log  *procLog
	addr string
	done chan struct{}
	err  error // from Wait, once done is closed
}

// startBridge runs `skolbro serve --config cfg args...` and waits until it
// listens (configure listen: 127.0.0.1:0; the address is read from its
// log).
func startBridge(t *testing.T, name, bin, cfg string, args ...string) *bridgeProc {
	t.Helper()
	p := &bridgeProc{t: t, name: name, log: newProcLog(), done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"serve", "--config", cfg}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			// The bridge logs no personal data, so its log can be shown.
			t.Logf("log of %s:\n%s", name, p.log)
		}
	})
	select {
	case p.addr = <-p.log.addr:
	case <-p.done:
		t.Fatalf("%s exited before listening (%v):\n%s", name, p.err, p.log)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start listening:\n%s", name, p.log)
	}
	return p
}

func (p *bridgeProc) url() string { return "http://" + p.addr }

func (p *bridgeProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// exitCode waits for the process to end and returns its exit code.
func (p *bridgeProc) exitCode(limit time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		p.t.Fatalf("%s did not exit", p.name)
	}
	return p.cmd.ProcessState.ExitCode()
}

// ---- a round-robin reverse proxy in front of the processes ----

type roundRobin struct {
	mu       sync.Mutex
	backends []*url.URL
	n        int
	// served records, per request, the path and the backend's index.
	served []hit
}

type hit struct {
	path    string
	backend int
}

func (p *roundRobin) setBackends(urls ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backends = nil
	for _, s := range urls {
		u, _ := url.Parse(s)
		p.backends = append(p.backends, u)
	}
}

func (p *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if len(p.backends) == 0 {
		p.mu.Unlock()
		http.Error(w, "no backend", http.StatusBadGateway)
		return
	}
	i := p.n % len(p.backends)
	p.n++
	target := p.backends[i]
	p.served = append(p.served, hit{r.URL.Path, i})
	p.mu.Unlock()
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.SetXForwarded()
	}}
	rp.ServeHTTP(w, r)
}

func (p *roundRobin) hits() []hit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]hit(nil), p.served...)
}

// ---- configuration for skolbro processes, modelled on demo.Setup ----

// procEnv is a configuration directory for `skolbro serve` with the test
// school IdP and one vendor running in the test process.
type procEnv struct {
	dir, cfg string
	external string
	idp      *testidp.IdP
	vendor   *demovendor.Vendor
}

const (
	upstreamScope  = "skolor.ops-kommun.test"
	organiserScope = "ops-kommun.test"
)

// setupProcEnv writes a configuration directory for a bridge reachable at
// external, with storeYAML as its store section (indented by two spaces)
// and extraYAML appended at the top level. The test IdP and the vendor
// are served by httptest servers of their own.
func setupProcEnv(t *testing.T, external, storeYAML, extraYAML string) *procEnv {
	t.Helper()
	now := time.Now()
	dir := t.TempDir()
	for _, sub := range []string{"keys", "metadata", "attribute-release", "upstream"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	bridgeKey, err := keys.Generate("skolbro ops test bridge (TEST ONLY)", keys.RSA2048, now)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := bridgeKey.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "keys", "signing.crt"), bridgeKey.CertPEM())
	writeFile(t, filepath.Join(dir, "keys", "signing.key"), keyPEM)
	pk := make([]byte, 32)
	if _, err := rand.Read(pk); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "keys", "pseudonym.key"), pk)
	ak := make([]byte, 32)
	if _, err := rand.Read(ak); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "keys", "audit.key"), ak)

	// The school IdP.
	idpMux := http.NewServeMux()
	idpSrv := httptest.NewServer(idpMux)
	t.Cleanup(idpSrv.Close)
	idpKey, err := keys.Generate("skolbro ops test school IdP (TEST ONLY)", keys.RSA2048, now)
	if err != nil {
		t.Fatal(err)
	}
	idpSigner, err := xmlsig.NewSigner(idpKey)
	if err != nil {
		t.Fatal(err)
	}
	idp := testidp.New(idpSrv.URL+"/metadata", idpSrv.URL+"/sso", upstreamScope, idpSigner)
	idp.ACSURL = external + "/saml/sp/acs"
	idpMux.Handle("/sso", idp)
	md, err := idp.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "upstream", "school-idp.xml"), md)

	// The vendor.
	vendorMux := http.NewServeMux()
	vendorSrv := httptest.NewServer(vendorMux)
	t.Cleanup(vendorSrv.Close)
	v, err := demovendor.New("learning-app", vendorSrv.URL, now)
	if err != nil {
		t.Fatal(err)
	}
	vendorMux.Handle("/", v)
	vmd, err := v.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "metadata", "learning-app.xml"), vmd)
	writeFile(t, filepath.Join(dir, "attribute-release", "learning-app.yaml"), []byte(fmt.Sprintf(`# Test policy (TEST ONLY).
id: learning-app
display_name: Ops Test Learning App
saml:
  entity_id: %q
  name_id: transient
purpose: "Pupils log in; the EPPN keeps their work, the affiliation picks the pupil or teacher view."
legal_basis: "Public interest task (GDPR art. 6.1 e), Skollagen (2010:800)"
agreement:
  reference: "OPS-TEST-001"
  ends: 2099-12-31
attributes:
  - name: eduPersonPrincipalName
  - name: eduPersonScopedAffiliation
    values: [student, faculty]
`, v.SP.EntityID)))

	cfg := filepath.Join(dir, "skolbro.yaml")
	writeFile(t, cfg, []byte(fmt.Sprintf(`# skolbro ops test configuration (TEST ONLY)
listen: 127.0.0.1:0
external_url: %s
dev_mode: true
log_level: info
store:
%s
organiser:
  id: ops-kommun
  display_name: Ops kommun
  scope: %s
  upstream:
    id: school-idp
    type: saml
    metadata: upstream/school-idp.xml
    stable_id: %s
    security_marking: %s
  keys:
    signing:
      cert: keys/signing.crt
      key: keys/signing.key
  pseudonym:
    key_file: keys/pseudonym.key
  audit:
    dir: audit
    key_file: keys/audit.key
  metadata_dir: metadata
  policy_dir: attribute-release
%s`, external, storeYAML, organiserScope, testidp.AttrEPPN, testidp.AttrSecurityMarking, extraYAML)))
	return &procEnv{dir: dir, cfg: cfg, external: external, idp: idp, vendor: v}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func redisStoreYAML(addr, prefix string) string {
	return fmt.Sprintf("  type: redis\n  redis:\n    addrs: [%q]\n    prefix: %q", addr, prefix)
}

const memoryStoreYAML = "  type: memory"

// trustBridge gives the vendor the bridge's IdP metadata, fetched through
// base.
func (e *procEnv) trustBridge(t *testing.T, base string) {
	t.Helper()
	resp, err := http.Get(base + "/saml/idp/metadata")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("bridge metadata: %d %v", resp.StatusCode, err)
	}
	if err := e.vendor.SetIdPMetadata(b); err != nil {
		t.Fatal(err)
	}
}

// ---- a simulated browser (package browsertest), failing the test on
// transport errors ----

type browser struct {
	t *testing.T
	b *browsertest.Browser
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	// Its own transport: no connection is shared with other browsers.
	b := browsertest.New(&http.Transport{})
	b.Client.Timeout = 30 * time.Second
	return &browser{t: t, b: b}
}

type page struct {
	status int
	url    *url.URL
	header http.Header
	body   string
}

func (p page) String() string { return fmt.Sprintf("%d %s", p.status, p.url.Path) }

func fromPage(p browsertest.Page) page {
	return page{status: p.Status, url: p.URL, header: p.Header, body: p.Body}
}

func (p page) raw() browsertest.Page {
	return browsertest.Page{Status: p.status, URL: p.url, Header: p.header, Body: p.body}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	p, err := b.b.Get(context.Background(), u)
	if err != nil {
		b.t.Fatalf("GET: %v", err)
	}
	return fromPage(p)
}

func (b *browser) post(u string, form url.Values) page {
	b.t.Helper()
	p, err := b.b.Post(context.Background(), u, form)
	if err != nil {
		b.t.Fatalf("POST: %v", err)
	}
	return fromPage(p)
}

// form is the only form of a page: its resolved action and its hidden
// fields.
type form struct {
	action string
	fields url.Values
}

// forms returns the page's forms.
func (p page) forms() []form {
	fs, _ := p.raw().Forms()
	var out []form
	for _, f := range fs {
		out = append(out, form{action: f.Action, fields: f.Fields})
	}
	return out
}

func (b *browser) onlyForm(p page) form {
	b.t.Helper()
	fs := p.forms()
	if len(fs) != 1 {
		b.t.Fatalf("expected one form at %s, found %d: %.300s", p, len(fs), p.body)
	}
	return fs[0]
}

// submit posts the page's only form with extra fields added.
func (b *browser) submit(p page, extra url.Values) page {
	b.t.Helper()
	f := b.onlyForm(p)
	for k, vs := range extra {
		for _, v := range vs {
			f.fields.Add(k, v)
		}
	}
	return b.post(f.action, f.fields)
}

// toACS runs a login at the vendor up to the school IdP's auto-post form
// towards the bridge's ACS, and returns that page unsubmitted.
func toACS(b *browser, v *demovendor.Vendor, user string) page {
	b.t.Helper()
	start, err := v.LoginURL("rs-ops")
	if err != nil {
		b.t.Fatal(err)
	}
	p := b.get(start)
	if p.status != http.StatusOK || p.url.Path != "/sso" && p.url.Path != "/demo/idp/sso" {
		b.t.Fatalf("expected the school IdP's picker, got %s: %.300s", p, p.body)
	}
	p = b.submit(p, url.Values{"user": {user}})
	if p.status != http.StatusOK {
		b.t.Fatalf("school IdP answered %s", p)
	}
	return p
}

// fromACS submits the school IdP's form to the bridge's ACS and the
// bridge's answer to the vendor, and returns what the vendor received.
func fromACS(b *browser, v *demovendor.Vendor, p page) *demovendor.Received {
	b.t.Helper()
	p = b.submit(p, nil)
	if p.status != http.StatusOK {
		b.t.Fatalf("bridge ACS answered %s: %.300s", p, p.body)
	}
	return toVendor(b, v, p)
}

// toVendor submits the bridge's auto-post form to the vendor.
func toVendor(b *browser, v *demovendor.Vendor, p page) *demovendor.Received {
	b.t.Helper()
	if f := b.onlyForm(p); f.action != v.Base+"/acs" {
		b.t.Fatalf("the bridge posts to %q, want the vendor's ACS", f.action)
	}
	p = b.submit(p, nil)
	if p.status != http.StatusOK || !strings.HasPrefix(p.url.String(), v.Base) {
		b.t.Fatalf("vendor refused the response: %s: %.300s", p, p.body)
	}
	r := v.Last()
	if r == nil {
		b.t.Fatal("the vendor recorded no login")
	}
	return r
}

// login runs a whole login and returns the EPPN the vendor received.
func login(b *browser, v *demovendor.Vendor, user string) string {
	b.t.Helper()
	return eppn(b.t, fromACS(b, v, toACS(b, v, user)))
}

func eppn(t *testing.T, r *demovendor.Received) string {
	t.Helper()
	for _, a := range r.Attributes {
		if a.FriendlyName == "eduPersonPrincipalName" && len(a.Values) == 1 {
			return a.Values[0]
		}
	}
	t.Fatalf("the vendor received no single EPPN")
	return ""
}

// status GETs u with a fresh connection and returns the status code, or
// 0 when nothing answered.
func status(u string) int {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// assertNoPersonalData fails on any personal number (in the usual forms),
// name or upstream identifier of the test identities in text.
func assertNoPersonalData(t *testing.T, what, text string, users []testidp.User) {
	t.Helper()
	for _, u := range users {
		var forbidden []string
		for _, pnr := range u.Attributes[testidp.AttrPersonalNumber] {
			forbidden = append(forbidden, pnr, pnr[2:], pnr[2:8]+"-"+pnr[8:], pnr[:8]+"-"+pnr[8:])
		}
		forbidden = append(forbidden, u.NameID)
		forbidden = append(forbidden, u.Attributes[testidp.AttrGivenName]...)
		forbidden = append(forbidden, u.Attributes[testidp.AttrSurname]...)
		forbidden = append(forbidden, u.Attributes[testidp.AttrEPPN]...)
		for _, f := range forbidden {
			if strings.Contains(text, f) {
				t.Errorf("%s contains personal data of test user %s", what, u.Login)
			}
		}
	}
	if strings.Contains(text, "SAMLResponse") || strings.Contains(text, "<saml") {
		t.Errorf("%s contains a SAML message", what)
	}
}
