// Package units keeps the admin's choice of the school units each vendor
// is switched on for (SECURITY.md case 47), layered over the policy files.
//
// The rule: a vendor's policy file may list school units under
// enabled_for.school_units. When the admin interface has stored a choice
// for the vendor, that choice replaces the file's list (it may be wider or
// narrower, or "every unit"); when it holds none, or the admin reset it,
// the file's list applies. Affiliations always come from the file.
//
// The choice and its change log live together in one store value per
// vendor, so that every instance sharing the store sees a change at the
// next login, without a restart, and a change is never stored without its
// record (who, when, what). With the Redis store the values survive
// restarts; the memory store keeps them until the process ends.
package units

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/store"
)

// Store keys, after the store's own prefix and the organiser's id
// (units/<organiser>/vendor/<vendor>): one value per vendor, and a
// short-lived lock that serialises changes to it across instances.
const (
	keyPrefix  = "/vendor/"
	lockPrefix = "/lock/"
)

// keep is the time to live of a stored choice. The store needs one; a
// choice is meant to last until an admin changes it.
const keep = 100 * 365 * 24 * time.Hour

// lockTTL bounds how long a crashed admin request can hold the lock.
const lockTTL = 10 * time.Second

// MaxChanges is how many changes per vendor the log keeps, newest last.
const MaxChanges = 50

// Actions of a Change.
const (
	// ActionSet enables the vendor for exactly the listed units.
	ActionSet = "set"
	// ActionAll enables the vendor for every unit, whatever the file says.
	ActionAll = "all"
	// ActionReset drops the admin's choice: the policy file applies again.
	ActionReset = "reset"
)

// Errors of Change.
var (
	// ErrBusy: another admin is changing the same vendor right now.
	ErrBusy = errors.New("units: another change is in progress")
	// ErrInvalid: the change is malformed (an unknown action, a unit
	// code that is not 8 digits, an empty set, or no admin named).
	ErrInvalid = errors.New("units: invalid change")
)

// Change is one admin change, as the change log keeps it. It names the
// admin only by the pseudonymous subject key the admin interface derives.
type Change struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Action string    `json:"action"`
	// Units are the units the vendor is enabled for after an ActionSet.
	Units []string `json:"units,omitempty"`
}

// State is what the store holds for one vendor.
type State struct {
	// Override is true when the admin's choice replaces the file's list.
	Override bool `json:"override"`
	// All, with Override, enables every unit; otherwise Units are the
	// enabled units (never empty).
	All   bool     `json:"all,omitempty"`
	Units []string `json:"units,omitempty"`
	// Changes are the most recent changes, oldest first.
	Changes []Change `json:"changes,omitempty"`
}

// Apply returns the policy as it holds now: p itself without an override,
// else a copy whose enabled school units are the admin's choice.
func (s State) Apply(p *policy.Policy) *policy.Policy {
	if !s.Override {
		return p
	}
	if s.All {
		return p.WithSchoolUnits(nil)
	}
	// A stored choice never has an empty set; should one appear, the
	// copy is enabled for no unit (fail closed), not for all.
	return p.WithSchoolUnits(append([]string{}, s.Units...))
}

// Overrides reads and changes one organiser's choices in a store. It
// holds no state of its own, so any number of them may share one store.
type Overrides struct {
	st  store.Store
	key string // "units/<organiser>"
}

// New returns the choices of organiser kept in st. Organisers sharing a
// store never see each other's choices, even for the same vendor id.
func New(st store.Store, organiser string) *Overrides {
	return &Overrides{st: st, key: "units/" + organiser}
}

// Get returns the vendor's state; the zero State when nothing is stored.
// A store error is returned as it is (wrapping store.ErrBackend): a login
// must then fail closed rather than fall back to the file's list.
func (o *Overrides) Get(ctx context.Context, vendor string) (State, error) {
	b, err := o.st.Get(ctx, o.key+keyPrefix+vendor)
	if errors.Is(err, store.ErrNotFound) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("units: get: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		// Unreadable is not "no override": the admin may have narrowed
		// the file's list. Fail closed.
		return State{}, fmt.Errorf("units: %w: stored state unreadable", store.ErrBackend)
	}
	return s, nil
}

// Effective returns p with the admin's choice applied (see State.Apply).
func (o *Overrides) Effective(ctx context.Context, p *policy.Policy) (*policy.Policy, error) {
	s, err := o.Get(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	return s.Apply(p), nil
}

// Change applies c to the vendor's state and appends it to the change
// log, in one store write. c.By must name the admin; for ActionSet,
// c.Units must be one or more 8-digit codes (duplicates are dropped and
// the set is sorted). It returns the new state.
func (o *Overrides) Change(ctx context.Context, vendor string, c Change) (State, error) {
	if c.By == "" || c.At.IsZero() {
		return State{}, fmt.Errorf("%w: no admin or time", ErrInvalid)
	}
	switch c.Action {
	case ActionSet:
		if len(c.Units) == 0 {
			return State{}, fmt.Errorf("%w: empty set", ErrInvalid)
		}
		for _, u := range c.Units {
			if !policy.ValidSchoolUnitCode(u) {
				return State{}, fmt.Errorf("%w: not a school unit code", ErrInvalid)
			}
		}
		c.Units = slices.Compact(slices.Sorted(slices.Values(c.Units)))
	case ActionAll, ActionReset:
		c.Units = nil
	default:
		return State{}, fmt.Errorf("%w: unknown action", ErrInvalid)
	}

	// Read, change and write under a lock, so that two admins' changes
	// (on any instance) cannot lose one another's log entry.
	lock := o.key + lockPrefix + vendor
	if err := o.st.Add(ctx, lock, []byte{1}, lockTTL); err != nil {
		if errors.Is(err, store.ErrExists) {
			return State{}, ErrBusy
		}
		return State{}, fmt.Errorf("units: lock: %w", err)
	}
	defer o.st.Delete(context.WithoutCancel(ctx), lock)

	s, err := o.Get(ctx, vendor)
	if err != nil {
		return State{}, err
	}
	switch c.Action {
	case ActionSet:
		s.Override, s.All, s.Units = true, false, c.Units
	case ActionAll:
		s.Override, s.All, s.Units = true, true, nil
	case ActionReset:
		s.Override, s.All, s.Units = false, false, nil
	}
	s.Changes = append(s.Changes, c)
	if n := len(s.Changes) - MaxChanges; n > 0 {
		s.Changes = append([]Change(nil), s.Changes[n:]...)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return State{}, fmt.Errorf("units: encode: %w", err)
	}
	if err := o.st.Put(ctx, o.key+keyPrefix+vendor, b, keep); err != nil {
		return State{}, fmt.Errorf("units: put: %w", err)
	}
	return s, nil
}

// EffectiveAll returns every policy with the admin's choice applied, in
// the same order (nil entries are dropped).
func (o *Overrides) EffectiveAll(ctx context.Context, policies []*policy.Policy) ([]*policy.Policy, error) {
	out := make([]*policy.Policy, 0, len(policies))
	for _, p := range policies {
		if p == nil {
			continue
		}
		e, err := o.Effective(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Register builds the release register (audit.BuildRegister) from the
// policies as they hold now, the admin's school unit choices applied.
func (o *Overrides) Register(ctx context.Context, policies []*policy.Policy, requested map[string][]string) ([]audit.RegisterRow, error) {
	eff, err := o.EffectiveAll(ctx, policies)
	if err != nil {
		return nil, err
	}
	return audit.BuildRegister(eff, requested), nil
}
