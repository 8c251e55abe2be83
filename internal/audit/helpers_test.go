package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/identity"
)

// testNow is the injected clock's start: the time in the task's example
// file name, inside every valid test agreement.
var testNow = time.Date(2026, 11, 24, 10, 15, 0, 0, time.UTC)

// clock is an injected clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// pnDigits completes YYYYMMDDNNN with its Luhn control digit, so tests
// can make valid personal numbers that belong to nobody in particular.
func pnDigits(first11 string) string {
	s := first11[2:]
	sum := 0
	for i := 0; i < len(s); i++ {
		d := int(s[i] - '0')
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return first11 + string(rune('0'+(10-sum%10)%10))
}

// Test people: two classmates, with names that must never reach the log.
var (
	pupilPN     = pnDigits("20100315123")
	classmatePN = pnDigits("20100522456")
	pupilNames  = []string{"Tolvan", "Tolvansson", "Tolvan Tolvansson"}
	mateNames   = []string{"Alva", "Andersson", "Alva Andersson"}
)

func mustPN(t *testing.T, s string) identity.PersonalNumber {
	t.Helper()
	pn, err := identity.ParsePersonalNumber(s, testNow)
	if err != nil {
		t.Fatalf("test personal number does not parse: %v", err)
	}
	return pn
}

func testKeyer(t *testing.T) *SubjectKeyer {
	t.Helper()
	k, err := NewSubjectKeyer([]byte("0123456789abcdef0123456789abcdef-audit"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pnPattern is SECURITY.md's personal number pattern (case 37).
var pnPattern = regexp.MustCompile(`\d{6,8}[-+]?\d{4}`)

// hexFields hold MACs and hashes: digit runs in them are not numbers.
var hexFields = map[string]bool{"subject_key": true, "subject_keys": true, "policy_version": true}

// personalDataProblems lists the fields of a logged line, other than the
// hex ones, that look like a personal number or hold a test name.
func personalDataProblems(line string) ([]string, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		return nil, err
	}
	names := append(append([]string{}, pupilNames...), mateNames...)
	var problems []string
	var check func(field string, v any)
	check = func(field string, v any) {
		switch v := v.(type) {
		case string:
			if pnPattern.MatchString(v) {
				problems = append(problems, field+" looks like a personal number")
			}
			for _, n := range names {
				if strings.Contains(v, n) {
					problems = append(problems, field+" holds a test person's name")
				}
			}
		case []any:
			for _, e := range v {
				check(field, e)
			}
		case map[string]any:
			problems = append(problems, field+" is an object; events are flat")
		}
	}
	for k, v := range m {
		if hexFields[k] {
			vs, isList := v.([]any)
			if !isList {
				vs = []any{v}
			}
			for _, v := range vs {
				if s, ok := v.(string); !ok || !hexOnly.MatchString(s) {
					problems = append(problems, k+" is not hex")
				}
			}
			continue
		}
		check(k, v)
	}
	sort.Strings(problems)
	return problems, nil
}

var hexOnly = regexp.MustCompile(`^[0-9a-f]*$`)

func checkNoPersonalData(t *testing.T, line string) {
	t.Helper()
	problems, err := personalDataProblems(line)
	if err != nil {
		t.Fatalf("line does not parse: %v", err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// readLines returns every line of every log file in dir, in file order.
func readLines(t *testing.T, dir string) []string {
	t.Helper()
	var lines []string
	for _, name := range logFileNames(t, dir) {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return lines
}

// logFileNames lists the log files in dir, sorted.
func logFileNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if streamFileNames[releasePrefix].MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}
