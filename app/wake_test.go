package app

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeWakeClock lets a test move the wall and monotonic clocks separately,
// which is what a suspend does.
type fakeWakeClock struct {
	mu sync.Mutex
	w  time.Time
	m  time.Duration
}

func (c *fakeWakeClock) wall() time.Time     { c.mu.Lock(); defer c.mu.Unlock(); return c.w }
func (c *fakeWakeClock) mono() time.Duration { c.mu.Lock(); defer c.mu.Unlock(); return c.m }

// advance moves both clocks by run, then the wall clock alone by slept.
func (c *fakeWakeClock) advance(run, slept time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m += run
	c.w = c.w.Add(run + slept)
}

func TestWatchWake(t *testing.T) {
	t.Parallel()
	clk := &fakeWakeClock{w: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)}
	ticks := make(chan time.Time)
	wakes := make(chan time.Duration, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchWake(ctx, clk, ticks, wakeSlack, func(d time.Duration) { wakes <- d })
	}()
	// tick delivers one tick; the unbuffered send returns when the detector
	// took it, and the next send (or cancel) proves the check finished.
	tick := func() { ticks <- time.Time{} }

	steps := []struct {
		name     string
		run, gap time.Duration
		wantWake bool
	}{
		{"normal tick", 5 * time.Second, 0, false},
		{"NTP nudge under the slack", 5 * time.Second, 2 * time.Second, false},
		{"scheduler delay moves both clocks", 40 * time.Second, 0, false},
		{"laptop lid closed for an hour", 5 * time.Second, time.Hour, true},
		{"first tick after the wake is normal again", 5 * time.Second, 0, false},
		{"short suspend just over the slack", 5 * time.Second, 4 * time.Second, true},
		{"wall clock stepped back", 5 * time.Second, -10 * time.Minute, false},
	}
	tick() // let the detector take its first readings before any step
	for _, s := range steps {
		clk.advance(s.run, s.gap)
		tick()
		tick() // the detector has finished the previous check
		var got bool
		select {
		case d := <-wakes:
			got = true
			if d < s.gap-time.Second || d > s.gap+time.Second {
				t.Errorf("%s: slept %v, want about %v", s.name, d, s.gap)
			}
		default:
		}
		if got != s.wantWake {
			t.Errorf("%s: wake = %v, want %v", s.name, got, s.wantWake)
		}
	}
	cancel()
	<-done
}

func TestTokenTurn(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		tok  TokenState
		want time.Time
	}{
		{"no token", TokenState{}, time.Time{}},
		{"no expiry", TokenState{Present: true}, time.Time{}},
		{"far off: when the warning starts", TokenState{Present: true, Expires: now.Add(10 * 24 * time.Hour)}, now.Add(7 * 24 * time.Hour)},
		{"in the warning: when it expires", TokenState{Present: true, Expires: now.Add(time.Hour), ExpiringSoon: true}, now.Add(time.Hour)},
		{"expired: nothing more", TokenState{Present: true, Expires: now.Add(-time.Hour), Expired: true}, time.Time{}},
	}
	for _, c := range cases {
		if got := tokenTurn(c.tok, now); !got.Equal(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
