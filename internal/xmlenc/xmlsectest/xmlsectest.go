// Package xmlsectest runs xmlsec1, the command-line tool of the XML Security
// Library, so that tests can check the bridge's XML signatures and
// encryption against an implementation the project did not write.
//
// A missing xmlsec1 skips the test on a developer machine and fails it when
// CI=true, because CI must run these checks (Debian package xmlsec1).
package xmlsectest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Path returns the path of the xmlsec1 binary; see the package comment for
// what happens when it is missing.
func Path(t testing.TB) string {
	t.Helper()
	return Tool(t, "xmlsec1")
}

// Tool returns the path of a command-line tool the test needs, with the
// same skip-or-fail rule as Path.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI but was not found: %v", name, err)
		}
		t.Skipf("%s not installed; skipping interoperability test", name)
	}
	return p
}

// Run runs xmlsec1 with args and returns its standard output and standard
// error; err is non-nil when it exits with a failure.
func Run(t testing.TB, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	return RunTool(t, Path(t), args...)
}

// RunTool runs the tool at path with args, stopped when the test ends.
func RunTool(t testing.TB, path string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(t.Context(), path, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}

// HasTransform reports whether the installed xmlsec1 knows the transform
// name as its --list-transforms prints it (for example "rsa-oaep-enc11",
// XML Encryption 1.1 RSA-OAEP, which xmlsec1 1.2 lacks).
func HasTransform(t testing.TB, name string) bool {
	t.Helper()
	out, errOut, err := Run(t, "--list-transforms")
	if err != nil {
		t.Fatalf("xmlsec1 --list-transforms: %v: %s", err, errOut)
	}
	// The list is printed as "name","name",... on one or more lines.
	return strings.Contains(string(out)+string(errOut), `"`+name+`"`)
}

// Version returns the first line of xmlsec1 --version.
func Version(t testing.TB) string {
	t.Helper()
	out, _, err := Run(t, "--version")
	if err != nil {
		return "unknown version"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// WriteFile writes data to name in dir and returns its path.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
