package audit

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Channels an admin action comes through.
const (
	// ChannelWeb is the admin web interface; the admin is known.
	ChannelWeb = "web"
	// ChannelCLI is a command run on the server, e.g. `skolbro audit
	// subject`; the operating system knows who ran it, the bridge does not.
	ChannelCLI = "cli"
)

// Admin actions that reveal or change what the bridge knows about a
// person: subject access, and the manual protection register (whose
// answers tell whether someone is protected).
const (
	ActionSubjectAccess    = "subject_access"
	ActionProtectionAdd    = "protection_add"
	ActionProtectionRemove = "protection_remove"
	ActionProtectionList   = "protection_list"
	ActionProtectionLookup = "protection_lookup"
	// A new identity asked for, or whether one was: either says the
	// person is or was protected.
	ActionNewIdentityRequest = "new_identity_request"
	ActionNewIdentityStatus  = "new_identity_status"
)

// AdminAction is one entry in the admin action log: who looked up or
// changed whose record, when, and in which request. The person is named
// only by subject keys (never a personal number), the admin only by a
// pseudonymous key (never a name). Like Event, it has no field a value
// could go into.
type AdminAction struct {
	// Time is when the action was taken; a zero Time is set by the log.
	Time time.Time `json:"time"`
	// TxnID is the request id of a web action, shown on the admin's page.
	TxnID string `json:"txn_id,omitempty"`
	// Channel is ChannelWeb or ChannelCLI.
	Channel string `json:"channel"`
	// Admin is the admin's pseudonymous key (the audit subject key of
	// the admin's own identity) for a web action; empty for the CLI.
	Admin string `json:"admin,omitempty"`
	// Action is one of the Action constants.
	Action string `json:"action"`
	// SubjectKeys are the keys of the person looked up (SubjectKeyer),
	// one per identifier the admin gave; none for a list of the register.
	SubjectKeys []string `json:"subject_keys,omitempty"`
}

// ErrInvalidAction is returned for an admin action the log refuses.
var ErrInvalidAction = errors.New("audit: invalid admin action")

// Validate checks every field's shape; the message names the field only.
func (a *AdminAction) Validate() error {
	bad := func(field string) error { return fmt.Errorf("%w: %s", ErrInvalidAction, field) }
	switch a.Channel {
	case ChannelWeb:
		if !validSubjectKey(a.Admin) {
			return bad("admin")
		}
	case ChannelCLI:
		if a.Admin != "" {
			return bad("admin")
		}
	default:
		return bad("channel")
	}
	if !txnPattern.MatchString(a.TxnID) {
		return bad("txn_id")
	}
	switch a.Action {
	case ActionProtectionList:
		if len(a.SubjectKeys) != 0 {
			return bad("subject_keys")
		}
	case ActionSubjectAccess, ActionProtectionAdd, ActionProtectionRemove, ActionProtectionLookup,
		ActionNewIdentityRequest, ActionNewIdentityStatus:
		if len(a.SubjectKeys) == 0 {
			return bad("subject_keys")
		}
	default:
		return bad("action")
	}
	if len(a.SubjectKeys) > maxSubjectKeys {
		return bad("subject_keys")
	}
	for i, k := range a.SubjectKeys {
		if !validSubjectKey(k) || slices.Contains(a.SubjectKeys[:i], k) {
			return bad("subject_keys")
		}
	}
	return nil
}

// ActionSink receives admin actions. Write returns once the action is as
// durable as the sink promises; on an error the caller must not carry
// out the action, so that no lookup goes unrecorded.
type ActionSink interface {
	Write(ctx context.Context, a AdminAction) error
}

// ActionLog is the admin action log: JSON-lines files named
// admin-actions-20261124T101500Z.jsonl in the release log's directory,
// written, fsync'd, rotated and deleted by retention exactly as the
// release log's own files. It is safe for concurrent use.
type ActionLog struct {
	fs *FileSink
}

// OpenActionLog opens the admin action log in cfg.Dir with the release
// log's settings.
func OpenActionLog(cfg FileSinkConfig) (*ActionLog, error) {
	fs, err := openStream(cfg, actionPrefix)
	if err != nil {
		return nil, err
	}
	return &ActionLog{fs: fs}, nil
}

// Write validates a, appends it as one line, and returns after its fsync.
func (l *ActionLog) Write(ctx context.Context, a AdminAction) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := l.fs.now()
	if a.Time.IsZero() {
		a.Time = now
	}
	a.Time = a.Time.UTC()
	if err := a.Validate(); err != nil {
		return err
	}
	line, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("audit: encode admin action: %w", err)
	}
	return l.fs.writeLine(now, append(line, '\n'))
}

// File returns the path of the file actions are currently written to.
func (l *ActionLog) File() string { return l.fs.File() }

// Close syncs and closes the current file.
func (l *ActionLog) Close() error { return l.fs.Close() }

// ActionResult is the admin action log as read back.
type ActionResult struct {
	// Actions are oldest first.
	Actions []AdminAction
	// Files is how many files were read; Skipped counts lines that did
	// not parse (normally only one torn by a crash).
	Files   int
	Skipped int
}

// ReadActions returns the admin actions in dir at or after since (every
// one for a zero since), oldest first.
func ReadActions(ctx context.Context, dir string, since time.Time) (*ActionResult, error) {
	files, err := listLogFiles(dir, actionPrefix)
	if err != nil {
		return nil, err
	}
	res := &ActionResult{}
	for _, lf := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := readActionFile(filepath.Join(dir, lf.name), since, res); err != nil {
			return nil, err
		}
		res.Files++
	}
	sort.SliceStable(res.Actions, func(i, j int) bool { return res.Actions[i].Time.Before(res.Actions[j].Time) })
	return res, nil
}

func readActionFile(path string, since time.Time, res *ActionResult) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit: open admin action log: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, tooLong, err := readLine(r)
		if len(line) > 0 || tooLong {
			var a AdminAction
			switch {
			case tooLong, json.Unmarshal(line, &a) != nil, a.Validate() != nil:
				res.Skipped++
			case !a.Time.Before(since):
				a.Time = a.Time.UTC()
				res.Actions = append(res.Actions, a)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: read admin action log: %w", err)
		}
	}
}

// WriteActionsCSV writes actions with a header row; subject keys are
// joined with "; " and times are RFC 3339 in UTC.
func WriteActionsCSV(w io.Writer, actions []AdminAction) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"time", "txn_id", "channel", "admin", "action", "subject_keys"}); err != nil {
		return err
	}
	for _, a := range actions {
		row := []string{a.Time.UTC().Format(time.RFC3339), a.TxnID, a.Channel, a.Admin, a.Action, strings.Join(a.SubjectKeys, "; ")}
		for i := range row {
			row[i] = csvSafe(row[i])
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ActionsCommand is the body of `skolbro audit admin-actions`: it lists
// the admin action log as csv or json (an ActionResult's actions with the
// counts of files and skipped lines).
func ActionsCommand(ctx context.Context, dir string, stdout io.Writer, format string, since time.Time) error {
	if format == "" {
		format = "csv"
	}
	if format != "csv" && format != "json" {
		return ErrBadFormat
	}
	res, err := ReadActions(ctx, dir, since)
	if err != nil {
		return err
	}
	if format == "csv" {
		return WriteActionsCSV(stdout, res.Actions)
	}
	out := struct {
		Actions      []AdminAction `json:"actions"`
		FilesScanned int           `json:"files_scanned"`
		SkippedLines int           `json:"skipped_lines"`
	}{res.Actions, res.Files, res.Skipped}
	if out.Actions == nil {
		out.Actions = []AdminAction{}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
