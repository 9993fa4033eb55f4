//go:build linux || darwin

package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// sessionProcesses returns the pid of every session's own process of an
// isolated server, by relay session id.
func sessionProcesses(b *bridge, server string) map[string]int {
	b.mu.Lock()
	var keys []sessionKey
	var sessions []*session
	for k, s := range b.sessions {
		if k.server == server {
			keys = append(keys, k)
			sessions = append(sessions, s)
		}
	}
	parent := b.children[server]
	b.mu.Unlock()
	out := map[string]int{}
	for i, s := range sessions {
		if s.child != parent {
			out[keys[i].session] = s.child.Status().Pid
		}
	}
	return out
}

// running reports whether pid is a process (reaped children are gone).
func running(pid int) bool { return syscall.Kill(pid, 0) == nil }

// An isolated server through the real relay: two MCP clients each get
// their own server→client requests (elicitation) from concurrent calls, State counts the processes, a third client
// past maxProcesses is refused with the reason, a client's DELETE stops its
// process, and a reload that changes the server stops the rest.
func TestEngineIsolatedServer(t *testing.T) {
	const cfg = `{"mcpServers": {"a": {"command": "SERVER", "era": "2025", "isolate": "session", "maxProcesses": %d}}}`
	f := startEngine(t, fmt.Sprintf(cfg, 2), nil)
	f.waitState(t, "a ready", func(st State) bool { return ready("a")(st) && st.Relay.Phase == "connected" })
	f.relay.waitRelay(t, f.dev, f.client, "a ready", func(v relayView) bool { s, _, _ := v.server("a"); return s == "ready" })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := f.relay.url + "/mcp/alice/a"

	clients := map[string]*mcp.ClientSession{}
	for _, name := range []string{"x", "y"} {
		// Each client answers an elicitation with its own name.
		c := mcp.NewClient(&mcp.Implementation{Name: name, Version: "1"}, &mcp.ClientOptions{
			ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
				return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"answer": "from " + name}}, nil
			},
		})
		clients[name] = connectWith(t, ctx, c, url, f.client)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*5)
	for name, cs := range clients {
		wg.Go(func() {
			for range 5 {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "elicit", Arguments: map[string]any{"message": "who?"}})
				if err != nil {
					errs <- fmt.Errorf("%s: elicit: %w", name, err)
					return
				}
				if got := res.Content[0].(*mcp.TextContent).Text; res.IsError || got != "from "+name {
					errs <- fmt.Errorf("%s: elicit = %q (isError %v), want its own answer", name, got, res.IsError)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := f.waitState(t, "two processes", func(st State) bool { a, _ := serverView(st, "a"); return a.Processes == 2 })
	if a, _ := serverView(st, "a"); a.MaxProcesses != 2 {
		t.Fatalf("server view: %+v", a)
	}
	pids := sessionProcesses(f.eng.bridge, "a")
	if len(pids) != 2 {
		t.Fatalf("session processes = %v", pids)
	}

	over := mcp.NewClient(&mcp.Implementation{Name: "over", Version: "1"}, nil)
	_, err := over.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: bearerRT{f.client}}, MaxRetries: -1}, &mcp.ClientSessionOptions{ProtocolVersion: legacyVersion})
	if err == nil || !strings.Contains(err.Error(), `server "a" is limited to 2 sessions at once (maxProcesses); try again later`) {
		t.Fatalf("a third session: %v", err)
	}

	// A 2026-era client (each request a session of one POST at the relay)
	// is given no process past maxProcesses: with both taken by sessions,
	// its call is served by the warm instance.
	modern := mcpClient(t, ctx, url, f.client, nil)
	res, err := modern.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "warm"}})
	if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "warm" {
		t.Fatalf("echo from a 2026-era client: %v %+v", err, res)
	}
	if got := sessionProcesses(f.eng.bridge, "a"); len(got) != 2 {
		t.Fatalf("session processes after a 2026-era call: %v", got)
	}

	// x ends its session (DELETE): its process stops, y's stays.
	xID := clients["x"].ID()
	if err := clients["x"].Close(); err != nil {
		t.Fatal(err)
	}
	f.waitState(t, "one process", func(st State) bool { a, _ := serverView(st, "a"); return a.Processes == 1 })
	if running(pids[xID]) {
		t.Fatalf("x's process %d still runs after its session ended", pids[xID])
	}
	yPid := sessionProcesses(f.eng.bridge, "a")[clients["y"].ID()]
	if yPid == 0 || !running(yPid) {
		t.Fatalf("y's process: pid %d", yPid)
	}

	// A reload that changes the server stops the old one with y's process.
	atomicSave(t, f.paths.MCPJSON, strings.ReplaceAll(fmt.Sprintf(cfg, 3), "SERVER", f.server))
	f.waitState(t, "a reloaded", func(st State) bool {
		a, _ := serverView(st, "a")
		return a.MaxProcesses == 3 && a.Phase == ServerReady && a.Processes == 0
	})
	f.eng.bridge.stopping.Wait() // the old server's Stop, run in the background
	if running(yPid) {
		t.Fatalf("y's process %d still runs after the reload", yPid)
	}
}

// legacyVersion is a 2025-era version: such a client's session lasts, and
// on an isolated server gets a process of its own.
const legacyVersion = "2025-11-25"

func connectWith(t *testing.T, ctx context.Context, c *mcp.Client, url, tok string) *mcp.ClientSession {
	t.Helper()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: bearerRT{tok}}, MaxRetries: -1}, &mcp.ClientSessionOptions{ProtocolVersion: legacyVersion})
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}
