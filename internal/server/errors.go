package server

import (
	"net/http"

	"github.com/rs/zerolog"
)

// failure is one kind of error page: a fixed message and what to do next.
// The cause goes to the log only, never to the page.
type failure struct {
	status            int
	messageSV, nextSV string
	messageEN, nextEN string
}

var (
	failVendorRequest = failure{http.StatusBadRequest,
		"Tjänsten du kom ifrån skickade en inloggningsbegäran som inte kunde godkännas.",
		"Gå tillbaka till tjänsten och försök igen. Om felet kvarstår, kontakta skolans IT-support.",
		"The service you came from sent a login request that could not be accepted.",
		"Go back to the service and try again. If it keeps happening, contact your school's IT support."}
	failUpstream = failure{http.StatusBadRequest,
		"Svaret från skolans inloggningstjänst kunde inte godkännas.",
		"Gå tillbaka till tjänsten och logga in på nytt.",
		"The answer from your school's login service could not be accepted.",
		"Go back to the service and log in again."}
	failExpired = failure{http.StatusBadRequest,
		"Inloggningen har tagit för lång tid, har redan använts, eller startades i en annan webbläsare.",
		"Gå tillbaka till tjänsten och logga in på nytt.",
		"The login took too long, was already used, or was started in another browser.",
		"Go back to the service and log in again."}
	failCancelled = failure{http.StatusForbidden,
		"Inloggningen avbröts eller nekades av skolans inloggningstjänst.",
		"Gå tillbaka till tjänsten och försök igen.",
		"The login was cancelled or refused by your school's login service.",
		"Go back to the service and try again."}
	failAgreement = failure{http.StatusForbidden,
		"Din skola har inte (längre) godkänt att tjänsten får dina inloggningsuppgifter.",
		"Kontakta skolans IT-support om du behöver tjänsten.",
		"Your school has not approved (or no longer approves) this service to receive your login.",
		"Contact your school's IT support if you need this service."}
	// failNotEnabled: the vendor is not switched on for any of the
	// person's school units or roles (case 47).
	failNotEnabled = failure{http.StatusForbidden,
		"Din skola använder inte den här tjänsten.",
		"Kontakta skolans IT-support om du behöver tjänsten.",
		"Your school does not use this service.",
		"Contact your school's IT support if you need this service."}
	failUnavailable = failure{http.StatusServiceUnavailable,
		"Inloggningen är tillfälligt otillgänglig.",
		"Vänta en stund och försök igen.",
		"Logging in is temporarily unavailable.",
		"Wait a moment and try again."}
	failBusy = failure{http.StatusTooManyRequests,
		"Många loggar in till tjänsten just nu.",
		"Vänta en stund och försök igen.",
		"Many people are logging in to this service right now.",
		"Wait a moment and try again."}
	failInternal = failure{http.StatusInternalServerError,
		"Något gick fel i inloggningen.",
		"Försök igen. Om felet kvarstår, kontakta skolans IT-support.",
		"Something went wrong during login.",
		"Try again. If it keeps happening, contact your school's IT support."}
	failNotFound = failure{http.StatusNotFound,
		"Sidan finns inte.", "Kontrollera adressen.",
		"There is no such page.", "Check the address."}
	failMethod = failure{http.StatusMethodNotAllowed,
		"Sidan kan inte användas så här.", "Gå tillbaka till tjänsten och försök igen.",
		"This page cannot be used this way.", "Go back to the service and try again."}
	failTooLarge = failure{http.StatusRequestEntityTooLarge,
		"Begäran var för stor.", "Gå tillbaka till tjänsten och försök igen.",
		"The request was too large.", "Go back to the service and try again."}
)

// fail logs reason and cause (which must carry no personal data: every
// error the flows produce is built that way) and shows the fixed page.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, f failure, reason string, cause error) {
	s.failStatus(w, r, f, f.status, reason, cause)
}

func (s *Server) failStatus(w http.ResponseWriter, r *http.Request, f failure, status int, reason string, cause error) {
	l := zerolog.Ctx(r.Context())
	ev := l.Warn()
	if status >= 500 {
		ev = l.Error()
	}
	ev.Str("reason", reason).Int("status", status).AnErr("cause", cause).Msg("request refused")
	s.refusal(reason)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = s.tmpl.ExecuteTemplate(w, "error.html", map[string]string{
		"MessageSV": f.messageSV, "NextSV": f.nextSV,
		"MessageEN": f.messageEN, "NextEN": f.nextEN,
		"RequestID": RequestID(r.Context()),
	})
}
