package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/tether-dev/tether/relay"
)

// eventQueue bounds the messages buffered for one waiting HTTP response
// (progress, logs) or one standalone GET stream. When a client reads too
// slowly the extra notifications are dropped rather than stalling the
// bridge's read loop, which serves every other caller of that dev.
const eventQueue = 64

// session is one relay session, the `session` of mcp frames. A 2025-era
// client gets one per Mcp-Session-Id; a 2026-era request gets an ephemeral
// one that lives for a single POST. A session object belongs to one bridge
// socket, but a 2025-era session outlives it: its id is signed and
// self-describing (sessionid.go), so when the client comes back on another
// socket — the bridge reconnected, tetherd or the relay restarted — the
// relay re-creates the object under the same id and replays the client's
// initialize to the bridge before the client's request (resumeSession).
type session struct {
	id        string
	server    string
	ephemeral bool
	token     string    // 2025 era: the client token id the session is bound to
	version   string    // 2025 era: the protocol version the client asked for in initialize
	expires   time.Time // 2025 era: when the id stops being accepted
	done      chan struct{}
	endOnce   bool // guarded by bridgeConn.mu

	// ready is closed once the session takes client messages: at once for
	// a session opened by initialize, after the replayed initialize for a
	// resumed one. replayErr, written before ready is closed, says how the
	// replay went.
	ready     chan struct{}
	replayErr error

	// guarded by bridgeConn.mu
	calls      map[string]*call
	stream     chan json.RawMessage // standalone GET stream; written only while streamOpen
	streamOpen bool
	lastUsed   time.Time
}

// call is one client request waiting for its response. The bridge's read
// loop leaves messages for it under bridgeConn.mu and pokes wake; the
// waiting handler takes them (take). One small channel per call rather
// than a buffered channel per kind of message: most calls get exactly one
// message, the response, and a 64-slot channel cost 1.5 KiB each.
type call struct {
	id   json.RawMessage
	wake chan struct{} // buffered 1: something was left for the handler

	// guarded by bridgeConn.mu
	events [][]byte // messages with `related` = this id, at most eventQueue
	resp   []byte   // the response, once it came
	// abandoned: the client sent notifications/cancelled for this request
	// (a held stream then ends at once instead of waiting for a resume).
	abandoned bool
}

// poke wakes the handler without blocking; one pending wake is enough.
func (c *call) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// take returns what was left for c since the last take: related messages
// in arrival order, then the response if it came; abandoned once the
// client cancelled the request.
func (b *bridgeConn) take(c *call) (events [][]byte, resp []byte, abandoned bool) {
	b.mu.Lock()
	events, resp, abandoned = c.events, c.resp, c.abandoned
	c.events = nil
	b.mu.Unlock()
	return events, resp, abandoned
}

// clientCancelled marks the call a client's notifications/cancelled (msg,
// already forwarded to the bridge) names as abandoned, and wakes it.
func (b *bridgeConn) clientCancelled(sess *session, msg []byte) {
	var n struct {
		Params struct {
			RequestID json.RawMessage `json:"requestId"`
		} `json:"params"`
	}
	if json.Unmarshal(msg, &n) != nil || len(n.Params.RequestID) == 0 {
		return
	}
	b.mu.Lock()
	c := sess.calls[idKey(n.Params.RequestID)]
	if c != nil {
		c.abandoned = true
	}
	b.mu.Unlock()
	if c != nil {
		c.poke()
	}
}

var errDuplicateID = errors.New("a request with this id is already in flight in this session")

func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// readyNow is the ready channel of sessions that need no replay.
var readyNow = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// newEphemeralSession opens the one-POST session of a 2026-era request.
func (b *bridgeConn) newEphemeralSession(server string) *session {
	sess := &session{
		id: newSessionID(), server: server, ephemeral: true,
		done: make(chan struct{}), ready: readyNow,
		calls:    make(map[string]*call),
		lastUsed: time.Now(),
	}
	b.mu.Lock()
	b.sessions[sess.id] = sess
	b.mu.Unlock()
	return sess
}

// newClientSession makes a 2025-era session object for a signed id; the
// caller puts it in b.sessions.
func newClientSession(id string, sc *sessionClaims) *session {
	return &session{
		id: id, server: sc.Server, token: sc.Token, version: sc.Version, expires: sc.expiry(),
		done: make(chan struct{}), ready: readyNow,
		calls:    make(map[string]*call),
		stream:   make(chan json.RawMessage, eventQueue), // only this era has a GET stream
		lastUsed: time.Now(),
	}
}

// openClientSession registers the session an initialize opens, or
// returns nil when the token is at its session limit with every session
// busy (an idle one is evicted to make room).
func (b *bridgeConn) openClientSession(id string, sc *sessionClaims) *session {
	sess := newClientSession(id, sc)
	b.mu.Lock()
	evict, ok := b.makeRoomLocked(sc.Token)
	if ok {
		b.sessions[id] = sess
	}
	b.mu.Unlock()
	b.evicted(evict)
	if !ok {
		return nil
	}
	return sess
}

// retire ends a 2025-era session for good (DELETE, idle, expiry): the
// bridge is told, and this process will not resume its id.
func (b *bridgeConn) retire(sess *session) {
	b.endSession(sess, true)
	if !sess.ephemeral {
		b.s.book.end(sess.id, sess.expires)
	}
}

func (b *bridgeConn) lookupSession(id string) *session {
	b.mu.Lock()
	defer b.mu.Unlock()
	sess := b.sessions[id]
	if sess != nil {
		sess.lastUsed = time.Now()
	}
	return sess
}

// endSession removes sess; its waiters fail at once. With notify set the
// bridge gets a close frame so it can drop the session's state.
func (b *bridgeConn) endSession(sess *session, notify bool) {
	b.mu.Lock()
	if b.sessions[sess.id] == sess {
		delete(b.sessions, sess.id)
	}
	first := !sess.endOnce
	sess.endOnce = true
	b.mu.Unlock()
	if !first {
		return
	}
	close(sess.done)
	if notify {
		if err := b.send(context.Background(), relay.Frame{Kind: relay.KindClose, Server: sess.server, Session: sess.id}); err != nil {
			b.s.log.Debug("close frame not sent", "dev", b.dev, "err", err)
		}
	}
}

func (b *bridgeConn) addCall(sess *session, id json.RawMessage) (*call, error) {
	k := idKey(id)
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, dup := sess.calls[k]; dup {
		return nil, errDuplicateID
	}
	c := &call{id: id, wake: make(chan struct{}, 1)}
	sess.calls[k] = c
	sess.lastUsed = time.Now()
	return c, nil
}

func (b *bridgeConn) forgetCall(sess *session, c *call) {
	k := idKey(c.id)
	b.mu.Lock()
	if sess.calls[k] == c {
		delete(sess.calls, k)
	}
	sess.lastUsed = time.Now()
	b.mu.Unlock()
}

// routeMCP delivers one bridge → relay message: a response to the call
// with its id; a message with `related` to that call's stream; anything
// else to the only call of an ephemeral session or to the session's
// standalone GET stream. Routing is by (session, id), so a response can
// only reach the caller that asked.
func (b *bridgeConn) routeMCP(f relay.Frame) {
	pk, ok := peekMessage(f.Msg)
	if !ok || (pk.Method == "" && len(pk.ID) == 0) {
		b.sendErrorFrame(relay.ErrCodeBadFrame, "msg is not a JSON-RPC message", f)
		return
	}
	b.mu.Lock()
	sess := b.sessions[f.Session]
	if sess == nil || sess.server != f.Server {
		b.mu.Unlock()
		// Late traffic for a session that ended (timeout, DELETE) is normal.
		b.s.log.Debug("message for an unknown session dropped", "dev", b.dev, "server", f.Server)
		return
	}
	if pk.isResponse() {
		k := idKey(pk.ID)
		c := sess.calls[k]
		delete(sess.calls, k)
		if c != nil {
			c.resp = f.Msg // the call was removed under the lock, so only once
		}
		b.mu.Unlock()
		if c != nil {
			c.poke()
		}
		return
	}
	var owner *call
	if len(f.Related) > 0 {
		owner = sess.calls[idKey(f.Related)]
	} else if sess.ephemeral {
		for _, c := range sess.calls {
			owner = c
		}
	}
	if owner != nil {
		full := len(owner.events) >= eventQueue
		if !full {
			owner.events = append(owner.events, f.Msg)
		}
		b.mu.Unlock()
		if full {
			b.s.log.Warn("client too slow; notification dropped", "dev", b.dev, "server", f.Server, "method", pk.Method)
			return
		}
		owner.poke()
		return
	}
	var target chan json.RawMessage
	if sess.streamOpen {
		target = sess.stream
	}
	b.mu.Unlock()
	if target == nil {
		b.s.log.Debug("message with no open stream dropped", "dev", b.dev, "server", f.Server, "method", pk.Method)
		return
	}
	select {
	case target <- f.Msg:
	default:
		b.s.log.Warn("client too slow; notification dropped", "dev", b.dev, "server", f.Server, "method", pk.Method)
	}
}

// toStream hands a message to the session's standalone stream, if open.
func (b *bridgeConn) toStream(sess *session, msg json.RawMessage) {
	b.mu.Lock()
	open := sess.streamOpen
	b.mu.Unlock()
	if !open {
		return
	}
	select {
	case sess.stream <- msg:
	default:
	}
}

// sweepSessions ends 2025-era sessions that have been idle too long.
func (b *bridgeConn) sweepSessions(now time.Time) {
	idle := b.s.sessionIdleTimeout()
	var stale []*session
	b.mu.Lock()
	for _, sess := range b.sessions {
		if sess.ephemeral {
			continue
		}
		idleTooLong := len(sess.calls) == 0 && !sess.streamOpen && now.Sub(sess.lastUsed) > idle
		if idleTooLong || !now.Before(sess.expires) {
			stale = append(stale, sess)
		}
	}
	b.mu.Unlock()
	for _, sess := range stale {
		// Not on the writer goroutine: endSession queues a close frame.
		go b.retire(sess)
	}
	b.s.sweepBook(now)
}

// sweepBook drops expired entries from the session book, at most once a
// minute however many bridges are connected.
func (s *Server) sweepBook(now time.Time) {
	last := s.lastBookSweep.Load()
	if now.Unix()-last < 60 || !s.lastBookSweep.CompareAndSwap(last, now.Unix()) {
		return
	}
	s.book.sweep(now)
}
