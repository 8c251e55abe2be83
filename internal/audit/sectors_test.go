package audit

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestOIDCSectorHistory reads the latest OIDC release of each vendor,
// with the sector kind it recorded, or none for events written before.
func TestOIDCSectorHistory(t *testing.T) {
	dir := t.TempDir()
	lines := `{"time":"2026-09-01T08:00:00Z","vendor":"quiz","protocol":"oidc","outcome":"released"}
{"time":"2026-09-02T08:00:00Z","vendor":"chat","protocol":"oidc","outcome":"released","sector":"legacy-host"}
{"time":"2026-09-03T08:00:00Z","vendor":"chat","protocol":"oidc","outcome":"released","sector":"vendor"}
{"time":"2026-09-01T08:00:00Z","vendor":"maps","protocol":"oidc","outcome":"refused","reason":"agreement_ended"}
{"time":"2026-09-01T08:00:00Z","vendor":"app","protocol":"saml","outcome":"released"}
not json "protocol":"oidc" "outcome":"released"
`
	if err := os.WriteFile(filepath.Join(dir, "releases-20260901T000000Z.jsonl"), []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := OIDCSectorHistory(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"quiz": "", "chat": "vendor"}
	if len(got) != len(want) || got["quiz"] != "" || got["chat"] != "vendor" {
		t.Errorf("history %v, want %v", got, want)
	}
	if h, err := OIDCSectorHistory(context.Background(), filepath.Join(dir, "none")); err != nil || len(h) != 0 {
		t.Errorf("missing directory: %v %v", h, err)
	}
}

// TestSectorOnlyOnOIDCReleases keeps the sector field a fixed label.
func TestSectorOnlyOnOIDCReleases(t *testing.T) {
	for _, tc := range []struct {
		protocol, outcome, reason, sector string
		ok                                bool
	}{
		{ProtocolOIDC, OutcomeReleased, "", "vendor", true},
		{ProtocolOIDC, OutcomeReleased, "", "legacy-host", true},
		{ProtocolOIDC, OutcomeReleased, "", "named", true},
		{ProtocolOIDC, OutcomeReleased, "", "apps.edtech.example", false},
		{ProtocolSAML, OutcomeReleased, "", "vendor", false},
		{ProtocolOIDC, OutcomeRefused, "agreement_ended", "vendor", false},
	} {
		e := validEvent()
		e.Protocol, e.Outcome, e.Reason, e.Sector = tc.protocol, tc.outcome, tc.reason, tc.sector
		if err := e.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc, err)
		}
	}
}
