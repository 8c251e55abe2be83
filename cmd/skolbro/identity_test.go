package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/skolbro/skolbro/internal/app"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/generation"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/pseudonym"
	"github.com/skolbro/skolbro/internal/store"
)

// TestCase33_CheckWarnsSharedEPPNWithPairwise: `skolbro check` warns
// about a vendor that gets the shared EPPN together with a pairwise
// identifier, naming the file, the key and the fix; eppn: pairwise
// silences it.
func TestCase33_CheckWarnsSharedEPPNWithPairwise(t *testing.T) {
	dir := deployDir(t)
	cfg := filepath.Join(dir, "skolbro.yaml")
	pol := filepath.Join(dir, "attribute-release", "example-learning-app.yaml")
	b, _ := os.ReadFile(pol)
	write(t, pol, string(b)+"  - name: pairwise-id\n")
	code, out := runCmd("check", "--config", cfg)
	if code != 0 {
		t.Fatalf("check: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "warning: "+pol+":13: attributes[0].name: the vendor gets the shared EPPN") || !strings.Contains(out, "set eppn: pairwise") {
		t.Errorf("check does not warn about the shared EPPN with a pairwise-id:\n%s", out)
	}
	write(t, pol, strings.Replace(string(b), "display_name:", "eppn: pairwise\ndisplay_name:", 1)+"  - name: pairwise-id\n")
	if code, out := runCmd("check", "--config", cfg); code != 0 || strings.Contains(out, "shared EPPN") {
		t.Errorf("check with eppn: pairwise: exit %d\n%s", code, out)
	}
}

// TestCase36_ProtectNewIdentity: `skolbro protect new-identity` reads the
// personal number from stdin, records the request in the store the
// bridges share (so that the next login issues it), prints the date and
// never the number; with the memory store it points to the admin page.
func TestCase36_ProtectNewIdentity(t *testing.T) {
	mr := miniredis.RunT(t)
	dir := deployDir(t)
	cfgPath := filepath.Join(dir, "skolbro.yaml")
	b, _ := os.ReadFile(cfgPath)
	const pnr = "201012242382" // fictional, Luhn-correct
	run := func(stdin string) (int, string) {
		var out, errOut bytes.Buffer
		code := cmdProtect("new-identity", []string{"--config", cfgPath}, strings.NewReader(stdin), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := run(pnr + "\n"); code == 0 || !strings.Contains(out, "/admin/identity") || strings.Contains(out, pnr[2:]) {
		t.Errorf("with the memory store: exit %d, %s", code, out)
	}
	write(t, cfgPath, strings.Replace(string(b), "  type: memory ", "  type: redis\n  redis:\n    addrs: [\""+mr.Addr()+"\"]\n  #", 1))
	code, out := run(pnr + "\n")
	today := time.Now().UTC().Format(time.DateOnly)
	if code != 0 || !strings.Contains(out, "requested on "+today) || strings.Contains(out, pnr[2:]) || strings.Contains(out, pnr[2:8]) {
		t.Fatalf("new-identity: exit %d, %s", code, out)
	}
	if code, out := run("19121212\n"); code == 0 || strings.Contains(out, "19121212") {
		t.Errorf("a bad number: exit %d, %s", code, out)
	}

	// The next login with the number, on a bridge over the same store,
	// gets generation 1.
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Organisers[0]
	key, err := pseudonym.LoadKey(cfg.Path(o.Pseudonym.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	d, err := pseudonym.New(key, o.Scope)
	if err != nil {
		t.Fatal(err)
	}
	pn, _ := identity.ParsePersonalNumber(pnr, time.Now())
	k := generation.New(store.Namespace(st, app.Namespace(o)), d)
	g, err := k.ForLogin(context.Background(), &identity.Identity{StableID: identity.NewSecret("pupil-1"), PersonalNumber: pn, Protection: identity.ProtectionNone}, time.Now())
	if err != nil || g.Generation != 1 || g.Started != generation.CauseRequested {
		t.Errorf("the login after the command: %+v, %v", g, err)
	}
	for _, k := range mr.Keys() {
		if strings.Contains(k, pnr[2:]) || strings.Contains(k, "pupil-1") {
			t.Errorf("store key %q holds the number or the stable id", k)
		}
	}
}
