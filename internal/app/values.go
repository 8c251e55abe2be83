package app

import (
	"context"
	"io"
	"time"

	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/pnrvalues"
	"github.com/skolbro/skolbro/internal/store"
)

// ReportPersonalNumbersInValues warns, for check, about every upstream
// attribute whose values the running bridges dropped in recent logins
// because they held a personal number (pnrvalues keeps the record in the
// configured store). Such values reach no vendor; the fix is in the
// school's directory. With the memory store the record is inside the
// running bridge, which check cannot reach: a note says where to look.
func ReportPersonalNumbersInValues(ctx context.Context, cfg *config.Config, now time.Time, rep *Report) {
	file := cfg.File()
	if cfg.Store.Type != "redis" {
		rep.Notes = append(rep.Notes, location(file, "store.type")+
			"memory: check cannot read which upstream attributes recently held a personal number; the admin release preview shows them")
		return
	}
	st, err := OpenStore(cfg)
	if err != nil {
		rep.warnf(file, "store", "cannot read which upstream attributes recently held a personal number: %v", err)
		return
	}
	if c, ok := st.(io.Closer); ok {
		defer c.Close()
	}
	days := int(pnrvalues.Window / (24 * time.Hour))
	for _, o := range cfg.Organisers {
		entries, err := pnrvalues.Recent(ctx, store.Namespace(st, Namespace(o)), o.ID, now)
		if err != nil {
			rep.warnf(file, "store", "cannot read which upstream attributes recently held a personal number: %v", err)
			return
		}
		for _, e := range entries {
			key := o.Key("upstreams")
			if len(o.Upstreams) == 1 {
				key = o.Upstreams[0].Path()
			}
			rep.warnf(file, key, "attribute %q: %d value(s) holding a personal number in the last %d days (last %s) were dropped and reach no vendor: fix the attribute in the school's directory",
				e.Attribute, e.Count, days, e.LastSeen.UTC().Format(time.DateOnly))
		}
	}
}
