package admin

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/policy"
)

// warnWithin is how early the overview warns about an ending agreement.
const warnWithin = 30 * 24 * time.Hour

// vendorView is one policy as the vendors page shows it.
type vendorView struct {
	ID, DisplayName       string
	Purpose, LegalBasis   string
	Preset                string
	SAMLEntityID          string
	OIDCClientID          string
	AgreementRef          string
	AgreementEnds         time.Time
	Active, EndingSoon    bool
	Attributes            []ruleView
	MaskRules             []maskView
	PersonalNumber        *policy.PersonalNumberOptIn
	PersonalNumberAttr    string
	DefaultMaskedWithheld []string
	DefaultMaskedKept     []string
	// Units are filled in on the vendors page only (a store read each).
	Units unitsView
}

type ruleView struct {
	Name, SAMLName string
	Values         []string
	Kind           string
	Identifying    bool
}

type maskView struct {
	Attribute string
	Levels    string
	Action    string
	Value     string
	Reason    string
}

func kindLabel(d attr.Def) string {
	switch d.Kind {
	case attr.Derived:
		return "pseudonym"
	case attr.Scoped:
		return "scoped"
	case attr.PersonalNumber:
		return "personal number"
	}
	return ""
}

func (a *Admin) vendorViews() []vendorView {
	now := a.now()
	var out []vendorView
	for _, p := range a.d.Policies() {
		if p == nil {
			continue
		}
		v := vendorView{
			ID: p.ID, DisplayName: p.DisplayName, Purpose: p.Purpose, LegalBasis: p.LegalBasis,
			Preset: p.Preset, AgreementRef: p.Agreement.Reference, AgreementEnds: p.Agreement.Ends,
			Active: p.AgreementActive(now), PersonalNumber: p.PersonalNumber,
		}
		v.EndingSoon = v.Active && !p.AgreementActive(now.Add(warnWithin))
		if p.SAML != nil {
			v.SAMLEntityID = p.SAML.EntityID
		}
		if p.OIDC != nil {
			v.OIDCClientID = p.OIDC.ClientID
		}
		if p.PersonalNumber != nil {
			v.PersonalNumberAttr = p.PersonalNumber.Def.Name
		}
		for _, r := range p.Attributes {
			v.Attributes = append(v.Attributes, ruleView{Name: r.Def.Name, SAMLName: r.Def.SAMLName,
				Values: r.Values, Kind: kindLabel(r.Def), Identifying: r.Def.Identifying})
			// The release step's default for a protected person, spelled
			// out for this policy's attributes; MaskRules override it.
			if keptByDefault(r.Def) {
				v.DefaultMaskedKept = append(v.DefaultMaskedKept, r.Def.Name)
			} else {
				v.DefaultMaskedWithheld = append(v.DefaultMaskedWithheld, r.Def.Name)
			}
		}
		for _, m := range p.Protected {
			mv := maskView{Attribute: m.Def.Name, Action: string(m.Action), Value: m.Value, Reason: m.Reason, Levels: "all protected levels"}
			if len(m.Levels) > 0 {
				names := make([]string, len(m.Levels))
				for i, l := range m.Levels {
					names[i] = l.String()
				}
				mv.Levels = strings.Join(names, ", ")
			}
			v.MaskRules = append(v.MaskRules, mv)
		}
		out = append(out, v)
	}
	return out
}

// keptByDefault mirrors the release step's default for protected persons
// (pseudonyms, affiliation and assurance are kept, everything else
// withheld) for display only; the preview runs the release step itself.
func keptByDefault(d attr.Def) bool {
	if d.Identifying || d.Kind == attr.PersonalNumber {
		return false
	}
	if d.Kind == attr.Derived {
		return true
	}
	return d.Name == attr.ScopedAffiliation || d.Name == attr.Affiliation || d.Name == attr.Assurance
}

type overviewData struct {
	Vendors           int
	Active            int
	Ended             []vendorView
	EndingSoon        []vendorView
	PersonalNumber    []vendorView
	Identities        int
	ProtectionEntries int
	ProtectionError   bool
}

func (a *Admin) handleOverview(w http.ResponseWriter, r *http.Request, s *session) {
	if r.URL.Path != a.path("/admin/") {
		a.fail(w, r, http.StatusNotFound, msgNotFound)
		return
	}
	d := overviewData{Identities: len(a.d.Identities)}
	for _, v := range a.vendorViews() {
		d.Vendors++
		switch {
		case !v.Active:
			d.Ended = append(d.Ended, v)
		case v.EndingSoon:
			d.EndingSoon = append(d.EndingSoon, v)
		}
		if v.Active {
			d.Active++
		}
		if v.PersonalNumber != nil {
			d.PersonalNumber = append(d.PersonalNumber, v)
		}
	}
	if a.d.Protection != nil && a.privacyAdmin(s) {
		entries, err := a.d.Protection.List(r.Context())
		if err != nil {
			a.log(r).Warn().Err(err).Str("page", "overview").Msg("protection register unavailable")
			d.ProtectionError = true
		}
		d.ProtectionEntries = len(entries)
	}
	a.render(w, r, http.StatusOK, "overview", "Översikt / Overview", s, d)
}

func (a *Admin) handleVendors(w http.ResponseWriter, r *http.Request, s *session) {
	views := a.vendorViews()
	a.fillUnits(r, views)
	a.render(w, r, http.StatusOK, "vendors", "Tjänster / Vendors", s, views)
}

// previewData is the release preview of one vendor.
type previewData struct {
	Vendors  []vendorView
	Vendor   *vendorView
	Unknown  bool
	Previews []previewView
	// Dropped are the upstream attributes whose values held a personal
	// number in recent logins; DroppedError says the record was not read.
	Dropped      []droppedView
	DroppedError bool
	// Upstreams are the attribute names the school IdPs sent in recent
	// logins; UpstreamsError says the record was not read.
	Upstreams      []UpstreamNames
	UpstreamsError bool
}

type droppedView struct {
	Attribute, Name string
	Count           int64
	LastSeen        time.Time
}

type previewView struct {
	Login, Label string
	Protection   string
	Protected    bool
	Masked       bool
	NameID, Sub  string
	Attributes   []releasedView
	// NotReleased are the policy's attributes this person does not get
	// (masked, or no value upstream).
	NotReleased []string
}

type releasedView struct {
	Name, SAMLName string
	Values         []string
	PersonalNumber bool
	Replaced       bool
}

func (a *Admin) handlePreview(w http.ResponseWriter, r *http.Request, s *session) {
	views := a.vendorViews()
	d := previewData{Vendors: views}
	id := r.URL.Query().Get("vendor")
	var pol *policy.Policy
	if id != "" {
		for _, p := range a.d.Policies() {
			if p != nil && p.ID == id {
				pol = p
				break
			}
		}
		for i := range views {
			if views[i].ID == id {
				d.Vendor = &views[i]
			}
		}
		d.Unknown = pol == nil || d.Vendor == nil
	}
	status := http.StatusOK
	if d.Unknown {
		status = http.StatusNotFound
	}
	d.Dropped, d.DroppedError = a.droppedValues(r)
	if a.d.UpstreamNames != nil {
		var err error
		if d.Upstreams, err = a.d.UpstreamNames(r.Context()); err != nil {
			a.log(r).Warn().Err(err).Str("page", "preview").Msg("record of upstream attribute names unavailable")
			d.UpstreamsError = true
		}
	}
	if pol != nil && d.Vendor != nil {
		for _, pi := range a.d.Identities {
			if pi.Identity == nil {
				continue
			}
			d.Previews = append(d.Previews, a.preview(pol, pi))
		}
	}
	a.render(w, r, status, "preview", "Förhandsvisning / Release preview", s, d)
}

// preview runs the real release step on a test identity. The values are
// shown to the admin and never logged.
func (a *Admin) preview(p *policy.Policy, pi PreviewIdentity) previewView {
	id := pi.Identity
	rel := a.d.Release(p, id)
	v := previewView{
		Login: pi.Login, Label: pi.Label,
		Protection: id.Protection.String(), Protected: id.Protection.Protected(),
	}
	released := map[string]bool{}
	if rel != nil {
		v.Masked, v.NameID, v.Sub = rel.Masked, rel.NameID, rel.Sub
		for _, ra := range rel.Attributes {
			released[ra.Def.Name] = true
			v.Attributes = append(v.Attributes, releasedView{
				Name: ra.Def.Name, SAMLName: ra.Def.SAMLName, Values: slices.Clone(ra.Values),
				PersonalNumber: ra.Def.Kind == attr.PersonalNumber,
				Replaced:       rel.Masked && replaced(p, ra.Def.Name, id.Protection, ra.Values),
			})
		}
	}
	for _, r := range p.Attributes {
		if !released[r.Def.Name] {
			v.NotReleased = append(v.NotReleased, r.Def.Name)
		}
	}
	return v
}

// replaced reports whether values are the policy's fixed replacement for
// name at level, so that the admin sees it is not the person's own value.
func replaced(p *policy.Policy, name string, level identity.Protection, values []string) bool {
	for _, m := range p.Protected {
		if m.Def.Name == name && m.Action == policy.Replace && m.Applies(level) &&
			len(values) == 1 && values[0] == m.Value {
			return true
		}
	}
	return false
}

type registerData struct {
	Rows []RegisterRow
}

func (a *Admin) handleRegister(w http.ResponseWriter, r *http.Request, s *session) {
	a.render(w, r, http.StatusOK, "register", "Registerutdrag / Release register", s, registerData{Rows: a.d.RegisterRows()})
}

// handleRegisterExport writes the register as a download. It is buffered
// so that a failure becomes an error page, not a truncated file.
func (a *Admin) handleRegisterExport(format string) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		write, ctype := a.d.RegisterCSV, "text/csv; charset=utf-8"
		if format == "json" {
			write, ctype = a.d.RegisterJSON, "application/json"
		}
		var buf bytes.Buffer
		if err := write(&buf); err != nil {
			a.log(r).Error().Err(err).Str("page", "register").Msg("register export failed")
			a.fail(w, r, http.StatusInternalServerError, msgInternal)
			return
		}
		a.action(r, s, "register", "export_"+format, "ok")
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("Content-Disposition", `attachment; filename="release-register-`+a.now().In(a.loc).Format("20060102")+"."+format+`"`)
		w.Write(buf.Bytes())
	}
}

// droppedValues reads which upstream attributes had values dropped in
// recent logins for holding a personal number, with the bridge's name for
// each when it knows the attribute.
func (a *Admin) droppedValues(r *http.Request) ([]droppedView, bool) {
	if a.d.PersonalNumbersInValues == nil {
		return nil, false
	}
	entries, err := a.d.PersonalNumbersInValues(r.Context())
	if err != nil {
		a.log(r).Warn().Err(err).Str("page", "preview").Msg("record of attributes dropped for a personal number unavailable")
		return nil, true
	}
	var out []droppedView
	for _, e := range entries {
		v := droppedView{Attribute: e.Attribute, Count: e.Count, LastSeen: e.LastSeen}
		if def, ok := attr.Lookup(e.Attribute); ok {
			v.Name = def.Name
		} else if def, ok := attr.LookupClaim(e.Attribute); ok {
			v.Name = def.Name
		}
		out = append(out, v)
	}
	return out, false
}
