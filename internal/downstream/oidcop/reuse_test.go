package oidcop

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/skolbro/skolbro/internal/store"
)

// pauseStore passes every call on to a store. The first call that matches
// (after it has run) stops its caller until release is closed, so that a
// test can hold one redemption between two of its steps while another
// request runs. Later matching calls pass. Deletes of keys that drop
// matches are not done: a revocation the store lost.
type pauseStore struct {
	store.Store
	match   func(op, key string) bool
	drop    func(key string) bool
	paused  atomic.Bool
	reached chan struct{}
	release chan struct{}

	mu        sync.Mutex
	tokenPuts []string // store keys of access tokens put
}

func newPauseStore(inner store.Store, match func(op, key string) bool) *pauseStore {
	return &pauseStore{Store: inner, match: match, reached: make(chan struct{}), release: make(chan struct{})}
}

func (s *pauseStore) after(op, key string) {
	if s.match != nil && s.match(op, key) && s.paused.CompareAndSwap(false, true) {
		close(s.reached)
		<-s.release
	}
}

func (s *pauseStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	err := s.Store.Put(ctx, key, value, ttl)
	if strings.HasPrefix(key, prefixToken) {
		s.mu.Lock()
		s.tokenPuts = append(s.tokenPuts, key)
		s.mu.Unlock()
	}
	s.after("put", key)
	return err
}

func (s *pauseStore) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := s.Store.Get(ctx, key)
	s.after("get", key)
	return v, err
}

func (s *pauseStore) Take(ctx context.Context, key string) ([]byte, error) {
	v, err := s.Store.Take(ctx, key)
	s.after("take", key)
	return v, err
}

func (s *pauseStore) Delete(ctx context.Context, key string) error {
	if s.drop != nil && s.drop(key) {
		return nil
	}
	return s.Store.Delete(ctx, key)
}

// tokensStored returns the store keys of the access tokens put so far.
func (s *pauseStore) tokensStored() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokenPuts...)
}

// TestCase28_ReuseDuringRedemptionRevokes holds the first redemption of a
// code at each step between taking the code and answering, presents the
// code again meanwhile, and checks that nothing the first one issued still
// works: either it is refused itself, or its access token is refused at
// userinfo (SECURITY.md case 28).
func TestCase28_ReuseDuringRedemptionRevokes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		pause func(op, key string) bool
		// firstRefused: the first redemption sees the reuse in time and
		// hands out nothing.
		firstRefused bool
		// lostDelete: the reuse's deletion of the token is lost (a store
		// that dropped the write); userinfo must refuse on its own.
		lostDelete bool
	}{
		{"after the take, before anything is stored", op("take", prefixCode), true, false},
		{"after the token is stored, before the used marker", op("put", prefixToken), true, false},
		{"after the used marker, before the revocation check", op("put", prefixUsed), true, false},
		{"after the revocation check, before the answer", op("get", prefixRevoked), false, false},
		{"after the revocation check, and the reuse's delete is lost", op("get", prefixRevoked), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			code := f.code(basicClient, basicRedir)
			ps := newPauseStore(f.store, tt.pause)
			if tt.lostDelete {
				ps.drop = func(key string) bool { return strings.HasPrefix(key, prefixToken) }
			}
			f.p.Store = ps

			type result struct {
				tr  tokenResponse
				err string
			}
			first := make(chan result, 1)
			go func() {
				w := f.postToken(basicTokenForm(code), basicClient, basicSecret)
				var r result
				if w.Code == http.StatusOK {
					r.tr, _ = decodeTokenResponseNoFatal(w.Body.Bytes())
				} else {
					_, r.err = decodeTokenResponseNoFatal(w.Body.Bytes())
				}
				first <- r
			}()
			select {
			case <-ps.reached:
			case <-time.After(10 * time.Second):
				t.Fatal("the first redemption never reached the pause")
			}

			// The second presentation, while the first is held.
			if _, e := decodeTokenResponse(t, f.postToken(basicTokenForm(code), basicClient, basicSecret)); e != CodeInvalidGrant {
				t.Errorf("second presentation: %q, want invalid_grant", e)
			}
			close(ps.release)
			r := <-first

			if tt.firstRefused {
				if r.err != CodeInvalidGrant || r.tr.AccessToken != "" {
					t.Errorf("first redemption: error %q, token issued %v; want invalid_grant and no token", r.err, r.tr.AccessToken != "")
				}
				for _, k := range ps.tokensStored() {
					if _, err := f.store.Get(context.Background(), k); !errors.Is(err, store.ErrNotFound) {
						t.Errorf("the access token the first redemption stored is still in the store (err %v)", err)
					}
				}
				return
			}
			if r.err != "" || r.tr.AccessToken == "" {
				t.Fatalf("first redemption: %q, want tokens (the reuse came after its check)", r.err)
			}
			if w := f.userinfo(r.tr.AccessToken); w.Code != http.StatusUnauthorized {
				t.Errorf("userinfo with the first redemption's token after the reuse: %d, want 401", w.Code)
			}
		})
	}

	t.Run("a token whose code was never reused keeps working", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		tr, e := decodeTokenResponse(t, f.postToken(basicTokenForm(f.code(basicClient, basicRedir)), basicClient, basicSecret))
		if e != "" {
			t.Fatal(e)
		}
		// A reuse of another code does not touch this one.
		other := f.code(basicClient, basicRedir)
		decodeTokenResponse(t, f.postToken(basicTokenForm(other), basicClient, basicSecret))
		decodeTokenResponse(t, f.postToken(basicTokenForm(other), basicClient, basicSecret))
		if w := f.userinfo(tr.AccessToken); w.Code != http.StatusOK {
			t.Errorf("userinfo: %d, want 200", w.Code)
		}
	})
}

func op(name, prefix string) func(string, string) bool {
	return func(o, key string) bool { return o == name && strings.HasPrefix(key, prefix) }
}

// decodeTokenResponseNoFatal is decodeTokenResponse for goroutines, which
// must not call t.Fatal.
func decodeTokenResponseNoFatal(b []byte) (tokenResponse, string) {
	var tr tokenResponse
	if err := json.Unmarshal(b, &tr); err == nil && tr.AccessToken != "" {
		return tr, ""
	}
	var e tokenError
	if err := json.Unmarshal(b, &e); err != nil {
		return tokenResponse{}, "undecodable"
	}
	return tokenResponse{}, e.Error
}

// jitterStore sleeps a random few microseconds before every call, so that
// concurrent redemptions interleave in many orders.
type jitterStore struct{ store.Store }

func jitter() {
	n, _ := rand.Int(rand.Reader, big.NewInt(300))
	time.Sleep(time.Duration(n.Int64()) * time.Microsecond)
}

func (s jitterStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	jitter()
	return s.Store.Put(ctx, key, value, ttl)
}

func (s jitterStore) Get(ctx context.Context, key string) ([]byte, error) {
	jitter()
	return s.Store.Get(ctx, key)
}

func (s jitterStore) Take(ctx context.Context, key string) ([]byte, error) {
	jitter()
	return s.Store.Take(ctx, key)
}

func (s jitterStore) Delete(ctx context.Context, key string) error {
	jitter()
	return s.Store.Delete(ctx, key)
}

// TestCase28_ConcurrentReuseStress presents each of many codes from many
// goroutines at once, with random delays in the store, and checks that at
// most one presentation gets tokens and that, since the code was reused,
// no access token it issued works at userinfo. It runs on the memory store
// and, when SKOLBRO_TEST_REDIS names one, on a real Redis.
func TestCase28_ConcurrentReuseStress(t *testing.T) {
	t.Parallel()
	backends := []struct {
		name string
		make func(t *testing.T, f *fixture) store.Store
	}{
		{"memory", func(t *testing.T, f *fixture) store.Store { return f.store }},
		{"real redis", realRedisStore},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.p.Store = jitterStore{b.make(t, f)}
			const rounds = 60
			issued := 0
			for round := 0; round < rounds; round++ {
				// Few presentations at once leave the first redemption's
				// steps between take and used marker most exposed.
				n := 2 + round%5
				code := f.code(basicClient, basicRedir)
				var (
					wg      sync.WaitGroup
					mu      sync.Mutex
					winners []string
					others  []string
				)
				start := make(chan struct{})
				for i := 0; i < n; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						w := f.postToken(basicTokenForm(code), basicClient, basicSecret)
						tr, e := decodeTokenResponseNoFatal(w.Body.Bytes())
						mu.Lock()
						defer mu.Unlock()
						if w.Code == http.StatusOK {
							winners = append(winners, tr.AccessToken)
						} else if e != CodeInvalidGrant {
							others = append(others, e)
						}
					}()
				}
				close(start)
				wg.Wait()
				if len(others) > 0 {
					t.Fatalf("round %d: errors other than invalid_grant: %v", round, others)
				}
				if len(winners) > 1 {
					t.Fatalf("round %d: %d presentations of one code got tokens", round, len(winners))
				}
				issued += len(winners)
				for _, tok := range winners {
					if w := f.userinfo(tok); w.Code != http.StatusUnauthorized {
						t.Fatalf("round %d: a token of a reused code works at userinfo (%d)", round, w.Code)
					}
				}
			}
			t.Logf("%d of %d reused codes issued a token before the reuse was seen; none of them works", issued, rounds)
		})
	}
}

// realRedisStore returns a store on the Redis named by SKOLBRO_TEST_REDIS
// under a random prefix (its keys expire within the token lifetime). It
// skips without one, except in CI.
func realRedisStore(t *testing.T, _ *fixture) store.Store {
	t.Helper()
	addr := os.Getenv("SKOLBRO_TEST_REDIS")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SKOLBRO_TEST_REDIS is unset; CI must test against a real Redis")
		}
		t.Skip("SKOLBRO_TEST_REDIS is unset: no real Redis to test against")
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	s, err := store.NewRedisFromConfig([]string{addr}, "", "", 0, "", nil, "skolbro-test-oidcop-"+hex.EncodeToString(b[:])+":")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("SKOLBRO_TEST_REDIS=%s does not answer: %v", addr, err)
	}
	return s
}

// TestCase29_ForeignClientCannotBurnCode: a registered client presenting
// another client's code gets invalid_grant, the refusal is logged and
// counted without the code, and the code's own client then redeems it
// (SECURITY.md case 29).
func TestCase29_ForeignClientCannotBurnCode(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var (
		mu      sync.Mutex
		counted []string
	)
	f.p.OnRefusal = func(reason string) {
		mu.Lock()
		defer mu.Unlock()
		counted = append(counted, reason)
	}
	var logs lockedBuffer
	logger := zerolog.New(&logs)

	code := f.code(jwtClientID, jwtRedirect)
	for _, redirect := range []string{basicRedir, jwtRedirect} {
		form := basicTokenForm(code)
		form.Set("redirect_uri", redirect)
		r := httptestPost(testIssuer+PathToken, form.Encode(), "application/x-www-form-urlencoded")
		r.SetBasicAuth(basicClient, basicSecret)
		w := f.do(r.WithContext(logger.WithContext(r.Context())))
		if _, e := decodeTokenResponse(t, w); e != CodeInvalidGrant {
			t.Fatalf("foreign client: %q, want invalid_grant", e)
		}
	}

	tr, e := decodeTokenResponse(t, f.postToken(f.jwtTokenForm(code), "", ""))
	if e != "" {
		t.Fatalf("own client after foreign attempts: %q, want tokens", e)
	}
	if w := f.userinfo(tr.AccessToken); w.Code != http.StatusOK {
		t.Errorf("userinfo with the own client's token: %d, want 200 (a foreign attempt is no reuse)", w.Code)
	}

	mu.Lock()
	got := strings.Join(counted, ",")
	mu.Unlock()
	if got != "oidc_code_other_client,oidc_code_other_client" {
		t.Errorf("refusals counted %q, want two oidc_code_other_client", got)
	}
	out := logs.String()
	if !strings.Contains(out, `"reason":"code_other_client"`) || !strings.Contains(out, `"client_id":"`+basicClient+`"`) {
		t.Errorf("the foreign attempt was not logged with its reason and client:\n%s", out)
	}
	if strings.Contains(out, code) {
		t.Error("the log holds the code")
	}

	t.Run("after the own client redeemed it, a foreign client still revokes nothing", func(t *testing.T) {
		if _, e := decodeTokenResponse(t, f.postToken(basicTokenForm(code), basicClient, basicSecret)); e != CodeInvalidGrant {
			t.Fatalf("foreign client: %q, want invalid_grant", e)
		}
		if w := f.userinfo(tr.AccessToken); w.Code != http.StatusOK {
			t.Errorf("userinfo: %d, want 200", w.Code)
		}
		// The own client's reuse does revoke.
		if _, e := decodeTokenResponse(t, f.postToken(f.jwtTokenForm(code), "", "")); e != CodeInvalidGrant {
			t.Fatalf("own reuse: %q, want invalid_grant", e)
		}
		if w := f.userinfo(tr.AccessToken); w.Code != http.StatusUnauthorized {
			t.Errorf("userinfo after the own client's reuse: %d, want 401", w.Code)
		}
	})
}
