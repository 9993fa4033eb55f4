package mcpchild

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/mcpwire"
)

// capsMeta is a 2026 client's per-request _meta declaring caps.
func capsMeta(name string, caps map[string]any) map[string]any {
	m := modernMeta(name)
	m[mcpwire.MetaClientCapabilities] = caps
	return m
}

var allInputCaps = map[string]any{"roots": map[string]any{}, "sampling": map[string]any{}, "elicitation": map[string]any{"form": map[string]any{}}}

// inputRequired checks res is an input_required result with exactly one
// input request of method and returns its key and the requestState.
func inputRequired(t *testing.T, res []byte, method string) (key, state string) {
	t.Helper()
	var r struct {
		ResultType    string `json:"resultType"`
		InputRequests map[string]struct {
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		} `json:"inputRequests"`
		RequestState string `json:"requestState"`
	}
	if err := json.Unmarshal(res, &r); err != nil || r.ResultType != "input_required" || len(r.InputRequests) != 1 || r.RequestState == "" {
		t.Fatalf("want an input_required result with one %s request, got %s", method, res)
	}
	for k, v := range r.InputRequests {
		if v.Method != method || len(v.Params) == 0 {
			t.Fatalf("input request %q = %s %s, want %s", k, v.Method, v.Params, method)
		}
		key = k
	}
	return key, r.RequestState
}

// A 2026 client on a 2025-only child: the child's server→client requests
// become input_required results, and the retry's inputResponses reach the
// child's waiting requests; the retry gets the call's result.
func TestModernSessionGetsLegacyChildInputAsRounds(t *testing.T) {
	c := startTestServer(t, testOptions(t), "-era", "legacy")
	cl := newClient(t, c, "a")
	meta := capsMeta("m", allInputCaps)
	cases := []struct {
		tool, method string
		args         map[string]any
		response     any
		want         string
	}{
		{"roots", "roots/list", map[string]any{}, map[string]any{"roots": []any{map[string]any{"uri": "file:///held"}}}, "file:///held"},
		{"elicit", "elicitation/create", map[string]any{"message": "name?"}, map[string]any{"action": "accept", "content": map[string]any{"answer": "ada"}}, "ada"},
		{"sample", "sampling/createMessage", map[string]any{"prompt": "hi"}, map[string]any{"role": "assistant", "model": "m", "content": map[string]any{"type": "text", "text": "sampled"}}, "sampled"},
	}
	for _, tc := range cases {
		res := cl.mustCall("tools/call", map[string]any{"_meta": meta, "name": tc.tool, "arguments": tc.args})
		key, state := inputRequired(t, res, tc.method)
		if !strings.HasPrefix(state, heldStatePrefix) {
			t.Fatalf("requestState %q is not the bridge's", state)
		}
		retry := map[string]any{"_meta": meta, "name": tc.tool, "arguments": tc.args,
			"inputResponses": map[string]any{key: tc.response}, "requestState": state}
		got := cl.mustCall("tools/call", retry)
		if !contains(got, tc.want) || contains(got, `"isError":true`) {
			t.Fatalf("%s retry = %s, want %q", tc.tool, got, tc.want)
		}
		// A state is good for one retry only.
		if _, errObj := cl.call("tools/call", retry); errObj == nil || !contains(errObj, "unknown or expired") {
			t.Fatalf("a replayed requestState was accepted: %s", errObj)
		}
	}
	if n := c.route.sessionRequests(); n != 0 {
		t.Fatalf("%d requests still pending at the child", n)
	}
}

// A requestState the bridge never made (or made for another method) is
// refused, a client that did not declare the capability is refused rather
// than asked, and a retry that never comes ends the child's request and the
// call.
func TestHeldRoundBounds(t *testing.T) {
	c := startTestServer(t, testOptions(t), "-era", "legacy")
	a := newClient(t, c, "a")
	meta := capsMeta("m", allInputCaps)
	res := a.mustCall("tools/call", map[string]any{"_meta": meta, "name": "roots", "arguments": map[string]any{}})
	key, state := inputRequired(t, res, "roots/list")
	retry := map[string]any{"_meta": meta, "name": "roots", "arguments": map[string]any{},
		"inputResponses": map[string]any{key: map[string]any{"roots": []any{}}}, "requestState": state}
	forged := map[string]any{"_meta": meta, "name": "roots", "arguments": map[string]any{}, "requestState": heldStatePrefix + "00"}
	if _, errObj := a.call("tools/call", forged); errObj == nil || !contains(errObj, "unknown or expired") {
		t.Fatalf("a forged requestState = %s, want an error", errObj)
	}
	if _, errObj := a.call("prompts/get", map[string]any{"_meta": meta, "name": "p", "requestState": state}); errObj == nil || !contains(errObj, "belongs to a tools/call") {
		t.Fatalf("a requestState on another method = %s, want an error", errObj)
	}

	// The retry never comes: the timeout (run here directly) errors the
	// child's roots/list and cancels the call at the child.
	c.route.mu.Lock()
	h := c.route.held[state]
	c.route.mu.Unlock()
	if h == nil {
		t.Fatal("no held call under the requestState")
	}
	c.heldTimeout(h, h.gen)
	if _, errObj := a.call("tools/call", retry); errObj == nil || !contains(errObj, "unknown or expired") {
		t.Fatalf("a retry after the timeout = %s, want an error", errObj)
	}
	if n := c.route.sessionRequests(); n != 0 {
		t.Fatalf("%d requests still pending at the child after the timeout", n)
	}

	noCaps := capsMeta("m", map[string]any{})
	res, errObj := a.call("tools/call", map[string]any{"_meta": noCaps, "name": "roots", "arguments": map[string]any{}})
	if errObj == nil || !contains(errObj, "did not declare the roots capability") {
		t.Fatalf("roots for a client without the roots capability = %s %s, want a clear error", res, errObj)
	}
	if got := a.mustCall("tools/call", map[string]any{"_meta": meta, "name": "echo", "arguments": map[string]any{"text": "ok"}}); !contains(got, `"ok"`) {
		t.Fatalf("echo after the timeout = %s", got)
	}
}

// A 2026 client has no session: the relay gives each POST one of its own,
// closed with the POST. The held call outlives it, and the retry on the
// next session gets the result.
func TestHeldRoundOutlivesTheSession(t *testing.T) {
	c := startTestServer(t, testOptions(t), "-era", "legacy")
	meta := capsMeta("m", allInputCaps)
	args := map[string]any{"message": "?"}
	first := newClient(t, c, "post-1")
	res := first.mustCall("tools/call", map[string]any{"_meta": meta, "name": "elicit", "arguments": args})
	key, state := inputRequired(t, res, "elicitation/create")
	first.s.Close()
	if n := c.route.sessionRequests(); n != 1 {
		t.Fatalf("%d requests pending at the child while held, want 1", n)
	}
	second := newClient(t, c, "post-2")
	got := second.mustCall("tools/call", map[string]any{"_meta": meta, "name": "elicit", "arguments": args,
		"inputResponses": map[string]any{key: map[string]any{"action": "accept", "content": map[string]any{"answer": "later"}}},
		"requestState":   state})
	if !contains(got, "later") {
		t.Fatalf("retry on a new session = %s", got)
	}
	if n := c.route.sessionRequests(); n != 0 {
		t.Fatalf("%d requests pending at the child after the retry", n)
	}
}

// A child that asks again after the first answer: the retry is answered
// with the next input_required, and the second retry gets the result.
func TestHeldCallAsksTwice(t *testing.T) {
	c := startTestServer(t, testOptions(t), "-era", "legacy")
	cl := newClient(t, c, "a")
	meta := capsMeta("m", allInputCaps)
	params := map[string]any{"_meta": meta, "name": "two_rounds", "arguments": map[string]any{}}
	key, state := inputRequired(t, cl.mustCall("tools/call", params), "roots/list")
	params["inputResponses"] = map[string]any{key: map[string]any{"roots": []any{map[string]any{"uri": "file:///one"}}}}
	params["requestState"] = state
	key2, state2 := inputRequired(t, cl.mustCall("tools/call", params), "elicitation/create")
	if state2 == state {
		t.Fatal("the second round reused the first round's requestState")
	}
	params["inputResponses"] = map[string]any{key2: map[string]any{"action": "accept", "content": map[string]any{"answer": "two"}}}
	params["requestState"] = state2
	if got := cl.mustCall("tools/call", params); !contains(got, "file:///one two") {
		t.Fatalf("after two rounds = %s", got)
	}
}

// A held call cancelled between the client's retry and the child's answer:
// the cancel reaches the child's one running call (its handler sees it),
// nothing stays pending or held, and no answer reaches the client. Either
// way a 2026 client's cancel arrives: the relay closes the retry's session
// when the client drops its POST, or a notifications/cancelled names it.
func TestHeldCallCancelledAfterRetry(t *testing.T) {
	c := startTestServer(t, testOptions(t), "-era", "legacy")
	counter := newClient(t, c, "counter")
	for _, how := range []string{"close", "notification"} {
		t.Run(how, func(t *testing.T) {
			before := counter.toolText("cancels", map[string]any{})
			meta := capsMeta("m", allInputCaps)
			meta["progressToken"] = "first"
			args := map[string]any{"message": "?", "waitMs": 60000}
			first := newClient(t, c, "post-1-"+how)
			res := first.mustCall("tools/call", map[string]any{"_meta": meta, "name": "elicit", "arguments": args})
			key, state := inputRequired(t, res, "elicitation/create")
			first.s.Close()

			retry := newClient(t, c, "post-2-"+how)
			meta["progressToken"] = "retry"
			id, resp := retry.request("tools/call", map[string]any{"_meta": meta, "name": "elicit", "arguments": args,
				"inputResponses": map[string]any{key: map[string]any{"action": "accept", "content": map[string]any{"answer": "a"}}},
				"requestState":   state})
			// The child has the answer and works on: its progress comes to
			// the retry, under the retry's token.
			d := retry.waitOther("progress after the retry", methodIs("notifications/progress"))
			if !contains(d.msg, `"progressToken":"retry"`) {
				t.Fatalf("progress after the retry = %s", d.msg)
			}
			switch how {
			case "close":
				retry.s.Close()
			case "notification":
				if err := retry.s.Handle(buildNotification("notifications/cancelled", []byte(`{"requestId":`+id+`}`))); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(10 * time.Second)
			for counter.toolText("cancels", map[string]any{}) == before {
				if time.Now().After(deadline) {
					t.Fatal("the cancel never reached the child's call")
				}
				time.Sleep(20 * time.Millisecond) // polling the child's count, not synchronisation by sleep
			}
			if n := c.route.sessionRequests(); n != 0 {
				t.Fatalf("%d requests still pending at the child", n)
			}
			c.route.mu.Lock()
			held := len(c.route.held)
			c.route.mu.Unlock()
			if held != 0 {
				t.Fatalf("%d calls still held", held)
			}
			select {
			case r := <-resp:
				t.Fatalf("the cancelled retry was answered: %s", r)
			default:
			}
		})
	}
}
