package admin

import (
	"errors"
	"net/http"

	"github.com/skolbro/skolbro/internal/identity"
)

// protectionData is the manual protection register page. Entries show a
// shortened key, the date and the note: never a number.
type protectionData struct {
	Entries   []ProtectionEntry
	ListError bool
	// Done and Key report the last action (fixed texts and the entry's
	// shortened key), Problem a refusal.
	DoneSV, DoneEN       string
	Key                  string
	ProblemSV, ProblemEN string
}

const protectionTitle = "Skyddade personuppgifter / Protected identities"

// handleProtection lists the manual markings (GET) and adds or removes one
// by personal number (POST, CSRF-checked before this runs). Only a privacy
// admin may use it: whether a change succeeds tells whether the person is
// protected. Each list, addition and removal is recorded in the admin
// action log before it is made.
func (a *Admin) handleProtection(w http.ResponseWriter, r *http.Request, s *session) {
	if a.d.Protection == nil {
		a.fail(w, r, http.StatusNotFound, msgNotFound)
		return
	}
	if !a.requirePrivacy(w, r, s, "protection") {
		return
	}
	var d protectionData
	status := http.StatusOK
	if r.Method == http.MethodPost {
		status = a.protectionAction(w, r, s, &d)
	} else if !a.recordAction(w, r, s, ActionProtectionList, nil) {
		a.action(r, s, "protection", "list", "not_recorded")
		d.ListError = true
		a.render(w, r, http.StatusServiceUnavailable, "protection", protectionTitle, s, d)
		return
	}
	entries, err := a.d.Protection.List(r.Context())
	if err != nil {
		a.log(r).Error().Err(err).Str("page", "protection").Msg("protection register unavailable")
		d.ListError = true
		if status == http.StatusOK {
			status = http.StatusServiceUnavailable
		}
	}
	d.Entries = entries
	a.render(w, r, status, "protection", protectionTitle, s, d)
}

func (a *Admin) protectionAction(w http.ResponseWriter, r *http.Request, s *session, d *protectionData) int {
	action := r.PostForm.Get("action")
	if action != "add" && action != "remove" {
		a.action(r, s, "protection", "unknown", "bad_action")
		d.ProblemSV, d.ProblemEN = "Okänd åtgärd.", "Unknown action."
		return http.StatusBadRequest
	}
	pnr, err := identity.ParsePersonalNumber(r.PostForm.Get("pnr"), a.now().In(a.loc))
	if err != nil {
		a.action(r, s, "protection", action, "bad_number")
		d.ProblemSV = "Det angivna är inte ett giltigt person- eller samordningsnummer. Ingenting har ändrats."
		d.ProblemEN = "What was entered is not a valid personal identity or coordination number. Nothing was changed."
		return http.StatusBadRequest
	}
	logged := ActionProtectionAdd
	if action == "remove" {
		logged = ActionProtectionRemove
	}
	if keys := a.d.SubjectKeys(pnr, identity.Secret{}); len(keys) == 0 || !a.recordAction(w, r, s, logged, keys) {
		a.action(r, s, "protection", action, "not_recorded")
		d.ProblemSV = "Åtgärden kunde inte loggas och gjordes därför inte. Ingenting har ändrats."
		d.ProblemEN = "The action could not be recorded, so it was not made. Nothing was changed."
		return http.StatusServiceUnavailable
	}
	var key string
	if action == "add" {
		key, err = a.d.Protection.Add(r.Context(), pnr, r.PostForm.Get("note"))
	} else {
		key, err = a.d.Protection.Remove(r.Context(), pnr)
	}
	switch {
	case err == nil:
		a.action(r, s, "protection", action, "ok")
		d.Key = key
		if action == "add" {
			d.DoneSV, d.DoneEN = "Markeringen har lagts till.", "The marking was added."
		} else {
			d.DoneSV, d.DoneEN = "Markeringen har tagits bort.", "The marking was removed."
		}
		return http.StatusOK
	case errors.Is(err, ErrAlreadyMarked):
		a.action(r, s, "protection", action, "already_marked")
		d.Key = key
		d.ProblemSV, d.ProblemEN = "Personen är redan markerad. Ingenting har ändrats.", "The person is already marked. Nothing was changed."
		return http.StatusConflict
	case errors.Is(err, ErrNotMarked):
		a.action(r, s, "protection", action, "not_marked")
		d.ProblemSV, d.ProblemEN = "Personen är inte markerad. Ingenting har ändrats.", "The person is not marked. Nothing was changed."
		return http.StatusNotFound
	case errors.Is(err, ErrBadNote):
		a.action(r, s, "protection", action, "bad_note")
		d.ProblemSV = "Anteckningen godtogs inte: högst en kort rad, utan namn eller personnummer. Ingenting har ändrats."
		d.ProblemEN = "The note was refused: one short line at most, without names or personal numbers. Nothing was changed."
		return http.StatusBadRequest
	default:
		a.log(r).Error().Err(err).Str("page", "protection").Str("action", action).Msg("protection register unavailable")
		a.action(r, s, "protection", action, "unavailable")
		// The change may or may not have been made: say so.
		d.ProblemSV, d.ProblemEN = "Registret kunde inte nås. Kontrollera listan innan du försöker igen.",
			"The register could not be reached. Check the list before you try again."
		return http.StatusServiceUnavailable
	}
}
