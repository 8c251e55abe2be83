package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/skolbro/skolbro/internal/cfgdiff"
)

// cmdDiff compares two configuration trees for review (issue 17, item 4).
// Exit status: 0 no change, 1 changes, 2 error, so that it fits a
// merge-request check.
func cmdDiff(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("diff", stdout, stderr, "skolbro diff --config NEW --against OLD [--format text|json]",
		"Compares two configuration trees (e.g. a merge request's and a worktree of the main branch) for review: per vendor the attributes added or removed, "+
			"masking and preset changes, agreement changes, vendors and organisers added or removed, and, flagged loudly, every change that gives every person "+
			"a new identity at a vendor (NameID kind, OIDC sector, scope, stable id, pseudonym key). Reads files only. "+
			"Exit status: 0 no change, 1 changes, 2 error.")
	newPath := fs.String("config", "", "the new configuration file")
	oldPath := fs.String("against", "", "the old configuration file")
	format := fs.String("format", "text", "text or json")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *newPath == "" || *oldPath == "" {
		fmt.Fprintln(stderr, "skolbro diff: --config and --against are required")
		return 2
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintln(stderr, "skolbro diff: --format must be text or json")
		return 2
	}
	now := time.Now()
	oldT, err := cfgdiff.Load(*oldPath, now)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro diff: --against: %v\n", err)
		return 2
	}
	newT, err := cfgdiff.Load(*newPath, now)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro diff: --config: %v\n", err)
		return 2
	}
	changes := cfgdiff.Diff(oldT, newT)
	if *format == "json" {
		if changes == nil {
			changes = []cfgdiff.Change{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(changes); err != nil {
			fmt.Fprintf(stderr, "skolbro diff: %v\n", err)
			return 2
		}
	} else {
		writeDiffText(stdout, changes)
	}
	if len(changes) > 0 {
		return 1
	}
	return 0
}

func writeDiffText(w io.Writer, changes []cfgdiff.Change) {
	if len(changes) == 0 {
		fmt.Fprintln(w, "no change")
		return
	}
	org, vendor := "\x00", "\x00"
	identities := 0
	for _, c := range changes {
		if c.Organiser != org {
			org, vendor = c.Organiser, "\x00"
			fmt.Fprintf(w, "organiser %s\n", org)
		}
		if c.Vendor != vendor {
			vendor = c.Vendor
			if vendor != "" {
				fmt.Fprintf(w, "  vendor %s\n", vendor)
			}
		}
		indent := "    "
		if c.Vendor == "" {
			indent = "  "
		}
		mark := "~"
		switch {
		case strings.HasSuffix(c.What, " added"):
			mark = "+"
		case strings.HasSuffix(c.What, " removed"):
			mark = "-"
		}
		line := c.What
		switch {
		case c.Old != "" && c.New != "":
			line += ": " + c.Old + " -> " + c.New
		case c.New != "":
			line += ": " + c.New
		case c.Old != "":
			line += ": " + c.Old
		}
		if c.Identity {
			identities++
			fmt.Fprintf(w, "%s!!! NEW IDENTITY FOR EVERY PERSON: %s\n", indent, line)
		} else {
			fmt.Fprintf(w, "%s%s %s\n", indent, mark, line)
		}
		if c.Note != "" {
			fmt.Fprintf(w, "%s    %s\n", indent, c.Note)
		}
	}
	fmt.Fprintf(w, "%d change(s)", len(changes))
	if identities > 0 {
		fmt.Fprintf(w, "; %d give every person a new identity: agree them with the vendors before merging", identities)
	}
	fmt.Fprintln(w)
}
