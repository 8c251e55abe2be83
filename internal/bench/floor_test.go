package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// floorChildEnv makes the test binary play `skolbro bench --floor-server`.
const floorChildEnv = "SKOLBRO_BENCH_TEST_FLOOR"

// fakeFloorServer serves the floor at the last argument until SIGTERM.
func fakeFloorServer(args []string) int {
	if err := FloorServer(args[len(args)-1], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// runFloorJSON runs the floor with o, its server played by this test
// binary, and returns the JSON report read back.
func runFloorJSON(t *testing.T, o FloorOptions) FloorResult {
	t.Helper()
	t.Setenv(floorChildEnv, "1")
	o.Command, o.JSON = []string{os.Args[0], "-test.run=^$"}, true
	var out bytes.Buffer
	if err := RunFloor(context.Background(), o, &out); err != nil {
		t.Fatalf("RunFloor: %v", err)
	}
	var res FloorResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestFloor starts the floor's server in its own process, as --floor
// does, and drives it: logins complete, the CPU per login comes from that
// process's accounting and is given in signatures, and the report says so.
func TestFloor(t *testing.T) {
	res := runFloorJSON(t, FloorOptions{Concurrency: []int{2}, Duration: time.Second, Signatures: 2})
	if len(res.Phases) != 1 || res.Phases[0].Logins == 0 || res.Phases[0].Errors != 0 {
		t.Fatalf("phases %+v: want logins without errors", res.Phases)
	}
	ph := res.Phases[0]
	if ph.CPUMicros <= 0 || res.Signature == nil || res.Signature.CPUMicros <= 0 {
		t.Fatalf("CPU per login %v µs, signature %+v: want both measured", ph.CPUMicros, res.Signature)
	}
	if want := ph.CPUMicros / res.Signature.CPUMicros; ph.SignatureRatio != want {
		t.Errorf("signature ratio %v, want %v", ph.SignatureRatio, want)
	}
	var table bytes.Buffer
	if err := writeFloor(&table, &res); err != nil {
		t.Fatal(err)
	}
	if line := fmt.Sprintf("%.3f %12.2f", ph.CPUMicros/1000, ph.SignatureRatio); !strings.Contains(table.String(), line) {
		t.Errorf("report lacks %q:\n%s", line, table.String())
	}
}

// TestFloorRequestsAreTheBridges checks the floor's requests against the
// sizes the realistic world's logins have: a Redirect-binding query of
// about 1 KB and a posted response of about 12.6 KB.
func TestFloorRequestsAreTheBridges(t *testing.T) {
	c := newFloorClient("http://127.0.0.1:1", time.Second)
	if n := len(c.query); n < 950 || n > 1100 {
		t.Errorf("SSO query %d bytes, want about 1,000", n)
	}
	if n := len(c.form); n < 12300 || n > 12900 {
		t.Errorf("ACS form %d bytes, want about 12,600", n)
	}
	q, err := url.ParseQuery(c.query)
	if err != nil || q.Get("SAMLRequest") == "" {
		t.Errorf("SSO query %v: want a SAMLRequest", err)
	}
}

func TestFloorServerThatFailsIsReported(t *testing.T) {
	err := RunFloor(context.Background(), FloorOptions{Command: []string{"/bin/false"}, Duration: time.Second}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "the floor's server exited before it was ready") {
		t.Fatalf("RunFloor = %v, want the server's early exit reported", err)
	}
}

// TestFloorRefusesTheBridgesFlags: the floor's server has no world, store
// or vendor, so a flag that describes one would have no effect.
func TestFloorRefusesTheBridgesFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--floor", "--store", "redis"}, "--store does not go with --floor"},
		{[]string{"--floor", "--world", "light", "--rate", "100"}, "--world does not go with --floor"},
		{[]string{"--floor", "--serve"}, "--serve does not go with --floor"},
		{[]string{"--floor", "--concurrency", "0"}, "--concurrency must be between 1 and 100000"},
		{[]string{"--floor", "--rate", "-1"}, "cannot be negative"},
		{[]string{"--floor-server", "127.0.0.1:0", "--store", "redis"}, "--floor-server takes no other flag"},
	} {
		var out, errb bytes.Buffer
		if code := Command(tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

// TestFloorOpenLoop: with a rate the floor is driven open loop and
// reports the rate it offered; no more logins than it offered complete.
func TestFloorOpenLoop(t *testing.T) {
	res := runFloorJSON(t, FloorOptions{Rate: 20, Duration: time.Second})
	if len(res.Phases) != 1 {
		t.Fatalf("phases %+v: want one", res.Phases)
	}
	ph := res.Phases[0]
	if ph.Mode != "open" || ph.OfferedPerSec != 20 || ph.Logins < 1 || ph.Logins > 21 || ph.Errors != 0 {
		t.Errorf("phase %+v: want an open loop at 20/s with 1 to 21 logins and no errors", ph)
	}
	if res.Signature != nil || ph.SignatureRatio != 0 {
		t.Errorf("no signatures were timed, yet signature %+v, ratio %v", res.Signature, ph.SignatureRatio)
	}
}
