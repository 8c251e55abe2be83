package server

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/skolbro/skolbro/internal/admin"
	"github.com/skolbro/skolbro/internal/audit"
	"github.com/skolbro/skolbro/internal/identity"
	"github.com/skolbro/skolbro/internal/pnrvalues"
	"github.com/skolbro/skolbro/internal/policy"
	"github.com/skolbro/skolbro/internal/protection"
	"github.com/skolbro/skolbro/internal/release"
	"github.com/skolbro/skolbro/internal/units"
	"github.com/skolbro/skolbro/internal/upstreamnames"
)

// AdminOptions enable the admin web interface.
type AdminOptions struct {
	// Entitlement is the eduPersonEntitlement value an admin must carry.
	Entitlement string
	// PrivacyEntitlement is the further value an admin needs for subject
	// access and the manual protection register; empty: no one may.
	PrivacyEntitlement string
	// AuditDir is the release log directory, for subject access.
	AuditDir string
	// Actions is the admin action log. Without it (or AuditDir) there is
	// no subject access or protection register page: lookups that reveal
	// who is protected are never made unrecorded.
	Actions audit.ActionSink
	// Identities are test identities for the release preview.
	Identities []admin.PreviewIdentity
}

// protocolAdmin marks a pending login that is an admin logging in.
const protocolAdmin = "admin"

// newAdmin builds the admin interface on the organiser's parts: its
// admins see its vendors, releases, log and register, and nothing else.
func (s *Server) newAdmin(org *Organiser) (*admin.Admin, error) {
	o := org.Admin
	rows := func() []audit.RegisterRow {
		requested := map[string][]string{}
		for id, v := range org.IdP.Vendors {
			requested[id] = v.RequestedAttributes
		}
		return s.registerRows(org, org.Policies.All(), requested)
	}
	d := admin.Deps{
		Organiser: org.ID,
		Prefix:    org.Prefix,
		Policies:  org.Policies.All,
		Release: func(p *policy.Policy, id *identity.Identity) *release.Released {
			return release.Release(p, id, org.Deriver)
		},
		Identities: o.Identities,
		RegisterRows: func() []admin.RegisterRow {
			var out []admin.RegisterRow
			for _, r := range rows() {
				out = append(out, admin.RegisterRow(r))
			}
			return out
		},
		RegisterCSV:  func(w io.Writer) error { return audit.WriteRegisterCSV(w, rows()) },
		RegisterJSON: func(w io.Writer) error { return audit.WriteRegisterJSON(w, rows()) },
		Store:        org.Store,
		Units:        units.New(org.Store, org.ID),
		StartLogin: func(w http.ResponseWriter, r *http.Request) {
			s.startLogin(w, r, org, pendingLogin{Protocol: protocolAdmin}, hintsFromQuery(r))
		},
		Entitlement:        o.Entitlement,
		PrivacyEntitlement: o.PrivacyEntitlement,
		SecureCookies:      s.secureCookies,
		Logger:             s.log,
		Now:                s.now,
		Rand:               s.rand,
	}
	if org.Store != nil {
		d.PersonalNumbersInValues = func(ctx context.Context) ([]admin.DroppedAttribute, error) {
			es, err := pnrvalues.Recent(ctx, org.Store, org.ID, s.now())
			var out []admin.DroppedAttribute
			for _, e := range es {
				out = append(out, admin.DroppedAttribute(e))
			}
			return out, err
		}
	}
	if org.Store != nil {
		d.UpstreamNames = func(ctx context.Context) ([]admin.UpstreamNames, error) {
			var out []admin.UpstreamNames
			for _, up := range org.Upstreams {
				rec, err := upstreamnames.Recent(ctx, org.Store, org.ID, up.ID, s.now())
				if err != nil {
					return nil, err
				}
				v := upstreamnames.NewView(rec, up.Mapping)
				un := admin.UpstreamNames{Upstream: up.ID, LastLogin: rec.LastLogin, SecurityMarking: v.SecurityMarking,
					SecurityMarkingSeen: v.SecurityMarkingSeen, NotSeen: v.NotSeen}
				for _, e := range rec.Attributes {
					un.Attributes = append(un.Attributes, admin.UpstreamName{Attribute: e.Attribute, FriendlyName: e.FriendlyName, Use: e.Use, LastSeen: e.LastSeen})
				}
				out = append(out, un)
			}
			return out, nil
		}
	}
	if org.AuditKeys == nil || o.AuditDir == "" || o.Actions == nil {
		return admin.New(d)
	}
	keys := org.AuditKeys
	d.AdminSubject = keys.Key
	d.SubjectKeys = func(pnr identity.PersonalNumber, stableID identity.Secret) []string {
		var out []string
		for _, k := range []string{keys.KeyForPersonalNumber(pnr), keys.KeyForStableID(stableID)} {
			if k != "" {
				out = append(out, k)
			}
		}
		return out
	}
	d.RecordAction = func(ctx context.Context, a admin.Action) error {
		return o.Actions.Write(ctx, audit.AdminAction{TxnID: a.RequestID, Channel: audit.ChannelWeb,
			Admin: a.Admin, Action: a.Action, SubjectKeys: a.SubjectKeys})
	}
	d.SubjectAccess = func(ctx context.Context, subjectKeys []string) (admin.SubjectResult, error) {
		res, err := audit.Scan(ctx, o.AuditDir, subjectKeys...)
		if err != nil {
			return admin.SubjectResult{}, err
		}
		out := admin.SubjectResult{FilesScanned: res.Files, SkippedLines: res.Skipped, LogStart: res.LogStart,
			SingleKeyEvents: res.SingleKeyEvents, SingleKeyUntil: res.SingleKeyUntil}
		for _, r := range res.Records {
			out.Records = append(out.Records, admin.SubjectRecord(r))
		}
		return out, nil
	}
	if gens := org.Generations; gens != nil {
		d.NewIdentity = &admin.NewIdentityDeps{
			Request: func(ctx context.Context, pnr identity.PersonalNumber) (admin.IdentityStatus, error) {
				st, err := gens.Request(ctx, pnr, s.now())
				return admin.IdentityStatus(st), err
			},
			Status: func(ctx context.Context, pnr identity.PersonalNumber) (admin.IdentityStatus, error) {
				st, err := gens.Status(ctx, pnr)
				return admin.IdentityStatus(st), err
			},
		}
	}
	if reg := org.Register; reg != nil {
		d.Protection = &admin.ProtectionDeps{
			Add: func(ctx context.Context, pnr identity.PersonalNumber, note string) (string, error) {
				return reg.ShortKey(pnr), adminErr(reg.Add(ctx, pnr, note, s.now()))
			},
			Remove: func(ctx context.Context, pnr identity.PersonalNumber) (string, error) {
				return reg.ShortKey(pnr), adminErr(reg.Remove(ctx, pnr))
			},
			List: func(ctx context.Context) ([]admin.ProtectionEntry, error) {
				es, err := reg.List(ctx)
				var out []admin.ProtectionEntry
				for _, e := range es {
					out = append(out, admin.ProtectionEntry(e))
				}
				return out, err
			},
		}
	}
	return admin.New(d)
}

// adminErr maps the register's errors onto the admin page's.
func adminErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, protection.ErrAlreadyMarked):
		return errors.Join(admin.ErrAlreadyMarked, err)
	case errors.Is(err, protection.ErrNotMarked):
		return errors.Join(admin.ErrNotMarked, err)
	case errors.Is(err, protection.ErrBadNote):
		return errors.Join(admin.ErrBadNote, err)
	}
	return err
}
