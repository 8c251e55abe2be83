package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/skolbro/skolbro/internal/app"
	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/protection"
	"github.com/skolbro/skolbro/internal/server"
	"github.com/skolbro/skolbro/internal/store"
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
	// check opens no store: a memory store stands in, so that the same
	// Build that serve runs checks everything else.
	_, rep := app.Build(cfg, store.NewMemory(nil), time.Now)
	for _, n := range rep.Notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(stdout, "error: %s\n", e)
	}
	if len(rep.Errors) > 0 {
		fmt.Fprintf(stdout, "%d error(s), %d warning(s)\n", len(rep.Errors), len(rep.Warnings))
		return 1
	}
	fmt.Fprintf(stdout, "ok: %d warning(s)\n", len(rep.Warnings))
	return 0
}

// loadForCommand loads and builds the configuration for a one-shot
// command, printing problems to stderr.
func loadForCommand(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*config.Config, *server.Organiser, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file")
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
	org, rep := app.Build(cfg, store.NewMemory(nil), time.Now)
	if err := rep.Err(); err != nil {
		fmt.Fprintf(stderr, "skolbro: configuration has errors (run skolbro check):\n%v\n", err)
		return nil, nil, false
	}
	return cfg, org, true
}

func cmdRegister(args []string, stdout, stderr io.Writer) int {
	format := "csv"
	_, org, ok := loadForCommand("register", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "csv", "csv or json")
	})
	if !ok {
		return 2
	}
	requested := map[string][]string{}
	for id, v := range org.IdP.Vendors {
		requested[id] = v.RequestedAttributes
	}
	rows := audit.BuildRegister(org.Policies.All(), requested)
	var err error
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
	actions, err := app.OpenActionLog(cfg, time.Now)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro audit subject: %s: organiser.audit.dir: admin action log: %v\n", cfg.File(), err)
		return 1
	}
	defer actions.Close()
	dir := cfg.Path(cfg.Organiser.Audit.Dir)
	o := audit.SubjectOptions{Format: format, By: forms, Now: time.Now(), Actions: actions, Notes: stderr}
	if err := audit.SubjectCommand(context.Background(), dir, org.AuditKeys, stdin, stdout, o); err != nil {
		fmt.Fprintf(stderr, "skolbro audit subject: %v\n", err)
		return 1
	}
	return 0
}

// cmdAuditAdminActions lists the admin action log: who looked up or
// changed whose record (by subject key), when, in which request.
func cmdAuditAdminActions(args []string, stdout, stderr io.Writer) int {
	format, since := "csv", ""
	cfg, err := configFromArgsWith("audit admin-actions", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "csv", "csv or json")
		fs.StringVar(&since, "since", "", "only actions on or after this date (YYYY-MM-DD, UTC)")
	})
	if err != nil {
		return 2
	}
	var from time.Time
	if since != "" {
		if from, err = time.Parse(time.DateOnly, since); err != nil {
			fmt.Fprintln(stderr, "skolbro audit admin-actions: --since must be a date YYYY-MM-DD")
			return 2
		}
	}
	if cfg.Organiser.Audit.Dir == "" {
		fmt.Fprintf(stderr, "skolbro audit admin-actions: %s: organiser.audit.dir: required\n", cfg.File())
		return 2
	}
	if err := audit.ActionsCommand(context.Background(), cfg.Path(cfg.Organiser.Audit.Dir), stdout, format, from); err != nil {
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
	if sp, err := org.Metadata.SPMetadataSigned(); err == nil {
		files["sp.xml"] = sp
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
	cfg, err := configFromArgs("protect "+op, args, stderr)
	if err != nil {
		return 2
	}
	if cfg.Organiser.Protection.Register == nil {
		fmt.Fprintf(stderr, "skolbro protect: %s: organiser.protection.register is not configured\n", cfg.File())
		return 2
	}
	st, err := app.OpenStore(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro protect: %v\n", err)
		return 1
	}
	org, rep := app.Build(cfg, st, time.Now)
	if err := rep.Err(); err != nil {
		fmt.Fprintf(stderr, "skolbro: configuration has errors (run skolbro check):\n%v\n", err)
		return 2
	}
	if err := protection.Command(context.Background(), op, org.Register, stdin, stdout, time.Now()); err != nil {
		fmt.Fprintf(stderr, "skolbro protect %s: %v\n", op, err)
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
