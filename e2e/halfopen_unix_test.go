//go:build unix

package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// TestHalfOpen freezes the relay (SIGSTOP): with a 2 s pong wait the bridge
// declares the socket dead, and after SIGCONT it reconnects and serves.
func TestHalfOpen(t *testing.T) {
	r := startRelay(t)
	d := testServer(t, r, "TETHER_PING_INTERVAL=500ms", "TETHER_PONG_WAIT=2s")
	client := r.token(t, dev, "client")
	r.waitServing(t, dev, client, "test", 30*time.Second)

	mark := d.log.len()
	if err := r.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	d.log.waitFor(t, mark, "relay connection lost", 10*time.Second)
	t.Logf("bridge reported the drop %v after SIGSTOP", time.Since(stopped))
	if err := r.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	thawed := time.Now()
	r.waitServingSince(t, dev, client, "test", thawed, 30*time.Second)
	t.Logf("serving again %v after SIGCONT", time.Since(thawed))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := connect(t, ctx, r.mcpURL(dev, "test"), client, "", nil)
	if got, err := callText(ctx, cs, "echo", map[string]any{"text": "thawed"}); err != nil || got != "thawed" {
		t.Fatalf("echo after SIGCONT = %q, %v", got, err)
	}
}
