package mcpchild

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/mcpwire"
)

// Held calls are the other direction of mrtr.go: a 2025-era child asks for
// input with server→client requests (sampling/createMessage,
// elicitation/create, roots/list) while a 2026-07-28 client's call runs, and
// a 2026 client accepts no server→client requests — it expects the call to
// be answered with
//
//	{"resultType":"input_required","inputRequests":{"k":{"method":…,"params":…}},"requestState":"…"}
//
// and retries the call with "inputResponses" and that requestState. The
// bridge keeps the child's call running meanwhile (held), answers the
// client's call that way, and on the retry hands each response to the
// child's waiting request; the retry is then answered with the original
// call's eventual result (or with the next input_required, when the child
// asks again). The requestState is a random 128-bit handle made by the
// bridge, good for one retry. It is not bound to the session that got it: a
// 2026 client has no session (the relay gives each of its POSTs a session
// of its own, closed with the POST), so its retry arrives on another one —
// the handle is the capability. What is held is bounded: InputTimeout for
// each retry, maxHeld waiting calls per child, maxInputRounds per call.

// heldStatePrefix starts every requestState the bridge makes, so a retry
// can be told from one carrying a child's own state (a both-era or 2026
// child runs its rounds itself, and its state passes through untouched).
const heldStatePrefix = "tether-held:"

// maxHeld bounds the calls of a child that may wait for their retry: each
// holds a child request open.
const maxHeld = 32

// heldCall is one call of a 2026 session that a 2025 child is running and
// asking input for. Its fields are guarded by router.mu.
type heldCall struct {
	sess    *Session // the session of the client request being answered (the retry's, after one)
	p       *pending // the call at the child
	childID int64
	method  string

	handle   string            // the requestState of the round the client holds, "" while running
	clientID []byte            // the client request to answer next; nil while waiting for the retry
	asked    map[string][]byte // input key → the child's request id, answered by the next retry
	queued   []childRequest    // the child's requests that came while waiting for the retry
	final    []byte            // the child's answer to the call, when it came while waiting
	rounds   int
	keyN     int
	gen      int // bumped on each retry, so a stale timer does nothing
	timer    *time.Timer
	done     bool
}

// childRequest is one server→client request of the child, held for a client.
type childRequest struct {
	id     []byte
	method string
	params []byte
}

// heldAction is what the caller of a router method must do once the lock is
// released: write to the child, answer the client, report the call.
type heldAction struct {
	toChild  [][]byte
	sess     *Session
	answerID []byte // the client request answered with answer
	answer   []byte // a full JSON-RPC response
	cancel   int64  // a child id to cancel at the child, or 0
	reason   string // the call ended (cancelled or failed) for this reason
	call     callStart
}

func (c *Child) runHeld(a heldAction) {
	c.mu.Lock()
	in := c.inst
	c.mu.Unlock()
	if in != nil {
		for _, m := range a.toChild {
			_ = in.write(m)
		}
		if a.cancel != 0 {
			_ = in.write(buildNotification("notifications/cancelled",
				[]byte(`{"requestId":`+strconv.FormatInt(a.cancel, 10)+`,"reason":`+strconv.Quote(a.reason)+`}`)))
		}
	}
	if a.answer != nil {
		a.sess.finish(a.answerID, a.answer)
	}
	if a.reason != "" {
		c.reportCall(a.sess, a.call, OutcomeCancelled, a.reason)
	}
}

// holdForInput takes a child's server→client request for a 2026 session:
// it becomes an input request of the session's one call in flight.
// It reports false (and why) when it cannot: the request is then refused.
func (c *Child) holdForInput(s *Session, m *message) (string, bool) {
	a, why := c.route.hold(c, s, childRequest{id: clone(m.id), method: m.method, params: orEmpty(m.params)})
	if why != "" {
		return why, false
	}
	c.runHeld(a)
	return "", true
}

// hold is holdForInput under the router's lock.
func (r *router) hold(c *Child, s *Session, req childRequest) (heldAction, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var p *pending
	var childID int64
	for id, q := range r.pending {
		if q.sess != s || q.method == "subscriptions/listen" {
			continue
		}
		if p != nil {
			return heldAction{}, "the client has several calls in flight, so the one it is for is ambiguous"
		}
		p, childID = q, id
	}
	if p == nil {
		return heldAction{}, "the client has no call in flight"
	}
	if p.caps != nil {
		need := map[string]string{"roots/list": "roots", "sampling/createMessage": "sampling", "elicitation/create": "elicitation"}[req.method]
		if need != "" && field(p.caps, need) == nil {
			return heldAction{}, "the client did not declare the " + need + " capability"
		}
	}
	h := p.held
	if h == nil {
		if n := len(r.held); n >= maxHeld {
			return heldAction{}, fmt.Sprintf("%d calls wait for their clients' input already", n)
		}
		h = &heldCall{sess: s, p: p, childID: childID, method: p.method,
			clientID: p.origID, asked: map[string][]byte{}}
		p.held = h
	}
	if h.clientID == nil {
		// The client holds an input_required already; this one goes in
		// the next round, answered to the retry.
		h.queued = append(h.queued, req)
		return heldAction{}, ""
	}
	return r.askLocked(c, h, []childRequest{req}), ""
}

// askLocked answers h's waiting client request with input_required for
// reqs and starts waiting for the retry.
func (r *router) askLocked(c *Child, h *heldCall, reqs []childRequest) heldAction {
	a := heldAction{sess: h.sess, answerID: h.clientID, call: h.p.call}
	h.rounds++
	if h.rounds > maxInputRounds {
		msg := fmt.Sprintf("tether bridge: the call asked for input more than %d times", maxInputRounds)
		for _, q := range reqs {
			a.toChild = append(a.toChild, errorResponse(q.id, mcpwire.CodeInternal, msg))
		}
		a.answerID = nil
		return a
	}
	inputs := map[string]json.RawMessage{}
	for _, q := range reqs {
		h.keyN++
		k := "tether-" + strconv.Itoa(h.keyN)
		h.asked[k] = q.id
		inputs[k], _ = json.Marshal(struct {
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}{q.method, q.params})
	}
	h.handle = heldStatePrefix + randomHandle()
	r.held[h.handle] = h
	h.clientID = nil
	gen := h.gen
	h.timer = time.AfterFunc(c.opts.InputTimeout, func() { c.heldTimeout(h, gen) })
	res, _ := json.Marshal(map[string]any{"resultType": "input_required", "inputRequests": inputs, "requestState": h.handle})
	a.answer = buildResponse(a.answerID, res, nil)
	return a
}

func randomHandle() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// isHeldRetry reports whether a request is a retry of a call the bridge
// answered with input_required.
func isHeldRetry(m *message) bool {
	st := field(m.params, "requestState")
	return st != nil && strings.HasPrefix(unquote(st), heldStatePrefix)
}

// resumeHeld takes a 2026 client's retry: the input responses go to the
// child's waiting requests, and the retry waits for the call's result.
func (s *Session) resumeHeld(m *message) {
	c := s.c
	var responses map[string]json.RawMessage
	_ = json.Unmarshal(orEmpty(field(m.params, "inputResponses")), &responses)
	var tok []byte
	if ts, te := m.p.metaToken.s, m.p.metaToken.e; ts >= 0 {
		tok = clone(m.params[ts:te])
	}
	a, childID, err := c.route.resume(c, s, unquote(field(m.params, "requestState")), m, responses, tok)
	if err != "" {
		s.deliver(errorResponse(m.id, mcpwire.CodeInvalidParams, err), nil)
		return
	}
	if childID != 0 {
		// The call runs on at the child: a cancel of the retry reaches it.
		s.mu.Lock()
		s.inflight[idKey(m.id)] = childID
		s.mu.Unlock()
	}
	c.runHeld(a)
}

// resume is resumeHeld under the router's lock. childID is the call's id at
// the child when it runs on (0 when the retry is answered at once).
func (r *router) resume(c *Child, s *Session, handle string, m *message, responses map[string]json.RawMessage, tok []byte) (heldAction, int64, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.held[handle]
	if h == nil || h.done {
		return heldAction{}, 0, "requestState is unknown or expired (the bridge keeps an input round for " + c.opts.InputTimeout.String() + ")"
	}
	if h.method != m.method {
		return heldAction{}, 0, fmt.Sprintf("requestState belongs to a %s call, not %s", h.method, m.method)
	}
	delete(r.held, handle)
	h.handle = ""
	h.gen++
	h.timer.Stop()
	id := clone(m.id)
	h.sess = s
	a := heldAction{sess: s, call: h.p.call}
	if h.final != nil {
		// The child finished while the client was away.
		h.done = true
		fm, _ := parseMessage(h.final)
		a.answerID, a.answer = id, fm.withID(id)
		return a, 0, ""
	}
	for k, childReq := range h.asked {
		if v, ok := responses[k]; ok {
			a.toChild = append(a.toChild, buildResponse(childReq, v, nil))
		} else {
			a.toChild = append(a.toChild, errorResponse(childReq, mcpwire.CodeInternal, "tether bridge: the client's retry had no response for this request"))
		}
	}
	h.asked = map[string][]byte{}
	h.clientID = id
	h.p.sess, h.p.origID, h.p.origTok = s, id, tok
	if len(h.queued) > 0 {
		reqs := h.queued
		h.queued = nil
		next := r.askLocked(c, h, reqs)
		next.toChild = append(a.toChild, next.toChild...)
		if next.answer == nil { // too many rounds: the call runs on without them
			return next, h.childID, ""
		}
		return next, 0, ""
	}
	return a, h.childID, ""
}

// heldResponse routes the child's answer to a held call: to the client's
// retry, or kept until the retry comes.
func (c *Child) heldResponse(h *heldCall, m *message) {
	c.route.mu.Lock()
	if h.done {
		c.route.mu.Unlock()
		return
	}
	if h.clientID == nil {
		h.final = clone(m.raw)
		c.route.mu.Unlock()
		return
	}
	h.done = true
	s, id, call := h.sess, h.clientID, h.p.call
	c.route.mu.Unlock()
	outcome, msg := responseOutcome(m.result, m.err)
	s.finish(id, m.withID(id))
	c.reportCall(s, call, outcome, msg)
}

// heldTimeout gives up on a retry that did not come in time.
func (c *Child) heldTimeout(h *heldCall, gen int) {
	c.route.mu.Lock()
	if h.done || h.gen != gen {
		c.route.mu.Unlock()
		return
	}
	a := c.route.abandonLocked(h, "the client did not retry the call within "+c.opts.InputTimeout.String())
	c.route.mu.Unlock()
	c.runHeld(a)
}

// abandonLocked ends h: the child's waiting requests get an error and the
// call is cancelled at the child, unless it has finished.
func (r *router) abandonLocked(h *heldCall, reason string) heldAction {
	h.done = true
	if h.timer != nil {
		h.timer.Stop()
	}
	if h.handle != "" {
		delete(r.held, h.handle)
	}
	a := heldAction{sess: h.sess, reason: reason, call: h.p.call}
	msg := "tether bridge: " + reason
	for _, id := range h.asked {
		a.toChild = append(a.toChild, errorResponse(id, mcpwire.CodeInternal, msg))
	}
	for _, q := range h.queued {
		a.toChild = append(a.toChild, errorResponse(q.id, mcpwire.CodeInternal, msg))
	}
	if h.final == nil && r.pending[h.childID] == h.p {
		delete(r.pending, h.childID)
		a.cancel = h.childID
	}
	return a
}

// releaseHeld ends a held call whose client cancelled it (the caller cancels
// the call at the child itself).
func (c *Child) releaseHeld(h *heldCall) {
	c.route.mu.Lock()
	if h.done {
		c.route.mu.Unlock()
		return
	}
	a := c.route.abandonLocked(h, "the client cancelled the call")
	c.route.mu.Unlock()
	a.cancel, a.reason = 0, "" // the caller cancels and reports
	c.runHeld(a)
}
