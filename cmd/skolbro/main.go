// Command skolbro is the identity bridge between a school organiser's IdP
// and its vendors. Subcommands: serve, reload, check, demo, register,
// audit, metadata, protect, bench and version.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/bench"
)

const usage = `skolbro: an identity bridge for schools

Usage:
  skolbro serve --config FILE [--pid-file FILE]
                                run the bridge (SIGHUP reloads the configuration)
  skolbro reload --pid-file FILE [--config FILE]
                                check the configuration, then make the running bridge reload it
  skolbro check --config FILE   check configuration, metadata and release policies
  skolbro demo [--addr ADDR]    run a self-contained demo (test IdP, bridge, vendors)
  skolbro register --config FILE [--format csv|json]
                                the release register: what each vendor receives, and why
  skolbro audit subject --config FILE [--format csv|json] [--by pnr|stable-id|pnr,stable-id]
                                what was released about one person (personal number and/or
                                stable id on stdin, one a line); the lookup is logged
  skolbro audit admin-actions --config FILE [--format csv|json] [--since YYYY-MM-DD]
                                the admin action log: whose record was looked up, by whom, when
  skolbro metadata --config FILE --out DIR
                                write the bridge's signed metadata (idp.xml, sp.xml) for a federation
  skolbro bench [--concurrency 8,32,128] [--duration 10s] [--store memory|redis] [--protocol saml|oidc]
                [--world realistic|light] [--serve]
                                load benchmark of whole logins (see README, Performance)
  skolbro protect add|remove|list|init|new-identity --config FILE
                                the manual protection register, and a new identity on request
                                (personal number on stdin)
  skolbro keys init|rotate signing|show --config FILE
                                make the missing key files, start a signing key rollover, show fingerprints and expiry
  skolbro inspect --config FILE which attribute names (never values) each school IdP sent recently, and how each is read
  skolbro diff --config NEW --against OLD [--format text|json]
                                what a configuration change does to each vendor (exit 0 none, 1 changes, 2 error)
  skolbro version               the version this binary was built from

Every command prints its own flags with -h (exit status 0). Errors go to
standard error with a non-zero status: 1 when the command failed, 2 for
bad usage.
`

const (
	usageProtect = "usage: skolbro protect add|remove|list|init|new-identity --config FILE [--organiser ID]\n"
	usageAudit   = "usage: skolbro audit subject|admin-actions --config FILE [--organiser ID] [--format csv|json]\n"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return cmdServe(args[1:], stdout, stderr)
	case "reload":
		return cmdReload(args[1:], stdout, stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "register":
		return cmdRegister(args[1:], stdout, stderr)
	case "metadata":
		return cmdMetadata(args[1:], stdout, stderr)
	case "bench":
		return bench.Command(args[1:], stdout, stderr)
	case "keys":
		return cmdKeys(args[1:], stdout, stderr)
	case "inspect":
		return cmdInspect(args[1:], stdout, stderr)
	case "diff":
		return cmdDiff(args[1:], stdout, stderr)
	case "protect":
		if len(args) >= 2 && isHelp(args[1]) {
			fmt.Fprint(stdout, usageProtect)
			return 0
		}
		if len(args) < 2 {
			fmt.Fprint(stderr, usageProtect)
			return 2
		}
		return cmdProtect(args[1], args[2:], os.Stdin, stdout, stderr)
	case "audit":
		if len(args) >= 2 && isHelp(args[1]) {
			fmt.Fprint(stdout, usageAudit)
			return 0
		}
		switch {
		case len(args) >= 2 && args[1] == "subject":
			return cmdAuditSubject(args[2:], os.Stdin, stdout, stderr)
		case len(args) >= 2 && args[1] == "admin-actions":
			return cmdAuditAdminActions(args[2:], stdout, stderr)
		}
		fmt.Fprint(stderr, usageAudit)
		return 2
	case "version", "-version", "--version":
		if len(args) > 1 && !isHelp(args[1]) {
			fmt.Fprintf(stderr, "skolbro version: unexpected argument %q\n", args[1])
			return 2
		}
		fmt.Fprintln(stdout, version())
		return 0
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && !isHelp(args[1]) {
			// skolbro help CMD is CMD -h.
			return run([]string{args[1], "-h"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "skolbro: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func newLogger(w io.Writer, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}
