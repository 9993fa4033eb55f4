package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

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
// A server that is starting or restarting cannot answer yet, and failing
// the request would fail a client that merely arrived early (right after
// the bridge connected, or after a reload). So while the server is not
// ready, messages queue too, and the drain goroutine waits for the server —
// at most readyWait — before handing them over; if the server does not get
// there, each queued request is answered with an error that says why.
//
// The queue is unbounded on purpose: onFrame must not block, and the relay
// bounds what it sends (its per-request timeout and body limit, and the
// socket's own flow control).
type session struct {
	child     *mcpchild.Child
	sess      *mcpchild.Session
	inline    bool               // Handle never waits for the server: handle on the read loop
	hold      func()             // holds the child's writes until the read loop waits (writeHolds)
	readyWait time.Duration      // how long queued messages wait for the server to be ready
	reply     func(msg []byte)   // sends a message of the bridge's own to the client
	done      context.Context    // ends when the session closes: stops a wait for readiness
	stop      context.CancelFunc // ends done

	mu     sync.Mutex
	queue  [][]byte
	busy   bool // a handler (the read loop inline, or drain) is using sess
	closed bool
}

// newSession opens the mcpchild session. The caller holds b.mu, which is
// allowed because NewSession only registers the session under the child's
// own lock and delivers nothing (on an isolated server it also starts the
// session's process, which returns at once: the spawn runs on the new
// child's own goroutine).
func (b *bridge) newSession(c *mcpchild.Child, key sessionKey, first []byte) *session {
	s := &session{readyWait: b.opts.ReadyWait}
	s.done, s.stop = context.WithCancel(context.Background())
	s.sess = c.NewSessionFor(key.session, first, func(msg, related []byte) {
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
		// (On an isolated server c is the warm instance, not the session's
		// process, which is not known yet when this is made: the hint is
		// then only a guess, and either answer is correct.)
		b.sendFrame(f, c.OutputPending())
	})
	// The child that serves the session: c, or on an isolated server the
	// session's own process, just started, which readiness waits for.
	s.child = s.sess.Child()
	s.reply = func(msg []byte) {
		b.send(relay.Frame{Kind: relay.KindMCP, Server: key.server, Session: key.session, Msg: msg})
	}
	s.inline = s.sess.Nonblocking()
	s.hold = func() { b.holds.hold(s.child) }
	return s
}

// mustWait reports whether the server is on its way to ready (not started
// yet, starting, or waiting to restart after a crash), so a message for it
// should wait rather than fail. A crash loop needs a person, so messages
// for it go through and get mcpchild's error at once.
func mustWait(p mcpchild.Phase) bool {
	switch p {
	case mcpchild.PhaseStopped, mcpchild.PhaseStarting, mcpchild.PhaseBackoff:
		return true
	}
	return false
}

// push handles or queues one client message; it never waits for the child.
// It is called from the relay's read loop only.
func (s *session) push(msg []byte) {
	wait := mustWait(s.child.Phase())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.busy || !s.inline || wait {
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

// drain handles queued messages in order until the queue is empty, each
// once the server is ready (or failed, if it does not get there). It runs
// while s.busy.
func (s *session) drain() {
	s.mu.Lock()
	for !s.closed && len(s.queue) > 0 {
		s.mu.Unlock()
		if err := s.awaitReady(); err != nil {
			s.failQueued(err)
			s.mu.Lock()
			continue
		}
		s.mu.Lock()
		if s.closed || len(s.queue) == 0 {
			break
		}
		msg := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.mu.Unlock()
		_ = s.sess.Handle(msg)
		s.mu.Lock()
	}
	s.release()
}

// awaitReady waits until the server can take a message: ready, or in a
// state where waiting is pointless (then Handle answers with the reason).
// It fails when the server does not get there within readyWait. A closed
// session stops the wait (drain then drops the queue).
func (s *session) awaitReady() error {
	if !mustWait(s.child.Phase()) {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.done, s.readyWait)
	defer cancel()
	err := s.child.WaitReady(ctx)
	if err == nil || s.done.Err() != nil || !mustWait(s.child.Phase()) {
		return nil // ready, closed, or crash-looping: Handle says the rest
	}
	st := s.child.Status()
	msg := fmt.Sprintf("mcp server %q did not become ready within %v (%s)", s.child.Name(), s.readyWait, st.Phase)
	if e := st.RemoteError(s.child.Spec().ShareStderr); e != "" {
		msg += ": " + e // the session's client is remote: no stderr unless shared
	}
	return errors.New(msg)
}

// failQueued answers every queued request with err and drops the other
// queued messages (notifications and answers have no one to tell).
func (s *session) failQueued(err error) {
	s.mu.Lock()
	queued := s.queue
	s.queue = nil
	s.mu.Unlock()
	for _, msg := range queued {
		var peek struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(msg, &peek) != nil || len(peek.ID) == 0 || string(peek.ID) == "null" || peek.Method == "" {
			continue
		}
		resp, _ := json.Marshal(map[string]any{
			"jsonrpc": "2.0", "id": peek.ID,
			"error": map[string]any{"code": codeServerUnavailable, "message": err.Error()},
		})
		s.reply(resp)
	}
}

// codeServerUnavailable is the JSON-RPC error code mcpchild answers with
// when a server cannot serve (not ready, gone); the bridge uses the same.
const codeServerUnavailable = -32001

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
	s.stop() // a drain waiting for readiness gives up
	if idle {
		// Not on the caller's goroutine: Close writes cancellations to the
		// child, which may be an HTTP server.
		go s.sess.Close()
	}
}
