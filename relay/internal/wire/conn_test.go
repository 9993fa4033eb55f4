package wire

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const waitLong = 5 * time.Second

// tallyConn counts the writes that reach the network.
type tallyConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (c *tallyConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *tallyConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// pair is a WebSocket whose dialing end writes through a Conn and whose
// accepting end (peer) reads.
type pair struct {
	w     *Conn
	ws    *websocket.Conn // the writing end's socket
	peer  *websocket.Conn
	tally *tallyConn // the writing end's network connection, under its CorkConn
	fails chan error // what Fail was given
}

func newPair(t *testing.T, cfg Config) *pair {
	t.Helper()
	peers := make(chan *websocket.Conn, 1)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		peers <- ws
	}))
	t.Cleanup(srv.Close)

	p := &pair{fails: make(chan error, 1)}
	d := &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var nd net.Dialer
		nc, err := nd.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		p.tally = &tallyConn{Conn: nc}
		return p.tally, nil
	}}
	cd, cork := CorkingDialer(d)
	ws, _, err := cd.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if *cork == nil {
		t.Fatal("CorkingDialer did not report its CorkConn")
	}
	p.ws = ws
	p.peer = <-peers
	t.Cleanup(func() { ws.Close(); p.peer.Close() })
	if cfg.WriteWait == 0 {
		cfg.WriteWait = waitLong
	}
	if cfg.Fail == nil {
		cfg.Fail = func(err error) {
			p.fails <- err
			p.w.Close(err)
			ws.Close()
		}
	}
	p.w = New(ws, *cork, cfg)
	return p
}

// run starts the write loop and waits for it to end at cleanup.
func (p *pair) run(t *testing.T) {
	done := make(chan struct{})
	go func() { defer close(done); p.w.Run() }()
	t.Cleanup(func() {
		p.w.Close(errors.New("test over"))
		<-done
	})
}

// read returns the next message the peer receives.
func (p *pair) read(t *testing.T) string {
	t.Helper()
	p.peer.SetReadDeadline(time.Now().Add(waitLong))
	_, b, err := p.peer.ReadMessage()
	if err != nil {
		t.Fatalf("peer read: %v", err)
	}
	return string(b)
}

func msg(s string) Message { return Message{Head: []byte(s)} }

// Messages from one goroutine arrive in the order sent, whichever way each
// goes: inline, queued by choice, or queued because it is over InlineMax or
// something is queued before it.
func TestConnKeepsOrderAcrossInlineAndQueue(t *testing.T) {
	p := newPair(t, Config{Queue: 8, InlineMax: 1 << 10})
	p.run(t)
	big := strings.Repeat("x", 4<<10)
	const n = 500
	go func() {
		for i := range n {
			m := msg(strconv.Itoa(i))
			if i%37 == 0 {
				// Three parts, the big one over InlineMax: queued.
				m = Message{Head: []byte(strconv.Itoa(i)), Raw: []byte(big), Tail: []byte("|")}
			}
			if err := p.w.Send(context.Background(), m, i%3 != 0); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
		}
	}()
	for i := range n {
		got := p.read(t)
		want := strconv.Itoa(i)
		if i%37 == 0 {
			want += big + "|"
		}
		if got != want {
			t.Fatalf("message %d: got %.20q, want %.20q", i, got, want)
		}
	}
}

// Messages queued together go out in one write to the network.
func TestConnBatchesQueuedMessages(t *testing.T) {
	var wrote []int
	var mu sync.Mutex
	p := newPair(t, Config{Queue: 16, Wrote: func(n int) { mu.Lock(); wrote = append(wrote, n); mu.Unlock() }})
	before := p.tally.count()
	for i := range 10 {
		if err := p.w.Send(context.Background(), msg(strconv.Itoa(i)), false); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.tally.count(); n != before {
		t.Fatalf("%d writes before Run: a queued message was written inline", n-before)
	}
	p.run(t)
	for i := range 10 {
		if got := p.read(t); got != strconv.Itoa(i) {
			t.Fatalf("message %d: %q", i, got)
		}
	}
	if n := p.tally.count() - before; n != 1 {
		t.Fatalf("ten queued messages took %d network writes, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(wrote) != 10 || wrote[0] != 1 {
		t.Fatalf("Wrote saw %v, want ten messages of 1 byte", wrote)
	}
}

// Send writes inline only when that cannot overtake or crowd anything: a
// message over InlineMax, or one sent while the socket is busy, is queued.
func TestConnInlinePolicy(t *testing.T) {
	p := newPair(t, Config{Queue: 4, InlineMax: 4, BusyGap: time.Hour})
	// No Run: whatever is queued stays in the queue, so it shows there.
	if err := p.w.Send(context.Background(), msg("one"), true); err != nil {
		t.Fatal(err)
	}
	if got := p.read(t); got != "one" {
		t.Fatalf("inline write sent %q", got)
	}
	if err := p.w.Send(context.Background(), msg("two"), true); err != nil {
		t.Fatal(err)
	}
	if len(p.w.queue) != 1 {
		t.Fatal("a Send within BusyGap of the last write was not queued")
	}

	q := newPair(t, Config{Queue: 4, InlineMax: 4})
	if err := q.w.Send(context.Background(), msg("12345"), true); err != nil {
		t.Fatal(err)
	}
	if len(q.w.queue) != 1 {
		t.Fatal("a message over InlineMax was not queued")
	}
	if err := q.w.Send(context.Background(), msg("1"), true); err != nil {
		t.Fatal(err)
	}
	if len(q.w.queue) != 2 {
		t.Fatal("a small message was written inline past a queued one")
	}
}

// A full queue holds Send for QueueWait at most, or until ctx ends or the
// Conn closes; TrySend drops instead.
func TestConnFullQueue(t *testing.T) {
	p := newPair(t, Config{Queue: 1, QueueWait: 50 * time.Millisecond})
	ctx := context.Background()
	if err := p.w.Send(ctx, msg("a"), false); err != nil {
		t.Fatal(err)
	}
	if p.w.TrySend(msg("b")) {
		t.Fatal("TrySend on a full queue succeeded")
	}
	if err := p.w.Send(ctx, msg("b"), false); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Send on a full queue = %v, want ErrQueueFull", err)
	}

	q := newPair(t, Config{Queue: 1}) // no QueueWait: until ctx or Close
	if err := q.w.Send(ctx, msg("a"), false); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error)
	go func() { errc <- q.w.Send(cctx, msg("b"), false) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Send after cancel = %v, want context.Canceled", err)
	}
	go func() { errc <- q.w.Send(ctx, msg("c"), false) }()
	q.w.Close(errors.New("gone"))
	if err := <-errc; err != ErrClosed {
		t.Fatalf("Send on a closing Conn = %v, want ErrClosed", err)
	}
	if q.w.queued.Load() != 1 {
		t.Fatalf("queued = %d after the failed sends, want 1", q.w.queued.Load())
	}
}

// A write that fails goes to Fail, and Send reports the Conn closed.
func TestConnWriteFailure(t *testing.T) {
	p := newPair(t, Config{Queue: 1})
	p.ws.UnderlyingConn().Close()
	err := p.w.Send(context.Background(), msg("x"), true)
	if !errors.Is(err, ErrClosed) || err == ErrClosed {
		t.Fatalf("Send = %v, want a write error that is ErrClosed", err)
	}
	select {
	case ferr := <-p.fails:
		if !errors.Is(err, ferr) {
			t.Fatalf("Fail got %v, Send returned %v", ferr, err)
		}
	default:
		t.Fatal("Fail was not called")
	}
	if err := p.w.Send(context.Background(), msg("y"), true); err != ErrClosed {
		t.Fatalf("Send after the failure = %v, want ErrClosed", err)
	}
	if !errors.Is(err, p.w.Err()) {
		t.Fatalf("Err = %v", p.w.Err())
	}
}

// The keepalive runs first after KeepaliveFirst, then after what it
// returns; its error ends Run through Fail.
func TestConnKeepalive(t *testing.T) {
	calls := make(chan time.Time, 4)
	stop := errors.New("stop")
	n := 0
	p := newPair(t, Config{Queue: 1, KeepaliveFirst: 10 * time.Millisecond,
		Keepalive: func(now time.Time) (time.Duration, error) {
			calls <- now
			n++
			if n == 3 {
				return 0, stop
			}
			return 20 * time.Millisecond, nil
		}})
	start := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); p.w.Run() }()
	var last time.Time
	for i := range 3 {
		select {
		case now := <-calls:
			if gap := now.Sub(start); i == 0 && gap < 10*time.Millisecond {
				t.Fatalf("first keepalive after %v, want at least 10ms", gap)
			}
			if gap := now.Sub(last); i > 0 && gap < 20*time.Millisecond {
				t.Fatalf("keepalive %d came %v after the last, want at least 20ms", i, gap)
			}
			last = now
		case <-time.After(waitLong):
			t.Fatalf("keepalive %d never ran", i)
		}
	}
	select {
	case <-done:
	case <-time.After(waitLong):
		t.Fatal("Run did not end on the keepalive's error")
	}
	if err := <-p.fails; !errors.Is(err, stop) {
		t.Fatalf("Fail got %v", err)
	}
}
