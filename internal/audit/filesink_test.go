package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func openSink(t *testing.T, cfg FileSinkConfig) *FileSink {
	t.Helper()
	s, err := OpenFileSink(cfg)
	if err != nil {
		t.Fatalf("OpenFileSink: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func eventN(n int) Event {
	e := validEvent()
	e.Time = time.Time{}
	e.TxnID = fmt.Sprintf("seq-%d", n)
	return e
}

func write(t *testing.T, s Sink, e Event) {
	t.Helper()
	if err := s.Write(context.Background(), e); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// lineLen is the length of eventN's line, for size-rotation arithmetic.
func lineLen(t *testing.T, n int) int64 {
	t.Helper()
	e := eventN(n)
	e.Time = testNow
	e.Attributes = append([]string{}, e.Attributes...)
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(b)) + 1
}

func TestOpenFileSinkConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  FileSinkConfig
		ok   bool
	}{
		{"defaults", FileSinkConfig{}, true},
		{"batch", FileSinkConfig{Sync: SyncBatch, MaxDelay: time.Millisecond}, true},
		{"unknown sync mode", FileSinkConfig{Sync: "sometimes"}, false},
		{"negative size", FileSinkConfig{MaxBytes: -1}, false},
		{"negative retention", FileSinkConfig{Retention: -time.Hour}, false},
		{"negative delay", FileSinkConfig{Sync: SyncBatch, MaxDelay: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.Dir = filepath.Join(t.TempDir(), "audit")
			s, err := OpenFileSink(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("OpenFileSink err = %v, want ok=%v", err, tc.ok)
			}
			if err == nil {
				s.Close()
			}
		})
	}
	if _, err := OpenFileSink(FileSinkConfig{}); err == nil {
		t.Error("no directory: want an error")
	}
}

func TestFileModes(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "audit")
	s := openSink(t, FileSinkConfig{Dir: dir, Now: newClock(testNow).Now})
	write(t, s, eventN(1))
	fi, err := os.Stat(s.File())
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("log file mode %04o, want 0600", perm)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("created directory mode %04o, want no group or other access", perm)
	}
}

func TestWriteAfterCloseAndInvalidEvent(t *testing.T) {
	t.Parallel()
	for _, mode := range []SyncMode{SyncEach, SyncBatch} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := openSink(t, FileSinkConfig{Dir: dir, Sync: mode, Now: newClock(testNow).Now})
			bad := eventN(1)
			bad.Attributes = []string{"Tolvan"}
			if err := s.Write(context.Background(), bad); !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("invalid event: err = %v, want ErrInvalidEvent", err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := s.Write(ctx, eventN(2)); !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled context: err = %v", err)
			}
			write(t, s, eventN(3))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Write(context.Background(), eventN(4)); !errors.Is(err, ErrClosed) {
				t.Errorf("after Close: err = %v, want ErrClosed", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			lines := readLines(t, dir)
			if len(lines) != 1 {
				t.Fatalf("got %d lines, want only the valid event", len(lines))
			}
		})
	}
}

func TestRotateBySize(t *testing.T) {
	t.Parallel()
	clk := newClock(testNow)
	dir := t.TempDir()
	n := lineLen(t, 1) // seq 1-9 have one length
	s := openSink(t, FileSinkConfig{Dir: dir, MaxBytes: 3 * n, Now: clk.Now})
	for i := 1; i <= 7; i++ {
		write(t, s, eventN(i))
		clk.Add(time.Second)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Three events fit in each file; the clock moved one second per event.
	want := map[string][]string{
		"releases-20261124T101500Z.jsonl": {"seq-1", "seq-2", "seq-3"},
		"releases-20261124T101503Z.jsonl": {"seq-4", "seq-5", "seq-6"},
		"releases-20261124T101506Z.jsonl": {"seq-7"},
	}
	got := map[string][]string{}
	for _, name := range logFileNames(t, dir) {
		got[name] = []string{}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) > 3*n {
			t.Errorf("%s is %d bytes, over MaxBytes %d", name, len(b), 3*n)
		}
		for _, e := range parseEvents(t, b) {
			got[name] = append(got[name], e.TxnID)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestRotateSameSecondGetsSuffix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSink(t, FileSinkConfig{Dir: dir, MaxBytes: 1, Now: newClock(testNow).Now})
	for i := 1; i <= 3; i++ {
		write(t, s, eventN(i))
	}
	s.Close()
	// A second sink on the same directory in the same second must not
	// continue any existing file.
	s2 := openSink(t, FileSinkConfig{Dir: dir, Now: newClock(testNow).Now})
	write(t, s2, eventN(4))
	s2.Close()
	want := []string{
		"releases-20261124T101500Z-1.jsonl", "releases-20261124T101500Z-2.jsonl",
		"releases-20261124T101500Z-3.jsonl", "releases-20261124T101500Z.jsonl",
	}
	if diff := cmp.Diff(want, logFileNames(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	res, err := Scan(context.Background(), dir, validEvent().SubjectKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 4 || res.Skipped != 0 {
		t.Errorf("got %d records and %d skipped lines, want 4 and 0", len(res.Records), res.Skipped)
	}
}

func TestRotateDaily(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Date(2026, 11, 24, 23, 59, 58, 0, time.UTC))
	dir := t.TempDir()
	s := openSink(t, FileSinkConfig{Dir: dir, RotateDaily: true, Now: clk.Now})
	write(t, s, eventN(1))
	clk.Add(time.Second) // 23:59:59, same day
	write(t, s, eventN(2))
	clk.Add(time.Second) // midnight UTC
	write(t, s, eventN(3))
	clk.Add(36 * time.Hour) // two days later; nothing in between
	write(t, s, eventN(4))
	s.Close()
	want := map[string][]string{
		"releases-20261124T235958Z.jsonl": {"seq-1", "seq-2"},
		"releases-20261125T000000Z.jsonl": {"seq-3"},
		"releases-20261126T120000Z.jsonl": {"seq-4"},
	}
	got := map[string][]string{}
	for _, name := range logFileNames(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got[name] = []string{}
		for _, e := range parseEvents(t, b) {
			got[name] = append(got[name], e.TxnID)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestNoDailyRotationWhenOff(t *testing.T) {
	t.Parallel()
	clk := newClock(testNow)
	dir := t.TempDir()
	s := openSink(t, FileSinkConfig{Dir: dir, Now: clk.Now})
	write(t, s, eventN(1))
	clk.Add(72 * time.Hour)
	write(t, s, eventN(2))
	s.Close()
	if got := logFileNames(t, dir); len(got) != 1 {
		t.Errorf("files %v, want one", got)
	}
}

// TestRetention: a file goes when its successor started, and it was last
// modified, before the cutoff. Younger files, the current file and files
// not named like log files stay.
func TestRetention(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	day := 24 * time.Hour
	mk := func(name string, mtime time.Time) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	at := func(d time.Duration) time.Time { return testNow.Add(d) }
	name := func(t time.Time) string { return "releases-" + t.UTC().Format(fileTimeFormat) + ".jsonl" }
	old1 := name(at(-40 * day))
	old2 := name(at(-35 * day))
	young := name(at(-10 * day))
	mk(old1, at(-35*day-time.Hour))
	mk(old2, at(-10*day-time.Hour)) // events until ten days ago
	mk(young, at(-time.Hour))
	mk("notes.txt", at(-400*day))
	mk("releases-backup.jsonl", at(-400*day))
	// A file whose successor is old but that was modified recently (another
	// process still writing to it) stays.
	stillWritten := name(at(-50 * day))
	mk(stillWritten, at(-time.Hour))

	clk := newClock(testNow)
	s := openSink(t, FileSinkConfig{Dir: dir, Retention: 30 * day, RotateDaily: true, Now: clk.Now})
	current := filepath.Base(s.File())
	want := []string{stillWritten, old2, young, current}
	if diff := cmp.Diff(want, logFileNames(t, dir)); diff != "" {
		t.Errorf("after open (-want +got):\n%s", diff)
	}

	// 21 days on, the cutoff passes the start of young: old2's events are
	// all older than 30 days. The rotation applies retention.
	clk.Add(21 * day)
	write(t, s, eventN(1))
	current2 := filepath.Base(s.File())
	want = []string{stillWritten, young, current, current2}
	if diff := cmp.Diff(want, logFileNames(t, dir)); diff != "" {
		t.Errorf("after rotation (-want +got):\n%s", diff)
	}
	for _, other := range []string{"notes.txt", "releases-backup.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, other)); err != nil {
			t.Errorf("%s: %v; retention must touch only log files", other, err)
		}
	}
}

func TestNoRetentionKeepsEverything(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := filepath.Join(dir, "releases-20200101T000000Z.jsonl")
	if err := os.WriteFile(old, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(old, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	s := openSink(t, FileSinkConfig{Dir: dir, RotateDaily: true, Now: newClock(testNow).Now})
	s.Close()
	if _, err := os.Stat(old); err != nil {
		t.Errorf("old file without retention: %v", err)
	}
}

// TestConcurrentWritersWholeLines runs many writers with rotation by size
// in both sync modes: every line must parse and every event be there once.
func TestConcurrentWritersWholeLines(t *testing.T) {
	t.Parallel()
	for _, mode := range []SyncMode{SyncEach, SyncBatch} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := openSink(t, FileSinkConfig{Dir: dir, Sync: mode, MaxBytes: 4096, Now: newClock(testNow).Now})
			const writers, each = 8, 60
			var wg sync.WaitGroup
			errs := make(chan error, writers*each)
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < each; i++ {
						e := eventN(w*each + i)
						// Vary the line length so torn writes would show.
						e.Upstream = fmt.Sprintf("upstream-%0*d", 1+(w*each+i)%200, 0)
						if err := s.Write(context.Background(), e); err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("Write: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, line := range readLines(t, dir) {
				var e Event
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("a line does not parse: %v", err)
				}
				seen[e.TxnID]++
			}
			if len(seen) != writers*each {
				t.Errorf("got %d distinct events, want %d", len(seen), writers*each)
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("%s written %d times", id, n)
				}
			}
			if len(logFileNames(t, dir)) < 2 {
				t.Error("expected rotation by size during the run")
			}
		})
	}
}

func TestMultiAndNopSink(t *testing.T) {
	t.Parallel()
	dirA, dirB := t.TempDir(), t.TempDir()
	a := openSink(t, FileSinkConfig{Dir: dirA, Now: newClock(testNow).Now})
	b := openSink(t, FileSinkConfig{Dir: dirB, Now: newClock(testNow).Now})
	m := MultiSink{a, NopSink{}, b}
	write(t, m, eventN(1))
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{dirA, dirB} {
		if n := len(readLines(t, dir)); n != 1 {
			t.Errorf("%d lines in one sink, want 1", n)
		}
	}
	if err := m.Write(context.Background(), eventN(2)); !errors.Is(err, ErrClosed) {
		t.Errorf("MultiSink after Close: err = %v, want ErrClosed", err)
	}
}

type countingCounter struct {
	mu sync.Mutex
	n  int
}

func (c *countingCounter) Inc() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

// TestWriteErrorsCounted removes the log directory, so that rotation into
// a new file fails: the error is returned and counted.
func TestWriteErrorsCounted(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "audit")
	errsCounter := &countingCounter{}
	clk := newClock(testNow)
	s := openSink(t, FileSinkConfig{Dir: dir, RotateDaily: true, Now: clk.Now, WriteErrors: errsCounter})
	write(t, s, eventN(1))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	clk.Add(24 * time.Hour)
	if err := s.Write(context.Background(), eventN(2)); err == nil {
		t.Fatal("Write into a removed directory succeeded")
	}
	if errsCounter.n != 1 {
		t.Errorf("write errors counted %d, want 1", errsCounter.n)
	}
}

func parseEvents(t *testing.T, b []byte) []Event {
	t.Helper()
	var out []Event
	for _, line := range splitLines(b) {
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("line does not parse: %v", err)
		}
		out = append(out, e)
	}
	return out
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		out = append(out, b[:i])
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return out
}
