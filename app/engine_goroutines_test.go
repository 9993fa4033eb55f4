package app

import (
	"bytes"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Run returns only after every goroutine the engine started has ended: a
// helper that outlived Run would go on using children, files or the relay
// link of an engine its caller believes stopped (and a test that runs
// engines one after another would pile them up).
//
// The goroutine check runs at once after Run returns, with no grace
// period: a goroutine that ends soon after (one that watches ctx but is not
// waited for) is what this test is for. Not parallel: goroutines that other
// tests start meanwhile would count against this engine.
func TestEngineRunJoinsItsGoroutines(t *testing.T) {
	before := appGoroutines()
	// The wake check is held inside its clock while the engine stops, so
	// one helper is certainly still running when ctx ends: Run must wait
	// for it, not merely happen to finish after it.
	clk := &heldWakeClock{entered: make(chan struct{}), release: make(chan struct{})}
	ticks := make(chan time.Time)
	// Control off: the control server is closed by Run's defer, and its
	// own goroutines are a separate component.
	f := startEngine(t, `{"mcpServers": {"a": {"command": "SERVER"}}}`, func(o *EngineOptions) {
		o.Control = false
		o.wakeClock, o.wakeTicks = clk, ticks
	})
	f.relay.waitRelay(t, f.dev, f.client, "a ready", func(v relayView) bool {
		st, _, ok := v.server("a")
		return ok && st == "ready"
	})
	ticks <- time.Now()
	<-clk.entered
	f.cancel()
	f.cancel = nil // stopped here, not by the fixture's cleanup
	// Absence cannot be awaited: give Run ample time to return early
	// (shutting down one child takes a few ms here) before letting the
	// check go on.
	select {
	case <-f.done:
		t.Fatal("Run returned while the wake check was still running")
	case <-time.After(500 * time.Millisecond):
	}
	close(clk.release)
	if err := <-f.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for id, stack := range appGoroutines() {
		if _, old := before[id]; !old {
			t.Errorf("goroutine still running after Engine.Run returned:\n%s", stack)
		}
	}
}

// heldWakeClock is real time whose second wall reading (the first check
// after a tick) waits until release is closed.
type heldWakeClock struct {
	realWakeClock
	calls            atomic.Int32
	entered, release chan struct{}
}

func (c *heldWakeClock) wall() time.Time {
	if c.calls.Add(1) == 2 {
		close(c.entered)
		<-c.release
	}
	return c.realWakeClock.wall()
}

// appGoroutines returns, by goroutine header ("goroutine 42"), the stack of
// every goroutine that is running code of package app (or below it) right
// now. The "created by" line does not count: it names the creator, and a
// goroutine that has returned from its function but not yet exited (as in
// sync.WaitGroup.Go, between the function and Done) runs no app code.
func appGoroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		header, body, _ := strings.Cut(string(g), "\n")
		id, _, _ := strings.Cut(header, " [")
		for line := range strings.SplitSeq(body, "\n") {
			if strings.HasPrefix(line, "created by ") {
				continue
			}
			// Function lines name the import path; file lines (a tab,
			// then a file system path) do not.
			if strings.HasPrefix(line, "github.com/tether-dev/tether/app.") || strings.HasPrefix(line, "github.com/tether-dev/tether/app/") {
				out[id] = string(g)
				break
			}
		}
	}
	return out
}
