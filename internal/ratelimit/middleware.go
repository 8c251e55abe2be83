package ratelimit

import (
	"io"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// KeyFunc returns the key a request is limited under. An empty key means
// the request is not limited.
type KeyFunc func(*http.Request) string

// Middleware limits requests by key with l, answering 429 (TooMany) to a
// key that has run out of tokens.
func (l *Limiter) Middleware(key KeyFunc) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k := key(r)
			if k == "" {
				next.ServeHTTP(w, r)
				return
			}
			if ok, retry := l.Allow(k); !ok {
				l.opts.onReject(ReasonRateLimited)
				TooMany(w, retry)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Middleware returns a middleware limiting requests to limit per second
// per key, with bursts of up to burst, on a new Limiter (see New).
func Middleware(key KeyFunc, limit float64, burst int, opts ...Option) (func(http.Handler) http.Handler, error) {
	l, err := New(limit, burst, opts...)
	if err != nil {
		return nil, err
	}
	return l.Middleware(key), nil
}

// TooMany answers 429 with a Retry-After in whole seconds (at least one)
// and a short fixed body. Handlers that limit by something they learn late
// (a vendor, after parsing its request) call it directly.
func TooMany(w http.ResponseWriter, retryAfter time.Duration) {
	secs := int64(math.Ceil(retryAfter.Seconds()))
	if secs < 1 {
		secs = 1
	}
	reject(w, http.StatusTooManyRequests, strconv.FormatInt(secs, 10), "too many requests, try again shortly\n")
}

func reject(w http.ResponseWriter, status int, retryAfter, body string) {
	h := w.Header()
	h.Set("Retry-After", retryAfter)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// MaxInFlight lets at most n requests run at once; the next ones are
// answered 503 with Retry-After: 1 at once, without waiting, so that an
// overloaded bridge keeps its latency for the requests it does take (load
// shedding). n <= 0 disables the cap. Only OnReject of opts is used.
func MaxInFlight(n int, opts ...Option) func(http.Handler) http.Handler {
	return MaxInFlightNew(n, n, nil, opts...)
}

// MaxInFlightNew is MaxInFlight that sheds new work first: a request
// isNew reports as starting new work (a login's first request) is
// admitted only while fewer than newLimit requests are in flight; the
// others (those that carry on work already started, such as the school
// IdP's answer to a login the bridge began) may use all n. Under
// overload the bridge then finishes the logins it started rather than
// refusing their last step after the school IdP and the browser have done
// their part, which would waste all of it. newLimit is clamped to [1, n];
// a nil isNew treats every request alike.
func MaxInFlightNew(n, newLimit int, isNew func(*http.Request) bool, opts ...Option) func(http.Handler) http.Handler {
	o := build(opts)
	newLimit = max(1, min(newLimit, n))
	return func(next http.Handler) http.Handler {
		if n <= 0 {
			return next
		}
		var inFlight atomic.Int64
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			limit := int64(n)
			if isNew != nil && isNew(r) {
				limit = int64(newLimit)
			}
			if inFlight.Add(1) > limit {
				inFlight.Add(-1)
				o.onReject(ReasonOverloaded)
				reject(w, http.StatusServiceUnavailable, "1", "overloaded, try again shortly\n")
				return
			}
			defer inFlight.Add(-1) // also when next panics
			next.ServeHTTP(w, r)
		})
	}
}

// Except applies mw to every request except those for the given exact
// paths, which go straight to the next handler: health checks must not be
// rate limited or shed, or an orchestrator would restart a bridge for
// being busy.
func Except(mw func(http.Handler) http.Handler, paths ...string) func(http.Handler) http.Handler {
	skip := make(map[string]bool, len(paths))
	for _, p := range paths {
		skip[p] = true
	}
	return func(next http.Handler) http.Handler {
		wrapped := mw(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if skip[r.URL.Path] {
				next.ServeHTTP(w, r)
				return
			}
			wrapped.ServeHTTP(w, r)
		})
	}
}
