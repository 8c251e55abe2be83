package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skolbro/skolbro/internal/app"
	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/generation"
	"github.com/skolbro/skolbro/internal/protection"
	"github.com/skolbro/skolbro/internal/server"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/units"
)

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "skolbro check: --config is required")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stdout, "error: %v\n", err)
		return 1
	}
	// Build gets a memory store, so that the same Build that serve runs
	// checks everything else; the configured store is opened only to read
	// what the running bridges recorded.
	_, rep := app.Build(cfg, store.NewMemory(nil), time.Now)
	// What the running bridges recorded in the configured store.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	app.ReportPersonalNumbersInValues(ctx, cfg, time.Now(), rep)
	cancel()
	for _, n := range rep.Notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(stdout, "error: %s\n", e)
	}
	if len(rep.Disabled) > 0 && len(rep.Disabled) < len(cfg.Organisers) {
		fmt.Fprintf(stdout, "disabled: %s (serve leaves these organisers out; the others serve)\n", strings.Join(rep.Disabled, ", "))
	}
	if len(rep.Errors) > 0 {
		fmt.Fprintf(stdout, "%d error(s), %d warning(s)\n", len(rep.Errors), len(rep.Warnings))
		return 1
	}
	fmt.Fprintf(stdout, "ok: %d warning(s)\n", len(rep.Warnings))
	return 0
}

// loadForCommand loads and builds the configuration for a one-shot
// command about one organiser (--organiser, needed when the bridge serves
// several), printing problems to stderr.
func loadForCommand(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*config.Config, *server.Organiser, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file")
	orgID := fs.String("organiser", "", "the organiser's id (when the configuration lists several)")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, false
	}
	if *path == "" {
		fmt.Fprintf(stderr, "skolbro %s: --config is required\n", name)
		return nil, nil, false
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %v\n", err)
		return nil, nil, false
	}
	o, err := pickOrganiser(cfg, *orgID)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro %s: %v\n", name, err)
		return nil, nil, false
	}
	orgs, rep := app.Build(cfg, store.NewMemory(nil), time.Now)
	org := findOrganiser(orgs, o.ID)
	if org == nil {
		fmt.Fprintf(stderr, "skolbro: configuration has errors (run skolbro check):\n%v\n", rep.Err())
		return nil, nil, false
	}
	return cfg, org, true
}

// pickOrganiser returns the organiser id names, or the only one.
func pickOrganiser(cfg *config.Config, id string) (*config.Organiser, error) {
	if id == "" {
		if len(cfg.Organisers) == 1 {
			return cfg.Organisers[0], nil
		}
		return nil, fmt.Errorf("%s lists %d organisers: name one with --organiser", cfg.File(), len(cfg.Organisers))
	}
	if o := cfg.OrganiserByID(id); o != nil {
		return o, nil
	}
	return nil, fmt.Errorf("%s has no organiser %q", cfg.File(), id)
}

func findOrganiser(orgs []*server.Organiser, id string) *server.Organiser {
	for _, o := range orgs {
		if o.ID == id {
			return o
		}
	}
	return nil
}

func cmdRegister(args []string, stdout, stderr io.Writer) int {
	format := "csv"
	cfg, org, ok := loadForCommand("register", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "csv", "csv or json")
	})
	if !ok {
		return 2
	}
	requested := map[string][]string{}
	for id, v := range org.IdP.Vendors {
		requested[id] = v.RequestedAttributes
	}
	// The admin's school unit choices live in the store: a register
	// without them could list units that no longer hold.
	if cfg.Store.Type == "memory" {
		fmt.Fprintln(stderr, "skolbro register: note: with the memory store the admin's school unit choices live only in the running bridge; its admin register page shows them")
	}
	st, err := app.OpenStore(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro register: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := units.New(store.Namespace(st, app.Namespace(cfg.OrganiserByID(org.ID))), org.ID).Register(ctx, org.Policies.All(), requested)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro register: the admin's school unit choices could not be read from the store: %v\n", err)
		return 1
	}
	switch format {
	case "csv":
		err = audit.WriteRegisterCSV(stdout, rows)
	case "json":
		err = audit.WriteRegisterJSON(stdout, rows)
	default:
		fmt.Fprintln(stderr, "skolbro register: --format must be csv or json")
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "skolbro register: %v\n", err)
		return 1
	}
	return 0
}

// cmdAuditSubject answers a subject access request from the command
// line. The identifiers come on stdin (see --by), never as arguments, and
// the lookup is written to the admin action log before it is made.
func cmdAuditSubject(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	format, by := "csv", "pnr"
	cfg, org, ok := loadForCommand("audit subject", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "csv", "csv or json")
		fs.StringVar(&by, "by", "pnr", "what stdin holds, one a line in this order: pnr, stable-id, or pnr,stable-id")
	})
	if !ok {
		return 2
	}
	forms, err := audit.ParseLookupForms(by)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro audit subject: --by: %v\n", err)
		return 2
	}
	o := cfg.OrganiserByID(org.ID)
	actions, err := app.OpenActionLog(cfg, o, time.Now)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro audit subject: %s: %s: admin action log: %v\n", cfg.File(), o.Key("audit.dir"), err)
		return 1
	}
	defer actions.Close()
	dir := cfg.Path(o.Audit.Dir)
	opts := audit.SubjectOptions{Format: format, By: forms, Now: time.Now(), Actions: actions, Notes: stderr}
	if err := audit.SubjectCommand(context.Background(), dir, org.AuditKeys, stdin, stdout, opts); err != nil {
		fmt.Fprintf(stderr, "skolbro audit subject: %v\n", err)
		return 1
	}
	return 0
}

// cmdAuditAdminActions lists the admin action log: who looked up or
// changed whose record (by subject key), when, in which request.
func cmdAuditAdminActions(args []string, stdout, stderr io.Writer) int {
	format, since, orgID := "csv", "", ""
	cfg, err := configFromArgsWith("audit admin-actions", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "csv", "csv or json")
		fs.StringVar(&since, "since", "", "only actions on or after this date (YYYY-MM-DD, UTC)")
		fs.StringVar(&orgID, "organiser", "", "the organiser's id (when the configuration lists several)")
	})
	if err != nil {
		return 2
	}
	o, err := pickOrganiser(cfg, orgID)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro audit admin-actions: %v\n", err)
		return 2
	}
	var from time.Time
	if since != "" {
		if from, err = time.Parse(time.DateOnly, since); err != nil {
			fmt.Fprintln(stderr, "skolbro audit admin-actions: --since must be a date YYYY-MM-DD")
			return 2
		}
	}
	if o.Audit.Dir == "" {
		fmt.Fprintf(stderr, "skolbro audit admin-actions: %s: %s: required\n", cfg.File(), o.Key("audit.dir"))
		return 2
	}
	if err := audit.ActionsCommand(context.Background(), cfg.Path(o.Audit.Dir), stdout, format, from); err != nil {
		fmt.Fprintf(stderr, "skolbro audit admin-actions: %v\n", err)
		return 1
	}
	return 0
}

func cmdMetadata(args []string, stdout, stderr io.Writer) int {
	out := ""
	_, org, ok := loadForCommand("metadata", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "", "directory to write idp.xml and sp.xml to")
	})
	if !ok {
		return 2
	}
	if out == "" {
		fmt.Fprintln(stderr, "skolbro metadata: --out is required")
		return 2
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		fmt.Fprintf(stderr, "skolbro metadata: %v\n", err)
		return 1
	}
	idp, err := org.Metadata.IdPMetadata()
	if err != nil {
		fmt.Fprintf(stderr, "skolbro metadata: %v\n", err)
		return 1
	}
	files := map[string][]byte{"idp.xml": idp}
	for _, up := range org.Upstreams {
		if sp, err := org.Metadata.SPMetadataSigned(up.ID); err == nil {
			name := "sp.xml"
			if len(org.Upstreams) > 1 {
				name = "sp-" + up.ID + ".xml"
			}
			files[name] = sp
		}
	}
	for name, b := range files {
		p := filepath.Join(out, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			fmt.Fprintf(stderr, "skolbro metadata: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	return 0
}

// cmdProtect manages the manual protection register. The personal number
// is read from standard input, never from the command line, where it
// would end up in shell history and process listings.
func cmdProtect(op string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	orgID := ""
	cfg, err := configFromArgsWith("protect "+op, args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&orgID, "organiser", "", "the organiser's id (when the configuration lists several)")
	})
	if err != nil {
		return 2
	}
	o, err := pickOrganiser(cfg, orgID)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro protect: %v\n", err)
		return 2
	}
	if op == "new-identity" {
		return cmdNewIdentity(cfg, o, stdin, stdout, stderr)
	}
	if o.Protection.Register == nil {
		fmt.Fprintf(stderr, "skolbro protect: %s: %s is not configured\n", cfg.File(), o.Key("protection.register"))
		return 2
	}
	st, err := app.OpenStore(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro protect: %v\n", err)
		return 1
	}
	orgs, rep := app.Build(cfg, st, time.Now)
	org := findOrganiser(orgs, o.ID)
	if org == nil {
		fmt.Fprintf(stderr, "skolbro: configuration has errors (run skolbro check):\n%v\n", rep.Err())
		return 2
	}
	if err := protection.Command(context.Background(), op, org.Register, stdin, stdout, time.Now()); err != nil {
		fmt.Fprintf(stderr, "skolbro protect %s: %v\n", op, err)
		return 1
	}
	return 0
}

// cmdNewIdentity asks for a new identity for one person (personal number
// on stdin), in the store the running bridges share.
func cmdNewIdentity(cfg *config.Config, o *config.Organiser, stdin io.Reader, stdout, stderr io.Writer) int {
	if cfg.Store.Type == "memory" {
		fmt.Fprintf(stderr, "skolbro protect new-identity: %s: store.type is memory, so the running bridge's records are out of reach: use the admin interface (/admin/identity)\n", cfg.File())
		return 2
	}
	st, err := app.OpenStore(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro protect: %v\n", err)
		return 1
	}
	orgs, rep := app.Build(cfg, st, time.Now)
	org := findOrganiser(orgs, o.ID)
	if org == nil {
		fmt.Fprintf(stderr, "skolbro: configuration has errors (run skolbro check):\n%v\n", rep.Err())
		return 2
	}
	k := generation.New(org.Store, org.Deriver)
	if k == nil {
		fmt.Fprintf(stderr, "skolbro protect new-identity: %s: %s is not configured: there are no pseudonyms to renew\n", cfg.File(), o.Key("pseudonym.key_file"))
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := protection.NewIdentityCommand(ctx, k, stdin, stdout, time.Now()); err != nil {
		fmt.Fprintf(stderr, "skolbro protect new-identity: %v\n", err)
		return 1
	}
	return 0
}

func configFromArgs(name string, args []string, stderr io.Writer) (*config.Config, error) {
	return configFromArgsWith(name, args, stderr, nil)
}

// configFromArgsWith is configFromArgs with extra flags.
func configFromArgsWith(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*config.Config, error) {

	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *path == "" {
		fmt.Fprintf(stderr, "skolbro %s: --config is required\n", name)
		return nil, errors.New("no config")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %v\n", err)
		return nil, err
	}
	return cfg, nil
}
