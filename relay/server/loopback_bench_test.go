package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tether-dev/tether/internal/mcpwire"
	"github.com/tether-dev/tether/relay"
)

// startEchoBridge connects a real relay.Client as dev's bridge. Every
// request it receives is answered at once with {"result":{"echo":<params>}}
// under the same id, so the figures measure the relay, the socket and the
// frame codec on both sides, not a child.
// It returns a counter of the bridge socket's network writes (syscalls).
func startEchoBridge(tb testing.TB, r *testRelay, dev string) *atomic.Int64 {
	tb.Helper()
	writes := new(atomic.Int64)
	dialer := *websocket.DefaultDialer
	dialer.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: nc, writes: writes}, nil
	}
	var client *relay.Client
	online := make(chan struct{})
	var once, syncOnce sync.Once
	synced := make(chan struct{}) // the relay answered a frame sent after the hello: registered
	client = relay.NewClient(relay.ClientOptions{
		URL:    r.ts.URL,
		Dialer: &dialer,
		Token:  func(context.Context) (string, error) { return mustToken(tb, dev, ScopeBridge), nil },
		Hello: func() relay.Frame {
			return relay.Frame{Kind: relay.KindHello, Protocol: relay.ProtocolVersion,
				Servers: []relay.ServerInfo{{Name: "echo", State: "ready", Era: "2026"}}}
		},
		OnState: func(s relay.ConnState) {
			if s.Phase == relay.PhaseConnected {
				once.Do(func() { close(online) })
			}
		},
		OnFrame: func(f relay.Frame) {
			if f.Kind == relay.KindError && f.Code == relay.ErrCodeUnknownKind {
				syncOnce.Do(func() { close(synced) })
			}
			if f.Kind != relay.KindMCP {
				return
			}
			var m struct {
				ID     json.RawMessage `json:"id"`
				Params json.RawMessage `json:"params"`
			}
			if json.Unmarshal(f.Msg, &m) != nil || len(m.ID) == 0 {
				return
			}
			resp := make([]byte, 0, 64+len(m.Params))
			resp = fmt.Appendf(resp, `{"jsonrpc":"2.0","id":%s,"result":{"echo":%s}}`, m.ID, orNull(m.Params))
			_ = client.Send(context.Background(), relay.Frame{Kind: relay.KindMCP, Server: f.Server, Session: f.Session, Msg: resp})
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); client.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	select {
	case <-online:
	case <-time.After(10 * time.Second):
		tb.Fatal("echo bridge did not connect")
	}
	// The client is connected once its hello is written; the relay
	// registers it once that is read. Its answer to a later frame proves it.
	if err := client.Send(context.Background(), relay.Frame{Kind: "x-sync"}); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-synced:
	case <-time.After(10 * time.Second):
		tb.Fatal("relay did not register the echo bridge")
	}
	return writes
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

// BenchmarkLoopbackRoundTrip: lean HTTP caller → relay → WebSocket →
// relay.Client → echo → back, at 1 and 32 calls in flight, for a 2025-era
// session (Mcp-Session-Id, what the bench harness's callers use) and for
// stateless 2026 POSTs. This is the relay's own hot path on both sides of
// the socket.
func BenchmarkLoopbackRoundTrip(b *testing.B) {
	for _, era := range []string{"2025", "2026"} {
		for _, inflight := range []int{1, 32} {
			b.Run(fmt.Sprintf("era=%s/inflight=%d", era, inflight), func(b *testing.B) {
				benchLoopback(b, era, inflight)
			})
		}
	}
}

func benchLoopback(b *testing.B, era string, inflight int) {
	r := newBenchRelay(b)
	writes := startEchoBridge(b, r, "alice")
	url := r.mcpURL("alice", "echo")
	token := mustToken(b, "alice", ScopeClient)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var next atomic.Int64
	sid := ""
	post := func(body string) (*http.Response, []byte, error) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if era == "2026" {
			req.Header.Set(headerProtocol, mcpwire.Version2026)
			req.Header.Set(headerMethod, "tools/call")
			req.Header.Set(headerName, "echo")
		} else if sid != "" {
			req.Header.Set(headerSession, sid)
			req.Header.Set(headerProtocol, "2025-11-25")
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, nil, err
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, data, err
	}
	if era == "2025" {
		resp, data, err := post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}`)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("initialize: %v %s", err, data)
		}
		if sid = resp.Header.Get(headerSession); sid == "" {
			b.Fatal("initialize answered without a session id")
		}
	}
	call := func() error {
		id := next.Add(1)
		resp, data, err := post(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`, id))
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !bytes.Contains(data, []byte(`"echo"`)) {
			return fmt.Errorf("status %d: %s", resp.StatusCode, data)
		}
		return nil
	}
	if err := call(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := writes.Load()
	var wg sync.WaitGroup
	work := make(chan struct{}, inflight)
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if err := call(); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	b.ReportMetric(float64(writes.Load()-start)/float64(b.N), "bridge-writes/op")
}
