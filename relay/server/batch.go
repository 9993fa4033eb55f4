package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tether-dev/tether/internal/mcpwire"
	"github.com/tether-dev/tether/relay"
)

// JSON-RPC batches. Only MCP 2025-03-26 has them, and there a receiver
// MUST accept them (basic/index: "MUST support receiving JSON-RPC
// batches"; transports: a POST body may be an array of requests and
// notifications, or of responses). 2024-11-05 never used Streamable HTTP,
// 2025-06-18 removed batching, and the 2026 era has none. So the relay
// takes a batch only on a session whose client asked for 2025-03-26, and
// splits it: the bridge and mcpchild see single messages, as from any
// other client, and the answers go back as one JSON array, in the order of
// the batch's requests. A batch of notifications and responses only is
// answered 202, like one of them alone.

// batchVersion is the one protocol version with JSON-RPC batches.
const batchVersion = "2025-03-26"

func (s *Server) mcpBatch(w http.ResponseWriter, r *http.Request, b *bridgeConn, claims Claims, name string, body []byte) {
	const refused = "JSON-RPC batches are not supported; send one message per POST"
	sid := r.Header.Get(headerSession)
	if sid == "" {
		// initialize cannot be in a batch, so a batch needs a session.
		writeRPCError(w, http.StatusBadRequest, nil, mcpwire.CodeInvalidRequest, refused+" (only an MCP "+batchVersion+" session takes them, and initialize is not part of a batch)")
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
		writeRPCError(w, http.StatusServiceUnavailable, nil, mcpwire.CodeUnavailable, "tether-relay: could not resume the session: "+err.Error())
		return
	}
	if sess.version != batchVersion {
		writeRPCError(w, http.StatusBadRequest, nil, mcpwire.CodeInvalidRequest, refused+" (MCP "+sess.version+" has no batches)")
		return
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(body, &elems); err != nil {
		writeRPCError(w, http.StatusBadRequest, nil, mcpwire.CodeParseError, "the batch is not a JSON array: "+err.Error())
		return
	}
	if len(elems) == 0 {
		writeRPCError(w, http.StatusBadRequest, nil, mcpwire.CodeInvalidRequest, "empty JSON-RPC batch")
		return
	}

	type sent struct {
		c     *call
		msg   []byte
		start time.Time
		tool  bool
	}
	// answers holds, in batch order, an answer given at once or the call
	// that will give it.
	type answer struct {
		now  []byte
		call *sent
	}
	var answers []answer
	var sendErr error
	for _, el := range elems {
		pk, ok := peekMessage(el)
		switch {
		case !ok || (pk.Method == "" && len(pk.ID) == 0):
			answers = append(answers, answer{now: rpcErrorBody(nil, mcpwire.CodeInvalidRequest, "batch element is not a JSON-RPC request, notification or response")})
			continue
		case pk.Method == "initialize":
			answers = append(answers, answer{now: rpcErrorBody(pk.ID, mcpwire.CodeInvalidRequest, "initialize must not be part of a JSON-RPC batch")})
			continue
		}
		frame := relay.Frame{Kind: relay.KindMCP, Server: name, Session: sess.id, Msg: el}
		if !pk.isRequest() {
			if err := b.send(r.Context(), frame); err != nil {
				sendErr = err
			}
			continue
		}
		c, err := b.addCall(sess, pk.ID)
		if err != nil {
			answers = append(answers, answer{now: rpcErrorBody(pk.ID, mcpwire.CodeInvalidRequest, err.Error())})
			continue
		}
		start := time.Now()
		if err := b.send(r.Context(), frame); err != nil {
			b.forgetCall(sess, c)
			s.metrics.observeCall("unavailable", 0)
			answers = append(answers, answer{now: rpcErrorBody(pk.ID, mcpwire.CodeUnavailable, "bridge unavailable: "+err.Error())})
			continue
		}
		answers = append(answers, answer{call: &sent{c: c, msg: el, start: start, tool: pk.Method == "tools/call"}})
	}
	if len(answers) == 0 {
		if sendErr != nil {
			writeRPCError(w, http.StatusServiceUnavailable, nil, mcpwire.CodeUnavailable, "bridge unavailable: "+sendErr.Error())
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}

	b.active.Add(1)
	defer b.active.Add(-1)
	ctx, cancel := context.WithTimeout(r.Context(), s.callTimeout())
	defer cancel()
	out := make([]json.RawMessage, 0, len(answers))
	gone := false
	for _, a := range answers {
		if a.call == nil {
			out = append(out, a.now)
			continue
		}
		msg, label := s.awaitInBatch(ctx, r, b, sess, a.call.c)
		s.metrics.observeCall(label, time.Since(a.call.start))
		if a.call.tool {
			outcome := label
			if label == "timeout" || label == "unavailable" {
				outcome = "error"
			}
			s.recordCall(b, name, claims, a.call.msg, a.call.start, outcome)
		}
		if msg == nil {
			gone = true // the client went away; the rest are cancelled in turn
			continue
		}
		out = append(out, msg)
	}
	if gone {
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// awaitInBatch waits for one call of a batch and returns its answer and
// the metrics label, or a nil answer when the client went away. Messages
// related to the call (progress, server→client requests) go to the
// session's GET stream: a batch is answered with one JSON array.
func (s *Server) awaitInBatch(ctx context.Context, r *http.Request, b *bridgeConn, sess *session, c *call) ([]byte, string) {
	for {
		select {
		case <-c.wake:
			events, msg, _ := b.take(c)
			for _, ev := range events {
				b.toStream(sess, ev)
			}
			if msg == nil {
				continue
			}
			if !isSuccess(msg) {
				return msg, "error"
			}
			return msg, "ok"
		case <-ctx.Done():
			b.forgetCall(sess, c)
			if r.Context().Err() != nil {
				s.cancelAtBridge(b, sess, c, "client disconnected")
				return nil, "cancelled"
			}
			s.cancelAtBridge(b, sess, c, "timed out at the relay")
			return rpcErrorBody(c.id, mcpwire.CodeTimeout, fmt.Sprintf("tether-relay: no answer from the bridge within %v; the request was cancelled", s.callTimeout())), "timeout"
		case <-sess.done:
			b.forgetCall(sess, c)
			return rpcErrorBody(c.id, mcpwire.CodeUnavailable, "tether-relay: the session was closed"), "unavailable"
		case <-b.done:
			b.forgetCall(sess, c)
			return rpcErrorBody(c.id, mcpwire.CodeUnavailable, "tether-relay: bridge disconnected before answering"), "unavailable"
		}
	}
}
