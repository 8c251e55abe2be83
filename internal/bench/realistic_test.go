package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/samlxml"
)

// serveChildEnv makes the test binary play `skolbro serve` for TestServe:
// the bench's own bridge, built from the configuration as serve builds
// it, in a process of its own.
const serveChildEnv = "SKOLBRO_BENCH_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveChildEnv) == "1" {
		os.Exit(fakeServe(os.Args[1:]))
	}
	if os.Getenv(floorChildEnv) == "1" {
		os.Exit(fakeFloorServer(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeServe takes the arguments the bench gives serve (--config FILE
// --drain-delay D) and serves until SIGTERM.
func fakeServe(args []string) int {
	var file string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--config" {
			file = args[i+1]
		}
	}
	cfg, err := config.Load(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	br, err := startBridge(cfg, ln)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	<-stop
	br.close()
	return 0
}

// TestServe starts the bridge in its own process, as --serve does, and
// drives it: logins complete, and the figures come from that process's
// own CPU accounting. No figure's value is checked.
func TestServe(t *testing.T) {
	t.Setenv(serveChildEnv, "1") // for the child; this process has checked it already
	var out bytes.Buffer
	err := Run(context.Background(), Options{
		Serve:        true,
		ServeCommand: []string{os.Args[0], "-test.run=^$"},
		Concurrency:  []int{2},
		Duration:     time.Second,
		Signatures:   2,
		JSON:         true,
	}, &out)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Bridge, "started by the bench") || res.World != WorldRealistic {
		t.Errorf("bridge %q, world %q: want serve started by the bench, realistic world", res.Bridge, res.World)
	}
	if len(res.Phases) != 1 || res.Phases[0].Logins == 0 || len(res.Phases[0].Errors) != 0 {
		t.Fatalf("phases %+v: want logins without errors", res.Phases)
	}
	ph := res.Phases[0]
	if ph.TargetCPUMicros <= 0 || ph.PeakRSS == 0 {
		t.Errorf("the serve process's CPU per login (%v µs) or resident memory (%d) was not read", ph.TargetCPUMicros, ph.PeakRSS)
	}
	if want := ph.TargetCPUMicros / ph.ProcessCPUMicros; ph.TargetPerGenerator != want {
		t.Errorf("serve's CPU per login ÷ the generator's = %v, want %v (%v / %v)", ph.TargetPerGenerator, want, ph.TargetCPUMicros, ph.ProcessCPUMicros)
	}
	var table bytes.Buffer
	if err := writeTables(&table, &res); err != nil {
		t.Fatal(err)
	}
	if line := fmt.Sprintf("its CPU per login %.3f × the load generator's", ph.TargetPerGenerator); !strings.Contains(table.String(), line) {
		t.Errorf("report lacks %q:\n%s", line, table.String())
	}
}

func TestServeThatFailsIsReported(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{
		Serve:        true,
		ServeCommand: []string{"/bin/false"},
		Concurrency:  []int{1},
		Duration:     time.Second,
	}, &out)
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("Run = %v, want serve's early exit reported", err)
	}
}

// TestRealisticWorld walks one login of each protocol through the
// realistic world step by step and checks that it is the chain issue 13
// describes: a signed AuthnRequest, an upstream response of 8–9.5 KiB with
// Response and Assertion signed and at least ten attributes (some
// multi-valued), an encrypted assertion to the vendor, which accepts it,
// and the release log fsync'd per event.
func TestRealisticWorld(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	dir := t.TempDir()
	if err := WriteConfig(dir, base, ConfigOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, configFile))
	if err != nil {
		t.Fatal(err)
	}
	if o := cfg.Organisers[0]; o.Audit.Sync != "each" || cfg.LogLevel != "info" {
		t.Errorf("audit sync %q, log level %q: want each, info", o.Audit.Sync, cfg.LogLevel)
	}
	br, err := startBridge(cfg, ln)
	if err != nil {
		t.Fatal(err)
	}
	defer br.close()
	w, err := loadWorld(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.kind != WorldRealistic {
		t.Fatalf("world %q", w.kind)
	}
	ctx := t.Context()
	if err := w.connect(ctx); err != nil {
		t.Fatal(err)
	}

	start, lctx, err := w.startLogin(ctx, "saml")
	if err != nil {
		t.Fatal(err)
	}
	su, _ := url.Parse(start)
	if su.Query().Get("Signature") == "" || su.Query().Get("SigAlg") == "" {
		t.Errorf("the vendor's AuthnRequest is not signed")
	}
	b := newBrowser(w.rt)
	p, err := b.get(lctx, start, "sso")
	if err != nil {
		t.Fatal(err)
	}
	p, err = b.submit(lctx, p, url.Values{"user": {"anna.a"}}, "idp")
	if err != nil {
		t.Fatal(err)
	}
	up := samlResponse(t, p)
	if n := len(up.raw); n < 8<<10 || n > 9<<10+512 {
		t.Errorf("the school IdP's response is %d bytes, want 8–9.5 KiB", n)
	}
	root := up.doc.Root()
	a := samlxml.Children(root, samlxml.NSAssertion, "Assertion")
	if len(a) != 1 || len(samlxml.Children(root, samlxml.NSDSig, "Signature")) != 1 ||
		len(samlxml.Children(a[0], samlxml.NSDSig, "Signature")) != 1 {
		t.Fatalf("the school IdP's Response and Assertion are not both signed")
	}
	attrs := a[0].FindElements("./AttributeStatement/Attribute")
	multi := 0
	for _, at := range attrs {
		if len(at.SelectElements("AttributeValue")) > 1 {
			multi++
		}
	}
	if len(attrs) < 10 || multi < 2 {
		t.Errorf("the school IdP sent %d attributes, %d multi-valued: want at least 10 and 2", len(attrs), multi)
	}
	p, err = b.submit(lctx, p, nil, "acs")
	if err != nil {
		t.Fatal(err)
	}
	down := samlResponse(t, p)
	if len(samlxml.Children(down.doc.Root(), samlxml.NSAssertion, "EncryptedAssertion")) != 1 ||
		len(samlxml.Children(down.doc.Root(), samlxml.NSAssertion, "Assertion")) != 0 {
		t.Errorf("the bridge's response to the vendor does not carry exactly one encrypted assertion")
	}
	if p, err = b.submit(lctx, p, nil, "vendor"); err != nil || p.Body != "ok" {
		t.Fatalf("the vendor refused the bridge's response: %v", err)
	}
	if err := w.login(ctx, newBrowser(w.rt), "oidc"); err != nil {
		t.Errorf("OIDC login in the realistic world: %v", err)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "audit", "releases-*.jsonl"))
	if len(logs) != 1 {
		t.Fatalf("release logs %v, want one", logs)
	}
	events, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(events, []byte("\n")); n < 2 {
		t.Errorf("%d release events, want one per login", n)
	}
}

type decoded struct {
	raw []byte
	doc *etree.Document
}

// samlResponse decodes the SAMLResponse of a page's auto-post form.
func samlResponse(t *testing.T, p page) decoded {
	t.Helper()
	f, err := p.OnlyForm()
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	raw, err := base64.StdEncoding.DecodeString(f.Fields.Get("SAMLResponse"))
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	return decoded{raw: raw, doc: doc}
}

// BenchmarkLogin runs whole logins in the realistic world, one at a time,
// with the bridge in this process: a fixture for CPU and allocation
// profiles of the whole chain (go test -bench Login -cpuprofile ...;
// focus on internal/server for the bridge's part).
func BenchmarkLogin(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if err := WriteConfig(dir, "http://"+ln.Addr().String(), ConfigOptions{}); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, configFile))
	if err != nil {
		b.Fatal(err)
	}
	br, err := startBridge(cfg, ln)
	if err != nil {
		b.Fatal(err)
	}
	defer br.close()
	w, err := loadWorld(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := w.connect(b.Context()); err != nil {
		b.Fatal(err)
	}
	bw := newBrowser(w.rt)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.login(b.Context(), bw, "saml"); err != nil {
			b.Fatal(err)
		}
	}
}
