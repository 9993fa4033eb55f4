package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/relay"
	"github.com/tether-dev/tether/relay/server"
)

// These tests run the bridge client against the real tether-relay handler
// (relay/server) on 127.0.0.1: the handshake, a relayed MCP call, slot
// replacement (4001) and token rejection (401), in both protocols.

var secret = []byte("interop-test-secret-0123456789")

func issue(t *testing.T, dev, scope string, ttl time.Duration) string {
	t.Helper()
	tok, err := server.Issue(secret, dev, scope, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func realRelay(t *testing.T) *httptest.Server {
	t.Helper()
	srv := &server.Server{Verifier: &server.Verifier{Secret: secret}, CallTimeout: 10 * time.Second}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	return hs
}

type bridge struct {
	c      *relay.Client
	states chan relay.ConnState
	frames chan relay.Frame
	done   chan error
	cancel context.CancelFunc
}

func runBridge(t *testing.T, opts relay.ClientOptions) *bridge {
	t.Helper()
	b := &bridge{states: make(chan relay.ConnState, 256), frames: make(chan relay.Frame, 256), done: make(chan error, 1)}
	opts.OnState = func(s relay.ConnState) { b.states <- s }
	opts.OnFrame = func(f relay.Frame) { b.frames <- f }
	b.c = relay.NewClient(opts)
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	go func() { b.done <- b.c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-b.done
	})
	return b
}

func (b *bridge) await(t *testing.T, p relay.Phase) relay.ConnState {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case s := <-b.states:
			if s.Phase == p {
				return s
			}
		case <-timeout:
			t.Fatalf("no %s state; now %+v", p, b.c.State())
		}
	}
}

func (b *bridge) frame(t *testing.T) relay.Frame {
	t.Helper()
	select {
	case f := <-b.frames:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("bridge got no frame")
		return relay.Frame{}
	}
}

// awaitSlot polls the relay's status API until dev's slot is held by a
// bridge of the given version. Polling, because the protocol has no answer
// to hello: the client reports "connected" once its hello is written, and
// the relay takes the slot when it has read it, a moment later.
func awaitSlot(t *testing.T, base, dev, token, version string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/bridges/"+dev, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Connected bool   `json:"connected"`
			Version   string `json:"version"`
		}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if st.Connected && st.Version == version {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the relay never gave %s's slot to bridge version %s", dev, version)
}

// postMCP sends one JSON-RPC message to /mcp/{dev}/{server} in the
// background and returns a channel with the response body.
func postMCP(t *testing.T, url, token, body string, header ...string) <-chan string {
	t.Helper()
	out := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		out <- string(b)
	}()
	return out
}

func TestInteropTetherBridge(t *testing.T) {
	hs := realRelay(t)
	bridgeTok := issue(t, "alice", "bridge", time.Hour)
	hello := func(version string) func() relay.Frame {
		return func() relay.Frame {
			return relay.Frame{Kind: relay.KindHello, Protocol: relay.ProtocolVersion, Version: version,
				Servers: []relay.ServerInfo{{Name: "echo", State: "ready", Era: "2025", ToolCount: 0}}}
		}
	}
	a := runBridge(t, relay.ClientOptions{URL: hs.URL, DevID: "alice", Hello: hello("a"),
		Token: func(context.Context) (string, error) { return bridgeTok, nil }})
	a.await(t, relay.PhaseConnected)
	awaitSlot(t, hs.URL, "alice", bridgeTok, "a")

	// A client's initialize reaches the bridge as an mcp frame; the bridge's
	// answer reaches the client.
	resp := postMCP(t, hs.URL+"/mcp/alice/echo", issue(t, "alice", "client", time.Hour),
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	f := a.frame(t)
	if f.Kind != relay.KindMCP || f.Server != "echo" || f.Session == "" || !strings.Contains(string(f.Msg), `"initialize"`) {
		t.Fatalf("bridge got %+v", f)
	}
	result := `{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"echo","version":"1"}}}`
	if err := a.c.Send(context.Background(), relay.Frame{Kind: relay.KindMCP, Server: "echo", Session: f.Session, Msg: json.RawMessage(result)}); err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-resp:
		if !strings.Contains(body, `"serverInfo":{"name":"echo"`) {
			t.Fatalf("client got %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no HTTP response")
	}

	// A second bridge for alice takes the slot; the first stops with 4001.
	b := runBridge(t, relay.ClientOptions{URL: hs.URL, Hello: hello("b"),
		Token: func(context.Context) (string, error) { return bridgeTok, nil }})
	b.await(t, relay.PhaseConnected)
	awaitSlot(t, hs.URL, "alice", bridgeTok, "b")
	st := a.await(t, relay.PhaseRejected)
	if err := <-a.done; !errors.Is(err, relay.ErrReplaced) {
		t.Fatalf("first bridge Run = %v, want ErrReplaced", err)
	}
	a.done <- nil // for the cleanup
	if st.Reason != "another Tether bridge took over this dev slot" {
		t.Fatalf("reason %q", st.Reason)
	}

	// An expired token is refused before the upgrade.
	expired := issue(t, "alice", "bridge", time.Nanosecond)
	c := runBridge(t, relay.ClientOptions{URL: hs.URL, Hello: hello("c"),
		Token: func(context.Context) (string, error) { return expired, nil }})
	st = c.await(t, relay.PhaseRejected)
	if err := <-c.done; !errors.Is(err, relay.ErrUnauthorized) {
		t.Fatalf("Run = %v, want ErrUnauthorized", err)
	}
	c.done <- nil
	if st.Reason != "the relay rejected the token (HTTP 401): token expired" {
		t.Fatalf("reason %q", st.Reason)
	}
}

func TestInteropTAGMode(t *testing.T) {
	hs := realRelay(t)
	tok := issue(t, "bob", "bridge", time.Hour)
	tools, routes, err := relay.FlattenTAGTools([]relay.ServerInfo{
		{Name: "one", Tools: []json.RawMessage{json.RawMessage(`{"name":"add","inputSchema":{"type":"object"}}`)}},
		{Name: "two", Tools: []json.RawMessage{json.RawMessage(`{"name":"add","inputSchema":{"type":"object"}}`)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	b := runBridge(t, relay.ClientOptions{URL: hs.URL, TAG: true, DevID: "bob",
		Token: func(context.Context) (string, error) { return tok, nil },
		Hello: func() relay.Frame { return relay.Frame{Kind: relay.KindHello, Version: "0.1.0", Tools: tools} }})
	b.await(t, relay.PhaseConnected)
	awaitSlot(t, hs.URL, "bob", tok, "0.1.0")

	// A stateless-era tools/call through the relay's MCP façade becomes an
	// rpc.request for the flattened name.
	resp := postMCP(t, hs.URL+"/mcp/bob/default", issue(t, "bob", "client", time.Hour),
		`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"two__add","arguments":{"a":1},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`,
		"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "two__add")
	var req relay.Frame
	select {
	case req = <-b.frames:
	case body := <-resp:
		t.Fatalf("the relay answered without asking the bridge: %s", body)
	case <-time.After(10 * time.Second):
		t.Fatal("bridge got no frame")
	}
	if req.Kind != relay.KindRPCRequest || req.Method != "call" || req.Path != "two__add" || string(req.Body) != `{"a":1}` {
		t.Fatalf("bridge got %+v", req)
	}
	if r := routes[req.Path]; r != (relay.TAGRoute{Server: "two", Tool: "add"}) {
		t.Fatalf("route %+v", r)
	}
	if err := b.c.Send(context.Background(), relay.Frame{Kind: relay.KindRPCResponse, ID: req.ID, Status: 200,
		Body: json.RawMessage(`{"content":[{"type":"text","text":"routed to two"}]}`)}); err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-resp:
		if !strings.Contains(body, "routed to two") {
			t.Fatalf("client got %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no HTTP response")
	}
}
