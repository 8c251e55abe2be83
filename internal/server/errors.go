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
	failBinding = failure{http.StatusBadRequest,
		"Inloggningen kunde inte knytas till din webbläsare.",
		"Stäng webbläsaren, eller ta bort dess kakor för den här webbplatsen, och logga in på nytt från tjänsten.",
		"The login could not be tied to your browser.",
		"Close the browser, or clear its cookies for this site, and log in again from the service."}
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
	// failNotFresh: the vendor asked for a fresh login and the school's
	// IdP reused an older one (case 48).
	failNotFresh = failure{http.StatusForbidden,
		"Tjänsten kräver att du loggar in på nytt, men skolans inloggningstjänst använde en tidigare inloggning.",
		"Gå tillbaka till tjänsten och logga in igen. Om det händer igen: logga ut från skolans inloggningstjänst eller stäng webbläsaren först.",
		"The service requires you to log in again, but your school's login service reused an earlier login.",
		"Go back to the service and log in again. If it happens again, log out of your school's login service or close the browser first."}
	// failTwoFactor: the vendor requires two-factor login and the login
	// proved less (case 49).
	failTwoFactor = failure{http.StatusForbidden,
		"Den här tjänsten kräver inloggning med två faktorer, till exempel lösenord och engångskod. Din inloggning var inte det.",
		"Logga in igen med två faktorer. Kontakta skolans IT-support om du inte har någon andra faktor.",
		"This service requires two-factor login, for example a password and a one-time code. Your login was not.",
		"Log in again with two factors. Contact your school's IT support if you have no second factor."}
	// failAssurance: the vendor requires a stronger login than was made.
	failAssurance = failure{http.StatusForbidden,
		"Den här tjänsten kräver en starkare inloggning än den du gjorde.",
		"Logga in igen med en starkare inloggningsmetod, till exempel e-legitimation. Kontakta skolans IT-support om du inte har någon.",
		"This service requires a stronger login than the one you made.",
		"Log in again with a stronger method, for example an e-ID. Contact your school's IT support if you have none."}
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
	s.failPage(w, r, f, status, reason, cause, nil)
}

// failPage is failStatus with, when ans is set, a button that takes the
// vendor protocol's error back to the vendor.
func (s *Server) failPage(w http.ResponseWriter, r *http.Request, f failure, status int, reason string, cause error, ans *vendorAnswer) {
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
	if ans != nil && ans.origin != "" {
		// The button posts the SAML status to the vendor's ACS, and only
		// there.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action "+ans.origin+"; frame-ancestors 'none'; base-uri 'none'")
	}
	w.WriteHeader(status)
	_ = s.tmpl.ExecuteTemplate(w, "error.html", map[string]any{
		"MessageSV": f.messageSV, "NextSV": f.nextSV,
		"MessageEN": f.messageEN, "NextEN": f.nextEN,
		"RequestID": RequestID(r.Context()),
		"Back":      ans,
	})
}
