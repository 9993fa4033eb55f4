package app

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/logfile"
)

// TestEngineRemovedServersLeaveNothing: servers added and removed by
// reloads leave no goroutine behind -- each one's log file included (the
// rotating writer once kept a goroutine per file forever).
func TestEngineRemovedServersLeaveNothing(t *testing.T) {
	f := startEngine(t, oneServer, func(o *EngineOptions) {
		logs := o.Paths.Logs
		o.ServerLog = func(name string) (io.WriteCloser, error) { return logfile.ServerLog(logs, name) }
	})
	f.waitState(t, "a ready and connected", func(st State) bool {
		return ready("a")(st) && st.Relay.Phase == "connected"
	})
	const n = 20
	many := func() string {
		var b strings.Builder
		b.WriteString(`{"mcpServers": {"a": {"command": "SERVER"}`)
		for i := range n {
			fmt.Fprintf(&b, `, "s%d": {"command": "SERVER"}`, i)
		}
		b.WriteString("}}")
		return strings.ReplaceAll(b.String(), "SERVER", f.server)
	}()
	one := strings.ReplaceAll(oneServer, "SERVER", f.server)

	baseline := runtime.NumGoroutine()
	for round := range 3 {
		atomicSave(t, f.paths.MCPJSON, many)
		f.waitState(t, fmt.Sprintf("round %d: %d servers ready", round, n+1), func(st State) bool {
			for _, s := range st.Servers {
				if s.Phase != "ready" {
					return false
				}
			}
			return len(st.Servers) == n+1
		})
		atomicSave(t, f.paths.MCPJSON, one)
		f.waitState(t, fmt.Sprintf("round %d: back to a alone", round), func(st State) bool {
			return len(st.Servers) == 1 && ready("a")(st)
		})
	}
	// Removed children stop in the background; wait (bounded) for the
	// count to come back. A leak of one goroutine per removed server would
	// leave 3*n more.
	const slack = 5
	deadline := time.Now().Add(20 * time.Second)
	got := runtime.NumGoroutine()
	for got > baseline+slack && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		got = runtime.NumGoroutine()
	}
	if got > baseline+slack {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after adding and removing %d servers 3 times, %d before:\n%s",
			got, n, baseline, buf[:runtime.Stack(buf, true)])
	}
	t.Logf("goroutines: %d before, %d after 3 rounds of %d servers added and removed", baseline, got, n)
}
