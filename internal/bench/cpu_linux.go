package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// Clock ids of clock_gettime(2), which package syscall does not name.
const (
	clockProcessCPU = 2 // CLOCK_PROCESS_CPUTIME_ID
	clockThreadCPU  = 3 // CLOCK_THREAD_CPUTIME_ID
)

// cpuClock reads a CPU-time clock. getrusage(RUSAGE_THREAD) would do for
// threads too, but some kernels account it in scheduler ticks, far too
// coarse for one handler call; these clocks count nanoseconds.
func cpuClock(id uintptr) (time.Duration, bool) {
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, id, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}

// threadCPU is the CPU time (user and system) of the calling OS thread.
// Callers lock their goroutine to the thread around the measurement.
func threadCPU() (time.Duration, bool) { return cpuClock(clockThreadCPU) }

// processCPU is the CPU time of this whole process.
func processCPU() (time.Duration, bool) { return cpuClock(clockProcessCPU) }

// clockTick is the unit of /proc/PID/stat times (USER_HZ), 100 on Linux.
const clockTick = 10 * time.Millisecond

// pidCPU is the CPU time of another process: from its CPU-time clock
// (clock_getcpuclockid(3) computes the id as below), else from
// /proc/PID/stat (10 ms resolution).
func pidCPU(pid int) (time.Duration, bool) {
	if pid <= 0 {
		return 0, false
	}
	if d, ok := cpuClock(uintptr(^pid<<3 | 2)); ok {
		return d, true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name may hold spaces: fields start after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// utime and stime are fields 14 and 15 of stat; f[0] is field 3.
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(u+s) * clockTick, true
}

// pidSwitches is the context switches (voluntary and not) of every
// thread of pid so far, from /proc/PID/task/*/status. A thread that
// exits takes its count with it; Go's threads rarely exit.
func pidSwitches(pid int) (uint64, bool) {
	if pid <= 0 {
		return 0, false
	}
	dirs, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, false
	}
	var total uint64
	for _, d := range dirs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, d.Name()))
		if err != nil {
			continue // the thread has just exited
		}
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, ":")
			if !ok || (k != "voluntary_ctxt_switches" && k != "nonvoluntary_ctxt_switches") {
				continue
			}
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
				total += n
			}
		}
	}
	return total, true
}

// rss returns VmRSS and VmHWM (peak) of pid (0: this process), in bytes.
func rss(pid int) (cur, peak uint64, ok bool) {
	p := "/proc/self/status"
	if pid > 0 {
		p = fmt.Sprintf("/proc/%d/status", pid)
	}
	f, err := os.Open(p)
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, found := strings.Cut(sc.Text(), ":")
		if !found {
			continue
		}
		fs := strings.Fields(val)
		if len(fs) != 2 || fs[1] != "kB" {
			continue
		}
		n, err := strconv.ParseUint(fs[0], 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			cur = n << 10
		case "VmHWM":
			peak = n << 10
		}
	}
	return cur, peak, cur > 0
}
