package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/skolbro/skolbro/internal/attr"
)

// maxFileSize bounds a policy file; real ones are a few kilobytes.
const maxFileSize = 1 << 20

// Option changes how policies are loaded.
type Option func(*options)

type options struct {
	now time.Time
}

// At sets the time against which agreement end dates are checked. Without
// it, the time of the call is used.
func At(now time.Time) Option { return func(o *options) { o.now = now } }

func newOptions(opts []Option) options {
	o := options{}
	for _, f := range opts {
		f(&o)
	}
	if o.now.IsZero() {
		o.now = time.Now()
	}
	return o
}

// The file format. The walker derives the known keys from these yaml tags,
// and the strict decoder uses the same structs, so the two cannot disagree.
type rawPolicy struct {
	ID             string        `yaml:"id"`
	DisplayName    string        `yaml:"display_name"`
	Preset         string        `yaml:"preset"`
	EPPN           string        `yaml:"eppn"`
	SAML           *rawSAML      `yaml:"saml"`
	OIDC           *rawOIDC      `yaml:"oidc"`
	Purpose        string        `yaml:"purpose"`
	LegalBasis     string        `yaml:"legal_basis"`
	Agreement      *rawAgreement `yaml:"agreement"`
	Attributes     []rawRule     `yaml:"attributes"`
	PersonalNumber *rawOptIn     `yaml:"personal_number"`
	Protected      []rawMask     `yaml:"protected"`
	EnabledFor     *rawEnabled   `yaml:"enabled_for"`
	Assurance      *rawAssurance `yaml:"assurance"`
}

type rawSAML struct {
	EntityID           string `yaml:"entity_id"`
	NameID             string `yaml:"name_id"`
	Sign               string `yaml:"sign"`
	SignatureAlgorithm string `yaml:"signature_algorithm"`
	Encrypt            string `yaml:"encrypt"`
}

type rawAgreement struct {
	Reference string `yaml:"reference"`
	Ends      string `yaml:"ends"`
}

type rawRule struct {
	Name   string   `yaml:"name"`
	Values []string `yaml:"values"`
}

type rawOptIn struct {
	Attribute  string `yaml:"attribute"`
	LegalBasis string `yaml:"legal_basis"`
	Reason     string `yaml:"reason"`
}

// LoadFile loads and validates one policy file. The policy is nil when any
// problem is an error; warnings come with a policy.
func LoadFile(path string, opts ...Option) (*Policy, []Problem) {
	o := newOptions(opts)
	p, problems := loadFile(path, o)
	sortProblems(problems)
	if HasErrors(problems) {
		return nil, problems
	}
	return p, problems
}

// LoadDir loads every *.yaml and *.yml file in dir and reports the problems
// of all files at once, including ids and entityIDs used by two files. It
// returns the policies that have no errors of their own; the caller must
// still refuse to run when HasErrors(problems).
func LoadDir(dir string, opts ...Option) ([]*Policy, []Problem) {
	o := newOptions(opts)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, []Problem{{File: dir, Message: "cannot read the policy directory: " + errText(err)}}
	}
	var (
		problems []Problem
		loaded   []*Policy
		ok       = map[*Policy]bool{}
	)
	for _, e := range entries {
		name := e.Name()
		ext := filepath.Ext(name)
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		p, ps := loadFile(filepath.Join(dir, name), o)
		problems = append(problems, ps...)
		if p != nil {
			loaded = append(loaded, p)
			ok[p] = !HasErrors(ps)
		}
	}
	if len(loaded) == 0 && len(problems) == 0 {
		problems = append(problems, Problem{File: dir, Message: "no policy files (*.yaml): no vendor will receive anything", Warning: true})
	}

	// Duplicates are checked over every parsed file, even one with other
	// errors, so that all problems show in one pass.
	firstID := map[string]*Policy{}
	firstEntity := map[string]*Policy{}
	for _, p := range loaded {
		if p.ID != "" {
			if q, dup := firstID[p.ID]; dup {
				problems = append(problems, p.problem("id", false, "id %q is also used by %s:%d", p.ID, q.File, q.line("id")))
				ok[p] = false
			} else {
				firstID[p.ID] = p
			}
		}
		if p.SAML != nil && p.SAML.EntityID != "" {
			if q, dup := firstEntity[p.SAML.EntityID]; dup {
				problems = append(problems, p.problem("saml.entity_id", false, "entity_id %q is also used by %s:%d", p.SAML.EntityID, q.File, q.line("saml.entity_id")))
				ok[p] = false
			} else {
				firstEntity[p.SAML.EntityID] = p
			}
		}
	}
	var good []*Policy
	for _, p := range loaded {
		if ok[p] {
			good = append(good, p)
		}
	}
	problems = append(problems, sharedSectors(good)...)
	sortProblems(problems)
	return good, problems
}

// sharedSectors warns, on each policy involved, about pairwise sectors
// that two or more policies use: an OIDC sector that is another vendor's
// OIDC sector (the same sub for every person) or SAML entityID (the same
// pairwise-id). Such vendors can join their data; it must be on purpose.
func sharedSectors(policies []*Policy) []Problem {
	type use struct {
		p   *Policy
		key string
	}
	bySector := map[string][]use{}
	var order []string
	add := func(sector string, u use) {
		if sector == "" {
			return
		}
		if _, seen := bySector[sector]; !seen {
			order = append(order, sector)
		}
		bySector[sector] = append(bySector[sector], u)
	}
	for _, p := range policies {
		if p.OIDC != nil {
			add(p.OIDC.Sector, use{p, "oidc.sector"})
		}
		if p.SAML != nil && (p.OIDC == nil || p.SAML.EntityID != p.OIDC.Sector) {
			add(p.SAML.EntityID, use{p, "saml.entity_id"})
		}
	}
	var problems []Problem
	for _, sector := range order {
		uses := bySector[sector]
		oidc := 0
		for _, u := range uses {
			if u.key == "oidc.sector" {
				oidc++
			}
		}
		if len(uses) < 2 || oidc == 0 {
			continue // only SAML entityIDs: duplicates are reported as errors
		}
		for i, u := range uses {
			var others []string
			for j, o := range uses {
				if j != i {
					others = append(others, fmt.Sprintf("vendor %s (%s:%d: %s)", o.p.ID, o.p.File, o.p.line(o.key), o.key))
				}
			}
			problems = append(problems, u.p.problem(u.key, true,
				"SHARED PAIRWISE SECTOR %q with %s: these vendors receive the same pseudonymous identifier (sub or pairwise-id) for every person and can join their data; "+
					"keep this only if they are one controller's services on purpose, otherwise write sector: vendor so that each vendor gets its own (every person then gets a new sub there)",
				clip(sector), strings.Join(others, ", ")))
		}
	}
	return problems
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		return ps[i].Line < ps[j].Line
	})
}

// errText keeps an error's text without a path prefix duplicated elsewhere.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// loader collects the problems of one file.
type loader struct {
	file     string
	lines    map[string]int
	bad      map[string]bool // keys whose type was wrong; not checked again
	problems []Problem
}

// loadFile returns a policy whenever the file parsed, even with errors, so
// that LoadDir can check duplicates across files.
func loadFile(path string, o options) (*Policy, []Problem) {
	l := &loader{file: path, lines: map[string]int{}, bad: map[string]bool{}}
	b, err := readFile(path)
	if err != nil {
		return nil, []Problem{{File: path, Message: err.Error()}}
	}

	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, []Problem{{File: path, Line: 1, Message: "empty policy file"}}
		}
		return nil, []Problem{l.syntaxProblem(err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return nil, []Problem{l.syntaxProblem(err)}
		}
		return nil, []Problem{{File: path, Line: line, Message: "more than one YAML document; put one vendor in each file"}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	l.lines[""] = root.Line
	l.walk(root, reflect.TypeOf(rawPolicy{}), "", root.Line)

	var raw rawPolicy
	strict := yaml.NewDecoder(bytes.NewReader(b))
	strict.KnownFields(true)
	if err := strict.Decode(&raw); err != nil {
		if len(l.problems) == 0 {
			// The walker refuses whatever the strict decoder does; this
			// is a safety net should they ever disagree.
			l.problems = append(l.problems, l.syntaxProblem(err))
		}
		// Decode what the walker left of the tree (it pruned the
		// entries it reported) so that the checks below still run and
		// every problem shows at once.
		raw = rawPolicy{}
		_ = root.Decode(&raw)
	}

	sum := sha256.Sum256(b)
	p := &Policy{File: path, Hash: hex.EncodeToString(sum[:]), lines: l.lines}
	l.validate(&raw, p, o)
	return p, l.problems
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open: %s", errText(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %s", errText(err))
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return b, nil
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

func (l *loader) syntaxProblem(err error) Problem {
	msg := err.Error()
	line := 1
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		if m[1] != "" {
			line, _ = strconv.Atoi(m[1])
		}
		msg = msg[len(m[0]):]
	}
	return Problem{File: l.file, Line: line, Message: "invalid YAML: " + msg}
}

var nodeType = reflect.TypeOf(yaml.Node{})

// walk checks n against the shape of t: unknown keys and wrong kinds of
// value, each reported with its key path and line. It records the line of
// every key it sees.
func (l *loader) walk(n *yaml.Node, t reflect.Type, path string, line int) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nodeType || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			l.typeError(n, path, line, "must be a mapping of keys to values")
			return
		}
		seen := map[string]int{}
		// kept collects the entries that were not reported, so that
		// decoding the pruned tree neither fails on them nor repeats them.
		kept := make([]*yaml.Node, 0, len(n.Content))
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			name := k.Value
			if name == "" {
				name = "(empty key)"
			}
			key := join(path, name)
			if first, dup := seen[k.Value]; dup {
				l.bad[key] = true
				l.add(key, k.Line, false, "key %q appears twice (first on line %d)", k.Value, first)
				continue
			}
			seen[k.Value] = k.Line
			f, ok := fieldByTag(t, k.Value)
			if !ok {
				l.bad[key] = true
				l.add(key, k.Line, false, "unknown key %q", k.Value)
				continue
			}
			kept = append(kept, k, v)
			l.lines[key] = k.Line
			l.walk(v, f.Type, key, k.Line)
		}
		n.Content = kept
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			l.typeError(n, path, line, "must be a list")
			return
		}
		for i, e := range n.Content {
			key := fmt.Sprintf("%s[%d]", path, i)
			l.lines[key] = e.Line
			l.walk(e, t.Elem(), key, e.Line)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			l.typeError(n, path, line, "must be a single value, not a list or mapping")
		}
	}
}

func (l *loader) typeError(n *yaml.Node, path string, line int, msg string) {
	l.bad[path] = true
	l.add(path, line, false, "%s", msg)
	prune(n)
}

// prune turns a reported value into null, so that decoding the rest of the
// tree neither fails on it nor reports it twice.
func prune(n *yaml.Node) {
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (l *loader) add(key string, line int, warning bool, format string, args ...any) {
	// A problem quotes what the file says, but never much of it: a policy
	// file is reviewed data, not a place to smuggle text into logs.
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = clip(s)
		}
	}
	l.problems = append(l.problems, Problem{File: l.file, Key: clipKey(key), Line: line, Message: fmt.Sprintf(format, args...), Warning: warning})
}

// maxQuoted bounds how much of a value a problem repeats.
const maxQuoted = 64

func clip(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// clipKey shortens each segment of a key path and names an empty key.
func clipKey(key string) string {
	if key == "" {
		return ""
	}
	parts := strings.Split(key, ".")
	for i, p := range parts {
		if p == "" {
			parts[i] = "(empty key)"
		} else {
			parts[i] = clip(p)
		}
	}
	return strings.Join(parts, ".")
}

// errorf reports an error at key, on the line of the key or, when it is
// missing, of its closest present parent.
func (l *loader) errorf(key, format string, args ...any) {
	l.add(key, lineOf(l.lines, key), false, format, args...)
}

func (l *loader) warnf(key, format string, args ...any) {
	l.add(key, lineOf(l.lines, key), true, format, args...)
}

func lineOf(lines map[string]int, key string) int {
	for {
		if n, ok := lines[key]; ok && n > 0 {
			return n
		}
		if key == "" {
			return 1
		}
		key = parent(key)
	}
}

// parent strips the last element of a key path: "a.b[2]" -> "a.b" -> "a" -> "".
func parent(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}

func (p *Policy) line(key string) int { return lineOf(p.lines, key) }

func (p *Policy) problem(key string, warning bool, format string, args ...any) Problem {
	return Problem{File: p.File, Key: key, Line: p.line(key), Message: fmt.Sprintf(format, args...), Warning: warning}
}

// isBad reports whether key or one of its parents had the wrong type or
// was unknown: problems below it would only repeat the walker's.
func (l *loader) isBad(key string) bool {
	for {
		if l.bad[key] {
			return true
		}
		if key == "" {
			return false
		}
		key = parent(key)
	}
}

// required reports a missing or empty value, unless the walker already
// reported a wrong type there.
func (l *loader) required(key, value, hint string) string {
	v := strings.TrimSpace(value)
	if v == "" && !l.isBad(key) {
		l.errorf(key, "is required: %s", hint)
	}
	return v
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// affiliations is the eduPersonAffiliation vocabulary.
var affiliations = map[string]bool{
	"student": true, "faculty": true, "staff": true, "employee": true,
	"member": true, "affiliate": true, "alum": true, "library-walk-in": true,
}

func (l *loader) validate(raw *rawPolicy, p *Policy, o options) {
	p.Preset = strings.TrimSpace(raw.Preset)
	p.ID = l.required("id", raw.ID, "a short vendor id of a-z, 0-9 and -")
	if p.ID != "" && !idPattern.MatchString(p.ID) {
		l.errorf("id", "%q must be 1-63 characters of a-z, 0-9 and -, starting with a letter or digit", p.ID)
	}
	p.DisplayName = l.required("display_name", raw.DisplayName, "the vendor's or service's name")
	p.Purpose = l.required("purpose", raw.Purpose, "why the vendor needs each attribute")
	p.LegalBasis = l.required("legal_basis", raw.LegalBasis, "the GDPR legal basis of the processing")

	if raw.Agreement == nil {
		if !l.isBad("agreement") {
			l.errorf("agreement", "is required: the data processing agreement's reference and end date")
		}
	} else {
		p.Agreement.Reference = l.required("agreement.reference", raw.Agreement.Reference, "the agreement's reference")
		ends := l.required("agreement.ends", raw.Agreement.Ends, "the agreement's last day, YYYY-MM-DD")
		if ends != "" {
			t, err := time.Parse(time.DateOnly, ends)
			if err != nil {
				l.errorf("agreement.ends", "%q is not a date in the form YYYY-MM-DD", ends)
			} else {
				p.Agreement.Ends = t
				if !p.AgreementActive(o.now) {
					l.warnf("agreement.ends", "the agreement ended on %s: renew it or remove this vendor", ends)
				}
			}
		}
	}

	if raw.SAML == nil && raw.OIDC == nil && !l.isBad("saml") && !l.isBad("oidc") {
		l.errorf("saml", "is required: a vendor needs a saml or an oidc section")
	}
	if raw.SAML != nil {
		p.SAML = l.validateSAML(raw.SAML)
	}
	if raw.OIDC != nil {
		p.OIDC = l.validateOIDC(raw.OIDC, filepath.Dir(l.file), p.ID)
	}

	l.applyPreset(raw)
	l.validateAttributes(raw.Attributes, p)
	if raw.PersonalNumber != nil {
		p.PersonalNumber = l.validateOptIn(raw.PersonalNumber)
	}
	l.validateMasks(raw.Protected, p)
	l.validateEnabledFor(raw.EnabledFor, p)
	p.EPPN = EPPNKind(enum(l, "eppn", raw.EPPN, EPPNShared, EPPNPairwise))
	if !l.isBad("assurance") {
		l.validateAssurance(raw.Assurance, p)
	}
	if p.Preset == PresetDNP {
		l.checkDNP(p)
		l.checkDNPAssurance(p)
	}
}

func (l *loader) validateSAML(raw *rawSAML) *SAMLSettings {
	s := &SAMLSettings{}
	s.EntityID = l.required("saml.entity_id", raw.EntityID, "the vendor's SAML entityID")
	if s.EntityID != "" && !validEntityID(s.EntityID) {
		l.errorf("saml.entity_id", "%q is not an absolute URI of at most 1024 characters", s.EntityID)
	}
	s.NameID = NameIDKind(enum(l, "saml.name_id", raw.NameID, NameIDTransient, NameIDPairwise))
	s.Sign = SignMode(enum(l, "saml.sign", raw.Sign, SignAuto, SignAssertionAndResponse, SignAssertion, SignResponse))
	if strings.TrimSpace(raw.SignatureAlgorithm) != "" {
		// Unset: the method the vendor's metadata announces (alg:SigningMethod)
		// when the organiser has a key for it, else the signing key's own.
		s.SignatureAlgorithm = SignatureAlgorithm(enum(l, "saml.signature_algorithm", raw.SignatureAlgorithm, RSASHA256, ECDSASHA256))
	}
	s.Encrypt = EncryptMode(enum(l, "saml.encrypt", raw.Encrypt, EncryptAuto, EncryptNever, EncryptRequired, EncryptCBC))
	return s
}

// enum returns value, or the first (default) choice when value is empty,
// and reports a value that is not one of choices.
func enum[T ~string](l *loader, key, value string, choices ...T) string {
	value = strings.TrimSpace(value)
	if value == "" {
		return string(choices[0])
	}
	names := make([]string, len(choices))
	for i, c := range choices {
		if string(c) == value {
			return value
		}
		names[i] = string(c)
	}
	l.errorf(key, "unknown value %q; use one of %s", value, strings.Join(names, ", "))
	return value
}

func validEntityID(s string) bool {
	if len(s) > 1024 || strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Host != "" || u.Opaque != "")
}

func (l *loader) validateAttributes(raw []rawRule, p *Policy) {
	seen := map[string]int{}
	for i, r := range raw {
		key := fmt.Sprintf("attributes[%d]", i)
		name := l.required(key+".name", r.Name, "an attribute name from the attribute table")
		if name == "" {
			continue
		}
		def, ok := attr.Lookup(name)
		if !ok {
			l.errorf(key+".name", "unknown attribute %q", name)
			continue
		}
		if j, dup := seen[def.Name]; dup {
			l.errorf(key+".name", "attribute %s is listed twice (also attributes[%d])", def.Name, j)
			continue
		}
		seen[def.Name] = i
		if def.Kind == attr.PersonalNumber {
			l.errorf(key+".name", "%s is a personal number: release it only through the personal_number opt-in", def.Name)
			continue
		}
		rule := Rule{Def: def}
		if r.Values != nil && !l.isBad(key+".values") {
			rule.Values = l.validateValues(key+".values", def, r.Values)
		}
		p.Attributes = append(p.Attributes, rule)
	}
}

func (l *loader) validateValues(key string, def attr.Def, values []string) []string {
	if def.Kind == attr.Derived {
		l.errorf(key, "%s is computed by the bridge: an allow-list of values makes no sense", def.Name)
		return nil
	}
	if len(values) == 0 {
		l.errorf(key, "is empty; leave values out to release every value")
		return nil
	}
	out := make([]string, 0, len(values))
	for i, v := range values {
		vkey := fmt.Sprintf("%s[%d]", key, i)
		v = strings.TrimSpace(v)
		switch {
		case v == "":
			l.errorf(vkey, "is empty")
			continue
		case def.Kind == attr.Scoped && strings.Contains(v, "@"):
			l.errorf(vkey, "%q: give the unscoped value; the bridge adds its own scope", v)
			continue
		case (def.Name == attr.ScopedAffiliation || def.Name == attr.Affiliation) && !affiliations[v]:
			l.errorf(vkey, "unknown affiliation %q; use student, faculty, staff, employee, member, affiliate, alum or library-walk-in", v)
			continue
		}
		out = append(out, v)
	}
	return out
}

func (l *loader) validateOptIn(raw *rawOptIn) *PersonalNumberOptIn {
	const key = "personal_number"
	o := &PersonalNumberOptIn{}
	name := l.required(key+".attribute", raw.Attribute, "personalIdentityNumber or norEduPersonNIN")
	o.LegalBasis = l.required(key+".legal_basis", raw.LegalBasis, "the legal basis for releasing personal numbers to this vendor")
	o.Reason = l.required(key+".reason", raw.Reason, "why this vendor cannot work with a pseudonym")
	l.warnf(key, "this vendor may receive personal numbers (never for protected persons); review the legal basis and reason")
	if name == "" {
		return nil
	}
	def, ok := attr.Lookup(name)
	switch {
	case !ok:
		l.errorf(key+".attribute", "unknown attribute %q", name)
		return nil
	case def.Kind != attr.PersonalNumber:
		l.errorf(key+".attribute", "%s is not a personal number attribute; use personalIdentityNumber or norEduPersonNIN", def.Name)
		return nil
	}
	o.Def = def
	return o
}
