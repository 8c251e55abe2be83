package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/skolbro/skolbro/internal/app"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// closedRow matches a closed-loop row of the load table: mode,
// concurrency, offered rate, logins, errors.
var closedRow = regexp.MustCompile(`(?m)^\s*closed\s+(\d+)\s+-\s+(\d+)\s+(\d+)\s`)

// TestBenchSmoke runs the whole bench for about two seconds with the
// bridge in this process: logins must complete, and the table must be
// printed with them. No figure is checked: timing depends on the machine.
func TestBenchSmoke(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{
		Concurrency: []int{2},
		Duration:    2 * time.Second,
		Signatures:  3,
		Calibration: 3,
	}, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	s := out.String()
	if !strings.Contains(s, "logins/s") || !strings.Contains(s, "signature (RSA-2048, rsa-sha256)") {
		t.Fatalf("no result table:\n%s", s)
	}
	m := closedRow.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no closed-loop row in the table:\n%s", s)
	}
	if m[1] != "2" {
		t.Errorf("concurrency column = %s, want 2", m[1])
	}
	if n, _ := strconv.Atoi(m[2]); n == 0 {
		t.Errorf("no login completed:\n%s", s)
	}
	if m[3] != "0" {
		t.Errorf("%s logins failed:\n%s", m[3], s)
	}
	if !strings.Contains(s, "store per pending login:") {
		t.Errorf("no store measurement:\n%s", s)
	}
}

// TestBenchJSON checks the JSON result of an OIDC run in the light world:
// the vendor's side is the OIDC relying party, and the bridge's OIDC
// endpoints are timed.
func TestBenchJSON(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{
		World:       WorldLight,
		Protocol:    "oidc",
		Concurrency: []int{2},
		Duration:    time.Second,
		Signatures:  -1,
		Calibration: 2,
		JSON:        true,
	}, &out)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if len(res.Phases) != 1 || res.Phases[0].Logins == 0 || len(res.Phases[0].Errors) != 0 {
		t.Fatalf("phases = %+v, want one with logins and no errors", res.Phases)
	}
	if res.World != WorldLight {
		t.Errorf("world %q, want light", res.World)
	}
	for _, ep := range []string{epAuthorize, epACS, epToken} {
		if res.Phases[0].BridgeServer[ep].N == 0 {
			t.Errorf("bridge endpoint %s was not timed: %v", ep, res.Phases[0].BridgeServer)
		}
	}
	if res.Signature != nil {
		t.Errorf("signatures were timed although skipped")
	}
	if res.Calibration == nil || res.Calibration.Logins != 2 {
		t.Errorf("calibration = %+v, want 2 logins", res.Calibration)
	}
}

// TestTarget prepares a configuration with WriteConfig, runs the bridge
// from it as `skolbro serve` would (here in this process, on its own
// listener), and drives it with --target.
func TestTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	dir := t.TempDir()
	if err := WriteConfig(dir, base, ConfigOptions{SignatureAlgorithm: "ecdsa", Sign: "assertion"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, configFile))
	if err != nil {
		t.Fatal(err)
	}
	br, err := startBridge(cfg, ln)
	if err != nil {
		t.Fatal(err)
	}
	defer br.close()

	var out bytes.Buffer
	err = Run(context.Background(), Options{Target: base, ConfigDir: dir, Concurrency: []int{2},
		Duration: time.Second, Signatures: 2, JSON: true}, &out)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Bridge != base || len(res.Phases) != 1 || res.Phases[0].Logins == 0 || len(res.Phases[0].Errors) != 0 {
		t.Fatalf("bridge %q, phases %+v: want logins at %s without errors", res.Bridge, res.Phases, base)
	}
	if res.Signature == nil || res.Signature.Key != "P-256" {
		t.Errorf("signature = %+v, want the bridge's P-256 key", res.Signature)
	}
	if res.Calibration != nil || len(res.Phases[0].BridgeServer) != 0 {
		t.Errorf("server-side figures reported for a bridge in another process")
	}
	if res.Phases[0].BridgeClient[epACS].N == 0 {
		t.Errorf("bridge requests were not timed from the browsers")
	}
}

// WriteConfig's directory must be one `skolbro check` accepts, with the
// options it was given.
func TestWriteConfig(t *testing.T) {
	tests := []struct {
		name      string
		opts      ConfigOptions
		wantStore string
		wantAlg   policy.SignatureAlgorithm
		wantSign  policy.SignMode
	}{
		{"defaults", ConfigOptions{}, "memory", policy.RSASHA256, policy.SignAuto},
		{"both_light", ConfigOptions{World: WorldLight, Sign: "assertion_and_response"}, "memory", policy.RSASHA256, policy.SignAssertionAndResponse},
		{"redis_ecdsa_assertion", ConfigOptions{Store: "redis", RedisAddr: "10.0.0.1:6380", SignatureAlgorithm: "ecdsa", Sign: "assertion"},
			"redis", policy.ECDSASHA256, policy.SignAssertion},
		{"response", ConfigOptions{Sign: "response"}, "memory", policy.RSASHA256, policy.SignResponse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteConfig(dir, "http://127.0.0.1:18080/", tc.opts); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(filepath.Join(dir, configFile))
			if err != nil {
				t.Fatal(err)
			}
			orgs, rep := app.Build(cfg, store.NewMemory(nil), time.Now)
			if err := rep.Err(); err != nil {
				t.Fatalf("the configuration does not build: %v", err)
			}
			org := orgs[0]
			if cfg.Listen != "127.0.0.1:18080" || cfg.ExternalURL != "http://127.0.0.1:18080" {
				t.Errorf("listen %q, external_url %q", cfg.Listen, cfg.ExternalURL)
			}
			if cfg.Store.Type != tc.wantStore {
				t.Errorf("store %q, want %q", cfg.Store.Type, tc.wantStore)
			}
			if tc.wantStore == "redis" {
				if diff := cmp.Diff([]string{"10.0.0.1:6380"}, cfg.Store.Redis.Addrs); diff != "" || cfg.Store.Redis.Prefix != redisPrefix {
					t.Errorf("redis addrs (-want +got):\n%s; prefix %q", diff, cfg.Store.Redis.Prefix)
				}
			}
			pol, ok := org.Policies.ByID(samlVendor)
			if !ok {
				t.Fatalf("no policy %s", samlVendor)
			}
			alg := pol.SAML.SignatureAlgorithm
			if alg == "" && org.IdP.AltSigners[xmlsig.ECDSASHA256] == nil {
				// Unset: what the vendor announces, which needs a P-256
				// key the bench organiser does not have: RSA.
				alg = policy.RSASHA256
			}
			if alg != tc.wantAlg || pol.SAML.Sign != tc.wantSign {
				t.Errorf("policy signs %s with %s, want %s with %s", pol.SAML.Sign, alg, tc.wantSign, tc.wantAlg)
			}
			for _, f := range []string{"idp.key", "vendor-" + samlVendor + ".key"} {
				if _, err := os.Stat(filepath.Join(dir, benchSubdir, f)); err != nil {
					t.Errorf("bench key: %v", err)
				}
			}
		})
	}
}

func TestWriteConfigRefuses(t *testing.T) {
	tests := []struct {
		name string
		base string
		opts ConfigOptions
	}{
		{"no_scheme", "127.0.0.1:8080", ConfigOptions{}},
		{"path", "http://127.0.0.1:8080/bridge", ConfigOptions{}},
		{"ftp", "ftp://127.0.0.1", ConfigOptions{}},
		{"bad_store", "http://127.0.0.1:8080", ConfigOptions{Store: "etcd"}},
		{"bad_alg", "http://127.0.0.1:8080", ConfigOptions{SignatureAlgorithm: "rsa-sha1"}},
		{"bad_sign", "http://127.0.0.1:8080", ConfigOptions{Sign: "nothing"}},
		{"bad_world", "http://127.0.0.1:8080", ConfigOptions{World: "heavy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteConfig(dir, tc.base, tc.opts); err == nil {
				t.Fatal("accepted")
			}
			if _, err := os.Stat(filepath.Join(dir, configFile)); err == nil {
				t.Error("a configuration was written anyway")
			}
		})
	}
}

func TestCommandUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"unknown_flag", []string{"--nope"}, 2},
		{"argument", []string{"extra"}, 2},
		{"bad_protocol", []string{"--protocol", "ws-fed"}, 2},
		{"bad_concurrency", []string{"--concurrency", "8,x"}, 2},
		{"zero_concurrency", []string{"--concurrency", "0"}, 2},
		{"target_without_dir", []string{"--target", "http://127.0.0.1:1"}, 2},
		{"pid_without_target", []string{"--target-pid", "1"}, 2},
		{"write_config_without_base", []string{"--write-config", "x"}, 2},
		{"bad_store", []string{"--store", "etcd"}, 2},
		{"bad_world", []string{"--world", "heavy"}, 2},
		{"serve_and_target", []string{"--serve", "--target", "http://127.0.0.1:1", "--config-dir", "x"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if got := Command(tc.args, &out, &errOut); got != tc.want {
				t.Errorf("exit %d, want %d; stderr: %s", got, tc.want, errOut.String())
			}
			if errOut.Len() == 0 {
				t.Error("nothing said on stderr")
			}
		})
	}
}

func TestCommandWriteConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg")
	var out, errOut bytes.Buffer
	if got := Command([]string{"--write-config", dir, "--base", "http://127.0.0.1:18081"}, &out, &errOut); got != 0 {
		t.Fatalf("exit %d: %s", got, errOut.String())
	}
	if !strings.Contains(out.String(), "skolbro serve --config "+dir+"/skolbro.yaml") {
		t.Errorf("no serve instruction: %s", out.String())
	}
	if _, err := config.Load(filepath.Join(dir, configFile)); err != nil {
		t.Error(err)
	}
}

func TestPercentiles(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var d []time.Duration
		for _, v := range n {
			d = append(d, time.Duration(v)*time.Millisecond)
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // unsorted on purpose
	}
	tests := []struct {
		name string
		in   []time.Duration
		want Percentiles
	}{
		{"empty", nil, Percentiles{}},
		{"one", ms(7), Percentiles{N: 1, P50: 7, P95: 7, P99: 7, Max: 7}},
		{"hundred", ms(hundred...), Percentiles{N: 100, P50: 50, P95: 95, P99: 99, Max: 100}},
		{"outlier", ms(1, 1, 1, 1, 1, 1, 1, 1, 1, 1000), Percentiles{N: 10, P50: 1, P95: 1000, P99: 1000, Max: 1000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, percentiles(tc.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorClass(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&stepError{step: "acs", status: http.StatusTooManyRequests}, "429"},
		{&stepError{step: "sso", status: http.StatusServiceUnavailable}, "503"},
		{&stepError{step: "acs", status: http.StatusInternalServerError}, "5xx"},
		{&stepError{step: "acs", status: http.StatusForbidden}, "4xx"},
		{&stepError{step: "sso", err: &url.Error{Op: "Get", URL: "http://x/?SAMLRequest=secret", Err: context.DeadlineExceeded}}, "timeout"},
		{&stepError{step: "vendor", err: errUnexpectedPage}, "bad_page"},
		{&stepError{step: "sso", err: errors.New("connection refused")}, "transport"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := errorClass(tc.err); got != tc.want {
				t.Errorf("errorClass = %q, want %q", got, tc.want)
			}
			if strings.Contains(tc.err.Error(), "SAMLRequest") {
				t.Errorf("error message repeats the URL: %s", tc.err)
			}
		})
	}
}

// TestFirstErrors: a phase keeps the first error of each class that has
// no HTTP status, so that a transport failure can be told apart from
// another, and the report prints it without the request's URL.
func TestFirstErrors(t *testing.T) {
	out := newOutcome()
	out.inFlight.Add(4)
	out.end(0, &stepError{step: "sso", status: http.StatusServiceUnavailable}, false)
	out.end(0, &stepError{step: "acs", err: &url.Error{Op: "Post", URL: "http://x/acs?SAMLRequest=secret", Err: errors.New("connection reset by peer")}}, false)
	out.end(0, &stepError{step: "sso", err: errors.New("EOF")}, false)
	out.end(0, &stepError{step: "vendor", err: errUnexpectedPage}, false)
	want := map[string]string{"transport": "bench: acs: connection reset by peer", "bad_page": "bench: vendor: unexpected page"}
	if !reflect.DeepEqual(out.first, want) {
		t.Errorf("first errors = %q, want %q", out.first, want)
	}
	var b strings.Builder
	_ = writeTables(&b, &Result{Phases: []Phase{{Mode: "closed", Concurrency: 8, Errors: out.errs, FirstErrors: out.first}}})
	if !strings.Contains(b.String(), "transport=2 (first: bench: acs: connection reset by peer)") || strings.Contains(b.String(), "SAMLRequest") {
		t.Errorf("report:\n%s", b.String())
	}
}

func TestKeyClass(t *testing.T) {
	for in, want := range map[string]string{
		"sp:req:_abc":                    "sp:req",
		"sp:replay:https://idp|_id:with": "sp:replay",
		"plain":                          "plain",
		"one:colon":                      "one:colon",
	} {
		if got := keyClass(in); got != want {
			t.Errorf("keyClass(%q) = %q, want %q", in, got, want)
		}
	}
}

// profBuilder writes the profile.proto fields parseProfile reads.
type profBuilder struct {
	buf  []byte
	strs []string
}

func (p *profBuilder) str(s string) uint64 {
	for i, v := range p.strs {
		if v == s {
			return uint64(i)
		}
	}
	p.strs = append(p.strs, s)
	return uint64(len(p.strs) - 1)
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func field(b []byte, num int, msg []byte) []byte {
	b = appendVarint(b, uint64(num)<<3|2)
	b = appendVarint(b, uint64(len(msg)))
	return append(b, msg...)
}

func varintField(b []byte, num int, v uint64) []byte {
	return appendVarint(appendVarint(b, uint64(num)<<3), v)
}

func (p *profBuilder) sampleType(typ, unit string) {
	var m []byte
	m = varintField(m, 1, p.str(typ))
	m = varintField(m, 2, p.str(unit))
	p.buf = field(p.buf, 1, m)
}

func (p *profBuilder) function(id uint64, name string) {
	var m []byte
	m = varintField(m, 1, id)
	m = varintField(m, 2, p.str(name))
	p.buf = field(p.buf, 5, m)
}

func (p *profBuilder) location(id, fn uint64) {
	var m []byte
	m = varintField(m, 1, id)
	m = field(m, 4, varintField(nil, 1, fn))
	p.buf = field(p.buf, 4, m)
}

// sample writes a sample with packed values, an unpacked location list
// (both encodings occur) and labels.
func (p *profBuilder) sample(loc uint64, count, nanos int64, labels ...string) {
	var m []byte
	m = varintField(m, 1, loc)
	var vals []byte
	vals = appendVarint(vals, uint64(count))
	vals = appendVarint(vals, uint64(nanos))
	m = field(m, 2, vals)
	for i := 0; i+1 < len(labels); i += 2 {
		var l []byte
		l = varintField(l, 1, p.str(labels[i]))
		l = varintField(l, 2, p.str(labels[i+1]))
		m = field(m, 3, l)
	}
	p.buf = field(p.buf, 2, m)
}

func (p *profBuilder) gzip(t *testing.T) []byte {
	b := p.buf
	for _, s := range p.strs {
		b = field(b, 6, []byte(s))
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestParseProfile(t *testing.T) {
	p := &profBuilder{}
	p.str("") // index 0 is the empty string
	p.sampleType("samples", "count")
	p.sampleType("cpu", "nanoseconds")
	p.function(1, "crypto/rsa.SignPKCS1v15")
	p.function(2, "encoding/xml.(*Decoder).rawToken")
	p.function(3, "runtime.gcBgMarkWorker")
	p.location(10, 1)
	p.location(11, 2)
	p.location(12, 3)
	p.sample(10, 6, 60e6, labelComponent, compBridge, labelEndpoint, epACS)
	p.sample(11, 2, 20e6, labelComponent, compBridge, labelEndpoint, epSSO)
	p.sample(11, 1, 10e6, labelComponent, compClient)
	p.sample(12, 1, 10e6)
	prof, err := parseProfile(p.gzip(t))
	if err != nil {
		t.Fatal(err)
	}
	got := prof.shares(1)
	want := CPUShare{
		Seconds:         0.1,
		Components:      map[string]float64{compBridge: 0.8, compClient: 0.1, unattributed: 0.1},
		BridgeEndpoints: map[string]float64{epACS: 0.6, epSSO: 0.2},
		TopBridge:       []FuncShare{{Func: "crypto/rsa.SignPKCS1v15", Share: 0.75}},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("shares (-want +got):\n%s", diff)
	}
}

func TestParseProfileRefusesGarbage(t *testing.T) {
	tests := map[string][]byte{
		"not_gzip": []byte("profile"),
		"truncated": func() []byte {
			var out bytes.Buffer
			zw := gzip.NewWriter(&out)
			zw.Write([]byte{0x12, 0x7f, 0x01})
			zw.Close()
			return out.Bytes()
		}(),
		"no_cpu_type": func() []byte {
			var out bytes.Buffer
			zw := gzip.NewWriter(&out)
			io.WriteString(zw, "")
			zw.Close()
			return out.Bytes()
		}(),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := parseProfile(in); err == nil {
				t.Error("accepted")
			}
		})
	}
}
