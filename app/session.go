package app

import (
	"sync"

	"github.com/tether-dev/tether/mcpchild"
	"github.com/tether-dev/tether/relay"
)

// session is one relay session of one server, with its own ordered queue.
//
// Why a queue per session: the relay client hands frames to onFrame one at a
// time from its read loop, and Session.Handle may block while it writes to
// the child's stdin. Handling inline would let one slow child stall every
// session (and the socket's keepalive). A goroutine per session keeps each
// session's messages in order (a cancellation never overtakes its request)
// while sessions never wait for each other.
//
// The queue is unbounded on purpose: onFrame must not block, and the relay
// bounds what it sends (its per-request timeout and body limit, and the
// socket's own flow control). The goroutine exits after close.
type session struct {
	sess *mcpchild.Session

	mu     sync.Mutex
	queue  [][]byte
	closed bool
	wake   chan struct{} // capacity 1
}

// newSession opens the mcpchild session and its queue goroutine. The caller
// holds b.mu.
func (b *Bridge) newSession(c *mcpchild.Child, key sessionKey) *session {
	s := &session{wake: make(chan struct{}, 1)}
	s.sess = c.NewSession(key.session, func(msg, related []byte) {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return // the relay forgot this session; late output has nowhere to go
		}
		// The child's reader may reuse its buffers after out returns, and the
		// frame is encoded later by the client's writer: copy.
		f := relay.Frame{Kind: relay.KindMCP, Server: key.server, Session: key.session, Msg: clone(msg)}
		if len(related) > 0 {
			f.Related = clone(related)
		}
		b.send(f)
	})
	go s.loop()
	return s
}

// push queues one client message; it never blocks.
func (s *session) push(msg []byte) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.queue = append(s.queue, msg)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// close ends the session: messages still queued are dropped and in-flight
// requests are cancelled at the child (mcpchild.Session.Close).
func (s *session) close() {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.queue = nil
	s.mu.Unlock()
	if already {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *session) loop() {
	for range s.wake {
		for {
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				// Close runs here, after any Handle in progress, so the
				// mcpchild session is never used after it was closed.
				s.sess.Close()
				return
			}
			if len(s.queue) == 0 {
				s.mu.Unlock()
				break
			}
			msg := s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.mu.Unlock()
			// Handle answers a malformed message itself; its error is only
			// informative.
			_ = s.sess.Handle(msg)
		}
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
