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
// to ask anything of anyway). It never gets a session. Its members:
//
//   - are made by NewSession, or by NewSessionFor when the relay session's
//     first message is its initialize (a 2025-era client; a 2026-era
//     request is a session of its own at the relay, one POST long, and is
//     served by the warm instance), with the parent's spec, options and
//     tool filter, and are started at once (the bridge waits for one to be
//     ready as for any starting server);
//   - are stopped by Session.Close (the relay ended the session: DELETE,
//     idle expiry, eviction, or the relay connection dropped), in the
//     background, and stop with the parent;
//   - restart after a crash on their own, which fails only their own
//     session's calls: each member has its own router;
//   - are bounded by Options.MaxProcesses: a session past the bound is
//     refused (every request answered with CodeUnavailable), not served by
//     evicting another, because an evicted session may be the one holding
//     a sampling or elicitation request a person is answering.

// DefaultMaxProcesses bounds an isolated child's per-session processes when
// Options.MaxProcesses is not set.
const DefaultMaxProcesses = 8

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
	mopts := c.opts
	mopts.Isolate, mopts.MaxProcesses = false, 0
	mopts.Logger = c.opts.Logger.With("session", id)
	// A member's status is part of its parent's (Processes); the observer
	// hears of the parent only.
	mopts.OnStatus = func(Status) { c.kickStatus() }
	m := New(c.spec, mopts)
	m.parent = c
	c.members[m] = struct{}{}
	ctx := c.runCtx
	c.mu.Unlock()
	if ctx == nil {
		ctx = context.Background() // a session before Start: the member lives on its own
	}
	s := m.NewSession(id, out) // registered before the member can deliver anything
	m.Start(ctx)
	c.kickStatus()
	return s
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
