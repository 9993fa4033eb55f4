package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/gorilla/websocket"

	"github.com/tether-dev/tether/relay/internal/wire"
)

// conn is one live socket: a read pump, and a writer (wire.Conn) whose
// closing is the socket's end, keeping the first cause.
type conn struct {
	ws   *websocket.Conn
	cork *wire.CorkConn // the socket's TCP (or proxy) connection; nil when the Dialer's own TLS dial is used
	w    *wire.Conn

	// Keepalive (see keepalive). heard is when anything last arrived, in
	// Unix nanoseconds; peerPings is set once the relay has pinged us.
	heard     atomic.Int64
	peerPings atomic.Bool
	// probeUntil (Unix nanoseconds, 0: none) is the deadline a probe set
	// (NetworkChanged); the read pump's first deadline must not be later
	// (a probe can land before the pump has started), and any traffic
	// clears it.
	probeUntil atomic.Int64
}

// newConn wraps a dialed socket with the bridge's writing policy: inline
// writes for a lone answer, batches under load, adaptive keepalive.
func (c *Client) newConn(ws *websocket.Conn, cork *wire.CorkConn) *conn {
	cn := &conn{ws: ws, cork: cork}
	cn.heard.Store(time.Now().UnixNano())
	cn.w = wire.New(ws, cork, wire.Config{
		WriteWait:      c.opts.WriteWait,
		Queue:          c.opts.SendQueue,
		InlineMax:      inlineSendMax,
		BusyGap:        c.busyGap,
		Keepalive:      func(time.Time) (time.Duration, error) { return c.keepalive(cn) },
		KeepaliveFirst: c.opts.PingInterval,
		Fail:           cn.kill,
	})
	return cn
}

// kill finishes the socket once, keeping the first cause.
func (cn *conn) kill(err error) {
	if cn.w.Close(err) {
		cn.ws.Close()
	}
}

// probe pings the relay now and lets the socket stay silent for at most
// wait: the read pump pushes the deadline back to PongWait on anything that
// arrives (the pong included), so only a dead socket times out. Both calls
// are safe beside the pumps (gorilla allows WriteControl and deadlines
// from any goroutine).
func (cn *conn) probe(wait time.Duration) {
	until := time.Now().Add(wait)
	cn.probeUntil.Store(until.UnixNano())
	_ = cn.ws.SetReadDeadline(until)
	_ = cn.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(wait))
}

// trySend queues a frame the client writes on its own (an error answer);
// when the queue is full it is dropped rather than stalling the read pump.
func (cn *conn) trySend(f Frame) {
	if e, err := EncodeFrameParts(f); err == nil {
		cn.w.TrySend(e)
	}
}

// dial opens one socket and writes the hello, before any queued frame can.
func (c *Client) dial(ctx context.Context, endpoint string) (*conn, error) {
	tok, err := c.opts.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("get bridge token: %w", err)
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+tok)
	d := *c.opts.Dialer
	if d.WriteBufferSize == 0 && d.WriteBufferPool == nil {
		d.WriteBufferSize = clientWriteBuffer
	}
	cd, cork := wire.CorkingDialer(&d)
	ws, resp, err := cd.DialContext(ctx, endpoint, h)
	if err != nil {
		if resp != nil && errors.Is(err, websocket.ErrBadHandshake) {
			return nil, upgradeError(resp, tok)
		}
		return nil, fmt.Errorf("dial relay: %w", err)
	}
	ws.SetReadLimit(MaxFrameBytes)
	b, err := EncodeFrame(c.hello())
	if err == nil {
		ws.SetWriteDeadline(time.Now().Add(c.opts.WriteWait))
		err = ws.WriteMessage(websocket.TextMessage, b)
	}
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("send hello: %w", err)
	}
	return c.newConn(ws, *cork), nil
}

// clientWriteBuffer is gorilla's write buffer on the bridge side. A client
// masks every byte it sends through this buffer, and each buffer-full is a
// WebSocket frame of its own, so 4 KiB (the default) cuts a 10 MiB result
// into 2,560 frames.
const clientWriteBuffer = 64 << 10

// hello builds the first frame; see ClientOptions.Hello.
func (c *Client) hello() Frame {
	var f Frame
	if c.opts.Hello != nil {
		f = c.opts.Hello()
	} else if !c.opts.TAG {
		f.Protocol = ProtocolVersion
	}
	if f.Kind == "" {
		f.Kind = KindHello
	}
	if f.DevID == "" {
		f.DevID = c.opts.DevID
	}
	if !c.opts.TAG && f.Instance == "" {
		f.Instance = c.opts.Instance
	}
	if c.opts.TAG && len(f.Tools) == 0 {
		// The TAG bridge always sends an array, so a TAG relay may expect one.
		f.Tools = json.RawMessage("[]")
	}
	return f
}

// serve runs the pumps of a published socket until it dies, ctx ends (a
// polite close 1000) or pctx ends without ctx (a Kick: close 1001 and drop).
// It unpublishes the socket and returns why it ended.
func (c *Client) serve(ctx, pctx context.Context, cn *conn) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.readPump(cn) }()
	go func() { defer wg.Done(); cn.w.Run() }()

	select {
	case <-cn.w.Done():
	case <-pctx.Done():
		if ctx.Err() != nil {
			// Shutting down: say goodbye and give the relay a moment to
			// answer, so it sees a clean close rather than a reset.
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bridge stopping")
			if cn.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace)) == nil {
				t := time.NewTimer(closeGrace)
				select {
				case <-cn.w.Done():
				case <-t.C:
				}
				t.Stop()
			}
		} else {
			// Kicked: the socket is probably dead (wake, new network), so
			// the goodbye is best effort with a short deadline.
			msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "reconnecting")
			_ = cn.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(kickGrace))
		}
		cn.kill(pctx.Err())
	}

	c.mu.Lock()
	if c.cur == cn {
		c.cur = nil
	}
	c.mu.Unlock()
	wg.Wait()
	return cn.w.Err()
}

// keepalive is the write side's timer: it pings when the socket has been
// quiet, and returns when to look again.
//
// Keepalive is adaptive: the bridge pings only when nothing (a message, a
// ping or a pong) has arrived for pingAfter. A relay that pings on its own
// (tether-relay does, every PingInterval) thus keeps the socket alive for
// both, and an idle bridge wakes only to answer it; against a relay that
// never pings (a TAG relay) the bridge pings every PingInterval as before.
// Half-open detection does not depend on who pings: the read deadline
// (PongWait after anything received) ends a silent socket either way.
func (c *Client) keepalive(cn *conn) (time.Duration, error) {
	wait := c.pingAfter(cn)
	quiet := time.Duration(time.Now().UnixNano() - cn.heard.Load())
	if quiet < wait {
		return wait - quiet, nil
	}
	if err := cn.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.opts.WriteWait)); err != nil {
		return 0, fmt.Errorf("ping: %w", err)
	}
	return wait, nil
}

// pingAfter is how long the socket may be quiet before the bridge pings.
// It is PingInterval until the relay has shown that it pings too. From then
// on the relay's pings (every PingInterval) keep the socket busy, and the
// bridge's timer is only a backstop for a relay that stops pinging while
// still alive: it waits until PingInterval/2 before the read deadline,
// which leaves the pong time to arrive. So long a wait also means the timer
// fires only every other relay ping (2 wakeups a minute, not 4), each
// wakeup of an idle process costing a dozen context switches.
func (c *Client) pingAfter(cn *conn) time.Duration {
	if cn.peerPings.Load() {
		return max(c.opts.PongWait-c.opts.PingInterval/2, c.opts.PingInterval)
	}
	return c.opts.PingInterval
}

// readPump reads until the socket fails. Any inbound traffic (a message, a
// chunk of a large message, a ping or a pong) pushes the read deadline
// PongWait ahead, so silence for PongWait means the socket is dead. It also
// stamps cn.heard for the writer's keepalive, which re-checks it when
// its timer fires; the timer is not pushed back from here, because moving a
// Go timer later leaves the runtime a wakeup at the old time anyway.
func (c *Client) readPump(cn *conn) {
	ws := cn.ws
	extend := func() {
		now := time.Now()
		cn.heard.Store(now.UnixNano())
		cn.probeUntil.Store(0) // traffic: whatever a probe asked is answered
		ws.SetReadDeadline(now.Add(c.opts.PongWait))
	}
	// The first deadline, not traffic: a probe made before this pump
	// started keeps its shorter one.
	first := time.Now().Add(c.opts.PongWait)
	if p := cn.probeUntil.Load(); p != 0 && p < first.UnixNano() {
		first = time.Unix(0, p)
	}
	cn.heard.Store(time.Now().UnixNano())
	ws.SetReadDeadline(first)
	if p := cn.probeUntil.Load(); p != 0 && p < first.UnixNano() {
		ws.SetReadDeadline(time.Unix(0, p)) // a probe landed in between
	}
	keepalive := func() {
		if c.opts.OnKeepalive != nil {
			c.opts.OnKeepalive()
		}
	}
	// BeforeWait: the socket's own Read is reached only once gorilla's
	// buffer (and TLS's, when it is layered on top) holds no more of what
	// arrived, which is exactly "every frame so far handled". Without a
	// CorkConn underneath, the hook runs after every frame instead.
	beforeWait := c.opts.BeforeWait
	perFrame := beforeWait
	if beforeWait != nil {
		defer beforeWait()
		if cn.cork != nil {
			cn.cork.SetBeforeRead(beforeWait)
			perFrame = nil
		}
	}
	ws.SetPongHandler(func(string) error { extend(); keepalive(); return nil })
	ws.SetPingHandler(func(data string) error {
		extend()
		keepalive()
		cn.peerPings.Store(true)
		// A failed pong is not a read failure; the write pump or the
		// deadline finds a broken socket.
		_ = ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		return nil
	})
	for {
		_, r, err := ws.NextReader()
		if err != nil {
			cn.kill(readError(err))
			return
		}
		data, err := io.ReadAll(&progressReader{r: r, progress: extend})
		if err != nil {
			cn.kill(readError(err))
			return
		}
		f, err := DecodeFrame(data)
		if err != nil {
			c.log.Warn("relay sent a frame the bridge cannot decode", "error", err, "bytes", len(data))
			cn.trySend(Frame{Kind: KindError, Code: ErrCodeBadFrame, Message: err.Error()})
			continue
		}
		if c.opts.OnFrame != nil {
			c.opts.OnFrame(f)
		}
		if perFrame != nil {
			perFrame()
		}
	}
}

// progressReader reports every successful read, so a large message that is
// still arriving keeps the socket alive.
type progressReader struct {
	r        io.Reader
	progress func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.progress()
	}
	return n, err
}

// rejection is a terminal refusal by the relay. Its text is the human reason
// shown in ConnState.Reason; it unwraps to ErrReplaced or ErrUnauthorized.
type rejection struct {
	reason string
	kind   error
}

func (r *rejection) Error() string { return r.reason }
func (r *rejection) Unwrap() error { return r.kind }

// terminalReason reports whether err ends Run, and the reason to show.
func terminalReason(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	var rej *rejection
	if errors.As(err, &rej) {
		return rej.reason, true
	}
	switch {
	case errors.Is(err, ErrReplaced):
		return reasonReplaced, true
	case errors.Is(err, ErrUnauthorized):
		return "no usable bridge token: " + err.Error(), true
	}
	return "", false
}

// readError classifies how a socket ended by its close code.
func readError(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case CloseReplaced:
			reason := reasonReplaced
			if rest, ok := strings.CutPrefix(clean(ce.Text), takeoverPrefix); ok {
				// The relay says when and from where: show it, so the person
				// knows a copy of their token is in use elsewhere.
				reason = "another Tether took over with your token" + rest
			}
			return &rejection{reason: reason, kind: ErrReplaced}
		case CloseUnauthorized:
			return &rejection{
				reason: fmt.Sprintf("%s (close %d): %s", reasonUnauthorized, ce.Code, orDefault(clean(ce.Text), "no reason given")),
				kind:   ErrUnauthorized,
			}
		}
		return fmt.Errorf("relay closed the connection (code %d): %w", ce.Code, err)
	}
	return fmt.Errorf("read: %w", err)
}

// upgradeError turns a refused upgrade into an error. 401 and 403 are
// terminal; anything else (404 behind a wrong prefix, 502 from a proxy, 503
// while the relay restarts) is retried.
func upgradeError(resp *http.Response, token string) error {
	msg := ""
	if resp.Body != nil {
		// gorilla keeps at most 1 KiB of the refusal body.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		msg = bodyMessage(b)
	}
	if token != "" {
		msg = strings.ReplaceAll(msg, token, "[token]")
	}
	msg = orDefault(msg, http.StatusText(resp.StatusCode))
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return &rejection{
			reason: fmt.Sprintf("%s (HTTP %d): %s", reasonUnauthorized, resp.StatusCode, msg),
			kind:   ErrUnauthorized,
		}
	}
	return fmt.Errorf("relay refused the upgrade (HTTP %d): %s", resp.StatusCode, msg)
}

// bodyMessage picks the human part of an error body: the "error" or
// "message" string of a JSON object, else the text itself, cleaned.
func bodyMessage(b []byte) string {
	var obj struct {
		Error   any    `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &obj) == nil {
		if s, ok := obj.Error.(string); ok && s != "" {
			return clean(s)
		}
		if m, ok := obj.Error.(map[string]any); ok {
			if s, ok := m["message"].(string); ok && s != "" {
				return clean(s)
			}
		}
		if obj.Message != "" {
			return clean(obj.Message)
		}
	}
	return clean(string(b))
}

// clean makes a peer-supplied text safe for one log line or UI label.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// redactURL drops user info, query and fragment, which may carry secrets.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid url)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
