package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/server"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/upstreamnames"
)

// UpstreamView is one upstream's record of recent attribute names, read
// against its mapping (upstreamnames.View), with where it is configured.
type UpstreamView struct {
	Organiser string
	Upstream  string
	// Key is where the upstream stands in the configuration file.
	Key string
	upstreamnames.View
	// Sources are the protection sources configured for the upstream.
	Sources []string
}

// UpstreamViews reads, for each upstream of the built organisers, the
// record the running bridges keep in st (the configured store, not a
// namespace of it).
func UpstreamViews(ctx context.Context, cfg *config.Config, orgs []*server.Organiser, st store.Store, now time.Time) ([]UpstreamView, error) {
	var out []UpstreamView
	for _, org := range orgs {
		o := cfg.OrganiserByID(org.ID)
		if o == nil {
			continue
		}
		ns := store.Namespace(st, Namespace(o))
		for _, up := range org.Upstreams {
			rec, err := upstreamnames.Recent(ctx, ns, org.ID, up.ID, now)
			if err != nil {
				return nil, err
			}
			v := UpstreamView{Organiser: org.ID, Upstream: up.ID, View: upstreamnames.NewView(rec, up.Mapping)}
			for _, u := range o.Upstreams {
				if u.ID == up.ID {
					v.Key = u.Path()
				}
			}
			if up.Protection != nil {
				for _, src := range up.Protection.Sources {
					v.Sources = append(v.Sources, src.Name())
				}
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// reportUpstreamNames warns, for check, about an upstream whose configured
// security_marking attribute never arrived in the recent logins the
// running bridges recorded: every person it logs in is then masked (fail
// closed), and nothing else says why. Other configured names that never
// arrived are notes.
func reportUpstreamNames(ctx context.Context, cfg *config.Config, orgs []*server.Organiser, st store.Store, now time.Time, rep *Report) {
	file := cfg.File()
	views, err := UpstreamViews(ctx, cfg, orgs, st, now)
	if err != nil {
		rep.warnf(file, "store", "cannot read which attribute names the school IdPs sent: %v", err)
		return
	}
	days := int(upstreamnames.Window / (24 * time.Hour))
	for _, v := range views {
		if v.LastLogin.IsZero() {
			continue // no login recorded: nothing to say yet
		}
		var sent []string
		for _, e := range v.Attributes {
			sent = append(sent, e.Attribute)
		}
		if v.SecurityMarking != "" && !v.SecurityMarkingSeen {
			rep.warnf(file, v.Key+".security_marking", "%q never arrived in the logins of the last %d days (last %s): every person this upstream logs in is masked. The IdP sent: %s (skolbro inspect shows how each is read)",
				v.SecurityMarking, days, v.LastLogin.Format(time.DateOnly), strings.Join(sent, ", "))
		}
		var others []string
		for _, n := range v.NotSeen {
			if n != v.SecurityMarking {
				others = append(others, n)
			}
		}
		if len(others) > 0 {
			rep.Notes = append(rep.Notes, location(file, v.Key)+fmt.Sprintf("configured names that arrived in none of the logins of the last %d days: %s", days, strings.Join(others, ", ")))
		}
	}
}
