package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"
)

// SyncMode says when a FileSink calls fsync.
type SyncMode string

// Sync modes.
const (
	// SyncEach writes and fsyncs every event before Write returns.
	SyncEach SyncMode = "each"
	// SyncBatch groups the events of concurrent writers into one fsync
	// (group commit). Write still returns only after the fsync that
	// covers its event, so the guarantee is the same as SyncEach.
	SyncBatch SyncMode = "batch"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("audit: sink closed")

// FileSinkConfig configures a FileSink.
type FileSinkConfig struct {
	// Dir holds the log files; it is created (mode 0700) if missing.
	Dir string
	// MaxBytes starts a new file before an event would take the current
	// one past this size; 0 means no limit. An event larger than MaxBytes
	// still goes into a file of its own.
	MaxBytes int64
	// RotateDaily starts a new file at the first event of each UTC day.
	RotateDaily bool
	// Retention deletes log files whose every event is older than this,
	// at open and at each rotation; 0 keeps files forever.
	Retention time.Duration
	// Sync is SyncEach (the default) or SyncBatch.
	Sync SyncMode
	// MaxDelay, for SyncBatch, is how long the first event of a batch
	// waits for others before the fsync; 0 syncs as soon as the previous
	// fsync is done, which still groups the writers that arrived during it.
	MaxDelay time.Duration
	// Now is the clock for event times, file names, daily rotation and
	// retention; time.Now when nil.
	Now func() time.Time
	// WriteErrors, when set, counts events that failed to be written or
	// synced (skolbro_audit_write_errors_total).
	WriteErrors Counter
	// RetentionErrors, when set, counts files that retention failed to
	// delete at a rotation.
	RetentionErrors Counter
}

// FileSink appends events as JSON lines to files named
// releases-20261124T101500Z.jsonl (the UTC time the file was started) in
// one directory. Files are opened O_APPEND|O_CREATE|O_EXCL with mode 0600
// and never rewritten; every Open starts a new file, so a line torn by a
// crash is never continued by the next event. Each event is one write
// call under a mutex, so lines never interleave. It is safe for
// concurrent use.
type FileSink struct {
	cfg FileSinkConfig
	now func() time.Time
	// prefix starts the name of every file of this stream: releasePrefix,
	// or actionPrefix for the admin action log beside it.
	prefix string

	mu         sync.Mutex
	f          *os.File
	name       string // base name of f
	size       int64
	day        string // UTC date f was started on, 20061124
	needRotate bool   // after a failed write or sync: the file's end is uncertain
	closed     bool
	cur        *batch // SyncBatch: events written to f and not yet synced

	// syncMu is held while a batch fsync runs outside mu, so that a
	// rotation or Close does not close the file under it. Order: mu, then
	// syncMu.
	syncMu  sync.Mutex
	kick    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
}

// batch is one group commit: the events written since the last fsync.
type batch struct {
	n    int
	done chan struct{}
	err  error
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

func (b *batch) finish(err error) {
	b.err = err
	close(b.done)
}

// OpenFileSink checks cfg, creates the directory and a new log file, and
// applies retention. A file retention cannot delete is an error here, so
// that a misconfigured directory shows at start-up.
func OpenFileSink(cfg FileSinkConfig) (*FileSink, error) {
	return openStream(cfg, releasePrefix)
}

// openStream opens a stream of JSON-lines files named prefix+time.
func openStream(cfg FileSinkConfig, prefix string) (*FileSink, error) {
	switch {
	case cfg.Dir == "":
		return nil, errors.New("audit: no log directory")
	case cfg.MaxBytes < 0:
		return nil, errors.New("audit: max bytes must not be negative")
	case cfg.Retention < 0:
		return nil, errors.New("audit: retention must not be negative")
	case cfg.MaxDelay < 0:
		return nil, errors.New("audit: max delay must not be negative")
	}
	switch cfg.Sync {
	case "":
		cfg.Sync = SyncEach
	case SyncEach, SyncBatch:
	default:
		return nil, fmt.Errorf("audit: unknown sync mode %q; use each or batch", cfg.Sync)
	}
	s := &FileSink{cfg: cfg, now: cfg.Now, prefix: prefix}
	if s.now == nil {
		s.now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: create log directory: %w", err)
	}
	now := s.now()
	f, name, err := createLogFile(cfg.Dir, prefix, now)
	if err != nil {
		return nil, err
	}
	s.f, s.name, s.day = f, name, utcDay(now)
	if err := s.retain(now); err != nil {
		f.Close()
		return nil, err
	}
	if cfg.Sync == SyncBatch {
		s.cur = newBatch()
		s.kick = make(chan struct{}, 1)
		s.stop = make(chan struct{})
		s.stopped = make(chan struct{})
		go s.syncer()
	}
	return s, nil
}

// File returns the path of the file events are currently written to.
func (s *FileSink) File() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return filepath.Join(s.cfg.Dir, s.name)
}

// Write validates e, appends it as one line, and returns after the fsync
// that covers it. A zero e.Time is set from the sink's clock. Once the
// line is written, Write waits for its fsync even if ctx ends, so that a
// nil error always means the event is on disk.
func (s *FileSink) Write(ctx context.Context, e Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.now()
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC()
	if e.Attributes == nil {
		e.Attributes = []string{}
	}
	if err := e.Validate(); err != nil {
		return err
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: encode event: %w", err)
	}
	return s.writeLine(now, append(line, '\n'))
}

// writeLine appends one encoded line and returns after the fsync that
// covers it.
func (s *FileSink) writeLine(now time.Time, line []byte) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if err := s.rotateIfNeeded(now, int64(len(line))); err != nil {
		s.mu.Unlock()
		s.countWriteError()
		return err
	}
	n, err := s.f.Write(line)
	s.size += int64(n)
	if err != nil {
		// A short write leaves a torn line: continue in a new file.
		s.needRotate = true
		s.mu.Unlock()
		s.countWriteError()
		return fmt.Errorf("audit: write event: %w", err)
	}
	if s.cfg.Sync == SyncEach {
		err := s.f.Sync()
		if err != nil {
			s.needRotate = true
		}
		s.mu.Unlock()
		if err != nil {
			s.countWriteError()
			return fmt.Errorf("audit: sync event: %w", err)
		}
		return nil
	}
	b := s.cur
	b.n++
	if b.n == 1 {
		select {
		case s.kick <- struct{}{}:
		default: // a kick is pending; it will take this batch
		}
	}
	s.mu.Unlock()
	<-b.done
	if b.err != nil {
		s.countWriteError()
		return fmt.Errorf("audit: sync event: %w", b.err)
	}
	return nil
}

// syncer runs the group commits of SyncBatch. Every batch that receives
// its first event sends a kick (or finds one pending, which has not yet
// taken the current batch), so no batch is left without an fsync.
func (s *FileSink) syncer() {
	defer close(s.stopped)
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		}
		if s.cfg.MaxDelay > 0 {
			t := time.NewTimer(s.cfg.MaxDelay)
			select {
			case <-t.C:
			case <-s.stop:
				t.Stop()
				return
			}
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		b := s.cur
		if b.n == 0 {
			// A rotation already synced and finished it.
			s.mu.Unlock()
			continue
		}
		s.cur = newBatch()
		f := s.f
		// Take syncMu before letting go of mu, so that no rotation can
		// close f in between; writers carry on into the next batch.
		s.syncMu.Lock()
		s.mu.Unlock()
		err := f.Sync()
		s.syncMu.Unlock()
		if err != nil {
			s.mu.Lock()
			if s.f == f {
				s.needRotate = true
			}
			s.mu.Unlock()
		}
		b.finish(err)
	}
}

// rotateIfNeeded starts a new file when the current one is full, from an
// earlier day, or of uncertain end. Called with mu held.
func (s *FileSink) rotateIfNeeded(now time.Time, n int64) error {
	need := s.needRotate
	if s.cfg.MaxBytes > 0 && s.size > 0 && s.size+n > s.cfg.MaxBytes {
		need = true
	}
	if s.cfg.RotateDaily && utcDay(now) != s.day {
		need = true
	}
	if !need {
		return nil
	}
	nf, name, err := createLogFile(s.cfg.Dir, s.prefix, now)
	if err != nil {
		return err
	}
	old := s.f
	s.syncMu.Lock() // wait for a batch fsync of old to finish
	serr := old.Sync()
	if cerr := old.Close(); serr == nil {
		serr = cerr
	}
	s.syncMu.Unlock()
	if s.cur != nil && s.cur.n > 0 {
		// Every event in the current batch went to old; its fsync
		// just happened.
		s.cur.finish(serr)
		s.cur = newBatch()
	}
	s.f, s.name, s.size, s.day, s.needRotate = nf, name, 0, utcDay(now), false
	if err := s.retain(now); err != nil && s.cfg.RetentionErrors != nil {
		s.cfg.RetentionErrors.Inc()
	}
	return nil
}

// Close syncs and closes the current file. Events whose Write returned
// nil were already on disk; Close also finishes a pending batch.
func (s *FileSink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.syncMu.Lock()
	err := s.f.Sync()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.syncMu.Unlock()
	if s.cur != nil && s.cur.n > 0 {
		s.cur.finish(err)
		s.cur = newBatch()
	}
	s.mu.Unlock()
	if s.stop != nil {
		close(s.stop)
		<-s.stopped
	}
	if err != nil {
		return fmt.Errorf("audit: close log file: %w", err)
	}
	return nil
}

func (s *FileSink) countWriteError() {
	if s.cfg.WriteErrors != nil {
		s.cfg.WriteErrors.Inc()
	}
}

// retain deletes the log files whose events are all older than the
// retention. A file's last event is no later than the start of the next
// file (files are named by start time), and no later than its
// modification time; both must be before the cutoff, so that a file
// another process still writes to is never deleted. The current file is
// never deleted, nor anything not named like a log file. Called with mu
// held, or before the sink is shared.
func (s *FileSink) retain(now time.Time) error {
	if s.cfg.Retention <= 0 {
		return nil
	}
	files, err := listLogFiles(s.cfg.Dir, s.prefix)
	if err != nil {
		return err
	}
	cutoff := now.Add(-s.cfg.Retention)
	var errs []error
	for i := 0; i+1 < len(files); i++ {
		lf := files[i]
		if lf.name == s.name || !files[i+1].start.Before(cutoff) {
			continue
		}
		path := filepath.Join(s.cfg.Dir, lf.name)
		fi, err := os.Lstat(path)
		if err != nil || !fi.Mode().IsRegular() || !fi.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("audit: retention: %w", err))
		}
	}
	return errors.Join(errs...)
}

const fileTimeFormat = "20060102T150405Z"

// File name prefixes of the two streams in the log directory.
const (
	releasePrefix = "releases-"
	actionPrefix  = "admin-actions-"
)

// streamFileNames match the names createLogFile makes, per prefix.
var streamFileNames = map[string]*regexp.Regexp{
	releasePrefix: regexp.MustCompile(`^releases-(\d{8}T\d{6}Z)(?:-(\d{1,4}))?\.jsonl$`),
	actionPrefix:  regexp.MustCompile(`^admin-actions-(\d{8}T\d{6}Z)(?:-(\d{1,4}))?\.jsonl$`),
}

type logFile struct {
	name  string
	start time.Time
	seq   int
}

// listLogFiles returns the files of one stream in dir, oldest first.
func listLogFiles(dir, prefix string) ([]logFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: read log directory: %w", err)
	}
	pattern := streamFileNames[prefix]
	var files []logFile
	for _, e := range entries {
		m := pattern.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			continue
		}
		start, err := time.Parse(fileTimeFormat, m[1])
		if err != nil {
			continue
		}
		seq := 0
		if m[2] != "" {
			seq, _ = strconv.Atoi(m[2])
		}
		files = append(files, logFile{name: e.Name(), start: start, seq: seq})
	}
	sort.Slice(files, func(i, j int) bool {
		if !files[i].start.Equal(files[j].start) {
			return files[i].start.Before(files[j].start)
		}
		return files[i].seq < files[j].seq
	})
	return files, nil
}

// createLogFile makes a new, empty log file named by now; a second file
// in the same second gets a suffix -1, -2 and so on. O_EXCL makes sure no
// existing file, possibly ending in a torn line, is ever continued. The
// directory is synced so that the new name survives a crash.
func createLogFile(dir, prefix string, now time.Time) (*os.File, string, error) {
	base := prefix + now.UTC().Format(fileTimeFormat)
	for i := 0; i < 10000; i++ {
		name := base + ".jsonl"
		if i > 0 {
			name = base + "-" + strconv.Itoa(i) + ".jsonl"
		}
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("audit: create log file: %w", err)
		}
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, "", err
		}
		return f, name, nil
	}
	return nil, "", errors.New("audit: create log file: too many files in one second")
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: sync log directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: sync log directory: %w", err)
	}
	return nil
}

func utcDay(t time.Time) string { return t.UTC().Format("20060102") }
