package relay

import (
	"math/rand/v2"
	"time"
)

// Backoff computes reconnect waits with "full jitter": the n-th wait in a row
// is uniformly random in [0, min(Cap, Base·2^n)]. Full jitter spreads a crowd
// of bridges that lost the same relay at the same moment, so they do not all
// come back in lock step.
//
// The caller resets it after a connection that stayed up long enough
// (ClientOptions.StableAfter); a relay that accepts and then drops us at once
// therefore still backs off. A Backoff is not safe for concurrent use; the
// client's Run loop owns its one instance.
type Backoff struct {
	Base time.Duration // first bound; zero means BackoffBase
	Cap  time.Duration // largest bound; zero means BackoffCap

	attempt int
	// randN returns a uniform int64 in [0, n); nil means math/rand/v2.
	// Tests replace it to pin the jitter.
	randN func(n int64) int64
}

// maxShift keeps Base·2^n far from overflowing int64 nanoseconds: 2^40·1ns is
// already over 18 minutes, and any sane cap is reached long before.
const maxShift = 40

// Bound is the upper limit of the next wait: min(Cap, Base·2^attempt).
func (b *Backoff) Bound() time.Duration {
	base, limit := b.Base, b.Cap
	if base <= 0 {
		base = BackoffBase
	}
	if limit <= 0 {
		limit = BackoffCap
	}
	n := min(b.attempt, maxShift)
	d := base << n
	if d <= 0 || d > limit || d>>n != base { // overflow guards
		d = limit
	}
	return d
}

// Next returns the wait before the next dial and counts one more failure.
func (b *Backoff) Next() time.Duration {
	bound := b.Bound()
	b.attempt++
	randN := b.randN
	if randN == nil {
		randN = rand.Int64N
	}
	// +1 so the bound itself is reachable: the interval is closed.
	return time.Duration(randN(int64(bound) + 1))
}

// Reset forgets past failures: the next wait is at most Base again.
func (b *Backoff) Reset() { b.attempt = 0 }

// Attempt is how many waits were handed out since the last Reset.
func (b *Backoff) Attempt() int { return b.attempt }
