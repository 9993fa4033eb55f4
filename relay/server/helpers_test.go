package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tether-dev/tether/internal/mcpwire"
	"github.com/tether-dev/tether/relay"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

type testRelay struct {
	srv *Server
	ts  *httptest.Server
	// mts serves the metrics on a listener of their own, as
	// tether-relay serve --metrics-listen does; ts does not serve them.
	mts *httptest.Server
}

func newTestRelay(t testing.TB, callTimeout time.Duration) *testRelay {
	t.Helper()
	var logger *slog.Logger
	if os.Getenv("RELAY_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return startRelay(t, &Server{Verifier: &Verifier{Secret: testSecret}, Logger: logger, CallTimeout: callTimeout})
}

// startRelay serves srv on a loopback port until the test ends.
func startRelay(t testing.TB, srv *Server) *testRelay {
	ts := httptest.NewServer(srv)
	mts := httptest.NewServer(srv.MetricsHandler())
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
		mts.Close()
	})
	return &testRelay{srv: srv, ts: ts, mts: mts}
}

// metrics reads the relay's metrics from their own listener.
func (r *testRelay) metrics(t testing.TB) string {
	t.Helper()
	resp, err := http.Get(r.mts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %s", resp.Status)
	}
	return readAll(t, resp)
}

func (r *testRelay) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(r.ts.URL, "http") + path
}
func (r *testRelay) mcpURL(dev, server string) string {
	return r.ts.URL + "/mcp/" + dev + "/" + server
}

func mustToken(t testing.TB, dev, scope string) string {
	t.Helper()
	tok, err := Issue(testSecret, dev, scope, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// bearerTransport adds a token to every request of an HTTP client.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func authClient(token string) *http.Client {
	return &http.Client{Transport: bearerTransport{token}}
}

// connectClient opens a go-sdk client session through the relay at the
// given protocol version.
func connectClient(t testing.TB, url, token, version string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "relay-test", Version: "1"}, opts)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: authClient(token)},
		&mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect at %s: %v", version, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// ---- the fake bridge: a WebSocket client running real go-sdk servers ----

type echoIn struct {
	Message string `json:"message"`
}

type noIn struct{}

// newTestMCPServer is the bridge's "child": echo, progress and slow tools.
func newTestMCPServer(slowStarted chan<- struct{}) *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: "everything-fake", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "echo", Description: "echo the message"},
		func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Message}}}, nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "progress", Description: "report progress once, then finish"},
		func(ctx context.Context, req *mcp.CallToolRequest, in noIn) (*mcp.CallToolResult, any, error) {
			if tok := req.Params.GetProgressToken(); tok != nil {
				err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
					ProgressToken: tok, Progress: 1, Total: 2, Message: "halfway"})
				if err != nil {
					return nil, nil, err
				}
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "slow", Description: "block until cancelled"},
		func(ctx context.Context, req *mcp.CallToolRequest, in noIn) (*mcp.CallToolResult, any, error) {
			select {
			case slowStarted <- struct{}{}:
			default:
			}
			<-ctx.Done()
			return nil, nil, ctx.Err()
		})
	return srv
}

type fakeBridge struct {
	t   testing.TB
	ws  *websocket.Conn
	srv *mcp.Server

	wmu sync.Mutex // one writer at a time

	mu       sync.Mutex
	sessions map[string]*fakeSession

	SlowStarted chan struct{}
	Other       chan relay.Frame     // frames that are not mcp (error frames)
	Cancelled   chan json.RawMessage // params of notifications/cancelled seen
	Closed      chan string          // session ids closed by the relay
	Gone        chan struct{}        // read loop ended
	Inits       chan json.RawMessage // ids of the initialize requests seen
	// FailInit makes the bridge answer initialize with the error mcpchild
	// gives for a server that is not ready.
	FailInit  atomic.Bool
	closeCode int
}

type fakeSession struct {
	conn     mcp.Connection
	mu       sync.Mutex
	progress map[string]json.RawMessage // progress token → request id
}

// dialFakeBridge connects a Tether bridge for dev serving "everything".
func dialFakeBridge(t testing.TB, r *testRelay, dev string) *fakeBridge {
	t.Helper()
	fb, resp, err := tryDialFakeBridge(r, mustToken(t, dev, ScopeBridge), dev)
	if err != nil {
		t.Fatalf("dial fake bridge: %v (resp %v)", err, resp)
	}
	fb.t = t
	t.Cleanup(func() { fb.ws.Close() })
	fb.waitOnline(t, r, dev)
	return fb
}

func tryDialFakeBridge(r *testRelay, token, dev string) (*fakeBridge, *http.Response, error) {
	h := http.Header{"Authorization": {"Bearer " + token}}
	ws, resp, err := websocket.DefaultDialer.Dial(r.wsURL("/v1/connect"), h)
	if err != nil {
		return nil, resp, err
	}
	slow := make(chan struct{}, 16)
	fb := &fakeBridge{
		ws: ws, srv: newTestMCPServer(slow), sessions: make(map[string]*fakeSession),
		SlowStarted: slow,
		Other:       make(chan relay.Frame, 64),
		Cancelled:   make(chan json.RawMessage, 64),
		Closed:      make(chan string, 1024),
		Gone:        make(chan struct{}),
		Inits:       make(chan json.RawMessage, 64),
	}
	fb.write(relay.Frame{Kind: relay.KindHello, Protocol: relay.ProtocolVersion, DevID: dev, Version: "test",
		Servers: []relay.ServerInfo{{Name: "everything", State: "ready", Era: "2025", ToolCount: 3, Restarts: 1}}})
	go fb.readLoop()
	return fb, resp, nil
}

// waitOnline waits until the relay has taken our hello and the slot. The
// relay reads frames in order and registers before its read loop, so an
// answer to a frame sent after the hello proves both: we send a frame of
// an unknown kind and wait for the relay's unknown_kind error frame.
func (fb *fakeBridge) waitOnline(t testing.TB, r *testRelay, dev string) {
	t.Helper()
	if err := fb.write(relay.Frame{Kind: "x-sync"}); err != nil {
		t.Fatalf("write sync frame: %v", err)
	}
	select {
	case f := <-fb.Other:
		if f.Kind != relay.KindError || f.Code != relay.ErrCodeUnknownKind {
			t.Fatalf("sync answer = %+v, want an unknown_kind error frame", f)
		}
	case <-fb.Gone:
		t.Fatalf("fake bridge closed before coming online (code %d)", fb.closeCode)
	case <-time.After(10 * time.Second):
		t.Fatal("bridge never came online")
	}
}

func (fb *fakeBridge) write(f relay.Frame) error {
	data, err := relay.EncodeFrame(f)
	if err != nil {
		return err
	}
	return fb.writeRaw(data)
}

func (fb *fakeBridge) writeRaw(data []byte) error {
	fb.wmu.Lock()
	defer fb.wmu.Unlock()
	return fb.ws.WriteMessage(websocket.TextMessage, data)
}

func (fb *fakeBridge) readLoop() {
	defer close(fb.Gone)
	defer fb.closeSessions()
	for {
		_, data, err := fb.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				fb.closeCode = ce.Code
			}
			return
		}
		f, err := relay.DecodeFrame(data)
		if err != nil {
			continue
		}
		switch f.Kind {
		case relay.KindMCP:
			fb.deliver(f)
		case relay.KindClose:
			fb.mu.Lock()
			s := fb.sessions[f.Session]
			delete(fb.sessions, f.Session)
			fb.mu.Unlock()
			if s != nil {
				s.conn.Close()
			}
			select {
			case fb.Closed <- f.Session:
			default: // nobody is counting closes (benchmarks)
			}
		default:
			select {
			case fb.Other <- f:
			default:
			}
		}
	}
}

func (fb *fakeBridge) closeSessions() {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	for id, s := range fb.sessions {
		s.conn.Close()
		delete(fb.sessions, id)
	}
}

// deliver writes one relay message into the session's in-memory MCP
// connection, opening the session (a fresh go-sdk server session) on its
// first frame.
func (fb *fakeBridge) deliver(f relay.Frame) {
	fb.mu.Lock()
	s := fb.sessions[f.Session]
	if s == nil {
		ct, st := mcp.NewInMemoryTransports()
		if _, err := fb.srv.Connect(context.Background(), st, nil); err != nil {
			fb.mu.Unlock()
			fb.t.Errorf("fake bridge: server connect: %v", err)
			return
		}
		conn, err := ct.Connect(context.Background())
		if err != nil {
			fb.mu.Unlock()
			fb.t.Errorf("fake bridge: client connect: %v", err)
			return
		}
		s = &fakeSession{conn: conn, progress: make(map[string]json.RawMessage)}
		fb.sessions[f.Session] = s
		go fb.pump(f.Server, f.Session, s)
	}
	fb.mu.Unlock()

	var pk struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Meta struct {
				ProgressToken json.RawMessage `json:"progressToken"`
			} `json:"_meta"`
		} `json:"params"`
	}
	json.Unmarshal(f.Msg, &pk)
	if pk.Method == "initialize" {
		select {
		case fb.Inits <- pk.ID:
		default:
		}
		if fb.FailInit.Load() {
			fb.write(relay.Frame{Kind: relay.KindMCP, Server: f.Server, Session: f.Session,
				Msg: rpcErrorBody(pk.ID, mcpwire.CodeUnavailable, `mcp server "everything" is not ready (starting)`)})
			return
		}
	}
	if len(pk.Params.Meta.ProgressToken) > 0 && len(pk.ID) > 0 {
		s.mu.Lock()
		s.progress[string(pk.Params.Meta.ProgressToken)] = pk.ID
		s.mu.Unlock()
	}
	if pk.Method == "notifications/cancelled" {
		var p struct {
			Params json.RawMessage `json:"params"`
		}
		json.Unmarshal(f.Msg, &p)
		select {
		case fb.Cancelled <- p.Params:
		default:
		}
	}
	msg, err := jsonrpc.DecodeMessage(f.Msg)
	if err != nil {
		fb.t.Errorf("fake bridge: decode %s: %v", f.Msg, err)
		return
	}
	s.conn.Write(context.Background(), msg)
}

// pump sends everything the session's server writes back as mcp frames,
// marking progress with `related` so it reaches the right POST stream.
func (fb *fakeBridge) pump(server, session string, s *fakeSession) {
	for {
		msg, err := s.conn.Read(context.Background())
		if err != nil {
			return
		}
		data, err := jsonrpc.EncodeMessage(msg)
		if err != nil {
			continue
		}
		f := relay.Frame{Kind: relay.KindMCP, Server: server, Session: session, Msg: data}
		if req, ok := msg.(*jsonrpc.Request); ok && req.Method == "notifications/progress" {
			var p struct {
				ProgressToken json.RawMessage `json:"progressToken"`
			}
			json.Unmarshal(req.Params, &p)
			s.mu.Lock()
			f.Related = s.progress[string(p.ProgressToken)]
			s.mu.Unlock()
		}
		if err := fb.write(f); err != nil {
			return
		}
	}
}

func toolText(t testing.TB, res *mcp.CallToolResult) string {
	t.Helper()
	if res == nil || len(res.Content) == 0 {
		t.Fatalf("empty tool result: %+v", res)
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("content is %T, want text", res.Content[0])
	}
	return tc.Text
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
