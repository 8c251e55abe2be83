// Package sectorpin keeps each OIDC vendor's pairwise sector fixed once a
// bridge has used it, so that no upgrade or configuration edit gives every
// person a new sub at a vendor without the admin saying so.
//
// A vendor's sub derives from its sector (OIDC Core 8.1). Bridges before
// vendor sectors derived the sector from the host of the redirect URIs,
// so vendors on one platform host shared a sub for every person. Today a
// policy without a sector line gets the vendor's own sector, unless the
// organiser served that vendor before: then it keeps the host sector it
// had, until the admin writes sector: vendor. The decision is made once
// and pinned in a file in the organiser's release log directory; the
// release log itself records the sector kind of every OIDC release, so a
// lost pin file is rebuilt to the same decision.
package sectorpin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/skolbro/skolbro/internal/policy"
)

// FileName is the pin file's name in the organiser's audit directory.
const FileName = "oidc-sectors.json"

// Pin is the sector one vendor's subs derive from.
type Pin struct {
	Kind   policy.SectorKind `json:"kind"`
	Sector string            `json:"sector"`
	Since  time.Time         `json:"since"`
	// Why says how the sector was chosen, for the admin reading the file.
	Why string `json:"why"`
}

// Pins maps vendor policy ids to their pins.
type Pins map[string]Pin

type file struct {
	Version int  `json:"version"`
	Vendors Pins `json:"vendors"`
}

// Load reads the pins in dir. A missing file is no pins.
func Load(dir string) (Pins, error) {
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Pins{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sector pins: %w", err)
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
		return nil, fmt.Errorf("sector pins: %s is not a version 1 pin file", path)
	}
	if f.Vendors == nil {
		f.Vendors = Pins{}
	}
	for id, p := range f.Vendors {
		if p.Sector == "" || (p.Kind != policy.SectorVendor && p.Kind != policy.SectorLegacyHost && p.Kind != policy.SectorNamed) {
			return nil, fmt.Errorf("sector pins: %s: vendor %q: no usable pin", path, id)
		}
	}
	return f.Vendors, nil
}

// Save writes pins to dir atomically (a new file renamed over the old
// one, both synced), mode 0600.
func Save(dir string, pins Pins) error {
	b, err := json.MarshalIndent(file{Version: 1, Vendors: pins}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+FileName+".*")
	if err != nil {
		return fmt.Errorf("sector pins: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("sector pins: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("sector pins: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sector pins: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("sector pins: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, FileName)); err != nil {
		return fmt.Errorf("sector pins: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Origins of a vendor's effective sector.
const (
	// OriginPinned: the pin decided (the policy has no sector line).
	OriginPinned = "pinned"
	// OriginNew: no pin and no earlier OIDC release: the vendor's own.
	OriginNew = "new vendor: its own sector"
	// OriginServedBefore: no pin, and the release log shows the vendor
	// was served before vendor sectors: its host sector is kept.
	OriginServedBefore = "served before vendor sectors: the redirect URIs' host is kept"
	// OriginRebuilt: no pin, and the release log's latest release to the
	// vendor was on its own sector.
	OriginRebuilt = "rebuilt from the release log"
	// OriginPolicy: the policy's sector line decided.
	OriginPolicy = "the policy's oidc.sector"
)

// Decision is the effective sector of one OIDC vendor.
type Decision struct {
	Policy *policy.Policy
	Kind   policy.SectorKind
	Sector string
	Origin string
	// Was is the pin the vendor had, when the decision differs from it:
	// every person then gets a new sub at the vendor.
	Was *Pin
	// Problem explains a decision that could not keep the earlier sector.
	Problem string
}

// Changed reports whether the decision gives every person a new sub.
func (d Decision) Changed() bool { return d.Was != nil }

// History returns, per vendor id, the sector kind of its latest OIDC
// release ("" for one logged before releases recorded it); see
// audit.OIDCSectorHistory.
type History func(context.Context) (map[string]string, error)

// Resolve decides the sector of every OIDC policy and sets it on the
// policies whose sector is the default (no sector line). It returns the
// decisions, in policy id order, and the pins to keep (the old ones with
// every decision applied); dirty is true when they differ from pins.
// history is read only if some defaulted vendor has no pin.
func Resolve(ctx context.Context, pols []*policy.Policy, pins Pins, history History, now time.Time) (ds []Decision, next Pins, dirty bool, err error) {
	next = Pins{}
	for id, p := range pins {
		next[id] = p
	}
	var hist map[string]string
	for _, p := range pols {
		if p.OIDC == nil || p.OIDC.Sector == "" && !p.OIDC.SectorDefault {
			continue
		}
		o := p.OIDC
		pin, pinned := pins[p.ID]
		d := Decision{Policy: p}
		switch {
		case !o.SectorDefault:
			d.Kind, d.Sector, d.Origin = o.SectorKind, o.Sector, OriginPolicy
		case pinned:
			d.Kind, d.Sector, d.Origin = pin.Kind, pin.Sector, OriginPinned
		default:
			if hist == nil {
				if hist, err = history(ctx); err != nil {
					return nil, nil, false, err
				}
			}
			kind, served := hist[p.ID]
			switch {
			case !served:
				d.Kind, d.Sector, d.Origin = policy.SectorVendor, o.Sector, OriginNew
			case kind == "" || kind == string(policy.SectorLegacyHost):
				if o.Host == "" {
					d.Kind, d.Sector, d.Origin = policy.SectorVendor, o.Sector, OriginNew
					d.Problem = "served before vendor sectors, but its redirect URIs are now on several hosts: the host sector it had cannot be derived; write that host as oidc.sector to keep it"
				} else {
					d.Kind, d.Sector, d.Origin = policy.SectorLegacyHost, o.Host, OriginServedBefore
				}
			case kind == string(policy.SectorVendor):
				d.Kind, d.Sector, d.Origin = policy.SectorVendor, o.Sector, OriginRebuilt
			default:
				d.Kind, d.Sector, d.Origin = policy.SectorVendor, o.Sector, OriginNew
				d.Problem = "its latest release used a named sector that the policy no longer names: it now gets its own sector"
			}
		}
		if pinned && (pin.Kind != d.Kind || pin.Sector != d.Sector) {
			was := pin
			d.Was = &was
		}
		if o.SectorDefault {
			o.SectorKind, o.Sector = d.Kind, d.Sector
		}
		if !pinned || d.Was != nil {
			next[p.ID] = Pin{Kind: d.Kind, Sector: d.Sector, Since: now.UTC().Truncate(time.Second), Why: d.Origin}
			dirty = true
		}
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].Policy.ID < ds[j].Policy.ID })
	return ds, next, dirty, nil
}
