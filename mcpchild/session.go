package mcpchild

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tether-dev/tether/internal/jsonscan"
	"github.com/tether-dev/tether/internal/mcpwire"
)

// Session is one virtual MCP client of a Child, with its own JSON-RPC id
// space. Many sessions share the one warm child: the child sees unique ids,
// and every answer goes back to the session that asked, under its own id.
type Session struct {
	c   *Child
	id  string
	out func(msg []byte, related []byte)

	mu         sync.Mutex
	closed     bool
	era        Era
	inflight   map[string]int64  // session id key → child id
	listens    map[string][]byte // 2026 subscriptions/listen held by the bridge (2025 child)
	logLevel   int               // -1: no logging/setLevel yet, so no log notifications
	version    string            // protocolVersion the session asked for in initialize
	childV     string            // the version the child's messages are in (shape.go), set with version
	clientInfo []byte
	clientCaps []byte

	refused string // why an isolated child had no process for it (isolate.go); "" when served
}

// NewSession opens a virtual session. out receives every message for the
// client: responses, notifications and server→client requests; related is
// the id (in the session's space) of the client request a message belongs
// to, or nil. out is called from the child's read loop and from Handle; it
// must not call back into the session, and it should not block for long
// (it is the child's backpressure). out may keep msg and related without
// copying them: mcpchild never changes them after the call (and out must not
// change them either; a broadcast hands the same bytes to every session).
//
// On an isolated child (Options.Isolate) the session gets a process of its
// own, started here; Session.Child is that process.
func (c *Child) NewSession(id string, out func(msg []byte, related []byte)) *Session {
	if c.opts.Isolate {
		return c.newIsolatedSession(id, out)
	}
	return c.newSharedSession(id, out)
}

// NewSessionFor is NewSession for a session whose first message is first.
// On an isolated child a session that opens with initialize (a 2025-era
// client, whose session lasts) gets a process of its own. A 2026-era
// request (a session of one POST at the relay) that may make a child spoken
// to in 2025 ask its client for input (sampling, elicitation, roots) is
// served by a pooled process with no other call in flight, so the child's
// request can only be for that call, and its retry by the process that
// holds it (newPooledSession). Any other session is served by the warm
// instance, as on a shared child: a process per request would cost a spawn
// and a handshake each (see isolate.go).
func (c *Child) NewSessionFor(id string, first []byte, out func(msg []byte, related []byte)) *Session {
	if c.opts.Isolate {
		if opensWithInitialize(first) {
			return c.newIsolatedSession(id, out)
		}
		if s := c.newPooledSession(id, first, out); s != nil {
			return s
		}
	}
	return c.newSharedSession(id, out)
}

func (c *Child) newSharedSession(id string, out func(msg []byte, related []byte)) *Session {
	s := &Session{c: c, id: id, out: out, inflight: map[string]int64{}, listens: map[string][]byte{}, logLevel: -1}
	c.mu.Lock()
	c.sessions[s] = struct{}{}
	c.mu.Unlock()
	return s
}

// Nonblocking reports whether Handle returns without waiting for the
// server, so it may run on a loop that must never stall: true for a stdio
// child, whose stdin writes are queued rather than waited for (pipeWriter);
// false for an HTTP server, whose notifications are posted before Handle
// returns. Either way Handle calls out for answers the bridge gives itself.
func (s *Session) Nonblocking() bool { return s.c.spec.URL == "" }

// Child is the child that serves the session: the one NewSession was
// called on, or on an isolated child the session's own process (the
// isolated child itself when the session was refused one).
func (s *Session) Child() *Child { return s.c }

// ID is the name the session was opened with.
func (s *Session) ID() string { return s.id }

// Era is the protocol era the session's client speaks, once known.
func (s *Session) Era() Era {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.era
}

// Handle takes one JSON-RPC message from the client. A malformed message is
// answered with a JSON-RPC error (and reported); it never affects the child.
func (s *Session) Handle(raw []byte) error {
	raw = bytes.TrimSpace(raw)
	m, err := parseMessage(raw)
	if err != nil && (len(raw) == 0 || raw[0] != '{' || !jsonscan.Valid(raw)) {
		s.deliver(errorResponse(nil, mcpwire.CodeParseError, "parse error: not a JSON object"), nil)
		return fmt.Errorf("session %s: parse error", s.id)
	}
	if err != nil {
		s.deliver(errorResponse(field(raw, "id"), mcpwire.CodeInvalidRequest, "invalid request: "+err.Error()), nil)
		return fmt.Errorf("session %s: %w", s.id, err)
	}
	if s.refused != "" {
		s.handleRefused(&m)
		return nil
	}
	switch m.kind() {
	case kindRequest:
		s.handleRequest(&m)
	case kindNotification:
		s.handleNotification(&m)
	case kindResponse:
		s.handleResponse(&m)
	}
	return nil
}

func (s *Session) handleRequest(m *message) {
	modern := m.method == "server/discover" || mcpwire.IsModern(m.p.version)
	s.mu.Lock()
	if modern && s.era == EraUnknown {
		s.era = Era2026
	}
	if modern {
		// A 2026 client sets its log level per request (and the relay gives
		// each of its requests a session of its own).
		if l := logLevel(unquote(field(m.p.meta, mcpwire.MetaLogLevel))); l >= 0 {
			s.logLevel = l
		}
	}
	s.mu.Unlock()

	c := s.c
	if m.method == "tools/call" {
		if allow := c.toolFilter(); allow != nil {
			if name, ok := m.p.name.get(); !ok || !allow(name) {
				msg := deniedMessage(name, ok)
				s.deliver(errorResponse(m.id, mcpwire.CodeInvalidParams, msg), nil)
				c.reportCall(s, c.observeCall(m, time.Time{}), OutcomeDenied, msg)
				return
			}
		}
	}
	c.mu.Lock()
	hs, in, phase := c.init, c.inst, c.st.Phase
	ready := phase == PhaseReady && in != nil
	c.mu.Unlock()
	if !ready && m.method != "ping" {
		st := c.Status()
		msg := fmt.Sprintf("mcp server %q is not ready (%s)", c.spec.Name, st.Phase)
		if e := st.RemoteError(c.spec.ShareStderr); e != "" {
			msg += ": " + e
		}
		s.deliver(errorResponse(m.id, mcpwire.CodeUnavailable, msg), nil)
		c.reportCall(s, c.observeCall(m, time.Time{}), OutcomeFailed, msg)
		return
	}

	if isHeldRetry(m) {
		s.resumeHeld(m)
		return
	}
	switch m.method {
	case "initialize":
		// Answered from the child's cached result: the child was initialized
		// once by the bridge and must never be initialized again.
		s.mu.Lock()
		s.era = Era2025
		s.version = unquote(field(m.params, "protocolVersion"))
		s.childV = childVersion(hs)
		s.clientInfo = clone(field(m.params, "clientInfo"))
		s.clientCaps = clone(field(m.params, "capabilities"))
		version := s.version
		s.mu.Unlock()
		// Each session is answered in the version it asked for when that
		// is a released initialize-era version (the spec: a server that
		// supports the requested version MUST answer with it; clients
		// pinned to 2025-06-18 or 2024-11-05 disconnect otherwise).
		// Anything else gets the child's own version (a 2025-era child) or
		// the newest initialize-era version (a 2026 child, which has no
		// initialize of its own).
		res := hs.initResult
		switch {
		case slices.Contains(mcpwire.LegacyVersions, version):
			res = setField(res, "protocolVersion", []byte(strconv.Quote(version)))
		case hs.era == Era2026:
			res = setField(res, "protocolVersion", []byte(strconv.Quote(mcpwire.Version2025)))
		}
		s.deliver(buildResponse(m.id, res, nil), nil)
		return
	case "server/discover":
		s.deliver(buildResponse(m.id, hs.discover, nil), nil)
		return
	case "ping":
		s.deliver(buildResponse(m.id, []byte("{}"), nil), nil)
		return
	case "logging/setLevel":
		level := logLevel(unquote(m.p.level))
		if level < 0 {
			s.deliver(errorResponse(m.id, mcpwire.CodeInvalidParams, "invalid log level"), nil)
			return
		}
		s.mu.Lock()
		s.logLevel = level
		s.mu.Unlock()
		s.deliver(buildResponse(m.id, []byte("{}"), nil), nil)
		return
	case "resources/subscribe", "resources/unsubscribe":
		if !modern && s.subscribeRequest(in, hs, m) {
			return
		}
	case "subscriptions/listen":
		if hs.era == Era2025 {
			// A 2025 child broadcasts list_changed; the bridge holds the
			// listen open itself, acknowledges it as a 2026 server does,
			// and stamps the subscription id on what it relays.
			s.mu.Lock()
			s.listens[idKey(m.id)] = clone(m.id)
			s.mu.Unlock()
			ack := setField([]byte(`{}`), "_meta", setField([]byte(`{}`), mcpwire.MetaSubscriptionID, m.id))
			if n := field(m.params, "notifications"); n != nil {
				ack = setField(ack, "notifications", n)
			}
			id := clone(m.id)
			// Acknowledged once the child is subscribed to its resources.
			s.listenResources(in, hs, m, func() { s.deliver(buildNotification("notifications/subscriptions/acknowledged", ack), id) })
			return
		}
	}
	s.forward(in, hs, m, modern)
}

// forward sends a request to the child under a fresh id, rewriting the
// progress token and translating the per-request _meta between eras.
func (s *Session) forward(in *instance, hs handshake, m *message, modern bool) {
	s.forwardRound(in, hs, m, modern, 0, time.Time{})
}

// forwardRound is forward for the given multi-round-trip round (0: first);
// start is when round 0 began (zero: now).
func (s *Session) forwardRound(in *instance, hs handshake, m *message, modern bool, rounds int, start time.Time) {
	params := m.params
	switch {
	case hs.era == Era2025 && modern && !hs.both:
		params = stripProtocolMeta(params)
	case hs.era == Era2026 && !modern:
		s.mu.Lock()
		info, caps, level := s.clientInfo, s.clientCaps, s.logLevel
		s.mu.Unlock()
		params = addProtocolMeta(params, info, caps)
		if level >= 0 {
			// A 2026 child takes the log level per request.
			meta := setField(field(params, "_meta"), mcpwire.MetaLogLevel, []byte(strconv.Quote(logLevels[level])))
			params = setField(params, "_meta", meta)
		}
	}
	p := &pending{sess: s, origID: clone(m.id), method: m.method, rounds: rounds, call: s.c.observeCall(m, start)}
	if modern {
		p.caps = clone(field(m.p.meta, mcpwire.MetaClientCapabilities))
	}
	if hs.era == Era2026 && !modern {
		p.params = m.params // kept to retry the call after input requests
	}
	tok := m.p.metaToken
	if !sameBytes(params, m.params) {
		tok = progressToken(params) // rewritten above: look again
	}
	ts, te := tok.s, tok.e
	if ts >= 0 {
		p.origTok = clone(params[ts:te])
	}
	key := idKey(m.id)
	dup := false
	_, err := s.c.send(in, p, func(id int64, idb []byte) []byte {
		s.mu.Lock()
		if _, busy := s.inflight[key]; busy || s.closed {
			dup = true
		}
		s.inflight[key] = id
		s.mu.Unlock()
		ps := params
		if ts >= 0 {
			// The child-side id doubles as the progress token: unique, and
			// it leads straight back to the pending request.
			ps = splice(params, ts, te, idb)
		}
		return buildRequest(idb, m.method, ps)
	})
	if dup {
		// Not reachable for a well-behaved client; the later answer wins.
		s.c.log.Warn("client reused a request id still in flight", "session", s.id, "id", key)
	}
	if err != nil {
		s.mu.Lock()
		delete(s.inflight, key)
		s.mu.Unlock()
		msg := fmt.Sprintf("mcp server %q: %s", s.c.spec.Name, s.c.RemoteError(err))
		s.deliver(errorResponse(m.id, mcpwire.CodeUnavailable, msg), nil)
		s.c.reportCall(s, p.call, OutcomeFailed, msg)
	}
}

func (s *Session) handleNotification(m *message) {
	switch m.method {
	case "notifications/initialized":
		return // the child was initialized by the bridge
	case "notifications/cancelled":
		s.cancel(m.p.requestID, m.params)
		return
	}
	s.c.mu.Lock()
	in := s.c.inst
	s.c.mu.Unlock()
	if in != nil {
		_ = in.write(m.raw)
	}
}

// cancel forwards a cancellation under the child's id and forgets the
// request, so a late answer is dropped.
func (s *Session) cancel(reqID []byte, params []byte) {
	key := idKey(reqID)
	s.mu.Lock()
	childID, ok := s.inflight[key]
	delete(s.inflight, key)
	_, listening := s.listens[key]
	delete(s.listens, key)
	s.mu.Unlock()
	c := s.c
	if listening {
		c.unsubscribeEmptied(c.subs.removeWhere("", func(k subKey) bool { return k.s == s && k.listen == key }))
	}
	if !ok {
		return
	}
	if childID == 0 { // waiting on the client's own input answers
		c.cancelInputRound(s, key)
		return
	}
	p := c.route.take(childID)
	c.mu.Lock()
	in := c.inst
	c.mu.Unlock()
	if p != nil {
		if p.held != nil {
			c.releaseHeld(p.held)
		}
		c.reportCall(s, p.call, OutcomeCancelled, "")
	}
	if in == nil {
		return
	}
	if params == nil {
		params = []byte(`{"reason":"client session closed"}`)
	}
	params = setField(params, "requestId", strconv.AppendInt(nil, childID, 10))
	_ = in.write(buildNotification("notifications/cancelled", params))
}

// handleResponse passes the client's answer to a server→client request back
// to the child (those ids were passed through unchanged).
func (s *Session) handleResponse(m *message) {
	if s.inputAnswer(m) {
		return
	}
	c := s.c
	key := idKey(m.id)
	mine := c.route.answeredBy(key, s)
	c.mu.Lock()
	in := c.inst
	c.mu.Unlock()
	if !mine || in == nil {
		c.log.Warn("client answered a request that was not sent to it", "session", s.id, "id", truncate(key, 40))
		return
	}
	_ = in.write(m.raw)
}

// Close ends the session: its in-flight requests are cancelled at the child
// and requests the child sent it are answered with an error.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.refused != "" {
		s.mu.Unlock()
		return // it never reached a process
	}
	keys := make([][]byte, 0, len(s.inflight))
	for k := range s.inflight {
		keys = append(keys, []byte(k))
	}
	s.mu.Unlock()
	s.c.unsubscribeEmptied(s.c.subs.removeWhere("", func(k subKey) bool { return k.s == s }))
	for _, k := range keys {
		s.cancel(k, nil)
	}
	c := s.c
	// A call answered with input_required stays held: a 2026 client's
	// retry comes on a session of its own (held.go), or it times out.
	orphans := c.route.forgetSession(s)
	c.mu.Lock()
	delete(c.sessions, s)
	in := c.inst
	c.mu.Unlock()
	if in != nil {
		for _, k := range orphans {
			_ = in.write(errorResponse([]byte(k), mcpwire.CodeInternal, "tether bridge: the client session closed"))
		}
	}
	switch {
	case c.pooled:
		c.parent.unclaim(c) // kept for the next 2026 request, or stopped when idle
	case c.parent != nil:
		c.parent.release(c) // the session's own process goes with it
	}
}

// finish delivers the final answer to a request and forgets it.
func (s *Session) finish(origID []byte, resp []byte) {
	s.mu.Lock()
	delete(s.inflight, idKey(origID))
	s.mu.Unlock()
	s.deliver(resp, nil)
}

// deliver sends one message to the session's client, in the shape of the
// client's protocol version (shape.go): every message a session sees goes
// through here.
func (s *Session) deliver(msg []byte, related []byte) {
	s.mu.Lock()
	closed, version, childV := s.closed, s.version, s.childV
	s.mu.Unlock()
	if closed {
		return
	}
	if needsShape(version, childV) {
		if msg = shapeFor(version, msg); msg == nil {
			return // a notification the client's version does not have
		}
	}
	s.out(msg, related)
}

// deliverBroadcast sends a child notification that concerns every client
// (list_changed and the like) in the form this session's era expects.
func (s *Session) deliverBroadcast(m *message) {
	s.mu.Lock()
	era := s.era
	var listens [][]byte
	for _, id := range s.listens {
		listens = append(listens, id)
	}
	s.mu.Unlock()
	if era != Era2026 {
		s.deliver(m.raw, nil)
		return
	}
	// A 2026 client hears list changes only on its subscriptions/listen.
	for _, id := range listens {
		params := m.params
		meta := setField(field(params, "_meta"), mcpwire.MetaSubscriptionID, id)
		params = setField(params, "_meta", meta)
		s.deliver(buildNotification(m.method, params), id)
	}
}

func (s *Session) wantsLog(level int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logLevel >= 0 && level >= s.logLevel
}

// relatedRequest is the session's one request in flight, if exactly one.
func (s *Session) relatedRequest() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.inflight) != 1 {
		return nil
	}
	for k := range s.inflight {
		return []byte(k)
	}
	return nil
}

// refuses says why this session cannot take a server→client request, or "":
// also when the request cannot be put in the shape of the session's
// version (shapereq.go).
func (s *Session) refuses(method string, params []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.era == Era2026 {
		return "the client speaks MCP 2026-07-28, which has no server-to-client requests"
	}
	if method == "elicitation/create" && slices.Contains(mcpwire.LegacyVersions, s.version) && s.version < v20250618 {
		return "the client speaks MCP " + s.version + ", which has no elicitation"
	}
	if needsShape(s.version, s.childV) {
		if _, why := shapeRequestParams(s.version, method, params); why != "" {
			return why
		}
	}
	if s.clientCaps == nil {
		return "" // initialized before a reconnect; let the client decide
	}
	need := map[string]string{"roots/list": "roots", "sampling/createMessage": "sampling", "elicitation/create": "elicitation"}[method]
	if need != "" && field(s.clientCaps, need) == nil {
		return "the client did not declare the " + need + " capability"
	}
	return ""
}

// Call sends one request of the bridge's own to the child (not through a
// session) and returns its result; it is how non-MCP front ends such as the
// TAG protocol call tools. Per-request _meta is added for a 2026 child. The
// tool filter applies as for sessions.
func (c *Child) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	allow := c.toolFilter()
	if allow != nil && method == "tools/call" {
		if name, ok := toolName(params); !ok || !allow(name) {
			return nil, &RPCError{Code: mcpwire.CodeInvalidParams, Message: deniedMessage(name, ok)}
		}
	}
	c.mu.Lock()
	in, hs, phase := c.inst, c.init, c.st.Phase
	c.mu.Unlock()
	if phase != PhaseReady || in == nil {
		return nil, fmt.Errorf("mcp server %q is not ready (%s)", c.spec.Name, phase)
	}
	if hs.era == Era2026 {
		params = addProtocolMeta(params, c.clientInfo(), []byte(bridgeCapabilities))
	}
	res, err := c.request(ctx, in, method, params)
	if err == nil && allow != nil && method == "tools/list" {
		res = filterToolsResult(res, allow)
	}
	return res, err
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}
