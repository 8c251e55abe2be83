package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/sectorpin"
)

// TestCase33_UpgradeKeepsEverySub walks a deployment through the sector
// migration (issue 19, case 33) on the bridge serve runs, reloading as
// SIGHUP does. The quiz vendor is first served as bridges before vendor
// sectors served every OIDC vendor: on the redirect URIs' host, with
// release events that record no sector. After the upgrade, with no change
// to its policy, it keeps that sub; a vendor new to the deployment gets
// its own sector; sector: vendor moves quiz onto its own sector with a
// loud warning, and the pin then holds even without the line and without
// the pin file.
func TestCase33_UpgradeKeepsEverySub(t *testing.T) {
	e := startLiveEnv(t, 1, memoryStore)
	secret := randomText()
	addQuizVendor(e.demo, secret)
	q := &quizVendor{e: e.env, redirect: e.demo.Base + "/demo/vendor/quiz/callback"}
	const user = "anna.a"
	quizPolicy := filepath.Join("attribute-release", "quiz.yaml")
	setSector := func(line string) {
		e.editFile(quizPolicy, func(s string) string {
			s = regexp.MustCompile(`(?m)^  sector: .*\n`).ReplaceAllString(s, "")
			return strings.Replace(s, "  client_secret_file: ../keys/quiz.secret\n", "  client_secret_file: ../keys/quiz.secret\n"+line, 1)
		})
	}
	reload := func() []string {
		t.Helper()
		rep, err := e.lives[0].Reload(context.Background())
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		return rep.Warnings
	}
	sub := func() string {
		t.Helper()
		verifier := randomText()
		code := q.code(newBrowser(t, e.srv.Client()), user, verifier)
		status, body := q.token(code, verifier, quizClient, secret)
		if status != 200 {
			t.Fatalf("token: %d %v", status, body["error"])
		}
		status, info := e.userinfo(body["access_token"].(string))
		s, _ := info["sub"].(string)
		if status != 200 || s == "" {
			t.Fatalf("userinfo: %d, sub %q", status, s)
		}
		return s
	}
	auditDir := filepath.Join(e.demo.Dir, "audit")
	pins := func() sectorpin.Pins {
		t.Helper()
		p, err := sectorpin.Load(auditDir)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Before the upgrade: the host-derived sector, which today's bridge
	// gives on request, and release events without a sector, as older
	// bridges wrote them, and no pin.
	setSector("  sector: legacy-host\n")
	reload()
	before := sub()
	logs, _ := filepath.Glob(filepath.Join(auditDir, "releases-*"))
	if len(logs) == 0 {
		t.Fatal("no release log")
	}
	oldFormat := 0
	for _, f := range logs {
		b, err := os.ReadFile(f)
		must(t, err)
		n := strings.Count(string(b), `"sector":"legacy-host",`)
		oldFormat += n
		must(t, os.WriteFile(f, []byte(strings.ReplaceAll(string(b), `"sector":"legacy-host",`, "")), 0o600))
	}
	if oldFormat == 0 {
		t.Fatal("the release events record no sector kind")
	}
	p := pins()
	delete(p, "quiz")
	must(t, sectorpin.Save(auditDir, p))

	// The upgrade: the policy has no sector line.
	setSector("")
	reload()
	if got := sub(); got != before {
		t.Fatalf("after the upgrade the vendor served before gets a new sub %q, want %q", got, before)
	}
	if pin := pins()["quiz"]; pin.Kind != policy.SectorLegacyHost || pin.Why != sectorpin.OriginServedBefore {
		t.Errorf("quiz pinned as %+v, want its legacy host", pin)
	}
	// A vendor the deployment never served gets its own sector, though
	// it is on the same host.
	if pin := pins()["oidc-app"]; pin.Kind != policy.SectorVendor || pin.Sector != policy.VendorSector("oidc-app") {
		t.Errorf("oidc-app pinned as %+v, want its own sector", pin)
	}
	if app := e.loginAny(newBrowser(t, e.srv.Client()), "oidc-app", user).subject; app == "" || app == before {
		t.Errorf("the new vendor on the same host gets sub %q, quiz %q: want its own", app, before)
	}

	// The admin opts in: a new sub for everyone, said loudly.
	setSector("  sector: vendor\n")
	warned := false
	for _, w := range reload() {
		warned = warned || strings.Contains(w, "vendor quiz: its pairwise sector changes") && strings.Contains(w, "EVERY PERSON GETS A NEW SUB")
	}
	if !warned {
		t.Error("moving quiz onto its own sector was not warned about")
	}
	own := sub()
	if own == before {
		t.Fatal("sector: vendor left the old sub")
	}
	if pin := pins()["quiz"]; pin.Kind != policy.SectorVendor {
		t.Errorf("quiz pinned as %+v after sector: vendor", pin)
	}

	// The pin holds without the line, and a lost pin file is rebuilt
	// from the release log to the same sector.
	setSector("")
	reload()
	if got := sub(); got != own {
		t.Errorf("without the line: sub %q, want the pinned %q", got, own)
	}
	must(t, os.Remove(filepath.Join(auditDir, sectorpin.FileName)))
	reload()
	if got := sub(); got != own {
		t.Errorf("with the pin file lost: sub %q, want %q", got, own)
	}
	var f struct {
		Vendors map[string]sectorpin.Pin `json:"vendors"`
	}
	b, err := os.ReadFile(filepath.Join(auditDir, sectorpin.FileName))
	must(t, err)
	must(t, json.Unmarshal(b, &f))
	if f.Vendors["quiz"].Why != sectorpin.OriginRebuilt {
		t.Errorf("rebuilt pin: %+v", f.Vendors["quiz"])
	}
	if fi, err := os.Stat(filepath.Join(auditDir, sectorpin.FileName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("pin file mode: %v %v", fi.Mode(), err)
	}
}
