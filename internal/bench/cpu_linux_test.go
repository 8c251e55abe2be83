package bench

import (
	"os"
	"syscall"
	"testing"
)

// pidSwitches counts every thread's context switches: a thread that
// sleeps in the kernel (nanosleep, not Go's timers) is switched out each
// time.
func TestPIDSwitches(t *testing.T) {
	before, ok := pidSwitches(os.Getpid())
	if !ok {
		t.Fatal("pidSwitches could not read this process")
	}
	for range 20 {
		ts := syscall.Timespec{Nsec: 1_000_000}
		_ = syscall.Nanosleep(&ts, nil)
	}
	after, ok := pidSwitches(os.Getpid())
	if !ok || after < before+20 {
		t.Errorf("context switches %d, then %d after 20 sleeps in the kernel", before, after)
	}
	if _, ok := pidSwitches(0); ok {
		t.Error("pidSwitches(0) answered")
	}
}
