package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
)

// flags are a command's flags with where its output goes.
type flags struct {
	*flag.FlagSet
	stdout, stderr io.Writer
}

// newFlagSet makes a command's flags. Its usage names the command's
// synopsis and what it does, then the flags.
func newFlagSet(name string, stdout, stderr io.Writer, synopsis, about string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: %s\n", synopsis)
		if about != "" {
			fmt.Fprintf(w, "\n%s\n", about)
		}
		fmt.Fprintln(w, "\nflags:")
		fs.PrintDefaults()
	}
	return &flags{FlagSet: fs, stdout: stdout, stderr: stderr}
}

// parseFlags parses args by the conventions of every command: -h, -help
// or --help prints the usage on standard output and ends the command with
// status 0; an unknown flag or a stray argument prints the problem and
// the usage on standard error and ends it with status 2. ok is true when
// the command goes on.
func parseFlags(fs *flags, args []string) (code int, ok bool) {
	fs.SetOutput(io.Discard) // the messages are written below, each where it belongs
	err := fs.Parse(args)
	fs.SetOutput(fs.stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(fs.stdout)
		fs.Usage()
		fs.SetOutput(fs.stderr)
		return 0, false
	case err != nil:
		fmt.Fprintf(fs.stderr, "skolbro %s: %v\n", fs.Name(), err)
		fs.Usage()
		return 2, false
	case fs.NArg() > 0:
		fmt.Fprintf(fs.stderr, "skolbro %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return 2, false
	}
	return 0, true
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// version is the module version and VCS revision the binary was built
// from, as the Go toolchain recorded them.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "skolbro (unknown version)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified, at string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+modified"
			}
		case "vcs.time":
			at = s.Value
		}
	}
	out := "skolbro " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		out += " " + rev + modified
	}
	if at != "" {
		out += " " + at
	}
	return out + " " + bi.GoVersion
}
