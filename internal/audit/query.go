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
}

// maxLine bounds one log line; FileSink writes far shorter ones.
const maxLine = 1 << 20

// ErrNoSubjectKey is returned for an empty subject key, which would match
// every event logged without a subject.
var ErrNoSubjectKey = errors.New("audit: empty subject key")

// Query returns the events logged under subjectKey in every log file in
// dir, rotated ones included, oldest first. Lines that do not parse are
// skipped; Scan reports how many.
func Query(dir, subjectKey string) ([]Record, error) {
	res, err := Scan(context.Background(), dir, subjectKey)
	if err != nil {
		return nil, err
	}
	return res.Records, nil
}

// Scan is Query with a context and the counts of files and skipped lines.
func Scan(ctx context.Context, dir, subjectKey string) (*QueryResult, error) {
	if subjectKey == "" {
		return nil, ErrNoSubjectKey
	}
	files, err := listLogFiles(dir)
	if err != nil {
		return nil, err
	}
	res := &QueryResult{}
	for _, lf := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := scanFile(filepath.Join(dir, lf.name), subjectKey, res); err != nil {
			return nil, err
		}
		res.Files++
	}
	sort.SliceStable(res.Records, func(i, j int) bool { return res.Records[i].Time.Before(res.Records[j].Time) })
	return res, nil
}

func scanFile(path, subjectKey string, res *QueryResult) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit: open log file: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	needle := []byte(subjectKey)
	for {
		line, tooLong, err := readLine(r)
		if len(line) > 0 || tooLong {
			switch {
			case tooLong:
				res.Skipped++
			case !bytes.Contains(line, needle):
				// Not this subject's: only check that it is whole.
				if line[0] != '{' || !json.Valid(line) {
					res.Skipped++
				}
			default:
				var e Event
				if json.Unmarshal(line, &e) != nil || e.Time.IsZero() || e.Vendor == "" {
					res.Skipped++
				} else if e.SubjectKey == subjectKey {
					res.Records = append(res.Records, Record{
						Time: e.Time.UTC(), Vendor: e.Vendor, Protocol: e.Protocol,
						Attributes: append([]string{}, e.Attributes...),
						Masked:     e.Masked, Outcome: e.Outcome, Reason: e.Reason,
						Generation: e.Generation,
					})
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

// SubjectReport is the JSON answer to a subject access request.
type SubjectReport struct {
	GeneratedAt time.Time       `json:"generated_at"`
	Records     []Record        `json:"records"`
	Summary     []VendorSummary `json:"summary"`
	// FilesScanned and SkippedLines let the admin see that the whole log
	// was read, and whether a damaged line may have hidden an event.
	FilesScanned int `json:"files_scanned"`
	SkippedLines int `json:"skipped_lines"`
}

// maxStdin bounds what SubjectCommand reads: one personal number.
const maxStdin = 256

// Errors of SubjectCommand. None of them carries the input.
var (
	ErrBadFormat      = errors.New("audit: unknown format; use csv or json")
	ErrNoInput        = errors.New("audit: no personal identity number on standard input")
	ErrBadSubjectLine = errors.New("audit: expected one personal identity number on standard input")
	ErrBadSubjectPN   = errors.New("audit: not a valid personal identity number")
)

// SubjectCommand is the body of `skolbro audit subject`: it reads one
// personal number from stdin (never from the command line, where it would
// end up in shell history and process lists), checks it, and writes the
// subject's records to stdout as csv (records only) or json (a
// SubjectReport with a per-vendor summary in UTC dates). The number is
// never echoed, in output or in errors. now decides the century of a
// 10-digit number and stamps the report.
func SubjectCommand(ctx context.Context, dir string, keyer *SubjectKeyer, stdin io.Reader, stdout io.Writer, format string, now time.Time) error {
	if format == "" {
		format = "csv"
	}
	if format != "csv" && format != "json" {
		return ErrBadFormat
	}
	if keyer == nil {
		return errors.New("audit: no audit key")
	}
	b, err := io.ReadAll(io.LimitReader(stdin, maxStdin+1))
	if err != nil {
		return fmt.Errorf("audit: read standard input: %w", err)
	}
	if len(b) > maxStdin {
		return ErrBadSubjectLine
	}
	text := strings.TrimSpace(string(b))
	if text == "" {
		return ErrNoInput
	}
	if strings.ContainsAny(text, "\r\n") {
		return ErrBadSubjectLine
	}
	pn, err := identity.ParsePersonalNumber(text, now)
	if err != nil {
		return ErrBadSubjectPN
	}
	res, err := Scan(ctx, dir, keyer.KeyForPersonalNumber(pn))
	if err != nil {
		return err
	}
	if format == "csv" {
		return WriteCSV(stdout, res.Records)
	}
	rep := SubjectReport{
		GeneratedAt:  now.UTC(),
		Records:      res.Records,
		Summary:      Summarise(res.Records, nil),
		FilesScanned: res.Files,
		SkippedLines: res.Skipped,
	}
	if rep.Records == nil {
		rep.Records = []Record{}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
