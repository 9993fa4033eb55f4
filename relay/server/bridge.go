package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/tether-dev/tether/relay"
	"github.com/tether-dev/tether/relay/internal/wire"
)

const (
	protoTether = "tether"
	protoTAG    = "tag"

	closeGoingAway = websocket.CloseGoingAway

	// sendQueue bounds the frames waiting for one bridge's writer. A caller
	// that finds it full waits at most relay.WriteWait, then gives up: a
	// bridge that does not read must not pin relay memory.
	sendQueue = 256
	// closeGrace is how long a socket we closed may take to echo the close
	// frame before we drop the TCP connection.
	closeGrace = 2 * time.Second
)

var errBridgeGone = errors.New("bridge disconnected")

// upgrader accepts any Origin: bridges are programs, not browsers, and a
// browser cannot set the Authorization header on a WebSocket anyway.
var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// bridgeConn is one connected bridge socket. The HTTP handler goroutine
// reads; data frames go through w (see send), whose closing marks the
// bridge gone.
type bridgeConn struct {
	s        *Server
	dev      string
	protocol string // protoTether or protoTAG
	version  string
	hostname string // hello's hostname, cleaned (hostnameOf); "" from older bridges
	since    time.Time
	ws       *websocket.Conn
	tokenID  string // Claims.ID of the bridge token: revocation, takeovers
	remote   string // the peer's address, for the takeover warning
	instance string // hello's instance: the same process reconnecting is no takeover

	w      *wire.Conn
	done   <-chan struct{} // w.Done(): closed once the bridge is gone or going
	active atomic.Int32    // client requests waiting for the bridge's answer

	mu       sync.Mutex
	servers  []relay.ServerInfo
	catalogd chan struct{}               // closed and replaced when servers changes
	sessions map[string]*session         // Tether: relay session id → session
	rpcs     map[string]chan relay.Frame // TAG: rpc id → waiter
	nextRPC  uint64
	tag      *tagFacade
}

// notUpgrade answers 426 to a request on a bridge endpoint that is not a
// WebSocket upgrade, before the token is looked at: a reverse proxy that
// routes the path but drops Upgrade/Connection would otherwise get a 401
// (or pass a token check) and look fine to `tetherd doctor`, which probes
// without a token and reads 426 as "the proxy does not pass upgrades".
func notUpgrade(w http.ResponseWriter, r *http.Request) bool {
	if websocket.IsWebSocketUpgrade(r) {
		return false
	}
	w.Header().Set("Upgrade", "websocket")
	w.Header().Set("Connection", "close")
	http.Error(w, "this is the bridges' WebSocket endpoint: the request has no WebSocket upgrade (a proxy in front of the relay may drop the Upgrade and Connection headers)", http.StatusUpgradeRequired)
	return true
}

func (s *Server) handleTetherConnect(w http.ResponseWriter, r *http.Request) {
	if notUpgrade(w, r) {
		return
	}
	c, code, err := s.Verifier.authorize(r, "", ScopeBridge)
	if err != nil {
		s.authError(w, code, err)
		return
	}
	s.serveBridge(w, r, c, protoTether)
}

func (s *Server) handleTAGConnect(w http.ResponseWriter, r *http.Request) {
	if notUpgrade(w, r) {
		return
	}
	c, code, err := s.Verifier.authorize(r, r.PathValue("id"), ScopeBridge)
	if err != nil {
		s.authError(w, code, err)
		return
	}
	s.serveBridge(w, r, c, protoTAG)
}

// serveBridge upgrades, reads the hello, takes the dev's slot and runs the
// read loop until the socket ends.
func (s *Server) serveBridge(w http.ResponseWriter, r *http.Request, c Claims, protocol string) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "relay shutting down"})
		return
	}
	cw := &wire.CorkingResponseWriter{ResponseWriter: w}
	ws, err := upgrader.Upgrade(cw, r, nil)
	if err != nil {
		s.log.Debug("websocket upgrade failed", "dev", c.Dev, "err", err)
		return // the upgrader has answered
	}
	ws.SetReadLimit(relay.MaxFrameBytes)
	extend := func() { ws.SetReadDeadline(time.Now().Add(relay.PongWait)) }
	extend()
	ws.SetPongHandler(func(string) error { extend(); return nil })
	ws.SetPingHandler(func(data string) error {
		extend()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(relay.WriteWait))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})

	hello, err := readHello(ws, c.Dev, protocol)
	if err != nil {
		s.log.Info("bridge rejected", "dev", c.Dev, "protocol", protocol, "err", err)
		ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(relay.CloseProtocolError, err.Error()), time.Now().Add(relay.WriteWait))
		ws.Close()
		return
	}

	b := &bridgeConn{
		s: s, dev: c.Dev, protocol: protocol, version: hello.Version, hostname: hostnameOf(hello), since: time.Now(), ws: ws,
		tokenID: c.ID, remote: r.RemoteAddr, instance: hello.Instance,
		sessions: make(map[string]*session),
		catalogd: make(chan struct{}),
		rpcs:     make(map[string]chan relay.Frame),
	}
	b.w = wire.New(ws, cw.Cork, wire.Config{
		WriteWait:      relay.WriteWait,
		Queue:          sendQueue,
		QueueWait:      relay.WriteWait,
		Keepalive:      b.keepalive,
		KeepaliveFirst: relay.PingInterval,
		Wrote:          func(n int) { s.metrics.addBytes("out", n) },
		Fail:           b.writeFailed,
	})
	b.done = b.w.Done()
	if protocol == protoTAG {
		b.servers = []relay.ServerInfo{tagServerInfo(hello.Tools)}
		b.tag = newTAGFacade(b)
	} else {
		b.servers = classifiedErrors(hello.Servers)
	}

	if !s.register(b) {
		b.shutdown(closeGoingAway, "relay shutting down")
		b.drain()
		return
	}
	defer s.wg.Done()
	s.log.Info("bridge connected", "dev", b.dev, "protocol", protocol, "version", b.version, "hostname", b.hostname, "servers", len(b.servers))

	// A token that expires while connected ends the slot; the bridge must
	// fetch a new one before it dials again.
	expiry := time.AfterFunc(time.Until(c.Expiry), func() { b.shutdown(relay.CloseUnauthorized, "token expired") })
	defer expiry.Stop()

	go b.w.Run()
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			s.logReadEnd(b, err)
			break
		}
		extend()
		s.metrics.addBytes("in", len(data))
		b.handleFrame(data)
	}
	b.shutdown(websocket.CloseNormalClosure, "")
	ws.Close()
	s.parkSessions(b) // before a request can find the slot empty and resume
	s.unregister(b)
}

func (s *Server) logReadEnd(b *bridgeConn, err error) {
	var ce *websocket.CloseError
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		s.log.Warn("bridge sent a frame over the size limit; socket closed", "dev", b.dev, "limit", relay.MaxFrameBytes)
	case errors.As(err, &ce):
		s.log.Info("bridge closed", "dev", b.dev, "code", ce.Code, "reason", ce.Text)
	default:
		s.log.Info("bridge socket ended", "dev", b.dev, "err", err)
	}
}

// hostnameOf is the hello's hostname as the relay keeps it: control
// characters and invalid UTF-8 dropped, at most relay.MaxHostname bytes
// (whole runes). It is shown to the dev's owner only, as text.
func hostnameOf(hello relay.Frame) string {
	h := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, strings.TrimSpace(hello.Hostname))
	for len(h) > relay.MaxHostname {
		_, n := utf8.DecodeLastRuneInString(h)
		h = h[:len(h)-n]
	}
	return h
}

// readHello reads and checks the first frame.
func readHello(ws *websocket.Conn, dev, protocol string) (relay.Frame, error) {
	_, data, err := ws.ReadMessage()
	if err != nil {
		return relay.Frame{}, fmt.Errorf("read hello: %w", err)
	}
	f, err := relay.DecodeFrame(data)
	if err != nil {
		return relay.Frame{}, fmt.Errorf("first frame: %w", err)
	}
	if f.Kind != relay.KindHello {
		return relay.Frame{}, fmt.Errorf("first frame is %q, want hello", f.Kind)
	}
	if protocol == protoTether && f.Protocol < 1 {
		return relay.Frame{}, fmt.Errorf("hello protocol %d, want >= 1", f.Protocol)
	}
	if f.DevID != "" && f.DevID != dev {
		return relay.Frame{}, fmt.Errorf("hello devId %q does not match the token", f.DevID)
	}
	return f, nil
}

// register puts b in its dev's slot. The previous holder, if any, is told
// 4001 and loses its in-flight calls at once (last writer wins).
func (s *Server) register(b *bridgeConn) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	old := s.bridges[b.dev]
	s.bridges[b.dev] = b
	s.bridgeArrivedLocked(b.dev)
	s.wg.Add(1)
	s.mu.Unlock()
	reconnect := old != nil && old.instance != "" && old.instance == b.instance
	if old != nil && old.tokenID == b.tokenID && !reconnect {
		// Two machines sharing one token (copied, or stolen) take the
		// slot from each other; say so where an operator looks, and to
		// both bridges: the old one in its close reason, the new one in an
		// error frame it shows (an older bridge only logs it).
		s.log.Warn("bridge slot taken over with the same token", "dev", b.dev, "new", b.remote, "old", old.remote)
		s.metrics.takeovers.Add(1)
		now := s.clock()
		old.shutdown(relay.CloseReplaced, relay.TakeoverText(now, b.remote))
		b.sendErrorFrame(relay.ErrCodeTookOver, fmt.Sprintf("took over from another Tether with the same token at %s (it was at %s)",
			now.UTC().Format(time.RFC3339), old.remote), relay.Frame{})
	} else if old != nil {
		s.log.Info("bridge replaced by a newer one", "dev", b.dev)
		old.shutdown(relay.CloseReplaced, "replaced by a newer bridge for this dev")
	}
	if old == nil {
		s.metrics.bridges.Add(1)
	}
	s.activity.notify(b.dev)
	if s.onRegister != nil {
		s.onRegister(b.dev, b.protocol)
	}
	return true
}

func (s *Server) unregister(b *bridgeConn) {
	s.mu.Lock()
	mine := s.bridges[b.dev] == b
	if mine {
		delete(s.bridges, b.dev)
	}
	s.mu.Unlock()
	if mine {
		s.metrics.bridges.Add(-1)
		s.log.Info("bridge disconnected", "dev", b.dev)
		s.activity.notify(b.dev)
	}
}

// shutdown marks the bridge gone (every waiter fails at once), sends a
// close frame and drops the TCP connection if the peer does not answer
// within closeGrace. Safe to call more than once and from any goroutine.
func (b *bridgeConn) shutdown(code int, text string) {
	if b.w.Close(errBridgeGone) {
		b.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(relay.WriteWait))
		time.AfterFunc(closeGrace, func() { b.ws.Close() })
	}
}

// drain reads until the peer answers our close frame or the socket dies.
func (b *bridgeConn) drain() {
	for {
		if _, _, err := b.ws.ReadMessage(); err != nil {
			b.ws.Close()
			return
		}
	}
}

// keepalive pings the bridge every PingInterval (the bridge answers, and
// pings only when the relay does not) and sweeps idle sessions.
func (b *bridgeConn) keepalive(now time.Time) (time.Duration, error) {
	if err := b.ws.WriteControl(websocket.PingMessage, nil, now.Add(relay.WriteWait)); err != nil {
		return 0, fmt.Errorf("ping: %w", err)
	}
	b.sweepSessions(now)
	return relay.PingInterval, nil
}

// writeFailed ends a bridge whose socket refused a data frame.
func (b *bridgeConn) writeFailed(err error) {
	b.s.log.Info("write to bridge failed", "dev", b.dev, "err", err)
	b.shutdown(websocket.CloseInternalServerErr, "write failed")
	b.ws.Close()
}

// send writes one frame to the bridge. When the socket is idle (no frame
// queued, no one writing) and at most one request is waiting on this
// bridge, the caller writes it itself: one syscall and no hand-off to the
// writer's loop, which on a loaded machine costs a goroutine wake per call.
// Otherwise the frame is queued, and the loop sends it in the next corked
// batch: under concurrency, one syscall for many frames (and a burst the
// bridge answers in one batch too) beats one each. Queued frames are never
// overtaken, because the inline path is taken only while none is waiting.
//
// It fails when the bridge is gone, when ctx ends, or when the queue stays
// full for relay.WriteWait. A large msg or body is written from f's own
// bytes, which must not change after.
func (b *bridgeConn) send(ctx context.Context, f relay.Frame) error {
	data, err := relay.EncodeFrameParts(f)
	if err != nil {
		return err
	}
	err = b.w.Send(ctx, data, b.active.Load() <= inlineMaxActive)
	switch {
	case err == nil:
		return nil
	case err == wire.ErrClosed:
		return errBridgeGone
	case errors.Is(err, wire.ErrQueueFull):
		return fmt.Errorf("bridge is not reading: %w", err)
	case errors.Is(err, wire.ErrClosed):
		return fmt.Errorf("write to bridge: %w", err)
	}
	return err
}

// inlineMaxActive is the most requests in flight on one bridge for which
// send still writes inline rather than through the writer's batches.
const inlineMaxActive = 1

// sendErrorFrame tells the bridge that one of its frames was wrong; the
// socket stays up.
func (b *bridgeConn) sendErrorFrame(code, msg string, about relay.Frame) {
	f := relay.Frame{Kind: relay.KindError, Code: code, Message: msg, Server: about.Server, Session: about.Session}
	if err := b.send(context.Background(), f); err != nil {
		b.s.log.Debug("could not send error frame", "dev", b.dev, "err", err)
	}
}

// handleFrame dispatches one inbound frame. Bad input is answered with an
// error frame, never by dropping the socket.
func (b *bridgeConn) handleFrame(data []byte) {
	f, err := relay.DecodeFrame(data)
	if err != nil {
		b.sendErrorFrame(relay.ErrCodeBadFrame, err.Error(), relay.Frame{})
		return
	}
	switch {
	case f.Kind == relay.KindCatalog && b.protocol == protoTether:
		b.mu.Lock()
		b.servers = classifiedErrors(f.Servers)
		close(b.catalogd) // wakes requests waiting for a server to start
		b.catalogd = make(chan struct{})
		b.mu.Unlock()
		b.s.activity.notify(b.dev)
		b.s.log.Debug("catalog updated", "dev", b.dev, "servers", len(f.Servers))
	case f.Kind == relay.KindMCP && b.protocol == protoTether:
		b.routeMCP(f)
	case f.Kind == relay.KindClose && b.protocol == protoTether:
		if sess := b.lookupSession(f.Session); sess != nil && sess.server == f.Server {
			b.endSession(sess, false)
		}
	case f.Kind == relay.KindRPCResponse && b.protocol == protoTAG:
		b.routeRPC(f)
	case f.Kind == relay.KindError:
		b.s.log.Warn("bridge reported an error", "dev", b.dev, "code", f.Code, "message", f.Message, "server", f.Server)
	case f.Kind == relay.KindHello:
		b.sendErrorFrame(relay.ErrCodeBadFrame, "hello already received on this socket", f)
	default:
		b.sendErrorFrame(relay.ErrCodeUnknownKind, fmt.Sprintf("kind %q is not accepted on a %s socket", f.Kind, b.protocol), f)
	}
}

// classifiedErrors keeps a server's error text only when it comes with a
// kind. A bridge older than ErrorKind sends its child's raw error, stderr
// lines included (they have carried API keys), and the relay shows that
// text to every client of the dev: such an error is shown as unavailable,
// without the text. servers is modified in place (it is the decoded frame's).
func classifiedErrors(servers []relay.ServerInfo) []relay.ServerInfo {
	for i := range servers {
		if servers[i].Error != "" && servers[i].ErrorKind == "" {
			servers[i].ErrorKind = relay.ErrorUnavailable
			servers[i].Error = "mcp server is unavailable (this bridge is too old to say why safely; update Tether)"
		}
	}
	return servers
}

// catalog returns a copy of the bridge's server list.
func (b *bridgeConn) catalog() []relay.ServerInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]relay.ServerInfo(nil), b.servers...)
}

func (b *bridgeConn) hasServer(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, si := range b.servers {
		if si.Name == name {
			return true
		}
	}
	return false
}
