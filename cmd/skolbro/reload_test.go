package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/skolbro/skolbro/internal/app"
	"github.com/skolbro/skolbro/internal/metrics"
	"github.com/skolbro/skolbro/internal/store"
)

// TestCase51_CheckShowsRefusedReload: a running bridge that refused a
// reload keeps serving its old configuration; check, run on the same
// configuration, says so with the bridge's problems, so that the admin
// does not take the files on disk for what runs.
func TestCase51_CheckShowsRefusedReload(t *testing.T) {
	mr := miniredis.RunT(t)
	dir := deployDir(t)
	cfg := filepath.Join(dir, "skolbro.yaml")
	b, _ := os.ReadFile(cfg)
	write(t, cfg, regexp.MustCompile(`(?m)^store:\n  type: memory.*$`).ReplaceAllString(string(b), "store:\n  type: redis\n  redis:\n    addrs: [\""+mr.Addr()+"\"]"))
	st, err := store.NewRedisFromConfig([]string{mr.Addr()}, "", "", 0, "", nil, "skolbro:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	put := func(rec app.ReloadRecord) {
		b, _ := json.Marshal(rec)
		if err := st.Put(context.Background(), app.ReloadRecordKey, b, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	put(app.ReloadRecord{Instance: "bridge-1/42", Time: time.Now().UTC(), Result: metrics.ReloadRefused,
		Problems: []string{"attribute-release/x.yaml: no_such_key: unknown key"}})
	code, out := runCmd("check", "--config", cfg)
	if code != 0 || !strings.Contains(out, "warning: "+cfg+": the running bridge (bridge-1/42) refused a reload at ") ||
		!strings.Contains(out, "refused: attribute-release/x.yaml: no_such_key: unknown key") {
		t.Errorf("exit %d, want the refused reload as a warning:\n%s", code, out)
	}
	put(app.ReloadRecord{Instance: "bridge-1/42", Time: time.Now().UTC(), Result: metrics.ReloadApplied})
	if code, out := runCmd("check", "--config", cfg); code != 0 || strings.Contains(out, "refused") || !strings.Contains(out, "applied its last reload") {
		t.Errorf("exit %d, want a note on the applied reload:\n%s", code, out)
	}
}
