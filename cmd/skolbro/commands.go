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
	rows, err := units.New(st, org.ID).Register(ctx, org.Policies.All(), requested)
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

func cmdAuditSubject(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	format := "csv"
	cfg, org, ok := loadForCommand("audit subject", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "csv", "csv or json")
	})
	if !ok {
		return 2
	}
	if org.AuditKeys == nil {
		fmt.Fprintf(stderr, "skolbro audit subject: %s: organiser.audit is not configured\n", cfg.File())
		return 2
	}
	dir := cfg.Path(cfg.Organiser.Audit.Dir)
	if err := audit.SubjectCommand(context.Background(), dir, org.AuditKeys, stdin, stdout, format, time.Now()); err != nil {
		fmt.Fprintf(stderr, "skolbro audit subject: %v\n", err)
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
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file")
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
