package relay

import (
	"testing"
	"time"
)

func TestBackoffFullJitterBounds(t *testing.T) {
	b := &Backoff{Base: 500 * time.Millisecond, Cap: 30 * time.Second}
	wantBounds := []time.Duration{
		500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second,
	}
	for i, want := range wantBounds {
		if got := b.Bound(); got != want {
			t.Fatalf("bound %d = %v, want %v", i, got, want)
		}
		b.Next()
	}
	// Many real draws: all inside [0, bound], spread over the interval
	// (full jitter, not "bound ± a little").
	for n := range 8 {
		b.Reset()
		for range n {
			b.Next()
		}
		bound := b.Bound()
		lo, hi := bound, time.Duration(0)
		for range 2000 {
			b.attempt = n
			d := b.Next()
			if d < 0 || d > bound {
				t.Fatalf("attempt %d: wait %v outside [0, %v]", n, d, bound)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo > bound/10 || hi < bound*9/10 {
			t.Errorf("attempt %d: draws span only [%v, %v] of [0, %v]", n, lo, hi, bound)
		}
	}
}

func TestBackoffEdges(t *testing.T) {
	b := &Backoff{randN: func(n int64) int64 { return n - 1 }} // always the bound
	if d := b.Next(); d != BackoffBase {
		t.Fatalf("default first wait = %v, want %v", d, BackoffBase)
	}
	for range 200 { // far past any shift that could overflow
		if d := b.Next(); d <= 0 || d > BackoffCap {
			t.Fatalf("wait %v after %d attempts", d, b.Attempt())
		}
	}
	if d := b.Next(); d != BackoffCap {
		t.Fatalf("late wait = %v, want the cap %v", d, BackoffCap)
	}
	b.Reset()
	if b.Attempt() != 0 || b.Next() != BackoffBase {
		t.Fatal("Reset did not start over")
	}
	zero := &Backoff{randN: func(int64) int64 { return 0 }}
	if d := zero.Next(); d != 0 {
		t.Fatalf("lowest draw = %v, want 0", d)
	}
	huge := &Backoff{Base: time.Hour, Cap: 1 << 62, randN: func(n int64) int64 { return n - 1 }}
	for range 100 {
		if d := huge.Next(); d <= 0 {
			t.Fatalf("overflowed to %v at attempt %d", d, huge.Attempt())
		}
	}
}
