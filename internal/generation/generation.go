// Package generation keeps, for one organiser, which identity generation
// each person's pseudonyms derive from.
//
// Skolverket's advice for a pupil who becomes protected is a new identity:
// a vendor that knew the pupil before must not be able to join the new,
// masked logins to the old, unmasked data. So from the login at which a
// person is first seen protected by a positive marking (any level from any
// source, or the manual register), every pseudonym derives from a new
// generation (pseudonym.Deriver.Generation). The old identifiers are never
// issued again, and unprotection does not bring them back. A person seen
// unprotected during a generation and protected again later gets another.
// An admin can also ask for a new identity (a pupil who must move because
// of a threat); it is issued at the person's next login that carries the
// personal number.
//
// A protection status that could not be determined (identity.
// ProtectionUnknown: a source down or timing out, or no source at all)
// masks the login but starts no generation: an outage must not give
// everyone a new identity.
//
// The records live in the organiser's store namespace, shared by every
// instance, under MACs (pseudonym.Deriver.GenerationKey and RequestKey),
// never a stable id or a personal number:
//
//	gen:s:<key>:<n>    generation n >= 1 began (added once, never changed)
//	gen:s:<key>:<n>:u  the person was seen unprotected during generation n
//	gen:req:<key>      an admin's latest request for a new identity
//	gen:iss:<key>      the latest new identity issued at a login with the number
//
// A generation is claimed with the store's atomic Add and never removed,
// so concurrent logins on several instances agree on it and none can take
// a person back to an earlier one. The records have no real expiry: the
// store must keep them (Redis with persistence and noeviction, as for the
// protection register); the memory store forgets them on restart.
package generation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/pseudonym"
	"github.com/skolbro/skolbro/internal/store"
)

// Keep is the time to live of every record: longer than any person stays
// at a school. The store interface needs one.
const Keep = 100 * 365 * 24 * time.Hour

// MaxGenerations bounds how many new identities one person can be given,
// and so the reads of one login.
const MaxGenerations = 32

// Causes of a new identity.
const (
	// CauseProtected: the person was seen protected for the first time
	// (or again, after being seen unprotected).
	CauseProtected = "protected"
	// CauseRequested: an admin asked for a new identity.
	CauseRequested = "requested"
)

// ErrTooMany is returned when a person already has MaxGenerations
// identities.
var ErrTooMany = errors.New("generation: too many new identities for one person")

// ErrNoKeeper is returned by Request and Status when the organiser has no
// pseudonym key, so no pseudonyms and no generations.
var ErrNoKeeper = errors.New("generation: the organiser has no pseudonym key")

// Keeper reads and starts generations in one organiser's store. A nil
// Keeper gives everyone generation 0. It is safe for concurrent use.
type Keeper struct {
	st   store.Store
	d    *pseudonym.Deriver
	rand io.Reader
}

// New returns a Keeper over the organiser's store namespace and
// pseudonym deriver; nil when either is missing.
func New(st store.Store, d *pseudonym.Deriver) *Keeper {
	if st == nil || d == nil {
		return nil
	}
	return &Keeper{st: st, d: d, rand: rand.Reader}
}

// claim is the value of gen:s:<key>:<n>.
type claim struct {
	At    time.Time `json:"t"`
	Cause string    `json:"c"`
	// Request is the id of the latest admin request this generation
	// covers, carried over from generation to generation.
	Request string `json:"r,omitempty"`
}

// request is the value of gen:req:<key>.
type request struct {
	ID string    `json:"id"`
	At time.Time `json:"t"`
}

// issued is the value of gen:iss:<key>.
type issued struct {
	At      time.Time `json:"t"`
	Cause   string    `json:"c"`
	Request string    `json:"r,omitempty"`
}

// Login is what ForLogin decided.
type Login struct {
	// Generation is the one the login's pseudonyms derive from.
	Generation int
	// Started is the cause when this login began the generation, else "".
	Started string
}

// positive reports a marking a source stated: Unknown (fail closed) is
// not one.
func positive(p identity.Protection) bool {
	return p != identity.ProtectionNone && p != identity.ProtectionUnknown
}

// ForLogin returns the generation for a login of id, whose Protection is
// decided, starting a new one when the person is protected by a positive
// marking for the first time in the current generation's life (at once
// for generation 0, else only after having been seen unprotected in it),
// or when an admin's request for the person's personal number is not yet
// covered. Any store failure is returned: the caller must fail the login
// closed rather than guess a generation.
func (k *Keeper) ForLogin(ctx context.Context, id *identity.Identity, now time.Time) (Login, error) {
	if k == nil || id == nil || id.StableID.IsZero() {
		return Login{}, nil
	}
	sk := k.d.GenerationKey(id.StableID)
	// The first generation's claim and an admin's request are read
	// together, in one round trip with Redis: most people have neither.
	keys := []string{claimKey(sk, 1)}
	if !id.PersonalNumber.IsZero() {
		keys = append(keys, requestKey(k.d.RequestKey(id.PersonalNumber)))
	}
	vals, err := store.GetMany(ctx, k.st, keys...)
	if err != nil {
		return Login{}, fmt.Errorf("generation: %w", err)
	}
	g, cur := 0, (*claim)(nil)
	if vals[0] != nil {
		first := decodeClaim(vals[0])
		if g, cur, err = k.current(ctx, sk, 1, &first); err != nil {
			return Login{}, err
		}
	}
	var req *request
	if len(vals) > 1 && vals[1] != nil {
		req = decodeRequest(vals[1])
	}
	covered := ""
	if cur != nil {
		covered = cur.Request
	}
	cause := ""
	switch {
	case req != nil && req.ID != covered:
		cause = CauseRequested
		covered = req.ID
	case positive(id.Protection) && g == 0:
		cause = CauseProtected
	case positive(id.Protection):
		seen, err := k.exists(ctx, unprotectedKey(sk, g))
		if err != nil {
			return Login{}, err
		}
		if seen {
			cause = CauseProtected
		}
	}
	started := ""
	if cause != "" {
		if !id.PersonalNumber.IsZero() {
			// Written before the claim: should the claim fail, the next
			// login starts the generation and writes this again, so the
			// admin page never misses a new identity.
			if err := k.put(ctx, issuedKey(k.d.RequestKey(id.PersonalNumber)), issued{At: now.UTC(), Cause: cause, Request: covered}); err != nil {
				return Login{}, err
			}
		}
		var won bool
		if g, won, err = k.start(ctx, sk, g, claim{At: now.UTC(), Cause: cause, Request: covered}); err != nil {
			return Login{}, err
		}
		if won {
			started = cause
		}
	}
	if id.Protection == identity.ProtectionNone && g > 0 {
		// Remembered so that a later marking starts another generation:
		// vendors have now seen this generation unmasked.
		key := unprotectedKey(sk, g)
		seen, err := k.exists(ctx, key)
		if err != nil {
			return Login{}, err
		}
		if !seen {
			if err := k.st.Add(ctx, key, []byte{1}, Keep); err != nil && !errors.Is(err, store.ErrExists) {
				return Login{}, fmt.Errorf("generation: %w", err)
			}
		}
	}
	return Login{Generation: g, Started: started}, nil
}

// current probes gen:s:<sk>:<n> upwards from from+1 and returns the
// highest generation that exists and its claim (nil for generation 0).
func (k *Keeper) current(ctx context.Context, sk string, from int, last *claim) (int, *claim, error) {
	for n := from + 1; n <= MaxGenerations+1; n++ {
		b, err := k.st.Get(ctx, claimKey(sk, n))
		if errors.Is(err, store.ErrNotFound) {
			return n - 1, last, nil
		}
		if err != nil {
			return 0, nil, fmt.Errorf("generation: %w", err)
		}
		c := decodeClaim(b)
		last = &c
	}
	return 0, nil, ErrTooMany
}

// decodeClaim reads a claim's value. The claim exists, which is what
// counts; its details are only for the admin page, so an unreadable one
// is an empty claim.
func decodeClaim(b []byte) claim {
	var c claim
	if err := json.Unmarshal(b, &c); err != nil {
		return claim{}
	}
	return c
}

// start claims generation g+1. When another login claimed it first, it
// returns the generation that login (or later ones) made current, and
// won false: the new identity is the same either way.
func (k *Keeper) start(ctx context.Context, sk string, g int, c claim) (int, bool, error) {
	if g+1 > MaxGenerations {
		return 0, false, ErrTooMany
	}
	b, err := json.Marshal(c)
	if err != nil {
		return 0, false, err
	}
	err = k.st.Add(ctx, claimKey(sk, g+1), b, Keep)
	if err == nil {
		return g + 1, true, nil
	}
	if !errors.Is(err, store.ErrExists) {
		return 0, false, fmt.Errorf("generation: %w", err)
	}
	n, _, err := k.current(ctx, sk, g+1, nil)
	return n, false, err
}

func (k *Keeper) exists(ctx context.Context, key string) (bool, error) {
	_, err := k.st.Get(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("generation: %w", err)
}

func (k *Keeper) request(ctx context.Context, rk string) (*request, error) {
	b, err := k.st.Get(ctx, requestKey(rk))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("generation: %w", err)
	}
	return decodeRequest(b), nil
}

// decodeRequest reads a request's value. A request that cannot be read is
// still a request: a fixed id makes it issue one new identity rather than
// none.
func decodeRequest(b []byte) *request {
	var r request
	if err := json.Unmarshal(b, &r); err != nil || r.ID == "" {
		r = request{ID: "unreadable"}
	}
	return &r
}

func (k *Keeper) put(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := k.st.Put(ctx, key, b, Keep); err != nil {
		return fmt.Errorf("generation: %w", err)
	}
	return nil
}

// Status is what the admin interface and `skolbro protect` show about a
// personal number. It holds dates and causes, nothing else.
type Status struct {
	// Requested is when an admin last asked for a new identity; zero if
	// never.
	Requested time.Time
	// Pending is true while that request has not been issued at a login.
	Pending bool
	// Issued is when a new identity was last issued at a login that
	// carried the number, for IssuedCause; zero if none is known.
	Issued      time.Time
	IssuedCause string
}

// Request asks for a new identity for the person with personal number pn:
// it is issued at the person's next login that carries the number. A
// second request before that login is one new identity, not two.
func (k *Keeper) Request(ctx context.Context, pn identity.PersonalNumber, now time.Time) (Status, error) {
	if k == nil {
		return Status{}, ErrNoKeeper
	}
	if pn.IsZero() {
		return Status{}, errors.New("generation: no personal number")
	}
	rk := k.d.RequestKey(pn)
	st, err := k.Status(ctx, pn)
	if err != nil {
		return Status{}, err
	}
	if st.Pending {
		return st, nil
	}
	b := make([]byte, 16)
	if _, err := io.ReadFull(k.rand, b); err != nil {
		return Status{}, fmt.Errorf("generation: request id: %w", err)
	}
	if err := k.put(ctx, requestKey(rk), request{ID: hex.EncodeToString(b), At: now.UTC()}); err != nil {
		return Status{}, err
	}
	return k.Status(ctx, pn)
}

// Status returns what is known about new identities for pn.
func (k *Keeper) Status(ctx context.Context, pn identity.PersonalNumber) (Status, error) {
	if k == nil {
		return Status{}, ErrNoKeeper
	}
	rk := k.d.RequestKey(pn)
	var st Status
	req, err := k.request(ctx, rk)
	if err != nil {
		return Status{}, err
	}
	b, err := k.st.Get(ctx, issuedKey(rk))
	var iss issued
	switch {
	case err == nil:
		_ = json.Unmarshal(b, &iss)
		st.Issued, st.IssuedCause = iss.At, iss.Cause
	case !errors.Is(err, store.ErrNotFound):
		return Status{}, fmt.Errorf("generation: %w", err)
	}
	if req != nil {
		st.Requested = req.At
		st.Pending = iss.Request != req.ID
	}
	return st, nil
}

func claimKey(sk string, n int) string       { return "gen:s:" + sk + ":" + strconv.Itoa(n) }
func unprotectedKey(sk string, n int) string { return claimKey(sk, n) + ":u" }
func requestKey(rk string) string            { return "gen:req:" + rk }
func issuedKey(rk string) string             { return "gen:iss:" + rk }
