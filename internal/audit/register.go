package audit

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/policy"
)

// RegisterRow is one vendor in the release register (the record of
// processing an organiser keeps under GDPR art. 30): who receives what,
// why, under which agreement, and how protected persons are handled.
type RegisterRow struct {
	VendorID    string `json:"vendor_id"`
	DisplayName string `json:"display_name"`
	// Protocol is "saml", "oidc" or "saml, oidc".
	Protocol string `json:"protocol"`
	// EntityIDOrClientID is the SAML entityID and/or the OIDC client id.
	EntityIDOrClientID string    `json:"entity_id_or_client_id"`
	Purpose            string    `json:"purpose"`
	LegalBasis         string    `json:"legal_basis"`
	AgreementReference string    `json:"agreement_reference"`
	AgreementEnds      time.Time `json:"agreement_ends"`
	// Released are the released attributes' friendly names, in policy
	// order, the personal number excluded.
	Released []string `json:"released"`
	// PersonalNumber is the opted-in personal number attribute, or "".
	PersonalNumber string `json:"personal_number"`
	// ProtectedHandling summarises the masking of protected persons:
	// "default" (identifying attributes withheld; pseudonyms,
	// affiliation and assurance kept; never a personal number), or each
	// of the policy's rules, e.g. "givenName: keep (reason)".
	ProtectedHandling string `json:"protected_handling"`
	// RequestedNotReleased are attributes the vendor's SAML metadata
	// requests that the policy does not release (friendly names; unknown
	// SAML names as they are). Sorted.
	RequestedNotReleased []string `json:"requested_not_released"`
	// ReleasedNotRequested are released attributes the metadata does not
	// request: each one needs the vendor's justification.
	ReleasedNotRequested []string `json:"released_not_requested"`
	// EnabledSchoolUnits are the school units the vendor is enabled for
	// (SECURITY.md case 47), joined with "; ", or "all" when it is not
	// restricted. Callers that keep the admin's choices apply them to the
	// policies before BuildRegister, so that the register shows what holds.
	EnabledSchoolUnits string `json:"enabled_school_units"`
	// EnabledAffiliations are the affiliations the vendor is enabled for,
	// joined with "; ", or "all".
	EnabledAffiliations string `json:"enabled_affiliations"`
}

// MarshalJSON writes AgreementEnds as a date, as in the policy file.
func (r RegisterRow) MarshalJSON() ([]byte, error) {
	type plain RegisterRow
	return json.Marshal(struct {
		plain
		AgreementEnds string `json:"agreement_ends"`
	}{plain(r), dateOnly(r.AgreementEnds)})
}

func dateOnly(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateOnly)
}

// BuildRegister makes one row per policy, sorted by vendor id. requested
// maps a SAML vendor's entityID to the SAML names of the attributes its
// metadata requests (samlidp.Vendor.RequestedAttributes). With a nil map
// the two comparison columns are left empty; with a map that lacks a SAML
// vendor, the vendor requests nothing and every released attribute is
// listed as not requested. OIDC-only vendors have no metadata to compare.
func BuildRegister(policies []*policy.Policy, requested map[string][]string) []RegisterRow {
	rows := make([]RegisterRow, 0, len(policies))
	for _, p := range policies {
		if p == nil {
			continue
		}
		row := RegisterRow{
			VendorID:           p.ID,
			DisplayName:        p.DisplayName,
			Purpose:            p.Purpose,
			LegalBasis:         p.LegalBasis,
			AgreementReference: p.Agreement.Reference,
			AgreementEnds:      p.Agreement.Ends,
			Released:           []string{},
			ProtectedHandling:  protectedHandling(p),
		}
		row.EnabledSchoolUnits = enabledList(p.EnabledFor.SchoolUnits)
		row.EnabledAffiliations = enabledList(p.EnabledFor.Affiliations)
		var protocols, ids []string
		if p.SAML != nil {
			protocols = append(protocols, ProtocolSAML)
			ids = append(ids, p.SAML.EntityID)
		}
		if p.OIDC != nil {
			protocols = append(protocols, ProtocolOIDC)
			ids = append(ids, p.OIDC.ClientID)
		}
		row.Protocol = strings.Join(protocols, ", ")
		row.EntityIDOrClientID = strings.Join(ids, ", ")
		for _, r := range p.Attributes {
			row.Released = append(row.Released, r.Def.Name)
		}
		if p.PersonalNumber != nil {
			row.PersonalNumber = p.PersonalNumber.Def.Name
		}
		if requested != nil && p.SAML != nil {
			row.RequestedNotReleased, row.ReleasedNotRequested = compare(row, requested[p.SAML.EntityID])
		}
		rows = append(rows, row)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].VendorID < rows[j].VendorID })
	return rows
}

// compare lists requested-but-not-released and released-but-not-requested
// attributes. The opted-in personal number counts as released.
func compare(row RegisterRow, samlNames []string) (reqNotRel, relNotReq []string) {
	released := map[string]bool{}
	all := append([]string{}, row.Released...)
	if row.PersonalNumber != "" {
		all = append(all, row.PersonalNumber)
	}
	for _, n := range all {
		released[n] = true
	}
	req := map[string]bool{}
	for _, s := range samlNames {
		name := s
		if d, ok := attr.Lookup(s); ok {
			name = d.Name
		}
		req[name] = true
	}
	reqNotRel, relNotReq = []string{}, []string{}
	for n := range req {
		if !released[n] {
			reqNotRel = append(reqNotRel, n)
		}
	}
	sort.Strings(reqNotRel)
	for _, n := range all {
		if !req[n] {
			relNotReq = append(relNotReq, n)
		}
	}
	return reqNotRel, relNotReq
}

// enabledList renders an EnabledFor list: "all" for no restriction,
// "none" for an empty one.
func enabledList(l []string) string {
	switch {
	case l == nil:
		return "all"
	case len(l) == 0:
		return "none"
	}
	return strings.Join(l, "; ")
}

// protectedHandling summarises the policy's masking rules for people.
func protectedHandling(p *policy.Policy) string {
	if len(p.Protected) == 0 {
		return "default"
	}
	ruled := map[string]bool{}
	var parts []string
	for _, m := range p.Protected {
		ruled[m.Def.Name] = true
		s := m.Def.Name
		if len(m.Levels) > 0 {
			levels := make([]string, len(m.Levels))
			for i, l := range m.Levels {
				levels[i] = l.String() // the policy file's level names
			}
			s += " [" + strings.Join(levels, ", ") + "]"
		}
		s += ": " + string(m.Action)
		if m.Action == policy.Keep && m.Reason != "" {
			s += " (" + m.Reason + ")"
		}
		parts = append(parts, s)
	}
	for _, r := range p.Attributes {
		if !ruled[r.Def.Name] {
			parts = append(parts, "other attributes: default")
			break
		}
	}
	return strings.Join(parts, "; ")
}

// registerHeader names the CSV columns.
var registerHeader = []string{
	"vendor_id", "display_name", "protocol", "entity_id_or_client_id", "purpose", "legal_basis",
	"agreement_reference", "agreement_ends", "released", "personal_number", "protected_handling",
	"requested_not_released", "released_not_requested",
	"enabled_school_units", "enabled_affiliations",
}

// WriteRegisterCSV writes rows with a header; lists are joined with "; ".
func WriteRegisterCSV(w io.Writer, rows []RegisterRow) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(registerHeader); err != nil {
		return err
	}
	for _, r := range rows {
		rec := []string{
			r.VendorID, r.DisplayName, r.Protocol, r.EntityIDOrClientID, r.Purpose, r.LegalBasis,
			r.AgreementReference, dateOnly(r.AgreementEnds), strings.Join(r.Released, "; "),
			r.PersonalNumber, r.ProtectedHandling,
			strings.Join(r.RequestedNotReleased, "; "), strings.Join(r.ReleasedNotRequested, "; "),
			r.EnabledSchoolUnits, r.EnabledAffiliations,
		}
		for i := range rec {
			rec[i] = csvSafe(rec[i])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteRegisterJSON writes rows as an indented JSON array.
func WriteRegisterJSON(w io.Writer, rows []RegisterRow) error {
	if rows == nil {
		rows = []RegisterRow{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

// Expiring is a vendor whose data processing agreement ends soon or has
// ended.
type Expiring struct {
	VendorID string
	// Ends is the agreement's last day (00:00 UTC).
	Ends time.Time
	// DaysLeft counts whole days from today (UTC) to the last day: 0 on
	// the last day, negative once the agreement has ended.
	DaysLeft int
}

// DaysLeft returns the days from now's UTC date to the agreement's last
// day: 0 on the last day, negative after it.
func DaysLeft(p *policy.Policy, now time.Time) int {
	n := now.UTC()
	today := time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, time.UTC)
	return int(math.Round(p.Agreement.Ends.Sub(today).Hours() / 24))
}

// ExpiringAgreements returns the vendors whose agreement stops covering
// releases within the given duration of now, ended ones included, soonest
// first. The end date is inclusive, as in policy.AgreementActive.
func ExpiringAgreements(policies []*policy.Policy, now time.Time, within time.Duration) []Expiring {
	var out []Expiring
	for _, p := range policies {
		if p == nil || p.Agreement.Ends.IsZero() {
			continue
		}
		if p.Agreement.Ends.AddDate(0, 0, 1).Sub(now) > within {
			continue
		}
		out = append(out, Expiring{VendorID: p.ID, Ends: p.Agreement.Ends, DaysLeft: DaysLeft(p, now)})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Ends.Equal(out[j].Ends) {
			return out[i].Ends.Before(out[j].Ends)
		}
		return out[i].VendorID < out[j].VendorID
	})
	return out
}

// String formats e for the check command.
func (e Expiring) String() string {
	if e.DaysLeft < 0 {
		return fmt.Sprintf("%s: agreement ended on %s", e.VendorID, dateOnly(e.Ends))
	}
	return fmt.Sprintf("%s: agreement ends on %s (%d days left)", e.VendorID, dateOnly(e.Ends), e.DaysLeft)
}

// UpdateAgreementGauge calls set with every vendor's days left, for the
// gauge skolbro_agreement_days_left{vendor}. With Prometheus:
//
//	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: audit.MetricAgreementDaysLeft}, []string{"vendor"})
//	audit.UpdateAgreementGauge(func(v string, d float64) { g.WithLabelValues(v).Set(d) }, policies, time.Now())
//
// called at start-up and then daily, or from a collector.
func UpdateAgreementGauge(set func(vendor string, daysLeft float64), policies []*policy.Policy, now time.Time) {
	for _, p := range policies {
		if p == nil || p.Agreement.Ends.IsZero() {
			continue
		}
		set(p.ID, float64(DaysLeft(p, now)))
	}
}
