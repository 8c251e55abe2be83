// Package protection decides whether a person has protected personal data
// (skyddade personuppgifter) by asking several sources and combining their
// answers. Masking itself is done by package release; this package only
// says which level applies.
//
// The sources:
//   - UpstreamAttribute: the securityMarking attribute the school's IdP sent,
//     as package mapping read it;
//   - Register: the organiser's manual markings, the only cover for
//     fingerade personuppgifter, which nothing else flags;
//   - SS12000: the securityMarking of the person in an SS 12000 API.
//
// The bridge fails closed: a source that cannot answer makes the result
// ProtectionUnknown (which release treats as protected) unless another
// source already says the person is protected. The sources keyed by the
// personal number (Register, SS12000) cannot answer for a login without
// one, nor for one whose number the mapper dropped
// (Identity.PersonalNumberDropped).
package protection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/skolbro/skolbro/internal/identity"
)

// Source names, used as the metric label and in Failure.
const (
	SourceUpstreamAttribute = "upstream_attribute"
	SourceRegister          = "register"
	SourceSS12000           = "ss12000"
)

// Failure reasons: fixed strings, safe to log and to use as metric labels.
const (
	ReasonTimeout = "timeout"
	ReasonError   = "error"
	ReasonMissing = "missing"
	// ReasonNoPersonalNumber: a source keyed by the personal number was
	// asked about a login that carried none (or a misconfigured
	// organiser.upstream.personal_number).
	ReasonNoPersonalNumber = "no_personal_number"
	// ReasonPersonalNumberDropped: the upstream sent a personal number the
	// mapper could not keep (two different ones, or one that does not
	// parse); the person may be known under the dropped one.
	ReasonPersonalNumberDropped = "personal_number_dropped"
	// ReasonNotInitialised: the register is not there as it was created
	// (Redis marker or register file missing: data lost, or never
	// initialised with `skolbro protect init`).
	ReasonNotInitialised = "not_initialised"
)

// DefaultSourceTimeout bounds one source's answer when Resolver.SourceTimeout
// is zero.
const DefaultSourceTimeout = 3 * time.Second

// ErrMissing is wrapped by a source's error when it has no status for the
// person at all (no attribute, no such person); the failure reason is
// "missing".
var ErrMissing = errors.New("protection: no status for this person")

// ErrTimeout is wrapped by a source's error when it gave up waiting; the
// failure reason is "timeout". Context deadline errors count as well.
var ErrTimeout = errors.New("protection: source timed out")

// ErrPersonalNumberDropped is wrapped (with ErrMissing) by the error of a
// source keyed by the personal number when the login's
// Identity.PersonalNumberDropped is set and the number it kept, if any,
// does not show the person protected; the failure reason is
// "personal_number_dropped".
var ErrPersonalNumberDropped = errors.New("protection: the upstream's personal number was dropped (two different ones, or one that does not parse)")

// Source says what one source knows about a person's protection. An error
// means the source could not tell; it never carries a personal number.
type Source interface {
	// Name is the source's metric label: "upstream_attribute",
	// "register" or "ss12000".
	Name() string
	// Status returns the person's level according to this source. A nil
	// error comes with a known level (never ProtectionUnknown).
	Status(ctx context.Context, id *identity.Identity) (identity.Protection, error)
}

// Failure is a source that could not answer. Both fields are fixed
// strings, safe to log.
type Failure struct {
	Source string
	Reason string
}

// Resolver asks every source about a person and combines the answers.
//
// Combination, for the sources that answered:
//   - any source saying a protected level: the most protective level any
//     source said wins, whatever the others said or whether they failed;
//   - otherwise, any source failing (or no source at all): Unknown, which
//     is treated as protected;
//   - otherwise (every source said None): None.
//
// Most protective first: Manual, SkyddadFolkbokforing, Sekretessmarkering.
// The manual marking ranks first because it is the organiser's explicit
// decision about this person and the only cover for fingerade
// personuppgifter, the strongest measure of all (it is given when even
// skyddad folkbokföring is not enough); an organiser who marks someone
// expects the policies' rules for "manual" to apply. Every level is masked
// in any case: the order only picks which level's policy rules apply.
type Resolver struct {
	Sources []Source
	// Metrics counts lookups and failures; nil counts nothing.
	Metrics *Metrics
	// SourceTimeout bounds each source's answer; zero means
	// DefaultSourceTimeout. The whole call is also bounded by its ctx.
	SourceTimeout time.Duration
}

type answer struct {
	index  int
	level  identity.Protection
	reason string // "" when the source answered
}

// Resolve asks every source concurrently and combines their answers (see
// Resolver). The failures are returned in source order for the caller to
// log; they hold no personal data. A source that has not answered when its
// timeout or ctx ends is counted as a "timeout" failure and left behind:
// its context is cancelled and its late answer is dropped.
func (r *Resolver) Resolve(ctx context.Context, id *identity.Identity) (identity.Protection, []Failure) {
	if len(r.Sources) == 0 {
		return identity.ProtectionUnknown, nil
	}
	timeout := r.SourceTimeout
	if timeout <= 0 {
		timeout = DefaultSourceTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// Buffered so that a source answering after Resolve returned does not
	// block its goroutine forever.
	answers := make(chan answer, len(r.Sources))
	// The sources get a copy, so that a source still running after a
	// timeout does not race with the caller storing the result in id.
	view := *id
	for i, s := range r.Sources {
		r.Metrics.lookup(s.Name())
		go func() { answers <- ask(ctx, i, s, &view) }()
	}

	got := make([]*answer, len(r.Sources))
collect:
	for range r.Sources {
		select {
		case a := <-answers:
			got[a.index] = &a
		case <-ctx.Done():
			break collect // the sources still out timed out
		}
	}
	// Answers that arrived together with the deadline still count.
	for {
		select {
		case a := <-answers:
			got[a.index] = &a
			continue
		default:
		}
		break
	}

	best := identity.ProtectionNone
	var failures []Failure
	for i, a := range got {
		name := r.Sources[i].Name()
		reason := ReasonTimeout
		if a != nil {
			reason = a.reason
		}
		if reason != "" {
			failures = append(failures, Failure{Source: name, Reason: reason})
			r.Metrics.failure(name, reason)
			continue
		}
		if a.level.Rank() > best.Rank() {
			best = a.level
		}
	}
	switch {
	case best.Protected():
		return best, failures
	case len(failures) > 0:
		return identity.ProtectionUnknown, failures
	default:
		return identity.ProtectionNone, nil
	}
}

// ask runs one source, turning an error, an Unknown answer or a panic into
// a failure reason.
func ask(ctx context.Context, i int, s Source, id *identity.Identity) (a answer) {
	a.index = i
	defer func() {
		if recover() != nil {
			a.level, a.reason = identity.ProtectionUnknown, ReasonError
		}
	}()
	level, err := s.Status(ctx, id)
	switch {
	case err != nil:
		a.reason = reasonFor(ctx, err)
	case level.Rank() < 0:
		// Unknown (or a level this package does not know) is not an
		// answer: the source has no status for the person.
		a.reason = ReasonMissing
	default:
		a.level = level
	}
	return a
}

// reasonFor classifies a source's error into a fixed reason, the most
// specific first.
func reasonFor(ctx context.Context, err error) string {
	switch {
	case errors.Is(err, ErrRegisterNotInitialised), errors.Is(err, ErrRegisterFileMissing):
		return ReasonNotInitialised
	case errors.Is(err, ErrPersonalNumberDropped):
		return ReasonPersonalNumberDropped
	case errors.Is(err, ErrNoPersonalNumber):
		return ReasonNoPersonalNumber
	case errors.Is(err, ErrMissing):
		return ReasonMissing
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil:
		return ReasonTimeout
	default:
		return ReasonError
	}
}

// UpstreamAttribute is the securityMarking attribute of the upstream login,
// as package mapping read it into Identity.Protection. Use it only for an
// upstream configured to send the attribute.
type UpstreamAttribute struct{}

var _ Source = UpstreamAttribute{}

// Name returns "upstream_attribute".
func (UpstreamAttribute) Name() string { return SourceUpstreamAttribute }

// Status returns id.Protection. Unknown (the attribute was missing or held
// a value mapping could not read) is an error wrapping ErrMissing, so that
// it counts as a failure.
func (UpstreamAttribute) Status(_ context.Context, id *identity.Identity) (identity.Protection, error) {
	if id.Protection.Rank() < 0 {
		return identity.ProtectionUnknown, fmt.Errorf("protection: upstream attribute missing or unreadable: %w", ErrMissing)
	}
	return id.Protection, nil
}
