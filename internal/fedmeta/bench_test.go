package fedmeta

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// BenchmarkLoadLargeAggregate loads a signed aggregate of 3000 SP and IdP
// entities from a file (no network, no cache write): parse with bounds,
// verify the signature, decode every entity. It reports the document size
// (doc-MB), the bytes allocated per load (B/op, and alloc-MB/op) and the
// heap the first load leaves live while its aggregate is still referenced
// (live-MB, over the heap before it), which is roughly what a running
// bridge holds per source.
func BenchmarkLoadLargeAggregate(b *testing.B) {
	c := newClock()
	doc := signedAggregate(b, c.Now(), 3000)
	path := filepath.Join(b.TempDir(), "aggregate.xml")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		b.Fatal(err)
	}
	src := &Source{Name: "bench", URL: path, SigningCert: testKeys().operator.Cert, Now: c.Now}

	var live uint64
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	baseHeap, baseAlloc := ms.HeapAlloc, ms.TotalAlloc
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		agg, err := src.Load(b.Context())
		if err != nil || len(agg.Entities) != 3000 {
			b.Fatalf("Load: %v", err)
		}
		if live == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			live = ms.HeapAlloc - baseHeap
			runtime.KeepAlive(agg)
		}
	}
	b.ReportMetric(float64(len(doc))/1e6, "doc-MB")
	b.ReportMetric(float64(live)/1e6, "live-MB")
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.TotalAlloc-baseAlloc)/1e6/float64(b.N), "alloc-MB/op")
}
