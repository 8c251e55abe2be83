package admin

import (
	"net/http"

	"github.com/skolbro/skolbro/internal/identity"
)

// identityData is the new identity page. Like every page it never holds
// the number the admin typed: the form is always shown empty.
type identityData struct {
	// Shown is set after a lookup or a request: what is known, in dates.
	Shown  bool
	Status IdentityStatus
	// Done says a request was just made.
	Done                 bool
	ProblemSV, ProblemEN string
}

const identityTitle = "Ny identitet / New identity"

// handleIdentity issues a new identity on request (POST action=request)
// or shows when one was issued (POST action=status). The new identity
// is issued at the person's next login that carries the personal number:
// the bridge keeps no link from a number to a stable id, by design.
func (a *Admin) handleIdentity(w http.ResponseWriter, r *http.Request, s *session) {
	if a.d.NewIdentity == nil {
		a.fail(w, r, http.StatusNotFound, msgNotFound)
		return
	}
	// Whether a person was given a new identity says they are, or were,
	// protected: only a privacy admin may ask, and each lookup is recorded.
	if !a.requirePrivacy(w, r, s, "identity") {
		return
	}
	if r.Method != http.MethodPost {
		a.render(w, r, http.StatusOK, "identity", identityTitle, s, identityData{})
		return
	}
	action := r.PostForm.Get("action")
	if action != "request" && action != "status" {
		a.action(r, s, "identity", "unknown", "bad_action")
		a.render(w, r, http.StatusBadRequest, "identity", identityTitle, s,
			identityData{ProblemSV: "Okänd åtgärd.", ProblemEN: "Unknown action."})
		return
	}
	pnr, err := identity.ParsePersonalNumber(r.PostForm.Get("pnr"), a.now().In(a.loc))
	if err != nil {
		a.action(r, s, "identity", action, "bad_number")
		a.render(w, r, http.StatusBadRequest, "identity", identityTitle, s, identityData{
			ProblemSV: "Det angivna är inte ett giltigt person- eller samordningsnummer. Ingenting har ändrats.",
			ProblemEN: "What was entered is not a valid personal identity or coordination number. Nothing was changed."})
		return
	}
	if a.d.SubjectKeys != nil && a.d.RecordAction != nil &&
		!a.recordAction(w, r, s, "new_identity_"+action, a.d.SubjectKeys(pnr, identity.Secret{})) {
		a.fail(w, r, http.StatusServiceUnavailable, msgInternal)
		return
	}
	var st IdentityStatus
	if action == "request" {
		st, err = a.d.NewIdentity.Request(r.Context(), pnr)
	} else {
		st, err = a.d.NewIdentity.Status(r.Context(), pnr)
	}
	if err != nil {
		// The error is the store's and carries no number.
		a.log(r).Error().Err(err).Str("page", "identity").Str("action", action).Msg("identity records unavailable")
		a.action(r, s, "identity", action, "unavailable")
		a.render(w, r, http.StatusServiceUnavailable, "identity", identityTitle, s, identityData{
			ProblemSV: "Uppgifterna kunde inte nås. Kontrollera med Visa innan du försöker igen.",
			ProblemEN: "The records could not be reached. Check with Show before you try again."})
		return
	}
	a.action(r, s, "identity", action, "ok")
	a.render(w, r, http.StatusOK, "identity", identityTitle, s, identityData{Shown: true, Status: st, Done: action == "request"})
}
