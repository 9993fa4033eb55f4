//go:build linux

package app

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testbin"
)

// TestPowerEventsLogind: a real DBus daemon stands in for the system bus and
// the test emits logind's PrepareForSleep exactly as systemd-logind does
// (gdbus emit): false means the machine woke up.
func TestPowerEventsLogind(t *testing.T) {
	testbin.NeedTools(t, "dbus-daemon", "gdbus")
	bus := exec.Command("dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1")
	out, err := bus.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Process.Kill(); bus.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr = strings.TrimSpace(addr)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wakes, err := powerEvents(ctx, &wg)
	if err != nil {
		t.Fatal(err)
	}
	emit := func(sleeping string) {
		t.Helper()
		// --session on a bus we point it at: gdbus --address would skip the
		// bus Hello, and the daemon drops such a peer's messages.
		cmd := exec.Command("gdbus", "emit", "--session", "--object-path", "/org/freedesktop/login1",
			"--signal", "org.freedesktop.login1.Manager.PrepareForSleep", sleeping)
		cmd.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+addr)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gdbus emit: %v\n%s", err, out)
		}
	}
	emit("true")  // going to sleep: not a wake
	emit("false") // woke up
	select {
	case <-wakes:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake after PrepareForSleep(false)")
	}
	// Signals are delivered in order, so had "true" been taken for a wake,
	// a second value would be pending now.
	emit("false")
	select {
	case <-wakes:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake after the second PrepareForSleep(false)")
	}
	select {
	case <-wakes:
		t.Fatal("PrepareForSleep(true) was taken for a wake")
	default:
	}
	cancel()
	for range wakes { // closes when ctx ends
	}
	wg.Wait() // and its goroutine ends
}
