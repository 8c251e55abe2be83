//go:build !linux

package bench

import (
	"errors"
	"time"
)

// threadCPU, processCPU, pidCPU, pidSwitches and rss read Linux interfaces; elsewhere
// the bench reports these figures as unavailable.
func threadCPU() (time.Duration, bool)    { return 0, false }
func processCPU() (time.Duration, bool)   { return 0, false }
func pidCPU(int) (time.Duration, bool)    { return 0, false }
func pidSwitches(int) (uint64, bool)      { return 0, false }
func rss(int) (cur, peak uint64, ok bool) { return 0, 0, false }

func limitCPU(int, float64) (func(), error) {
	return nil, errors.New("bench: --serve-cpus needs Linux cgroups")
}
