package app

import (
	"context"
	"time"
)

// Sleep detection. Go's monotonic clock stops while the machine is suspended
// on Linux (CLOCK_MONOTONIC) and macOS (mach_absolute_time: see
// runtime.nanotime1 in runtime/sys_darwin.go and the nanotime trampolines),
// but the wall clock keeps going. So on each tick the wall clock advanced by about as much
// as the monotonic clock did — unless the machine slept in between, when the
// wall clock jumped ahead. That jump is the wake: the relay socket is almost
// certainly dead (NATs and load balancers forgot it), so the engine drops it
// at once instead of waiting for the keepalive to time out.
//
// Not on Windows: there Go's monotonic clock is the interrupt time
// (_INTERRUPT_TIME in runtime/time_windows.h), which counts through sleep,
// so the jump never shows. power_windows.go asks the OS for resume
// notifications instead; without them, the keepalive timeout (~40 s) is
// what notices the dead socket. On macOS no OS event is used (that needs
// cgo, see power_other.go) and this clock check is the detector.

const (
	// wakeInterval is the fallback timer of the clock check. Each timer
	// firing wakes the idle process (and the Go runtime's monitor thread
	// with it: ~11 context switches measured), so the check mostly rides on
	// the relay keepalive, which wakes the process every 15 s anyway (see
	// Engine.watchWake), and the OS power event (power_linux.go) reports a
	// wake at once where there is one.
	wakeInterval = 2 * time.Minute
	// wakeIntervalWithOSEvents is the clock check's interval where the OS
	// reports wakes itself (logind's PrepareForSleep on Linux, resume
	// notifications on Windows): a backstop only.
	wakeIntervalWithOSEvents = 5 * time.Minute
	// wakeSlack is how far the wall clock may run ahead of the monotonic one
	// within a tick before it counts as a sleep: above NTP steps and a busy
	// scheduler, below any sleep worth reconnecting for.
	wakeSlack = 3 * time.Second
)

// wakeClock is the time source of the detector. wall must not carry a
// monotonic reading (time.Now().Round(0)); mono must stop during suspend.
type wakeClock interface {
	wall() time.Time
	mono() time.Duration
}

type realWakeClock struct{ start time.Time }

func (realWakeClock) wall() time.Time { return time.Now().Round(0) }

// mono is monotonic time since start: time.Since uses the monotonic reading.
func (c realWakeClock) mono() time.Duration { return time.Since(c.start) }

// watchWake calls onWake after every tick on which the wall clock ran ahead
// of the monotonic clock by more than slack, until ctx ends. ticks drives
// the checks (a time.Ticker's channel in production).
func watchWake(ctx context.Context, clk wakeClock, ticks <-chan time.Time, slack time.Duration, onWake func(slept time.Duration)) {
	lastWall, lastMono := clk.wall(), clk.mono()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		wall, mono := clk.wall(), clk.mono()
		if slept := wall.Sub(lastWall) - (mono - lastMono); slept > slack {
			onWake(slept)
		}
		lastWall, lastMono = wall, mono
	}
}
