package e2e

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestSessionSurvivesRestarts: one go-sdk client session (2025-era, with
// its standalone GET stream and the SDK's default reconnect policy) keeps
// its Mcp-Session-Id and keeps working, without initializing again, across
// a relay restart (kill -9, same secret, same port) and a tetherd restart.
// After the tetherd restart the call is made at once: it waits at the
// relay for the bridge and for the server to be ready.
func TestSessionSurvivesRestarts(t *testing.T) {
	r := startRelay(t)
	d := testServer(t, r)
	client := r.token(t, dev, "client")
	r.waitServing(t, dev, client, "test", 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "e2e-sessions", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   r.mcpURL(dev, "test"),
		HTTPClient: &http.Client{Transport: bearer{client, http.DefaultTransport}},
	}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	id := cs.ID()
	call := func(what string) {
		t.Helper()
		got, err := callText(ctx, cs, "echo", map[string]any{"text": what})
		if err != nil || got != what {
			t.Fatalf("%s: echo = %q, %v", what, got, err)
		}
		if cs.ID() != id {
			t.Fatalf("%s: session id changed %q → %q", what, id, cs.ID())
		}
	}
	call("before")

	r.kill(t)
	r.start(t)
	r.waitServing(t, dev, client, "test", 10*time.Second)
	call("after the relay restart")
	if n := resumed(t, r); n != 1 {
		t.Fatalf("sessions resumed on the new relay = %d, want 1", n)
	}

	d.stop(t)
	testServer(t, r)
	start := time.Now()
	call("after the tetherd restart")
	t.Logf("first call after the tetherd restart took %v", time.Since(start))
	if n := resumed(t, r); n != 2 {
		t.Fatalf("sessions resumed = %d, want 2", n)
	}
}

var resumedRE = regexp.MustCompile(`(?m)^tether_relay_sessions_resumed_total (\d+)$`)

// resumed reads the relay's count of resumed sessions from its metrics
// listener.
func resumed(t *testing.T, r *relayProc) int {
	t.Helper()
	resp, err := http.Get("http://" + r.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := resumedRE.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no resumed counter in /metrics:\n%s", body)
	}
	n := 0
	for _, c := range m[1] {
		n = n*10 + int(c-'0')
	}
	return n
}
