package admin

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/skolbro/skolbro/internal/identity"
)

// subjectData is the subject access page. It never holds the number the
// admin typed: the form is always shown empty.
type subjectData struct {
	// Problem is a fixed message about the last submission, or "".
	ProblemSV, ProblemEN string
	Searched             bool
	Vendors              []subjectVendor
	Records              int
	Refusals             int
	Masked               bool
	FilesScanned         int
	SkippedLines         int
	// Generations lists the person's identity generations seen in
	// releases, with the first date of each, when there is more than the
	// original one.
	Generations []subjectGeneration
}

// subjectGeneration is one identity generation of the person: the
// pseudonyms vendors received from its first release on.
type subjectGeneration struct {
	Number int
	From   string
}

type subjectVendor struct {
	Vendor, DisplayName string
	Protocols           []string
	Attributes          []subjectAttr
	Refusals            int
}

type subjectAttr struct {
	Name  string
	Dates []string
}

// handleSubject answers a subject access request: which vendors received
// which attribute names, on which dates. The number comes only in a POST
// body; it is never logged, echoed, or put into a URL or a redirect.
func (a *Admin) handleSubject(w http.ResponseWriter, r *http.Request, s *session) {
	if a.d.SubjectAccess == nil {
		a.fail(w, r, http.StatusNotFound, msgNotFound)
		return
	}
	if r.Method != http.MethodPost {
		a.render(w, r, http.StatusOK, "subject", "Registerutdrag för en person / Subject access", s, subjectData{})
		return
	}
	format := r.PostForm.Get("format")
	switch format {
	case "html", "csv", "json":
	default:
		a.action(r, s, "subject", "lookup", "bad_format")
		a.render(w, r, http.StatusBadRequest, "subject", "Registerutdrag för en person / Subject access", s,
			subjectData{ProblemSV: "Okänt format.", ProblemEN: "Unknown format."})
		return
	}
	pnr, err := identity.ParsePersonalNumber(r.PostForm.Get("pnr"), a.now().In(a.loc))
	if err != nil {
		a.action(r, s, "subject", "lookup_"+format, "bad_number")
		a.render(w, r, http.StatusBadRequest, "subject", "Registerutdrag för en person / Subject access", s,
			subjectData{ProblemSV: "Det angivna är inte ett giltigt person- eller samordningsnummer.",
				ProblemEN: "What was entered is not a valid personal identity or coordination number."})
		return
	}
	res, err := a.d.SubjectAccess(r.Context(), pnr)
	if err != nil {
		// The error is the audit reader's and carries no number.
		a.log(r).Error().Err(err).Str("page", "subject").Msg("subject access failed")
		a.action(r, s, "subject", "lookup_"+format, "unavailable")
		a.render(w, r, http.StatusServiceUnavailable, "subject", "Registerutdrag för en person / Subject access", s,
			subjectData{ProblemSV: "Granskningsloggen kunde inte läsas. Försök igen senare.",
				ProblemEN: "The audit log could not be read. Try again later."})
		return
	}
	a.action(r, s, "subject", "lookup_"+format, "ok")
	switch format {
	case "csv", "json":
		a.subjectDownload(w, r, format, res)
	default:
		a.render(w, r, http.StatusOK, "subject", "Registerutdrag för en person / Subject access", s, a.summarise(res))
	}
}

// summarise groups a subject's records per vendor: attribute names with
// the dates they were released, refusals only counted.
func (a *Admin) summarise(res SubjectResult) subjectData {
	names := map[string]string{}
	for _, p := range a.d.Policies() {
		if p != nil {
			names[p.ID] = p.DisplayName
		}
	}
	d := subjectData{Searched: true, Records: len(res.Records), FilesScanned: res.FilesScanned, SkippedLines: res.SkippedLines}
	type acc struct {
		protocols map[string]bool
		dates     map[string]map[string]bool
		refusals  int
	}
	by := map[string]*acc{}
	firstOf := map[int]string{}
	for _, rec := range res.Records {
		if rec.Outcome == OutcomeReleased {
			day := rec.Time.In(a.loc).Format(time.DateOnly)
			if f, ok := firstOf[rec.Generation]; !ok || day < f {
				firstOf[rec.Generation] = day
			}
		}
		v := by[rec.Vendor]
		if v == nil {
			v = &acc{protocols: map[string]bool{}, dates: map[string]map[string]bool{}}
			by[rec.Vendor] = v
		}
		v.protocols[rec.Protocol] = true
		d.Masked = d.Masked || rec.Masked
		if rec.Outcome != OutcomeReleased {
			v.refusals++
			d.Refusals++
			continue
		}
		day := rec.Time.In(a.loc).Format(time.DateOnly)
		for _, n := range rec.Attributes {
			if v.dates[n] == nil {
				v.dates[n] = map[string]bool{}
			}
			v.dates[n][day] = true
		}
	}
	for vendor, v := range by {
		sv := subjectVendor{Vendor: vendor, DisplayName: names[vendor], Protocols: keys(v.protocols), Refusals: v.refusals}
		for n, days := range v.dates {
			sv.Attributes = append(sv.Attributes, subjectAttr{Name: n, Dates: keys(days)})
		}
		sort.Slice(sv.Attributes, func(i, j int) bool { return sv.Attributes[i].Name < sv.Attributes[j].Name })
		d.Vendors = append(d.Vendors, sv)
	}
	sort.Slice(d.Vendors, func(i, j int) bool { return d.Vendors[i].Vendor < d.Vendors[j].Vendor })
	if _, original := firstOf[0]; len(firstOf) > 1 || (len(firstOf) == 1 && !original) {
		for n, from := range firstOf {
			d.Generations = append(d.Generations, subjectGeneration{Number: n, From: from})
		}
		sort.Slice(d.Generations, func(i, j int) bool { return d.Generations[i].Number < d.Generations[j].Number })
	}
	return d
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// subjectDownload writes the records as a file. The file name carries the
// date only, never the number.
func (a *Admin) subjectDownload(w http.ResponseWriter, r *http.Request, format string, res SubjectResult) {
	var buf bytes.Buffer
	var err error
	ctype := "text/csv; charset=utf-8"
	if format == "json" {
		ctype = "application/json"
		err = writeSubjectJSON(&buf, res, a.now())
	} else {
		err = writeSubjectCSV(&buf, res.Records)
	}
	if err != nil {
		a.log(r).Error().Err(err).Str("page", "subject").Msg("subject access export failed")
		a.fail(w, r, http.StatusInternalServerError, msgInternal)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", `attachment; filename="subject-access-`+a.now().In(a.loc).Format("20060102-150405")+"."+format+`"`)
	w.Write(buf.Bytes())
}

// spreadsheetSafe stops a spreadsheet from reading a cell as a formula:
// vendor ids of refusals can come from a request.
func spreadsheetSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func writeSubjectCSV(w io.Writer, records []SubjectRecord) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"time", "vendor", "protocol", "attributes", "masked", "outcome", "reason", "generation"})
	for _, rec := range records {
		_ = cw.Write([]string{
			rec.Time.UTC().Format(time.RFC3339), spreadsheetSafe(rec.Vendor), spreadsheetSafe(rec.Protocol),
			spreadsheetSafe(strings.Join(rec.Attributes, "; ")), strconv.FormatBool(rec.Masked),
			spreadsheetSafe(rec.Outcome), spreadsheetSafe(rec.Reason), generationCell(rec),
		})
	}
	cw.Flush()
	return cw.Error()
}

// generationCell is a release's identity generation; a refusal released
// no identifier, so its cell is empty.
func generationCell(rec SubjectRecord) string {
	if rec.Outcome != OutcomeReleased {
		return ""
	}
	return strconv.Itoa(rec.Generation)
}

type subjectRecordJSON struct {
	Time       time.Time `json:"time"`
	Vendor     string    `json:"vendor"`
	Protocol   string    `json:"protocol"`
	Attributes []string  `json:"attributes"`
	Masked     bool      `json:"masked"`
	Outcome    string    `json:"outcome"`
	Reason     string    `json:"reason,omitempty"`
	Generation int       `json:"generation"`
}

func writeSubjectJSON(w io.Writer, res SubjectResult, now time.Time) error {
	out := struct {
		GeneratedAt  time.Time           `json:"generated_at"`
		Records      []subjectRecordJSON `json:"records"`
		FilesScanned int                 `json:"files_scanned"`
		SkippedLines int                 `json:"skipped_lines"`
	}{GeneratedAt: now.UTC(), Records: []subjectRecordJSON{}, FilesScanned: res.FilesScanned, SkippedLines: res.SkippedLines}
	for _, rec := range res.Records {
		attrs := rec.Attributes
		if attrs == nil {
			attrs = []string{}
		}
		out.Records = append(out.Records, subjectRecordJSON{rec.Time.UTC(), rec.Vendor, rec.Protocol, attrs, rec.Masked, rec.Outcome, rec.Reason, rec.Generation})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
