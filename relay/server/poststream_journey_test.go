package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// cutProxy carries TCP connections to target. cut closes every one it
// carries, as a network blip does, and can hold new ones until letThrough.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	gate  chan struct{} // closed: new connections go through
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: make(map[net.Conn]struct{}), gate: make(chan struct{})}
	close(p.gate)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.letThrough()
		p.cut(false)
	})
	return p
}

func (p *cutProxy) url(path string) string { return "http://" + p.ln.Addr().String() + path }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.carry(c)
	}
}

func (p *cutProxy) carry(c net.Conn) {
	p.mu.Lock()
	gate := p.gate
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	<-gate
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	_, live := p.conns[c]
	if live {
		p.conns[u] = struct{}{}
	}
	p.mu.Unlock()
	if !live { // cut while it waited
		u.Close()
		return
	}
	go func() {
		io.Copy(u, c)
		u.Close()
		c.Close()
	}()
	io.Copy(c, u)
	c.Close()
	u.Close()
}

// cut closes every connection; with hold, new ones wait for letThrough.
func (p *cutProxy) cut(hold bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	if hold {
		p.gate = make(chan struct{})
	}
}

func (p *cutProxy) letThrough() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// addStepTool gives the fake bridge's server a tool that reports progress
// "step 1", waits for the test, "step 2", waits, "step 3", and returns
// "all steps done"; cancelled, it returns at once.
func addStepTool(fb *fakeBridge, step <-chan struct{}) {
	mcp.AddTool(fb.srv, &mcp.Tool{Name: "steps", Description: "three progress steps, paced by the test"},
		func(ctx context.Context, req *mcp.CallToolRequest, in noIn) (*mcp.CallToolResult, any, error) {
			tok := req.Params.GetProgressToken()
			for i := 1; i <= 3; i++ {
				err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
					ProgressToken: tok, Progress: float64(i), Total: 3, Message: fmt.Sprintf("step %d", i)})
				if err != nil {
					return nil, nil, err
				}
				if i == 3 {
					break
				}
				select {
				case <-step:
				case <-ctx.Done():
					return nil, nil, ctx.Err()
				}
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "all steps done"}}}, nil, nil
		})
}

// streamRelay starts a relay whose stream hooks go to the returned
// channel, and a fake bridge for alice with the steps tool.
func streamRelay(t *testing.T, grace time.Duration, limits Limits) (*testRelay, *fakeBridge, <-chan string, chan struct{}) {
	t.Helper()
	hooks := make(chan string, 64)
	srv := &Server{Verifier: &Verifier{Secret: testSecret}, CallTimeout: 30 * time.Second, ResumeGrace: grace, Limits: limits,
		onStream: func(ev string) { hooks <- ev }}
	r := startRelay(t, srv)
	fb := dialFakeBridge(t, r, "alice")
	step := make(chan struct{})
	addStepTool(fb, step)
	return r, fb, hooks, step
}

// expectNext reads the next value from ch (a stream hook, a progress
// message) and fails unless it is want.
func expectNext(t *testing.T, ch <-chan string, what, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("%s %q, want %q", what, got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s %q", what, want)
	}
}

func expectHook(t *testing.T, hooks <-chan string, want string) {
	t.Helper()
	expectNext(t, hooks, "stream hook", want)
}

func noHook(t *testing.T, hooks <-chan string) {
	t.Helper()
	select {
	case got := <-hooks:
		t.Fatalf("unexpected stream hook %q", got)
	default:
	}
}

func releaseStep(t *testing.T, step chan<- struct{}) {
	t.Helper()
	select {
	case step <- struct{}{}:
	case <-time.After(10 * time.Second):
		t.Fatal("the tool never waited for the next step")
	}
}

func expectProgress(t *testing.T, progress <-chan string, want string) {
	t.Helper()
	expectNext(t, progress, "progress", want)
}

type callResult struct {
	res *mcp.CallToolResult
	err error
}

// startSteps calls the steps tool through a go-sdk client in the
// background; progress messages arrive on the returned channel.
func startSteps(t *testing.T, url, tok, version string) (*mcp.ClientSession, <-chan string, <-chan callResult) {
	t.Helper()
	progress := make(chan string, 16)
	cs := connectClient(t, url, tok, version, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			progress <- req.Params.Message
		},
	})
	done := make(chan callResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "steps", Arguments: map[string]any{}, Meta: mcp.Meta{"progressToken": "steps"}})
		done <- callResult{res, err}
	}()
	return cs, progress, done
}

func awaitCall(t *testing.T, done <-chan callResult) callResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("the call never returned")
	}
	return callResult{}
}

// TestResumeAfterCut: a real go-sdk client calls a slow tool with progress
// through a TCP proxy that cuts every connection after the first progress
// message. The relay holds the stream; the event sent during the cut is
// kept; the client's GET with Last-Event-ID gets it and then the rest of
// the stream live, and the call completes with its result. The bridge
// never hears of a cancel.
func TestResumeAfterCut(t *testing.T) {
	for _, version := range []string{"2025-11-25", "2025-06-18", "2025-03-26"} {
		t.Run(version, func(t *testing.T) {
			r, fb, hooks, step := streamRelay(t, 0, Limits{})
			px := newCutProxy(t, r.ts.Listener.Addr().String())
			_, progress, done := startSteps(t, px.url("/mcp/alice/everything"), mustToken(t, "alice", ScopeClient), version)

			expectProgress(t, progress, "step 1")
			px.cut(true)
			expectHook(t, hooks, "held")
			releaseStep(t, step) // step 2, sent while nobody is connected
			expectHook(t, hooks, "buffered")
			px.letThrough()
			expectHook(t, hooks, "resumed")
			expectProgress(t, progress, "step 2")
			releaseStep(t, step) // step 3 and the result, live on the GET

			got := awaitCall(t, done)
			if got.err != nil {
				t.Fatalf("the call failed across the cut: %v", got.err)
			}
			if text := toolText(t, got.res); text != "all steps done" {
				t.Fatalf("result %q", text)
			}
			expectProgress(t, progress, "step 3")
			select {
			case p := <-fb.Cancelled:
				t.Fatalf("the bridge was told to cancel a call that was resumed: %s", p)
			default:
			}
			if m := r.metrics(t); !strings.Contains(m, "tether_relay_streams_resumed_total 1\n") {
				t.Fatalf("metrics do not count the resume:\n%s", m)
			}
			noHook(t, hooks)
		})
	}
}

// TestCutWithoutResume: with resumption off (ResumeGrace < 0, the relay
// before this feature) the same cut loses the call: the client's call
// fails and the bridge is told to cancel.
func TestCutWithoutResume(t *testing.T) {
	r, fb, hooks, _ := streamRelay(t, -1, Limits{})
	px := newCutProxy(t, r.ts.Listener.Addr().String())
	_, progress, done := startSteps(t, px.url("/mcp/alice/everything"), mustToken(t, "alice", ScopeClient), "2025-11-25")

	expectProgress(t, progress, "step 1")
	px.cut(false)
	if got := awaitCall(t, done); got.err == nil {
		t.Fatalf("the call succeeded across the cut without resumption: %+v", got.res)
	}
	select {
	case p := <-fb.Cancelled:
		if !strings.Contains(string(p), "client") {
			t.Fatalf("cancel params = %s", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the bridge never got notifications/cancelled")
	}
	noHook(t, hooks)
}

// TestResumeGraceEnds: a client that does not come back within the grace
// loses the call: the bridge gets notifications/cancelled once the grace
// is over, not before. When the client does come back later, its call
// fails with a JSON-RPC error saying so — the session lives on.
func TestResumeGraceEnds(t *testing.T) {
	const grace = 300 * time.Millisecond
	r, fb, hooks, _ := streamRelay(t, grace, Limits{})
	px := newCutProxy(t, r.ts.Listener.Addr().String())
	cs, progress, done := startSteps(t, px.url("/mcp/alice/everything"), mustToken(t, "alice", ScopeClient), "2025-11-25")

	expectProgress(t, progress, "step 1")
	px.cut(true)
	expectHook(t, hooks, "held")
	held := time.Now()
	select {
	case p := <-fb.Cancelled:
		if d := time.Since(held); d < grace {
			t.Fatalf("cancelled %v after the stream was held, within the grace of %v", d, grace)
		}
		if !strings.Contains(string(p), "not resumed within") {
			t.Fatalf("cancel params = %s", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the bridge never got notifications/cancelled after the grace")
	}

	px.letThrough()
	got := awaitCall(t, done)
	if got.err == nil || !strings.Contains(got.err.Error(), "not resumed within") {
		t.Fatalf("late resume: err = %v, want the relay's error for the call", got.err)
	}
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "still here"}}); err != nil {
		t.Fatalf("the session did not survive a late resume: %v", err)
	}
	noHook(t, hooks)
}

// sseEvent is one event of an SSE stream.
type sseEvent struct{ id, data string }

// nextEvent reads the next SSE event with an id or data, skipping comments.
func nextEvent(t *testing.T, br *bufio.Reader) sseEvent {
	t.Helper()
	var ev sseEvent
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read SSE: %v (event so far %+v)", err, ev)
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if ev.id != "" || ev.data != "" {
				return ev
			}
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func resumeRequest(t *testing.T, hc *http.Client, url, sid, last string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(headerSession, sid)
	req.Header.Set("Last-Event-ID", last)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const stepsCall = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"steps","arguments":{},"_meta":{"progressToken":"p"}}}`

// TestResumeIsPerSession: a stream is resumed only by its own session and
// client token; another session (same token), another token of the same
// dev, and a key that names no stream learn nothing of it. A held stream
// keeps its POST's in-flight slot. A finished stream is replayed from the
// buffer.
func TestResumeIsPerSession(t *testing.T) {
	r, fb, hooks, step := streamRelay(t, 0, Limits{MaxInFlight: 1})
	url := r.mcpURL("alice", "everything")
	hc := authClient(mustToken(t, "alice", ScopeClient))
	sidA := openRaw(t, hc, url) // 2025-06-18: ids, no priming
	sidB := openRaw(t, hc, url)

	req, _ := http.NewRequest("POST", url, strings.NewReader(stepsCall))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", acceptBoth)
	req.Header.Set(headerSession, sidA)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	first := nextEvent(t, bufio.NewReader(resp.Body))
	if !strings.Contains(first.data, "step 1") {
		t.Fatalf("first event %+v, want step 1", first)
	}
	key, seq, ok := parseEventID(first.id)
	if !ok || seq != 1 {
		t.Fatalf("first event id %q, want <key>.1", first.id)
	}
	resp.Body.Close() // the cut
	expectHook(t, hooks, "held")

	// Held, the call still holds the token's one in-flight POST.
	busy, body := rawPost(t, hc, url, sidB, listBody)
	if busy.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a POST while the stream is held: %d %s, want 429", busy.StatusCode, body)
	}

	for _, c := range []struct {
		what   string
		hc     *http.Client
		sid    string
		last   string
		status int
	}{
		// The key carries the request id (7): a session that does not hold
		// the stream gets an error for the id it sent, nothing else.
		{"another session of the same token", hc, sidB, first.id, http.StatusOK},
		{"another client token of the same dev", authClient(mustToken(t, "alice", ScopeClient)), sidA, first.id, http.StatusNotFound},
		{"a key that names no stream", hc, sidA, eventID(newSessionID(), 1), http.StatusBadRequest},
		// What a client sees after a relay restart: its stream is not held
		// here, and it gets an error for that one call (a 400 would end a
		// go-sdk client's session).
		{"a stream this relay does not hold", hc, sidA, eventID(streamKey(json.RawMessage(`"lost-1"`)), 3), http.StatusOK},
	} {
		resp := resumeRequest(t, c.hc, url, c.sid, c.last)
		body := readAll(t, resp)
		if resp.StatusCode != c.status || strings.Contains(body, "step") || strings.Contains(body, key) {
			t.Fatalf("%s: %d %q, want %d and nothing of the stream", c.what, resp.StatusCode, body, c.status)
		}
		if c.status == http.StatusOK {
			id, _ := keyRequestID(strings.Split(c.last, ".")[0])
			if !strings.Contains(body, `"id":`+string(id)) || !strings.Contains(body, "no longer held") || !strings.Contains(body, `"error"`) {
				t.Fatalf("%s: %q, want an error for request %s", c.what, body, id)
			}
		}
	}
	noHook(t, hooks)
	select {
	case p := <-fb.Cancelled:
		t.Fatalf("a refused resume cancelled the call: %s", p)
	default:
	}

	get := resumeRequest(t, hc, url, sidA, first.id)
	if get.StatusCode != http.StatusOK || get.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("resume: %d %s", get.StatusCode, get.Header.Get("Content-Type"))
	}
	expectHook(t, hooks, "resumed")
	br := bufio.NewReader(get.Body)
	releaseStep(t, step)
	releaseStep(t, step)
	var got []sseEvent
	for i := 2; i <= 4; i++ {
		ev := nextEvent(t, br)
		if ev.id != eventID(key, i) {
			t.Fatalf("event %d: id %q, want %q", i, ev.id, eventID(key, i))
		}
		got = append(got, ev)
	}
	if !strings.Contains(got[0].data, "step 2") || !strings.Contains(got[1].data, "step 3") ||
		!strings.Contains(got[2].data, `"id":7`) || !strings.Contains(got[2].data, "all steps done") {
		t.Fatalf("resumed stream: %+v", got)
	}
	if rest, err := io.ReadAll(br); err != nil || strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("the stream did not end after the response: %q %v", rest, err)
	}

	// Finished: a resume within the grace is replayed from the buffer.
	again := resumeRequest(t, hc, url, sidA, eventID(key, 2))
	br = bufio.NewReader(again.Body)
	if ev := nextEvent(t, br); ev.id != eventID(key, 3) || !strings.Contains(ev.data, "step 3") {
		t.Fatalf("replay of a finished stream: %+v", ev)
	}
	if ev := nextEvent(t, br); ev.id != eventID(key, 4) || !strings.Contains(ev.data, "all steps done") {
		t.Fatalf("replay of a finished stream: %+v", ev)
	}
	// The slot is free again once the POST's handler is done.
	eventually(t, "a POST after the call", func() bool {
		resp, _ := rawPost(t, hc, url, sidB, listBody)
		return resp.StatusCode == http.StatusOK
	})
}

// postSteps starts the steps call on session sid over plain HTTP and
// returns its first event (step 1) and the response, whose body the
// caller closes to cut the stream.
func postSteps(t *testing.T, hc *http.Client, url, sid string) (*http.Response, *bufio.Reader, sseEvent) {
	t.Helper()
	return postStepsID(t, hc, url, sid, 7)
}

func postStepsID(t *testing.T, hc *http.Client, url, sid string, id int) (*http.Response, *bufio.Reader, sseEvent) {
	t.Helper()
	body := strings.Replace(stepsCall, `"id":7`, fmt.Sprintf(`"id":%d`, id), 1)
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", acceptBoth)
	req.Header.Set(headerSession, sid)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	ev := nextEvent(t, br)
	return resp, br, ev
}

// TestResumePriming: a 2025-11-25 stream starts with a priming event
// (<key>.0, no data). A resumed connection with events to replay starts
// with them (a priming id there would be newer than theirs, and a client
// cut right after it would skip them); one with nothing to replay gets a
// fresh priming id, newer than every id before, and the stream goes on
// after it.
func TestResumePriming(t *testing.T) {
	r, _, hooks, step := streamRelay(t, 0, Limits{})
	url := r.mcpURL("alice", "everything")
	hc := authClient(mustToken(t, "alice", ScopeClient))
	sid := openRawVersion(t, hc, url, "2025-11-25")

	resp, br, prime := postSteps(t, hc, url, sid)
	key, seq, ok := parseEventID(prime.id)
	if !ok || seq != 0 || prime.data != "" {
		t.Fatalf("first event %+v, want a priming event <key>.0 with no data", prime)
	}
	if ev := nextEvent(t, br); ev.id != eventID(key, 1) || !strings.Contains(ev.data, "step 1") {
		t.Fatalf("second event %+v, want step 1 as %s", ev, eventID(key, 1))
	}
	resp.Body.Close()
	expectHook(t, hooks, "held")
	releaseStep(t, step)
	expectHook(t, hooks, "buffered")

	get := resumeRequest(t, hc, url, sid, eventID(key, 1))
	expectHook(t, hooks, "resumed")
	if ev := nextEvent(t, bufio.NewReader(get.Body)); ev.id != eventID(key, 2) || !strings.Contains(ev.data, "step 2") {
		t.Fatalf("a resume with an event to replay starts with %+v, want step 2 as %s", ev, eventID(key, 2))
	}
	get.Body.Close()
	expectHook(t, hooks, "held")

	get = resumeRequest(t, hc, url, sid, eventID(key, 2))
	expectHook(t, hooks, "resumed")
	br = bufio.NewReader(get.Body)
	ev := nextEvent(t, br)
	_, pseq, ok := parseEventID(ev.id)
	if !ok || pseq <= 2 || ev.data != "" {
		t.Fatalf("a resume with nothing to replay starts with %+v, want a fresh priming id after .2", ev)
	}
	releaseStep(t, step)
	ev = nextEvent(t, br)
	if _, s3, _ := parseEventID(ev.id); s3 <= pseq || !strings.Contains(ev.data, "step 3") {
		t.Fatalf("after the priming %d: %+v, want step 3 with a newer id", pseq, ev)
	}
	if ev := nextEvent(t, br); !strings.Contains(ev.data, "all steps done") {
		t.Fatalf("then %+v, want the response", ev)
	}
}

// TestClientCancelEndsHeldStream: a client that cancels its request
// (notifications/cancelled) while the stream is held does not leave the
// call held for the grace: it ends at once, and the relay sends no cancel
// of its own. Nor is a stream held whose client cancelled it while still
// connected and then dropped the connection.
func TestClientCancelEndsHeldStream(t *testing.T) {
	r, fb, hooks, _ := streamRelay(t, 0, Limits{}) // the default grace, 60 s
	// stubborn reports progress, then ignores cancellation until the test
	// lets it go: its late answer cannot end the stream first.
	release := make(chan struct{})
	defer close(release)
	mcp.AddTool(fb.srv, &mcp.Tool{Name: "stubborn", Description: "progress, then wait for the test"},
		func(ctx context.Context, req *mcp.CallToolRequest, in noIn) (*mcp.CallToolResult, any, error) {
			req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: req.Params.GetProgressToken(), Progress: 1, Message: "started"})
			<-release
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "late"}}}, nil, nil
		})
	url := r.mcpURL("alice", "everything")
	hc := authClient(mustToken(t, "alice", ScopeClient))
	sid := openRaw(t, hc, url)
	call := func(id int) *http.Response {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"stubborn","arguments":{},"_meta":{"progressToken":"s%d"}}}`, id, id)
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", acceptBoth)
		req.Header.Set(headerSession, sid)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ev := nextEvent(t, bufio.NewReader(resp.Body)); !strings.Contains(ev.data, "started") {
			t.Fatalf("first event %+v", ev)
		}
		return resp
	}
	cancelCall := func(id int, reason string) {
		t.Helper()
		msg := fmt.Sprintf(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":%d,"reason":%q}}`, id, reason)
		if resp, body := rawPost(t, hc, url, sid, msg); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("cancel: %d %s", resp.StatusCode, body)
		}
		select {
		case p := <-fb.Cancelled:
			if !strings.Contains(string(p), reason) {
				t.Fatalf("the bridge got %s, want the client's own cancel", p)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the client's cancel never reached the bridge")
		}
	}
	ended := func(n int) {
		t.Helper()
		eventually(t, "the call ends", func() bool {
			return strings.Contains(r.metrics(t), fmt.Sprintf(`tether_relay_calls_total{status="cancelled"} %d`+"\n", n))
		})
		select {
		case p := <-fb.Cancelled:
			t.Fatalf("the relay sent a cancel of its own after the client's: %s", p)
		default:
		}
	}

	// Held, then cancelled.
	resp := call(1)
	resp.Body.Close()
	expectHook(t, hooks, "held")
	cancelCall(1, "user gave up")
	expectHook(t, hooks, "abandoned")
	ended(1)

	// Cancelled while connected, then dropped.
	resp = call(2)
	cancelCall(2, "changed my mind")
	expectHook(t, hooks, "abandoned")
	resp.Body.Close()
	ended(2)
	noHook(t, hooks)
}

// primedTransport passes requests on and reports, once per SSE answer to a
// POST, the first complete event the client has read from it.
type primedTransport struct {
	next  http.RoundTripper
	first chan string
}

func (p primedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := p.next.RoundTrip(req)
	if err == nil && req.Method == http.MethodPost && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body = &firstEventReader{ReadCloser: resp.Body, first: p.first}
	}
	return resp, err
}

type firstEventReader struct {
	io.ReadCloser
	first chan string
	seen  []byte
	done  bool
}

func (r *firstEventReader) Read(b []byte) (int, error) {
	n, err := r.ReadCloser.Read(b)
	if !r.done {
		r.seen = append(r.seen, b[:n]...)
		if i := strings.Index(string(r.seen), "\n\n"); i >= 0 {
			r.done = true
			r.first <- string(r.seen[:i+2])
		}
	}
	return n, err
}

// TestResumeQuietCallAfterCut: a long call that streams nothing before its
// result (no progress) is still answered as an SSE stream whose priming
// event comes at once, so a cut while the tool works is resumed like any
// other: the call completes with its result and the bridge never hears of
// a cancel.
func TestResumeQuietCallAfterCut(t *testing.T) {
	r, fb, hooks, step := streamRelay(t, 0, Limits{})
	mcp.AddTool(fb.srv, &mcp.Tool{Name: "quiet", Description: "no progress; returns when the test says"},
		func(ctx context.Context, req *mcp.CallToolRequest, in noIn) (*mcp.CallToolResult, any, error) {
			select {
			case <-step:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "quiet done"}}}, nil, nil
		})
	px := newCutProxy(t, r.ts.Listener.Addr().String())
	first := make(chan string, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "relay-test", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: px.url("/mcp/alice/everything"),
		HTTPClient: &http.Client{Transport: primedTransport{next: bearerTransport{mustToken(t, "alice", ScopeClient)}, first: first}}},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	done := make(chan callResult, 1)
	go func() {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "quiet", Arguments: map[string]any{}})
		done <- callResult{res, err}
	}()

	select {
	case ev := <-first:
		if !strings.HasPrefix(ev, "id: ") || !strings.HasSuffix(ev, ".0\ndata: \n\n") {
			t.Fatalf("the quiet call's stream starts with %q, not a priming event", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the quiet call was not answered as an SSE stream before its result")
	}
	px.cut(true)
	expectHook(t, hooks, "held")
	px.letThrough()
	expectHook(t, hooks, "resumed")
	releaseStep(t, step)

	got := awaitCall(t, done)
	if got.err != nil {
		t.Fatalf("the quiet call failed across the cut: %v", got.err)
	}
	if text := toolText(t, got.res); text != "quiet done" {
		t.Fatalf("result %q", text)
	}
	select {
	case p := <-fb.Cancelled:
		t.Fatalf("the bridge was told to cancel a call that was resumed: %s", p)
	default:
	}
	noHook(t, hooks)
}
