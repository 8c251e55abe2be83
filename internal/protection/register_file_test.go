package protection

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/skolbro/skolbro/internal/identity"
)

func newFileBackend(t *testing.T) backendUnderTest {
	path := filepath.Join(t.TempDir(), "protect.json")
	fr := NewFileRegister(path)
	if err := fr.Init(bg); err != nil {
		t.Fatal(err)
	}
	return backendUnderTest{
		backend: fr,
		raw: func(t *testing.T) []byte {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	}
}

func TestFileRegister(t *testing.T) {
	t.Parallel()
	runRegisterTests(t, newFileBackend)
}

func newFileRegister(t *testing.T, path string) *Register {
	t.Helper()
	r, err := NewRegister(NewFileRegister(path), testRegisterKey)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestFileRegisterSeesOtherInstance: a running server's register sees a
// change another Register (another process's `skolbro protect`) made to
// the file, after it has read and cached the file.
func TestFileRegisterSeesOtherInstance(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "protect.json")
	server, admin := newFileRegister(t, path), newFileRegister(t, path)
	if err := server.backend.(*FileRegister).Init(bg); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, server, person(t, testNumbers[0]), identity.ProtectionNone) // read and cached

	mustAdd(t, admin, testNumbers[0], "")
	wantStatus(t, server, person(t, testNumbers[0]), identity.ProtectionManual)

	// A second change of the same size within the same mtime tick is
	// still seen: the rename makes a new file.
	if err := admin.Remove(bg, mustPNR(t, testNumbers[0])); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, admin, testNumbers[1], "")
	wantStatus(t, server, person(t, testNumbers[0]), identity.ProtectionNone)
	wantStatus(t, server, person(t, testNumbers[1]), identity.ProtectionManual)

	// And the admin sees what the server's instance wrote.
	mustAdd(t, server, testNumbers[2], "")
	wantStatus(t, admin, person(t, testNumbers[2]), identity.ProtectionManual)
}

// TestFileRegisterConcurrentWriters: two instances adding at once lose no
// entry (the lock and the re-read before every write).
func TestFileRegisterConcurrentWriters(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "protect.json")
	a, b := newFileRegister(t, path), newFileRegister(t, path)
	var wg sync.WaitGroup
	for i, n := range testNumbers {
		r := a
		if i%2 == 1 {
			r = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Add(bg, mustPNR(t, n), "", testNow); err != nil {
				t.Errorf("Add: %v", err)
			}
		}()
	}
	wg.Wait()
	got, err := a.List(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(testNumbers) {
		t.Errorf("List has %d entries, want %d", len(got), len(testNumbers))
	}
}

func TestFileRegisterFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "protect.json")
	r := newFileRegister(t, path)

	// A missing file is an error, and the Resolver fails closed on it.
	if _, err := r.Status(bg, person(t, testNumbers[0])); !errors.Is(err, ErrRegisterFileMissing) {
		t.Errorf("Status with no file = %v, want ErrRegisterFileMissing", err)
	}
	level, failures := (&Resolver{Sources: []Source{r}}).Resolve(bg, person(t, testNumbers[0]))
	if level != identity.ProtectionUnknown || len(failures) != 1 {
		t.Errorf("Resolve with no file = %v, %v; want unknown and a failure", level, failures)
	}
	// Deleting from a missing file creates nothing.
	if err := r.backend.Delete(bg, "x"); err != nil {
		t.Errorf("Delete with no file = %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Delete created the file: %v", err)
	}

	// Init creates an empty register, mode 0600, and leaves an existing
	// one alone.
	fr := r.backend.(*FileRegister)
	if err := fr.Init(bg); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, r, person(t, testNumbers[0]), identity.ProtectionNone)
	mustAdd(t, r, testNumbers[0], "")
	if err := fr.Init(bg); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, r, person(t, testNumbers[0]), identity.ProtectionManual)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode = %v, want 0600", mode)
	}

	// No temporary file is left behind.
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n.Name() != "protect.json" && n.Name() != "protect.json.lock" {
			t.Errorf("left behind: %s", n.Name())
		}
	}

	// A file that is not a register is an error, also for a writer, and
	// the error does not quote it.
	if err := os.WriteFile(path, []byte(`{"entries": `+testNumbers[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = r.Status(bg, person(t, testNumbers[0]))
	if !errors.Is(err, ErrRegisterFileBad) {
		t.Errorf("Status on a bad file = %v, want ErrRegisterFileBad", err)
	} else {
		assertNoNumberInText(t, "error", err.Error())
	}
	if err := r.Add(bg, mustPNR(t, testNumbers[2]), "", testNow); !errors.Is(err, ErrRegisterFileBad) {
		t.Errorf("Add on a bad file = %v, want ErrRegisterFileBad", err)
	}
	if err := os.WriteFile(path, []byte(`{"version": 2, "entries": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Status(bg, person(t, testNumbers[0])); !errors.Is(err, ErrRegisterFileBad) {
		t.Errorf("Status on a version 2 file = %v, want ErrRegisterFileBad", err)
	}
}
