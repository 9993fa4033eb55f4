package mcpchild

import (
	"context"
	"fmt"
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
