package audit

import (
	"bufio"
	"bytes"
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
	"strconv"
	"strings"
	"time"

	"github.com/skolbro/skolbro/internal/identity"
)

// Record is what subject access reports about one logged event: which
// vendor received which attribute names, when, and how.
type Record struct {
	Time       time.Time `json:"time"`
	Vendor     string    `json:"vendor"`
	Protocol   string    `json:"protocol"`
	Attributes []string  `json:"attributes"`
	// Masked says the person was treated as protected. For a protected
	// person the report itself needs the organiser's harm assessment
	// before it is handed out (to a guardian, for instance).
	Masked  bool   `json:"masked"`
	Outcome string `json:"outcome"`
	// Reason is the refusal label, empty for a release.
	Reason string `json:"reason,omitempty"`
	// Generation is the identity generation of a release (0: the
	// person's original identity).
	Generation int `json:"generation"`
}

// QueryResult is the outcome of a scan of the log directory.
type QueryResult struct {
	// Records are the subject's events, oldest first.
	Records []Record
	// Files is how many log files were read.
	Files int
	// Skipped counts lines that did not parse: normally only a line torn
	// by a crash at the end of a file.
	Skipped int
	// LogStart is when the oldest log file still present was started:
	// nothing before it is covered (retention deleted it, or there was no
	// log yet). Zero when there are no files.
	LogStart time.Time
	// SingleKeyEvents counts the events, anyone's, logged under one
	// subject key only, before events carried every key (SubjectKeys);
	// SingleKeyUntil is the time of the newest of them. A lookup by one
	// form of identifier misses such an event logged under the other.
	SingleKeyEvents int
	SingleKeyUntil  time.Time
}

// maxLine bounds one log line; FileSink writes far shorter ones.
const maxLine = 1 << 20

// ErrNoSubjectKey is returned for an empty subject key, which would match
// every event logged without a subject.
var ErrNoSubjectKey = errors.New("audit: empty subject key")

// Query returns the events logged under any of subjectKeys in every log
// file in dir, rotated ones included, oldest first, each event once.
// Lines that do not parse are skipped; Scan reports how many.
func Query(dir string, subjectKeys ...string) ([]Record, error) {
	res, err := Scan(context.Background(), dir, subjectKeys...)
	if err != nil {
		return nil, err
	}
	return res.Records, nil
}

// Scan is Query with a context and what the scan covered: the counts of
// files and skipped lines, where the log starts, and the events logged
// under a single key.
func Scan(ctx context.Context, dir string, subjectKeys ...string) (*QueryResult, error) {
	keys := subjectKeys
	subjectKeys = nil
	for _, k := range keys {
		if k != "" && !slices.Contains(subjectKeys, k) {
			subjectKeys = append(subjectKeys, k)
		}
	}
	if len(subjectKeys) == 0 {
		return nil, ErrNoSubjectKey
	}
	files, err := listLogFiles(dir, releasePrefix)
	if err != nil {
		return nil, err
	}
	res := &QueryResult{}
	if len(files) > 0 {
		res.LogStart = files[0].start
	}
	for _, lf := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := scanFile(filepath.Join(dir, lf.name), subjectKeys, res); err != nil {
			return nil, err
		}
		res.Files++
	}
	sort.SliceStable(res.Records, func(i, j int) bool { return res.Records[i].Time.Before(res.Records[j].Time) })
	return res, nil
}

var (
	keysField     = []byte(`"subject_keys"`)
	noSubjectHere = []byte(`"subject_key":""`)
)

// singleKey reports whether a whole line is an event logged under one
// subject key only: one written before events carried SubjectKeys.
func singleKey(line []byte) bool {
	return !bytes.Contains(line, keysField) && !bytes.Contains(line, noSubjectHere)
}

func (res *QueryResult) countSingleKey(t time.Time) {
	res.SingleKeyEvents++
	if t.After(res.SingleKeyUntil) {
		res.SingleKeyUntil = t.UTC()
	}
}

func scanFile(path string, subjectKeys []string, res *QueryResult) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit: open log file: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	needles := make([][]byte, len(subjectKeys))
	for i, k := range subjectKeys {
		needles[i] = []byte(k)
	}
	mayMatch := func(line []byte) bool {
		for _, n := range needles {
			if bytes.Contains(line, n) {
				return true
			}
		}
		return false
	}
	for {
		line, tooLong, err := readLine(r)
		if len(line) > 0 || tooLong {
			switch {
			case tooLong:
				res.Skipped++
			case !mayMatch(line):
				// Not this subject's: only check that it is whole, and
				// count it if it was logged under a single key.
				var head struct {
					Time time.Time `json:"time"`
				}
				switch {
				case line[0] != '{' || !json.Valid(line):
					res.Skipped++
				case singleKey(line) && json.Unmarshal(line, &head) == nil:
					res.countSingleKey(head.Time)
				}
			default:
				var e Event
				if json.Unmarshal(line, &e) != nil || e.Time.IsZero() || e.Vendor == "" {
					res.Skipped++
					break
				}
				if e.SubjectKey != "" && len(e.SubjectKeys) == 0 {
					res.countSingleKey(e.Time)
				}
				for _, k := range subjectKeys {
					if e.hasSubject(k) {
						res.Records = append(res.Records, Record{
							Time: e.Time.UTC(), Vendor: e.Vendor, Protocol: e.Protocol,
							Attributes: append([]string{}, e.Attributes...),
							Masked:     e.Masked, Outcome: e.Outcome, Reason: e.Reason,
							Generation: e.Generation,
						})
						break
					}
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: read log file: %w", err)
		}
	}
}

// readLine returns the next line without its newline. A line longer than
// maxLine is consumed and reported as tooLong, without its content.
func readLine(r *bufio.Reader) (line []byte, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > maxLine+1 {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(buf, "\r\n"), tooLong, err
	}
}

// csvSafe keeps a spreadsheet from reading a cell as a formula. Vendor
// ids in refusals can come from a request, so they are not trusted.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteCSV writes records with a header row; attribute names are joined
// with "; " and times are RFC 3339 in UTC.
func WriteCSV(w io.Writer, records []Record) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"time", "vendor", "protocol", "attributes", "masked", "outcome", "reason", "generation"}); err != nil {
		return err
	}
	for _, r := range records {
		row := []string{
			r.Time.UTC().Format(time.RFC3339), csvSafe(r.Vendor), csvSafe(r.Protocol),
			csvSafe(strings.Join(r.Attributes, "; ")), strconv.FormatBool(r.Masked),
			csvSafe(r.Outcome), csvSafe(r.Reason), generationCell(r.Outcome, r.Generation),
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// generationCell is a release's identity generation; a refusal released
// no identifier, so its cell is empty.
func generationCell(outcome string, g int) string {
	if outcome != OutcomeReleased {
		return ""
	}
	return strconv.Itoa(g)
}

// WriteJSON writes records as an indented JSON array.
func WriteJSON(w io.Writer, records []Record) error {
	if records == nil {
		records = []Record{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(records)
}

// VendorSummary is what one vendor received about a subject.
type VendorSummary struct {
	Vendor string `json:"vendor"`
	// Protocols are the protocols the vendor was reached by.
	Protocols []string `json:"protocols"`
	// Attributes are the released names, each with its dates.
	Attributes []AttributeDates `json:"attributes"`
	// Refusals counts logins that released nothing to the vendor.
	Refusals int `json:"refusals,omitempty"`
}

// AttributeDates lists the dates (YYYY-MM-DD) on which an attribute was
// released to a vendor.
type AttributeDates struct {
	Name  string   `json:"name"`
	Dates []string `json:"dates"`
}

// Summarise groups records per vendor: which attribute names were
// released on which dates, in loc (UTC when nil). Refusals released
// nothing and are only counted. Vendors, names and dates are sorted.
func Summarise(records []Record, loc *time.Location) []VendorSummary {
	if loc == nil {
		loc = time.UTC
	}
	type acc struct {
		protocols map[string]bool
		days      map[string]map[string]bool // attribute name -> dates
		refusals  int
	}
	byVendor := map[string]*acc{}
	for _, r := range records {
		a := byVendor[r.Vendor]
		if a == nil {
			a = &acc{protocols: map[string]bool{}, days: map[string]map[string]bool{}}
			byVendor[r.Vendor] = a
		}
		a.protocols[r.Protocol] = true
		if r.Outcome != OutcomeReleased {
			a.refusals++
			continue
		}
		day := r.Time.In(loc).Format(time.DateOnly)
		for _, n := range r.Attributes {
			if a.days[n] == nil {
				a.days[n] = map[string]bool{}
			}
			a.days[n][day] = true
		}
	}
	out := make([]VendorSummary, 0, len(byVendor))
	for vendor, a := range byVendor {
		v := VendorSummary{Vendor: vendor, Protocols: sortedKeys(a.protocols), Attributes: []AttributeDates{}, Refusals: a.refusals}
		for n, d := range a.days {
			v.Attributes = append(v.Attributes, AttributeDates{Name: n, Dates: sortedKeys(d)})
		}
		sort.Slice(v.Attributes, func(i, j int) bool { return v.Attributes[i].Name < v.Attributes[j].Name })
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Vendor < out[j].Vendor })
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Lookup forms of a subject access request: what the admin gave.
const (
	// ByPersonalNumber finds events by the personal number's key.
	ByPersonalNumber = "personal_number"
	// ByStableID finds events by the upstream's stable id (for example
	// the EPPN or user name, exactly as the school IdP sends it).
	ByStableID = "stable_id"
)

// NotCovered states, in fixed sentences, what an extract from res cannot
// show, given the lookup forms used. It names no person and no
// identifier, so it can go into the extract as it is.
func NotCovered(res *QueryResult, searchedBy []string) []string {
	byPN, bySID := slices.Contains(searchedBy, ByPersonalNumber), slices.Contains(searchedBy, ByStableID)
	out := []string{
		"Only events logged under the identifiers given are included: logins under another identifier " +
			"(another account or user name, an earlier personal number, another school IdP's id) are not.",
	}
	if !bySID {
		out = append(out, "No stable id (user name) was given: logins in which the school IdP sent no personal number, "+
			"or one the bridge had to drop, are found only by the stable id.")
	}
	if !byPN {
		out = append(out, "No personal number was given: logins through the person's other accounts are found only by the number.")
	}
	if res.SingleKeyEvents > 0 {
		out = append(out, fmt.Sprintf("%d events in the log, up to %s, were written before every login was logged under all its keys: "+
			"each carries one key only (the personal number's when there was one, else the stable id's). "+
			"Give both forms to find them.", res.SingleKeyEvents, res.SingleKeyUntil.UTC().Format(time.DateOnly)))
	}
	if res.LogStart.IsZero() {
		out = append(out, "The log holds no files: nothing is covered.")
	} else {
		out = append(out, fmt.Sprintf("The log begins on %s: earlier events were deleted by the retention setting, "+
			"or were never logged, and are not covered.", res.LogStart.UTC().Format(time.DateOnly)))
	}
	out = append(out, "Refusals before the person logged in (for example to a vendor whose agreement had ended) name no one and are not included.")
	if res.Skipped > 0 {
		out = append(out, fmt.Sprintf("%d lines of the log could not be read (for example torn by a crash): an event may be missing.", res.Skipped))
	}
	return out
}

// SubjectReport is the JSON answer to a subject access request.
type SubjectReport struct {
	GeneratedAt time.Time       `json:"generated_at"`
	Records     []Record        `json:"records"`
	Summary     []VendorSummary `json:"summary"`
	// FilesScanned and SkippedLines let the admin see that the whole log
	// was read, and whether a damaged line may have hidden an event.
	FilesScanned int `json:"files_scanned"`
	SkippedLines int `json:"skipped_lines"`
	// SearchedBy lists the lookup forms given (ByPersonalNumber,
	// ByStableID); NotCovered states what the extract cannot show.
	SearchedBy []string `json:"searched_by"`
	NotCovered []string `json:"not_covered"`
}

// maxStdin bounds what SubjectCommand reads: one line per lookup form.
const maxStdin = 1024

// maxStableID bounds a stable id typed by an admin.
const maxStableID = 256

// Errors of SubjectCommand. None of them carries the input.
var (
	ErrBadFormat      = errors.New("audit: unknown format; use csv or json")
	ErrNoInput        = errors.New("audit: no personal identity number on standard input")
	ErrBadSubjectLine = errors.New("audit: expected one line per lookup form on standard input")
	ErrBadSubjectPN   = errors.New("audit: not a valid personal identity number")
	ErrBadStableID    = errors.New("audit: not a valid stable id (one line of printable text, at most 256 bytes)")
	ErrBadLookupForm  = errors.New("audit: unknown lookup form; use pnr, stable-id or pnr,stable-id")
)

// ParseStableID checks a stable id typed by an admin: one line of
// printable text, surrounding space removed. It is kept as it is
// otherwise: the bridge compares stable ids exactly, case included.
func ParseStableID(s string) (identity.Secret, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxStableID || !label(s) {
		return identity.Secret{}, ErrBadStableID
	}
	return identity.NewSecret(s), nil
}

// SubjectOptions are the choices of SubjectCommand.
type SubjectOptions struct {
	// Format is csv (records only) or json (a SubjectReport).
	Format string
	// By lists the lookup forms read from standard input, one line each
	// in this order: ByPersonalNumber and/or ByStableID. Default: the
	// personal number only.
	By []string
	// Now decides the century of a 10-digit number and stamps the report.
	Now time.Time
	// Actions, when set, records the lookup in the admin action log
	// before the release log is read; a lookup that cannot be recorded
	// is not made.
	Actions ActionSink
	// Notes receives what a csv extract cannot state itself: the
	// sentences of NotCovered (nil: not written).
	Notes io.Writer
}

// ParseLookupForms reads the --by flag of `skolbro audit subject`: "pnr",
// "stable-id" or both, comma-separated, in the order they are read.
func ParseLookupForms(s string) ([]string, error) {
	if s == "" {
		return []string{ByPersonalNumber}, nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		var by string
		switch strings.TrimSpace(f) {
		case "pnr":
			by = ByPersonalNumber
		case "stable-id":
			by = ByStableID
		default:
			return nil, ErrBadLookupForm
		}
		if slices.Contains(out, by) {
			return nil, ErrBadLookupForm
		}
		out = append(out, by)
	}
	return out, nil
}

// SubjectCommand is the body of `skolbro audit subject`: it reads the
// person's identifiers from stdin, one a line in the order of o.By (never
// from the command line, where they would end up in shell history and
// process lists), checks them, and writes the person's records to stdout
// as csv (records only; what the extract cannot cover goes to o.Notes) or
// json (a SubjectReport with a per-vendor summary in UTC dates and the
// limits of the extract). Nothing typed is ever echoed, in output or in
// errors.
func SubjectCommand(ctx context.Context, dir string, keyer *SubjectKeyer, stdin io.Reader, stdout io.Writer, o SubjectOptions) error {
	format := o.Format
	if format == "" {
		format = "csv"
	}
	if format != "csv" && format != "json" {
		return ErrBadFormat
	}
	if keyer == nil {
		return errors.New("audit: no audit key")
	}
	by := o.By
	if len(by) == 0 {
		by = []string{ByPersonalNumber}
	}
	b, err := io.ReadAll(io.LimitReader(stdin, maxStdin+1))
	if err != nil {
		return fmt.Errorf("audit: read standard input: %w", err)
	}
	if len(b) > maxStdin {
		return ErrBadSubjectLine
	}
	text := strings.TrimSpace(strings.ReplaceAll(string(b), "\r\n", "\n"))
	if text == "" {
		return ErrNoInput
	}
	lines := strings.Split(text, "\n")
	if len(lines) != len(by) {
		return ErrBadSubjectLine
	}
	var keys []string
	for i, form := range by {
		switch form {
		case ByPersonalNumber:
			pn, err := identity.ParsePersonalNumber(strings.TrimSpace(lines[i]), o.Now)
			if err != nil {
				return ErrBadSubjectPN
			}
			keys = append(keys, keyer.KeyForPersonalNumber(pn))
		case ByStableID:
			sid, err := ParseStableID(lines[i])
			if err != nil {
				return err
			}
			keys = append(keys, keyer.KeyForStableID(sid))
		default:
			return ErrBadLookupForm
		}
	}
	if o.Actions != nil {
		a := AdminAction{Time: o.Now, Channel: ChannelCLI, Action: ActionSubjectAccess, SubjectKeys: keys}
		if err := o.Actions.Write(ctx, a); err != nil {
			return fmt.Errorf("audit: the lookup could not be recorded in the admin action log, so it was not made: %w", err)
		}
	}
	res, err := Scan(ctx, dir, keys...)
	if err != nil {
		return err
	}
	notCovered := NotCovered(res, by)
	if format == "csv" {
		if err := WriteCSV(stdout, res.Records); err != nil {
			return err
		}
		if o.Notes != nil {
			for _, n := range notCovered {
				fmt.Fprintf(o.Notes, "not covered: %s\n", n)
			}
		}
		return nil
	}
	rep := SubjectReport{
		GeneratedAt:  o.Now.UTC(),
		Records:      res.Records,
		Summary:      Summarise(res.Records, nil),
		FilesScanned: res.Files,
		SkippedLines: res.Skipped,
		SearchedBy:   by,
		NotCovered:   notCovered,
	}
	if rep.Records == nil {
		rep.Records = []Record{}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
