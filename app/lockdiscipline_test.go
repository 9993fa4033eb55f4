package app

import (
	"context"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// goroutineDump is every goroutine's stack, for a test that found the
// engine stuck.
func goroutineDump() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// within runs op and fails the test with a goroutine dump when it takes
// longer than d: an engine operation that does not return is a hang.
func within[T any](t *testing.T, d time.Duration, what string, op func() T) T {
	t.Helper()
	got := make(chan T, 1)
	go func() { got <- op() }()
	select {
	case v := <-got:
		return v
	case <-time.After(d):
		t.Fatalf("%s took more than %v; goroutines:\n%s", what, d, goroutineDump())
		panic("unreachable")
	}
}

// session2025 is a 2025-era protocol version: such a client holds an
// Mcp-Session-Id, so the bridge keeps a session for it between requests.
const session2025 = "2025-11-25"

// mcpSession2025 opens a 2025-era client session (the go-sdk client would
// otherwise speak the stateless 2026 era, which keeps no session).
func mcpSession2025(t *testing.T, ctx context.Context, url, tok string) *mcp.ClientSession {
	t.Helper()
	cs, err := openSession2025(ctx, url, tok)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func openSession2025(ctx context.Context, url, tok string) (*mcp.ClientSession, error) {
	c := mcp.NewClient(&mcp.Implementation{Name: "engine-test", Version: "1"}, nil)
	tr := &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: bearerRT{tok}}, MaxRetries: -1}
	return c.Connect(ctx, tr, &mcp.ClientSessionOptions{ProtocolVersion: session2025})
}

// TestEngineReloadWithSessionOpen: a reload that changes the tool filter of
// a kept server, while a 2025-era client session is open through the relay,
// applies and leaves the engine answering. (It used to deadlock: Apply held
// the bridge's lock while the filter change told the sessions, and telling
// a session sends a frame, which took the same lock.)
func TestEngineReloadWithSessionOpen(t *testing.T) {
	f := startEngine(t, `{"mcpServers": {"a": {"command": "SERVER", "deny": ["echo"]}}}`, nil)
	f.waitState(t, "a ready and connected", func(st State) bool { return ready("a")(st) && st.Relay.Phase == "connected" })
	f.relay.waitRelay(t, f.dev, f.client, "a ready", func(v relayView) bool { s, _, _ := v.server("a"); return s == "ready" })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := mcpSession2025(t, ctx, f.relay.url+"/mcp/alice/a", f.client)
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}

	atomicSave(t, f.paths.MCPJSON, strings.ReplaceAll(`{"mcpServers": {"a": {"command": "SERVER", "deny": ["sleep"]}}}`, "SERVER", f.server))

	// The published State shows the new filter (a hung engine publishes
	// nothing and answers nothing, Subscribe included).
	applied := within(t, 10*time.Second, "the reload to show in State", func() bool {
		ch, err := f.eng.Subscribe(ctx)
		if err != nil {
			return false
		}
		for st := range ch {
			if a, _ := serverView(st, "a"); slices.Contains(a.Tools, "echo") && !slices.Contains(a.Tools, "sleep") {
				return true
			}
		}
		return false
	})
	if !applied {
		t.Fatal("the filter change never showed in State")
	}
	// …the engine still answers at once…
	within(t, 2*time.Second, "State after the reload", func() error { _, err := f.eng.State(ctx); return err })
	// …and the open session is served under the new filter.
	res := within(t, 5*time.Second, "a call after the reload", func() *mcp.CallToolResult {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "after"}})
		if err != nil {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: err.Error()}}}
		}
		return res
	})
	if res.IsError {
		t.Fatalf("echo after the reload: %+v", res.Content[0])
	}
}

// TestEngineRestartKeepsSessionsWhole: a reload that restarts a server tells
// the relay its sessions are gone here, so the client's next request on the
// same Mcp-Session-Id re-creates the session from what the client said at
// initialize (the relay replays it) rather than reaching a virtual session
// that was never initialized: a 2026-only server then still sees the
// client's own identity in every request.
func TestEngineRestartKeepsSessionsWhole(t *testing.T) {
	cfg := `{"mcpServers": {"a": {"command": "SERVER", "era": "2026", "args": ["ARG"]}}}`
	f := startEngine(t, strings.Replace(cfg, "ARG", "-era=modern", 1), nil)
	f.waitState(t, "a ready and connected", func(st State) bool { return ready("a")(st) && st.Relay.Phase == "connected" })
	f.relay.waitRelay(t, f.dev, f.client, "a ready", func(v relayView) bool { s, _, _ := v.server("a"); return s == "ready" })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The SDK's default retries, as a real client: the relay ends the
	// session's GET stream when the bridge says the session is gone, and
	// the client opens it again.
	c := mcp.NewClient(&mcp.Implementation{Name: "engine-test", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: f.relay.url + "/mcp/alice/a", HTTPClient: &http.Client{Transport: bearerRT{f.client}}},
		&mcp.ClientSessionOptions{ProtocolVersion: session2025})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	whoami := func(when string) {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
		if err != nil || res.IsError {
			t.Fatalf("whoami %s: %v %+v", when, err, res)
		}
		if got := res.Content[0].(*mcp.TextContent).Text; got != "client=engine-test" {
			t.Fatalf("whoami %s = %q: the server did not see the session's own client", when, got)
		}
	}
	whoami("before the restart")
	pid := func(st State) int { a, _ := serverView(st, "a"); return a.PID }
	before := pid(f.waitState(t, "a's pid", func(st State) bool { return pid(st) > 0 }))

	// A changed spec restarts the server.
	atomicSave(t, f.paths.MCPJSON, strings.ReplaceAll(strings.Replace(cfg, "ARG", "-era=modern\", \"-extra-tools=1", 1), "SERVER", f.server))
	f.waitState(t, "a restarted and ready", func(st State) bool { return ready("a")(st) && pid(st) != before && pid(st) > 0 })
	f.relay.waitRelay(t, f.dev, f.client, "a ready again", func(v relayView) bool { s, _, _ := v.server("a"); return s == "ready" })
	whoami("after the restart")
}

// TestEngineBurstEndingInvalidKeepsLastGoodWritten: within one debounce, a
// valid save (adding server b) and then a broken one. The engine runs the
// valid file written during the burst — not the config from before it —
// and shows the broken file's error.
func TestEngineBurstEndingInvalidKeepsLastGoodWritten(t *testing.T) {
	f := startEngine(t, `{"mcpServers": {"a": {"command": "SERVER"}}}`, func(o *EngineOptions) { o.Debounce = 2 * time.Second })
	f.waitState(t, "a ready", ready("a"))
	atomicSave(t, f.paths.MCPJSON, strings.ReplaceAll(`{"mcpServers": {"a": {"command": "SERVER"}, "b": {"command": "SERVER"}}}`, "SERVER", f.server))
	// The save is seen (and read) before the next one lands, as an editor's
	// saves milliseconds apart are; the debounce has not ended yet.
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.eng.mu.Lock()
		seen := f.eng.lastGood != nil
		f.eng.mu.Unlock()
		if seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the valid save was never read")
		}
		time.Sleep(5 * time.Millisecond) // polling engine state, not synchronisation
	}
	atomicSave(t, f.paths.MCPJSON, `{"mcpServers": {"a": {"command": `)
	st := f.waitState(t, "b running and the broken file's error shown", func(st State) bool {
		_, hasB := serverView(st, "b")
		return hasB && st.Config.Error != ""
	})
	if _, hasA := serverView(st, "a"); !hasA {
		t.Fatalf("a is gone: %+v", st.Servers)
	}
}
