package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/skolbro/skolbro/internal/mapping"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/upstreamnames"
)

// TestCase36_CheckWarnsSecurityMarkingNeverArrives: the example's
// security_marking name passes check on its own, yet masks everyone when
// the IdP sends another name (issue 17). With the record the running
// bridges keep, check warns with the file and key and lists what the IdP
// sent; inspect shows each name and how it is read, never a value.
func TestCase36_CheckWarnsSecurityMarkingNeverArrives(t *testing.T) {
	mr := miniredis.RunT(t)
	dir := deployDir(t)
	cfg := filepath.Join(dir, "skolbro.yaml")
	b, _ := os.ReadFile(cfg)
	s := regexp.MustCompile(`(?m)^store:\n  type: memory.*$`).ReplaceAllString(string(b), "store:\n  type: redis\n  redis:\n    addrs: [\""+mr.Addr()+"\"]")
	write(t, cfg, s)

	// Before any login: nothing to say.
	if code, out := runCmd("check", "--config", cfg); code != 0 || strings.Contains(out, "never arrived") {
		t.Fatalf("exit %d before any login:\n%s", code, out)
	}
	st, err := store.NewRedisFromConfig([]string{mr.Addr()}, "", "", 0, "", nil, "skolbro:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sent := []mapping.NameUse{
		{Attribute: "urn:oid:1.3.6.1.4.1.5923.1.1.1.6", FriendlyName: "eduPersonPrincipalName", Use: mapping.UseStableID},
		{Attribute: "http://schemas.microsoft.com/ws/2008/06/identity/claims/securitymarking", Use: mapping.UseNone},
		{Attribute: "urn:oid:2.5.4.42", FriendlyName: "givenName", Use: "givenName"},
	}
	if err := upstreamnames.Add(context.Background(), st, "exempel-kommun", "school-idp", sent, time.Now()); err != nil {
		t.Fatal(err)
	}
	code, out := runCmd("check", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	warn := regexp.MustCompile(`warning: .*skolbro\.yaml: organiser\.upstream\.security_marking: "urn:x-skolbro:securityMarking" never arrived in the logins of the last 30 days .*every person this upstream logs in is masked. The IdP sent: .*claims/securitymarking`)
	if !warn.MatchString(out) {
		t.Errorf("check output lacks the warning:\n%s", out)
	}

	var stdout, stderr bytes.Buffer
	if code := run([]string{"inspect", "--config", cfg}, &stdout, &stderr); code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{
		"organiser exempel-kommun, upstream school-idp (organiser.upstream)",
		"http://schemas.microsoft.com/ws/2008/06/identity/claims/securitymarking  ",
		"urn:oid:1.3.6.1.4.1.5923.1.1.1.6",
		"stable_id",
		`security_marking "urn:x-skolbro:securityMarking": NEVER ARRIVED`,
		"configured but never arrived: urn:x-skolbro:securityMarking",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("inspect lacks %q:\n%s", want, stdout.String())
		}
	}

	// Fixed: the warning goes once the marking arrives.
	write(t, cfg, strings.Replace(s, "security_marking: urn:x-skolbro:securityMarking", "security_marking: http://schemas.microsoft.com/ws/2008/06/identity/claims/securitymarking", 1))
	if code, out := runCmd("check", "--config", cfg); code != 0 || strings.Contains(out, "never arrived") {
		t.Errorf("exit %d after the fix:\n%s", code, out)
	}
}
