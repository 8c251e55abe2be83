package protection

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/store"
)

// MinRegisterKeyLen is the shortest accepted register key, in bytes.
const MinRegisterKeyLen = 32

// MaxNoteLen is the longest note, in characters.
const MaxNoteLen = 200

// ShortKeyLen is how many hex characters of an entry's key List shows.
const ShortKeyLen = 12

// registerLabel separates register keys from every other MAC under the
// same key. Changing it orphans every entry, so it is fixed forever.
const registerLabel = "skolbro-protect-v1"

// levelManual is the only level the register holds.
const levelManual = "manual"

// Errors of the register. They carry no personal data.
var (
	// ErrRegisterKeyTooShort refuses a key shorter than MinRegisterKeyLen.
	ErrRegisterKeyTooShort = errors.New("protection: register key shorter than 32 bytes")
	// ErrNoPersonalNumber refuses Add or Remove without a number. Status
	// wraps it (with ErrMissing) for a login that carried none: the
	// failure reason is "no_personal_number".
	ErrNoPersonalNumber = errors.New("protection: no personal number")
	// ErrRegisterNotInitialised is returned by every call on a register
	// that is not there as it was created: the Redis hash lost its
	// marker (restart without persistence, failover to a replica that
	// missed the writes, FLUSHDB, eviction) or was never initialised.
	// Lookups then fail, so the Resolver fails closed, and Ready fails.
	// `skolbro protect init` (Command "init") initialises it on purpose.
	ErrRegisterNotInitialised = errors.New("protection: register not initialised: data lost or never created (restore it, or run skolbro protect init)")
	// ErrAlreadyMarked is returned by Add for a person already in the
	// register; the entry is left as it was.
	ErrAlreadyMarked = errors.New("protection: already in the register")
	// ErrNotMarked is returned by Remove for a person not in the register.
	ErrNotMarked = errors.New("protection: not in the register")
	// ErrBadNote refuses a note that is too long, holds control
	// characters, or holds something that looks like a personal number.
	ErrBadNote = errors.New("protection: note refused (at most 200 characters, one line, no personal number)")
)

// looksLikeNumber finds the plain forms of a number even when its Luhn
// digit is wrong: in a note a mistyped number is still one, and refusing
// it costs the admin nothing. identity.ContainsPersonalNumber finds the
// rest (separators inside the date, other dashes, full-width digits).
var looksLikeNumber = regexp.MustCompile(`\d{6,8}[-+ ]?\d{4}`)

// RegisterBackend keeps the register's entries: opaque keys (MACs of
// personal numbers, never the numbers) and small JSON values. A backend
// whose data can vanish without an error (Redis) returns
// ErrRegisterNotInitialised from Get and List when it cannot show that the
// register it holds is the one that was created; a backend that must be
// created first implements Init; one that can tell whether it is usable
// implements Ready(ctx) error.
type RegisterBackend interface {
	// Set stores val under key, replacing any value.
	Set(ctx context.Context, key string, val []byte) error
	// Delete removes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// Get returns the value under key, or store.ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// List returns every entry.
	List(ctx context.Context) (map[string][]byte, error)
}

// Register is the organiser's manual protection markings. It never holds a
// personal number in clear: an entry's key is
// hex(HMAC-SHA256(key, "skolbro-protect-v1" || 12-digit number)), and its
// value is {"level":"manual","added":"YYYY-MM-DD","note":"..."}.
//
// The key is what keeps the numbers secret: personal numbers are few
// enough to be tried one by one, so anyone holding both the key and the
// register can tell who is in it. Keep the key apart from the register's
// storage and its backups.
//
// The register finds a person by personal number only: for a login
// without one, or whose number the mapper dropped, it cannot tell, and
// Status fails (the person is masked).
//
// A Register is safe for concurrent use if its backend is.
type Register struct {
	backend RegisterBackend
	key     []byte
	metrics *Metrics
}

// SetMetrics makes Ready and Status report the register's state to m
// (skolbro_protection_register_ready). Call it before the register is
// used.
func (r *Register) SetMetrics(m *Metrics) { r.metrics = m }

// readier is a backend that can tell whether it is usable.
type readier interface {
	Ready(ctx context.Context) error
}

// Ready returns nil when the register can answer lookups: its backend is
// reachable and holds the register that was created (the Redis marker,
// the register file). Otherwise it returns an error, wrapping
// ErrRegisterNotInitialised or ErrRegisterFileMissing when the data is
// gone; readiness fails on it.
func (r *Register) Ready(ctx context.Context) error {
	var err error
	if b, ok := r.backend.(readier); ok {
		err = b.Ready(ctx)
	}
	r.metrics.registerReady(err == nil)
	if err != nil {
		return fmt.Errorf("protection: register not ready: %w", err)
	}
	return nil
}

var _ Source = (*Register)(nil)

// NewRegister returns a register on backend under key (at least
// MinRegisterKeyLen bytes; it is copied).
func NewRegister(backend RegisterBackend, key []byte) (*Register, error) {
	if len(key) < MinRegisterKeyLen {
		return nil, ErrRegisterKeyTooShort
	}
	return &Register{backend: backend, key: append([]byte(nil), key...)}, nil
}

// Entry is one marking as List shows it.
type Entry struct {
	// Key is the first ShortKeyLen hex characters of the entry's key.
	Key string
	// Added is the date the marking was added, YYYY-MM-DD.
	Added string
	// Note is the admin's note, if any.
	Note string
}

// entryValue is an entry's stored value.
type entryValue struct {
	Level string `json:"level"`
	Added string `json:"added"`
	Note  string `json:"note,omitempty"`
}

// keyFor is the entry key of a personal number.
func (r *Register) keyFor(pnr identity.PersonalNumber) string {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(registerLabel))
	m.Write([]byte(pnr.RevealPersonalNumber()))
	return hex.EncodeToString(m.Sum(nil))
}

// ShortKey returns the shortened entry key of pnr, as List and Command
// show it, so that an admin can find an entry without the number.
func (r *Register) ShortKey(pnr identity.PersonalNumber) string {
	return shorten(r.keyFor(pnr))
}

func shorten(key string) string {
	if len(key) > ShortKeyLen {
		return key[:ShortKeyLen]
	}
	return key
}

// Name returns "register".
func (r *Register) Name() string { return SourceRegister }

// Status returns ProtectionManual for a person in the register and
// ProtectionNone for a person with a personal number who is not in it. An
// entry whose value cannot be read still counts: its presence is the
// marking.
//
// It fails (so the Resolver fails closed) when it cannot tell: for a
// login without a personal number (ErrNoPersonalNumber), for one whose
// number the mapper dropped and whose kept number, if any, is not in the
// register (ErrPersonalNumberDropped), both wrapping ErrMissing; and when
// the register itself cannot answer (ErrRegisterNotInitialised,
// ErrRegisterFileMissing, a backend error).
func (r *Register) Status(ctx context.Context, id *identity.Identity) (identity.Protection, error) {
	if id.PersonalNumber.IsZero() {
		if id.PersonalNumberDropped {
			return identity.ProtectionUnknown, fmt.Errorf("protection: register: %w: %w", ErrPersonalNumberDropped, ErrMissing)
		}
		return identity.ProtectionUnknown, fmt.Errorf("protection: register: nothing to look up: %w: %w", ErrNoPersonalNumber, ErrMissing)
	}
	_, err := r.backend.Get(ctx, r.keyFor(id.PersonalNumber))
	r.metrics.registerReady(err == nil || errors.Is(err, store.ErrNotFound))
	switch {
	case err == nil:
		return identity.ProtectionManual, nil
	case errors.Is(err, store.ErrNotFound) && id.PersonalNumberDropped:
		// The kept number is not marked; the dropped one may be.
		return identity.ProtectionUnknown, fmt.Errorf("protection: register: %w: %w", ErrPersonalNumberDropped, ErrMissing)
	case errors.Is(err, store.ErrNotFound):
		return identity.ProtectionNone, nil
	default:
		return identity.ProtectionUnknown, fmt.Errorf("protection: register lookup: %w", err)
	}
}

// Add marks pnr as protected, dated now, with an optional note. The note
// is free text the admin typed: never a name or a personal number (a note
// that looks like a number is refused). A person already marked is left as
// they were and ErrAlreadyMarked is returned. A register that is not
// initialised is refused (ErrRegisterNotInitialised): adding one person
// must not quietly recreate a register whose other markings were lost.
func (r *Register) Add(ctx context.Context, pnr identity.PersonalNumber, note string, now time.Time) error {
	if pnr.IsZero() {
		return ErrNoPersonalNumber
	}
	note = strings.TrimSpace(note)
	if err := checkNote(note); err != nil {
		return err
	}
	key := r.keyFor(pnr)
	switch _, err := r.backend.Get(ctx, key); {
	case err == nil:
		return ErrAlreadyMarked
	case errors.Is(err, store.ErrNotFound), errors.Is(err, ErrRegisterFileMissing):
		// Not marked yet; a missing register file is created by Set.
	default:
		return fmt.Errorf("protection: register add: %w", err)
	}
	val, err := json.Marshal(entryValue{Level: levelManual, Added: now.Format(time.DateOnly), Note: note})
	if err != nil {
		return fmt.Errorf("protection: register add: %w", err)
	}
	if err := r.backend.Set(ctx, key, val); err != nil {
		return fmt.Errorf("protection: register add: %w", err)
	}
	return nil
}

// Remove deletes the marking of pnr, or returns ErrNotMarked.
func (r *Register) Remove(ctx context.Context, pnr identity.PersonalNumber) error {
	if pnr.IsZero() {
		return ErrNoPersonalNumber
	}
	key := r.keyFor(pnr)
	switch _, err := r.backend.Get(ctx, key); {
	case errors.Is(err, store.ErrNotFound):
		return ErrNotMarked
	case err != nil:
		return fmt.Errorf("protection: register remove: %w", err)
	}
	if err := r.backend.Delete(ctx, key); err != nil {
		return fmt.Errorf("protection: register remove: %w", err)
	}
	return nil
}

// List returns every marking, oldest first, with shortened keys. An entry
// whose value cannot be read is listed with Added "?".
func (r *Register) List(ctx context.Context) ([]Entry, error) {
	all, err := r.backend.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("protection: register list: %w", err)
	}
	entries := make([]Entry, 0, len(all))
	for key, val := range all {
		e := Entry{Key: shorten(key), Added: "?"}
		var v entryValue
		if json.Unmarshal(val, &v) == nil && v.Added != "" {
			e.Added, e.Note = v.Added, v.Note
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Added != entries[j].Added {
			return entries[i].Added < entries[j].Added
		}
		return entries[i].Key < entries[j].Key
	})
	return entries, nil
}

// checkNote refuses what must not be in a note: more than MaxNoteLen
// characters, invalid UTF-8, control characters (they would break the
// list's lines) and anything that looks like a personal number, written in
// any of the ways identity.ContainsPersonalNumber knows.
func checkNote(note string) error {
	if !utf8.ValidString(note) || utf8.RuneCountInString(note) > MaxNoteLen {
		return ErrBadNote
	}
	for _, c := range note {
		if unicode.IsControl(c) {
			return ErrBadNote
		}
	}
	if looksLikeNumber.MatchString(note) || identity.ContainsPersonalNumber(note) {
		return ErrBadNote
	}
	return nil
}
