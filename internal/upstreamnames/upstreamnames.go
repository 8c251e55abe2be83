// Package upstreamnames keeps a small record of which attribute names a
// school IdP sent in recent logins, and how the bridge read each (the
// stable id, a personal number, the security marking, a bridge attribute,
// or nothing), so that an admin connecting an IdP can see what it really
// sends (`skolbro inspect`) and `skolbro check` can warn when the
// configured security_marking attribute never arrives (then every person
// is masked).
//
// The record is per organiser and upstream and holds attribute names and
// when each was last seen: no value, no person, no request. It lives in
// the organiser's store namespace under one key that expires Window after
// the last write.
package upstreamnames

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/skolbro/skolbro/internal/mapping"
	"github.com/skolbro/skolbro/internal/store"
)

// Window is how long a name stays in the record after it was last seen.
const Window = 30 * 24 * time.Hour

// Bounds on the record: the names come from the organiser's own IdP, but
// a misbehaving one must not grow the record without end.
const (
	maxAttributes = 128
	maxNameLen    = 256
)

const keyPrefix = "upstream-names:"

// Key is the store key of the record of organiser's upstream.
func Key(organiser, upstream string) string { return keyPrefix + organiser + ":" + upstream }

// Entry is one upstream attribute name in the record.
type Entry struct {
	mapping.NameUse
	LastSeen time.Time `json:"last_seen"`
}

// Record is what an upstream sent in recent logins.
type Record struct {
	// LastLogin is when a login was last recorded.
	LastLogin time.Time `json:"last_login"`
	// Attributes are sorted by name.
	Attributes []Entry `json:"attributes"`
}

// Seen reports whether the record has the attribute configName within
// Window before now, by its name or FriendlyName.
func (r *Record) Seen(configName string) bool {
	for _, e := range r.Attributes {
		if configName != "" && (e.Attribute == configName || e.FriendlyName == configName) {
			return true
		}
	}
	return false
}

// Add records one login's names, as seen at now.
func Add(ctx context.Context, st store.Store, organiser, upstream string, names []mapping.NameUse, now time.Time) error {
	rec, err := load(ctx, st, organiser, upstream)
	if err != nil {
		return err
	}
	now = now.UTC().Truncate(time.Second)
	index := map[string]int{}
	for i, e := range rec.Attributes {
		index[e.Attribute] = i
	}
	for _, n := range names {
		if len(n.Attribute) > maxNameLen {
			n.Attribute = n.Attribute[:maxNameLen]
		}
		if len(n.FriendlyName) > maxNameLen {
			n.FriendlyName = n.FriendlyName[:maxNameLen]
		}
		i, ok := index[n.Attribute]
		if !ok {
			i = len(rec.Attributes)
			index[n.Attribute] = i
			rec.Attributes = append(rec.Attributes, Entry{})
		}
		rec.Attributes[i] = Entry{NameUse: n, LastSeen: now}
	}
	rec.LastLogin = now
	prune(rec, now)
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("upstreamnames: %w", err)
	}
	if err := st.Put(ctx, Key(organiser, upstream), b, Window); err != nil {
		return fmt.Errorf("upstreamnames: record: %w", err)
	}
	return nil
}

// Recent returns the record of organiser's upstream as of now: the names
// seen within Window, sorted. A missing record is an empty one.
func Recent(ctx context.Context, st store.Store, organiser, upstream string, now time.Time) (*Record, error) {
	rec, err := load(ctx, st, organiser, upstream)
	if err != nil {
		return nil, err
	}
	prune(rec, now)
	return rec, nil
}

func load(ctx context.Context, st store.Store, organiser, upstream string) (*Record, error) {
	b, err := st.Get(ctx, Key(organiser, upstream))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &Record{}, nil
	case err != nil:
		return nil, fmt.Errorf("upstreamnames: read: %w", err)
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		// A hint for the admin, not state any decision depends on: start
		// afresh.
		return &Record{}, nil
	}
	return &rec, nil
}

// prune drops names last seen more than Window before now, keeps at most
// maxAttributes (the most recently seen), and sorts by name.
func prune(rec *Record, now time.Time) {
	out := rec.Attributes[:0]
	for _, e := range rec.Attributes {
		if now.Sub(e.LastSeen) < Window {
			out = append(out, e)
		}
	}
	if len(out) > maxAttributes {
		sort.SliceStable(out, func(i, j int) bool { return out[i].LastSeen.After(out[j].LastSeen) })
		out = out[:maxAttributes]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Attribute < out[j].Attribute })
	rec.Attributes = out
	if now.Sub(rec.LastLogin) >= Window {
		rec.LastLogin = time.Time{}
	}
}

// View is an upstream's record read against its mapping: what was sent,
// how it was read, and which configured names never arrived.
type View struct {
	*Record
	// SecurityMarking is the configured security_marking ("" for none);
	// SecurityMarkingSeen says whether it arrived in the record's logins.
	SecurityMarking     string
	SecurityMarkingSeen bool
	// NotSeen are the names the mapping is configured with (stable_id,
	// attributes, personal_number, security_marking) that arrived in none
	// of the record's logins.
	NotSeen []string
}

// NewView reads rec against c.
func NewView(rec *Record, c *mapping.Config) View {
	v := View{Record: rec, SecurityMarking: c.SecurityMarking, SecurityMarkingSeen: rec.Seen(c.SecurityMarking)}
	var want []string
	if c.StableID != mapping.NameID && c.StableID != "sub" {
		want = append(want, c.StableID)
	}
	for from := range c.Attributes {
		want = append(want, from)
	}
	want = append(want, c.PersonalNumber...)
	if c.SecurityMarking != "" {
		want = append(want, c.SecurityMarking)
	}
	sort.Strings(want)
	for i, n := range want {
		if n == "" || i > 0 && want[i-1] == n || rec.Seen(n) {
			continue
		}
		v.NotSeen = append(v.NotSeen, n)
	}
	return v
}
