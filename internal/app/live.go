package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/metrics"
	"github.com/skolbro/skolbro/internal/server"
	"github.com/skolbro/skolbro/internal/store"
)

// Live is the configuration a running bridge serves, and the way to change
// it without a restart (SECURITY.md case 51). Reload re-reads the
// configuration file, and with it every release policy, metadata file and
// key, through the same BuildHub that start-up uses; only a configuration
// without a single error is swapped in, at once, for every organiser.
//
// Logins in flight are not lost: their pending state is in the store,
// under the organiser's own namespace, which a reload does not change.
// What a login validated at its start (the vendor, its ACS URL or
// redirect URI, its request id) travels in that state and is answered as
// validated; what is decided at release (the policy, the protection
// sources, the keys that check the school IdP's signature) is what serves
// at that moment, so that a policy tightened or an upstream key removed
// takes effect for every release made after the reload.
type Live struct {
	path string
	st   store.Store
	opts LiveOptions

	gen atomic.Pointer[generation]
	// mu makes reloads one at a time.
	mu  sync.Mutex
	srv *server.Server
}

// LiveOptions configure a Live.
type LiveOptions struct {
	// Build is how every build is made. Its Registerer is ignored: each
	// build's metrics are collected by Collector while that build serves.
	Build Options
	// Logger receives the reload's outcome and problems.
	Logger zerolog.Logger
	// Prepare, when set, is called with every build's organisers before
	// they serve (the demo adds its preview identities). An error refuses
	// the build.
	Prepare func(cfg *config.Config, orgs []*server.Organiser) error
	// Applied, when set, is called with the organisers of the first build
	// and of every applied reload (key expiry and agreement gauges).
	Applied func(orgs []*server.Organiser)
	// Reloads counts reloads by result.
	Reloads *metrics.Reloads
	// Instance names this process in the reload record that check reads
	// (default: host name and process id).
	Instance string
}

// generation is one build being served, with what it opened.
type generation struct {
	cfg  *config.Config
	orgs []*server.Organiser
	hub  *server.Hub
	rep  *Report
	reg  *collectors
	// sinks are the release logs opened for the build, by their settings:
	// a reload that leaves an organiser's audit settings alone keeps its
	// sink open, so that no event waits on a reopen.
	sinks   map[auditKey]audit.Sink
	stopFed context.CancelFunc
}

// auditKey is what makes two release log settings the same sink.
type auditKey struct {
	dir         string
	maxBytes    int64
	rotateDaily bool
	retention   time.Duration
	sync        string
}

func auditKeyOf(cfg *config.Config, o *config.Organiser) auditKey {
	a := o.Audit
	return auditKey{dir: cfg.Path(a.Dir), maxBytes: a.MaxBytes, rotateDaily: a.RotateDaily,
		retention: time.Duration(a.Retention), sync: a.Sync}
}

// StartLive builds the configuration at cfg for serving, as serve does at
// start: an organiser with errors is left out and the others serve (case
// 45); errors of the bridge as a whole, or no organiser left, are
// returned. It opens the release logs and starts the federation
// refreshers.
func StartLive(cfg *config.Config, st store.Store, opts LiveOptions) (*Live, *Report, error) {
	l := &Live{path: cfg.File(), st: st, opts: opts}
	if l.opts.Instance == "" {
		host, _ := os.Hostname()
		l.opts.Instance = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	g, err := l.build(cfg, nil, false)
	if err != nil {
		return nil, g.rep, err
	}
	l.gen.Store(g)
	if l.opts.Applied != nil {
		l.opts.Applied(g.orgs)
	}
	return l, g.rep, nil
}

// build builds cfg, opens what it needs (reusing prev's release logs
// where the settings are the same) and starts its federation refreshers.
// strict refuses a build with any error at all (a reload).
func (l *Live) build(cfg *config.Config, prev *generation, strict bool) (*generation, error) {
	reg := &collectors{}
	opts := l.opts.Build
	opts.Registerer = reg
	orgs, hub, rep := BuildHub(cfg, l.st, opts)
	g := &generation{cfg: cfg, orgs: orgs, hub: hub, rep: rep, reg: reg, sinks: map[auditKey]audit.Sink{}}
	if err := rep.Fatal(len(orgs)); err != nil {
		return g, err
	}
	if strict && len(rep.Errors) > 0 {
		return g, rep.Err()
	}
	if l.opts.Prepare != nil {
		if err := l.opts.Prepare(cfg, orgs); err != nil {
			return g, err
		}
	}
	for _, org := range orgs {
		o := cfg.OrganiserByID(org.ID)
		if o == nil || o.Audit.Dir == "" {
			continue
		}
		k := auditKeyOf(cfg, o)
		if sink, ok := g.sinks[k]; ok {
			org.Audit = sink
			continue
		}
		if prev != nil {
			if sink, ok := prev.sinks[k]; ok {
				g.sinks[k], org.Audit = sink, sink
				continue
			}
		}
		sink, err := OpenAudit(cfg, o, opts.Now)
		if err != nil {
			g.closeSinks(prev)
			return g, fmt.Errorf("%s: %s: %w", cfg.File(), o.Key("audit"), err)
		}
		g.sinks[k], org.Audit = sink, sink
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stopFed = cancel
	for _, org := range orgs {
		if org.Federation != nil {
			go org.Federation.Run(ctx)
		}
	}
	return g, nil
}

// closeSinks closes the sinks g opened that keep no place in next.
func (g *generation) closeSinks(next *generation) {
	for k, s := range g.sinks {
		if next != nil && next.sinks[k] == s {
			continue
		}
		_ = s.Close()
	}
}

// Attach makes srv the server Reload swaps organisers in; srv must have
// been built with Organisers and Hub.
func (l *Live) Attach(srv *server.Server) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.srv = srv
}

// Organisers returns the organisers being served.
func (l *Live) Organisers() []*server.Organiser { return l.gen.Load().orgs }

// Hub returns the hub entity being served, or nil.
func (l *Live) Hub() *server.Hub { return l.gen.Load().hub }

// Store is the store the bridge runs on, where reloads are recorded.
func (l *Live) Store() store.Store { return l.st }

// Config returns the configuration being served.
func (l *Live) Config() *config.Config { return l.gen.Load().cfg }

// Collector collects the metrics of the build being served (protection
// sources, federation sources); register it once; it follows reloads.
func (l *Live) Collector() prometheus.Collector { return liveCollector{l} }

// liveCollector is an unchecked collector (it describes nothing): what it
// collects changes with every reload.
type liveCollector struct{ l *Live }

func (liveCollector) Describe(chan<- *prometheus.Desc) {}

func (c liveCollector) Collect(ch chan<- prometheus.Metric) {
	c.l.gen.Load().reg.Collect(ch)
}

// collectors is the Registerer one build registers its metrics on: it
// keeps them for liveCollector instead of registering them for good, so
// that the next build's metrics of the same names replace them.
type collectors struct {
	mu sync.Mutex
	cs []prometheus.Collector
}

func (c *collectors) Register(col prometheus.Collector) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cs = append(c.cs, col)
	return nil
}

func (c *collectors) MustRegister(cols ...prometheus.Collector) {
	for _, col := range cols {
		_ = c.Register(col)
	}
}

func (c *collectors) Unregister(col prometheus.Collector) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.cs {
		if x == col {
			c.cs = append(c.cs[:i], c.cs[i+1:]...)
			return true
		}
	}
	return false
}

func (c *collectors) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	cs := append([]prometheus.Collector(nil), c.cs...)
	c.mu.Unlock()
	for _, col := range cs {
		col.Collect(ch)
	}
}

// ErrNeedsRestart marks a reload refused because a setting that only a
// restart applies was changed.
var ErrNeedsRestart = errors.New("takes effect only on a restart")

// restartOnly are the settings a running process cannot change: its
// listener, its store, its limits and its logger.
func restartOnly(cur, next *config.Config) []string {
	var changed []string
	for _, f := range []struct {
		key  string
		a, b any
	}{
		{"listen", cur.Listen, next.Listen},
		{"external_url", cur.ExternalURL, next.ExternalURL},
		{"store", cur.Store, next.Store},
		{"limits", cur.Limits, next.Limits},
		{"metrics_listen", cur.MetricsListen, next.MetricsListen},
		{"log_level", cur.LogLevel, next.LogLevel},
	} {
		if !reflect.DeepEqual(f.a, f.b) {
			changed = append(changed, f.key)
		}
	}
	return changed
}

// Reload re-reads the configuration file and everything it names, and
// serves it from now on if it has no error at all. Otherwise the running
// configuration stays, the problems are logged and returned, and the
// refusal is counted and recorded for check. Requests being served finish
// on the organisers they began with; their release logs are closed (when
// the new build does not keep them) once the last of them has finished.
func (l *Live) Reload(ctx context.Context) (*Report, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	log := l.opts.Logger
	cur := l.gen.Load()
	rep, err := l.reload(cur)
	if err != nil {
		l.opts.Reloads.Count(metrics.ReloadRefused)
		for _, p := range problems(rep, err) {
			log.Error().Str("problem", p).Msg("configuration error")
		}
		log.Error().Msg("reload refused: the running configuration stays (run skolbro check)")
		l.record(ctx, metrics.ReloadRefused, problems(rep, err))
		return rep, err
	}
	l.opts.Reloads.Count(metrics.ReloadApplied)
	for _, w := range rep.Warnings {
		log.Warn().Str("problem", w).Msg("configuration warning")
	}
	log.Info().Int("organisers", len(l.Organisers())).Int("warnings", len(rep.Warnings)).Msg("configuration reloaded")
	l.record(ctx, metrics.ReloadApplied, nil)
	return rep, nil
}

func (l *Live) reload(cur *generation) (*Report, error) {
	if l.srv == nil {
		return &Report{}, errors.New("reload: no server attached")
	}
	cfg, err := config.Load(l.path)
	if err != nil {
		return &Report{}, err
	}
	if changed := restartOnly(cur.cfg, cfg); len(changed) > 0 {
		rep := &Report{}
		for _, k := range changed {
			rep.errorf(cfg.File(), k, "changed: %v", ErrNeedsRestart)
		}
		return rep, fmt.Errorf("%s: %v %w", cfg.File(), changed, ErrNeedsRestart)
	}
	g, err := l.build(cfg, cur, true)
	if err != nil {
		return g.rep, err
	}
	retired, err := l.srv.Reload(g.orgs, g.hub)
	if err != nil {
		g.stopFed()
		g.closeSinks(cur)
		return g.rep, err
	}
	l.gen.Store(g)
	// The old build's refreshers stop now: requests still on its
	// organisers read the aggregates they hold without them.
	cur.stopFed()
	go func() {
		<-retired
		cur.closeSinks(g)
	}()
	if l.opts.Applied != nil {
		l.opts.Applied(g.orgs)
	}
	for _, org := range g.orgs {
		if org.Register == nil {
			continue
		}
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := org.Register.Ready(rctx); err != nil {
			l.opts.Logger.Error().Err(err).Str("organiser", org.ID).Msg("protection register not ready: every person is masked and readiness fails until it is restored or re-initialised (skolbro protect init)")
		}
		cancel()
	}
	return g.rep, nil
}

// problems lists a refused reload's problems: the report's errors, or the
// error itself when the report has none.
func problems(rep *Report, err error) []string {
	if rep != nil && len(rep.Errors) > 0 {
		return rep.Errors
	}
	if err != nil {
		return []string{err.Error()}
	}
	return nil
}

// Close stops the federation refreshers and closes the release logs.
func (l *Live) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.gen.Load()
	g.stopFed()
	g.closeSinks(nil)
}

// ReloadRecordKey is where a running bridge records its last reload in the
// store (outside every organiser's namespace), for check.
const ReloadRecordKey = "reload:last"

// reloadRecordTTL bounds how long check reports a reload.
const reloadRecordTTL = 30 * 24 * time.Hour

// Bounds on what a record keeps: problems name files and keys, never
// personal data, but a broken configuration must not fill the store.
const (
	maxRecordProblems = 50
	maxProblemLen     = 500
)

// ReloadRecord is the last reload of a running bridge: when, which
// instance, applied or refused, and a refusal's problems.
type ReloadRecord struct {
	Instance string    `json:"instance"`
	Time     time.Time `json:"time"`
	Result   string    `json:"result"`
	Problems []string  `json:"problems,omitempty"`
}

func (l *Live) record(ctx context.Context, result string, probs []string) {
	if len(probs) > maxRecordProblems {
		probs = probs[:maxRecordProblems]
	}
	rec := ReloadRecord{Instance: l.opts.Instance, Time: l.opts.Build.Now().UTC().Truncate(time.Second), Result: result}
	for _, p := range probs {
		if len(p) > maxProblemLen {
			p = p[:maxProblemLen]
		}
		rec.Problems = append(rec.Problems, p)
	}
	b, err := json.Marshal(rec)
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		err = l.st.Put(ctx, ReloadRecordKey, b, reloadRecordTTL)
	}
	if err != nil {
		l.opts.Logger.Warn().Err(err).Msg("the reload's outcome could not be recorded for check")
	}
}

// ReadReloadRecord returns the last reload recorded in st, or nil.
func ReadReloadRecord(ctx context.Context, st store.Store) (*ReloadRecord, error) {
	b, err := st.Get(ctx, ReloadRecordKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec ReloadRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, nil // a hint for the admin, not state anything depends on
	}
	return &rec, nil
}

// ReportRunning adds, for check, what the running bridges recorded in the
// configured store: their last reload (a refused one is a warning: they
// still serve the configuration they had) and which attribute names the
// school IdPs sent in recent logins (a security_marking that never
// arrives is a warning: it masks everyone). orgs are the organisers
// check built. With the memory store the records are inside the running
// bridge: a note says where to look instead.
func ReportRunning(ctx context.Context, cfg *config.Config, orgs []*server.Organiser, now time.Time, rep *Report) {
	file := cfg.File()
	if cfg.Store.Type != "redis" {
		rep.Notes = append(rep.Notes, location(file, "store.type")+
			"memory: check cannot read what the running bridge recorded; its log and skolbro_reload_total show refused reloads, "+
			"and its admin release preview the attribute names the school IdP sends")
		return
	}
	st, err := OpenStore(cfg)
	if err != nil {
		rep.warnf(file, "store", "cannot read what the running bridges recorded: %v", err)
		return
	}
	if c, ok := st.(io.Closer); ok {
		defer c.Close()
	}
	reportLastReload(ctx, cfg, st, rep)
	reportUpstreamNames(ctx, cfg, orgs, st, now, rep)
}

func reportLastReload(ctx context.Context, cfg *config.Config, st store.Store, rep *Report) {
	file := cfg.File()
	rec, err := ReadReloadRecord(ctx, st)
	switch {
	case err != nil:
		rep.warnf(file, "store", "cannot read the running bridge's last reload: %v", err)
	case rec == nil:
	case rec.Result == metrics.ReloadRefused:
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%sthe running bridge (%s) refused a reload at %s and still serves the configuration it had before; fix the problems and reload again:",
			location(file, ""), rec.Instance, rec.Time.Format(time.RFC3339)))
		for _, p := range rec.Problems {
			rep.Warnings = append(rep.Warnings, "  refused: "+p)
		}
	default:
		rep.Notes = append(rep.Notes, fmt.Sprintf("%sthe running bridge (%s) applied its last reload at %s", location(file, ""), rec.Instance, rec.Time.Format(time.RFC3339)))
	}
}
