package relay

import (
	"context"
	"testing"

	"github.com/gorilla/websocket"
)

// benchmarkRoundTrip measures one relay→bridge→relay round trip: the relay
// stub writes a frame, the client's OnFrame answers it with send, the stub
// reads the answer. Send writes inline when the socket is idle; SendBatched
// always goes through the write pump (the path every frame took before).
// Under load Send queues too (see busyGap); this is the lone-call case.
func benchmarkRoundTrip(b *testing.B, batched bool) {
	rs := newRelayStub(b)
	var c *Client
	msg := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}]}}`)
	c = NewClient(ClientOptions{URL: rs.srv.URL, Token: staticToken(testToken),
		OnFrame: func(f Frame) {
			out := Frame{Kind: KindMCP, Server: f.Server, Session: f.Session, Msg: msg}
			if batched {
				c.SendBatched(context.Background(), out)
			} else {
				c.Send(context.Background(), out)
			}
		}})
	// The stub answers faster than busyGap, which would make every Send
	// queue; the benchmark compares the two write paths themselves.
	c.busyGap = 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	sc := rs.next()
	req, _ := EncodeFrame(Frame{Kind: KindMCP, Server: "s", Session: "a", Msg: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`)})
	b.ResetTimer()
	for range b.N {
		if err := sc.ws.WriteMessage(websocket.TextMessage, req); err != nil {
			b.Fatal(err)
		}
		if _, _, err := sc.ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRoundTripInline(b *testing.B)  { benchmarkRoundTrip(b, false) }
func BenchmarkRoundTripBatched(b *testing.B) { benchmarkRoundTrip(b, true) }
