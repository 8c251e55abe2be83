// Package pnrvalues keeps a small record of which upstream attributes had
// values dropped because they held a personal number (a mail address or
// login name built from it, a display name with it), so that `skolbro
// check` and the admin's release preview can tell the admin which upstream
// attributes to fix at the source.
//
// The record is per organiser and holds attribute names, a count and the
// time last seen: no value, no person, no request. It lives in the store
// under one key that expires Window after the last write, so that it says
// "recent" and nothing accumulates for good.
package pnrvalues

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/skolbro/skolbro/internal/store"
)

// Window is how long an attribute stays in the record after it was last
// seen.
const Window = 30 * 24 * time.Hour

// Bounds on the record: the names come from the organiser's own IdP, but a
// misbehaving one must not grow the record without end.
const (
	maxAttributes = 64
	maxNameLen    = 256
)

const keyPrefix = "pnr-in-value:"

// Key is the store key of organiser's record.
func Key(organiser string) string { return keyPrefix + organiser }

// Entry is one upstream attribute in the record.
type Entry struct {
	// Attribute is the upstream attribute's name as the IdP sent it.
	Attribute string `json:"attribute"`
	// Count is how many values were dropped since the record began. Two
	// instances writing at the same moment can lose one's update, so it
	// is a lower bound; LastSeen is what matters.
	Count    int64     `json:"count"`
	LastSeen time.Time `json:"last_seen"`
}

// Record adds one dropped value for each name in attributes (a name may
// repeat, once per value) to organiser's record, as seen at now.
func Record(ctx context.Context, st store.Store, organiser string, attributes []string, now time.Time) error {
	if len(attributes) == 0 {
		return nil
	}
	entries, err := load(ctx, st, organiser)
	if err != nil {
		return err
	}
	now = now.UTC().Truncate(time.Second)
	index := map[string]int{}
	for i, e := range entries {
		index[e.Attribute] = i
	}
	for _, a := range attributes {
		if len(a) > maxNameLen {
			a = a[:maxNameLen]
		}
		i, ok := index[a]
		if !ok {
			i = len(entries)
			index[a] = i
			entries = append(entries, Entry{Attribute: a})
		}
		entries[i].Count++
		entries[i].LastSeen = now
	}
	entries = prune(entries, now)
	b, err := json.Marshal(entries)
	if err != nil {
		return fmt.Errorf("pnrvalues: %w", err)
	}
	if err := st.Put(ctx, Key(organiser), b, Window); err != nil {
		return fmt.Errorf("pnrvalues: record: %w", err)
	}
	return nil
}

// Recent returns organiser's record as of now, sorted by attribute name:
// the attributes seen within Window. An empty record is not an error.
func Recent(ctx context.Context, st store.Store, organiser string, now time.Time) ([]Entry, error) {
	entries, err := load(ctx, st, organiser)
	if err != nil {
		return nil, err
	}
	entries = prune(entries, now)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Attribute < entries[j].Attribute })
	return entries, nil
}

func load(ctx context.Context, st store.Store, organiser string) ([]Entry, error) {
	b, err := st.Get(ctx, Key(organiser))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("pnrvalues: read: %w", err)
	}
	var entries []Entry
	if err := json.Unmarshal(b, &entries); err != nil {
		// A record that cannot be read is started afresh: it is a hint
		// for the admin, not state any decision depends on.
		return nil, nil
	}
	return entries, nil
}

// prune drops entries last seen more than Window before now and keeps at
// most maxAttributes, the most recently seen.
func prune(entries []Entry, now time.Time) []Entry {
	out := entries[:0]
	for _, e := range entries {
		if now.Sub(e.LastSeen) < Window {
			out = append(out, e)
		}
	}
	if len(out) > maxAttributes {
		sort.SliceStable(out, func(i, j int) bool { return out[i].LastSeen.After(out[j].LastSeen) })
		out = out[:maxAttributes]
	}
	return out
}
