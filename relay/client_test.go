package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const testToken = "tok-SECRET-abcdef"

// syncBuffer is a log sink safe for the client's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestClientConnectsSendsHelloAndExchangesFrames(t *testing.T) {
	rs := newRelayStub(t)
	rec := newRecorder()
	var logs syncBuffer
	r := start(t, ClientOptions{
		URL:   rs.srv.URL + "/base/",
		Token: staticToken(testToken),
		DevID: "alice",
		Hello: func() Frame {
			return Frame{Kind: KindHello, Protocol: ProtocolVersion, Version: "test",
				Servers: []ServerInfo{{Name: "echo", State: "ready", ToolCount: 1}}}
		},
		OnFrame: rec.onFrame,
		OnState: rec.onState,
		Logger:  slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})

	sc := rs.next()
	sc.read()
	if sc.path != "/base/v1/connect" {
		t.Errorf("dialled path %q, want /base/v1/connect", sc.path)
	}
	if sc.auth != "Bearer "+testToken {
		t.Errorf("Authorization = %q", sc.auth)
	}
	if sc.hello.Kind != KindHello || sc.hello.Protocol != ProtocolVersion || sc.hello.DevID != "alice" ||
		len(sc.hello.Servers) != 1 || sc.hello.Servers[0].Name != "echo" {
		t.Errorf("first frame = %+v, want the hello", sc.hello)
	}
	st, _ := rec.waitPhase(t, PhaseConnected)
	if st.Since.IsZero() || r.c.State().Phase != PhaseConnected {
		t.Errorf("state = %+v", r.c.State())
	}

	// relay → bridge
	in := Frame{Kind: KindMCP, Server: "echo", Session: "s1", Msg: json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)}
	sc.write(t, in)
	got := rec.nextFrame(t)
	if got.Kind != KindMCP || got.Session != "s1" || string(got.Msg) != string(in.Msg) {
		t.Errorf("client got %+v", got)
	}

	// bridge → relay: 20 senders at once, every frame intact.
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":{"text":"%s"}}`, i, strings.Repeat("x", i*1000))
			errs <- r.c.Send(context.Background(), Frame{Kind: KindMCP, Server: "echo", Session: "s1",
				Msg: json.RawMessage(msg), Related: json.RawMessage(fmt.Sprint(i))})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	seen := map[int]bool{}
	for range n {
		f := sc.nextFrame(t)
		var m struct {
			ID     int `json:"id"`
			Result struct {
				Text string `json:"text"`
			} `json:"result"`
		}
		if err := json.Unmarshal(f.Msg, &m); err != nil {
			t.Fatalf("relay got a broken msg: %v", err)
		}
		if m.Result.Text != strings.Repeat("x", m.ID*1000) || string(f.Related) != fmt.Sprint(m.ID) || seen[m.ID] {
			t.Fatalf("frame %d arrived damaged or twice: %+v", m.ID, f)
		}
		seen[m.ID] = true
	}

	// Stop: a normal close frame reaches the relay, Run returns ctx.Err().
	r.cancel()
	if err := r.wait(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if err := sc.waitEnded(t); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("relay side ended with %v, want close 1000", err)
	}
	if s := r.c.State(); s.Phase != PhaseOffline {
		t.Errorf("state after stop = %+v", s)
	}
	if err := r.c.Send(context.Background(), Frame{Kind: KindCatalog}); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Send after stop = %v, want ErrNotConnected", err)
	}
	if strings.Contains(logs.String(), testToken) || !strings.Contains(logs.String(), "relay connected") {
		t.Errorf("logs leak the token or miss the connect line:\n%s", logs.String())
	}
}

func TestClientSendBeforeRunIsNotConnected(t *testing.T) {
	c := NewClient(ClientOptions{URL: "http://127.0.0.1:1", Token: staticToken("x")})
	if err := c.Send(context.Background(), Frame{Kind: KindCatalog}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Send = %v, want ErrNotConnected", err)
	}
	if s := c.State(); s.Phase != PhaseOffline {
		t.Fatalf("state = %+v", s)
	}
}

func TestClientTAGMode(t *testing.T) {
	rs := newRelayStub(t)
	rec := newRecorder()
	r := start(t, ClientOptions{
		URL: rs.srv.URL, Token: staticToken(testToken), TAG: true, DevID: "bob",
		Hello:   func() Frame { return Frame{Kind: KindHello, Version: "0.1.0"} },
		OnFrame: rec.onFrame, OnState: rec.onState,
	})
	sc := rs.next()
	sc.read()
	if sc.path != "/dev/bob/connect" {
		t.Errorf("path = %q", sc.path)
	}
	raw, _ := json.Marshal(sc.hello)
	if string(raw) != `{"kind":"hello","devId":"bob","version":"0.1.0","tools":[]}` {
		t.Errorf("TAG hello = %s", raw)
	}
	rec.waitPhase(t, PhaseConnected)
	sc.write(t, Frame{Kind: KindRPCRequest, ID: json.RawMessage(`"r-1"`), Method: "call", Path: "add", Body: json.RawMessage(`{"a":1}`)})
	req := rec.nextFrame(t)
	if req.Kind != KindRPCRequest || string(req.ID) != `"r-1"` || req.Path != "add" {
		t.Fatalf("client got %+v", req)
	}
	if err := r.c.Send(context.Background(), Frame{Kind: KindRPCResponse, ID: req.ID, Status: 200, Body: json.RawMessage(`{"content":[]}`)}); err != nil {
		t.Fatal(err)
	}
	resp := sc.nextFrame(t)
	if resp.Kind != KindRPCResponse || string(resp.ID) != `"r-1"` || resp.Status != 200 || string(resp.Body) != `{"content":[]}` {
		t.Fatalf("relay got %+v", resp)
	}
}

func TestClientAnswersUndecodableFrames(t *testing.T) {
	rs := newRelayStub(t)
	rec := newRecorder()
	start(t, ClientOptions{URL: rs.srv.URL, Token: staticToken(testToken), OnFrame: rec.onFrame, OnState: rec.onState})
	sc := rs.next()
	sc.read()
	if err := sc.ws.WriteMessage(websocket.TextMessage, []byte(`{"kind":"mcp"}`)); err != nil {
		t.Fatal(err)
	}
	f := sc.nextFrame(t)
	if f.Kind != KindError || f.Code != ErrCodeBadFrame {
		t.Fatalf("relay got %+v, want an error frame bad_frame", f)
	}
	// The socket stays up: the next good frame is delivered.
	sc.write(t, Frame{Kind: KindClose, Server: "a", Session: "s"})
	if got := rec.nextFrame(t); got.Kind != KindClose {
		t.Fatalf("client got %+v", got)
	}
	if rs.dials.Load() != 1 {
		t.Fatalf("dials = %d, want 1", rs.dials.Load())
	}
}

func TestClientStopsWhenReplaced(t *testing.T) {
	rs := newRelayStub(t)
	rec := newRecorder()
	r := start(t, ClientOptions{URL: rs.srv.URL, Token: staticToken(testToken), OnState: rec.onState,
		BackoffBase: time.Millisecond, BackoffCap: time.Millisecond})
	sc := rs.next()
	sc.read()
	rec.waitPhase(t, PhaseConnected)
	sc.closeWith(t, CloseReplaced, "replaced")
	err := r.wait(t)
	if !errors.Is(err, ErrReplaced) || errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Run = %v, want ErrReplaced", err)
	}
	st, _ := rec.waitPhase(t, PhaseRejected)
	if st.Reason != "another Tether bridge took over this dev slot" || r.c.State().Phase != PhaseRejected {
		t.Fatalf("state = %+v", st)
	}
	if n := rs.dials.Load(); n != 1 {
		t.Fatalf("dials = %d, want 1 (no reconnect after 4001)", n)
	}

	// Run may be called again on the same client (the app's Connect command).
	ctx, cancel := context.WithCancel(context.Background())
	again := make(chan error, 1)
	go func() { again <- r.c.Run(ctx) }()
	rs.next().read()
	rec.waitPhase(t, PhaseConnected)
	cancel()
	if err := <-again; !errors.Is(err, context.Canceled) {
		t.Fatalf("second Run = %v", err)
	}
	if n := rs.dials.Load(); n != 2 {
		t.Fatalf("dials = %d after a second Run, want 2", n)
	}
}

func TestClientStopsOnAuthRejection(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		close      int
		wantReason string
	}{
		{"http401", http.StatusUnauthorized, 0, "the relay rejected the token (HTTP 401): token expired for [token]"},
		{"http403", http.StatusForbidden, 0, "the relay rejected the token (HTTP 403): token expired for [token]"},
		{"close4003", 0, CloseUnauthorized, "the relay rejected the token (close 4003): token expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := newRelayStub(t)
			if tc.status != 0 {
				rs.refuse = func(_ int, w http.ResponseWriter, r *http.Request) bool {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(tc.status)
					// A careless relay echoing the token must not leak it.
					tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
					fmt.Fprintf(w, `{"error":"token expired for %s"}`, tok)
					return true
				}
			}
			rec := newRecorder()
			r := start(t, ClientOptions{URL: rs.srv.URL, Token: staticToken(testToken), OnState: rec.onState,
				BackoffBase: time.Millisecond, BackoffCap: time.Millisecond})
			if tc.close != 0 {
				sc := rs.next()
				sc.read()
				sc.closeWith(t, tc.close, "token expired")
			}
			err := r.wait(t)
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("Run = %v, want ErrUnauthorized", err)
			}
			st, _ := rec.waitPhase(t, PhaseRejected)
			if st.Reason != tc.wantReason {
				t.Fatalf("reason = %q, want %q", st.Reason, tc.wantReason)
			}
			if strings.Contains(st.Reason+st.LastError+err.Error(), testToken) {
				t.Fatalf("the token leaked into %q / %q", st.Reason, err)
			}
			if n := rs.dials.Load(); n != 1 {
				t.Fatalf("dials = %d, want 1", n)
			}
		})
	}
}

func TestClientReconnectsWithBackoff(t *testing.T) {
	rs := newRelayStub(t)
	rs.refuse = func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n == 3 { // a relay restarting behind a proxy: retried, not terminal
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	rec := newRecorder()
	start(t, ClientOptions{URL: rs.srv.URL, Token: staticToken(testToken), OnState: rec.onState,
		BackoffBase: time.Millisecond, BackoffCap: 5 * time.Millisecond})

	// 1: a normal close from the relay.
	sc := rs.next()
	sc.read()
	rec.waitPhase(t, PhaseConnected)
	sc.closeWith(t, websocket.CloseNormalClosure, "bye")
	st, seen := rec.waitPhase(t, PhaseBackoff)
	if st.Attempt != 1 || st.LastError == "" || st.NextRetry.Before(st.Since) {
		t.Errorf("backoff state = %+v (seen %v)", st, seen)
	}

	// 2: the TCP connection just drops (the relay died): the relay went
	// away, so the wait stays within NetBackoffCap and the ordinary
	// backoff does not climb.
	sc = rs.next()
	rec.waitPhase(t, PhaseConnected)
	sc.ws.UnderlyingConn().Close()
	st, _ = rec.waitPhase(t, PhaseBackoff)
	if st.Attempt != 1 || st.NextRetry.Sub(st.Since) > NetBackoffCap {
		t.Errorf("after a dropped socket: %+v, want attempt 1 and a wait ≤ %v", st, NetBackoffCap)
	}

	// 3 is refused with 503 (climbs), 4 connects.
	st, _ = rec.waitPhase(t, PhaseBackoff)
	if st.Attempt != 2 || !strings.Contains(st.LastError, "503") {
		t.Errorf("after a 503: %+v", st)
	}
	rs.next().read()
	rec.waitPhase(t, PhaseConnected)
	if n := rs.dials.Load(); n != 4 {
		t.Fatalf("dials = %d, want 4", n)
	}
}

func TestClientDetectsHalfOpenSocket(t *testing.T) {
	rs := newRelayStub(t)
	rec := newRecorder()
	const pongWait = 400 * time.Millisecond
	start(t, ClientOptions{URL: rs.srv.URL, Token: staticToken(testToken), OnState: rec.onState,
		PingInterval: 50 * time.Millisecond, PongWait: pongWait,
		BackoffBase: time.Millisecond, BackoffCap: time.Millisecond})

	// The relay accepts and then never reads again: no pongs, no frames.
	rs.next()
	up, _ := rec.waitPhase(t, PhaseConnected)
	rs.next().read() // the client gave up on the silent socket and dialled again
	st, seen := rec.waitPhase(t, PhaseConnected)
	took := st.Since.Sub(up.Since)
	if took < pongWait || took > pongWait+2*time.Second {
		t.Fatalf("redial after %v, want about PongWait (%v); phases %v", took, pongWait, seen)
	}
	t.Logf("half-open socket replaced after %v (PongWait %v)", took, pongWait)
}

func TestClientPongsKeepAnIdleSocketUp(t *testing.T) {
	rs := newRelayStub(t)
	rec := newRecorder()
	const pongWait = 200 * time.Millisecond
	c := start(t, ClientOptions{URL: rs.srv.URL, Token: staticToken(testToken), OnState: rec.onState,
		PingInterval: 20 * time.Millisecond, PongWait: pongWait}).c
	sc := rs.next()
	sc.read() // reading makes gorilla answer pings
	rec.waitPhase(t, PhaseConnected)
	// Idle for 5×PongWait: only pings and pongs cross. The socket must stay
	// up; a relay-side frame afterwards proves it.
	timer := time.NewTimer(5 * pongWait)
	select {
	case s := <-rec.states:
		t.Fatalf("state changed while idle: %+v", s)
	case <-timer.C:
	}
	if err := c.Send(context.Background(), Frame{Kind: KindCatalog}); err != nil {
		t.Fatal(err)
	}
	if f := sc.nextFrame(t); f.Kind != KindCatalog || rs.dials.Load() != 1 {
		t.Fatalf("got %+v after %d dials", f, rs.dials.Load())
	}
}

func TestClientKickCutsBackoffShort(t *testing.T) {
	rs := newRelayStub(t)
	rs.refuse = func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n == 1 {
			http.Error(w, "down", http.StatusBadGateway)
			return true
		}
		return false
	}
	rec := newRecorder()
	clock := newFakeClock()
	r := start(t, ClientOptions{URL: rs.srv.URL, Token: staticToken(testToken), OnState: rec.onState,
		BackoffBase: time.Hour, BackoffCap: time.Hour, Clock: clock},
		func(c *Client) { c.randN = func(n int64) int64 { return n - 1 } })

	ft := clock.nextTimer(t) // waiting an hour (the fake timer never fires by itself)
	st, _ := rec.waitPhase(t, PhaseBackoff)
	if ft.d != time.Hour || !st.NextRetry.Equal(clock.Now().Add(time.Hour)) {
		t.Fatalf("waiting %v, state %+v", ft.d, st)
	}
	r.c.Kick()
	rs.next().read()
	if _, seen := rec.waitPhase(t, PhaseConnected); len(seen) != 2 || seen[0] != PhaseConnecting {
		t.Fatalf("phases after Kick = %v, want [connecting connected]", seen)
	}
	if n := rs.dials.Load(); n != 2 {
		t.Fatalf("dials = %d, want 2", n)
	}
}

func TestClientKickWhileConnectedRedials(t *testing.T) {
	rs := newRelayStub(t)
	rec := newRecorder()
	r := start(t, ClientOptions{URL: rs.srv.URL, Token: staticToken(testToken), OnState: rec.onState,
		BackoffBase: time.Hour, BackoffCap: time.Hour})
	sc := rs.next()
	sc.read()
	rec.waitPhase(t, PhaseConnected)

	r.c.Kick()
	if err := sc.waitEnded(t); err == nil {
		t.Fatal("old socket did not end")
	}
	rs.next().read()
	_, seen := rec.waitPhase(t, PhaseConnected)
	if len(seen) != 2 || seen[0] != PhaseConnecting {
		t.Fatalf("phases after Kick = %v, want [connecting connected] (no backoff)", seen)
	}
	// Kicks from many goroutines at once are race-free and leave Run in
	// control: it still stops cleanly.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); r.c.Kick() }()
	}
	wg.Wait()
	r.cancel()
	if err := r.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after concurrent kicks = %v", err)
	}
}

// The backoff resets only after StableAfter of connection, measured on the
// injected clock: short connections that the relay ends on purpose (1013,
// try again later) grow the wait, a stable one resets it.
func TestClientBackoffResetsAfterStableConnection(t *testing.T) {
	rs := newRelayStub(t)
	rec := newRecorder()
	clock := newFakeClock()
	const base = 100 * time.Millisecond
	start(t, ClientOptions{URL: rs.srv.URL, Token: staticToken(testToken), OnState: rec.onState,
		BackoffBase: base, BackoffCap: 10 * base, StableAfter: time.Minute, Clock: clock},
		func(c *Client) { c.randN = func(n int64) int64 { return n - 1 } }) // always the bound

	cycle := func(stayUp time.Duration) time.Duration {
		t.Helper()
		sc := rs.next()
		sc.read()
		rec.waitPhase(t, PhaseConnected)
		clock.Advance(stayUp)
		sc.closeWith(t, websocket.CloseTryAgainLater, "busy")
		ft := clock.nextTimer(t)
		st, _ := rec.waitPhase(t, PhaseBackoff)
		if !st.NextRetry.Equal(clock.Now().Add(ft.d)) {
			t.Errorf("NextRetry %v, want now+%v", st.NextRetry, ft.d)
		}
		ft.fire()
		return ft.d
	}
	want := []struct {
		stayUp time.Duration
		wait   time.Duration
	}{
		{time.Second, base},     // first failure
		{time.Second, 2 * base}, // short again: grows
		{time.Second, 4 * base}, // and grows
		{time.Minute, base},     // stable for StableAfter: reset
		{59 * time.Second, 2 * base},
		{time.Second, 4 * base},
		{time.Second, 8 * base},
		{time.Second, 10 * base}, // capped
		{time.Second, 10 * base},
	}
	for i, w := range want {
		if got := cycle(w.stayUp); got != w.wait {
			t.Fatalf("cycle %d (up %v): waited %v, want %v", i, w.stayUp, got, w.wait)
		}
	}
}

func TestClientRejectsBadOptions(t *testing.T) {
	for _, opts := range []ClientOptions{
		{URL: "ftp://relay", Token: staticToken("x")},
		{URL: "http://", Token: staticToken("x")},
		{URL: "http://relay"},
		{URL: "http://relay", Token: staticToken("x"), TAG: true},
		{URL: "http://relay", Token: staticToken("x"), TAG: true, DevID: "a/b"},
	} {
		if err := NewClient(opts).Run(context.Background()); err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("Run(%+v) = %v, want a config error", opts, err)
		}
	}
}

func TestClientEndpoint(t *testing.T) {
	for _, tc := range []struct {
		url, dev string
		tag      bool
		want     string
	}{
		{"http://r.example", "", false, "ws://r.example/v1/connect"},
		{"https://r.example:8443/relay/", "", false, "wss://r.example:8443/relay/v1/connect"},
		{"wss://r.example/x?debug=1", "", false, "wss://r.example/x/v1/connect"},
		{"https://r.example", "alice", true, "wss://r.example/dev/alice/connect"},
		{"https://r.example/p", "a b", true, "wss://r.example/p/dev/a%20b/connect"},
	} {
		got, err := NewClient(ClientOptions{URL: tc.url, DevID: tc.dev, TAG: tc.tag}).endpoint()
		if err != nil || got != tc.want {
			t.Errorf("endpoint(%q, tag=%v) = %q, %v; want %q", tc.url, tc.tag, got, err, tc.want)
		}
	}
}

// A relay that stops reading: the bounded queue fills, Send blocks only until
// its ctx ends, and the write deadline (WriteWait) ends the stuck socket.
func TestClientSendQueueBoundsAndWriteDeadline(t *testing.T) {
	rs := newRelayStub(t)
	rec := newRecorder()
	r := start(t, ClientOptions{URL: rs.srv.URL, Token: staticToken(testToken), OnState: rec.onState,
		SendQueue: 1, WriteWait: 500 * time.Millisecond, PongWait: time.Minute,
		BackoffBase: time.Millisecond, BackoffCap: time.Millisecond})
	rs.next() // never read
	rec.waitPhase(t, PhaseConnected)

	big := Frame{Kind: KindMCP, Server: "a", Session: "s",
		Msg: json.RawMessage(`{"jsonrpc":"2.0","method":"x","params":"` + strings.Repeat("y", 1<<20) + `"}`)}
	blocked := false
	for i := 0; i < 500 && !blocked; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := r.c.Send(ctx, big)
		cancel()
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			blocked = true
			t.Logf("queue full after %d MiB", i)
		case errors.Is(err, ErrNotConnected):
			t.Fatalf("socket died after %d MiB before Send ever blocked", i)
		case err != nil:
			t.Fatal(err)
		}
	}
	if !blocked {
		t.Fatal("Send never blocked on a relay that does not read")
	}
	st, _ := rec.waitPhase(t, PhaseBackoff)
	if !strings.Contains(st.LastError, "write") {
		t.Fatalf("socket ended with %q, want the write deadline", st.LastError)
	}
	rs.next().read()
	rec.waitPhase(t, PhaseConnected)
}

// closedURL is an http URL on a loopback port where nothing listens: every
// dial is refused at the TCP level.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

// TestClientRefusedDialsDoNotClimb: while dials fail at the TCP level (no
// network, relay host down), waits stay within NetBackoffCap however long
// it lasts; a failure past TCP (a proxy's 502) climbs as before.
func TestClientRefusedDialsDoNotClimb(t *testing.T) {
	clock := newFakeClock()
	rec := newRecorder()
	start(t, ClientOptions{URL: closedURL(t), Token: staticToken(testToken), OnState: rec.onState,
		BackoffBase: time.Second, BackoffCap: time.Hour, Clock: clock},
		func(c *Client) { c.randN = func(n int64) int64 { return n - 1 } }) // always the bound
	var waits []time.Duration
	for range 8 {
		ft := clock.nextTimer(t)
		waits = append(waits, ft.d)
		ft.fire()
	}
	for _, d := range waits {
		if d > NetBackoffCap {
			t.Fatalf("waits after refused dials = %v, want each ≤ %v", waits, NetBackoffCap)
		}
	}
	if waits[len(waits)-1] != NetBackoffCap {
		t.Fatalf("waits = %v: they should still back off up to %v", waits, NetBackoffCap)
	}

	rs := newRelayStub(t)
	rs.refuse = func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return true
	}
	clock2 := newFakeClock()
	start(t, ClientOptions{URL: rs.srv.URL, Token: staticToken(testToken),
		BackoffBase: time.Second, BackoffCap: time.Hour, Clock: clock2},
		func(c *Client) { c.randN = func(n int64) int64 { return n - 1 } })
	waits = waits[:0]
	for range 4 {
		ft := clock2.nextTimer(t)
		waits = append(waits, ft.d)
		ft.fire()
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}; !slices.Equal(waits, want) {
		t.Fatalf("waits after 502s = %v, want %v", waits, want)
	}
}

func TestTCPLevel(t *testing.T) {
	t.Parallel()
	_, refused := net.Dial("tcp", strings.TrimPrefix(closedURL(t), "http://"))
	cases := []struct {
		err  error
		want bool
	}{
		{refused, true},
		{fmt.Errorf("dial relay: %w", refused), true},
		{&net.DNSError{Err: "no such host", Name: "relay.invalid", IsNotFound: true}, true},
		{&net.OpError{Op: "read", Err: errors.New("reset")}, false},
		{errors.New("tls: handshake failure"), false},
		{nil, false},
	}
	for _, c := range cases {
		if got := tcpLevel(c.err); got != c.want {
			t.Errorf("tcpLevel(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestClientNetworkChanged: in backoff, a network change dials at once; on
// a live socket it only probes (the socket stays); on a dead socket (the
// relay side stops answering) the probe drops it within ProbeWait, long
// before PongWait.
func TestClientNetworkChanged(t *testing.T) {
	rs := newRelayStub(t)
	rs.refuse = func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n == 1 {
			http.Error(w, "down", http.StatusBadGateway)
			return true
		}
		return false
	}
	rec := newRecorder()
	const probe = 300 * time.Millisecond
	r := start(t, ClientOptions{URL: rs.srv.URL, Token: staticToken(testToken), OnState: rec.onState,
		PingInterval: time.Hour / 2, PongWait: time.Hour, ProbeWait: probe,
		BackoffBase: time.Hour, BackoffCap: time.Hour})
	rec.waitPhase(t, PhaseBackoff) // an hour's wait after the 502
	r.c.NetworkChanged()
	sc := rs.next()
	sc.read() // reading makes gorilla answer pings
	rec.waitPhase(t, PhaseConnected)

	// Live socket: the probe's ping is answered, nothing changes.
	r.c.NetworkChanged()
	quiet := time.NewTimer(4 * probe)
	select {
	case s := <-rec.states:
		t.Fatalf("a live socket changed state after a network change: %+v", s)
	case <-quiet.C:
	}

	// Dead socket: a relay that never reads (so never pongs). PongWait is
	// an hour, so only the probe can end it.
	r.c.Kick()
	rs.next() // not read
	rec.waitPhase(t, PhaseConnected)
	at := time.Now()
	r.c.NetworkChanged()
	rec.waitPhase(t, PhaseBackoff)
	if took := time.Since(at); took > probe+2*time.Second {
		t.Fatalf("dead socket dropped %v after the network change, want about %v", took, probe)
	}
}
