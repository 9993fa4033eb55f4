//go:build linux || darwin

package mcpchild

import (
	"context"
	"testing"
	"time"
)

// A session's end stops its process; stopping the isolated child stops
// every session's process.
func TestIsolatedProcessesStopWithSessionAndServer(t *testing.T) {
	opts, watch := isolatedOptions(t, 3)
	c := startTestServer(t, opts)
	a := newIsolatedClient(t, c, "a")
	b := newIsolatedClient(t, c, "b")
	d := newIsolatedClient(t, c, "d")
	pa, pb, pd := a.s.Child().Status().Pid, b.s.Child().Status().Pid, d.s.Child().Status().Pid
	watch.wait(t, "three processes", func(st Status) bool { return st.Processes == 3 })

	a.s.Close()
	watch.wait(t, "a's process stopped", func(st Status) bool { return st.Processes == 2 })
	if alive(pa) {
		t.Fatalf("pid %d of the closed session is still running", pa)
	}
	if got := aliveOf(pb, pd); len(got) != 2 {
		t.Fatalf("the other sessions' processes: alive %v of %d, %d", got, pb, pd)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := aliveOf(pb, pd); len(got) != 0 {
		t.Fatalf("after Stop, still running: %v", got)
	}
	if st := c.Status(); st.Processes != 0 {
		t.Fatalf("after Stop: processes %d", st.Processes)
	}
	late := newClient(t, c, "late")
	if late.s.Child() != c {
		t.Fatal("a session after Stop got a process")
	}
	if _, errObj := late.call("tools/list", nil); !contains(errObj, "stopping") {
		t.Fatalf("a session after Stop: %s", errObj)
	}
}
