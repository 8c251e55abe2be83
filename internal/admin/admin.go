// Package admin is the organiser's admin web interface: which vendors
// receive what and why, a preview of exactly what a vendor would receive
// about test identities, subject access ("which vendor received what about
// this person, and when"), the release register, and the manual protection
// register.
//
// Admins log in through the upstream IdP only (no local accounts, no
// default passwords) and must carry a configured eduPersonEntitlement.
// Pages are server-rendered and work without JavaScript. Every POST
// carries a per-session CSRF token, checked before anything else; no GET
// changes anything. Personal numbers typed by an admin are never logged,
// echoed, or put into a URL.
//
// The package depends on the audit log and the protection register only
// through the function-typed fields of Deps, so that the wiring in main
// decides which backends are used.
package admin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/release"
	"github.com/skolbro/skolbro/internal/store"
	"github.com/skolbro/skolbro/internal/units"
	admintmpl "github.com/skolbro/skolbro/web/templates/admin"
)

// Session lifetimes: an admin session ends after IdleTimeout without a
// request, and at the latest AbsoluteTimeout after the login.
const (
	IdleTimeout     = 30 * time.Minute
	AbsoluteTimeout = 8 * time.Hour
)

// PreviewIdentity is a demo or test identity shown in the release preview.
// It must never be a real person: the preview shows attribute values.
type PreviewIdentity struct {
	// Login is the identity's login name at the test IdP.
	Login string
	// Label says who this is, e.g. "pupil with protected identity".
	Label    string
	Identity *identity.Identity
}

// RegisterRow is one vendor in the release register. Its fields match
// audit.RegisterRow one for one, so that the wiring can convert a row with
// admin.RegisterRow(row).
type RegisterRow struct {
	VendorID             string
	DisplayName          string
	Protocol             string
	EntityIDOrClientID   string
	Purpose              string
	LegalBasis           string
	AgreementReference   string
	AgreementEnds        time.Time
	Released             []string
	PersonalNumber       string
	ProtectedHandling    string
	RequestedNotReleased []string
	ReleasedNotRequested []string
	EnabledSchoolUnits   string
	EnabledAffiliations  string
}

// SubjectRecord is one logged event about a data subject. Its fields match
// audit.Record one for one (admin.SubjectRecord(rec) converts).
type SubjectRecord struct {
	Time       time.Time
	Vendor     string
	Protocol   string
	Attributes []string
	Masked     bool
	Outcome    string
	Reason     string
}

// OutcomeReleased is the SubjectRecord.Outcome of a release; any other
// outcome released nothing.
const OutcomeReleased = "released"

// SubjectResult is the answer to a subject access lookup.
type SubjectResult struct {
	// Records are the subject's events, oldest first.
	Records []SubjectRecord
	// FilesScanned and SkippedLines show the admin whether the whole log
	// was read.
	FilesScanned int
	SkippedLines int
}

// ProtectionEntry is one manual protection marking as listed: a shortened
// key, never the number. Its fields match protection.Entry.
type ProtectionEntry struct {
	Key   string
	Added string
	Note  string
}

// DroppedAttribute is an upstream attribute whose values were dropped in
// recent logins because they held a personal number: its name, how many
// values, and when last. Its fields match pnrvalues.Entry.
type DroppedAttribute struct {
	Attribute string
	Count     int64
	LastSeen  time.Time
}

// UpstreamNames is what one school IdP sent in recent logins, by
// attribute name only (never a value), and how the bridge read each.
type UpstreamNames struct {
	Upstream  string
	LastLogin time.Time
	// SecurityMarking is the configured attribute ("" for none), and
	// whether it arrived; one that never does masks everyone.
	SecurityMarking     string
	SecurityMarkingSeen bool
	Attributes          []UpstreamName
	// NotSeen are configured names that arrived in none of the logins.
	NotSeen []string
}

// UpstreamName is one attribute name an upstream sent.
type UpstreamName struct {
	Attribute, FriendlyName string
	// Use is how the bridge read it: stable_id, personal_number,
	// security_marking, a bridge attribute, or not used.
	Use      string
	LastSeen time.Time
}

// Errors the protection functions return (wrapped or joined) so that the
// page can tell the admin what happened. Any other error is shown as the
// register being unavailable.
var (
	ErrAlreadyMarked = errors.New("admin: person already marked")
	ErrNotMarked     = errors.New("admin: person not marked")
	ErrBadNote       = errors.New("admin: note refused")
)

// ProtectionDeps are the manual protection register's operations. Add and
// Remove return the entry's shortened key (as List shows it) so that the
// admin can find the entry without the number.
type ProtectionDeps struct {
	Add    func(ctx context.Context, pnr identity.PersonalNumber, note string) (key string, err error)
	Remove func(ctx context.Context, pnr identity.PersonalNumber) (key string, err error)
	List   func(ctx context.Context) ([]ProtectionEntry, error)
}

// Deps is everything the admin interface uses. Fields marked optional may
// be left zero; New refuses a Deps without the others.
type Deps struct {
	// Organiser is the organiser's display name.
	Organiser string
	// Policies returns the loaded release policies.
	Policies func() []*policy.Policy
	// Release is the pure release step (release.Release with the
	// organiser's pseudonym deriver).
	Release func(p *policy.Policy, id *identity.Identity) *release.Released
	// Identities are the test identities for the release preview
	// (optional; the preview is empty without them).
	Identities []PreviewIdentity
	// RegisterRows returns the release register; RegisterCSV and
	// RegisterJSON write its exports.
	RegisterRows              func() []RegisterRow
	RegisterCSV, RegisterJSON func(w io.Writer) error
	// SubjectAccess looks up the events logged about a personal number
	// (optional: without an audit log there is no subject access page).
	SubjectAccess func(ctx context.Context, pnr identity.PersonalNumber) (SubjectResult, error)
	// Protection is the manual protection register (optional).
	Protection *ProtectionDeps
	// Units are the admin's choices of school units per vendor (optional:
	// without them the vendors page shows the policy files' lists only).
	// Changes need AdminSubject too, to record who made them.
	Units *units.Overrides
	// PersonalNumbersInValues returns the upstream attributes whose values
	// were dropped in recent logins because they held a personal number;
	// the release preview lists them (optional).
	PersonalNumbersInValues func(ctx context.Context) ([]DroppedAttribute, error)
	// UpstreamNames returns which attribute names each school IdP sent in
	// recent logins; the release preview lists them (optional).
	UpstreamNames func(ctx context.Context) ([]UpstreamNames, error)
	// Store holds sessions (only hashes of session ids as keys).
	Store store.Store
	// StartLogin starts an upstream login for an admin; the upstream side
	// calls CompleteLogin when it comes back.
	StartLogin func(w http.ResponseWriter, r *http.Request)
	// Entitlement is the eduPersonEntitlement value an admin must carry.
	Entitlement string
	// AdminSubject returns an opaque key for the admin, logged with admin
	// actions (optional; e.g. the audit subject key). Never a name.
	AdminSubject func(id *identity.Identity) string
	// SecureCookies marks the session cookie Secure (an https deployment).
	SecureCookies bool
	// Logger is used when a request's context carries no logger.
	Logger zerolog.Logger
	// Location is the time zone of dates shown to the admin (UTC if nil).
	Location *time.Location
	// Now and Rand default to time.Now and crypto/rand.
	Now  func() time.Time
	Rand io.Reader
}

// Admin serves the admin interface.
type Admin struct {
	d     Deps
	now   func() time.Time
	rand  io.Reader
	loc   *time.Location
	pages map[string]*template.Template
}

// New checks d and parses the templates.
func New(d Deps) (*Admin, error) {
	var missing []string
	if d.Policies == nil {
		missing = append(missing, "Policies")
	}
	if d.Release == nil {
		missing = append(missing, "Release")
	}
	if d.RegisterRows == nil || d.RegisterCSV == nil || d.RegisterJSON == nil {
		missing = append(missing, "RegisterRows/RegisterCSV/RegisterJSON")
	}
	if d.Store == nil {
		missing = append(missing, "Store")
	}
	if d.StartLogin == nil {
		missing = append(missing, "StartLogin")
	}
	if strings.TrimSpace(d.Entitlement) == "" {
		// Without it every upstream account would be an admin.
		missing = append(missing, "Entitlement")
	}
	if p := d.Protection; p != nil && (p.Add == nil || p.Remove == nil || p.List == nil) {
		missing = append(missing, "Protection.Add/Remove/List")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("admin: missing %s", strings.Join(missing, ", "))
	}
	pages, err := parsePages(admintmpl.FS)
	if err != nil {
		return nil, fmt.Errorf("admin: templates: %w", err)
	}
	a := &Admin{d: d, now: d.Now, rand: d.Rand, loc: d.Location, pages: pages}
	if a.now == nil {
		a.now = time.Now
	}
	if a.rand == nil {
		a.rand = rand.Reader
	}
	if a.loc == nil {
		a.loc = time.UTC
	}
	return a, nil
}

// pageNames are the page templates; each fills in base.html.
var pageNames = []string{"message", "overview", "vendors", "preview", "subject", "register", "protection"}

func parsePages(fsys fs.FS) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"join": strings.Join,
		"date": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format(time.DateOnly)
		},
	}
	base, err := template.New("base.html").Funcs(funcs).ParseFS(fsys, "base.html")
	if err != nil {
		return nil, err
	}
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(fsys, name+".html")
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

// Routes adds every admin route, all under /admin/.
func (a *Admin) Routes(r *mux.Router) {
	r.Handle("/admin", a.headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
	})))
	r.Handle("/admin/login", a.headers(http.HandlerFunc(a.handleLogin)))
	r.Handle("/admin/", a.authed("overview", []string{http.MethodGet}, a.handleOverview))
	r.Handle("/admin/vendors", a.authed("vendors", []string{http.MethodGet}, a.handleVendors))
	r.Handle("/admin/preview", a.authed("preview", []string{http.MethodGet}, a.handlePreview))
	r.Handle("/admin/subject", a.authed("subject", []string{http.MethodGet, http.MethodPost}, a.handleSubject))
	r.Handle("/admin/register", a.authed("register", []string{http.MethodGet}, a.handleRegister))
	r.Handle("/admin/register.csv", a.authed("register_csv", []string{http.MethodGet}, a.handleRegisterExport("csv")))
	r.Handle("/admin/register.json", a.authed("register_json", []string{http.MethodGet}, a.handleRegisterExport("json")))
	r.Handle("/admin/units", a.authed("units", []string{http.MethodPost}, a.handleUnits))
	r.Handle("/admin/protection", a.authed("protection", []string{http.MethodGet, http.MethodPost}, a.handleProtection))
	r.Handle("/admin/logout", a.authed("logout", []string{http.MethodPost}, a.handleLogout))
	r.PathPrefix("/admin/").Handler(a.authed("not_found", nil, func(w http.ResponseWriter, r *http.Request, _ *session) {
		a.fail(w, r, http.StatusNotFound, msgNotFound)
	}))
}

// headers sets the admin pages' security headers before anything else
// runs, so that redirects and error pages carry them too.
func (a *Admin) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// log returns the request's logger (the server puts one carrying the
// request id into the context), or the configured one.
func (a *Admin) log(r *http.Request) *zerolog.Logger {
	if l := zerolog.Ctx(r.Context()); l.GetLevel() != zerolog.Disabled {
		return l
	}
	return &a.d.Logger
}

// action logs an admin action: the page, the action and the outcome only,
// never what the admin typed or saw.
func (a *Admin) action(r *http.Request, s *session, page, action, outcome string) {
	ev := a.log(r).Info()
	if outcome != "ok" {
		ev = a.log(r).Warn()
	}
	if s != nil && s.Subject != "" {
		ev = ev.Str("admin_subject", s.Subject)
	}
	ev.Str("page", page).Str("action", action).Str("outcome", outcome).Msg("admin action")
}

// message is a fixed text for a page without details: the cause goes to
// the log only.
type message struct {
	TitleSV, TitleEN string
	TextSV, TextEN   string
	// Link and LinkText offer the next step, or nothing.
	Link, LinkText string
	// Refresh moves the browser on to Link by itself (no script needed).
	Refresh bool
}

var (
	msgNotFound = message{"Sidan finns inte", "No such page",
		"Adressen finns inte i administrationsgränssnittet.", "The address does not exist in the admin interface.",
		"/admin/", "Till översikten / To the overview", false}
	msgMethod = message{"Fel metod", "Method not allowed",
		"Sidan kan inte användas så här.", "This page cannot be used this way.",
		"/admin/", "Till översikten / To the overview", false}
	msgCSRF = message{"Formuläret kunde inte godkännas", "The form could not be accepted",
		"Formuläret var för gammalt, kom från en annan sida eller så har sessionen gått ut. Ingenting har ändrats.",
		"The form was too old, came from another page, or the session has ended. Nothing was changed.",
		"/admin/", "Ladda om och försök igen / Reload and try again", false}
	msgForbidden = message{"Ingen behörighet", "Not authorised",
		"Ditt konto har inte behörighet till administrationen av skolbro. Inloggningen har loggats.",
		"Your account is not authorised to administer skolbro. The attempt has been logged.",
		"", "", false}
	msgUnavailable = message{"Tillfälligt otillgängligt", "Temporarily unavailable",
		"Sessionslagret eller en annan del av skolbro svarar inte just nu.",
		"The session store or another part of skolbro is not answering right now.",
		"/admin/", "Försök igen / Try again", false}
	msgInternal = message{"Något gick fel", "Something went wrong",
		"Sidan kunde inte visas.", "The page could not be shown.",
		"/admin/", "Till översikten / To the overview", false}
	msgTooLarge = message{"För stor begäran", "Request too large",
		"Formuläret var för stort.", "The form was too large.",
		"/admin/", "Till översikten / To the overview", false}
	msgLoggedOut = message{"Utloggad", "Logged out",
		"Du är utloggad från administrationen.", "You have logged out of the admin interface.",
		"/admin/login", "Logga in igen / Log in again", false}
	msgLoggedIn = message{"Inloggad", "Logged in",
		"Du är inloggad.", "You are logged in.",
		"/admin/", "Fortsätt till administrationen / Continue to the admin interface", false}
)

// pageData is what every page template gets.
type pageData struct {
	Organiser     string
	Title         string
	Active        string
	LoggedIn      bool
	CSRF          string
	HasSubject    bool
	HasProtection bool
	RequestID     string
	// Refresh is the URL a message page moves on to by itself, or "".
	Refresh string
	Data    any
}

// render writes a page. Templates are executed into a buffer first so that
// a template error becomes an error page, not half a page.
func (a *Admin) render(w http.ResponseWriter, r *http.Request, status int, name, title string, s *session, data any) {
	pd := pageData{
		Organiser:     a.d.Organiser,
		Title:         title,
		Active:        name,
		HasSubject:    a.d.SubjectAccess != nil,
		HasProtection: a.d.Protection != nil,
		RequestID:     w.Header().Get("X-Request-Id"),
		Data:          data,
	}
	if s != nil {
		pd.LoggedIn, pd.CSRF = true, s.CSRF
	}
	if m, ok := data.(message); ok && m.Refresh {
		pd.Refresh = m.Link
	}
	var buf strings.Builder
	if err := a.pages[name].ExecuteTemplate(&buf, "base.html", pd); err != nil {
		a.log(r).Error().Err(err).Str("template", name).Msg("admin template failed")
		if name != "message" {
			a.render(w, r, http.StatusInternalServerError, "message", msgInternal.TitleEN, s, msgInternal)
			return
		}
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, buf.String())
}

// fail shows a fixed message page.
func (a *Admin) fail(w http.ResponseWriter, r *http.Request, status int, m message) {
	a.render(w, r, status, "message", m.TitleSV+" / "+m.TitleEN, sessionFrom(r.Context()), m)
}
