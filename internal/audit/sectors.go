package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// OIDCSectorHistory reads the release log in dir and returns, for every
// vendor it holds an OIDC release for, the sector kind of the latest such
// release: Event.Sector, or "" for a release written before events
// recorded it (when the sector was the host of the vendor's redirect
// URIs). A missing directory is an empty history. Package sectorpin
// decides from it which sector a vendor had before its pin was made.
func OIDCSectorHistory(ctx context.Context, dir string) (map[string]string, error) {
	files, err := listLogFiles(dir, releasePrefix)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	type last struct {
		at     time.Time
		sector string
	}
	latest := map[string]last{}
	oidc := []byte(`"protocol":"oidc"`)
	released := []byte(`"outcome":"released"`)
	for _, lf := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := os.Open(filepath.Join(dir, lf.name))
		if err != nil {
			return nil, fmt.Errorf("audit: open log file: %w", err)
		}
		r := bufio.NewReaderSize(f, 64<<10)
		for {
			line, tooLong, rerr := readLine(r)
			if !tooLong && bytes.Contains(line, oidc) && bytes.Contains(line, released) {
				var e struct {
					Time     time.Time `json:"time"`
					Vendor   string    `json:"vendor"`
					Protocol string    `json:"protocol"`
					Outcome  string    `json:"outcome"`
					Sector   string    `json:"sector"`
				}
				if json.Unmarshal(line, &e) == nil && e.Vendor != "" && e.Protocol == ProtocolOIDC && e.Outcome == OutcomeReleased {
					if prev, ok := latest[e.Vendor]; !ok || !e.Time.Before(prev.at) {
						latest[e.Vendor] = last{e.Time, e.Sector}
					}
				}
			}
			if errors.Is(rerr, io.EOF) {
				break
			}
			if rerr != nil {
				f.Close()
				return nil, fmt.Errorf("audit: read log file: %w", rerr)
			}
		}
		f.Close()
	}
	out := make(map[string]string, len(latest))
	for v, l := range latest {
		out[v] = l.sector
	}
	return out, nil
}
