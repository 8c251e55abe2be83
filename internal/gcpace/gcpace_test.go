package gcpace

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

const mib = 1 << 20

func TestPercent(t *testing.T) {
	cases := []struct {
		name           string
		live, headroom uint64
		want           int
	}{
		{"nothing measured yet: the minimum heap is the headroom", 0, 64 * mib, 1600},
		{"tiny live heap: bounded by the runtime's minimum heap", 2 * mib, 64 * mib, 1650},
		{"small live heap: live plus headroom", 8 * mib, 64 * mib, 800},
		{"live heap as large as the headroom: Go's default", 64 * mib, 64 * mib, 100},
		{"large live heap: never below Go's default", 1 << 30, 64 * mib, 100},
		{"no headroom: Go's default", 8 * mib, 0, 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Percent(c.live, c.headroom)
			if got != c.want {
				t.Fatalf("Percent(%d MiB, %d MiB) = %d, want %d", c.live/mib, c.headroom/mib, got, c.want)
			}
			// The goal the runtime derives from it: never below its own
			// default, and past live plus headroom (beyond rounding) only
			// where the default is.
			goal := max(heapMinimum*uint64(got)/100, c.live+c.live*uint64(got)/100)
			def := max(heapMinimum, 2*c.live)
			if goal < def {
				t.Errorf("goal %d MiB is below Go's default goal %d MiB", goal/mib, def/mib)
			}
			if bound := max(def, c.live+c.headroom+c.live/100+heapMinimum/100); goal > bound {
				t.Errorf("goal %d MiB is past live %d MiB plus headroom %d MiB", goal/mib, c.live/mib, c.headroom/mib)
			}
		})
	}
}

func gogc() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestStartLeavesAnOperatorsGOGC(t *testing.T) {
	t.Setenv("GOGC", "150")
	before := gogc()
	if p := Start(64 * mib); p != nil {
		p.Stop()
		t.Fatal("Start paced the collector although GOGC is set")
	}
	if got := gogc(); got != before {
		t.Fatalf("GOGC changed from %d to %d", before, got)
	}
}

// settle runs collections until the pacer, after one of them, has set a
// GOGC that ok accepts.
func settle(t *testing.T, p *Pacer, want string, ok func(int) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(5 * time.Millisecond) // the cleanup runs after the collection
		if pc := p.Percent(); ok(pc) && gogc() == pc {
			return
		}
	}
	t.Fatalf("GOGC is %d (the pacer set %d), want %s", gogc(), p.Percent(), want)
}

// changes returns how many times p has changed GOGC.
func changes(p *Pacer) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sets
}

var keep []byte

func TestPacerFollowsTheLiveHeap(t *testing.T) {
	if v, set := os.LookupEnv("GOGC"); set {
		os.Unsetenv("GOGC")
		t.Cleanup(func() { os.Setenv("GOGC", v) })
	}
	before := gogc()
	p := Start(64 * mib)
	if p == nil {
		t.Fatal("Start did not pace the collector with GOGC unset")
	}
	defer p.Stop()

	settle(t, p, "at least 400 with a small live heap", func(pc int) bool { return pc >= 400 })

	// A live heap larger than the headroom brings Go's default pace back.
	keep = make([]byte, 96*mib)
	for i := range keep {
		keep[i] = 1
	}
	settle(t, p, "100 with 96 MiB live", func(pc int) bool { return pc == 100 })

	keep = nil
	settle(t, p, "at least 400 once the large heap is freed", func(pc int) bool { return pc >= 400 })

	p.Stop()
	sets := changes(p)
	runtime.GC()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if gogc() != before {
		t.Fatalf("Stop left GOGC at %d, want %d", gogc(), before)
	}
	if changes(p) != sets {
		t.Fatal("the pacer changed GOGC after Stop")
	}
}
