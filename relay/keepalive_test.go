package relay

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// countPings makes the relay side count the bridge's pings (and still
// answer them, as gorilla's default handler does). Call before sc.read().
func countPings(sc *stubConn) *atomic.Int32 {
	var n atomic.Int32
	sc.ws.SetPingHandler(func(data string) error {
		n.Add(1)
		return sc.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	return &n
}

// A relay that never pings (a TAG relay) gets the bridge's ping every
// PingInterval, as before keepalive became adaptive.
func TestClientPingsARelayThatDoesNot(t *testing.T) {
	rs := newRelayStub(t)
	rec := newRecorder()
	const interval = 50 * time.Millisecond
	start(t, ClientOptions{URL: rs.srv.URL, Token: staticToken(testToken), OnState: rec.onState,
		PingInterval: interval, PongWait: 20 * interval})
	sc := rs.next()
	pings := countPings(sc)
	sc.read()
	rec.waitPhase(t, PhaseConnected)
	const window = 20 * interval
	time.Sleep(window) // the measured quantity is a rate over this window
	got := pings.Load()
	if got < 10 || got > 21 {
		t.Fatalf("bridge pinged %d times in %v with PingInterval %v, want about 20", got, window, interval)
	}
	t.Logf("bridge pinged %d times in %v", got, window)
}

// A relay that pings every PingInterval keeps the socket alive for both:
// the bridge sends (almost) no pings of its own. At most one is allowed: the
// bridge's first timer may fire before the relay's first ping, while the
// bridge does not yet know the relay pings.
func TestClientDoesNotPingARelayThatPings(t *testing.T) {
	rs := newRelayStub(t)
	rec := newRecorder()
	const interval = 100 * time.Millisecond
	start(t, ClientOptions{URL: rs.srv.URL, Token: staticToken(testToken), OnState: rec.onState,
		PingInterval: interval, PongWait: 10 * interval})
	sc := rs.next()
	pings := countPings(sc)
	pongs := make(chan struct{}, 64)
	sc.ws.SetPongHandler(func(string) error { pongs <- struct{}{}; return nil })
	sc.read()
	rec.waitPhase(t, PhaseConnected)
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				if sc.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)) != nil {
					return
				}
			case <-done:
				return
			}
		}
	}()
	const rounds = 15
	for i := range rounds {
		select {
		case <-pongs: // the bridge answers every relay ping
		case <-time.After(waitLong):
			t.Fatalf("no pong for relay ping %d", i+1)
		}
	}
	if got := pings.Load(); got > 1 {
		t.Fatalf("bridge sent %d pings over %d relay pings, want at most 1", got, rounds)
	}
	if n := rs.dials.Load(); n != 1 {
		t.Fatalf("socket was replaced: %d dials", n)
	}
}

// Frames from one goroutine arrive in the order sent, whichever way each
// goes: inline (Send on an idle socket), or queued (SendBatched, or Send
// while the pump is busy with a big frame or a batch).
func TestClientSendKeepsOrderAcrossInlineAndQueue(t *testing.T) {
	rs := newRelayStub(t)
	rec := newRecorder()
	r := start(t, ClientOptions{URL: rs.srv.URL, Token: staticToken(testToken), OnState: rec.onState})
	sc := rs.next()
	sc.read()
	rec.waitPhase(t, PhaseConnected)
	big := strings.Repeat("x", inlineSendMax) // over the inline limit: queued
	const n = 2000
	for i := range n {
		text := strconv.Itoa(i)
		if i%97 == 0 {
			text += big
		}
		f := Frame{Kind: KindMCP, Server: "s", Session: "a", Msg: json.RawMessage(`"` + text + `"`)}
		var err error
		if i%3 == 0 {
			err = r.c.SendBatched(context.Background(), f)
		} else {
			err = r.c.Send(context.Background(), f)
		}
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for i := range n {
		f := sc.nextFrame(t)
		var s string
		if err := json.Unmarshal(f.Msg, &s); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimRight(s, "x"); got != strconv.Itoa(i) {
			t.Fatalf("frame %d carried %q: out of order", i, got)
		}
	}
}
