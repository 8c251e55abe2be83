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
	// AuditDir is the release log directory, for subject access.
	AuditDir string
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
		Entitlement:   o.Entitlement,
		SecureCookies: s.secureCookies,
		Logger:        s.log,
		Now:           s.now,
		Rand:          s.rand,
	}
	if s.store != nil {
		d.PersonalNumbersInValues = func(ctx context.Context) ([]admin.DroppedAttribute, error) {
			es, err := pnrvalues.Recent(ctx, org.Store, org.ID, s.now())
			var out []admin.DroppedAttribute
			for _, e := range es {
				out = append(out, admin.DroppedAttribute(e))
			}
			return out, err
		}
	}
	if s.store != nil {
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
	if org.AuditKeys != nil && o.AuditDir != "" {
		keys := org.AuditKeys
		d.AdminSubject = keys.Key
		d.SubjectAccess = func(ctx context.Context, pnr identity.PersonalNumber) (admin.SubjectResult, error) {
			res, err := audit.Scan(ctx, o.AuditDir, keys.KeyForPersonalNumber(pnr))
			if err != nil {
				return admin.SubjectResult{}, err
			}
			out := admin.SubjectResult{FilesScanned: res.Files, SkippedLines: res.Skipped}
			for _, r := range res.Records {
				out.Records = append(out.Records, admin.SubjectRecord(r))
			}
			return out, nil
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
