package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tether-dev/tether/relay/server"
)

// slowServer is a server that needs a while before it speaks MCP, as npx
// does on its first run.
func slowServer(delay string) string {
	return `{"mcpServers": {"slow": {"command": "sh", "args": ["-c", "sleep ` + delay + `; exec SERVER"]}}}`
}

// TestEngineCallsWaitForStartUp: a client that initializes and calls while
// its server is still starting is served once the server is ready, instead
// of getting "not ready (starting)".
func TestEngineCallsWaitForStartUp(t *testing.T) {
	f := startEngine(t, slowServer("1"), nil)
	// The bridge is on the relay and the server is still starting.
	f.relay.waitRelay(t, f.dev, f.client, "slow starting", func(v relayView) bool {
		s, _, _ := v.server("slow")
		return v.Connected && s == "starting"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, era := range []struct{ name, version string }{{"2025 session", session2025}, {"2026 stateless", ""}} {
		t.Run(era.name, func(t *testing.T) {
			if era.version == "" {
				// Restart so this client, too, arrives during start-up.
				if err := f.eng.RestartServer(ctx, "slow"); err != nil {
					t.Fatal(err)
				}
				f.relay.waitRelay(t, f.dev, f.client, "slow restarting", func(v relayView) bool {
					s, _, _ := v.server("slow")
					return s != "ready"
				})
			}
			var cs *mcp.ClientSession
			if era.version != "" {
				cs = mcpSession2025(t, ctx, f.relay.url+"/mcp/alice/slow", f.client)
			} else {
				cs = mcpClient(t, ctx, f.relay.url+"/mcp/alice/slow", f.client, nil)
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "early"}})
			if err != nil || res.IsError {
				t.Fatalf("echo during start-up: %v %+v", err, res)
			}
			if got := res.Content[0].(*mcp.TextContent).Text; got != "early" {
				t.Fatalf("echo = %q", got)
			}
		})
	}
}

// TestEngineStartUpWaitIsBounded: a server that takes longer than
// ReadyWait fails the request with an error that says so.
func TestEngineStartUpWaitIsBounded(t *testing.T) {
	// The relay waits for a starting server too (its StartWait, 30 s by
	// default); off here, so the bridge's own bound is what answers.
	f := startEngine(t, slowServer("30"), func(o *EngineOptions) { o.ReadyWait = 300 * time.Millisecond },
		func(s *server.Server) { s.StartWait = -1 })
	f.relay.waitRelay(t, f.dev, f.client, "slow starting", func(v relayView) bool {
		s, _, _ := v.server("slow")
		return v.Connected && s == "starting"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := openSession2025(ctx, f.relay.url+"/mcp/alice/slow", f.client)
	if err == nil || !strings.Contains(err.Error(), "did not become ready within 300ms") {
		t.Fatalf("initialize against a server that never starts: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("failed after %v; want just past the 300ms bound", d)
	}
}
