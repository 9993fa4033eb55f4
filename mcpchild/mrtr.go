package mcpchild

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/tether-dev/tether/internal/mcpwire"
)

// Multi-round-trip results (2026-07-28, SEP-2322) replace server→client
// requests: a 2026 child answers a call that needs input with
//
//	{"resultType":"input_required","inputRequests":{"k":{"method":"roots/list","params":{}}},"requestState":"…"}
//
// and expects the same call again with "inputResponses":{"k":<result>} and
// the requestState. A 2026 client does that itself. A 2025 client only knows
// server→client requests, so for it the bridge sends each input request as
// one, collects the answers, and retries the call — the client sees an
// ordinary request/response with roots/sampling/elicitation in between.

// maxInputRounds bounds retries of one call, as the go-sdk client does.
const maxInputRounds = 10

// inputRound is one call waiting for a 2025 client's answers.
type inputRound struct {
	sess      *Session
	origID    []byte
	method    string
	params    []byte                     // the client's params, before any rewriting
	state     []byte                     // raw requestState value, or nil
	keys      map[string]string          // our request id → input key
	responses map[string]json.RawMessage // input key → the client's result
	rounds    int
	call      callStart // an observed tools/call, else zero
}

// needsInputTranslation reports whether a result must be turned into
// server→client requests for the session that asked.
func needsInputTranslation(p *pending, result []byte) bool {
	if p.sess == nil || p.params == nil {
		return false
	}
	rt := field(result, "resultType")
	return rt != nil && unquote(rt) == "input_required"
}

// startInputRound sends the input requests of an input_required result to
// the session, as server→client requests.
func (c *Child) startInputRound(p *pending, result []byte) {
	s := p.sess
	var reqs map[string]struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(orEmpty(field(result, "inputRequests")), &reqs); err != nil || len(reqs) == 0 {
		msg := fmt.Sprintf("mcp server %q asked for input with no usable inputRequests", c.spec.Name)
		s.finish(p.origID, errorResponse(p.origID, mcpwire.CodeInternal, msg))
		c.reportCall(s, p.call, OutcomeError, msg)
		return
	}
	round := &inputRound{
		sess: s, origID: p.origID, method: p.method, params: p.params,
		state: clone(field(result, "requestState")), keys: map[string]string{},
		responses: map[string]json.RawMessage{}, rounds: p.rounds + 1, call: p.call,
	}
	if round.rounds > maxInputRounds {
		msg := fmt.Sprintf("mcp server %q asked for input more than %d times for one call", c.spec.Name, maxInputRounds)
		s.finish(p.origID, errorResponse(p.origID, mcpwire.CodeInternal, msg))
		c.reportCall(s, p.call, OutcomeError, msg)
		return
	}
	keys := make([]string, 0, len(reqs))
	for k := range reqs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if why := s.refuses(reqs[k].Method, reqs[k].Params); why != "" {
			msg := fmt.Sprintf("mcp server %q needs %s from the client, but %s", c.spec.Name, reqs[k].Method, why)
			s.finish(p.origID, errorResponse(p.origID, mcpwire.CodeMethodNotFound, msg))
			c.reportCall(s, p.call, OutcomeError, msg)
			return
		}
	}
	type out struct{ id, msg []byte }
	var msgs []out
	for _, k := range keys {
		id := []byte(strconv.Quote("tether-input-" + strconv.FormatInt(c.nextID.Add(1), 10)))
		round.keys[idKey(id)] = k
		msgs = append(msgs, out{id, buildRequest(id, reqs[k].Method, orEmpty(reqs[k].Params))})
	}
	c.route.addInputs(round)
	s.mu.Lock()
	s.inflight[idKey(p.origID)] = 0 // still in flight from the client's view
	s.mu.Unlock()
	for _, m := range msgs {
		s.deliver(m.msg, p.origID)
	}
}

// inputAnswer takes a session's answer to one of our input requests and,
// once all are in, retries the call. It reports whether the id was ours.
func (s *Session) inputAnswer(m *message) bool {
	c := s.c
	round, complete := c.route.inputAnswered(idKey(m.id), s, m.result, m.err != nil)
	if round == nil {
		return false
	}
	if m.err != nil {
		s.finish(round.origID, buildResponse(round.origID, nil, m.err))
		c.reportCall(s, round.call, OutcomeError, unquote(field(m.err, "message")))
		return true
	}
	if !complete {
		return true
	}
	c.mu.Lock()
	in, hs := c.inst, c.init
	c.mu.Unlock()
	resp, _ := json.Marshal(round.responses)
	params := setField(round.params, "inputResponses", resp)
	if round.state != nil {
		params = setField(params, "requestState", round.state)
	}
	s.mu.Lock()
	delete(s.inflight, idKey(round.origID))
	s.mu.Unlock()
	if in == nil {
		msg := fmt.Sprintf("mcp server %q is not running", c.spec.Name)
		s.finish(round.origID, errorResponse(round.origID, mcpwire.CodeUnavailable, msg))
		c.reportCall(s, round.call, OutcomeFailed, msg)
		return true
	}
	retry := message{id: round.origID, method: round.method, params: params}
	retry.p, _ = parseParams(params)
	s.forwardRound(in, hs, &retry, false, round.rounds, round.call.start)
	return true
}

// cancelInputRound forgets a call that waits on the session's input answers
// when the session cancels it (or closes).
func (c *Child) cancelInputRound(s *Session, origKey string) {
	if round := c.route.cancelInputs(s, origKey); round != nil {
		c.reportCall(s, round.call, OutcomeCancelled, "")
	}
}
