package admin

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/skolbro/skolbro/internal/identity"
)

// subjectData is the subject access page. It never holds what the admin
// typed: the form is always shown empty.
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
	// NotCovered states what the extract cannot show.
	NotCovered []bilingual
	// Generations lists the person's identity generations seen in
	// releases, with the first date of each, when there is more than the
	// original one.
	Generations []subjectGeneration
}

// bilingual is a fixed text in Swedish and English.
type bilingual struct{ SV, EN string }

// Lookup forms, as the JSON export names them.
const (
	byPersonalNumber = "personal_number"
	byStableID       = "stable_id"
)

// maxStableID bounds a typed stable id.
const maxStableID = 256

// parseStableID checks a typed stable id: one line of printable text,
// surrounding space removed, otherwise kept exactly (the bridge compares
// stable ids exactly, case included).
func parseStableID(s string) (identity.Secret, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxStableID || !utf8.ValidString(s) {
		return identity.Secret{}, false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return identity.Secret{}, false
		}
	}
	return identity.NewSecret(s), true
}

// notCovered states, in fixed texts, what an extract cannot show, given
// the lookup forms the admin used. It names no one.
func (a *Admin) notCovered(res SubjectResult, byPN, bySID bool) []bilingual {
	out := []bilingual{{
		"Bara händelser som loggats under de uppgifter som angavs kommer med: inloggningar under en annan identitet " +
			"(ett annat konto eller användarnamn, ett tidigare personnummer, en annan skolinloggning) kommer inte med.",
		"Only events logged under the identifiers given are included: logins under another identifier " +
			"(another account or user name, an earlier personal number, another school IdP's id) are not.",
	}}
	if !bySID {
		out = append(out, bilingual{
			"Inget användar-id (stabil identifierare) angavs: inloggningar där skolans inloggning inte skickade något personnummer, " +
				"eller ett som bryggan måste bortse från, hittas bara med användar-id:t.",
			"No stable id (user name) was given: logins in which the school IdP sent no personal number, " +
				"or one the bridge had to drop, are found only by the stable id.",
		})
	}
	if !byPN {
		out = append(out, bilingual{
			"Inget personnummer angavs: inloggningar via personens andra konton hittas bara med numret.",
			"No personal number was given: logins through the person's other accounts are found only by the number.",
		})
	}
	if res.SingleKeyEvents > 0 {
		until := res.SingleKeyUntil.In(a.loc).Format(time.DateOnly)
		out = append(out, bilingual{
			fmt.Sprintf("%d händelser i loggen, till och med %s, skrevs innan varje inloggning loggades under alla sina nycklar: "+
				"var och en har bara en nyckel (personnumrets om det fanns, annars användar-id:ts). Ange båda för att hitta dem.", res.SingleKeyEvents, until),
			fmt.Sprintf("%d events in the log, up to %s, were written before every login was logged under all its keys: "+
				"each carries one key only (the personal number's when there was one, else the stable id's). Give both forms to find them.", res.SingleKeyEvents, until),
		})
	}
	if res.LogStart.IsZero() {
		out = append(out, bilingual{"Loggen innehåller inga filer: ingenting täcks.", "The log holds no files: nothing is covered."})
	} else {
		start := res.LogStart.In(a.loc).Format(time.DateOnly)
		out = append(out, bilingual{
			"Loggen börjar " + start + ": äldre händelser har raderats enligt lagringstiden, eller loggades aldrig, och kommer inte med.",
			"The log begins on " + start + ": earlier events were deleted by the retention setting, or were never logged, and are not covered.",
		})
	}
	out = append(out, bilingual{
		"Nekanden innan personen loggat in (t.ex. till en tjänst vars avtal har upphört) pekar inte ut någon och kommer inte med.",
		"Refusals before the person logged in (for example to a vendor whose agreement had ended) name no one and are not included.",
	})
	if res.SkippedLines > 0 {
		out = append(out, bilingual{
			fmt.Sprintf("%d rader i loggen kunde inte läsas (t.ex. avbrutna av en krasch): en händelse kan saknas.", res.SkippedLines),
			fmt.Sprintf("%d lines of the log could not be read (for example torn by a crash): an event may be missing.", res.SkippedLines),
		})
	}
	return out
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

const subjectTitle = "Registerutdrag för en person / Subject access"

// handleSubject answers a subject access request: which vendors received
// which attribute names, on which dates. The person is given by personal
// number, stable id, or both, only in a POST body; neither is ever
// logged, echoed, or put into a URL or a redirect. Only a privacy admin
// may use it, and each lookup is recorded before it is made.
func (a *Admin) handleSubject(w http.ResponseWriter, r *http.Request, s *session) {
	if a.d.SubjectAccess == nil {
		a.fail(w, r, http.StatusNotFound, msgNotFound)
		return
	}
	if !a.requirePrivacy(w, r, s, "subject") {
		return
	}
	if r.Method != http.MethodPost {
		a.render(w, r, http.StatusOK, "subject", subjectTitle, s, subjectData{})
		return
	}
	format := r.PostForm.Get("format")
	switch format {
	case "html", "csv", "json":
	default:
		a.action(r, s, "subject", "lookup", "bad_format")
		a.render(w, r, http.StatusBadRequest, "subject", subjectTitle, s,
			subjectData{ProblemSV: "Okänt format.", ProblemEN: "Unknown format."})
		return
	}
	var pnr identity.PersonalNumber
	var sid identity.Secret
	typedPNR, typedSID := strings.TrimSpace(r.PostForm.Get("pnr")), strings.TrimSpace(r.PostForm.Get("stable_id"))
	if typedPNR == "" && typedSID == "" {
		a.action(r, s, "subject", "lookup_"+format, "nothing_given")
		a.render(w, r, http.StatusBadRequest, "subject", subjectTitle, s,
			subjectData{ProblemSV: "Ange ett personnummer, ett användar-id eller båda.",
				ProblemEN: "Enter a personal identity number, a stable id, or both."})
		return
	}
	if typedPNR != "" {
		var err error
		if pnr, err = identity.ParsePersonalNumber(typedPNR, a.now().In(a.loc)); err != nil {
			a.action(r, s, "subject", "lookup_"+format, "bad_number")
			a.render(w, r, http.StatusBadRequest, "subject", subjectTitle, s,
				subjectData{ProblemSV: "Det angivna är inte ett giltigt person- eller samordningsnummer.",
					ProblemEN: "What was entered is not a valid personal identity or coordination number."})
			return
		}
	}
	if typedSID != "" {
		var ok bool
		if sid, ok = parseStableID(typedSID); !ok {
			a.action(r, s, "subject", "lookup_"+format, "bad_stable_id")
			a.render(w, r, http.StatusBadRequest, "subject", subjectTitle, s,
				subjectData{ProblemSV: "Användar-id:t godtogs inte: en rad text, högst 256 tecken.",
					ProblemEN: "The stable id was refused: one line of text, at most 256 characters."})
			return
		}
	}
	keys := a.d.SubjectKeys(pnr, sid)
	if len(keys) == 0 || !a.recordAction(w, r, s, ActionSubjectAccess, keys) {
		a.action(r, s, "subject", "lookup_"+format, "not_recorded")
		a.render(w, r, http.StatusServiceUnavailable, "subject", subjectTitle, s,
			subjectData{ProblemSV: "Sökningen kunde inte loggas och gjordes därför inte. Försök igen senare.",
				ProblemEN: "The lookup could not be recorded, so it was not made. Try again later."})
		return
	}
	res, err := a.d.SubjectAccess(r.Context(), keys)
	if err != nil {
		// The error is the audit reader's and carries no number.
		a.log(r).Error().Err(err).Str("page", "subject").Msg("subject access failed")
		a.action(r, s, "subject", "lookup_"+format, "unavailable")
		a.render(w, r, http.StatusServiceUnavailable, "subject", subjectTitle, s,
			subjectData{ProblemSV: "Granskningsloggen kunde inte läsas. Försök igen senare.",
				ProblemEN: "The audit log could not be read. Try again later."})
		return
	}
	a.action(r, s, "subject", "lookup_"+format, "ok")
	byPN, bySID := !pnr.IsZero(), !sid.IsZero()
	switch format {
	case "csv", "json":
		a.subjectDownload(w, r, format, res, byPN, bySID)
	default:
		d := a.summarise(res)
		d.NotCovered = a.notCovered(res, byPN, bySID)
		a.render(w, r, http.StatusOK, "subject", subjectTitle, s, d)
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
func (a *Admin) subjectDownload(w http.ResponseWriter, r *http.Request, format string, res SubjectResult, byPN, bySID bool) {
	var buf bytes.Buffer
	var err error
	ctype := "text/csv; charset=utf-8"
	if format == "json" {
		ctype = "application/json"
		var by, notCovered []string
		if byPN {
			by = append(by, byPersonalNumber)
		}
		if bySID {
			by = append(by, byStableID)
		}
		for _, n := range a.notCovered(res, byPN, bySID) {
			notCovered = append(notCovered, n.EN)
		}
		err = writeSubjectJSON(&buf, res, a.now(), by, notCovered)
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

// writeSubjectJSON writes the extract with the lookup forms used and the
// statement of what it cannot cover.
func writeSubjectJSON(w io.Writer, res SubjectResult, now time.Time, searchedBy, notCovered []string) error {
	out := struct {
		GeneratedAt  time.Time           `json:"generated_at"`
		Records      []subjectRecordJSON `json:"records"`
		FilesScanned int                 `json:"files_scanned"`
		SkippedLines int                 `json:"skipped_lines"`
		SearchedBy   []string            `json:"searched_by"`
		NotCovered   []string            `json:"not_covered"`
	}{GeneratedAt: now.UTC(), Records: []subjectRecordJSON{}, FilesScanned: res.FilesScanned, SkippedLines: res.SkippedLines,
		SearchedBy: searchedBy, NotCovered: notCovered}
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
