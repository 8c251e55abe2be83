// Package gcpace lets the heap of a server with a small live heap grow by
// a fixed headroom before the garbage collector runs again.
//
// With Go's default (GOGC=100) the collector runs when the heap has grown
// by as much as was live after the last collection, and at 4 MB at the
// least. The bridge keeps a few MB live and allocates a few hundred KB per
// login, so by default it collects every few logins: under load that is a
// tenth of its CPU (issue 13). A fixed headroom keeps the collector's work
// proportional to the logins, while a large live heap (a hub with big
// federation aggregates) keeps the default pace, so memory does not grow
// by a multiple of it.
package gcpace

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultHeadroom is how far the heap may grow past the live heap before
// the next collection, when nothing else is set.
const DefaultHeadroom = 32 << 20

// heapMinimum is the runtime's smallest heap goal at GOGC=100. It scales
// with GOGC, so a large GOGC over a tiny live heap would otherwise set a
// goal far past the headroom.
const heapMinimum = 4 << 20

// Percent returns the GOGC value that lets a heap with live bytes live
// grow by headroom before the next collection, and never less than Go's
// default of 100. A live heap of 0 means none has been measured yet.
func Percent(live, headroom uint64) int {
	goal := float64(live) + float64(headroom)
	p := goal * 100 / heapMinimum
	if live > 0 {
		p = math.Min(p, float64(headroom)*100/float64(live))
	}
	if p < 100 {
		return 100
	}
	return int(math.Ceil(p))
}

// Pacer re-sets GOGC after every collection from the live heap it left.
type Pacer struct {
	headroom uint64
	original int

	mu      sync.Mutex
	stopped bool
	percent int
	sets    int // changes of GOGC, for tests
	sample  []metrics.Sample
}

// sentinel is an object nothing refers to: its cleanup runs after each
// collection, and re-arms with a new one. It holds a pointer so that it is
// never placed in the tiny allocator's shared blocks.
type sentinel struct{ _ *byte }

// Start paces the collector with headroom unless the environment sets GOGC
// (an operator's choice wins). It returns nil in that case. A memory limit
// (GOMEMLIMIT) still applies: the collector runs at the limit whatever
// GOGC says.
func Start(headroom uint64) *Pacer {
	if _, set := os.LookupEnv("GOGC"); set {
		return nil
	}
	p := &Pacer{headroom: headroom, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	p.original = debug.SetGCPercent(100)
	debug.SetGCPercent(p.original)
	p.adjust()
	p.arm()
	return p
}

// arm allocates a sentinel whose cleanup adjusts the pace after the next
// collection.
func (p *Pacer) arm() {
	runtime.AddCleanup(&sentinel{}, func(p *Pacer) {
		if p.adjust() {
			p.arm()
		}
	}, p)
}

// adjust sets GOGC from the live heap the last collection left, and says
// whether the pacer still runs.
func (p *Pacer) adjust() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	metrics.Read(p.sample)
	var live uint64
	if p.sample[0].Value.Kind() == metrics.KindUint64 {
		live = p.sample[0].Value.Uint64()
	}
	if pc := Percent(live, p.headroom); pc != p.percent {
		debug.SetGCPercent(pc)
		p.percent = pc
		p.sets++
	}
	return true
}

// Percent returns the GOGC value the pacer set last.
func (p *Pacer) Percent() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.percent
}

// Stop ends the pacing and restores the GOGC value from before Start.
func (p *Pacer) Stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		p.stopped = true
		debug.SetGCPercent(p.original)
	}
}
