package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tether-dev/tether/internal/testbin"
	"github.com/tether-dev/tether/mcpchild"
	"github.com/tether-dev/tether/relay"
)

// fakeRelay accepts one bridge socket and lets the test speak frames on it,
// so the bridge's frame handling is checked byte for byte.
type fakeRelay struct {
	srv   *httptest.Server
	conns chan *websocket.Conn
	paths chan string
}

func newFakeRelay(t *testing.T) *fakeRelay {
	f := &fakeRelay{conns: make(chan *websocket.Conn, 4), paths: make(chan string, 4)}
	up := websocket.Upgrader{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"error":"no"}`, http.StatusUnauthorized)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		f.paths <- r.URL.Path
		f.conns <- c
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func readFrame(t *testing.T, c *websocket.Conn) relay.Frame {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	f, err := relay.DecodeFrame(data)
	if err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return f
}

// readUntil skips frames (catalogs, mostly) until one matches.
func readUntil(t *testing.T, c *websocket.Conn, match func(relay.Frame) bool) relay.Frame {
	t.Helper()
	for {
		if f := readFrame(t, c); match(f) {
			return f
		}
	}
}

func writeFrame(t *testing.T, c *websocket.Conn, f relay.Frame) {
	t.Helper()
	b, err := relay.EncodeFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
}

func startBridge(t *testing.T, f *fakeRelay, tag bool) (*bridge, func()) {
	srv := testbin.Build(t, "./internal/testservers/mcpserver")
	b := newBridge(bridgeOptions{
		RelayURL: f.srv.URL,
		Token:    func(context.Context) (string, error) { return "tok", nil },
		TAG:      tag,
		DevID:    "alice",
		Servers:  map[string]mcpchild.Spec{"test": {Command: srv}},
		Version:  "t1",
		Hostname: "alice-laptop",
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// Children first, so the hello already lists the tools.
	go func() { done <- b.Run(ctx) }()
	return b, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func TestBridgeFrames(t *testing.T) {
	f := newFakeRelay(t)
	b, stop := startBridge(t, f, false)
	defer stop()
	c := <-f.conns
	defer c.Close()
	if p := <-f.paths; p != "/v1/connect" {
		t.Fatalf("dialled %s", p)
	}
	hello := readFrame(t, c)
	if hello.Kind != relay.KindHello || hello.Protocol != relay.ProtocolVersion || hello.DevID != "alice" || hello.Version != "t1" ||
		hello.Hostname != "alice-laptop" || len(hello.Servers) != 1 || hello.Servers[0].Name != "test" {
		t.Fatalf("hello = %+v", hello)
	}
	// A catalog follows once the child is ready.
	if err := b.Child("test").WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	cat := readUntil(t, c, func(f relay.Frame) bool {
		return f.Kind == relay.KindCatalog && f.Servers[0].State == "ready"
	})
	if cat.Servers[0].ToolCount == 0 || len(cat.Servers[0].Tools) != cat.Servers[0].ToolCount || cat.Servers[0].Era == "" {
		t.Fatalf("catalog = %+v", cat.Servers[0])
	}

	// A 2026-era request in a fresh session, answered in that session.
	req := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
	writeFrame(t, c, relay.Frame{Kind: relay.KindMCP, Server: "test", Session: "s1", Msg: json.RawMessage(req)})
	resp := readUntil(t, c, func(f relay.Frame) bool { return f.Kind == relay.KindMCP })
	if resp.Server != "test" || resp.Session != "s1" || !strings.Contains(string(resp.Msg), `"id":7`) || !strings.Contains(string(resp.Msg), `"hi"`) {
		t.Fatalf("response = %+v msg %s", resp, resp.Msg)
	}
	writeFrame(t, c, relay.Frame{Kind: relay.KindClose, Server: "test", Session: "s1"})

	// Unknown server: a JSON-RPC error in an mcp frame, plus an error frame.
	writeFrame(t, c, relay.Frame{Kind: relay.KindMCP, Server: "nope", Session: "s2", Msg: json.RawMessage(`{"jsonrpc":"2.0","id":"x1","method":"tools/list"}`)})
	e1 := readUntil(t, c, func(f relay.Frame) bool { return f.Kind != relay.KindCatalog })
	if e1.Kind != relay.KindMCP || e1.Session != "s2" || !strings.Contains(string(e1.Msg), `"id":"x1"`) || !strings.Contains(string(e1.Msg), `"error"`) {
		t.Fatalf("unknown server answer = %+v %s", e1, e1.Msg)
	}
	e2 := readUntil(t, c, func(f relay.Frame) bool { return f.Kind != relay.KindCatalog })
	if e2.Kind != relay.KindError || e2.Code != relay.ErrCodeUnknownServer || e2.Server != "nope" {
		t.Fatalf("unknown server error frame = %+v", e2)
	}

	// Unknown kind.
	writeFrame(t, c, relay.Frame{Kind: "frobnicate"})
	e3 := readUntil(t, c, func(f relay.Frame) bool { return f.Kind != relay.KindCatalog })
	if e3.Kind != relay.KindError || e3.Code != relay.ErrCodeUnknownKind {
		t.Fatalf("unknown kind answer = %+v", e3)
	}
}

func TestBridgeTAG(t *testing.T) {
	f := newFakeRelay(t)
	_, stop := startBridge(t, f, true)
	defer stop()
	// The first connection may carry an empty tool list (child not ready
	// yet); the bridge reconnects by itself once the list changes.
	c := <-f.conns
	if p := <-f.paths; p != "/dev/alice/connect" {
		t.Fatalf("dialled %s", p)
	}
	hello := readFrame(t, c)
	if !strings.Contains(string(hello.Tools), `"echo"`) {
		c = <-f.conns
		<-f.paths
		hello = readFrame(t, c)
	}
	defer c.Close()
	if hello.Kind != relay.KindHello || hello.Protocol != 0 || hello.Hostname != "" || !strings.Contains(string(hello.Tools), `"echo"`) {
		t.Fatalf("TAG hello = %+v tools %s", hello, hello.Tools)
	}
	writeFrame(t, c, relay.Frame{Kind: relay.KindRPCRequest, ID: json.RawMessage(`"r1"`), Method: "list"})
	writeFrame(t, c, relay.Frame{Kind: relay.KindRPCRequest, ID: json.RawMessage(`"r2"`), Method: "call", Path: "echo", Body: json.RawMessage(`{"text":"tag-hi"}`)})
	writeFrame(t, c, relay.Frame{Kind: relay.KindRPCRequest, ID: json.RawMessage(`"r3"`), Method: "call", Path: "no_such_tool"})
	writeFrame(t, c, relay.Frame{Kind: relay.KindRPCRequest, ID: json.RawMessage(`"r4"`), Method: "bogus"})
	got := map[string]relay.Frame{}
	for len(got) < 4 {
		fr := readFrame(t, c)
		if fr.Kind == relay.KindRPCResponse {
			got[string(fr.ID)] = fr
		}
	}
	if r := got[`"r1"`]; r.Status != 200 || !strings.Contains(string(r.Body), `"tools":[`) {
		t.Errorf("list = %d %s", r.Status, r.Body)
	}
	if r := got[`"r2"`]; r.Status != 200 || !strings.Contains(string(r.Body), "tag-hi") {
		t.Errorf("call = %d %s", r.Status, r.Body)
	}
	if r := got[`"r3"`]; r.Status < 400 || !strings.Contains(string(r.Body), `"error"`) {
		t.Errorf("unknown tool = %d %s", r.Status, r.Body)
	}
	if r := got[`"r4"`]; r.Status != 400 {
		t.Errorf("unknown method = %d %s", r.Status, r.Body)
	}

	// A tool added at runtime reaches the TAG relay in a fresh hello.
	writeFrame(t, c, relay.Frame{Kind: relay.KindRPCRequest, ID: json.RawMessage(`"r5"`), Method: "call", Path: "add_tool", Body: json.RawMessage(`{"name":"late_tool"}`)})
	c2 := <-f.conns
	defer c2.Close()
	<-f.paths
	if h := readFrame(t, c2); !strings.Contains(string(h.Tools), `"late_tool"`) {
		t.Fatalf("hello after add_tool lacks it: %s", h.Tools)
	}
}

// TestBridgeSetRelayWhileHello: the link's hello reads the relay target
// while SetRelay changes it; under -race an unlocked read fails here. The
// hello must carry one whole target, never a mix of two.
func TestBridgeSetRelayWhileHello(t *testing.T) {
	t.Parallel()
	b := newBridge(bridgeOptions{RelayURL: "http://a.invalid", DevID: "a"})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			if i%2 == 0 {
				b.SetRelay("http://b.invalid", false, "b")
			} else {
				b.SetRelay("http://a.invalid", false, "a")
			}
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		if f := b.hello(); f.DevID != "a" && f.DevID != "b" {
			t.Fatalf("hello dev = %q", f.DevID)
		}
	}
}
