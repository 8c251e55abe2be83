package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// Every command prints its usage on stdout and exits 0 when asked for
// help, however it is asked (issue 17: -h used to exit 2).
func TestCLI_HelpExitsZeroOnEveryCommand(t *testing.T) {
	commands := [][]string{
		{}, {"serve"}, {"reload"}, {"check"}, {"demo"}, {"register"}, {"metadata"}, {"bench"},
		{"protect"}, {"protect", "add"}, {"protect", "list"}, {"audit"}, {"audit", "subject"}, {"version"},
		{"keys"}, {"keys", "init"}, {"keys", "rotate"}, {"keys", "rotate", "signing"}, {"keys", "show"}, {"inspect"}, {"diff"},
	}
	for _, cmd := range commands {
		for _, h := range []string{"-h", "--help", "-help"} {
			args := append(append([]string{}, cmd...), h)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var out, errOut bytes.Buffer
				if code := run(args, &out, &errOut); code != 0 {
					t.Errorf("exit %d, want 0; stderr: %s", code, errOut.String())
				}
				if !strings.Contains(strings.ToLower(out.String()), "usage") && !strings.HasPrefix(out.String(), "skolbro ") {
					t.Errorf("no usage on stdout: %q", out.String())
				}
				if errOut.Len() != 0 {
					t.Errorf("help wrote to stderr: %q", errOut.String())
				}
			})
		}
	}
	// skolbro help CMD is CMD -h.
	var out, errOut bytes.Buffer
	if code := run([]string{"help", "check"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "skolbro check --config FILE") {
		t.Errorf("help check: exit %d, stdout %q", code, out.String())
	}
}

// Errors go to stderr with a non-zero status; nothing is printed on
// stdout that a script could take for output.
func TestCLI_ErrorsGoToStderrNonZero(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"nonsense"}, 2},
		{[]string{"serve"}, 2},
		{[]string{"serve", "--nope"}, 2},
		{[]string{"check", "extra-argument"}, 2},
		{[]string{"check", "--config", missing}, 1},
		{[]string{"register", "--config", missing}, 2},
		{[]string{"metadata", "--config", missing, "--out", t.TempDir()}, 2},
		{[]string{"protect"}, 2},
		{[]string{"protect", "list", "--config", missing}, 2},
		{[]string{"audit", "nothing"}, 2},
		{[]string{"reload"}, 2},
		{[]string{"reload", "--pid-file", missing}, 1},
		{[]string{"version", "extra"}, 2},
		{[]string{"bench", "--nope"}, 2},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tc.args, &out, &errOut)
			if code != tc.want {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.want, errOut.String())
			}
			if errOut.Len() == 0 {
				t.Error("nothing on stderr")
			}
			if out.Len() != 0 {
				t.Errorf("an error wrote to stdout: %q", out.String())
			}
		})
	}
}

func TestCLI_Version(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "skolbro ") || !strings.Contains(out.String(), "go1.") {
		t.Errorf("version = %q, want the module version and the Go version", out.String())
	}
}
