package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/units"
)

// skolbro register shows the school units and affiliations each vendor is
// enabled for ("all" when not restricted), and with a shared store the
// admin's choice, which replaces the file's list (case 47).
func TestCase47_RegisterCommandShowsEnabledUnits(t *testing.T) {
	dir := deployDir(t)
	pol := filepath.Join(dir, "attribute-release", "example-learning-app.yaml")
	b, err := os.ReadFile(pol)
	if err != nil {
		t.Fatal(err)
	}
	write(t, pol, string(b)+"enabled_for:\n  school_units: [\"12345678\", \"87654321\"]\n  affiliations: [student]\n")
	cfg := filepath.Join(dir, "skolbro.yaml")

	code, out := runCmd("register", "--config", cfg, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, want := range []string{`"enabled_school_units": "12345678; 87654321"`, `"enabled_affiliations": "student"`} {
		if !strings.Contains(out, want) {
			t.Errorf("register lacks %s:\n%s", want, out)
		}
	}
	code, out = runCmd("register", "--config", cfg)
	if code != 0 || !strings.Contains(strings.SplitN(out, "\n", 2)[0], "enabled_school_units,enabled_affiliations") ||
		!strings.Contains(out, ",12345678; 87654321,student") {
		t.Errorf("CSV register: exit %d\n%s", code, out)
	}

	// With the Redis store, the admin's choice is what the register shows.
	mr := miniredis.RunT(t)
	c, _ := os.ReadFile(cfg)
	write(t, cfg, strings.Replace(string(c), "  type: memory ", "  type: redis\n  redis:\n    addrs: [\""+mr.Addr()+"\"]\n #", 1))
	st, err := store.NewRedisFromConfig([]string{mr.Addr()}, "", "", 0, "", nil, "skolbro:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := units.New(st, "exempel-kommun").Change(context.Background(), "example-learning-app",
		units.Change{At: time.Now(), By: "0123abcd", Action: units.ActionSet, Units: []string{"11112222"}}); err != nil {
		t.Fatal(err)
	}
	code, out = runCmd("register", "--config", cfg, "--format", "json")
	if code != 0 || !strings.Contains(out, `"enabled_school_units": "11112222"`) {
		t.Errorf("register with the admin's choice: exit %d\n%s", code, out)
	}

	// A store that does not answer: no register that may be wrong.
	mr.Close()
	if code, out = runCmd("register", "--config", cfg); code == 0 {
		t.Errorf("register without its store: exit 0\n%s", out)
	}
}
