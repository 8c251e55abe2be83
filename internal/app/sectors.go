package app

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/sectorpin"
)

// resolveSectors gives every OIDC vendor of the organiser its effective
// pairwise sector (package sectorpin): the policy's sector line, else the
// pinned one, else its own, or the host sector it had if the release log
// shows it was served before vendor sectors. It notes each vendor's
// sector and where it came from, warns about every change from a pin (a
// new sub for every person) and about vendors that share a sector through
// their pins. With write set (serve), new and changed pins are written to
// the organiser's audit directory; check writes nothing.
func resolveSectors(rep *Report, cfg *config.Config, o *config.Organiser, pols []*policy.Policy, write bool, now time.Time) {
	if o.Audit.Dir == "" {
		return // reported by Validate
	}
	dir := cfg.Path(o.Audit.Dir)
	key := o.Key("audit.dir")
	pins, err := sectorpin.Load(dir)
	if err != nil {
		rep.errorf(cfg.File(), key, "%v", err)
		return
	}
	history := func(ctx context.Context) (map[string]string, error) { return audit.OIDCSectorHistory(ctx, dir) }
	ds, next, dirty, err := sectorpin.Resolve(context.Background(), pols, pins, history, now)
	if err != nil {
		rep.errorf(cfg.File(), key, "reading the release log for earlier OIDC releases: %v", err)
		return
	}
	verb := "is pinned"
	if !write && dirty {
		verb = "will be pinned at start"
	}
	for _, d := range ds {
		p := d.Policy
		at := location(p.File, "oidc.sector")
		if d.Problem != "" {
			rep.Warnings = append(rep.Warnings, at+fmt.Sprintf("vendor %s: %s", p.ID, d.Problem))
		}
		if d.Changed() {
			rep.Warnings = append(rep.Warnings, at+fmt.Sprintf(
				"vendor %s: its pairwise sector changes from %s (%s, pinned %s) to %s (%s): EVERY PERSON GETS A NEW SUB AT THIS VENDOR, "+
					"who sees them all as new users; do this only together with the vendor. Restore oidc.sector to keep the old subs",
				p.ID, d.Was.Sector, d.Was.Kind, d.Was.Since.Format(time.DateOnly), d.Sector, d.Kind))
		}
		state := "is"
		if p.OIDC.SectorDefault {
			state = verb
		}
		rep.Notes = append(rep.Notes, at+fmt.Sprintf("vendor %s: pairwise sector %s (%s) %s: %s", p.ID, d.Sector, d.Kind, state, d.Origin))
	}
	warnPinnedSharing(rep, ds)
	if write && dirty {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			rep.errorf(cfg.File(), key, "%v", err)
			return
		}
		if err := sectorpin.Save(dir, next); err != nil {
			rep.errorf(cfg.File(), key, "%v", err)
		}
	}
}

// warnPinnedSharing warns about vendors that share a sector because a pin
// kept it (the host sector of a vendor served before vendor sectors): the
// policy loader already warns about sectors the policies name.
func warnPinnedSharing(rep *Report, ds []sectorpin.Decision) {
	bySector := map[string][]sectorpin.Decision{}
	for _, d := range ds {
		bySector[d.Sector] = append(bySector[d.Sector], d)
	}
	for _, group := range bySector {
		pinned := false
		for _, d := range group {
			pinned = pinned || d.Policy.OIDC.SectorDefault
		}
		if len(group) < 2 || !pinned {
			continue
		}
		for _, d := range group {
			var others []string
			for _, o := range group {
				if o.Policy != d.Policy {
					others = append(others, "vendor "+o.Policy.ID)
				}
			}
			sort.Strings(others)
			rep.Warnings = append(rep.Warnings, location(d.Policy.File, "oidc.sector")+fmt.Sprintf(
				"vendor %s shares its pairwise sector %s with %s: they get the same sub for every person and can join their data. "+
					"The pin kept it (see oidc-sectors.json in the audit directory); give each its own with sector: vendor, together with the vendor (every person gets a new sub there)",
				d.Policy.ID, d.Sector, strings.Join(others, ", ")))
		}
	}
}
