package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/skolbro/skolbro/internal/pnrvalues"
	"github.com/skolbro/skolbro/internal/store"
)

// TestCase36_CheckShowsAttributesDroppedForPersonalNumber: check opens the
// configured store and names every upstream attribute whose values held a
// personal number in recent logins, with the configuration file and key;
// it says so when it cannot read the record, and where to look with the
// memory store.
func TestCase36_CheckShowsAttributesDroppedForPersonalNumber(t *testing.T) {
	const mail = "urn:oid:0.9.2342.19200300.100.1.3"
	mr := miniredis.RunT(t)
	dir := deployDir(t)
	cfg := filepath.Join(dir, "skolbro.yaml")
	b, _ := os.ReadFile(cfg)
	memory := string(b)
	useRedis := func(addr string) {
		s := regexp.MustCompile(`(?m)^store:\n  type: memory.*$`).ReplaceAllString(memory, "store:\n  type: redis\n  redis:\n    addrs: [\""+addr+"\"]")
		if s == memory {
			t.Fatal("the example configuration has no memory store to replace")
		}
		write(t, cfg, s)
	}

	t.Run("recorded attributes are warnings", func(t *testing.T) {
		useRedis(mr.Addr())
		st, err := store.NewRedisFromConfig([]string{mr.Addr()}, "", "", 0, "", nil, "skolbro:")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := pnrvalues.Record(context.Background(), st, "exempel-kommun", []string{mail, mail, "urn:x:login"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		code, out := runCmd("check", "--config", cfg)
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, re := range []*regexp.Regexp{
			regexp.MustCompile(`warning: .*skolbro\.yaml: organiser\.upstream: attribute "` + regexp.QuoteMeta(mail) + `": 2 value\(s\) holding a personal number`),
			regexp.MustCompile(`warning: .*skolbro\.yaml: organiser\.upstream: attribute "urn:x:login": 1 value\(s\)`),
		} {
			if !re.MatchString(out) {
				t.Errorf("check output lacks %s:\n%s", re, out)
			}
		}
	})

	t.Run("store unreachable", func(t *testing.T) {
		useRedis("127.0.0.1:1")
		code, out := runCmd("check", "--config", cfg)
		if code != 0 || !regexp.MustCompile(`warning: .*skolbro\.yaml: store: cannot read which upstream attributes`).MatchString(out) {
			t.Errorf("exit %d, want 0 with a warning:\n%s", code, out)
		}
	})

	t.Run("memory store", func(t *testing.T) {
		write(t, cfg, memory)
		code, out := runCmd("check", "--config", cfg)
		if code != 0 || !strings.Contains(out, "note: ") || !strings.Contains(out, "the admin release preview shows them") {
			t.Errorf("exit %d, want a note on where to look:\n%s", code, out)
		}
	})
}

// A scoped stable id with no accepted scope would refuse every login:
// check says so, with the file and key.
func TestCheck_ScopedStableIDWithoutScopes(t *testing.T) {
	dir := deployDir(t)
	md := filepath.Join(dir, "metadata", "upstream", "school-idp.xml")
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`<md:Extensions><shibmd:Scope[^<]*</shibmd:Scope></md:Extensions>`).ReplaceAllString(string(b), "")
	if s == string(b) {
		t.Fatal("the example upstream metadata has no shibmd:Scope to remove")
	}
	write(t, md, s)
	code, out := runCmd("check", "--config", filepath.Join(dir, "skolbro.yaml"))
	if code == 0 || !regexp.MustCompile(`error: .*skolbro\.yaml: organiser\.upstream\.scopes: stable_id .* is scoped, but no scope is accepted`).MatchString(out) {
		t.Errorf("exit %d, want an error naming organiser.upstream.scopes:\n%s", code, out)
	}
}
