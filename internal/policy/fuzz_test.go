package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxEcho is the most of a policy file a problem may repeat: enough to
// name a wrong value, too little to copy a file (or a secret pasted into
// one) into logs and check output.
const maxEcho = 200

// wholeFileProblems start the messages of problems that concern the whole
// file and so carry no key.
var wholeFileProblems = []string{
	"invalid YAML",
	"empty policy file",
	"more than one YAML document",
	"must be a mapping",
}

// FuzzPolicyLoad writes fuzzed bytes as one policy file and loads it. The
// result is a policy (possibly with warnings) or errors, never neither;
// every problem names the file, and the key unless it is about the whole
// file; no problem repeats more than maxEcho bytes of the input.
func FuzzPolicyLoad(f *testing.F) {
	for _, dir := range []string{validDir, brokenDir, "../demo/policies"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	for _, s := range []string{
		"",
		"---\n---\n",
		"- a\n- b\n",
		"id: &a [*a]\n",
		"a: &a {b: *a}\n",
		"saml:\n  entity_id: https://" + strings.Repeat("x", 300) + "\n",
		"id: \"\\u0000\"\n",
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		path := filepath.Join(t.TempDir(), "vendor.yaml")
		if err := os.WriteFile(path, in, 0o600); err != nil {
			t.Fatal(err)
		}
		p, problems := LoadFile(path, At(testNow))
		switch {
		case p == nil && len(problems) == 0:
			t.Fatal("neither a policy nor problems")
		case p == nil && !HasErrors(problems):
			t.Fatal("no policy, yet only warnings")
		case p != nil && HasErrors(problems):
			t.Fatal("a policy despite errors")
		case p != nil && p.File != path:
			t.Fatalf("policy file %q, want %q", p.File, path)
		}
		for _, pr := range problems {
			if pr.File != path {
				t.Fatalf("problem names file %q, want %q", pr.File, path)
			}
			if pr.Key == "" && !isWholeFile(pr.Message) {
				t.Fatalf("problem without a key: %q", truncate(pr.Message))
			}
			for _, fs := range [][2]string{{"Key", pr.Key}, {"Message", pr.Message}} {
				if n := echoed(fs[1], string(in)); n > maxEcho {
					t.Fatalf("problem %s on line %d repeats more than %d bytes of the input: %q", fs[0], pr.Line, maxEcho, truncate(fs[1]))
				}
			}
		}
	})
}

func isWholeFile(msg string) bool {
	for _, p := range wholeFileProblems {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// echoed returns maxEcho+1 when s shares a run of more than maxEcho bytes
// with in, and 0 otherwise. Any such run covers a whole aligned block of
// half that length, so only runs through a block found in in are tried.
func echoed(s, in string) int {
	const block = maxEcho / 2
	if len(s) <= maxEcho || len(in) <= maxEcho {
		return 0
	}
	for b := 0; b+block <= len(s); b += block {
		if !strings.Contains(in, s[b:b+block]) {
			continue
		}
		for start := max(0, b-block); start <= b && start+maxEcho < len(s); start++ {
			if strings.Contains(in, s[start:start+maxEcho+1]) {
				return maxEcho + 1
			}
		}
	}
	return 0
}

func truncate(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
