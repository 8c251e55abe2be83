package protection

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/skolbro/skolbro/internal/store"
)

// maxRegisterFile bounds the register file read into memory: some hundred
// thousand entries.
const maxRegisterFile = 64 << 20

// registerFileVersion is the file format's version.
const registerFileVersion = 1

// ErrRegisterFileMissing is returned when the register file does not
// exist. A missing file is an error, not an empty register, so that a
// deleted file or an unmounted volume cannot silently unprotect everyone
// in it: every lookup fails and the Resolver fails closed. Create an empty
// register with Init (`skolbro protect init`); adding the first marking
// (Register.Add) creates it too.
var ErrRegisterFileMissing = errors.New("protection: register file missing (create it with init)")

// ErrRegisterFileBad is returned for a register file that cannot be read as
// a register.
var ErrRegisterFileBad = errors.New("protection: register file unreadable")

// registerFile is the file's content.
type registerFile struct {
	Version int                        `json:"version"`
	Entries map[string]json.RawMessage `json:"entries"`
}

// FileRegister is a RegisterBackend in a JSON file, for a single bridge
// instance on the memory store. Writes replace the file atomically
// (temporary file, fsync, rename; mode 0600), under a lock file on
// platforms with flock, so that two admin commands cannot lose each
// other's change. Reads re-read the file whenever it was replaced or
// changed, so a running server sees markings that `skolbro protect add`
// made from another process. It is safe for concurrent use.
type FileRegister struct {
	path string

	mu      sync.Mutex
	entries map[string]json.RawMessage
	info    fs.FileInfo // of the file entries were read from
}

var _ RegisterBackend = (*FileRegister)(nil)

// NewFileRegister returns a backend on the file at path. It does not touch
// the file.
func NewFileRegister(path string) *FileRegister {
	return &FileRegister{path: path}
}

// Init creates an empty register file if none exists; an existing file is
// left alone (but must be readable).
func (f *FileRegister) Init(context.Context) error {
	return f.update(true, func(map[string]json.RawMessage) error { return errUnchanged })
}

// Ready returns nil when the register file exists and reads as a
// register: ErrRegisterFileMissing or ErrRegisterFileBad otherwise.
func (f *FileRegister) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.load()
	return err
}

// Get returns the value under key, or store.ErrNotFound.
func (f *FileRegister) Get(_ context.Context, key string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	entries, err := f.load()
	if err != nil {
		return nil, err
	}
	v, ok := entries[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(v), nil
}

// List returns every entry.
func (f *FileRegister) List(_ context.Context) (map[string][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	entries, err := f.load()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(entries))
	for k, v := range entries {
		out[k] = bytes.Clone(v)
	}
	return out, nil
}

// Set stores val (a JSON value) under key, creating the file if needed.
func (f *FileRegister) Set(_ context.Context, key string, val []byte) error {
	if !json.Valid(val) {
		return errors.New("protection: file register: value is not JSON")
	}
	v := json.RawMessage(bytes.Clone(val))
	return f.update(true, func(m map[string]json.RawMessage) error {
		m[key] = v
		return nil
	})
}

// Delete removes key; deleting an absent key is not an error, and neither
// creates the file.
func (f *FileRegister) Delete(_ context.Context, key string) error {
	return f.update(false, func(m map[string]json.RawMessage) error {
		if _, ok := m[key]; !ok {
			return errUnchanged
		}
		delete(m, key)
		return nil
	})
}

// errUnchanged, returned by an update's change, skips the write, unless
// the file is missing and is to be created.
var errUnchanged = errors.New("unchanged")

// update applies change to the current entries and writes them back,
// holding the in-process mutex and the inter-process lock. A missing file
// starts empty if create is set; otherwise update does nothing.
func (f *FileRegister) update(create bool, change func(map[string]json.RawMessage) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	unlock, err := lockFile(f.path + ".lock")
	if err != nil {
		return fmt.Errorf("protection: file register: lock: %w", err)
	}
	defer unlock()

	entries, err := f.load()
	missing := errors.Is(err, ErrRegisterFileMissing)
	switch {
	case missing && !create:
		return nil
	case missing:
		entries, err = map[string]json.RawMessage{}, nil
	}
	if err != nil {
		return err
	}
	next := make(map[string]json.RawMessage, len(entries)+1)
	for k, v := range entries {
		next[k] = v
	}
	switch err := change(next); {
	case errors.Is(err, errUnchanged) && !missing:
		return nil
	case errors.Is(err, errUnchanged):
	case err != nil:
		return err
	}
	info, err := f.write(next)
	if err != nil {
		return err
	}
	f.entries, f.info = next, info
	return nil
}

// load returns the entries, re-reading the file when it is not the one
// last read (another inode, size or modification time). f.mu is held.
func (f *FileRegister) load() (map[string]json.RawMessage, error) {
	info, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		f.entries, f.info = nil, nil
		return nil, ErrRegisterFileMissing
	}
	if err != nil {
		return nil, fmt.Errorf("protection: file register: %w", err)
	}
	if f.info != nil && os.SameFile(info, f.info) && info.Size() == f.info.Size() && info.ModTime().Equal(f.info.ModTime()) {
		return f.entries, nil
	}

	file, err := os.Open(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrRegisterFileMissing
	}
	if err != nil {
		return nil, fmt.Errorf("protection: file register: %w", err)
	}
	defer file.Close()
	// The info of the file actually read, which a rename between Stat and
	// Open may have made another than the one stated above.
	info, err = file.Stat()
	if err != nil {
		return nil, fmt.Errorf("protection: file register: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(file, maxRegisterFile+1))
	if err != nil {
		return nil, fmt.Errorf("protection: file register: %w", err)
	}
	if len(b) > maxRegisterFile {
		return nil, fmt.Errorf("%w: too large", ErrRegisterFileBad)
	}
	var rf registerFile
	if err := json.Unmarshal(b, &rf); err != nil || rf.Version != registerFileVersion {
		// The parser's message may quote the file; it is not kept.
		return nil, fmt.Errorf("%w: not a version %d register", ErrRegisterFileBad, registerFileVersion)
	}
	if rf.Entries == nil {
		rf.Entries = map[string]json.RawMessage{}
	}
	f.entries, f.info = rf.Entries, info
	return f.entries, nil
}

// write replaces the file with entries atomically and returns the new
// file's info.
func (f *FileRegister) write(entries map[string]json.RawMessage) (fs.FileInfo, error) {
	b, err := json.MarshalIndent(registerFile{Version: registerFileVersion, Entries: entries}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("protection: file register: %w", err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("protection: file register: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return nil, fmt.Errorf("protection: file register: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		return nil, fmt.Errorf("protection: file register: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("protection: file register: %w", err)
	}
	info, err := tmp.Stat()
	if err != nil {
		return nil, fmt.Errorf("protection: file register: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("protection: file register: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return nil, fmt.Errorf("protection: file register: %w", err)
	}
	done = true
	syncDir(dir)
	return info, nil
}

// syncDir makes the rename durable where the platform allows it; failing
// to is not an error (some platforms cannot fsync a directory).
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
