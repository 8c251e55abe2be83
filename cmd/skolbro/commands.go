package main

import (
	"context"
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
	fs := newFlagSet("check", stdout, stderr, "skolbro check --config FILE",
		"Loads the configuration, every metadata file, release policy and key, and prints every problem at once with its file and key; exits 1 on errors.")
	path := fs.String("config", "", "configuration file")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *path == "" {
		fmt.Fprintln(stderr, "skolbro check: --config is required")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	// Build gets a memory store, so that the same Build that serve runs
	// checks everything else; the configured store is opened only to read
	// what the running bridges recorded.
	orgs, rep := app.Build(cfg, store.NewMemory(nil), time.Now)
	// What the running bridges recorded in the configured store.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	app.ReportPersonalNumbersInValues(ctx, cfg, time.Now(), rep)
	app.ReportRunning(ctx, cfg, orgs, time.Now(), rep)
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
// On failure code is the exit status: 0 after -h, 2 for bad flags or a
// configuration that does not build.
func loadForCommand(name string, args []string, stdout, stderr io.Writer, synopsis, about string, extra func(*flag.FlagSet)) (cfg *config.Config, org *server.Organiser, code int, ok bool) {
	fs := newFlagSet(name, stdout, stderr, synopsis, about)
	path := fs.String("config", "", "configuration file")
	orgID := fs.String("organiser", "", "the organiser's id (when the configuration lists several)")
	if extra != nil {
		extra(fs.FlagSet)
	}
	if code, ok := parseFlags(fs, args); !ok {
		return nil, nil, code, false
	}
	if *path == "" {
		fmt.Fprintf(stderr, "skolbro %s: --config is required\n", name)
		return nil, nil, 2, false
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %v\n", err)
		return nil, nil, 2, false
	}
	o, err := pickOrganiser(cfg, *orgID)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro %s: %v\n", name, err)
		return nil, nil, 2, false
	}
	orgs, rep := app.Build(cfg, store.NewMemory(nil), time.Now)
	org = findOrganiser(orgs, o.ID)
	if org == nil {
		fmt.Fprintf(stderr, "skolbro: configuration has errors (run skolbro check):\n%v\n", rep.Err())
		return nil, nil, 2, false
	}
	return cfg, org, 0, true
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
	cfg, org, code, ok := loadForCommand("register", args, stdout, stderr,
		"skolbro register --config FILE [--organiser ID] [--format csv|json]",
		"The release register: what each vendor receives, and why.", func(fs *flag.FlagSet) {
			fs.StringVar(&format, "format", "csv", "csv or json")
		})
	if !ok {
		return code
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
	cfg, org, code, ok := loadForCommand("audit subject", args, stdout, stderr,
		"skolbro audit subject --config FILE [--organiser ID] [--format csv|json] [--by pnr|stable-id|pnr,stable-id] < identifiers",
		"Subject access: which vendors received which attribute names about one person, and when. The personal number and/or stable id are read from standard input, one a line in the --by order; the lookup is written to the admin action log first.", func(fs *flag.FlagSet) {
			fs.StringVar(&format, "format", "csv", "csv or json")
			fs.StringVar(&by, "by", "pnr", "what stdin holds, one a line in this order: pnr, stable-id, or pnr,stable-id")
		})
	if !ok {
		return code
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
	cfg, code, ok := configFromArgs("audit admin-actions", args, stdout, stderr,
		"skolbro audit admin-actions --config FILE [--organiser ID] [--format csv|json] [--since YYYY-MM-DD]",
		"The admin action log: which admin (pseudonymous key) looked up or changed whose record (subject keys), when, in which request.", func(fs *flag.FlagSet) {
			fs.StringVar(&format, "format", "csv", "csv or json")
			fs.StringVar(&since, "since", "", "only actions on or after this date (YYYY-MM-DD, UTC)")
			fs.StringVar(&orgID, "organiser", "", "the organiser's id (when the configuration lists several)")
		})
	if !ok {
		return code
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
	_, org, code, ok := loadForCommand("metadata", args, stdout, stderr,
		"skolbro metadata --config FILE [--organiser ID] --out DIR",
		"Writes the bridge's signed metadata (idp.xml, sp.xml) for a federation.", func(fs *flag.FlagSet) {
			fs.StringVar(&out, "out", "", "directory to write idp.xml and sp.xml to")
		})
	if !ok {
		return code
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
	cfg, code, ok := configFromArgs("protect "+op, args, stdout, stderr,
		"skolbro protect add|remove|list|init|new-identity --config FILE [--organiser ID] < personal-number",
		"The manual protection register, and a new identity on request; add, remove and new-identity read the personal number from standard input.", func(fs *flag.FlagSet) {
			fs.StringVar(&orgID, "organiser", "", "the organiser's id (when the configuration lists several)")
		})
	if !ok {
		return code
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

// configFromArgs parses a command's flags and loads --config. On failure
// code is the exit status: 0 after -h, 2 otherwise.
func configFromArgs(name string, args []string, stdout, stderr io.Writer, synopsis, about string, extra func(*flag.FlagSet)) (cfg *config.Config, code int, ok bool) {
	fs := newFlagSet(name, stdout, stderr, synopsis, about)
	path := fs.String("config", "", "configuration file")
	if extra != nil {
		extra(fs.FlagSet)
	}
	if code, ok := parseFlags(fs, args); !ok {
		return nil, code, false
	}
	if *path == "" {
		fmt.Fprintf(stderr, "skolbro %s: --config is required\n", name)
		return nil, 2, false
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro: %v\n", err)
		return nil, 2, false
	}
	return cfg, 0, true
}
