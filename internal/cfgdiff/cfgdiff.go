// Package cfgdiff compares two configuration trees (a configuration file
// with its release policies) for review: what each vendor gets, how it is
// masked, under which agreement, and, flagged loudly, every change that
// gives every person a new identity at a vendor (a NameID kind, an OIDC
// sector, a scope, a stable id or a pseudonym key). It reads files only:
// no network, no store, no key is needed, so that it runs in a
// merge-request check on a checkout.
package cfgdiff

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/pseudonym"
	"github.com/skolbro/skolbro/internal/sectorpin"
)

// Change is one difference.
type Change struct {
	Organiser string `json:"organiser"`
	// Vendor is the release policy's id, "" for the organiser itself.
	Vendor string `json:"vendor,omitempty"`
	// What changed, e.g. "attribute added", "saml.name_id".
	What string `json:"what"`
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
	// Identity marks a change that gives every person a new identity at
	// the vendor (or at every vendor of the organiser).
	Identity bool `json:"identity,omitempty"`
	// Note explains what the change means.
	Note string `json:"note,omitempty"`
}

// Tree is one side: a configuration and each organiser's policies.
type Tree struct {
	Config   *config.Config
	Policies map[string][]*policy.Policy // by organiser id
}

// Load reads the configuration at path and every organiser's policies.
// Problems in either are returned as an error: a diff of a tree that does
// not load would review something no bridge runs.
func Load(path string, now time.Time) (*Tree, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	t := &Tree{Config: cfg, Policies: map[string][]*policy.Policy{}}
	var errs []string
	for _, o := range cfg.Organisers {
		pols, probs := policy.LoadDir(cfg.Path(o.PolicyDir), policy.At(now))
		for _, p := range probs {
			if !p.Warning {
				errs = append(errs, p.String())
			}
		}
		if err := effectiveSectors(cfg, o, pols, now); err != nil {
			errs = append(errs, err.Error())
		}
		t.Policies[o.ID] = pols
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return t, nil
}

// effectiveSectors gives the OIDC vendors without a sector line the
// sector the pins in the tree's audit directory (or its release log)
// give them, reading only (package sectorpin). A checkout without the
// running bridge's audit directory has no pins: there every such vendor
// shows its own sector, and a changed sector line is flagged anyway.
func effectiveSectors(cfg *config.Config, o *config.Organiser, pols []*policy.Policy, now time.Time) error {
	if o.Audit.Dir == "" {
		return nil
	}
	dir := cfg.Path(o.Audit.Dir)
	pins, err := sectorpin.Load(dir)
	if err != nil {
		return err
	}
	_, _, _, err = sectorpin.Resolve(context.Background(), pols, pins, func(ctx context.Context) (map[string]string, error) {
		return audit.OIDCSectorHistory(ctx, dir)
	}, now)
	return err
}

// Diff lists what changes from old to new, organiser by organiser and
// vendor by vendor, in a stable order.
func Diff(old, new *Tree) []Change {
	var out []Change
	for _, id := range organiserIDs(old, new) {
		oo, no := old.Config.OrganiserByID(id), new.Config.OrganiserByID(id)
		switch {
		case oo == nil:
			out = append(out, Change{Organiser: id, What: "organiser added"})
			for _, p := range new.Policies[id] {
				out = append(out, Change{Organiser: id, Vendor: p.ID, What: "vendor added", New: strings.Join(attrNames(p), ", ")})
			}
			continue
		case no == nil:
			out = append(out, Change{Organiser: id, What: "organiser removed", Note: "its vendors are no longer served"})
			continue
		}
		out = append(out, organiserChanges(old, new, oo, no)...)
		olds, news := byID(old.Policies[id]), byID(new.Policies[id])
		for _, vid := range unionKeys(olds, news) {
			op, np := olds[vid], news[vid]
			switch {
			case op == nil:
				out = append(out, Change{Organiser: id, Vendor: vid, What: "vendor added", New: strings.Join(attrNames(np), ", ")})
			case np == nil:
				out = append(out, Change{Organiser: id, Vendor: vid, What: "vendor removed", Note: "logins to it are refused"})
			default:
				out = append(out, vendorChanges(id, op, np)...)
			}
		}
	}
	return out
}

func organiserIDs(a, b *Tree) []string {
	seen := map[string]bool{}
	var ids []string
	for _, t := range []*Tree{a, b} {
		for _, o := range t.Config.Organisers {
			if !seen[o.ID] {
				seen[o.ID] = true
				ids = append(ids, o.ID)
			}
		}
	}
	sort.Strings(ids)
	return ids
}

func byID(pols []*policy.Policy) map[string]*policy.Policy {
	m := map[string]*policy.Policy{}
	for _, p := range pols {
		m[p.ID] = p
	}
	return m
}

func unionKeys(a, b map[string]*policy.Policy) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]*policy.Policy{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

const everyone = "every person gets a new identity at every vendor of the organiser"

// organiserChanges are the organiser-wide changes that decide identities
// and entities.
func organiserChanges(old, new *Tree, oo, no *config.Organiser) []Change {
	id := oo.ID
	var out []Change
	add := func(what, o, n string, identity bool, note string) {
		if o != n {
			out = append(out, Change{Organiser: id, What: what, Old: o, New: n, Identity: identity, Note: note})
		}
	}
	add("scope", oo.Scope, no.Scope, true, "EPPNs and scoped identifiers carry the scope: "+everyone)
	add("root_urls", fmt.Sprint(oo.RootURLs), fmt.Sprint(no.RootURLs), false, "the entityID, issuer and endpoints move: every vendor must be given the new metadata")
	add("pseudonym.key_file", oo.Pseudonym.KeyFile, no.Pseudonym.KeyFile, false, "")
	if of, nf := keyFingerprint(old.Config, oo), keyFingerprint(new.Config, no); of != "" && nf != "" && of != nf {
		out = append(out, Change{Organiser: id, What: "pseudonym key", Old: "key " + of[:8], New: "key " + nf[:8], Identity: true,
			Note: "the pseudonym key's content differs: " + everyone})
	}
	ou, nu := upstreamsByID(oo), upstreamsByID(no)
	for uid, u := range nu {
		if prev, ok := ou[uid]; !ok {
			out = append(out, Change{Organiser: id, What: "upstream added", New: uid})
		} else if prev.StableID != u.StableID {
			out = append(out, Change{Organiser: id, What: "upstream " + uid + " stable_id", Old: prev.StableID, New: u.StableID, Identity: true,
				Note: "pseudonyms derive from the stable id: every person of this upstream gets a new identity at every vendor"})
		} else if prev.SecurityMarking != u.SecurityMarking {
			out = append(out, Change{Organiser: id, What: "upstream " + uid + " security_marking", Old: prev.SecurityMarking, New: u.SecurityMarking,
				Note: "check that the IdP sends this name (skolbro inspect): a name it never sends masks everyone"})
		}
	}
	for uid := range ou {
		if _, ok := nu[uid]; !ok {
			out = append(out, Change{Organiser: id, What: "upstream removed", Old: uid})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].What < out[j].What })
	return out
}

func upstreamsByID(o *config.Organiser) map[string]*config.Upstream {
	m := map[string]*config.Upstream{}
	for _, u := range o.Upstreams {
		m[u.ID] = u
	}
	return m
}

// keyFingerprint identifies the organiser's pseudonym key without
// revealing it, or "" when the file cannot be read (keys are seldom in a
// checkout).
func keyFingerprint(cfg *config.Config, o *config.Organiser) string {
	if o.Pseudonym.KeyFile == "" {
		return ""
	}
	if _, err := os.Stat(cfg.Path(o.Pseudonym.KeyFile)); err != nil {
		return ""
	}
	key, err := pseudonym.LoadKey(cfg.Path(o.Pseudonym.KeyFile))
	if err != nil {
		return ""
	}
	d, err := pseudonym.New(key, o.Scope)
	if err != nil {
		return ""
	}
	return d.Fingerprint()
}

func attrNames(p *policy.Policy) []string {
	var out []string
	for _, r := range p.Attributes {
		out = append(out, r.Def.Name)
	}
	sort.Strings(out)
	return out
}

func ruleString(r policy.Rule) string {
	if r.Values == nil {
		return r.Def.Name
	}
	return r.Def.Name + " [" + strings.Join(r.Values, ", ") + "]"
}

func maskString(m policy.MaskRule) string {
	levels := "every protected level"
	if len(m.Levels) > 0 {
		var ls []string
		for _, l := range m.Levels {
			ls = append(ls, fmt.Sprint(l))
		}
		levels = strings.Join(ls, ", ")
	}
	s := fmt.Sprintf("%s: %s %s", levels, m.Action, m.Def.Name)
	if m.Value != "" {
		s += " = " + m.Value
	}
	return s
}

// vendorChanges compares one vendor's policies.
func vendorChanges(org string, op, np *policy.Policy) []Change {
	var out []Change
	add := func(c Change) {
		c.Organiser, c.Vendor = org, op.ID
		out = append(out, c)
	}
	// Attributes, by name, with their value restrictions.
	or, nr := map[string]string{}, map[string]string{}
	for _, r := range op.Attributes {
		or[r.Def.Name] = ruleString(r)
	}
	for _, r := range np.Attributes {
		nr[r.Def.Name] = ruleString(r)
	}
	for _, n := range sortedKeys(nr) {
		switch o, ok := or[n]; {
		case !ok:
			add(Change{What: "attribute added", New: nr[n]})
		case o != nr[n]:
			add(Change{What: "attribute values", Old: o, New: nr[n]})
		}
	}
	for _, n := range sortedKeys(or) {
		if _, ok := nr[n]; !ok {
			add(Change{What: "attribute removed", Old: or[n]})
		}
	}
	pn := func(p *policy.Policy) string {
		if p.PersonalNumber == nil {
			return ""
		}
		return p.PersonalNumber.Def.Name + " (" + p.PersonalNumber.LegalBasis + ")"
	}
	if o, n := pn(op), pn(np); o != n {
		c := Change{What: "personal_number opt-in", Old: o, New: n}
		if o == "" {
			c.Note = "the vendor now receives the personal number of unprotected persons"
		}
		add(c)
	}
	// Masking.
	om, nm := map[string]bool{}, map[string]bool{}
	for _, m := range op.Protected {
		om[maskString(m)] = true
	}
	for _, m := range np.Protected {
		nm[maskString(m)] = true
	}
	for _, s := range sortedBools(nm) {
		if !om[s] {
			add(Change{What: "masking rule added", New: s})
		}
	}
	for _, s := range sortedBools(om) {
		if !nm[s] {
			add(Change{What: "masking rule removed", Old: s})
		}
	}
	if op.Preset != np.Preset {
		add(Change{What: "preset", Old: op.Preset, New: np.Preset})
	}
	// Agreement.
	if op.Agreement.Reference != np.Agreement.Reference {
		add(Change{What: "agreement.reference", Old: op.Agreement.Reference, New: np.Agreement.Reference})
	}
	if !op.Agreement.Ends.Equal(np.Agreement.Ends) {
		add(Change{What: "agreement.ends", Old: date(op.Agreement.Ends), New: date(np.Agreement.Ends)})
	}
	if op.Purpose != np.Purpose {
		add(Change{What: "purpose", Old: op.Purpose, New: np.Purpose})
	}
	if op.LegalBasis != np.LegalBasis {
		add(Change{What: "legal_basis", Old: op.LegalBasis, New: np.LegalBasis})
	}
	if !reflect.DeepEqual(op.EnabledFor, np.EnabledFor) {
		add(Change{What: "enabled_for", Old: fmt.Sprintf("%+v", op.EnabledFor), New: fmt.Sprintf("%+v", np.EnabledFor)})
	}
	// Identities at the vendor.
	os, ns := op.SAML, np.SAML
	switch {
	case os == nil && ns != nil:
		add(Change{What: "saml added", New: ns.EntityID})
	case os != nil && ns == nil:
		add(Change{What: "saml removed", Old: os.EntityID})
	case os != nil:
		if os.EntityID != ns.EntityID {
			c := Change{What: "saml.entity_id", Old: os.EntityID, New: ns.EntityID}
			if ns.NameID == policy.NameIDPairwise || nr[attr.PairwiseID] != "" {
				c.Identity = true
				c.Note = "pairwise identifiers derive from the vendor's entityID: every person gets a new pairwise-id (and pairwise NameID) at this vendor"
			}
			add(c)
		}
		if os.NameID != ns.NameID {
			add(Change{What: "saml.name_id", Old: string(os.NameID), New: string(ns.NameID), Identity: true,
				Note: "the NameID the vendor keys accounts on changes: every person gets a new identity at this vendor"})
		}
	}
	oo, no := op.OIDC, np.OIDC
	switch {
	case oo == nil && no != nil:
		add(Change{What: "oidc added", New: no.ClientID})
	case oo != nil && no == nil:
		add(Change{What: "oidc removed", Old: oo.ClientID})
	case oo != nil:
		if oo.ClientID != no.ClientID {
			add(Change{What: "oidc.client_id", Old: oo.ClientID, New: no.ClientID})
		}
		switch {
		case oo.Sector != no.Sector || oo.SectorKind != no.SectorKind:
			add(Change{What: "oidc.sector", Old: sector(oo), New: sector(no), Identity: true,
				Note: "the pairwise sub derives from the sector: every person gets a new sub at this vendor"})
		case oo.SectorDefault != no.SectorDefault:
			add(Change{What: "oidc.sector", Old: sector(oo), New: sector(no), Identity: true,
				Note: "the sector line changes: a vendor without one keeps the sector the running bridge pinned for it (run skolbro check on the deployment), " +
					"which may be its old host sector; if it is, every person gets a new sub at this vendor"})
		}
	}
	return out
}

func sector(o *policy.OIDCSettings) string {
	if o.SectorDefault {
		return fmt.Sprintf("%s (%s, no sector line: pinned)", o.Sector, o.SectorKind)
	}
	return fmt.Sprintf("%s (%s)", o.Sector, o.SectorKind)
}

func date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.DateOnly)
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedBools(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
