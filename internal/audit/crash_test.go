package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The crash test re-executes this test binary as a child that writes
// events until it is killed. These variables tell the child what to do.
const (
	crashChildEnv = "SKOLBRO_AUDIT_CRASH_CHILD"
	crashDirEnv   = "SKOLBRO_AUDIT_CRASH_DIR"
	crashSyncEnv  = "SKOLBRO_AUDIT_CRASH_SYNC"
)

// TestCrashChild is the child's body; it does nothing in a normal run.
// Four goroutines write events with rotation by size; after each Write
// returns nil the child prints the event's sequence number. It never
// stops by itself before its limit, so the parent's SIGKILL lands
// mid-stream.
func TestCrashChild(t *testing.T) {
	if os.Getenv(crashChildEnv) != "1" {
		t.Skip("runs only as the crash test's child process")
	}
	s, err := OpenFileSink(FileSinkConfig{
		Dir:      os.Getenv(crashDirEnv),
		Sync:     SyncMode(os.Getenv(crashSyncEnv)),
		MaxDelay: time.Millisecond,
		MaxBytes: 16 << 10,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var (
		seq int64
		mu  sync.Mutex
		wg  sync.WaitGroup
	)
	const limit = 1 << 20 // a bound in case nobody kills the child
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := atomic.AddInt64(&seq, 1)
				if n > limit {
					return
				}
				e := eventN(int(n))
				e.Time = time.Time{}
				if err := s.Write(context.Background(), e); err != nil {
					fmt.Fprintln(os.Stderr, "write:", err)
					os.Exit(3)
				}
				mu.Lock()
				// One write call per number: a pipe write this small is
				// atomic, so the parent reads whole numbers.
				os.Stdout.WriteString(strconv.FormatInt(n, 10) + "\n")
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	os.Exit(0)
}

// TestCrashKeepsAcknowledgedEvents kills a writing child with SIGKILL and
// checks that every line in the log parses and that every event the
// child saw acknowledged (printed after Write returned) is in the log.
func TestCrashKeepsAcknowledgedEvents(t *testing.T) {
	if os.Getenv(crashChildEnv) == "1" {
		t.Skip("in the child")
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	t.Parallel()
	for _, mode := range []SyncMode{SyncEach, SyncBatch} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashChildEnv+"=1", crashDirEnv+"="+dir, crashSyncEnv+"="+string(mode))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			acked := map[int]bool{}
			r := bufio.NewReader(out)
			const killAfter = 400
			killed := false
			for {
				line, err := r.ReadString('\n')
				if strings.HasSuffix(line, "\n") {
					n, perr := strconv.Atoi(strings.TrimSuffix(line, "\n"))
					if perr != nil {
						// The test framework's own output, e.g. on failure.
						t.Logf("child: %q", line)
					} else {
						acked[n] = true
					}
				}
				if !killed && len(acked) >= killAfter {
					// SIGKILL: no deferred code, no Close, no flush.
					if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					killed = true
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			werr := cmd.Wait()
			if !killed {
				t.Fatalf("child ended before it was killed: %v; stderr: %s", werr, stderr.String())
			}
			var exit *exec.ExitError
			if !errors.As(werr, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die of SIGKILL: %v; stderr: %s", werr, stderr.String())
			}

			files := logFileNames(t, dir)
			if len(files) < 2 {
				t.Errorf("only %d log files: the run should have rotated", len(files))
			}
			inLog := map[int]bool{}
			for _, line := range readLines(t, dir) {
				e, err := parseLine(line)
				if err != nil {
					t.Fatalf("a line in the log does not parse: %v", err)
				}
				n, err := strconv.Atoi(strings.TrimPrefix(e.TxnID, "seq-"))
				if err != nil {
					t.Fatalf("txn id %q", e.TxnID)
				}
				inLog[n] = true
			}
			missing := 0
			for n := range acked {
				if !inLog[n] {
					missing++
				}
			}
			if missing > 0 {
				t.Errorf("%d of %d acknowledged events are not in the log", missing, len(acked))
			}
			if len(inLog) < len(acked) {
				t.Errorf("log holds %d events, fewer than the %d acknowledged", len(inLog), len(acked))
			}
		})
	}
}

// parseLine parses a line and checks it is a whole, valid event.
func parseLine(line string) (Event, error) {
	var e Event
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		return e, err
	}
	return e, e.Validate()
}
