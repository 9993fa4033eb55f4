//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// fakeRelay is the lean caller on the relay side: it accepts a bridge's
// WebSocket (Tether's /v1/connect or TAG's /dev/{id}/connect) and sends it
// hand-built frames, so a figure measured through it is the bridge's own
// cost plus the child's, with no relay and no MCP SDK in the way. Tokens
// are not checked.
type fakeRelay struct {
	url     string
	srv     *http.Server
	bridges chan *fakeBridge
}

func startFakeRelay() (*fakeRelay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake relay: %w", err)
	}
	f := &fakeRelay{url: "http://" + ln.Addr().String(), bridges: make(chan *fakeBridge, 4)}
	up := websocket.Upgrader{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	accept := func(tag bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			ws.SetReadLimit(64 << 20)
			if _, hello, err := ws.ReadMessage(); err != nil || !bytes.Contains(hello, []byte(`"hello"`)) {
				ws.Close()
				return
			}
			b := &fakeBridge{ws: ws, tag: tag, pending: map[int64]chan []byte{}, dead: make(chan struct{})}
			go b.readLoop()
			f.bridges <- b
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/connect", accept(false))
	mux.HandleFunc("GET /dev/{id}/connect", accept(true))
	f.srv = &http.Server{Handler: mux}
	go f.srv.Serve(ln)
	return f, nil
}

func (f *fakeRelay) close() { f.srv.Close() }

// accept waits for the next bridge to say hello.
func (f *fakeRelay) accept(ctx context.Context, watch *proc) (*fakeBridge, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	select {
	case b := <-f.bridges:
		return b, nil
	case <-watch.done:
		return nil, fmt.Errorf("%s exited (%v):\n%s", watch.name, watch.err, tail(watch.out.String(), 2000))
	case <-ctx.Done():
		return nil, fmt.Errorf("no bridge connected to the fake relay: %w", ctx.Err())
	}
}

// fakeBridge is one connected bridge seen from the fake relay.
type fakeBridge struct {
	ws      *websocket.Conn
	tag     bool
	server  string     // Tether: the server name in mcp frames
	wmu     sync.Mutex // guards out, spare and writing (see write)
	out     []byte     // frames waiting for the write in progress
	spare   []byte
	writing bool
	mu      sync.Mutex
	pending map[int64]chan []byte
	next    atomic.Int64
	dead    chan struct{}
	readErr error
}

func (b *fakeBridge) readLoop() {
	defer close(b.dead)
	for {
		_, data, err := b.ws.ReadMessage()
		if err != nil {
			b.readErr = err
			return
		}
		// Only answers matter: an mcp frame's first "id" is its msg's id;
		// an rpc.response's is the frame's own (a quoted number here).
		head := data[:min(len(data), 40)]
		if !bytes.Contains(head, []byte(`"kind":"mcp"`)) && !bytes.Contains(head, []byte(`"kind":"rpc.response"`)) {
			continue
		}
		id, ok := peekAnyID(data)
		if !ok {
			continue
		}
		b.mu.Lock()
		ch := b.pending[id]
		delete(b.pending, id)
		b.mu.Unlock()
		if ch != nil {
			ch <- data
		}
	}
}

// peekAnyID is peekID that also takes a quoted number.
func peekAnyID(frame []byte) (int64, bool) {
	i := bytes.Index(frame, []byte(`"id":`))
	if i < 0 {
		return 0, false
	}
	rest := bytes.TrimLeft(frame[i+5:], ` "`)
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return n, err == nil
}

func (b *fakeBridge) roundTrip(ctx context.Context, id int64, frame []byte) ([]byte, error) {
	ch := make(chan []byte, 1)
	b.mu.Lock()
	b.pending[id] = ch
	b.mu.Unlock()
	if err := b.write(frame); err != nil {
		return nil, fmt.Errorf("write frame: %w", err)
	}
	select {
	case resp := <-ch:
		return resp, nil
	case <-b.dead:
		return nil, fmt.Errorf("bridge socket closed: %v", b.readErr)
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return nil, ctx.Err()
	}
}

// mcpFrame wraps one JSON-RPC message for the Tether bridge's session s1.
func (b *fakeBridge) mcpFrame(msg []byte) []byte {
	f := make([]byte, 0, len(msg)+64)
	f = append(f, `{"kind":"mcp","server":"`...)
	f = append(f, b.server...)
	f = append(f, `","session":"s1","msg":`...)
	f = append(f, msg...)
	return append(f, '}')
}

// openSession initializes session s1 on a Tether bridge.
func (b *fakeBridge) openSession(ctx context.Context, server string) error {
	b.server = server
	resp, err := b.roundTrip(ctx, 0, b.mcpFrame([]byte(initRequest)))
	if err != nil {
		return fmt.Errorf("initialize through the bridge: %w", err)
	}
	if !bytes.Contains(resp, []byte(`"protocolVersion"`)) {
		return fmt.Errorf("initialize through the bridge: %.300s", resp)
	}
	return b.write(b.mcpFrame([]byte(initializedN)))
}

// write sends one text frame the way a relay under load does: frames that
// callers hand over while a write is in progress are sent together in the
// next write, so 32 callers cost a handful of syscalls, not 32. Whoever
// finds no write in progress writes (its own frame and whatever piles up
// meanwhile); the others just append and return. A lone caller writes its
// frame at once, with no goroutine hand-off.
func (b *fakeBridge) write(frame []byte) error {
	b.wmu.Lock()
	b.out = appendServerFrame(b.out, frame)
	if b.writing {
		b.wmu.Unlock()
		return nil
	}
	b.writing = true
	for len(b.out) > 0 {
		buf := b.out
		b.out = b.spare[:0]
		b.wmu.Unlock()
		_, err := b.ws.UnderlyingConn().Write(buf)
		b.wmu.Lock()
		b.spare = buf
		if err != nil {
			b.writing = false
			b.wmu.Unlock()
			return err
		}
	}
	b.writing = false
	b.wmu.Unlock()
	return nil
}

// appendServerFrame appends one unmasked (server-to-client) WebSocket text
// frame holding payload (RFC 6455 §5.2).
func appendServerFrame(dst, payload []byte) []byte {
	n := len(payload)
	switch {
	case n < 126:
		dst = append(dst, 0x81, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x81, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x81, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

var errNoSession = errors.New("openSession first")

func (b *fakeBridge) call(ctx context.Context) error {
	id := b.next.Add(1)
	if b.tag {
		f := make([]byte, 0, 128)
		f = append(f, `{"kind":"rpc.request","id":"`...)
		f = strconv.AppendInt(f, id, 10)
		f = append(f, `","method":"call","path":"echo","body":{"text":"`+echoText+`"}}`...)
		resp, err := b.roundTrip(ctx, id, f)
		if err != nil {
			return err
		}
		if !bytes.Contains(resp, []byte(`"status":200`)) || !bytes.Contains(resp, wantEcho) {
			return fmt.Errorf("unexpected answer %.300s", resp)
		}
		return nil
	}
	if b.server == "" {
		return errNoSession
	}
	resp, err := b.roundTrip(ctx, id, b.mcpFrame(echoRequest(id)))
	if err != nil {
		return err
	}
	return checkEcho(resp)
}
