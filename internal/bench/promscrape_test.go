package bench

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// metricsPage is a /metrics page as the bridge writes it: the ACS with two
// status codes, the SSO under a hub organiser's prefix, a route the bench
// does not time, and other families. Counts are cumulative, for the
// bounds 5, 10 and 20 ms and +Inf.
func metricsPage(goroutines int, acs200, acs503, sso [4]float64) string {
	var b strings.Builder
	b.WriteString("# HELP go_goroutines Number of goroutines that currently exist.\n# TYPE go_goroutines gauge\n")
	b.WriteString("go_goroutines " + strconv.Itoa(goroutines) + "\n")
	write := func(route, code string, counts [4]float64) {
		for i, le := range []string{"0.005", "0.01", "0.02", "+Inf"} {
			b.WriteString(nameHTTPDuration + `_bucket{code="` + code + `",route="` + route + `",le="` + le + `"} ` +
				strconv.FormatFloat(counts[i], 'g', -1, 64) + "\n")
		}
		b.WriteString(nameHTTPDuration + `_sum{code="` + code + `",route="` + route + `"} 1.5` + "\n")
		b.WriteString(nameHTTPDuration + `_count{code="` + code + `",route="` + route + `"} ` +
			strconv.FormatFloat(counts[3], 'g', -1, 64) + "\n")
	}
	write("/saml/sp/acs", "200", acs200)
	write("/saml/sp/acs", "503", acs503)
	write("/{organiser}/saml/idp/sso", "302", sso)
	write("/saml/idp/metadata", "200", [4]float64{5, 5, 5, 5})
	return b.String()
}

// TestHandlerPercentiles: the bridge's histogram is read from its
// /metrics page, summed over status codes by endpoint, and the
// percentiles of the requests between two reads interpolated within
// buckets, as Prometheus's histogram_quantile does.
func TestHandlerPercentiles(t *testing.T) {
	before := parseMetrics(strings.NewReader(metricsPage(20, [4]float64{10, 10, 10, 10}, [4]float64{}, [4]float64{7, 7, 7, 7})))
	// Between the reads: 100 ACS requests, 60 under 5 ms, 30 in 5–10 ms,
	// 8 in 10–20 ms, 2 slower (1 of them a 503); 50 SSO requests under
	// 5 ms.
	after := parseMetrics(strings.NewReader(metricsPage(31, [4]float64{70, 100, 108, 109}, [4]float64{0, 0, 0, 1}, [4]float64{57, 57, 57, 57})))
	if after.goroutines != 31 {
		t.Errorf("goroutines = %d, want 31", after.goroutines)
	}
	got := handlerPercentiles(before, after)
	if _, ok := got[epOther]; ok || len(got) != 2 {
		t.Fatalf("endpoints %v, want sso and acs only", got)
	}
	acs := got[epACS]
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if acs.N != 100 {
		t.Errorf("acs N = %d, want 100", acs.N)
	}
	near("acs p50", acs.P50, 5*50.0/60)          // the 50th of 60 in [0, 5]
	near("acs p95", acs.P95, 10+10*(95-90)/8.0)  // the 5th of 8 in (10, 20]
	near("acs p99", acs.P99, 20)                 // in the unbounded bucket: its lower bound
	near("sso p99", got[epSSO].P99, 5*49.5/50.0) // all 50 in [0, 5]
	if got[epSSO].N != 50 {
		t.Errorf("sso N = %d, want 50", got[epSSO].N)
	}
	if got := handlerPercentiles(after, after); len(got) != 0 {
		t.Errorf("no requests between two equal reads, yet %v", got)
	}
}

func TestBucketQuantile(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range []struct {
		q      float64
		bounds []float64
		cum    []float64
		want   float64
	}{
		{0.5, []float64{1, 2, inf}, []float64{0, 10, 10}, 1.5}, // all in (1, 2]
		{0.99, []float64{1, 2, inf}, []float64{100, 100, 100}, 0.99},
		{0.5, []float64{1, 2, inf}, []float64{0, 0, 4}, 2}, // all beyond the last bound
		{1, []float64{1, 2, inf}, []float64{3, 4, 4}, 2},
	} {
		if got := bucketQuantile(tc.q, tc.bounds, tc.cum); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("bucketQuantile(%v, %v, %v) = %v, want %v", tc.q, tc.bounds, tc.cum, got, tc.want)
		}
	}
}
