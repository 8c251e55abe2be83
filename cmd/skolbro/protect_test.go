package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
)

// TestCase36_CheckWarnsRegisterWithoutPersonalNumber: `skolbro check`
// prints the warning when the register is configured and the upstream's
// metadata lists no attribute the bridge reads a personal number from.
func TestCase36_CheckWarnsRegisterWithoutPersonalNumber(t *testing.T) {
	dir := deployDir(t)
	cfg := filepath.Join(dir, "skolbro.yaml")
	b, _ := os.ReadFile(cfg)
	s := strings.Replace(string(b), "  metadata_dir: metadata", "  protection:\n    register:\n      key_file: keys/pseudonym.key\n      file: register.json\n  metadata_dir: metadata", 1)
	s = strings.Replace(s, "    clock_skew: 2m\n", "    clock_skew: 2m\n    personal_number: [http://schemas.exempel.se/claims/pnr]\n", 1)
	write(t, cfg, s)
	meta := filepath.Join(dir, "metadata", "upstream", "school-idp.xml")
	mb, _ := os.ReadFile(meta)
	write(t, meta, strings.Replace(string(mb), "  </md:IDPSSODescriptor>",
		`    <saml:Attribute xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" Name="http://schemas.exempel.se/claims/personnummer"/>`+"\n  </md:IDPSSODescriptor>", 1))

	code, out := runCmd("check", "--config", cfg)
	if code != 0 {
		t.Fatalf("check: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "warning: "+cfg+": organiser.upstream.personal_number: the protection register finds people by personal number") {
		t.Errorf("check does not warn that no personal number can arrive:\n%s", out)
	}
}

// TestCase36_ProtectInitOnRedis: with the Redis store, adding before
// `protect init` is refused with a message saying what to run; init
// creates the register, and says so.
func TestCase36_ProtectInitOnRedis(t *testing.T) {
	mr := miniredis.RunT(t)
	dir := deployDir(t)
	cfg := filepath.Join(dir, "skolbro.yaml")
	b, _ := os.ReadFile(cfg)
	s := strings.Replace(string(b), "  metadata_dir: metadata", "  protection:\n    register:\n      key_file: keys/pseudonym.key\n  metadata_dir: metadata", 1)
	s = strings.Replace(s, "  type: memory ", "  type: redis\n  redis:\n    addrs: [\""+mr.Addr()+"\"]\n  #", 1)
	write(t, cfg, s)
	protect := func(op, stdin string) (int, string) {
		var out, errOut bytes.Buffer
		code := cmdProtect(op, []string{"--config", cfg}, strings.NewReader(stdin), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	const pnr = "201012242382" // fictional, Luhn-correct
	if code, out := protect("add", pnr+"\n"); code == 0 || !strings.Contains(out, "skolbro protect init") || strings.Contains(out, pnr[2:]) {
		t.Errorf("add before init: exit %d, %s", code, out)
	}
	if code, out := protect("init", ""); code != 0 || !strings.Contains(out, "ready") {
		t.Fatalf("init: exit %d, %s", code, out)
	}
	if code, out := protect("add", pnr+"\n"); code != 0 {
		t.Fatalf("add after init: exit %d, %s", code, out)
	}
	if keys, err := mr.HKeys("skolbro:protect:register"); err != nil || len(keys) != 2 {
		t.Errorf("register hash holds %d fields, %v; want the marker and one entry", len(keys), err)
	}
	mr.FlushAll()
	if code, out := protect("list", ""); code == 0 || !strings.Contains(out, "not initialised") {
		t.Errorf("list after a flush: exit %d, %s", code, out)
	}
}
