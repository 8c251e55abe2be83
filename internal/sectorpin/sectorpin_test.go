package sectorpin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/policy"
)

var now = time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)

// oidcPolicy is a vendor on host, with or without a sector line.
func oidcPolicy(id, line string) *policy.Policy {
	o := &policy.OIDCSettings{Host: "apps.edtech.example"}
	switch line {
	case "":
		o.SectorDefault, o.SectorKind, o.Sector = true, policy.SectorVendor, policy.VendorSector(id)
	case policy.OwnSector:
		o.SectorKind, o.Sector = policy.SectorVendor, policy.VendorSector(id)
	case policy.LegacyHostSector:
		o.SectorKind, o.Sector = policy.SectorLegacyHost, o.Host
	default:
		o.SectorKind, o.Sector = policy.SectorNamed, line
	}
	return &policy.Policy{ID: id, OIDC: o}
}

func history(h map[string]string) History {
	return func(context.Context) (map[string]string, error) { return h, nil }
}

// TestCase33_Resolve is the sector migration rule as a table: a vendor
// without a sector line keeps what it had, and only a sector line moves
// it, reported as a change.
func TestCase33_Resolve(t *testing.T) {
	legacy := Pin{Kind: policy.SectorLegacyHost, Sector: "apps.edtech.example", Since: now.AddDate(0, -1, 0)}
	own := Pin{Kind: policy.SectorVendor, Sector: "vendor/quiz", Since: now.AddDate(0, -1, 0)}
	tests := []struct {
		name       string
		line       string
		host       string
		pin        *Pin
		hist       map[string]string
		wantKind   policy.SectorKind
		wantSector string
		changed    bool
		problem    bool
	}{
		{name: "new vendor", wantKind: policy.SectorVendor, wantSector: "vendor/quiz"},
		{name: "served before vendor sectors", hist: map[string]string{"quiz": ""}, wantKind: policy.SectorLegacyHost, wantSector: "apps.edtech.example"},
		{name: "served on the legacy host sector", hist: map[string]string{"quiz": "legacy-host"}, wantKind: policy.SectorLegacyHost, wantSector: "apps.edtech.example"},
		{name: "served on its own sector, pin lost", hist: map[string]string{"quiz": "vendor"}, wantKind: policy.SectorVendor, wantSector: "vendor/quiz"},
		{name: "served before, now on several hosts", host: "-", hist: map[string]string{"quiz": ""}, wantKind: policy.SectorVendor, wantSector: "vendor/quiz", problem: true},
		{name: "another vendor's history", hist: map[string]string{"grades": ""}, wantKind: policy.SectorVendor, wantSector: "vendor/quiz"},
		{name: "pinned legacy, no line", pin: &legacy, hist: map[string]string{"quiz": "vendor"}, wantKind: policy.SectorLegacyHost, wantSector: "apps.edtech.example"},
		{name: "pinned own, no line, old history", pin: &own, hist: map[string]string{"quiz": ""}, wantKind: policy.SectorVendor, wantSector: "vendor/quiz"},
		{name: "pinned legacy, sector: vendor", line: policy.OwnSector, pin: &legacy, wantKind: policy.SectorVendor, wantSector: "vendor/quiz", changed: true},
		{name: "pinned own, sector: legacy-host", line: policy.LegacyHostSector, pin: &own, wantKind: policy.SectorLegacyHost, wantSector: "apps.edtech.example", changed: true},
		{name: "pinned own, named sector", line: "edtech-platform", pin: &own, wantKind: policy.SectorNamed, wantSector: "edtech-platform", changed: true},
		{name: "pinned own, sector: vendor", line: policy.OwnSector, pin: &own, wantKind: policy.SectorVendor, wantSector: "vendor/quiz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := oidcPolicy("quiz", tc.line)
			if tc.host == "-" {
				p.OIDC.Host = ""
			}
			pins := Pins{}
			if tc.pin != nil {
				pins["quiz"] = *tc.pin
			}
			read := false
			h := func(ctx context.Context) (map[string]string, error) {
				read = true
				return history(tc.hist)(ctx)
			}
			ds, next, dirty, err := Resolve(context.Background(), []*policy.Policy{p}, pins, h, now)
			if err != nil {
				t.Fatal(err)
			}
			d := ds[0]
			if d.Kind != tc.wantKind || d.Sector != tc.wantSector || p.OIDC.SectorKind != tc.wantKind || p.OIDC.Sector != tc.wantSector {
				t.Errorf("decided %s %q, policy %s %q; want %s %q", d.Kind, d.Sector, p.OIDC.SectorKind, p.OIDC.Sector, tc.wantKind, tc.wantSector)
			}
			if d.Changed() != tc.changed || (d.Problem != "") != tc.problem {
				t.Errorf("changed %v problem %q; want changed %v problem %v", d.Changed(), d.Problem, tc.changed, tc.problem)
			}
			if read != (tc.pin == nil && tc.line == "") {
				t.Errorf("release log read: %v", read)
			}
			if got := next["quiz"]; got.Kind != tc.wantKind || got.Sector != tc.wantSector {
				t.Errorf("next pin %+v", got)
			}
			if dirty != (tc.pin == nil || tc.changed) {
				t.Errorf("dirty %v", dirty)
			}
		})
	}
}

// TestResolveHistoryError fails the build rather than guess a sector.
func TestResolveHistoryError(t *testing.T) {
	boom := errors.New("unreadable")
	_, _, _, err := Resolve(context.Background(), []*policy.Policy{oidcPolicy("quiz", "")}, Pins{},
		func(context.Context) (map[string]string, error) { return nil, boom }, now)
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	if p, err := Load(dir); err != nil || len(p) != 0 {
		t.Fatalf("no file: %v %v", p, err)
	}
	want := Pins{"quiz": {Kind: policy.SectorLegacyHost, Sector: "apps.edtech.example", Since: now, Why: OriginServedBefore}}
	if err := Save(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil || got["quiz"] != want["quiz"] {
		t.Fatalf("got %+v %v", got, err)
	}
	fi, _ := os.Stat(filepath.Join(dir, FileName))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	os.WriteFile(filepath.Join(dir, FileName), []byte(`{"version":1,"vendors":{"quiz":{"kind":"other","sector":"x"}}}`), 0o600)
	if _, err := Load(dir); err == nil {
		t.Error("a pin of an unknown kind loaded")
	}
	os.WriteFile(filepath.Join(dir, FileName), []byte(`garbage`), 0o600)
	if _, err := Load(dir); err == nil {
		t.Error("a garbled pin file loaded")
	}
}
