package app

import (
	"sync"

	"github.com/tether-dev/tether/mcpchild"
	"github.com/tether-dev/tether/relay"
)

// session is one relay session of one server.
//
// The relay client hands frames to onFrame one at a time from its read loop,
// which must never wait for a child: one slow child would stall every
// session (and the socket's keepalive). A stdio child's Session.Handle never
// waits for the child (its stdin writes are queued, see
// mcpchild.Session.Nonblocking), so its messages are handled right there on
// the read loop: no handoff to another goroutine on the hot path, and order
// is the frames' order. An HTTP server's Handle may wait on a POST, so its
// messages go to a queue drained by a goroutine started on demand, which
// keeps them in order (a cancellation never overtakes its request) while
// sessions never wait for each other.
//
// The queue is unbounded on purpose: onFrame must not block, and the relay
// bounds what it sends (its per-request timeout and body limit, and the
// socket's own flow control).
type session struct {
	sess   *mcpchild.Session
	inline bool   // Handle never waits for the server: handle on the read loop
	hold   func() // holds the child's writes until the read loop waits (writeHolds)

	mu     sync.Mutex
	queue  [][]byte
	busy   bool // a handler (the read loop inline, or drain) is using sess
	closed bool
}

// newSession opens the mcpchild session. The caller holds b.mu, which is
// allowed because NewSession only registers the session under the child's
// own lock and delivers nothing.
func (b *Bridge) newSession(c *mcpchild.Child, key sessionKey) *session {
	s := &session{}
	s.sess = c.NewSession(key.session, func(msg, related []byte) {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return // the relay forgot this session; late output has nowhere to go
		}
		// mcpchild gives msg and related away (it never changes them), so
		// they go into the frame without a copy: a big result is not
		// duplicated here.
		f := relay.Frame{Kind: relay.KindMCP, Server: key.server, Session: key.session, Msg: msg}
		if len(related) > 0 {
			f.Related = related
		}
		// A lone answer is written inline (lowest latency); when the child
		// has more output waiting, answers are queued and written together.
		b.sendFrame(f, c.OutputPending())
	})
	s.inline = s.sess.Nonblocking()
	s.hold = func() { b.holds.hold(c) }
	return s
}

// push handles or queues one client message; it never waits for the child.
// It is called from the relay's read loop only.
func (s *session) push(msg []byte) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.busy || !s.inline {
		s.queue = append(s.queue, msg)
		if !s.busy {
			s.busy = true
			go s.drain()
		}
		s.mu.Unlock()
		return
	}
	s.busy = true
	s.mu.Unlock()
	s.hold()
	// Handle answers a malformed message itself; its error is only
	// informative.
	_ = s.sess.Handle(msg)
	s.mu.Lock()
	s.release()
}

// release ends a handler's turn. Caller holds s.mu; release unlocks it.
func (s *session) release() {
	switch {
	case s.closed:
		s.mu.Unlock()
		// Close runs here, after the Handle in progress, so the mcpchild
		// session is never used after it was closed. busy stays set.
		s.sess.Close()
	case len(s.queue) > 0:
		s.mu.Unlock()
		go s.drain()
	default:
		s.busy = false
		s.mu.Unlock()
	}
}

// drain handles queued messages in order until the queue is empty. It runs
// while s.busy.
func (s *session) drain() {
	s.mu.Lock()
	for !s.closed && len(s.queue) > 0 {
		msg := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.mu.Unlock()
		_ = s.sess.Handle(msg)
		s.mu.Lock()
	}
	s.release()
}

// close ends the session: messages still queued are dropped and in-flight
// requests are cancelled at the child (mcpchild.Session.Close), at once when
// no handler is running, else when the running one is done.
func (s *session) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.queue = nil
	idle := !s.busy
	s.busy = true
	s.mu.Unlock()
	if idle {
		// Not on the caller's goroutine: Close writes cancellations to the
		// child, which may be an HTTP server.
		go s.sess.Close()
	}
}
