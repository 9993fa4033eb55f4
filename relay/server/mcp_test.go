package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tether-dev/tether/relay"
)

var eras = []string{"2026-07-28", "2025-11-25", "2025-06-18"}

// TestGoSDKClientBothEras drives a real go-sdk client through the relay to
// a fake bridge running real go-sdk servers, at every protocol version.
func TestGoSDKClientBothEras(t *testing.T) {
	r := newTestRelay(t, 30*time.Second)
	dialFakeBridge(t, r, "alice")
	url := r.mcpURL("alice", "everything")
	tok := mustToken(t, "alice", ScopeClient)

	for _, version := range eras {
		t.Run(version, func(t *testing.T) {
			progress := make(chan *mcp.ProgressNotificationParams, 4)
			cs := connectClient(t, url, tok, version, &mcp.ClientOptions{
				ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
					progress <- req.Params
				},
			})
			stateless := version >= "2026-07-28"
			if got := cs.ID(); (got == "") != stateless {
				t.Fatalf("session id %q: a %s client should be stateless=%v", got, version, stateless)
			}
			if got := cs.InitializeResult().ProtocolVersion; got != version {
				t.Fatalf("negotiated %q, want %q", got, version)
			}
			ctx := context.Background()

			tools, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatalf("tools/list: %v", err)
			}
			if len(tools.Tools) != 3 {
				t.Fatalf("got %d tools, want 3", len(tools.Tools))
			}

			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hi " + version}})
			if err != nil {
				t.Fatalf("tools/call echo: %v", err)
			}
			if got := toolText(t, res); got != "hi "+version {
				t.Fatalf("echo = %q", got)
			}

			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{},
				Meta: mcp.Meta{"progressToken": "tok-" + version}})
			if err != nil {
				t.Fatalf("tools/call progress: %v", err)
			}
			if got := toolText(t, res); got != "done" {
				t.Fatalf("progress tool = %q", got)
			}
			select {
			case p := <-progress:
				if p.ProgressToken != "tok-"+version || p.Message != "halfway" {
					t.Fatalf("progress = %+v", p)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("progress notification never reached the caller")
			}

			// Unknown tool: the bridge's JSON-RPC error comes back intact.
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "nope"}); err == nil {
				t.Fatal("calling an unknown tool succeeded")
			}
		})
	}
}

// TestConcurrentSessionsIsolated: two sessions, 50 calls each in flight at
// once. go-sdk numbers requests from 1 in every session, so the ids
// collide on purpose; routing by (session, id) must keep them apart.
func TestConcurrentSessionsIsolated(t *testing.T) {
	r := newTestRelay(t, 30*time.Second)
	dialFakeBridge(t, r, "alice")
	url := r.mcpURL("alice", "everything")
	tok := mustToken(t, "alice", ScopeClient)

	for _, version := range []string{"2026-07-28", "2025-11-25"} {
		t.Run(version, func(t *testing.T) {
			sessions := []*mcp.ClientSession{
				connectClient(t, url, tok, version, nil),
				connectClient(t, url, tok, version, nil),
			}
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			for si, cs := range sessions {
				for i := range 50 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						want := fmt.Sprintf("session %d call %d", si, i)
						res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": want}})
						if err != nil {
							errs <- err
							return
						}
						if len(res.Content) == 0 {
							errs <- fmt.Errorf("empty result for %q", want)
							return
						}
						if got := res.Content[0].(*mcp.TextContent).Text; got != want {
							errs <- fmt.Errorf("got %q, want %q: a response reached the wrong caller", got, want)
						}
					}()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestTimeoutForwardsCancel: a call the bridge never answers gets a
// JSON-RPC error after CallTimeout and the bridge is told to cancel.
func TestTimeoutForwardsCancel(t *testing.T) {
	r := newTestRelay(t, 300*time.Millisecond)
	fb := dialFakeBridge(t, r, "alice")
	cs := connectClient(t, r.mcpURL("alice", "everything"), mustToken(t, "alice", ScopeClient), "2025-11-25", nil)

	_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{}})
	if err == nil || !strings.Contains(err.Error(), "no answer from the bridge within 300ms") {
		t.Fatalf("err = %v, want the relay's timeout error", err)
	}
	select {
	case p := <-fb.Cancelled:
		if !strings.Contains(string(p), "timed out at the relay") {
			t.Fatalf("cancel params = %s", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bridge never got notifications/cancelled")
	}
	// The session still works.
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "x"}}); err != nil {
		t.Fatalf("echo after timeout: %v", err)
	}
}

// TestClientDisconnectForwardsCancel: a 2026 client (no session, so the
// SDK sends no cancel of its own that the relay could route) drops its
// request; the relay tells the bridge.
func TestClientDisconnectForwardsCancel(t *testing.T) {
	r := newTestRelay(t, 30*time.Second)
	fb := dialFakeBridge(t, r, "alice")
	cs := connectClient(t, r.mcpURL("alice", "everything"), mustToken(t, "alice", ScopeClient), "2026-07-28", nil)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{}})
		done <- err
	}()
	select {
	case <-fb.SlowStarted:
	case <-time.After(10 * time.Second):
		t.Fatal("slow tool never started")
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled call succeeded")
	}
	select {
	case p := <-fb.Cancelled:
		if !strings.Contains(string(p), "client disconnected") {
			t.Fatalf("cancel params = %s", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bridge never got notifications/cancelled")
	}
	// The ephemeral bridge session is closed after the request.
	select {
	case <-fb.Closed:
	case <-time.After(10 * time.Second):
		t.Fatal("ephemeral session never closed at the bridge")
	}
}

// TestBridgeDisconnectFailsInFlight: in-flight calls fail at once, not at
// the timeout, and a later call gets 503 via the SDK.
func TestBridgeDisconnectFailsInFlight(t *testing.T) {
	r := newTestRelay(t, time.Minute)
	fb := dialFakeBridge(t, r, "alice")
	cs := connectClient(t, r.mcpURL("alice", "everything"), mustToken(t, "alice", ScopeClient), "2025-11-25", nil)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{}})
		done <- err
	}()
	select {
	case <-fb.SlowStarted:
	case <-time.After(10 * time.Second):
		t.Fatal("slow tool never started")
	}
	fb.ws.Close()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "bridge disconnected") {
			t.Fatalf("err = %v, want bridge disconnected", err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("failed after %v, not at once", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("in-flight call did not fail when the bridge went away")
	}
}

// TestStandaloneStreamAndDelete: the GET stream carries messages without
// `related`; DELETE ends the session, the bridge gets a close frame and
// the session id is 404 afterwards.
func TestStandaloneStreamAndDelete(t *testing.T) {
	r := newTestRelay(t, 30*time.Second)
	fb := dialFakeBridge(t, r, "alice")
	url := r.mcpURL("alice", "everything")
	tok := mustToken(t, "alice", ScopeClient)
	hc := authClient(tok)

	post := func(sid, body string) *http.Response {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if sid != "" {
			req.Header.Set(headerSession, sid)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	sid := resp.Header.Get(headerSession)
	body := readAll(t, resp)
	if resp.StatusCode != 200 || sid == "" || !strings.Contains(body, `"protocolVersion":"2025-06-18"`) {
		t.Fatalf("initialize: %d sid=%q %s", resp.StatusCode, sid, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("initialize answered as %q; the relay answers JSON when nothing streams first", ct)
	}
	if resp := post(sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); resp.StatusCode != 202 {
		t.Fatalf("notification: %d", resp.StatusCode)
	}
	if resp := post("", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); resp.StatusCode != 400 {
		t.Fatalf("request without session: %d, want 400", resp.StatusCode)
	}
	if resp := post("deadbeef", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); resp.StatusCode != 404 {
		t.Fatalf("unknown session: %d, want 404", resp.StatusCode)
	}
	if resp := post(sid, `[{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`); resp.StatusCode != 400 {
		t.Fatalf("batch: %d, want 400", resp.StatusCode)
	}

	// Open the GET stream and push a message without `related` from the bridge.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	greq, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	greq.Header.Set("Accept", "text/event-stream")
	greq.Header.Set(headerSession, sid)
	gresp, err := hc.Do(greq)
	if err != nil {
		t.Fatal(err)
	}
	defer gresp.Body.Close()
	if gresp.StatusCode != 200 || gresp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET: %d %s", gresp.StatusCode, gresp.Header.Get("Content-Type"))
	}
	// The handler flushed its headers, so the stream is registered.
	if err := fb.write(mcpFrameForTest(sid, `{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := gresp.Body.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "notifications/tools/list_changed") {
		t.Fatalf("GET stream read %q, %v", buf[:n], err)
	}

	dreq, _ := http.NewRequest("DELETE", url, nil)
	dreq.Header.Set(headerSession, sid)
	dresp, err := hc.Do(dreq)
	if err != nil || dresp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %v %v", dresp.StatusCode, err)
	}
	select {
	case got := <-fb.Closed:
		if got != sid {
			t.Fatalf("closed %q, want %q", got, sid)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bridge got no close frame")
	}
	if resp := post(sid, `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`); resp.StatusCode != 404 {
		t.Fatalf("after DELETE: %d, want 404", resp.StatusCode)
	}
}

func mcpFrameForTest(session, msg string) relay.Frame {
	return relay.Frame{Kind: relay.KindMCP, Server: "everything", Session: session, Msg: json.RawMessage(msg)}
}
