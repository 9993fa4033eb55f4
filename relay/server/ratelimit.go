package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimits is one token bucket per key (a client address, a host):
// burst requests at once, refilled at one per every. The buckets are
// bounded: past keyedLimitsMax keys they are all forgotten, so a flood of
// addresses cannot grow memory without end (it only forgives them).
type keyedLimits struct {
	every time.Duration
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

const keyedLimitsMax = 10000

func newKeyedLimits(every time.Duration, burst int) *keyedLimits {
	return &keyedLimits{every: every, burst: burst, m: map[string]*rate.Limiter{}}
}

// allow takes one token from key's bucket, or says how long to wait (and
// takes nothing: a refused request does not push the wait further out).
func (k *keyedLimits) allow(key string, now time.Time) (time.Duration, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l, ok := k.m[key]
	if !ok {
		if len(k.m) >= keyedLimitsMax {
			clear(k.m)
		}
		l = rate.NewLimiter(rate.Every(k.every), k.burst)
		k.m[key] = l
	}
	res := l.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}

// retryAfter is the Retry-After value of a wait: whole seconds, at least 1.
func retryAfter(wait time.Duration) string {
	return strconv.Itoa(int(wait.Seconds()) + 1)
}

// Per-address budgets of the OAuth endpoints that need no credentials.
// The token endpoint serves device-code polls (one per 5 s per pending
// login) and refreshes; a busy NAT has room. /oauth/authorize is a page a
// person opens; it may fetch a client metadata document, so it is tighter.
const (
	tokenEvery     = 500 * time.Millisecond
	tokenBurst     = 60
	authorizeEvery = 2 * time.Second
	authorizeBurst = 30
	// A CIMD host is fetched at most this often past its burst: the
	// cache (cimdCacheFloor at least) serves repeats, so only a stream
	// of distinct URLs on one host hits this.
	cimdHostEvery = 6 * time.Second
	cimdHostBurst = 10
)

// tooMany answers 429 with Retry-After in the OAuth error format (kind:
// slow_down for a device-code poll, which makes it back off, else
// temporarily_unavailable).
func tooMany(w http.ResponseWriter, wait time.Duration, kind string) {
	w.Header().Set("Retry-After", retryAfter(wait))
	oauthError(w, http.StatusTooManyRequests, kind, "too many requests from this address; try again later")
}
