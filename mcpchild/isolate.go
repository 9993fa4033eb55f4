package mcpchild

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tether-dev/tether/internal/mcpwire"
)

// Isolation per session (Options.Isolate, mcp.json "isolate": "session").
//
// A 2025-era stdio server's request to its client (sampling, elicitation,
// roots) carries nothing that says which call caused it. One shared child
// can route it only when exactly one session has a call in flight; with two
// it must answer with an error. An isolated child gives every session a
// process of its own — a member: a Child like any other, whose parent is the
// isolated one — so the one session a member has is always the right one.
//
// The isolated Child itself stays the warm instance it always is: it lists
// the tools for the catalog before any session exists, follows
// list_changed, and serves Call (the TAG front end, which has no session
// to ask anything of anyway). It gets only the sessions that cannot cause
// a server→client request (below). Its members:
//
//   - are made by NewSession, or by NewSessionFor when the relay session's
//     first message is its initialize (a 2025-era client), with the
//     parent's spec, options and tool filter, and are started at once (the
//     bridge waits for one to be ready as for any starting server);
//   - are stopped by Session.Close (the relay ended the session: DELETE,
//     idle expiry, eviction, or the relay connection dropped), in the
//     background, and stop with the parent;
//   - restart after a crash on their own, which fails only their own
//     session's calls: each member has its own router;
//   - are bounded by Options.MaxProcesses: a session past the bound is
//     refused (every request answered with CodeUnavailable), not served by
//     evicting another, because an evicted session may be the one holding
//     a sampling or elicitation request a person is answering.
//
// A 2026-era client has no session: the relay makes each of its POSTs a
// session of its own, closed with the POST, and a call whose child asks for
// input is answered with input_required and retried in another POST
// (held.go). A process per POST would cost a spawn and a handshake per
// request and could not serve the retry. So a 2026 request that may make
// the child ask (pooledRequest: a tools/call, prompts/get, resources/read
// or completion/complete of a client that can answer, to a child spoken to
// in 2025) is served by a pooled member instead: one with no other call in
// flight and no held call, or a new one while Processes is under
// MaxProcesses. The call is then the only one its process has, so the
// child's request is for it. A retry goes to the member that holds its
// requestState. A pooled member outlives its sessions and is stopped once
// it has been idle for Options.PooledIdle. Every other 2026 request
// (server/discover, lists, ping, subscriptions/listen, or a client that
// declares none of roots, sampling and elicitation) is served by the warm
// instance.
//
// Past MaxProcesses (every process busy, or held by a 2025 session) such a
// request is served by the warm instance rather than refused — a 2025
// session lasts, and refusing would shut 2026 clients out while it is open
// — and there, as on a shared child, a child's request is routed only while
// one call is in flight.

// DefaultMaxProcesses bounds an isolated child's per-session processes when
// Options.MaxProcesses is not set.
const DefaultMaxProcesses = 8

// DefaultPooledIdle is how long a process kept for 2026-era requests stays
// up without a call when Options.PooledIdle is not set.
const DefaultPooledIdle = time.Minute

// memberStopTimeout bounds stopping a member once its session closed; its
// own stop stages (stdin, SIGTERM, SIGKILL) fit well inside.
const memberStopTimeout = 30 * time.Second

// newIsolatedSession opens a session on a member started for it, or a
// refused session when the parent is at its bound or stopping.
func (c *Child) newIsolatedSession(id string, out func(msg []byte, related []byte)) *Session {
	c.mu.Lock()
	if c.stopping || len(c.members) >= c.opts.MaxProcesses {
		why := fmt.Sprintf("mcp server %q is limited to %d sessions at once (maxProcesses); try again later", c.spec.Name, c.opts.MaxProcesses)
		if c.stopping {
			why = fmt.Sprintf("mcp server %q is stopping", c.spec.Name)
		}
		c.mu.Unlock()
		c.log.Warn("session refused", "session", id, "reason", why)
		return &Session{c: c, id: id, out: out, refused: why, inflight: map[string]int64{}, listens: map[string][]byte{}, logLevel: -1}
	}
	m, ctx := c.newMemberLocked("session", id)
	c.mu.Unlock()
	s := m.NewSession(id, out) // registered before the member can deliver anything
	m.Start(ctx)
	c.kickStatus()
	return s
}

// newMemberLocked makes a member (not started) and the context to start it
// with. Caller holds c.mu.
func (c *Child) newMemberLocked(logKey, logVal string) (*Child, context.Context) {
	mopts := c.opts
	mopts.Isolate, mopts.MaxProcesses = false, 0
	mopts.Logger = c.opts.Logger.With(logKey, logVal)
	// A member's status is part of its parent's (Processes); the observer
	// hears of the parent only.
	mopts.OnStatus = func(Status) { c.kickStatus() }
	m := New(c.spec, mopts)
	m.parent = c
	c.members[m] = struct{}{}
	ctx := c.runCtx
	if ctx == nil {
		ctx = context.Background() // a session before Start: the member lives on its own
	}
	return m, ctx
}

// inputMethods are the requests during which a server may ask its client
// for input.
var inputMethods = map[string]bool{"tools/call": true, "prompts/get": true, "resources/read": true, "completion/complete": true}

// pooledRequest reports whether first is a 2026-era request that must be
// served by a pooled member (see above), and the retry's requestState when
// it is the retry of a held call.
func (c *Child) pooledRequest(first []byte) (pooled bool, handle string) {
	m, err := parseMessage(bytes.TrimSpace(first))
	if err != nil || m.kind() != kindRequest {
		return false, ""
	}
	if isHeldRetry(&m) {
		return true, unquote(field(m.params, "requestState"))
	}
	if !inputMethods[m.method] || !mcpwire.IsModern(m.p.version) {
		return false, ""
	}
	c.mu.Lock()
	era := c.init.era
	c.mu.Unlock()
	if era == Era2026 || c.opts.Era == Era2026 {
		return false, "" // the child asks with input_required itself, per call
	}
	if caps := field(m.p.meta, mcpwire.MetaClientCapabilities); caps != nil &&
		field(caps, "roots") == nil && field(caps, "sampling") == nil && field(caps, "elicitation") == nil {
		return false, "" // its child's requests are refused anyway (held.go)
	}
	return true, ""
}

// newPooledSession opens the session of a 2026-era request on a pooled
// member: the one holding handle for a retry, else an idle one, else a new
// one within MaxProcesses. It returns nil when the warm instance serves the
// request.
func (c *Child) newPooledSession(id string, first []byte, out func(msg []byte, related []byte)) *Session {
	pooled, handle := c.pooledRequest(first)
	if !pooled {
		return nil
	}
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		return nil // the warm instance answers that it is not ready
	}
	var m *Child
	for cand := range c.members {
		if !cand.pooled || cand.retired {
			continue
		}
		if handle != "" {
			if cand.route.holds(handle) {
				m = cand
				break
			}
			continue
		}
		if cand.claims == 0 && cand.route.idle() && cand.Phase() != PhaseCrashLoop {
			m = cand
			break
		}
	}
	switch {
	case m == nil && handle != "":
		c.mu.Unlock()
		return nil // the warm instance answers that the requestState is unknown
	case m == nil && len(c.members) >= c.opts.MaxProcesses:
		c.mu.Unlock()
		c.log.Info("every process is busy (maxProcesses): a 2026-era request goes to the warm instance", "session", id)
		return nil
	case m == nil:
		var ctx context.Context
		m, ctx = c.newMemberLocked("pooled", id)
		m.pooled = true
		m.claims, m.idleGen = 1, 1
		c.mu.Unlock()
		s := m.newSharedSession(id, out)
		m.Start(ctx)
		c.kickStatus()
		return s
	}
	m.claims++
	m.idleGen++
	c.mu.Unlock()
	return m.newSharedSession(id, out)
}

// unclaim is a pooled member's session closing: once it has none, the
// member is stopped after PooledIdle without a call.
func (c *Child) unclaim(m *Child) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m.claims--
	if m.claims == 0 {
		c.retireWhenIdleLocked(m)
	}
}

// retireWhenIdleLocked stops m after PooledIdle unless it is claimed
// meanwhile; while a call of it is still pending (a held call waiting for
// its retry) it looks again after another PooledIdle. Caller holds c.mu.
func (c *Child) retireWhenIdleLocked(m *Child) {
	gen := m.idleGen
	time.AfterFunc(c.opts.PooledIdle, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if m.retired || m.claims > 0 || m.idleGen != gen {
			return
		}
		if _, ok := c.members[m]; !ok {
			return // stopped with the parent
		}
		if !m.route.idle() {
			c.retireWhenIdleLocked(m)
			return
		}
		m.retired = true
		c.release(m)
	})
}

// release stops member m (its session closed) in the background and forgets
// it once it is down, so Processes counts only what still runs.
func (c *Child) release(m *Child) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), memberStopTimeout)
		defer cancel()
		if err := m.Stop(ctx); err != nil {
			c.log.Warn("stopping a session's process", "err", err)
		}
		c.mu.Lock()
		delete(c.members, m)
		c.mu.Unlock()
		c.kickStatus()
	}()
}

// memberList is the members running now.
func (c *Child) memberList() []*Child {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Child, 0, len(c.members))
	for m := range c.members {
		out = append(out, m)
	}
	return out
}

// stopMembers stops every member in parallel and waits for them (Stop).
func (c *Child) stopMembers(ctx context.Context) error {
	members := c.memberList()
	if len(members) == 0 {
		return nil
	}
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() { errs[i] = m.Stop(ctx) })
	}
	wg.Wait()
	c.mu.Lock()
	for _, m := range members {
		delete(c.members, m)
	}
	c.mu.Unlock()
	c.kickStatus()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// opensWithInitialize reports whether msg is an initialize request.
func opensWithInitialize(msg []byte) bool {
	m, err := parseMessage(bytes.TrimSpace(msg))
	return err == nil && m.kind() == kindRequest && m.method == "initialize"
}

// soleSessionOf is the one session of a member, or nil.
func (c *Child) soleSessionOf() *Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := range c.sessions {
		return s
	}
	return nil
}

// handleRefused answers a refused session's requests with the reason.
func (s *Session) handleRefused(m *message) {
	if m.kind() == kindRequest {
		s.deliver(errorResponse(m.id, mcpwire.CodeUnavailable, s.refused), nil)
	}
}
