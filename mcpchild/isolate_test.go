package mcpchild

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/mcpwire"
)

// isolatedOptions are the options of a 2025-era child (real server→client
// requests) isolated per session.
func isolatedOptions(t *testing.T, max int) (Options, *statusWatch) {
	opts := testOptions(t)
	opts.Era = Era2025
	opts.Isolate = true
	opts.MaxProcesses = max
	w := watchStatus(&opts)
	return opts, w
}

// newIsolatedClient opens a session on an isolated child, waits for its own
// process to be ready (as the bridge does) and initializes it.
func newIsolatedClient(t *testing.T, c *Child, name string) *client {
	t.Helper()
	cl := newClient(t, c, name)
	if cl.s.Child() == c {
		t.Fatalf("session %s was given no process of its own", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.s.Child().WaitReady(ctx); err != nil {
		t.Fatalf("session %s's process: %v", name, err)
	}
	cl.initialize("2025-11-25")
	return cl
}

// answerRootsWith waits for a roots/list request related to related (""
// when the session has several calls in flight, so the request cannot name
// one) and answers it with one root, uri.
func answerRootsWith(t *testing.T, cl *client, related, uri string) {
	t.Helper()
	req := cl.waitOther("roots/list request", methodIs("roots/list"))
	if string(req.related) != related {
		t.Fatalf("roots/list related to %q, want %q", req.related, related)
	}
	m, _ := parseMessage(req.msg)
	if err := cl.s.Handle(buildResponse(m.id, []byte(`{"roots":[{"uri":"`+uri+`"}]}`), nil)); err != nil {
		t.Fatal(err)
	}
}

// The reason for isolation: on one shared 2025 child, a server→client
// request while two sessions have calls in flight cannot be routed and is
// answered with an error. With "isolate": "session" every session's
// request reaches that session, however many have calls in flight, and
// sessions run concurrently.
func TestIsolatedSessionsGetTheirOwnServerRequests(t *testing.T) {
	shared := startTestServer(t, func() Options { o := testOptions(t); o.Era = Era2025; return o }())
	a := newClient(t, shared, "a")
	a.initialize("2025-11-25")
	a.request("tools/call", map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 60000}})
	waitPending(t, shared, 1)
	b := newClient(t, shared, "b")
	b.initialize("2025-11-25")
	res, errObj := b.call("tools/call", map[string]any{"name": "roots", "arguments": map[string]any{}})
	if !contains(res, "ambiguous") && !contains(errObj, "ambiguous") {
		t.Fatalf("shared child, roots with two sessions in flight: %s %s; want the ambiguity error", res, errObj)
	}

	const sessions = 4
	opts, watch := isolatedOptions(t, sessions)
	c := startTestServer(t, opts)
	if st := c.Status(); st.MaxProcesses != sessions || st.Processes != 0 {
		t.Fatalf("before any session: maxProcesses %d, processes %d", st.MaxProcesses, st.Processes)
	}
	var mu sync.Mutex
	pids := map[int]string{}
	t.Run("sessions", func(t *testing.T) {
		for i := range sessions {
			name := fmt.Sprintf("s%d", i)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				cl := newIsolatedClient(t, c, name)
				mu.Lock()
				pids[cl.s.Child().Status().Pid] = name
				mu.Unlock()
				// A call in flight in every session: a shared child could
				// route none of the roots requests below.
				cl.request("tools/call", map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 60000}})
				waitPending(t, cl.s.Child(), 1)
				for round := range 3 {
					uri := fmt.Sprintf("file:///%s/%d", name, round)
					_, ch := cl.request("tools/call", map[string]any{"name": "roots", "arguments": map[string]any{}})
					answerRootsWith(t, cl, "", uri) // two calls of the session in flight: related to neither
					select {
					case resp := <-ch:
						if !contains(resp, uri) || contains(resp, "isError\":true") {
							t.Fatalf("roots in %s = %s, want %s", name, resp, uri)
						}
					case <-time.After(30 * time.Second):
						t.Fatalf("roots call in %s never finished", name)
					}
					cl.mu.Lock()
					cl.other = nil // the next round's roots/list is a new one
					cl.mu.Unlock()
				}
			})
		}
	})
	if len(pids) != sessions {
		t.Fatalf("process ids %v: want %d distinct ones", pids, sessions)
	}
	if _, ok := pids[c.Status().Pid]; ok {
		t.Fatal("a session was served by the warm instance")
	}
	// The subtests' cleanups closed their sessions: every process goes.
	watch.wait(t, "every session's process stopped", func(st Status) bool { return st.Processes == 0 && st.Phase == PhaseReady })
}

// Past maxProcesses a session is refused with a clear error; a session's
// end frees its place.
func TestIsolatedMaxProcesses(t *testing.T) {
	opts, watch := isolatedOptions(t, 1)
	c := startTestServer(t, opts)
	first := newIsolatedClient(t, c, "first")
	watch.wait(t, "one process", func(st Status) bool { return st.Processes == 1 })

	over := newClient(t, c, "over")
	if over.s.Child() != c {
		t.Fatal("a session past maxProcesses got a process")
	}
	_, errObj := over.call("initialize", map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "x", "version": "1"}})
	want := `server \"test\" is limited to 1 sessions at once (maxProcesses); try again later`
	if !contains(errObj, want) || !contains(errObj, fmt.Sprint(mcpwire.CodeUnavailable)) {
		t.Fatalf("initialize past the bound: %s; want code %d and %s", errObj, mcpwire.CodeUnavailable, want)
	}
	_, errObj = over.call("tools/list", nil)
	if !contains(errObj, "maxProcesses") {
		t.Fatalf("a refused session's later request: %s", errObj)
	}
	over.s.Close()

	first.s.Close()
	watch.wait(t, "the first session's process stopped", func(st Status) bool { return st.Processes == 0 })
	next := newIsolatedClient(t, c, "next")
	if got := next.toolText("echo", map[string]any{"text": "hi"}); got != "hi" {
		t.Fatalf("echo = %q", got)
	}
}

// A crash of one session's process fails that session's calls only: the
// other session's call stays in flight on its untouched process.
func TestIsolatedCrashTouchesOnlyItsSession(t *testing.T) {
	opts, watch := isolatedOptions(t, 2)
	c := startTestServer(t, opts)
	calm := newIsolatedClient(t, c, "calm")
	crashy := newIsolatedClient(t, c, "crashy")
	calmProc := calm.s.Child()
	pid := calmProc.Status().Pid
	_, slow := calm.request("tools/call", map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 60000}})
	waitPending(t, calmProc, 1)

	_, errObj := crashy.call("tools/call", map[string]any{"name": "crash", "arguments": map[string]any{"code": 3}})
	if errObj == nil {
		t.Fatal("the crashing call got a result")
	}
	crashProc := crashy.s.Child()
	watch.wait(t, "the crashed process restarted", func(Status) bool {
		st := crashProc.Status()
		return st.Restarts >= 1 && st.Phase == PhaseReady
	})
	select {
	case resp := <-slow:
		t.Fatalf("the other session's call ended: %s", resp)
	default:
	}
	if st := calmProc.Status(); st.Pid != pid || st.Restarts != 0 || sessionPending(calmProc) != 1 {
		t.Fatalf("the other session's process: pid %d (was %d), restarts %d, pending %d", st.Pid, pid, st.Restarts, sessionPending(calmProc))
	}
	if got := calm.toolText("echo", map[string]any{"text": "still here"}); got != "still here" {
		t.Fatalf("echo = %q", got)
	}
	if got := crashy.toolText("echo", map[string]any{"text": "back"}); got != "back" {
		t.Fatalf("echo after the restart = %q", got)
	}
	if st := c.Status(); st.Processes != 2 || st.Restarts != 0 {
		t.Fatalf("isolated server: processes %d, restarts %d", st.Processes, st.Restarts)
	}
}

// The tool filter of the isolated child applies in every session's process.
func TestIsolatedToolFilter(t *testing.T) {
	opts, _ := isolatedOptions(t, 2)
	c := startTestServer(t, opts)
	c.SetToolFilter(func(name string) bool { return name != "echo" })
	cl := newIsolatedClient(t, c, "a")
	_, errObj := cl.call("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "x"}})
	if !contains(errObj, "not available through this bridge") {
		t.Fatalf("denied tool in a session's process: %s", errObj)
	}
	res := cl.mustCall("tools/list", nil)
	if strings.Contains(string(res), `"echo"`) {
		t.Fatalf("tools/list shows the denied tool: %s", res)
	}
}

// NewSessionFor gives a process only to a session that opens with
// initialize; a 2026-era request (a session of one POST) is served by the
// warm instance.
func TestIsolatedNewSessionFor(t *testing.T) {
	opts, _ := isolatedOptions(t, 2)
	opts.Era = "" // detect: the test server speaks both eras
	c := startTestServer(t, opts)
	modern := &client{t: t, waiters: map[string]chan []byte{}, cond: make(chan struct{}, 1)}
	first := buildRequest([]byte(`"m1"`), "tools/call", []byte(`{"name":"echo","arguments":{"text":"x"},"_meta":{}}`))
	modern.s = c.NewSessionFor("m", first, modern.receive)
	t.Cleanup(modern.s.Close)
	if modern.s.Child() != c {
		t.Fatal("a session that does not open with initialize got a process of its own")
	}
	if got := modern.toolText("echo", map[string]any{"text": "warm"}); got != "warm" {
		t.Fatalf("echo on the warm instance = %q", got)
	}
	legacy := &client{t: t, waiters: map[string]chan []byte{}, cond: make(chan struct{}, 1)}
	legacy.s = c.NewSessionFor("l", buildRequest([]byte(`1`), "initialize", []byte(`{}`)), legacy.receive)
	t.Cleanup(legacy.s.Close)
	if legacy.s.Child() == c {
		t.Fatal("a session that opens with initialize was not given a process")
	}
	if st := c.Status(); st.Processes != 1 {
		t.Fatalf("processes = %d, want 1", st.Processes)
	}
}

// modernPost is one POST of a 2026-era client as the relay and bridge make
// it: a session of its own, opened with NewSessionFor, whose process is
// waited for as the bridge does; the request is handled and its answer
// comes on the channel.
func modernPost(t *testing.T, c *Child, name, method string, params map[string]any) (*client, <-chan []byte) {
	t.Helper()
	cl := &client{t: t, waiters: map[string]chan []byte{}, cond: make(chan struct{}, 1)}
	id := strconv.Quote(name)
	p, _ := json.Marshal(params)
	raw := buildRequest([]byte(id), method, p)
	cl.s = c.NewSessionFor(name, raw, cl.receive)
	t.Cleanup(cl.s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.s.Child().WaitReady(ctx); err != nil {
		t.Fatalf("%s's process: %v", name, err)
	}
	ch := make(chan []byte, 1)
	cl.mu.Lock()
	cl.waiters[id] = ch
	cl.mu.Unlock()
	if err := cl.s.Handle(raw); err != nil {
		t.Fatal(err)
	}
	return cl, ch
}

// answerOf waits for a POST's answer.
func answerOf(t *testing.T, ch <-chan []byte) []byte {
	t.Helper()
	select {
	case resp := <-ch:
		return resp
	case <-time.After(30 * time.Second):
		t.Fatal("no answer within 30s")
	}
	return nil
}

// Isolation makes a 2025-era child's server→client requests exact for
// 2026-era clients too. On a shared child two of their calls in flight make
// the child's sampling request ambiguous; on an isolated one each call that
// may ask for input runs on a pooled process with no other call, gets its
// own input_required, and its retry — on another one-POST session, as the
// relay sends it — reaches the process that holds it. Busy processes count
// against maxProcesses (past it the warm instance serves the call); an idle
// one is reused, and stopped after PooledIdle.
func TestIsolatedModernCallsGetTheirOwnInput(t *testing.T) {
	meta := capsMeta("m", allInputCaps)
	sample := func(prompt string) map[string]any {
		return map[string]any{"_meta": meta, "name": "sample", "arguments": map[string]any{"prompt": prompt}}
	}

	shared := startTestServer(t, testOptions(t), "-era", "legacy")
	_, a := modernPost(t, shared, "shared-a", "tools/call", sample("prompt a"))
	_, b := modernPost(t, shared, "shared-b", "tools/call", sample("prompt b"))
	if ra, rb := answerOf(t, a), answerOf(t, b); !contains(ra, "ambiguous") && !contains(rb, "ambiguous") {
		t.Fatalf("shared child, two 2026 sample calls in flight: %s and %s; want the ambiguity error", ra, rb)
	}

	opts, watch := isolatedOptions(t, 2)
	opts.PooledIdle = 2 * time.Second
	c := startTestServer(t, opts, "-era", "legacy")
	type held struct {
		proc       *Child
		key, state string
	}
	calls := map[string]*held{}
	var posts []*client
	chans := map[string]<-chan []byte{}
	for _, name := range []string{"a", "b"} {
		cl, ch := modernPost(t, c, name, "tools/call", sample("prompt "+name))
		if cl.s.Child() == c {
			t.Fatalf("call %s was served by the warm instance", name)
		}
		posts = append(posts, cl)
		chans[name] = ch
		calls[name] = &held{proc: cl.s.Child()}
	}
	// Both calls are in flight at once: each stays held until its retry.
	for name, h := range calls {
		res := answerOf(t, chans[name])
		m, _ := parseMessage(res)
		if m.err != nil {
			t.Fatalf("call %s: %s", name, res)
		}
		h.key, h.state = inputRequired(t, m.result, "sampling/createMessage")
		other := map[string]string{"a": "b", "b": "a"}[name]
		if !contains(m.result, "prompt "+name) || contains(m.result, "prompt "+other) {
			t.Fatalf("call %s was asked %s", name, m.result)
		}
	}
	if calls["a"].proc == calls["b"].proc {
		t.Fatal("both calls ran on one process")
	}
	for _, cl := range posts {
		cl.s.Close() // the POSTs are answered: the relay ends their sessions
	}

	// Both processes hold a call waiting for its retry: a third call that
	// may ask is past maxProcesses and goes to the warm instance, where it
	// is the one call in flight.
	over, ch := modernPost(t, c, "over", "tools/call", sample("prompt over"))
	if over.s.Child() != c {
		t.Fatal("a call past maxProcesses got a process")
	}
	m, _ := parseMessage(answerOf(t, ch))
	if _, state := inputRequired(t, m.result, "sampling/createMessage"); !c.route.holds(state) {
		t.Fatal("the call past maxProcesses is not held by the warm instance")
	}
	over.s.Close()

	pids := map[int]bool{}
	for _, name := range []string{"b", "a"} {
		h := calls[name]
		retry := sample("prompt " + name)
		retry["inputResponses"] = map[string]any{h.key: map[string]any{"role": "assistant", "model": "m", "content": map[string]any{"type": "text", "text": "answer for " + name}}}
		retry["requestState"] = h.state
		cl, ch := modernPost(t, c, name+"-retry", "tools/call", retry)
		if cl.s.Child() != h.proc {
			t.Fatalf("the retry of %s went to another process", name)
		}
		if resp := answerOf(t, ch); !contains(resp, `"answer for `+name+`"`) || contains(resp, `"isError":true`) {
			t.Fatalf("retry of %s = %s", name, resp)
		}
		pids[h.proc.Status().Pid] = true
		cl.s.Close()
	}

	// An idle process is reused: no third one starts.
	cl, ch := modernPost(t, c, "again", "tools/call", map[string]any{"_meta": meta, "name": "echo", "arguments": map[string]any{"text": "again"}})
	if !pids[cl.s.Child().Status().Pid] {
		t.Fatal("a call while a pooled process is idle started another")
	}
	if resp := answerOf(t, ch); !contains(resp, `"again"`) {
		t.Fatalf("echo = %s", resp)
	}
	if st := c.Status(); st.Processes != 2 {
		t.Fatalf("processes = %d, want 2", st.Processes)
	}
	cl.s.Close()
	watch.wait(t, "the idle pooled processes stopped", func(st Status) bool { return st.Processes == 0 && st.Phase == PhaseReady })
}
