package mcpchild

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestRouterPending(t *testing.T) {
	t.Parallel()
	r := newRouter()
	a, b := &Session{id: "a"}, &Session{id: "b"}
	pa := &pending{sess: a, origID: []byte(`"a1"`), method: "tools/call"}
	r.add(1, pa)
	r.add(2, &pending{method: "tools/list", internal: make(chan []byte, 1)}) // the bridge's own
	if got := r.lookup(1); got != pa {
		t.Fatalf("lookup(1) = %v", got)
	}
	if s, n := r.soleSession(); s != a || n != 1 {
		t.Fatalf("soleSession = %v, %d; want a, 1", s, n)
	}
	r.add(3, &pending{sess: a, origID: []byte(`"a2"`), method: "subscriptions/listen"})
	if s, n := r.soleSession(); s != a || n != 1 {
		t.Fatalf("soleSession with two of a's requests = %v, %d; want a, 1", s, n)
	}
	got4 := &pending{sess: b, origID: []byte(`1`), method: "tools/call"}
	r.add(4, got4)
	if s, n := r.soleSession(); s != nil || n < 2 {
		t.Fatalf("soleSession with a and b = %v, %d; want nil, more than 1", s, n)
	}
	if l := r.listens(); len(l) != 1 || l[0].s != a || string(l[0].id) != `"a2"` {
		t.Fatalf("listens = %+v", l)
	}
	if n := r.sessionRequests(); n != 3 {
		t.Fatalf("sessionRequests = %d, want 3", n)
	}
	if got := r.take(1); got != pa {
		t.Fatalf("take(1) = %v", got)
	}
	if got := r.take(1); got != nil {
		t.Fatalf("second take(1) = %v, want nil: an answer is delivered once", got)
	}
	if got := r.takeRaw([]byte(`"4"`)); got != nil {
		t.Fatalf("takeRaw of a string id = %v; the bridge's ids are integers", got)
	}
	if got := r.takeRaw([]byte(`4`)); got == nil || got.sess != b {
		t.Fatalf("takeRaw(4) = %v", got)
	}
	r.add(4, got4)
	d := r.drain()
	if len(d.pending) != 3 || r.sessionRequests() != 0 || r.lookup(2) != nil {
		t.Fatalf("drain took %d, left %d", len(d.pending), r.sessionRequests())
	}
}

func TestRouterServerRequests(t *testing.T) {
	t.Parallel()
	r := newRouter()
	a, b := &Session{id: "a"}, &Session{id: "b"}
	r.sentToSession(`7`, a)
	r.sentToSession(`"x"`, a)
	r.sentToSession(`8`, b)
	if r.answeredBy(`7`, b) {
		t.Fatal("b answered a request sent to a")
	}
	if !r.answeredBy(`7`, a) || r.answeredBy(`7`, a) {
		t.Fatal("a's answer is taken exactly once")
	}
	if s := r.withdrawn(`8`); s != b {
		t.Fatalf("withdrawn(8) = %v, want b", s)
	}
	if s := r.withdrawn(`8`); s != nil {
		t.Fatalf("second withdrawn(8) = %v", s)
	}
	if orphans := r.forgetSession(a); !slices.Equal(orphans, []string{`"x"`}) {
		t.Fatalf("forgetSession(a) = %q", orphans)
	}
	if d := r.drain(); len(d.srvReqs) != 0 {
		t.Fatalf("left after forgetSession: %v", d.srvReqs)
	}
}

func newRound(s *Session, origID string, keys ...string) *inputRound {
	round := &inputRound{sess: s, origID: []byte(origID), keys: map[string]string{}, responses: map[string]json.RawMessage{}}
	for _, k := range keys {
		round.keys[`"in-`+k+`"`] = k
	}
	return round
}

func TestRouterInputRounds(t *testing.T) {
	t.Parallel()
	r := newRouter()
	a, b := &Session{id: "a"}, &Session{id: "b"}

	round := newRound(a, `1`, "roots", "sample")
	r.addInputs(round)
	if got, _ := r.inputAnswered(`"in-roots"`, b, []byte(`{}`), false); got != nil {
		t.Fatal("b answered a's input request")
	}
	got, complete := r.inputAnswered(`"in-roots"`, a, []byte(`{"roots":[]}`), false)
	if got != round || complete {
		t.Fatalf("first answer: %v, complete %v", got, complete)
	}
	if got, _ := r.inputAnswered(`"in-roots"`, a, []byte(`{}`), false); got != nil {
		t.Fatal("an input request was answered twice")
	}
	got, complete = r.inputAnswered(`"in-sample"`, a, []byte(`{"x":1}`), false)
	if got != round || !complete || string(round.responses["roots"]) != `{"roots":[]}` || string(round.responses["sample"]) != `{"x":1}` {
		t.Fatalf("last answer: %v, complete %v, responses %s", got, complete, round.responses)
	}

	// An error answer fails the call: its other requests are forgotten.
	failing := newRound(a, `2`, "p", "q")
	r.addInputs(failing)
	if got, complete := r.inputAnswered(`"in-p"`, a, nil, true); got != failing || complete {
		t.Fatalf("error answer: %v, complete %v", got, complete)
	}
	if got, _ := r.inputAnswered(`"in-q"`, a, []byte(`{}`), false); got != nil {
		t.Fatal("the failed call's other request is still routed")
	}

	cancelled := newRound(a, `"c"`, "p", "q")
	other := newRound(b, `"c"`, "z")
	r.addInputs(cancelled)
	r.addInputs(other)
	if got := r.cancelInputs(a, `"c"`); got != cancelled {
		t.Fatalf("cancelInputs = %v", got)
	}
	if got := r.cancelInputs(a, `"c"`); got != nil {
		t.Fatalf("second cancelInputs = %v", got)
	}
	if d := r.drain(); len(d.rounds) != 1 || d.rounds[0] != other {
		t.Fatalf("drain rounds = %v, want b's only", d.rounds)
	}
}
