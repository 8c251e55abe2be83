package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCase37_LoginIDJoinsEveryLineOfALogin: one login id, random and
// without personal data, is on every log line of a login, from "login
// started" through "released", across its requests (each with its own
// request id) and across two instances; two logins never share one
// (issue 17: "login started" and "released" could not be joined).
func TestCase37_LoginIDJoinsEveryLineOfALogin(t *testing.T) {
	e := startEnv(t, 2, memoryStore) // round robin: the steps land on both instances
	e.login(newBrowser(t, e.srv.Client()), "learning-app", "anna.a")
	e.loginAny(newBrowser(t, e.srv.Client()), e.demo.OIDCVendor.Name, "bertil.b")
	e.login(newBrowser(t, e.srv.Client()), "national-tests", "anna.a")

	type line struct {
		Message   string `json:"message"`
		LoginID   string `json:"login_id"`
		RequestID string `json:"request_id"`
		Instance  int    `json:"instance"`
		Path      string `json:"path"`
	}
	byLogin := map[string][]line{}
	for _, raw := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var l line
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("a log line is not JSON")
		}
		if (l.Message == "login started" || l.Message == "released") && l.LoginID == "" {
			t.Errorf("%q logged without a login id", l.Message)
		}
		if l.LoginID != "" {
			byLogin[l.LoginID] = append(byLogin[l.LoginID], l)
		}
	}
	if len(byLogin) != 3 {
		t.Fatalf("%d login ids for 3 logins", len(byLogin))
	}
	for id, lines := range byLogin {
		if !hexValue.MatchString(id) {
			t.Errorf("login id %q is not a random hex token", id)
		}
		msgs, requests, instances, paths := map[string]int{}, map[string]bool{}, map[int]bool{}, map[string]bool{}
		for _, l := range lines {
			msgs[l.Message]++
			requests[l.RequestID] = true
			instances[l.Instance] = true
			if l.Path != "" {
				paths[l.Path] = true
			}
		}
		if msgs["login started"] != 1 || msgs["released"] != 1 {
			t.Errorf("login %s: %v, want one \"login started\" and one \"released\"", id, msgs)
		}
		if len(requests) < 2 || len(instances) < 2 {
			t.Errorf("login %s joins %d request(s) on %d instance(s), want its start and its finish on both", id, len(requests), len(instances))
		}
		// The access log lines of the login's requests carry it too.
		if msgs["request"] < 2 {
			t.Errorf("login %s: %d access log lines carry the id, want the start's and the finish's: %v", id, msgs["request"], paths)
		}
	}
	checkLogs(t, e, e.logs.String())
}
