package store_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/browsertest"
	"github.com/skolbro/skolbro/internal/demo"
	"github.com/skolbro/skolbro/internal/store"
)

// syncLog hands each log line to a channel, safe for the server's
// goroutines.
type syncLog struct{ ch chan string }

func (l *syncLog) Write(p []byte) (int, error) { l.ch <- string(p); return len(p), nil }

// TestCase38_SentinelFailoverDuringLogins runs the demo bridge on the real
// Sentinel set-up (every write confirmed by the replica) and kills the
// master with SIGKILL between logins that keep coming (issue 17 item 6,
// SECURITY.md cases 15 and 38): every login either completes or stops at
// a 503 page, none fails otherwise; the same bridge recovers on the
// promoted replica without a restart; and a SAMLResponse accepted before
// the failover is refused as a replay after it.
func TestCase38_SentinelFailoverDuringLogins(t *testing.T) {
	addrs := store.HAAddrs(t, store.SentinelEnv)
	master := os.Getenv(store.SentinelNameEnv)
	store.WaitForReplica(t, addrs[0], master)
	st, err := store.NewRedisFromConfig(addrs, "", "", 0, master, nil, fmt.Sprintf("skolbro-failover-%d:", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.RequireReplicaAcks(1, time.Second)

	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	d, err := demo.Setup(base, t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 100000)
	h, err := d.HandlerWithStore(zerolog.New(&syncLog{ch: logs}), st)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	defer srv.Close()
	v := d.Vendors[0]
	ctx := context.Background()

	// login runs one login; it returns the status of the page where it
	// stopped (200 when the vendor shows it completed) and the response
	// the school IdP posted to the bridge.
	login := func() (int, url.Values, *browsertest.Browser) {
		b := browsertest.New(srv.Client().Transport)
		start, err := v.LoginURL("rs")
		if err != nil {
			t.Fatal(err)
		}
		p, err := b.Get(ctx, start)
		if err != nil || p.Status != http.StatusOK {
			return p.Status, nil, b // the SSO step could not store the pending login
		}
		if p, err = b.Submit(ctx, p, url.Values{"user": {"anna.a"}}); err != nil || p.Status != http.StatusOK {
			t.Fatalf("school IdP: %v %v", p, err)
		}
		f, err := p.OnlyForm()
		if err != nil {
			t.Fatal(err)
		}
		if p, err = b.Submit(ctx, p, nil); err != nil || p.Status != http.StatusOK {
			return p.Status, f.Fields, b
		}
		if p, err = b.Submit(ctx, p, nil); err != nil || p.Status != http.StatusOK || !strings.Contains(p.Body, "<table>") {
			t.Fatalf("the vendor refused the bridge's answer: %v %v", p, err)
		}
		return http.StatusOK, f.Fields, b
	}

	status, accepted, first := login()
	if status != http.StatusOK {
		t.Fatalf("before the failover: %d", status)
	}
	old := store.MasterAddr(t, addrs[0], master)
	restart := store.KillServer(t, old)
	var ok, unavailable, after int
	restarted := ""
	deadline := time.Now().Add(90 * time.Second)
	for after < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery within 90 s (%d logins ok, %d answered 503)", ok, unavailable)
		}
		if restarted == "" {
			if m := store.MasterAddr(t, addrs[0], master); m != old {
				restart(m) // the crashed server rejoins as the new master's replica
				restarted = m
			}
		}
		switch status, _, _ := login(); status {
		case http.StatusOK:
			ok++
			if restarted != "" {
				after++
			}
		case http.StatusServiceUnavailable:
			unavailable++
			after = 0
			time.Sleep(50 * time.Millisecond)
		default:
			t.Fatalf("a login during the failover stopped with %d, want 200 or 503", status)
		}
	}
	if unavailable == 0 {
		t.Error("no login answered 503 while the master was down: the test did not see the failover")
	}

	// The response accepted before the failover, posted again by the
	// browser it was for.
	p, err := first.Post(ctx, base+"/saml/sp/acs", accepted)
	if err != nil || p.Status == http.StatusOK {
		t.Fatalf("the replayed response: %v %v", p, err)
	}
	t.Logf("%d logins completed and %d answered 503 during the failover from %s to %s", ok, unavailable, old, restarted)
	store.WaitForReplica(t, addrs[0], master)

	// The replay was recognised as one: its assertion id survived.
	var all strings.Builder
	for drained := false; !drained; {
		select {
		case l := <-logs:
			all.WriteString(l)
		default:
			drained = true
		}
	}
	if !strings.Contains(all.String(), `"reason":"replay"`) && !strings.Contains(all.String(), `"reason":"upstream_replay"`) {
		t.Errorf("the replayed response was not refused as a replay: %.2000s", all.String()[max(0, all.Len()-2000):])
	}
}
