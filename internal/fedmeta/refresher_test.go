package fedmeta

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skolbro/skolbro/internal/xmlsig"
)

// TestRefresher: entities are looked up across sources in order; a failed
// refresh keeps the last good aggregate until its validUntil, is visible in
// Status and counted by reason; an expired aggregate is no longer used.
func TestRefresher(t *testing.T) {
	t.Parallel()
	c := newClock()
	start := c.Now()
	// Source a: entities idp0, sp1, idp2, sp3, valid for a week.
	srvA := newMetaServer(t, signedAggregate(t, start, 4))
	a := srvA.source(t, c)
	a.Name = "a"
	// Source b: the same entityIDs and more, valid for 30 days.
	bBody := signXML(t, aggregateXML(aggOpts{entities: 6, id: "_b", validUntil: start.Add(30 * 24 * time.Hour)}), signerFor(t, testKeys().operator))
	srvB := newMetaServer(t, bBody)
	b := srvB.source(t, c)
	b.Name = "b"

	if _, err := NewRefresher([]*Source{a, a}, nil); Reason(err) != ReasonConfig {
		t.Errorf("duplicate names: %v, want a config error", err)
	}
	r, err := NewRefresher([]*Source{a, b}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Entity("https://idp0.example.se/idp"); ok {
		t.Error("entity found before any refresh")
	}
	if err := r.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}

	// which returns the source an entity is served from, by comparing the
	// descriptor with each source's aggregate.
	which := func(id string) string {
		ed, ok := r.Entity(id)
		if !ok {
			return ""
		}
		r.mu.RLock()
		defer r.mu.RUnlock()
		for i, st := range r.state {
			if st.agg != nil && st.agg.Entities[id] == ed {
				return r.sources[i].Name
			}
		}
		return "?"
	}
	if got := which("https://idp0.example.se/idp"); got != "a" {
		t.Errorf("idp0 from %q, want the first source a", got)
	}
	if got := which("https://sp5.example.com/saml"); got != "b" {
		t.Errorf("sp5 from %q, want b", got)
	}
	if sc, ok := r.Scopes("https://idp2.example.se/idp"); !ok || !cmp.Equal(sc, []string{"school2.example.se"}) {
		t.Errorf("Scopes = %v, %v", sc, ok)
	}
	if _, ms, ok := r.Vendor("https://sp3.example.com/saml"); !ok || len(ms) != 2 || ms[0] != xmlsig.ECDSASHA256 {
		t.Errorf("SigningMethods = %v, %v; want ECDSA first", ms, ok)
	}
	if _, ms, ok := r.Vendor("https://sp1.example.com/saml"); !ok || ms != nil {
		t.Errorf("SigningMethods of a vendor announcing none = %v, %v", ms, ok)
	}

	// Source a fails: its last-good copy on disk is used.
	c.Set(start.Add(time.Hour))
	srvA.set(http.StatusInternalServerError, nil)
	if err := r.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh with a last-good copy: %v", err)
	}
	want := []Status{
		{
			Source: "a", LastSuccess: start, LastError: ReasonUnreachable,
			ValidUntil: start.Add(7 * 24 * time.Hour), NextRefresh: start.Add(time.Hour + 15*time.Minute),
			FromCache: true, Entities: 4, Failures: map[string]uint64{ReasonUnreachable: 1},
		},
		{
			Source: "b", LastSuccess: start.Add(time.Hour),
			ValidUntil: start.Add(30 * 24 * time.Hour), NextRefresh: start.Add(time.Hour + 6*time.Hour),
			Entities: 6, Failures: map[string]uint64{},
		},
	}
	if diff := cmp.Diff(want, r.Status()); diff != "" {
		t.Errorf("Status (-want +got):\n%s", diff)
	}
	if got := which("https://idp0.example.se/idp"); got != "a" {
		t.Errorf("idp0 from %q after a's failure, want a (last-good copy)", got)
	}

	// Past a's validUntil, nothing of a is used; b still answers.
	c.Set(start.Add(7 * 24 * time.Hour))
	err = r.Refresh(t.Context())
	if Reason(err) != ReasonUnreachable || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("Refresh: %v, want a's unreachable", err)
	}
	if got := which("https://idp0.example.se/idp"); got != "b" {
		t.Errorf("idp0 from %q after a expired, want b", got)
	}
	st := r.Status()[0]
	if st.LastError != ReasonUnreachable || st.Failures[ReasonUnreachable] != 2 {
		t.Errorf("status of a: %+v", st)
	}
	if want := start.Add(7*24*time.Hour + 30*time.Minute); !st.NextRefresh.Equal(want) {
		t.Errorf("second failure retries at %v, want %v (backing off)", st.NextRefresh, want)
	}

	// A bad signature is counted under its own reason.
	srvA.set(http.StatusOK, signXML(t, aggregateXML(aggOpts{entities: 2, id: "_x", validUntil: start.Add(30 * 24 * time.Hour)}), signerFor(t, testKeys().other)))
	_ = r.Refresh(t.Context())
	if got := r.Status()[0].Failures; !cmp.Equal(got, map[string]uint64{ReasonUnreachable: 2, ReasonBadSignature: 1}) {
		t.Errorf("failures %v", got)
	}
}

// TestRefresherRun: Run waits until the next refresh (a Refresh before it
// has loaded the sources), backs off after failures and stops when its
// context ends.
func TestRefresherRun(t *testing.T) {
	t.Parallel()
	c := newClock()
	srv := newMetaServer(t, signedAggregate(t, c.Now(), 2)) // cacheDuration PT1H
	src := srv.source(t, c)
	r, err := NewRefresher([]*Source{src}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waits := make(chan time.Duration)
	resume := make(chan struct{})
	r.sleep = func(ctx context.Context, d time.Duration) error {
		select {
		case waits <- d:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-resume:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := r.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		r.Run(ctx)
		close(done)
	}()

	if d := <-waits; d != time.Hour {
		t.Errorf("after a success Run waits %v, want the cacheDuration 1h", d)
	}
	if n := srv.requests(); n != 1 {
		t.Errorf("%d requests before the first wait, want 1 (Refresh's)", n)
	}
	if _, ok := r.Entity("https://idp0.example.se/idp"); !ok {
		t.Error("entity not available after the first refresh")
	}
	srv.set(http.StatusServiceUnavailable, nil)
	for _, want := range []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour} {
		resume <- struct{}{}
		if d := <-waits; d != want {
			t.Errorf("after a failure Run waits %v, want %v", d, want)
		}
	}
	if n := srv.requests(); n != 4 {
		t.Errorf("%d requests, want 4", n)
	}
	if st := r.Status()[0]; st.Failures[ReasonUnreachable] != 3 || !st.FromCache {
		t.Errorf("status %+v, want 3 unreachable failures and the last-good copy", st)
	}
	cancel()
	<-done
}

// TestMetrics: the refresher's metrics on the Registerer it was given:
// failures by source and reason (zero for reasons not seen), and the
// validUntil of each source that has an aggregate.
func TestMetrics(t *testing.T) {
	t.Parallel()
	c := newClock()
	srv := newMetaServer(t, signedAggregate(t, c.Now(), 2))
	good := srv.source(t, c)
	good.Name = "skolfederation"
	bad := &Source{Name: "empty", URL: srv.URL + "/x", SigningCert: testKeys().other.Cert, HTTPClient: srv.Client(), Now: c.Now}
	reg := prometheus.NewRegistry()
	r, err := NewRefresher([]*Source{good, bad}, reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewRefresher([]*Source{good}, reg); err == nil {
		t.Error("registering a second refresher's metrics on the same registry succeeded")
	}
	_ = r.Refresh(t.Context())

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		MetricValidUntil + " source=skolfederation": float64(c.Now().Add(7 * 24 * time.Hour).Unix()),
	}
	for _, src := range []string{"skolfederation", "empty"} {
		for _, reason := range metricReasons {
			want[MetricRefreshFailures+" reason="+reason+" source="+src] = 0
		}
	}
	want[MetricRefreshFailures+" reason=bad_signature source=empty"] = 1
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}
