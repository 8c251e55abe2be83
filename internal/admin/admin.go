// Package admin is the organiser's admin web interface: which vendors
// receive what and why, a preview of exactly what a vendor would receive
// about test identities, subject access ("which vendor received what about
// this person, and when"), the release register, and the manual protection
// register.
//
// Admins log in through the upstream IdP only (no local accounts, no
// default passwords) and must carry a configured eduPersonEntitlement.
// Subject access and the manual protection register, which both reveal
// whether a person is protected, need a second entitlement, and every
// lookup there is written to the admin action log (keyed by subject keys,
// never by number) before it is made.
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
	// Generation is the identity generation of a release (0: original).
	Generation int
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
	// LogStart is when the oldest log file still present was started
	// (zero: no files); nothing earlier is covered.
	LogStart time.Time
	// SingleKeyEvents counts events, anyone's, logged under one subject
	// key only (before every key was logged); SingleKeyUntil is the
	// newest of them. A lookup by one form of identifier misses those
	// logged under the other.
	SingleKeyEvents int
	SingleKeyUntil  time.Time
}

// Admin actions written to the action log (the same names as the audit
// package's).
const (
	ActionSubjectAccess    = "subject_access"
	ActionProtectionAdd    = "protection_add"
	ActionProtectionRemove = "protection_remove"
	ActionProtectionList   = "protection_list"
)

// Action is one entry for the admin action log: which admin looked up or
// changed whose record, in which request. It names the person only by
// subject keys and the admin only by the session's pseudonymous subject.
type Action struct {
	Admin       string
	Action      string
	SubjectKeys []string
	RequestID   string
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

// IdentityStatus is what the new identity page shows about a personal
// number: dates and a cause, nothing else. Its fields match
// generation.Status.
type IdentityStatus struct {
	// Requested is when an admin last asked for a new identity (zero:
	// never); Pending is true until it is issued at a login.
	Requested time.Time
	Pending   bool
	// Issued is when a new identity was last issued at a login that
	// carried the number, and why ("protected" or "requested").
	Issued      time.Time
	IssuedCause string
}

// NewIdentityDeps issue a new identity on request and look up when one
// was issued.
type NewIdentityDeps struct {
	Request func(ctx context.Context, pnr identity.PersonalNumber) (IdentityStatus, error)
	Status  func(ctx context.Context, pnr identity.PersonalNumber) (IdentityStatus, error)
}

// Deps is everything the admin interface uses. Fields marked optional may
// be left zero; New refuses a Deps without the others.
type Deps struct {
	// Prefix is the path the organiser is served under ("" at the root,
	// /o/<id> in a hub): the admin interface is at <Prefix>/admin/, and
	// its links, redirects and session cookie stay under it.
	Prefix string
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
	// SubjectAccess looks up the events logged under any of the subject
	// keys (optional: without an audit log there is no subject access
	// page).
	SubjectAccess func(ctx context.Context, subjectKeys []string) (SubjectResult, error)
	// Protection is the manual protection register (optional).
	Protection *ProtectionDeps
	// NewIdentity issues new identities on request (optional: without a
	// pseudonym key there are no identities to renew).
	NewIdentity *NewIdentityDeps
	// Units are the admin's choices of school units per vendor (optional:
	// without them the vendors page shows the policy files' lists only).
	// Changes need AdminSubject too, to record who made them.
	Units *units.Overrides
	// PersonalNumbersInValues returns the upstream attributes whose values
	// were dropped in recent logins because they held a personal number;
	// the release preview lists them (optional).
	PersonalNumbersInValues func(ctx context.Context) ([]DroppedAttribute, error)
	// PrivacyEntitlement is the eduPersonEntitlement value an admin must
	// also carry to use subject access and the protection register.
	// Empty: those pages answer 403 to every admin.
	PrivacyEntitlement string
	// SubjectKeys returns the audit subject keys of what an admin typed:
	// a personal number and/or a stable id, either may be zero. Required
	// with SubjectAccess or Protection.
	SubjectKeys func(pnr identity.PersonalNumber, stableID identity.Secret) []string
	// RecordAction writes an admin action to the action log and returns
	// once it is durable. A lookup or change whose action cannot be
	// recorded is not made. Required with SubjectAccess or Protection.
	RecordAction func(ctx context.Context, a Action) error
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
	// actions (e.g. the audit subject key). Never a name. Required with
	// SubjectAccess or Protection, whose actions name the admin.
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
	if (d.SubjectAccess != nil || d.Protection != nil) && (d.SubjectKeys == nil || d.RecordAction == nil || d.AdminSubject == nil) {
		// Lookups that reveal who is protected are never unrecorded.
		missing = append(missing, "SubjectKeys/RecordAction/AdminSubject (for SubjectAccess and Protection)")
	}
	if n := d.NewIdentity; n != nil && (n.Request == nil || n.Status == nil) {
		missing = append(missing, "NewIdentity.Request/Status")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("admin: missing %s", strings.Join(missing, ", "))
	}
	pages, err := parsePages(admintmpl.FS, d.Prefix)
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
var pageNames = []string{"message", "overview", "vendors", "preview", "subject", "register", "protection", "identity"}

func parsePages(fsys fs.FS, prefix string) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		// admin is where this admin interface is served: /admin, or
		// /o/<id>/admin for an organiser of a hub.
		"admin": func() string { return prefix + "/admin" },
		"join":  strings.Join,
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

// path is p (an /admin/... path) under the organiser's prefix.
func (a *Admin) path(p string) string { return a.d.Prefix + p }

// Routes adds every admin route, all under <prefix>/admin/.
func (a *Admin) Routes(root *mux.Router) {
	r := prefixed{root, a.d.Prefix}
	r.Handle("/admin", a.headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, a.path("/admin/"), http.StatusSeeOther)
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
	r.Handle("/admin/identity", a.authed("identity", []string{http.MethodGet, http.MethodPost}, a.handleIdentity))
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
	msgNoPrivacy = message{"Ingen behörighet", "Not authorised",
		"Registerutdrag och skyddsmarkeringar kräver en särskild behörighet, som ditt konto inte har. Försöket har loggats.",
		"Subject access and protection markings need a separate entitlement, which your account does not have. The attempt has been logged.",
		"/admin/", "Till översikten / To the overview", false}
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
	HasIdentity   bool
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
		HasSubject:    a.d.SubjectAccess != nil && a.privacyAdmin(s),
		HasProtection: a.d.Protection != nil && a.privacyAdmin(s),
		HasIdentity:   a.d.NewIdentity != nil && a.privacyAdmin(s),
		RequestID:     w.Header().Get("X-Request-Id"),
		Data:          data,
	}
	if s != nil {
		pd.LoggedIn, pd.CSRF = true, s.CSRF
	}
	if m, ok := data.(message); ok {
		if strings.HasPrefix(m.Link, "/admin") {
			m.Link = a.path(m.Link)
			pd.Data = m
		}
		if m.Refresh {
			pd.Refresh = m.Link
		}
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

// privacyAdmin reports whether s may use subject access and the
// protection register: the admin carried the privacy entitlement at login.
func (a *Admin) privacyAdmin(s *session) bool {
	return s != nil && s.Privacy && a.d.PrivacyEntitlement != ""
}

// requirePrivacy answers 403 unless s may use the page; the refusal is
// logged.
func (a *Admin) requirePrivacy(w http.ResponseWriter, r *http.Request, s *session, page string) bool {
	if a.privacyAdmin(s) {
		return true
	}
	a.action(r, s, page, strings.ToLower(r.Method), "no_privacy_entitlement")
	a.fail(w, r, http.StatusForbidden, msgNoPrivacy)
	return false
}

// recordAction writes a lookup or change to the admin action log before
// it is made; false means it could not be, and nothing may be done.
func (a *Admin) recordAction(w http.ResponseWriter, r *http.Request, s *session, action string, keys []string) bool {
	err := a.d.RecordAction(r.Context(), Action{Admin: s.Subject, Action: action, SubjectKeys: keys, RequestID: w.Header().Get("X-Request-Id")})
	if err != nil {
		a.log(r).Error().Err(err).Str("action", action).Msg("admin action log unavailable")
		return false
	}
	return true
}

// fail shows a fixed message page.
func (a *Admin) fail(w http.ResponseWriter, r *http.Request, status int, m message) {
	a.render(w, r, status, "message", m.TitleSV+" / "+m.TitleEN, sessionFrom(r.Context()), m)
}

// prefixed registers routes under a path prefix.
type prefixed struct {
	r      *mux.Router
	prefix string
}

func (p prefixed) Handle(path string, h http.Handler) *mux.Route { return p.r.Handle(p.prefix+path, h) }

func (p prefixed) PathPrefix(path string) *mux.Route { return p.r.PathPrefix(p.prefix + path) }
