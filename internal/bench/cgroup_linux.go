package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupPeriodMicros is the CFS period of a CPU limit: short, so that a
// limited bridge is throttled in small slices rather than stalled for a
// tenth of a second at a time.
const cgroupPeriodMicros = 10000

// limitCPU puts process pid (all its threads) in a new cgroup limited to
// cpus CPUs (CFS quota), so that a load generator sharing the machine can
// offer the bridge more than it can serve. It needs a writable cgroup CPU
// controller (v2 cpu.max, or v1 cpu.cfs_quota_us): in practice root. The
// returned function removes the cgroup once the process has exited.
func limitCPU(pid int, cpus float64) (func(), error) {
	quota := int64(cpus * cgroupPeriodMicros)
	if quota < 1000 {
		return nil, errors.New("bench: --serve-cpus must be at least 0.1")
	}
	name := fmt.Sprintf("skolbro-bench-%d", pid)
	// cgroup v2: one unified hierarchy whose root enables the cpu controller.
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control"); err == nil && strings.Contains(string(b), "cpu") {
		dir := filepath.Join("/sys/fs/cgroup", name)
		if err := joinLimited(dir, pid, map[string]string{"cpu.max": fmt.Sprintf("%d %d", quota, cgroupPeriodMicros)}); err == nil {
			return func() { _ = os.Remove(dir) }, nil
		}
	}
	dir := filepath.Join("/sys/fs/cgroup/cpu", name)
	if err := joinLimited(dir, pid, map[string]string{
		"cpu.cfs_period_us": strconv.Itoa(cgroupPeriodMicros), "cpu.cfs_quota_us": strconv.FormatInt(quota, 10)}); err != nil {
		return nil, fmt.Errorf("bench: --serve-cpus needs a writable cgroup CPU controller (run as root): %w", err)
	}
	return func() { _ = os.Remove(dir) }, nil
}

// joinLimited makes the cgroup dir, writes its limits in order (maps are
// unordered, so the period goes before the quota by name) and moves pid
// into it.
func joinLimited(dir string, pid int, limits map[string]string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	keys := sortedKeys(limits)
	for _, k := range keys {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(limits[k]), 0o644); err != nil {
			_ = os.Remove(dir)
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		_ = os.Remove(dir)
		return err
	}
	return nil
}
