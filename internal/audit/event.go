// Package audit is the bridge's accountability: a log of every release and
// refusal that holds no personal data, subject access over that log, and
// the release register that tells auditors which vendor may receive what
// and why.
//
// An Event carries attribute names, never values: there is no field a
// value could go into, and a Sink refuses an event whose attribute list
// holds anything but names from the attribute table. The person is named
// only by subject keys, HMACs under a separate audit key (see
// SubjectKeyer), so that the log alone identifies nobody while the
// organiser, who holds the key, can still answer a subject access request.
// Admin lookups of a person are recorded the same way, in the admin
// action log beside the release log (ActionLog).
package audit

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/release"
)

// Protocols of the vendor side.
const (
	ProtocolSAML = "saml"
	ProtocolOIDC = "oidc"
)

// Outcomes of a login towards a vendor.
const (
	OutcomeReleased = "released"
	OutcomeRefused  = "refused"
)

// Event is one release or refusal, written as one JSON line. It has no
// field for attribute values, names or personal numbers, by design: a
// test fails if a field is added that could hold one without review.
type Event struct {
	// Time is when the release happened; a sink fills in its own clock
	// when it is zero.
	Time time.Time `json:"time"`
	// TxnID is the request id shown to the user on error pages, so that
	// a support case can be matched to its event.
	TxnID string `json:"txn_id"`
	// Upstream is the id of the upstream IdP.
	Upstream string `json:"upstream"`
	// Vendor is the vendor's policy id, or for a refusal before a policy
	// was found, the entityID or client id the request named.
	Vendor string `json:"vendor"`
	// Protocol is ProtocolSAML or ProtocolOIDC.
	Protocol string `json:"protocol"`
	// Attributes are the released attribute names (friendly names from
	// package attr). Values never appear in an event.
	Attributes []string `json:"attributes"`
	// PolicyVersion is the policy file's hash (policy.Policy.Hash).
	PolicyVersion string `json:"policy_version"`
	// Masked is true when the person was treated as protected.
	Masked bool `json:"masked"`
	// Sector is, for an OIDC release, the kind of pairwise sector the sub
	// derived from (policy.SectorKind: vendor, legacy-host or named), so
	// that the organiser's sector pins can be rebuilt from the log
	// (package sectorpin). A fixed label; empty for SAML and refusals,
	// and in events written before it existed.
	Sector string `json:"sector,omitempty"`
	// Generation is the identity generation the released pseudonyms
	// derive from: 0 (left out) for the person's original identity, n
	// after the n-th new identity (package generation). The subject key
	// does not change with it, so subject access finds every generation.
	Generation int `json:"generation,omitempty"`
	// Outcome is OutcomeReleased or OutcomeRefused.
	Outcome string `json:"outcome"`
	// Reason is a refusal label such as agreement_ended; empty for a
	// release.
	Reason string `json:"reason,omitempty"`
	// SubjectKey is SubjectKeyer.Key of the person (the first of
	// SubjectKeys), or "" when the bridge knew no one (a refusal before
	// login). Files written before SubjectKeys existed carry only this.
	SubjectKey string `json:"subject_key"`
	// SubjectKeys are every key the bridge could derive for the login
	// (SubjectKeyer.Keys: the personal number's, then the stable id's), so
	// that subject access finds the event by either. Omitted when empty.
	SubjectKeys []string `json:"subject_keys,omitempty"`
}

// ReasonAgreementEnded is the refusal label for a vendor whose data
// processing agreement has ended. Other labels follow the same form:
// lower case, digits and underscores.
const ReasonAgreementEnded = "agreement_ended"

// ReasonNotEnabled is the refusal label for a person with no school unit
// (or affiliation) the vendor is enabled for (SECURITY.md case 47).
const ReasonNotEnabled = "not_enabled_for_unit"

// ErrInvalidEvent is returned by a sink for an event it refuses to write.
// The message names the field at fault, never its content.
var ErrInvalidEvent = errors.New("audit: invalid event")

var (
	reasonPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	txnPattern    = regexp.MustCompile(`^[A-Za-z0-9._:-]{0,128}$`)
	hexPattern    = regexp.MustCompile(`^[0-9a-f]*$`)
)

// maxSubjectKeys bounds SubjectKeys: a login yields at most a personal
// number key and a stable id key today; the rest is headroom.
const maxSubjectKeys = 4

// maxGeneration bounds Generation; package generation issues far fewer.
const maxGeneration = 1000

// maxLabel bounds the free-text identifiers (upstream and vendor ids,
// entityIDs) so that one event stays one reasonable line.
const maxLabel = 1024

// Validate checks the shape of every field. It is what makes "names, not
// values" hold for the attribute list: each entry must be a friendly name
// from the attribute table, which no value can be. Reasons are fixed
// labels; keys and versions are hex.
func (e *Event) Validate() error {
	bad := func(field string) error { return fmt.Errorf("%w: %s", ErrInvalidEvent, field) }
	switch e.Protocol {
	case ProtocolSAML, ProtocolOIDC:
	default:
		return bad("protocol")
	}
	switch e.Outcome {
	case OutcomeReleased:
		if e.Reason != "" {
			return bad("reason set on a release")
		}
	case OutcomeRefused:
		if !reasonPattern.MatchString(e.Reason) {
			return bad("reason")
		}
	default:
		return bad("outcome")
	}
	for _, n := range e.Attributes {
		if d, ok := attr.Lookup(n); !ok || d.Name != n {
			return bad("attribute name not in the attribute table")
		}
	}
	if !txnPattern.MatchString(e.TxnID) {
		return bad("txn_id")
	}
	if !label(e.Upstream) {
		return bad("upstream")
	}
	if e.Vendor == "" || !label(e.Vendor) {
		return bad("vendor")
	}
	if len(e.PolicyVersion) > 128 || !hexPattern.MatchString(e.PolicyVersion) {
		return bad("policy_version")
	}
	if e.SubjectKey != "" && !validSubjectKey(e.SubjectKey) {
		return bad("subject_key")
	}
	if len(e.SubjectKeys) > 0 {
		// The keys list the primary key first, each once.
		if len(e.SubjectKeys) > maxSubjectKeys || e.SubjectKeys[0] != e.SubjectKey {
			return bad("subject_keys")
		}
		for i, k := range e.SubjectKeys {
			if !validSubjectKey(k) || slices.Contains(e.SubjectKeys[:i], k) {
				return bad("subject_keys")
			}
		}
	}
	if e.Generation < 0 || e.Generation > maxGeneration {
		return bad("generation")
	}
	switch policy.SectorKind(e.Sector) {
	case "", policy.SectorVendor, policy.SectorLegacyHost, policy.SectorNamed:
	default:
		return bad("sector")
	}
	if e.Sector != "" && (e.Protocol != ProtocolOIDC || e.Outcome != OutcomeReleased) {
		return bad("sector set outside an OIDC release")
	}
	return nil
}

// validSubjectKey accepts what SubjectKeyer makes: 64 lower-case hex digits.
func validSubjectKey(k string) bool {
	return len(k) == subjectKeyHexLen && hexPattern.MatchString(k)
}

// subjectKeys drops empty and repeated keys, keeping the order; nil when
// none is left.
func subjectKeys(keys []string) []string {
	var out []string
	for _, k := range keys {
		if k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// setSubject fills SubjectKey and SubjectKeys from keys.
func (e *Event) setSubject(keys []string) {
	e.SubjectKeys = subjectKeys(keys)
	e.SubjectKey = ""
	if len(e.SubjectKeys) > 0 {
		e.SubjectKey = e.SubjectKeys[0]
	}
}

// hasSubject reports whether the event was logged under key, in either
// the old single-key form or the list.
func (e *Event) hasSubject(key string) bool {
	return key != "" && (e.SubjectKey == key || slices.Contains(e.SubjectKeys, key))
}

// label accepts printable text of bounded length.
func label(s string) bool {
	if len(s) > maxLabel || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// ReleaseEvent describes a release to the vendor of p. It takes the
// release step's output and copies only its attribute names and masking,
// so that no caller has a place to put a value. subjectKeys are every key
// of the person (SubjectKeyer.Keys), the primary one first.
func ReleaseEvent(now time.Time, txnID, upstream, protocol string, p *policy.Policy, r *release.Released, subjectKeys ...string) Event {
	e := Event{
		Time:          now,
		TxnID:         txnID,
		Upstream:      upstream,
		Vendor:        p.ID,
		Protocol:      protocol,
		Attributes:    r.Names(),
		PolicyVersion: p.Hash,
		Masked:        r.Masked,
		Generation:    r.Generation,
		Outcome:       OutcomeReleased,
	}
	if protocol == ProtocolOIDC && p.OIDC != nil {
		e.Sector = string(p.OIDC.SectorKind)
	}
	e.setSubject(subjectKeys)
	return e
}

// RefusalEvent describes a login that released nothing. vendor is the
// policy id when a policy was found, else the entityID or client id the
// request named; p may be nil. reason is a fixed label such as
// agreement_ended. subjectKeys are as for ReleaseEvent; none before login.
func RefusalEvent(now time.Time, txnID, upstream, protocol, vendor string, p *policy.Policy, reason string, subjectKeys ...string) Event {
	e := Event{
		Time:     now,
		TxnID:    txnID,
		Upstream: upstream,
		Vendor:   vendor,
		Protocol: protocol,
		Outcome:  OutcomeRefused,
		Reason:   reason,
	}
	e.setSubject(subjectKeys)
	if p != nil {
		e.Vendor = p.ID
		e.PolicyVersion = p.Hash
	}
	return e
}
