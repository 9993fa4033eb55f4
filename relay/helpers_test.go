package relay

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// waitLong bounds every await in these tests; nothing should come near it.
const waitLong = 10 * time.Second

// relayStub is a real gorilla WebSocket server on 127.0.0.1 that plays the
// relay: it records every dial and hands each accepted socket to the test.
type relayStub struct {
	t     testing.TB
	srv   *httptest.Server
	dials atomic.Int32
	conns chan *stubConn
	// refuse, if set, may answer the n-th dial (1-based) instead of upgrading;
	// it returns true when it wrote a response.
	refuse func(n int, w http.ResponseWriter, r *http.Request) bool

	mu  sync.Mutex
	all []*websocket.Conn
}

// stubConn is one accepted socket as the relay side sees it.
type stubConn struct {
	n     int
	path  string
	auth  string
	ws    *websocket.Conn
	hello Frame
	// frames and ended are fed by read(); nothing reads until it is called,
	// which is how a test plays a relay that stopped reading.
	frames chan Frame
	ended  chan error
}

func newRelayStub(t testing.TB) *relayStub {
	t.Helper()
	rs := &relayStub{t: t, conns: make(chan *stubConn, 64)}
	up := websocket.Upgrader{}
	rs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(rs.dials.Add(1))
		if rs.refuse != nil && rs.refuse(n, w, r) {
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		rs.mu.Lock()
		rs.all = append(rs.all, ws)
		rs.mu.Unlock()
		sc := &stubConn{n: n, path: r.URL.Path, auth: r.Header.Get("Authorization"), ws: ws,
			frames: make(chan Frame, 1024), ended: make(chan error, 1)}
		ws.SetReadDeadline(time.Now().Add(waitLong))
		_, data, err := ws.ReadMessage()
		if err != nil {
			// A client that was kicked mid-dial may leave without a hello.
			t.Logf("dial %d: no hello: %v", n, err)
			return
		}
		ws.SetReadDeadline(time.Time{})
		if sc.hello, err = DecodeFrame(data); err != nil {
			t.Errorf("decode hello: %v", err)
		}
		rs.conns <- sc
	}))
	t.Cleanup(func() {
		rs.mu.Lock()
		for _, ws := range rs.all {
			ws.Close()
		}
		rs.mu.Unlock()
		rs.srv.Close()
	})
	return rs
}

// next waits for the next accepted socket.
func (rs *relayStub) next() *stubConn {
	rs.t.Helper()
	select {
	case sc := <-rs.conns:
		return sc
	case <-time.After(waitLong):
		rs.t.Fatalf("no dial reached the relay within %v (dials so far: %d)", waitLong, rs.dials.Load())
		return nil
	}
}

// read starts the socket's read loop (which also answers pings).
func (sc *stubConn) read() {
	go func() {
		for {
			_, data, err := sc.ws.ReadMessage()
			if err != nil {
				sc.ended <- err
				return
			}
			f, err := DecodeFrame(data)
			if err != nil {
				sc.ended <- err
				return
			}
			sc.frames <- f
		}
	}()
}

func (sc *stubConn) nextFrame(t *testing.T) Frame {
	t.Helper()
	select {
	case f := <-sc.frames:
		return f
	case err := <-sc.ended:
		t.Fatalf("relay side read ended: %v", err)
	case <-time.After(waitLong):
		t.Fatalf("no frame within %v", waitLong)
	}
	return Frame{}
}

func (sc *stubConn) waitEnded(t *testing.T) error {
	t.Helper()
	select {
	case err := <-sc.ended:
		return err
	case <-time.After(waitLong):
		t.Fatalf("socket %d did not end within %v", sc.n, waitLong)
		return nil
	}
}

func (sc *stubConn) write(t *testing.T, f Frame) {
	t.Helper()
	b, err := EncodeFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatalf("relay side write: %v", err)
	}
}

func (sc *stubConn) closeWith(t *testing.T, code int, text string) {
	t.Helper()
	msg := websocket.FormatCloseMessage(code, text)
	if err := sc.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatalf("relay side close: %v", err)
	}
}

// recorder collects what the client reports, through channels.
type recorder struct {
	frames chan Frame
	states chan ConnState
}

func newRecorder() *recorder {
	return &recorder{frames: make(chan Frame, 1024), states: make(chan ConnState, 1024)}
}

func (r *recorder) onFrame(f Frame)     { r.frames <- f }
func (r *recorder) onState(s ConnState) { r.states <- s }

// waitPhase skips states until one in phase p arrives, and returns it with
// the phases seen on the way.
func (r *recorder) waitPhase(t *testing.T, p Phase) (ConnState, []Phase) {
	t.Helper()
	var seen []Phase
	deadline := time.After(waitLong)
	for {
		select {
		case s := <-r.states:
			seen = append(seen, s.Phase)
			if s.Phase == p {
				return s, seen
			}
		case <-deadline:
			t.Fatalf("no %q state within %v; saw %v", p, waitLong, seen)
		}
	}
}

func (r *recorder) nextFrame(t *testing.T) Frame {
	t.Helper()
	select {
	case f := <-r.frames:
		return f
	case <-time.After(waitLong):
		t.Fatalf("client got no frame within %v", waitLong)
		return Frame{}
	}
}

// running is a client whose Run goroutine the test owns.
type running struct {
	c      *Client
	cancel context.CancelFunc
	done   chan error
}

// start runs a client until the test ends.
func start(t *testing.T, opts ClientOptions, setup ...func(*Client)) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: NewClient(opts), cancel: cancel, done: make(chan error, 1)}
	for _, f := range setup {
		f(r.c)
	}
	go func() { r.done <- r.c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(waitLong):
			t.Errorf("Run did not return after cancel")
		}
	})
	return r
}

func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // keep it for the cleanup
		return err
	case <-time.After(waitLong):
		t.Fatalf("Run did not return within %v", waitLong)
		return nil
	}
}

func staticToken(tok string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return tok, nil }
}

// fakeClock is a Clock whose timers fire only when the test says so. Every
// NewTimer call is reported on timers, so a test can await "the client is
// now waiting d" without real waiting.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers chan *fakeTimer
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), timers: make(chan *fakeTimer, 64)}
}

func (fc *fakeClock) Now() time.Time {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.now
}

func (fc *fakeClock) Advance(d time.Duration) {
	fc.mu.Lock()
	fc.now = fc.now.Add(d)
	fc.mu.Unlock()
}

func (fc *fakeClock) NewTimer(d time.Duration) Timer {
	ft := &fakeTimer{d: d, c: make(chan time.Time, 1), fc: fc}
	fc.timers <- ft
	return ft
}

func (fc *fakeClock) nextTimer(t *testing.T) *fakeTimer {
	t.Helper()
	select {
	case ft := <-fc.timers:
		return ft
	case <-time.After(waitLong):
		t.Fatalf("the client started no timer within %v", waitLong)
		return nil
	}
}

type fakeTimer struct {
	d     time.Duration
	c     chan time.Time
	fc    *fakeClock
	fired atomic.Bool
}

func (ft *fakeTimer) C() <-chan time.Time { return ft.c }
func (ft *fakeTimer) Stop() bool          { return !ft.fired.Swap(true) }

// fire advances the clock by the timer's duration and fires it.
func (ft *fakeTimer) fire() {
	if ft.fired.Swap(true) {
		return
	}
	ft.fc.Advance(ft.d)
	ft.c <- ft.fc.Now()
}
