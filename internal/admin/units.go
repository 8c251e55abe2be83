package admin

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/units"
)

// unitsView is a vendor's school units as the vendors page shows them:
// what holds now, where it comes from, and the recent changes.
type unitsView struct {
	// All is true when the vendor is enabled for every school unit;
	// otherwise Enabled lists the units.
	All     bool
	Enabled []string
	// Override is true when the admin's choice replaces the file's list.
	Override bool
	// FileAll and FileUnits are the policy file's list.
	FileAll   bool
	FileUnits []string
	// Affiliations are the file's affiliations (nil: every one).
	Affiliations []string
	// Options are the checkboxes: every unit the file, the current choice
	// or an earlier change named.
	Options []unitOption
	Changes []changeView
	// CanChange is true when changes can be made and recorded; Error
	// when the store could not be read (what is shown is then the file's).
	CanChange bool
	Error     bool
	// Saved marks the vendor whose change was just saved.
	Saved bool
}

type unitOption struct {
	Code    string
	Checked bool
}

type changeView struct {
	At, By, Action string
	Units          []string
}

// unitsView reads the vendor's state. Codes are public organisational
// codes, not personal data; nothing here is logged.
func (a *Admin) unitsView(r *http.Request, p *policy.Policy, saved bool) unitsView {
	v := unitsView{
		FileAll: p.EnabledFor.SchoolUnits == nil, FileUnits: p.EnabledFor.SchoolUnits,
		Affiliations: p.EnabledFor.Affiliations,
		CanChange:    a.d.Units != nil && a.d.AdminSubject != nil,
		Saved:        saved,
	}
	eff := p
	known := append([]string{}, p.EnabledFor.SchoolUnits...)
	if a.d.Units != nil {
		st, err := a.d.Units.Get(r.Context(), p.ID)
		if err != nil {
			a.log(r).Error().Err(err).Str("page", "vendors").Str("vendor", p.ID).Msg("school unit choices unavailable")
			v.Error, v.CanChange = true, false
		} else {
			eff = st.Apply(p)
			v.Override = st.Override
			known = append(known, st.Units...)
			for i := len(st.Changes) - 1; i >= 0; i-- {
				c := st.Changes[i]
				known = append(known, c.Units...)
				v.Changes = append(v.Changes, changeView{
					At: c.At.In(a.loc).Format("2006-01-02 15:04:05 MST"), By: c.By, Action: c.Action, Units: c.Units,
				})
			}
		}
	}
	v.All = eff.EnabledFor.SchoolUnits == nil
	v.Enabled = eff.EnabledFor.SchoolUnits
	for _, code := range slices.Compact(slices.Sorted(slices.Values(known))) {
		v.Options = append(v.Options, unitOption{Code: code, Checked: !v.All && slices.Contains(v.Enabled, code)})
	}
	return v
}

// fillUnits adds each vendor's school units to views.
func (a *Admin) fillUnits(r *http.Request, views []vendorView) {
	byID := map[string]*policy.Policy{}
	for _, p := range a.d.Policies() {
		if p != nil {
			byID[p.ID] = p
		}
	}
	saved := r.URL.Query().Get("saved")
	for i := range views {
		if p := byID[views[i].ID]; p != nil {
			views[i].Units = a.unitsView(r, p, saved == p.ID)
		}
	}
}

// handleUnits changes the school units a vendor is enabled for (POST,
// CSRF-checked before this runs): set the checked and added units, enable
// every unit, or reset to the policy file. The change and who made it go
// into the store in one write; the action log names the vendor, the
// action and the admin's subject key.
func (a *Admin) handleUnits(w http.ResponseWriter, r *http.Request, s *session) {
	if a.d.Units == nil {
		a.fail(w, r, http.StatusNotFound, msgNotFound)
		return
	}
	vendor := r.PostForm.Get("vendor")
	var pol *policy.Policy
	for _, p := range a.d.Policies() {
		if p != nil && p.ID == vendor {
			pol = p
		}
	}
	action := r.PostForm.Get("action")
	if pol == nil {
		a.unitsAction(r, s, "", action, "unknown_vendor")
		a.fail(w, r, http.StatusNotFound, unitsMessage("Tjänsten finns inte. Ingenting har ändrats.", "There is no such vendor. Nothing was changed."))
		return
	}
	if s.Subject == "" || a.d.AdminSubject == nil {
		// A change nobody can be named for is not made.
		a.unitsAction(r, s, vendor, action, "no_subject")
		a.fail(w, r, http.StatusForbidden, unitsMessage(
			"Ändringar kräver att release-loggen (audit) är konfigurerad, så att det går att spara vem som gjorde dem. Ingenting har ändrats.",
			"Changes need the release log (audit) to be configured, so that who made them can be recorded. Nothing was changed."))
		return
	}
	c := units.Change{At: a.now(), By: s.Subject, Action: action}
	switch action {
	case units.ActionSet:
		codes := append([]string{}, r.PostForm["unit"]...)
		codes = append(codes, strings.FieldsFunc(r.PostForm.Get("add"), func(r rune) bool {
			return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
		})...)
		for i, code := range codes {
			codes[i] = strings.TrimSpace(code)
			if !policy.ValidSchoolUnitCode(codes[i]) {
				a.unitsAction(r, s, vendor, action, "bad_code")
				a.fail(w, r, http.StatusBadRequest, unitsMessage(
					"En skolenhetskod har 8 siffror. Ingenting har ändrats.",
					"A school unit code has 8 digits. Nothing was changed."))
				return
			}
		}
		if len(codes) == 0 {
			a.unitsAction(r, s, vendor, action, "empty")
			a.fail(w, r, http.StatusBadRequest, unitsMessage(
				"Välj minst en skolenhet. För att stänga av tjänsten helt, ta bort dess policy. Ingenting har ändrats.",
				"Choose at least one school unit. To switch the vendor off entirely, remove its policy. Nothing was changed."))
			return
		}
		c.Units = codes
	case units.ActionAll, units.ActionReset:
	default:
		a.unitsAction(r, s, vendor, action, "bad_action")
		a.fail(w, r, http.StatusBadRequest, unitsMessage("Okänd åtgärd. Ingenting har ändrats.", "Unknown action. Nothing was changed."))
		return
	}
	_, err := a.d.Units.Change(r.Context(), vendor, c)
	switch {
	case err == nil:
	case errors.Is(err, units.ErrBusy):
		a.unitsAction(r, s, vendor, action, "busy")
		a.fail(w, r, http.StatusConflict, unitsMessage(
			"Någon annan ändrar samma tjänst just nu. Ladda om sidan och försök igen.",
			"Someone else is changing the same vendor right now. Reload the page and try again."))
		return
	case errors.Is(err, units.ErrInvalid):
		a.unitsAction(r, s, vendor, action, "invalid")
		a.fail(w, r, http.StatusBadRequest, unitsMessage("Ändringen kunde inte godkännas. Ingenting har ändrats.", "The change could not be accepted. Nothing was changed."))
		return
	default:
		a.log(r).Error().Err(err).Str("page", "units").Str("vendor", vendor).Msg("school unit choices unavailable")
		a.unitsAction(r, s, vendor, action, "unavailable")
		a.fail(w, r, http.StatusServiceUnavailable, unitsMessage(
			"Lagret kunde inte nås. Kontrollera tjänstens skolenheter innan du försöker igen.",
			"The store could not be reached. Check the vendor's school units before you try again."))
		return
	}
	a.unitsAction(r, s, vendor, action, "ok")
	http.Redirect(w, r, a.path("/admin/vendors")+"?saved="+vendor+"#v-"+vendor, http.StatusSeeOther)
}

// unitsAction logs a change of school units: vendor, action and outcome,
// with the admin's subject key; never a name.
func (a *Admin) unitsAction(r *http.Request, s *session, vendor, action, outcome string) {
	switch action {
	case units.ActionSet, units.ActionAll, units.ActionReset:
	default:
		action = "unknown"
	}
	ev := a.log(r).Info()
	if outcome != "ok" {
		ev = a.log(r).Warn()
	}
	if s != nil && s.Subject != "" {
		ev = ev.Str("admin_subject", s.Subject)
	}
	if vendor != "" {
		ev = ev.Str("vendor", vendor)
	}
	ev.Str("page", "units").Str("action", action).Str("outcome", outcome).Msg("admin action")
}

func unitsMessage(sv, en string) message {
	return message{"Skolenheter", "School units", sv, en, "/admin/vendors", "Tillbaka till tjänsterna / Back to the vendors", false}
}
