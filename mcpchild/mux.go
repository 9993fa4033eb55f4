package mcpchild

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/tether-dev/tether/internal/jsonscan"
	"github.com/tether-dev/tether/internal/mcpwire"
)

// instance is one run of the server: its link and read loop.
type instance struct {
	c    *Child
	link link

	dead     chan struct{} // closed when the message stream ended (the server is gone or going)
	readDone chan struct{}
}

func newInstance(c *Child, l link) *instance {
	return &instance{
		c:        c,
		link:     l,
		dead:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
}

// write sends one message to the server.
func (in *instance) write(msg []byte) error { return in.link.write(msg) }

// deathError describes why this instance is gone, in plain words.
func (in *instance) deathError() error { return in.link.deathError() }

// pending is a request the bridge sent to the child and awaits an answer for.
type pending struct {
	sess     *Session // nil for the bridge's own requests
	origID   []byte   // the id in the session's space
	origTok  []byte   // the session's progress token, when it sent one
	method   string
	internal chan []byte         // the response, for the bridge's own requests
	params   []byte              // the client's params, kept when input requests may need translating
	rounds   int                 // multi-round-trip rounds so far
	call     callStart           // an observed tools/call (Options.OnCall), else zero
	caps     []byte              // a 2026 client's per-request capabilities, for held input requests
	held     *heldCall           // set (under router.mu) once the child asked input for a 2026 client
	uri      string              // a listen of the bridge's for this resource (a 2026 child; subs.go)
	then     func(errObj []byte) // a subscription of the bridge's: told of the child's answer (subs.go)
}

// send forwards one request to the child under a fresh child-side id.
// build gets that id (registered as pending already, so an answer cannot
// outrun the bookkeeping) and returns the bytes to write.
func (c *Child) send(in *instance, p *pending, build func(id int64, idb []byte) []byte) (int64, error) {
	id := c.nextID.Add(1)
	idb := strconv.AppendInt(nil, id, 10)
	c.mu.Lock()
	if c.inst != in || in == nil {
		c.mu.Unlock()
		return 0, errNotRunning
	}
	// Under mu, so that teardown (which clears c.inst, then drains the
	// router) cannot miss it.
	c.route.add(id, p)
	c.mu.Unlock()
	if err := in.write(build(id, idb)); err != nil {
		c.route.take(id)
		return 0, fmt.Errorf("write to mcp server %q: %w", c.spec.Name, err)
	}
	return id, nil
}

var errNotRunning = errors.New("not running")

// request is the bridge's own call to the child (handshake, tools/list).
func (c *Child) request(ctx context.Context, in *instance, method string, params []byte) (json.RawMessage, error) {
	p := &pending{method: method, internal: make(chan []byte, 1)}
	id, err := c.send(in, p, func(_ int64, id []byte) []byte { return buildRequest(id, method, params) })
	if err != nil {
		return nil, err
	}
	select {
	case resp := <-p.internal:
		m, err := parseMessage(resp)
		if err != nil {
			return nil, fmt.Errorf("%s: bad response: %w", method, err)
		}
		if m.err != nil {
			var e struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			_ = json.Unmarshal(m.err, &e)
			return nil, &RPCError{Code: e.Code, Message: e.Message}
		}
		return m.result, nil
	case <-in.dead:
		c.route.take(id)
		return nil, in.deathError()
	case <-ctx.Done():
		c.route.take(id)
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// RPCError is a JSON-RPC error the child answered with.
type RPCError struct {
	Code    int
	Message string
}

func (e *RPCError) Error() string { return fmt.Sprintf("JSON-RPC error %d: %s", e.Code, e.Message) }

// failPending answers every request still waiting on the child with err.
func (c *Child) failPending(err error) {
	d := c.route.drain()
	// The session's client may be remote: it gets the classified text; the
	// call record stays on this machine and keeps the whole story.
	msg, remote := err.Error(), c.RemoteError(err)
	for _, r := range d.rounds {
		r.sess.finish(r.origID, errorResponse(r.origID, mcpwire.CodeUnavailable, remote))
		c.reportCall(r.sess, r.call, OutcomeFailed, msg)
	}
	for _, p := range d.pending {
		if p.then != nil {
			p.then(errorObject(mcpwire.CodeUnavailable, msg))
			continue
		}
		if p.internal != nil {
			continue // its caller watches inst.dead
		}
		p.sess.finish(p.origID, errorResponse(p.origID, mcpwire.CodeUnavailable, remote))
		c.reportCall(p.sess, p.call, OutcomeFailed, msg)
	}
	for key, s := range d.srvReqs {
		// The child that asked is gone: tell the session to stop waiting.
		s.deliver(buildNotification("notifications/cancelled",
			[]byte(`{"requestId":`+key+`,"reason":"server exited"}`)), nil)
	}
}

// readLoop reads the child's stdout until it ends and routes every message.
func (in *instance) readLoop() {
	c := in.c
	defer close(in.readDone)
	defer close(in.dead)
	lr := newLineReader(in.link.messages(), c.opts.MaxMessageBytes)
	for {
		line, err := lr.next()
		var tooLong *errLineTooLong
		if errors.As(err, &tooLong) {
			c.oversized(tooLong)
			continue
		}
		if err != nil {
			return
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		m, err := parseMessage(line)
		if err != nil && (line[0] != '{' || !jsonscan.Valid(line)) {
			// Servers that print banners or debug output on stdout are common;
			// such lines are noise, not a reason to drop the child.
			c.noise.skipped(c, "a non-JSON line", nil, line) // rate-limited: noise.go
			continue
		}
		if err != nil {
			c.noise.skipped(c, "a message that is not JSON-RPC", err, line)
			continue
		}
		c.morePending.Store(lr.buffered())
		switch m.kind() {
		case kindResponse:
			c.fromChildResponse(&m)
		case kindRequest:
			c.fromChildRequest(in, &m)
		case kindNotification:
			c.fromChildNotification(&m)
		}
	}
}

// oversized fails the request whose response was over the cap, when its id
// can be found in the kept prefix.
func (c *Child) oversized(e *errLineTooLong) {
	msg := fmt.Sprintf("mcp server %q sent a message of %d bytes, over the %d byte cap (raise max message size to allow it)",
		c.spec.Name, e.size, c.opts.MaxMessageBytes)
	c.log.Error("message over the size cap", "bytes", e.size, "cap", c.opts.MaxMessageBytes)
	c.logLine(msg)
	id := peekID(e.prefix)
	p := c.route.takeRaw(id)
	switch {
	case p == nil:
	case p.then != nil:
		p.then(errorObject(mcpwire.CodeTooLarge, msg))
	case p.internal != nil:
		p.internal <- errorResponse(id, mcpwire.CodeTooLarge, msg)
	default:
		p.sess.finish(p.origID, errorResponse(p.origID, mcpwire.CodeTooLarge, msg))
		c.reportCall(p.sess, p.call, OutcomeError, msg)
	}
}

func (c *Child) fromChildResponse(m *message) {
	p := c.route.takeRaw(m.id)
	switch {
	case p == nil:
	case p.then != nil:
		p.then(m.err)
	case p.internal != nil:
		p.internal <- m.raw
	case p.held != nil:
		c.heldResponse(p.held, m)
	case m.err == nil && needsInputTranslation(p, m.result):
		c.startInputRound(p, m.result)
	default:
		var outcome, msg string
		observed := !p.call.start.IsZero()
		if observed {
			outcome, msg = responseOutcome(m.result, m.err) // before withID makes the spans stale
		}
		var resp []byte
		var allow func(string) bool
		if p.method == "tools/list" && m.err == nil {
			allow = c.toolFilter()
		}
		if allow != nil {
			resp = buildResponse(p.origID, filterToolsResult(m.result, allow), nil)
		} else {
			// The child's own bytes with only the id swapped back: no copy of
			// a big result (the line is the session's to keep).
			resp = m.withID(p.origID)
		}
		p.sess.finish(p.origID, resp)
		if observed {
			c.reportCall(p.sess, p.call, outcome, msg)
		}
	}
}

// fromChildRequest routes a server→client request (roots/list, sampling,
// elicitation, ping) to the one session it can belong to, or answers it.
func (c *Child) fromChildRequest(in *instance, m *message) {
	if m.method == "ping" {
		_ = in.write(buildResponse(m.id, []byte("{}"), nil))
		return
	}
	target, candidates := c.route.soleSession()
	if c.parent != nil && !c.pooled {
		// A session's own process: its request is for that session, with
		// or without a call in flight (roots/list after initialized). (A
		// pooled process has one call in flight at most: soleSession finds
		// it, whichever one-POST session now waits for its answer.)
		target, candidates = c.soleSessionOf(), 1
	}
	var reason string
	switch {
	case target == nil && c.parent != nil:
		reason = "its client session has closed"
	case candidates == 0:
		reason = "no client has a request in flight"
	case candidates > 1:
		reason = "several clients have requests in flight, so the one it is for is ambiguous"
	case target.Era() == Era2026:
		// A 2026 client takes no server→client requests: its call is
		// answered with input_required instead (held.go).
		why, ok := c.holdForInput(target, m)
		if ok {
			return
		}
		reason = why
	default:
		if why := target.refuses(m.method, m.params); why != "" {
			reason = why
		}
	}
	if reason != "" {
		c.log.Info("answered a server→client request with an error", "method", m.method, "reason", reason)
		_ = in.write(errorResponse(m.id, mcpwire.CodeInternal,
			fmt.Sprintf("tether bridge: cannot route %s to a client: %s", m.method, reason)))
		return
	}
	c.route.sentToSession(idKey(m.id), target)
	target.deliver(m.raw, target.relatedRequest())
}

func (c *Child) fromChildNotification(m *message) {
	switch m.method {
	case "notifications/progress":
		c.routeProgress(m)
		return
	case "notifications/cancelled":
		// The child gave up on a server→client request it sent.
		if s := c.route.withdrawn(idKey(m.p.requestID)); s != nil {
			s.deliver(m.raw, nil)
		}
		return
	case "notifications/tools/list_changed":
		select {
		case c.relistKick <- struct{}{}:
		default:
		}
	}
	if sub := m.p.subscription; sub != nil {
		if string(sub) != strconv.FormatInt(c.bridgeListen.Load(), 10) {
			c.routeSubscription(m, sub)
			return
		}
		// The bridge's own listen on a 2026 child: 2025-era sessions hear
		// list changes as plain notifications.
		if m.method == "notifications/subscriptions/acknowledged" {
			return
		}
		plain := buildNotification(m.method, stripSubscription(m.params))
		for _, s := range c.sessionList() {
			if s.Era() != Era2026 {
				s.deliver(plain, nil)
			}
		}
		return
	}
	switch m.method {
	case "notifications/resources/updated":
		c.deliverResourceUpdated(m)
		return
	case "notifications/message":
		level := logLevel(unquote(m.p.level))
		for _, s := range c.sessionList() {
			if !s.wantsLog(level) {
				continue
			}
			var related []byte
			if s.Era() == Era2026 {
				// A 2026 client has no stream but its request's.
				related = s.relatedRequest()
			}
			s.deliver(m.raw, related)
		}
		return
	}
	for _, s := range c.sessionList() {
		s.deliverBroadcast(m)
	}
}

// routeProgress sends a progress notification to the session that asked,
// with its own token restored.
func (c *Child) routeProgress(m *message) {
	ts, te := m.p.token.s, m.p.token.e
	if ts < 0 {
		return
	}
	n, err := strconv.ParseInt(string(m.params[ts:te]), 10, 64)
	if err != nil {
		return
	}
	sess, origID, origTok := c.route.progressTarget(n)
	if sess == nil || origTok == nil {
		return
	}
	params := splice(m.params, ts, te, origTok)
	sess.deliver(buildNotification(m.method, params), origID)
}

// routeSubscription sends a 2026 child's notification on a session's
// subscriptions/listen stream back to that session under its own id.
func (c *Child) routeSubscription(m *message, sub []byte) {
	n, err := strconv.ParseInt(string(sub), 10, 64)
	if err != nil {
		return
	}
	p := c.route.lookup(n)
	if p != nil && p.sess == nil && p.uri != "" {
		// A listen of the bridge's for its subscribers.
		switch m.method {
		case "notifications/resources/updated":
			c.deliverResourceUpdated(m)
		case "notifications/subscriptions/acknowledged":
			p.then(nil)
		}
		return
	}
	if p == nil || p.sess == nil {
		return
	}
	meta := setField(m.p.meta, mcpwire.MetaSubscriptionID, p.origID)
	p.sess.deliver(buildNotification(m.method, setField(m.params, "_meta", meta)), p.origID)
}

func (c *Child) sessionList() []*Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Session, 0, len(c.sessions))
	for s := range c.sessions {
		out = append(out, s)
	}
	return out
}

// relistLoop refreshes the tool cache after notifications/tools/list_changed.
func (c *Child) relistLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.relistKick:
		}
		c.mu.Lock()
		in, hs := c.inst, c.init
		ready := c.st.Phase == PhaseReady
		c.mu.Unlock()
		if in == nil || !ready {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, c.opts.HandshakeTimeout)
		tools, err := c.listTools(rctx, in, hs)
		cancel()
		if err != nil {
			c.log.Warn("re-listing tools after list_changed", "err", err)
			continue
		}
		c.mu.Lock()
		if c.inst == in {
			c.tools = tools
		}
		c.mu.Unlock()
		c.kickStatus()
	}
}

// MCP log levels, by severity (RFC 5424 names).
var logLevels = []string{"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}

func logLevel(name string) int {
	for i, l := range logLevels {
		if l == name {
			return i
		}
	}
	return -1
}
