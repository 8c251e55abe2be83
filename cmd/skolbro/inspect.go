package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/skolbro/skolbro/internal/app"
	"github.com/skolbro/skolbro/internal/store"
)

// cmdInspect shows which attribute names each school IdP sent in recent
// logins, how the bridge read each, and the upstream's protection sources:
// names only, never values (issue 17: a wrong security_marking name masks
// everyone without saying why).
func cmdInspect(args []string, stdout, stderr io.Writer) int {
	format := "text"
	cfg, code, ok := configFromArgs("inspect", args, stdout, stderr, "skolbro inspect --config FILE [--format text|json]",
		"Shows, per school IdP, the attribute names (never values) it sent in the logins of the last 30 days, how the bridge read each "+
			"(stable id, personal number, security marking, a bridge attribute, or not used), its protection sources, and which configured names never arrived. "+
			"It reads what the running bridges recorded in the Redis store; with the memory store the admin's release preview shows the same.", func(fs *flag.FlagSet) {
			fs.StringVar(&format, "format", "text", "text or json")
		})
	if !ok {
		return code
	}
	if format != "text" && format != "json" {
		fmt.Fprintln(stderr, "skolbro inspect: --format must be text or json")
		return 2
	}
	if cfg.Store.Type != "redis" {
		fmt.Fprintf(stderr, "skolbro inspect: %s: store.type is memory: the record is inside the running bridge; its admin release preview (/admin/preview) shows it\n", cfg.File())
		return 1
	}
	orgs, rep := app.Build(cfg, store.NewMemory(nil), time.Now)
	if len(orgs) == 0 {
		fmt.Fprintf(stderr, "skolbro: configuration has errors (run skolbro check):\n%v\n", rep.Err())
		return 1
	}
	st, err := app.OpenStore(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro inspect: %v\n", err)
		return 1
	}
	if c, ok := st.(io.Closer); ok {
		defer c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	views, err := app.UpstreamViews(ctx, cfg, orgs, st, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "skolbro inspect: %v\n", err)
		return 1
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(views); err != nil {
			fmt.Fprintf(stderr, "skolbro inspect: %v\n", err)
			return 1
		}
		return 0
	}
	for _, v := range views {
		fmt.Fprintf(stdout, "organiser %s, upstream %s (%s)\n", v.Organiser, v.Upstream, v.Key)
		if v.LastLogin.IsZero() {
			fmt.Fprintln(stdout, "  no login recorded in the last 30 days: log in once through this upstream, then run inspect again")
			fmt.Fprintln(stdout)
			continue
		}
		fmt.Fprintf(stdout, "  last login recorded %s\n", v.LastLogin.Format(time.RFC3339))
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  attribute\tfriendly name\tread as\tlast seen")
		for _, e := range v.Attributes {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Attribute, e.FriendlyName, e.Use, e.LastSeen.Format(time.DateOnly))
		}
		tw.Flush()
		switch {
		case v.SecurityMarking == "":
			fmt.Fprintln(stdout, "  security_marking: not configured")
		case v.SecurityMarkingSeen:
			fmt.Fprintf(stdout, "  security_marking %q: arrives\n", v.SecurityMarking)
		default:
			fmt.Fprintf(stdout, "  security_marking %q: NEVER ARRIVED: every person this upstream logs in is masked; set %s.security_marking to the name the IdP sends\n", v.SecurityMarking, v.Key)
		}
		fmt.Fprintf(stdout, "  protection sources: %s\n", orNone(v.Sources))
		if len(v.NotSeen) > 0 {
			fmt.Fprintf(stdout, "  configured but never arrived: %s\n", strings.Join(v.NotSeen, ", "))
		}
		fmt.Fprintln(stdout)
	}
	return 0
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none (every person is treated as protected)"
	}
	return strings.Join(list, ", ")
}
