package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/mcpwire"
	"github.com/tether-dev/tether/relay"
)

const (
	headerSession  = "Mcp-Session-Id"
	headerProtocol = "Mcp-Protocol-Version"
	headerMethod   = "Mcp-Method"
	headerName     = "Mcp-Name"

	// maxBodyBytes leaves room for the frame envelope around a message.
	maxBodyBytes = relay.MaxFrameBytes - 64<<10
)

// handleMCP serves /mcp/{dev}/{server}: auth, bridge and server lookup,
// then the Streamable HTTP methods.
func (s *Server) handleMCP(w http.ResponseWriter, r *http.Request) {
	dev, name := r.PathValue("dev"), r.PathValue("server")
	claims, code, err := s.Verifier.authorize(r, dev, ScopeClient)
	if err != nil {
		s.mcpAuthError(w, r, code, err)
		return
	}
	if r.Method == http.MethodPost && r.ContentLength > s.limits.bodyBytes {
		s.refuse(w, r, &refusal{status: http.StatusRequestEntityTooLarge, metric: "body",
			msg: fmt.Sprintf("tether-relay: body of %d bytes is over the limit of %d", r.ContentLength, s.limits.bodyBytes)})
		return
	}
	release, refused := s.limits.admit(claims.Principal(), r.Method, s.clock())
	if refused != nil {
		s.refuse(w, r, refused)
		return
	}
	defer release()
	if r.Method == http.MethodGet {
		liftReadDeadline(w) // no body; the stream may stay open for hours
		// A resume of a POST stream needs no bridge: the stream is the
		// relay's (poststream.go).
		if s.resumeGET(w, r, dev, name, claims) {
			return
		}
	}
	// A bridge that is reconnecting (sleep, network change, relay or
	// tetherd restart) is waited for, briefly, rather than refused.
	b := s.awaitBridge(r.Context(), dev, r.Method)
	if b == nil && r.Method == http.MethodGet && s.holdStream(w, r, dev, name, claims) {
		return
	}
	if b == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{
			"error": "bridge offline",
			"dev":   dev,
			"hint":  "start tetherd (or the tray app) with a bridge token for dev " + dev + " and point it at this relay",
		})
		return
	}
	if b.protocol == protoTAG {
		if name != tagServerName {
			s.unknownServer(w, b, name)
			return
		}
		b.tag.ServeHTTP(w, r)
		return
	}
	if !b.hasServer(name) {
		s.unknownServer(w, b, name)
		return
	}
	switch r.Method {
	case http.MethodPost:
		s.mcpPOST(w, r, b, claims, name)
	case http.MethodGet:
		s.mcpGET(w, r, b, claims, name)
	case http.MethodDelete:
		s.mcpDELETE(w, r, b, claims, name)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
	}
}

func (s *Server) unknownServer(w http.ResponseWriter, b *bridgeConn, name string) {
	names := []string{}
	for _, si := range b.catalog() {
		names = append(names, si.Name)
	}
	writeJSON(w, http.StatusNotFound, map[string]any{
		"error": "unknown server", "dev": b.dev, "server": name, "servers": names,
	})
}

// is2026 reports whether a session-less request follows the stateless
// 2026-07-28 protocol: the MCP-Protocol-Version header, the per-request
// _meta protocol version (what go-sdk v1.8.0 sends, see its
// setMCPHeaders and Client.discover), or the server/discover method, which
// exists only in that era. String comparison works: versions are dates.
func is2026(r *http.Request, pk peek) bool {
	if mcpwire.IsModern(r.Header.Get(headerProtocol)) {
		return true
	}
	if mcpwire.IsModern(pk.MetaProtocol) {
		return true
	}
	return pk.Method == "server/discover"
}

// headerMismatch checks the standard headers a 2026-07-28 request carries
// for intermediaries (Mcp-Method, and Mcp-Name for tools/call, prompts/get
// and resources/read) against the body, as the spec requires of a server:
// a gateway or WAF in front of the relay decides on the headers, the MCP
// server acts on the body, so the two must say the same. Older protocol
// versions have no such headers. Whether a request is 2026-07-28 is the
// same decision that makes it stateless (is2026): a body whose _meta says
// 2026-07-28 is served as such even without the version header, so it is
// checked as such too. It returns "" when they agree.
func headerMismatch(r *http.Request, pk peek) string {
	if !pk.isRequest() || !is2026(r, pk) {
		return ""
	}
	h := r.Header
	method := h.Get(headerMethod)
	switch {
	case method == "":
		return "missing required Mcp-Method header"
	case method != pk.Method:
		return fmt.Sprintf("header mismatch: Mcp-Method header %q does not match the body's method %q", method, pk.Method)
	}
	if nameMember(pk.Method) == "" {
		return ""
	}
	name := h.Get(headerName)
	switch {
	case name == "":
		return fmt.Sprintf("missing required Mcp-Name header for method %q", pk.Method)
	case !pk.NameOK:
		return fmt.Sprintf("header mismatch: the body of %q has no single string params.%s to match Mcp-Name", pk.Method, nameMember(pk.Method))
	case name != pk.Name:
		return fmt.Sprintf("header mismatch: Mcp-Name header %q does not match the body's %q", name, pk.Name)
	}
	return ""
}

func (s *Server) mcpPOST(w http.ResponseWriter, r *http.Request, b *bridgeConn, claims Claims, name string) {
	if !isJSONContentType(r.Header.Get("Content-Type")) {
		writeRPCError(w, http.StatusUnsupportedMediaType, nil, mcpwire.CodeInvalidRequest, "Content-Type must be application/json")
		return
	}
	body, err := readBody(w, r, s.limits.bodyBytes)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeRPCError(w, http.StatusRequestEntityTooLarge, nil, mcpwire.CodeInvalidRequest, fmt.Sprintf("body over %d bytes", mbe.Limit))
			return
		}
		writeRPCError(w, http.StatusBadRequest, nil, mcpwire.CodeParseError, "read body: "+err.Error())
		return
	}
	liftReadDeadline(w)
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		s.mcpBatch(w, r, b, claims, name, body)
		return
	}
	pk, ok := peekMessage(body)
	if !ok {
		writeRPCError(w, http.StatusBadRequest, nil, mcpwire.CodeParseError, "body is not a JSON object with a string method")
		return
	}
	if pk.Method == "" && len(pk.ID) == 0 {
		writeRPCError(w, http.StatusBadRequest, nil, mcpwire.CodeInvalidRequest, "not a JSON-RPC request, notification or response")
		return
	}

	if msg := headerMismatch(r, pk); msg != "" {
		writeRPCError(w, http.StatusBadRequest, pk.ID, mcpwire.CodeHeaderMismatch, msg)
		return
	}

	sid := r.Header.Get(headerSession)
	stateless := sid == "" && is2026(r, pk)
	var sess *session
	var newID string // an initialize's session id, handed out only if it succeeds
	switch {
	case sid != "":
		var err error
		sess, err = s.clientSession(r.Context(), b, claims, name, sid)
		switch {
		case errors.Is(err, errNoSession):
			sessionNotFound(w)
			return
		case errors.Is(err, errTooManySessions):
			s.refuseID(w, pk.ID, s.tooManySessions())
			return
		case err != nil && pk.isRequest():
			writeRPCError(w, http.StatusOK, pk.ID, mcpwire.CodeUnavailable, "tether-relay: could not resume the session: "+err.Error())
			return
		case err != nil:
			writeRPCError(w, http.StatusServiceUnavailable, nil, mcpwire.CodeUnavailable, "tether-relay: could not resume the session: "+err.Error())
			return
		}
	case stateless && !pk.isRequest():
		// A stateless notification has no session to go to. The one that
		// matters, notifications/cancelled, is covered: the client also
		// drops its POST, and the relay forwards the cancel for that.
		w.WriteHeader(http.StatusAccepted)
		return
	case stateless:
		sess = b.newEphemeralSession(name)
		defer b.endSession(sess, true)
	case pk.Method == "initialize":
		// A client that arrives while the server starts (right after the
		// bridge connected, or a reload) waits for it instead of failing.
		s.awaitServer(r.Context(), b, name)
		sc := sessionClaimsFor(b.dev, name, claims, body, time.Now(), s.sessionMaxAge())
		id, err := s.signer.sign(sc)
		if err != nil {
			writeRPCError(w, http.StatusInternalServerError, pk.ID, mcpwire.CodeInternal, err.Error())
			return
		}
		sess = b.openClientSession(id, &sc)
		if sess == nil {
			s.refuseID(w, pk.ID, s.tooManySessions())
			return
		}
		newID = id
	default:
		writeRPCError(w, http.StatusBadRequest, pk.ID, mcpwire.CodeInvalidRequest, "missing Mcp-Session-Id header: send initialize first")
		return
	}

	frame := relay.Frame{Kind: relay.KindMCP, Server: name, Session: sess.id, Msg: body}
	if !pk.isRequest() {
		// Notifications and responses (answers to server→client requests)
		// are fire and forget.
		if err := b.send(r.Context(), frame); err != nil {
			writeRPCError(w, http.StatusServiceUnavailable, nil, mcpwire.CodeUnavailable, "bridge unavailable: "+err.Error())
			return
		}
		if pk.Method == "notifications/cancelled" {
			b.clientCancelled(sess, body)
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}

	c, err := b.addCall(sess, pk.ID)
	if err != nil {
		writeRPCError(w, http.StatusBadRequest, pk.ID, mcpwire.CodeInvalidRequest, err.Error())
		return
	}
	b.active.Add(1)
	defer b.active.Add(-1)
	start := time.Now()
	if err := b.send(r.Context(), frame); err != nil {
		b.forgetCall(sess, c)
		s.metrics.observeCall("unavailable", 0)
		if pk.Method == "tools/call" {
			s.recordCall(b, name, claims, body, start, "unavailable")
		}
		writeRPCError(w, http.StatusOK, pk.ID, mcpwire.CodeUnavailable, "bridge unavailable: "+err.Error())
		if pk.Method == "initialize" {
			b.endSession(sess, true)
		}
		return
	}
	jsonOK, sseOK := accepts(r)
	final := s.await(w, r, b, sess, c, newID, stateless, jsonOK, sseOK)
	if pk.Method == "tools/call" {
		outcome := "ok"
		switch {
		case final == nil:
			outcome = "cancelled"
		case !isSuccess(final):
			outcome = "error"
		}
		s.recordCall(b, name, claims, body, start, outcome)
	}
	if pk.Method == "initialize" && !isSuccess(final) {
		b.endSession(sess, true)
	}
}

// await waits for the call's response and writes it. Messages related to
// the call arrive first; the response is plain JSON unless something had
// to be streamed before it (progress, a server→client request) or the
// client accepts only SSE, in which case the response is an SSE stream
// that ends with the response. A session with priming events (2025-11-25
// on, not initialize) gets the SSE stream from the start, priming event
// first, so that a quiet call is resumable too. In a session that can
// resume streams the stream carries event ids and outlives a dropped
// connection for a while (streamPump, poststream.go). It returns the
// message written last, or nil when the client went away.
//
// newID, when set, is the session id an initialize opens: it goes out in
// the Mcp-Session-Id header only with a successful answer.
func (s *Server) await(w http.ResponseWriter, r *http.Request, b *bridgeConn, sess *session, c *call, newID string, stateless, jsonOK, sseOK bool) []byte {
	start := time.Now()
	timer := time.NewTimer(s.callTimeout())
	defer timer.Stop()
	out := &responder{w: w, rc: http.NewResponseController(w), stateless: stateless, forceSSE: !jsonOK, sessionID: newID}
	// An initialize's client has no session id to resume with yet.
	p := s.newPump(r, out, sess, sseOK && newID == "" && s.resumable(sess), c.id)
	defer p.close()
	// giveUp ends a call whose client is gone; the bridge is told unless
	// the client cancelled the call itself (its notification went there).
	giveUp := func(reason string, tellBridge bool) []byte {
		b.forgetCall(sess, c)
		if tellBridge {
			s.cancelAtBridge(b, sess, c, reason)
		}
		s.metrics.observeCall("cancelled", time.Since(start))
		p.cancelled(rpcErrorBody(c.id, mcpwire.CodeUnavailable, "tether-relay: "+reason+"; the request was cancelled"))
		return nil
	}
	// stop gives up after the stream could not go on (err from the pump).
	stop := func(err error, reason string) []byte {
		switch {
		case errors.Is(err, errAbandoned):
			return giveUp("the client cancelled the request", false)
		case errors.Is(err, errStreamLost):
			return giveUp("the stream was cut and outgrew what is kept for a resume", true)
		}
		return giveUp(reason, true)
	}
	fail := func(code int, msg, label string) []byte {
		b.forgetCall(sess, c)
		resp := rpcErrorBody(c.id, code, msg)
		s.metrics.observeCall(label, time.Since(start))
		p.final(c.id, resp)
		return resp
	}
	if p.resumable && sess.version >= primingVersion {
		// An SSE stream from the start, its priming event first: a cut
		// during a long call with nothing to stream yet can be resumed.
		p.begin()
	}
	for {
		select {
		case <-c.wake:
			events, msg, abandoned := b.take(c)
			for _, ev := range events {
				if !sseOK {
					b.toStream(sess, ev)
					continue
				}
				if err := p.event(ev); err != nil && msg == nil {
					return stop(err, "client connection lost")
				}
			}
			if msg == nil {
				if abandoned {
					// The client cancelled the request: a held stream ends
					// now, a connected one is not held once it drops.
					if err := p.abandon(); err != nil {
						return stop(err, "")
					}
				}
				continue
			}
			label := "ok"
			if !isSuccess(msg) {
				label = "error"
			}
			s.metrics.observeCall(label, time.Since(start))
			p.final(c.id, msg)
			return msg
		case <-timer.C:
			s.cancelAtBridge(b, sess, c, "timed out at the relay")
			return fail(mcpwire.CodeTimeout, fmt.Sprintf("tether-relay: no answer from the bridge within %v; the request was cancelled", s.callTimeout()), "timeout")
		case <-p.gone:
			if err := p.lose(errClientGone); err != nil {
				return stop(err, "client disconnected")
			}
		case <-p.graceC():
			return giveUp(fmt.Sprintf("the stream was cut and not resumed within %v", s.resumeGrace()), true)
		case res := <-p.attachC():
			switch err := p.resume(res); {
			case errors.Is(err, errStaleResume):
				return giveUp("the stream was resumed from an event that is no longer kept", true)
			case err != nil:
				return stop(err, "client connection lost")
			}
		case <-p.primeC():
			if err := p.flushPrimed(); err != nil {
				return stop(err, "client connection lost")
			}
		case <-p.keepaliveC():
			if err := p.ping(); err != nil {
				return stop(err, "client connection lost")
			}
		case <-sess.done:
			return fail(mcpwire.CodeUnavailable, "tether-relay: the session was closed", "unavailable")
		case <-b.done:
			return fail(mcpwire.CodeUnavailable, "tether-relay: bridge disconnected before answering", "unavailable")
		}
	}
}

// cancelAtBridge forwards notifications/cancelled for a call the relay has
// given up on, so the bridge can stop the work.
func (s *Server) cancelAtBridge(b *bridgeConn, sess *session, c *call, reason string) {
	msg, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"method":  "notifications/cancelled",
		"params":  map[string]any{"requestId": c.id, "reason": reason},
	})
	ctx, cancel := context.WithTimeout(context.Background(), relay.WriteWait)
	defer cancel()
	if err := b.send(ctx, relay.Frame{Kind: relay.KindMCP, Server: sess.server, Session: sess.id, Msg: msg}); err != nil {
		s.log.Debug("cancel not forwarded", "dev", b.dev, "err", err)
	}
}

// mcpGET serves the standalone SSE stream of a 2025-era session: the
// bridge's messages that belong to no request (list_changed, logs).
func (s *Server) mcpGET(w http.ResponseWriter, r *http.Request, b *bridgeConn, claims Claims, name string) {
	sid := r.Header.Get(headerSession)
	if sid == "" {
		// Stateless (2026) clients have no GET stream; 405 is the spec's
		// "no SSE stream here".
		w.Header().Set("Allow", "POST, DELETE")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "GET needs an Mcp-Session-Id"})
		return
	}
	if _, sseOK := accepts(r); !sseOK {
		writeJSON(w, http.StatusNotAcceptable, map[string]string{"error": "GET must accept text/event-stream"})
		return
	}
	sess, err := s.clientSession(r.Context(), b, claims, name, sid)
	switch {
	case errors.Is(err, errNoSession):
		sessionNotFound(w)
		return
	case errors.Is(err, errTooManySessions):
		s.refuseID(w, nil, s.tooManySessions())
		return
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "could not resume the session: " + err.Error()})
		return
	}
	b.mu.Lock()
	busy := sess.streamOpen
	sess.streamOpen = true
	b.mu.Unlock()
	if busy {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "this session already has a GET stream"})
		return
	}
	defer func() {
		b.mu.Lock()
		sess.streamOpen = false
		sess.lastUsed = time.Now()
		b.mu.Unlock()
	}()

	out := &responder{w: w, rc: http.NewResponseController(w), forceSSE: true}
	out.startSSE()
	if r.Header.Get(headerProtocol) >= primingVersion {
		// A priming event (SEP-1699) with an id of its own: the go-sdk
		// client counts a stream that ended without a new event id as a
		// retry without progress and gives the session up after a few,
		// and this stream ends whenever the bridge's socket does.
		if out.priming(newSessionID()) != nil {
			return
		}
	}
	// Comments keep idle load balancers from dropping a quiet stream.
	keepalive := time.NewTicker(relay.PingInterval)
	defer keepalive.Stop()
	for {
		select {
		case msg := <-sess.stream:
			if out.event(msg) != nil {
				return
			}
		case <-keepalive.C:
			if out.comment("keepalive") != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-sess.done:
			return
		case <-b.done:
			return
		}
	}
}

// holdStream keeps a session's GET stream open while its bridge is away
// longer than the bridge wait (a laptop asleep, a network down for
// minutes): the stream is the relay's to hold, with keepalive comments, and
// it ends once the bridge is back, so the client opens it again on the live
// bridge (after a priming event, which the go-sdk counts as progress). A
// 503 here would end the whole session in clients that give a session up
// when its stream cannot be reopened — the go-sdk's among them. It reports
// false (answer as before) for anything that is not a valid, resumable id
// of this dev, server and client token.
func (s *Server) holdStream(w http.ResponseWriter, r *http.Request, dev, name string, claims Claims) bool {
	sid := r.Header.Get(headerSession)
	if sid == "" || s.bridgeWait() <= 0 {
		return false
	}
	if _, sseOK := accepts(r); !sseOK {
		return false
	}
	sc, err := s.signer.parse(sid)
	if err != nil || sc.NoResume || !sc.valid(dev, name, claims, time.Now()) {
		return false
	}
	out := &responder{w: w, rc: http.NewResponseController(w), forceSSE: true}
	out.startSSE()
	if r.Header.Get(headerProtocol) >= primingVersion {
		if out.priming(newSessionID()) != nil {
			return true
		}
	}
	for {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return true
		}
		// awaitBridge waits up to the bridge wait; a keepalive comment
		// between the waits keeps idle load balancers from cutting the
		// stream.
		if b := s.awaitBridge(r.Context(), dev, r.Method); b != nil || r.Context().Err() != nil {
			return true
		}
		if !time.Now().Before(sc.expiry()) || out.comment("keepalive") != nil {
			return true
		}
	}
}

// mcpDELETE ends a session for good: the bridge is told (if this socket
// has the session) and this relay process will not resume the id.
func (s *Server) mcpDELETE(w http.ResponseWriter, r *http.Request, b *bridgeConn, claims Claims, name string) {
	sid := r.Header.Get(headerSession)
	if sid == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "DELETE needs an Mcp-Session-Id"})
		return
	}
	now := time.Now()
	b.mu.Lock()
	sess := b.sessions[sid]
	b.mu.Unlock()
	if sess != nil {
		if sess.ephemeral || sess.server != name || !claims.owns(sess.token) {
			sessionNotFound(w)
			return
		}
		b.retire(sess)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// Not live here: a valid id still must not come back.
	sc, err := s.signer.parse(sid)
	if err != nil || !sc.valid(b.dev, name, claims, now) || !s.book.take(sid, now, s.sessionIdleTimeout()) {
		sessionNotFound(w)
		return
	}
	s.book.end(sid, sc.expiry())
	w.WriteHeader(http.StatusNoContent)
}

// readBody reads a POST body of at most limit bytes, into one buffer of
// the announced size when there is one (io.ReadAll starts at 512 bytes and
// grows by copying).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	n := r.ContentLength
	if n < 0 || n > limit {
		return io.ReadAll(body)
	}
	// One byte more than announced, so a body longer than its
	// Content-Length is not cut short silently (net/http errors on it).
	buf := make([]byte, n+1)
	read, err := io.ReadFull(body, buf)
	switch {
	case int64(read) == n && (err == io.ErrUnexpectedEOF || err == io.EOF):
		return buf[:read], nil
	case err == nil:
		return nil, errors.New("body longer than its Content-Length")
	case err == io.EOF:
		return nil, io.ErrUnexpectedEOF // shorter than announced
	}
	return nil, err
}

// isJSONContentType is mime.ParseMediaType(ct) == "application/json",
// without the parse (and its map) for the value every client sends.
func isJSONContentType(ct string) bool {
	if ct == "application/json" {
		return true
	}
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == "application/json"
}

// acceptBoth is what the go-sdk and TS SDK clients send on every POST.
const acceptBoth = "application/json, text/event-stream"

// accepts reads the Accept header. An absent header accepts both.
func accepts(r *http.Request) (jsonOK, sseOK bool) {
	values := r.Header.Values("Accept")
	if len(values) == 0 {
		return true, true
	}
	if len(values) == 1 && (values[0] == acceptBoth || values[0] == "text/event-stream, application/json") {
		return true, true
	}
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
			switch mt {
			case "application/json", "application/*":
				jsonOK = true
			case "text/event-stream", "text/*":
				sseOK = true
			case "*/*":
				jsonOK, sseOK = true, true
			}
		}
	}
	return jsonOK, sseOK
}

// isSuccess reports whether msg is a JSON-RPC response without an error.
func isSuccess(msg []byte) bool {
	if msg == nil {
		return false
	}
	pk, ok := peekMessage(msg)
	return ok && !pk.HasError
}

func rpcErrorBody(id json.RawMessage, code int, msg string) []byte {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{JSONRPC: "2.0", ID: id, Error: struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg}})
	return b
}

func writeRPCError(w http.ResponseWriter, status int, id json.RawMessage, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(rpcErrorBody(id, code, msg))
}

// contentTypeJSON is shared by every JSON answer; net/http only reads it.
var contentTypeJSON = []string{"application/json"}

// responder writes one POST's answer as JSON or as an SSE stream.
type responder struct {
	w         http.ResponseWriter
	rc        *http.ResponseController
	stateless bool // 2026 era: some errors carry an HTTP status
	forceSSE  bool
	started   bool
	// sessionID is the Mcp-Session-Id an initialize opens. It goes out with
	// a successful answer, never with a failed one; only when something must
	// be streamed before the answer is it sent first.
	sessionID string
}

// primingVersion is the first protocol revision whose clients expect a
// priming event (an id and empty data) on SSE streams.
const primingVersion = "2025-11-25"

func (o *responder) startSSE() {
	o.header()
	o.rc.Flush()
}

// header writes the SSE answer's header without flushing it: an event
// written right after goes out with it.
func (o *responder) header() {
	h := o.w.Header()
	if o.sessionID != "" {
		h.Set(headerSession, o.sessionID)
	}
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	o.w.WriteHeader(http.StatusOK)
	o.started = true
}

func (o *responder) event(msg []byte) error { return o.eventID("", msg) }

// eventID writes msg as an SSE event, with the event id when one is given.
func (o *responder) eventID(id string, msg []byte) error {
	if err := o.eventUnflushed(id, msg); err != nil {
		return err
	}
	return o.rc.Flush()
}

// eventUnflushed writes the event into the answer's buffer.
func (o *responder) eventUnflushed(id string, msg []byte) error {
	if !o.started {
		o.startSSE()
	}
	// SSE data lines cannot hold newlines; compact pretty-printed JSON.
	if bytes.IndexByte(msg, '\n') >= 0 {
		var buf bytes.Buffer
		if json.Compact(&buf, msg) == nil {
			msg = buf.Bytes()
		}
	}
	var buf bytes.Buffer
	buf.Grow(len(msg) + len(id) + 30)
	if id != "" {
		buf.WriteString("id: ")
		buf.WriteString(id)
		buf.WriteByte('\n')
	}
	buf.WriteString("event: message\ndata: ")
	buf.Write(msg)
	buf.WriteString("\n\n")
	_, err := o.w.Write(buf.Bytes())
	return err
}

// priming writes an event with an id and no data.
func (o *responder) priming(id string) error {
	if err := o.primingUnflushed(id); err != nil {
		return err
	}
	return o.rc.Flush()
}

// primingUnflushed writes the priming event into the answer's buffer.
func (o *responder) primingUnflushed(id string) error {
	_, err := io.WriteString(o.w, "id: "+id+"\ndata: \n\n")
	return err
}

func (o *responder) comment(text string) error {
	if _, err := io.WriteString(o.w, ": "+text+"\n\n"); err != nil {
		return err
	}
	return o.rc.Flush()
}

// final writes the response that ends the exchange.
func (o *responder) final(msg []byte) {
	if !o.started && o.sessionID != "" {
		if isSuccess(msg) {
			o.w.Header().Set(headerSession, o.sessionID)
		}
		o.sessionID = ""
	}
	if o.started || o.forceSSE {
		o.event(msg)
		return
	}
	status := http.StatusOK
	if o.stateless {
		status = statelessErrorStatus(msg)
	}
	h := o.w.Header()
	h["Content-Type"] = contentTypeJSON
	if o.stateless {
		h.Set("Content-Length", strconv.Itoa(len(msg)))
	}
	o.w.WriteHeader(status)
	o.w.Write(msg)
	if o.stateless {
		// net/http would send the answer only when the handler returns,
		// after the session's close frame went to the bridge; the client
		// need not wait for that. (Content-Length keeps it unchunked.)
		o.rc.Flush()
	}
}

// statelessErrorStatus applies SEP-2575: in the 2026 era an unknown method
// is HTTP 404 and bad params or an unsupported version are HTTP 400, with
// the JSON-RPC error as the body (go-sdk's extractErrorStatus does the same).
func statelessErrorStatus(msg []byte) int {
	pk, ok := peekMessage(msg)
	if !ok || !pk.HasError {
		return http.StatusOK
	}
	switch pk.ErrorCode {
	case mcpwire.CodeMethodNotFound:
		return http.StatusNotFound
	case mcpwire.CodeInvalidParams, mcpwire.CodeUnsupportedProtocolVersion, mcpwire.CodeMissingClientCapabilities:
		return http.StatusBadRequest
	}
	return http.StatusOK
}
