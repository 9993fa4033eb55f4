package mcpchild

import (
	"encoding/json"
	"strconv"
	"sync"
)

// router keeps the three id maps of a child's multiplexer: which session
// (or bridge call) awaits the answer to each request sent to the child,
// which session each child→client request went to, and which call each
// input request (a 2026 child's input_required, asked of a 2025 client) is
// for. It has its own lock, taken for map updates only: nothing that can
// block runs under it. Lock order: Child.mu, then router.mu.
type router struct {
	mu      sync.Mutex
	pending map[int64]*pending     // child-side id → the request awaiting its answer
	srvReqs map[string]*Session    // idKey of a child→client request → the session it went to
	inputs  map[string]*inputRound // idKey of an input request → the call it belongs to
	held    map[string]*heldCall   // requestState handle → the held call waiting for its retry
}

func newRouter() *router {
	return &router{pending: map[int64]*pending{}, srvReqs: map[string]*Session{}, inputs: map[string]*inputRound{}, held: map[string]*heldCall{}}
}

// add registers a request sent to the child under id.
func (r *router) add(id int64, p *pending) {
	r.mu.Lock()
	r.pending[id] = p
	r.mu.Unlock()
}

// take removes and returns the request id belongs to, or nil (unknown, or
// answered or cancelled already).
func (r *router) take(id int64) *pending {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending[id]
	delete(r.pending, id)
	return p
}

// takeRaw is take for a raw JSON id, as the child echoes it: nil when it is
// not one of the bridge's integer ids.
func (r *router) takeRaw(id []byte) *pending {
	n, err := strconv.ParseInt(string(id), 10, 64)
	if err != nil {
		return nil
	}
	return r.take(n)
}

// lookup returns the request id belongs to and leaves it pending (progress
// and subscription notifications come before the answer).
func (r *router) lookup(id int64) *pending {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending[id]
}

// soleSession is the one session with requests in flight at the child, and
// how many sessions have some: a child→client request can only be routed
// when exactly one has.
func (r *router) soleSession() (s *Session, sessions int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.pending {
		if p.sess != nil && p.sess != s {
			if s != nil {
				return nil, 2 // "more than one" is all the caller needs
			}
			s = p.sess
		}
	}
	if s == nil {
		return nil, 0
	}
	return s, 1
}

// progressTarget is where progress for the request with id goes: the
// session, its request id and its progress token, read under the lock
// (a held call's retry changes them).
func (r *router) progressTarget(id int64) (s *Session, origID, origTok []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending[id]
	if p == nil {
		return nil, nil, nil
	}
	return p.sess, p.origID, p.origTok
}

// listen is a session's subscriptions/listen held open by the child.
type listen struct {
	s  *Session
	id []byte // the listen's id in the session's space
}

// listens lists the subscriptions/listen requests pending at the child.
func (r *router) listens() []listen {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []listen
	for _, p := range r.pending {
		if p.sess != nil && p.method == "subscriptions/listen" {
			out = append(out, listen{p.sess, p.origID})
		}
	}
	return out
}

// sentToSession records that the child→client request with key went to s.
func (r *router) sentToSession(key string, s *Session) {
	r.mu.Lock()
	r.srvReqs[key] = s
	r.mu.Unlock()
}

// answeredBy forgets the child→client request with key when s is the
// session it went to, and reports whether it was.
func (r *router) answeredBy(key string, s *Session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srvReqs[key] != s {
		return false
	}
	delete(r.srvReqs, key)
	return true
}

// withdrawn forgets the child→client request with key (the child cancelled
// it) and returns the session it went to, or nil.
func (r *router) withdrawn(key string) *Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.srvReqs[key]
	delete(r.srvReqs, key)
	return s
}

// addInputs registers the input requests of round under their ids, which
// must be what round.keys is keyed by.
func (r *router) addInputs(round *inputRound) {
	r.mu.Lock()
	for k := range round.keys {
		r.inputs[k] = round
	}
	r.mu.Unlock()
}

// inputAnswered records s's answer to the input request with key: result,
// or failed when the client answered with an error (the whole call fails,
// so the round's other requests are forgotten). It returns the round, nil
// when key is not an input request sent to s, and whether every answer of
// the round is in.
func (r *router) inputAnswered(key string, s *Session, result []byte, failed bool) (round *inputRound, complete bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	round = r.inputs[key]
	if round == nil || round.sess != s {
		return nil, false
	}
	delete(r.inputs, key)
	inKey := round.keys[key]
	delete(round.keys, key)
	if failed {
		for k := range round.keys {
			delete(r.inputs, k)
		}
		return round, false
	}
	round.responses[inKey] = json.RawMessage(clone(result))
	return round, len(round.keys) == 0
}

// cancelInputs forgets the input requests of s's call with origKey (its id
// in the session's space) and returns the call's round, or nil.
func (r *router) cancelInputs(s *Session, origKey string) *inputRound {
	r.mu.Lock()
	defer r.mu.Unlock()
	var round *inputRound
	for k, in := range r.inputs {
		if in.sess == s && idKey(in.origID) == origKey {
			round = in
			delete(r.inputs, k)
		}
	}
	return round
}

// forgetSession drops what a closing session was asked: its input requests,
// and the child→client requests sent to it, whose keys it returns so the
// child can be told.
func (r *router) forgetSession(s *Session) (orphans []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, owner := range r.srvReqs {
		if owner == s {
			orphans = append(orphans, k)
			delete(r.srvReqs, k)
		}
	}
	for k, round := range r.inputs {
		if round.sess == s {
			delete(r.inputs, k)
		}
	}
	return orphans
}

// drained is everything a router held when the child went away.
type drained struct {
	pending []*pending
	srvReqs map[string]*Session
	rounds  []*inputRound // each round once
}

// drain empties the router and returns what it held.
func (r *router) drain() drained {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := drained{srvReqs: r.srvReqs}
	for _, p := range r.pending {
		if h := p.held; h != nil {
			h.done = true
			if h.timer != nil {
				h.timer.Stop()
			}
			if h.clientID == nil {
				continue // answered with input_required; its retry finds no state
			}
		}
		d.pending = append(d.pending, p)
	}
	for _, h := range r.held {
		h.done = true
		h.timer.Stop()
	}
	r.held = map[string]*heldCall{}
	seen := map[*inputRound]bool{}
	for _, round := range r.inputs {
		if !seen[round] {
			seen[round] = true
			d.rounds = append(d.rounds, round)
		}
	}
	r.pending, r.srvReqs, r.inputs = map[int64]*pending{}, map[string]*Session{}, map[string]*inputRound{}
	return d
}

// sessionRequests counts the requests pending at the child for sessions
// (not the bridge's own).
func (r *router) sessionRequests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, p := range r.pending {
		if p.sess != nil {
			n++
		}
	}
	return n
}

// idle reports whether no session's request is pending at the child and no
// held call waits for its retry: a pooled process may take a new call.
func (r *router) idle() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.held) > 0 {
		return false
	}
	for _, p := range r.pending {
		if p.sess != nil {
			return false
		}
	}
	return true
}

// holds reports whether handle is the requestState of a call held here.
func (r *router) holds(handle string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.held[handle]
	return ok
}
