package relay

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClientBeforeWaitFollowsABurst: frames that arrive together are all
// handed to OnFrame before BeforeWait runs, and BeforeWait runs right
// after the last of them, before the read loop waits for more; it runs
// once more when the socket ends (a frame arriving meanwhile would show
// as a "frame" event in between and fail the order check).
func TestClientBeforeWaitFollowsABurst(t *testing.T) {
	rs := newRelayStub(t)
	var mu sync.Mutex
	var events []string
	burstDone, ended := make(chan struct{}), make(chan struct{})
	frames := 0
	start(t, ClientOptions{
		URL:   rs.srv.URL,
		Token: staticToken(testToken),
		OnFrame: func(f Frame) {
			mu.Lock()
			events = append(events, "frame "+f.Session)
			frames++
			mu.Unlock()
		},
		BeforeWait: func() {
			mu.Lock()
			events = append(events, "wait")
			switch frames {
			case 3: // the burst is in
				frames = -1
				close(burstDone)
			case -1: // the socket was closed after the burst
				frames = -2
				close(ended)
			}
			mu.Unlock()
		},
	})
	sc := rs.next()
	// Three frames in one TCP write, as a relay's corked writer sends them.
	var burst []byte
	for _, s := range []string{"a", "b", "c"} {
		b, err := EncodeFrame(Frame{Kind: KindMCP, Server: "x", Session: s, Msg: []byte(`{"jsonrpc":"2.0","method":"m"}`)})
		if err != nil {
			t.Fatal(err)
		}
		burst = append(burst, 0x81, byte(len(b))) // unmasked text frame, < 126 bytes
		burst = append(burst, b...)
	}
	if _, err := sc.ws.UnderlyingConn().Write(burst); err != nil {
		t.Fatal(err)
	}
	select {
	case <-burstDone:
	case <-time.After(waitLong):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("no BeforeWait after the burst; events: %v", events)
	}
	mu.Lock()
	got := strings.Join(events, ",")
	mu.Unlock()
	if !strings.HasSuffix(got, "frame a,frame b,frame c,wait") {
		t.Fatalf("events %q: the burst's frames should come together, then one wait", got)
	}

	sc.ws.Close()
	select {
	case <-ended:
	case <-time.After(waitLong):
		t.Fatal("no BeforeWait when the socket ended")
	}
}
