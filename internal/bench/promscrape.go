package bench

import (
	"bufio"
	"context"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// nameHTTPDuration is the bridge's request-duration histogram
// (metrics.NameHTTPDuration), by route template and status code.
const nameHTTPDuration = "skolbro_http_request_duration_seconds"

// Where Phase.BridgeServer comes from.
const (
	fromMeter     = "meter"     // the bench's own, around the handlers in this process
	fromHistogram = "histogram" // the bridge's skolbro_http_request_duration_seconds
)

// scrapeBridge reads the bridge's /metrics when it is another process
// whose metrics URL is known.
func (r *runner) scrapeBridge(ctx context.Context) (scrape, bool) {
	if r.br != nil || r.opts.MetricsURL == "" {
		return scrape{}, false
	}
	return scrapeMetrics(ctx, metricsClient, r.opts.MetricsURL)
}

// metricsClient reads the bridge's /metrics.
var metricsClient = &http.Client{Timeout: 2 * time.Second}

// scrape is one read of the bridge's /metrics page: what the bench needs
// of it when the bridge is another process.
type scrape struct {
	goroutines int // go_goroutines; 0 when absent
	// handlers holds the request-duration histogram, its label sets
	// summed by bench endpoint (sso, acs...): upper bound in seconds
	// (+Inf included) -> cumulative count.
	handlers map[string]map[float64]float64
}

// scrapeMetrics reads the Prometheus text page at url; ok is false when
// it cannot be read.
func scrapeMetrics(ctx context.Context, c *http.Client, url string) (s scrape, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return scrape{}, false
	}
	resp, err := c.Do(req)
	if err != nil {
		return scrape{}, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return scrape{}, false
	}
	return parseMetrics(resp.Body), true
}

// parseMetrics reads what scrape holds from a Prometheus text page.
// Lines it does not understand are skipped.
func parseMetrics(r io.Reader) scrape {
	s := scrape{handlers: map[string]map[float64]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				s.goroutines = int(f)
			}
			continue
		}
		labels, ok := strings.CutPrefix(line, nameHTTPDuration+"_bucket{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(labels, "} ")
		if !ok {
			continue
		}
		le, route := label(labels, "le"), label(labels, "route")
		bound, err1 := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
		n, err2 := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err1 != nil || err2 != nil {
			continue
		}
		ep := routeEndpoint(route)
		if s.handlers[ep] == nil {
			s.handlers[ep] = map[float64]float64{}
		}
		s.handlers[ep][bound] += n
	}
	return s
}

// label returns the value of name in a Prometheus label list
// (a="x",b="y"); the bridge's route and code values hold no quotes.
func label(labels, name string) string {
	for part := range strings.SplitSeq(labels, ",") {
		if v, ok := strings.CutPrefix(part, name+`="`); ok {
			return strings.TrimSuffix(v, `"`)
		}
	}
	return ""
}

// routeEndpoint is endpointOf for a route template, which a hub prefixes
// with the organiser's path.
func routeEndpoint(route string) string {
	for _, ep := range endpointPaths {
		if strings.HasSuffix(route, ep.path) {
			return ep.name
		}
	}
	return epOther
}

// handlerPercentiles returns, per endpoint, the percentiles of the
// requests the bridge's histogram counted between before and after, by
// linear interpolation within a bucket (as Prometheus's
// histogram_quantile does), so each is known only to its bucket's width;
// a quantile in the last, unbounded bucket is given as the highest finite
// bound. Max is not known. Endpoints without requests are left out.
func handlerPercentiles(before, after scrape) map[string]Percentiles {
	out := map[string]Percentiles{}
	for ep, cum := range after.handlers {
		if ep == epOther {
			continue
		}
		bounds := make([]float64, 0, len(cum))
		for b := range cum {
			bounds = append(bounds, b)
		}
		slices.Sort(bounds)
		delta := make([]float64, len(bounds))
		for i, b := range bounds {
			delta[i] = cum[b] - before.handlers[ep][b]
		}
		total := delta[len(delta)-1]
		if total <= 0 || !math.IsInf(bounds[len(bounds)-1], 1) {
			continue
		}
		q := func(q float64) float64 { return bucketQuantile(q, bounds, delta) * 1000 }
		out[ep] = Percentiles{N: int(total), P50: q(0.50), P95: q(0.95), P99: q(0.99)}
	}
	return out
}

// bucketQuantile is the q-quantile of cumulative bucket counts cum
// under upper bounds (sorted, the last +Inf), in seconds.
func bucketQuantile(q float64, bounds, cum []float64) float64 {
	rank := q * cum[len(cum)-1]
	lower, below := 0.0, 0.0
	for i, b := range bounds {
		if cum[i] >= rank && cum[i] > below {
			if math.IsInf(b, 1) {
				return lower // Prometheus's answer: the highest finite bound
			}
			return lower + (b-lower)*(rank-below)/(cum[i]-below)
		}
		lower, below = b, cum[i]
	}
	return lower
}
