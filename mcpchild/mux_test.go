package mcpchild

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testbin"
	"github.com/tether-dev/tether/internal/testservers/schema"
)

func TestInitializeAnsweredFromCacheAndEcho(t *testing.T) {
	c := startTestServer(t, testOptions(t))
	pid := c.Status().Pid
	for i := range 3 {
		cl := newClient(t, c, fmt.Sprintf("s%d", i))
		res := cl.initialize("2025-06-18")
		if !contains(res, `"tether-testserver"`) {
			t.Fatalf("initialize result lacks the server's info: %s", res)
		}
		if got := cl.toolText("echo", map[string]any{"text": "hi"}); got != "hi" {
			t.Fatalf("echo = %q", got)
		}
	}
	st := c.Status()
	if st.Pid != pid || st.Restarts != 0 {
		t.Fatalf("child was restarted by session initializes: pid %d→%d, restarts %d", pid, st.Pid, st.Restarts)
	}
	if st.Phase != PhaseReady || st.Era != EraBoth || st.ToolCount < 10 {
		t.Fatalf("status = %+v", st)
	}
}

func TestManySessionsConcurrentCallsNeverCross(t *testing.T) {
	c := startTestServer(t, testOptions(t))
	const sessions, calls = 8, 40
	var wg sync.WaitGroup
	for i := range sessions {
		cl := newClient(t, c, fmt.Sprintf("s%d", i))
		cl.initialize("2025-11-25")
		for j := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				want := fmt.Sprintf("session %d call %d", i, j)
				_, ch := cl.request("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": want}})
				select {
				case resp := <-ch:
					if !contains(resp, want) {
						t.Errorf("session %d got someone else's answer: %s", i, truncate(string(resp), 200))
					}
				case <-time.After(30 * time.Second):
					t.Errorf("session %d call %d: no answer", i, j)
				}
			}()
		}
	}
	wg.Wait()
	if left := sessionPending(c); left != 0 {
		t.Fatalf("%d requests still pending after all answers", left)
	}
}

func TestProgressReachesOnlyTheSessionThatAsked(t *testing.T) {
	c := startTestServer(t, testOptions(t))
	a, b := newClient(t, c, "a"), newClient(t, c, "b")
	a.initialize("2025-11-25")
	b.initialize("2025-11-25")
	// Both use the same token: the bridge must keep them apart.
	params := func(tok string) map[string]any {
		return map[string]any{"name": "progress", "arguments": map[string]any{"steps": 3, "ms": 1},
			"_meta": map[string]any{"progressToken": tok}}
	}
	idA, chA := a.request("tools/call", params("tok"))
	res := b.mustCall("tools/call", params("tok"))
	if !contains(res, "done") {
		t.Fatalf("b: %s", res)
	}
	<-chA
	count := func(cl *client, wantRelated string) int {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		n := 0
		for _, d := range cl.other {
			m, _ := parseMessage(d.msg)
			if m.method != "notifications/progress" {
				continue
			}
			n++
			if tok := field(m.params, "progressToken"); string(tok) != `"tok"` {
				t.Errorf("progress token %s, want the session's own \"tok\"", tok)
			}
			if wantRelated != "" && string(d.related) != wantRelated {
				t.Errorf("progress related to %s, want %s", d.related, wantRelated)
			}
		}
		return n
	}
	if n := count(a, idA); n != 3 {
		t.Fatalf("session a got %d progress notifications, want 3", n)
	}
	if n := count(b, ""); n != 3 {
		t.Fatalf("session b got %d progress notifications, want 3", n)
	}
}

func TestCancelAndCloseForgetInFlightRequests(t *testing.T) {
	c := startTestServer(t, testOptions(t))
	cl := newClient(t, c, "a")
	cl.initialize("2025-11-25")
	id, ch := cl.request("tools/call", map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 60000}})
	waitPending(t, c, 1)
	if err := cl.s.Handle(buildNotification("notifications/cancelled", []byte(`{"requestId":`+id+`,"reason":"user"}`))); err != nil {
		t.Fatal(err)
	}
	waitPending(t, c, 0)
	select {
	case resp := <-ch:
		t.Fatalf("a cancelled request was answered: %s", resp)
	default:
	}
	if got := cl.toolText("echo", map[string]any{"text": "after"}); got != "after" {
		t.Fatalf("echo after cancel = %q", got)
	}
	// Closing a session cancels what it has in flight.
	other := newClient(t, c, "b")
	other.request("tools/call", map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 60000}})
	waitPending(t, c, 1)
	other.s.Close()
	waitPending(t, c, 0)
}

// sessionPending counts requests of sessions in flight at the child.
func sessionPending(c *Child) int {
	return c.route.sessionRequests()
}

func waitPending(t *testing.T, c *Child, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := sessionPending(c)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending = %d, want %d", got, n)
		}
		time.Sleep(time.Millisecond) // polling internal state: no event exists for it
	}
}

// answerRoots waits for a roots/list request on cl, checks it is related to
// callID, and answers it.
func answerRoots(t *testing.T, cl *client, callID string) {
	t.Helper()
	req := cl.waitOther("roots/list request", methodIs("roots/list"))
	if string(req.related) != callID {
		t.Fatalf("roots/list related to %s, want the tool call %s", req.related, callID)
	}
	m, _ := parseMessage(req.msg)
	if err := cl.s.Handle(buildResponse(m.id, []byte(`{"roots":[{"uri":"file:///work/a"},{"uri":"file:///work/b"}]}`), nil)); err != nil {
		t.Fatal(err)
	}
}

// A 2026 child asks for input with an input_required result; a 2025 client
// sees an ordinary roots/list request and the call completes. Routing is
// exact even while another session has a call in flight.
func TestInputRequestsFromA2026ChildReachTheCallingSession(t *testing.T) {
	opts := testOptions(t)
	opts.Era = Era2026 // a child spoken to in 2026 only (mcp.json "era": "2026")
	c := startTestServer(t, opts)
	if era := c.Status().Era; era != Era2026 {
		t.Fatalf("era = %q, want 2026", era)
	}
	other := newClient(t, c, "b")
	other.initialize("2025-11-25")
	other.request("tools/call", map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 60000}})
	cl := newClient(t, c, "a")
	cl.initialize("2025-11-25")
	callID, ch := cl.request("tools/call", map[string]any{"name": "roots", "arguments": map[string]any{}})
	answerRoots(t, cl, callID)
	if resp := <-ch; !contains(resp, "file:///work/a,file:///work/b") {
		t.Fatalf("roots tool result: %s", resp)
	}
	// elicitation the same way
	callID, ch = cl.request("tools/call", map[string]any{"name": "elicit", "arguments": map[string]any{"message": "ok?"}})
	req := cl.waitOther("elicitation request", methodIs("elicitation/create"))
	if string(req.related) != callID {
		t.Fatalf("elicitation related to %s, want %s", req.related, callID)
	}
	m, _ := parseMessage(req.msg)
	cl.s.Handle(buildResponse(m.id, []byte(`{"action":"accept","content":{"answer":"yes"}}`), nil))
	if resp := <-ch; !contains(resp, "yes") {
		t.Fatalf("elicit tool result: %s", resp)
	}
}

// A child pinned to 2025 sends real server→client requests: routed to the
// one session with a call in flight, and answered with an error (never
// silence) when that is ambiguous.
func TestServerToClientRequestsFromA2025Child(t *testing.T) {
	opts := testOptions(t)
	opts.Era = Era2025
	c := startTestServer(t, opts)
	if era := c.Status().Era; era != Era2025 {
		t.Fatalf("era = %q, want 2025", era)
	}
	cl := newClient(t, c, "a")
	cl.initialize("2025-11-25")
	callID, ch := cl.request("tools/call", map[string]any{"name": "roots", "arguments": map[string]any{}})
	answerRoots(t, cl, callID)
	if resp := <-ch; !contains(resp, "file:///work/a,file:///work/b") {
		t.Fatalf("roots tool result: %s", resp)
	}
	other := newClient(t, c, "b")
	other.initialize("2025-11-25")
	other.request("tools/call", map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 60000}})
	waitPending(t, c, 1)
	res, errObj := cl.call("tools/call", map[string]any{"name": "roots", "arguments": map[string]any{}})
	if !contains(res, "ambiguous") && !contains(errObj, "ambiguous") {
		t.Fatalf("roots with two sessions in flight: %s %s", res, errObj)
	}
}

// TestCrashFailsPendingAtOnceThenRestarts: a crash fails the calls in
// flight at once, with a classified error (how it exited, no stderr) unless
// the server shares its stderr; the server comes back.
func TestCrashFailsPendingAtOnceThenRestarts(t *testing.T) {
	for _, share := range []bool{false, true} {
		t.Run(fmt.Sprintf("shareStderr=%v", share), func(t *testing.T) { testCrashFailsPending(t, share) })
	}
}

func testCrashFailsPending(t *testing.T, share bool) {
	statuses := make(chan Status, 100)
	opts := testOptions(t)
	opts.OnStatus = func(s Status) { statuses <- s }
	bin := testbin.Build(t, testServerPkg)
	c := startChild(t, Spec{Name: "test", Command: bin, ShareStderr: share}, opts)
	cl := newClient(t, c, "a")
	cl.initialize("2025-11-25")
	_, slow := cl.request("tools/call", map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 60000}})
	start := time.Now()
	cl.request("tools/call", map[string]any{"name": "crash", "arguments": map[string]any{"code": 3}})
	select {
	case resp := <-slow:
		want, notWant := []string{`mcp server \"test\" exited with status 3`}, "crashing now"
		if share {
			want, notWant = []string{`mcp server \"test\"`, "exit status 3", "crashing now"}, "exited with status"
		}
		for _, w := range want {
			if !contains(resp, w) {
				t.Errorf("crash error %s lacks %q", resp, w)
			}
		}
		if contains(resp, notWant) {
			t.Errorf("crash error %s has %q", resp, notWant)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("pending call failed after %s, want at once", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("pending call not failed after the crash")
	}
	waitStatus(t, statuses, func(s Status) bool { return s.Phase == PhaseReady && s.Restarts == 1 })
	if got := cl.toolText("echo", map[string]any{"text": "back"}); got != "back" {
		t.Fatalf("echo after restart = %q", got)
	}
}

func TestCrashLoopIsVisibleAndRestartLeavesIt(t *testing.T) {
	statuses := make(chan Status, 1000)
	opts := testOptions(t)
	opts.OnStatus = func(s Status) { statuses <- s }
	opts.CrashLoopCount = 3
	bin := "/bin/sh"
	c := New(Spec{Name: "flaky", Command: bin, Args: []string{"-c", "echo boom >&2; exit 7"}}, opts)
	c.Start(t.Context())
	defer c.Stop(t.Context())
	st := waitStatus(t, statuses, func(s Status) bool { return s.Phase == PhaseCrashLoop })
	if !strings.Contains(st.LastError, "exit status 7") || !strings.Contains(st.LastError, "boom") || st.Restarts != 2 {
		t.Fatalf("crash-loop status = %+v", st)
	}
	if want := (Failure{Kind: FailExited, ExitCode: 7, Crashes: 3}); st.Failure != want {
		t.Errorf("failure = %+v, want %+v", st.Failure, want)
	}
	remote := st.RemoteError(false)
	if remote != `mcp server "flaky" exited with status 7; it failed 3 times in a row and waits for a restart` {
		t.Errorf("remote error = %q", remote)
	}
	if shared := st.RemoteError(true); shared != st.LastError {
		t.Errorf("shared remote error = %q, want the full %q", shared, st.LastError)
	}
	c.Restart()
	waitStatus(t, statuses, func(s Status) bool { return s.Phase == PhaseStarting && s.Restarts == 3 })
}

func waitStatus(t *testing.T, ch <-chan Status, ok func(Status) bool) Status {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case s := <-ch:
			if ok(s) {
				return s
			}
		case <-timeout:
			t.Fatal("timed out waiting for a status")
		}
	}
}

func TestHugeMessagesPassAndOversizedOnesFailClearly(t *testing.T) {
	opts := testOptions(t)
	opts.MaxMessageBytes = 12 << 20
	c := startTestServer(t, opts)
	cl := newClient(t, c, "a")
	cl.initialize("2025-11-25")
	const big = 10 << 20
	text := cl.toolText("huge", map[string]any{"bytes": big})
	if len(text) != big || strings.Trim(text, "x") != "" {
		t.Fatalf("10 MiB result came back as %d bytes", len(text))
	}
	_, errObj := cl.call("tools/call", map[string]any{"name": "huge", "arguments": map[string]any{"bytes": 13 << 20}})
	if !contains(errObj, "over the 12582912 byte cap") {
		t.Fatalf("oversized result error = %s", errObj)
	}
	if got := cl.toolText("echo", map[string]any{"text": "still here"}); got != "still here" {
		t.Fatalf("echo after oversize = %q", got)
	}
}

func TestNonJSONStdoutLinesAreSkipped(t *testing.T) {
	c := startTestServer(t, testOptions(t))
	cl := newClient(t, c, "a")
	cl.initialize("2025-11-25")
	if got := cl.toolText("garbage", map[string]any{}); got != "ok" {
		t.Fatalf("garbage = %q", got)
	}
	if got := cl.toolText("echo", map[string]any{"text": "x"}); got != "x" {
		t.Fatalf("echo = %q", got)
	}
	if st := c.Status(); st.Restarts != 0 {
		t.Fatalf("garbage on stdout restarted the child: %+v", st)
	}
}

func TestToolsPaginationAndListChanged(t *testing.T) {
	statuses := make(chan Status, 100)
	opts := testOptions(t)
	opts.OnStatus = func(s Status) { statuses <- s }
	c := startTestServer(t, opts, "-extra-tools", "30", "-page-size", "7")
	base := c.Status().ToolCount
	if base < 40 {
		t.Fatalf("tool count %d: pages after the first were not followed", base)
	}
	cl := newClient(t, c, "a")
	cl.initialize("2025-11-25")
	cl.toolText("add_tool", map[string]any{"name": "fresh"})
	cl.waitOther("tools/list_changed", methodIs("notifications/tools/list_changed"))
	waitStatus(t, statuses, func(s Status) bool { return s.ToolCount == base+1 })
}

func TestToolSchemasPassByteFaithfully(t *testing.T) {
	c := startTestServer(t, testOptions(t))
	var found bool
	for _, tool := range c.Tools() {
		if !contains(tool, `"schema_tool"`) {
			continue
		}
		found = true
		var got, want any
		_ = json.Unmarshal(field(tool, "inputSchema"), &got)
		_ = json.Unmarshal([]byte(schema.SchemaToolInput), &want)
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Fatalf("schema changed:\n got %s\nwant %s", g, w)
		}
		for _, k := range []string{`"$schema"`, `"$defs"`, `"additionalProperties"`, `"$ref"`} {
			if !contains(tool, k) {
				t.Fatalf("schema lost %s: %s", k, tool)
			}
		}
	}
	if !found {
		t.Fatal("schema_tool not listed")
	}
}

func TestLogNotificationsFilteredPerSession(t *testing.T) {
	c := startTestServer(t, testOptions(t))
	a, b := newClient(t, c, "a"), newClient(t, c, "b")
	a.initialize("2025-11-25")
	b.initialize("2025-11-25")
	a.mustCall("logging/setLevel", map[string]any{"level": "warning"})
	a.toolText("log", map[string]any{"level": "info", "text": "quiet"})
	a.toolText("log", map[string]any{"level": "error", "text": "loud"})
	d := a.waitOther("log notification", methodIs("notifications/message"))
	if !contains(d.msg, "loud") {
		t.Fatalf("first log a received = %s, want the error-level one only", d.msg)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range b.other {
		if contains(d.msg, "notifications/message") {
			t.Fatalf("session without setLevel received a log: %s", d.msg)
		}
	}
}

// A server→client request reaches an older client in its version's shape:
// the test server's elicitation/create carries mode "form" (2025-11-25),
// which a 2025-06-18 client's schema does not have. Both ways a request
// reaches a 2025 session: a 2025 child's own request, and a 2026 child's
// input_required turned into one (mrtr.go).
func TestServerToClientRequestsAreShapedForOlderClients(t *testing.T) {
	for _, era := range []Era{Era2025, Era2026} {
		t.Run(string(era), func(t *testing.T) {
			opts := testOptions(t)
			opts.Era = era
			c := startTestServer(t, opts)
			for _, v := range []string{v20250618, v20251125} {
				cl := newClient(t, c, "s"+v)
				cl.initialize(v)
				callID, ch := cl.request("tools/call", map[string]any{"name": "elicit", "arguments": map[string]any{"message": "ok?"}})
				req := cl.waitOther("elicitation request", methodIs("elicitation/create"))
				if string(req.related) != callID {
					t.Fatalf("elicitation related to %s, want %s", req.related, callID)
				}
				m, _ := parseMessage(req.msg)
				_, hasMode := jsonMap(t, m.params)["mode"]
				if want := v >= v20251125; hasMode != want {
					t.Fatalf("%s client: elicitation params %s: mode present = %v, want %v", v, m.params, hasMode, want)
				}
				cl.s.Handle(buildResponse(m.id, []byte(`{"action":"accept","content":{"answer":"yes"}}`), nil))
				if resp := <-ch; !contains(resp, "yes") {
					t.Fatalf("elicit tool result: %s", resp)
				}
			}
		})
	}
}

func jsonMap(t *testing.T, b []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return m
}
