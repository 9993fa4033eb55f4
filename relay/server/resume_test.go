package server

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tether-dev/tether/relay"
)

// relayAt serves a relay with the test secret on addr (":0" style for any
// port), so a test can stop it and start another on the same address.
func relayAt(t *testing.T, addr string, srv *Server) *testRelay {
	t.Helper()
	if srv == nil {
		srv = &Server{Verifier: &Verifier{Secret: testSecret}, CallTimeout: 10 * time.Second}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	r := &testRelay{srv: srv, ts: ts}
	t.Cleanup(r.stop)
	return r
}

// stop ends the relay as a process exit would: bridge sockets and every
// client connection (open GET streams included) are closed.
func (r *testRelay) stop() {
	r.srv.Close()
	r.ts.CloseClientConnections()
	r.ts.Close()
}

func echo(t *testing.T, cs *mcp.ClientSession, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": msg}})
	if err != nil {
		t.Fatalf("echo %q: %v", msg, err)
	}
	if got := toolText(t, res); got != msg {
		t.Fatalf("echo %q = %q", msg, got)
	}
}

// expectInits checks that the bridge saw exactly the initialize requests
// with these ids so far.
func expectInits(t *testing.T, fb *fakeBridge, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case id := <-fb.Inits:
			if string(id) != w {
				t.Fatalf("initialize id %s reached the bridge, want %s", id, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no initialize %s reached the bridge", w)
		}
	}
	select {
	case id := <-fb.Inits:
		t.Fatalf("an extra initialize (id %s) reached the bridge", id)
	default:
	}
}

var resumeID = `"` + resumeRequestID + `"`

// waitOffline waits until the relay has dropped dev's bridge. The relay
// has no event for it that a test can see, so this polls.
func waitOffline(t *testing.T, r *testRelay, dev string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.srv.liveBridge(dev) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the relay never noticed the bridge was gone")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSessionSurvivesRelayRestart: a go-sdk client session keeps its id
// and works after the relay process is replaced by another with the same
// secret on the same address; the client does not initialize again, the
// new bridge socket gets the relay's replayed initialize.
func TestSessionSurvivesRelayRestart(t *testing.T) {
	r1 := relayAt(t, "127.0.0.1:0", nil)
	addr := r1.ts.Listener.Addr().String()
	fb1 := dialFakeBridge(t, r1, "alice")
	cs := connectClient(t, r1.mcpURL("alice", "everything"), mustToken(t, "alice", ScopeClient), "2025-11-25", nil)
	id := cs.ID()
	if !strings.HasPrefix(id, sessionIDPrefix) {
		t.Fatalf("session id %q is not a signed one", id)
	}
	echo(t, cs, "before")
	expectInits(t, fb1, "1") // go-sdk's own initialize: numeric id 1

	r1.stop()
	r2 := relayAt(t, addr, nil)
	fb2 := dialFakeBridge(t, r2, "alice")
	echo(t, cs, "after the restart")
	if cs.ID() != id {
		t.Fatalf("session id changed: %q → %q", id, cs.ID())
	}
	expectInits(t, fb2, resumeID)
	echo(t, cs, "again")
	expectInits(t, fb2)
}

// TestSessionSurvivesBridgeReconnect: the bridge's socket is kicked; a call
// made while it is away waits for the next socket and succeeds there, in
// the same session, after one replayed initialize.
func TestSessionSurvivesBridgeReconnect(t *testing.T) {
	waits := make(chan string, 16)
	r := startRelay(t, &Server{Verifier: &Verifier{Secret: testSecret}, CallTimeout: 10 * time.Second,
		onWait: func(what string) {
			select {
			case waits <- what:
			default:
			}
		}})
	fb1 := dialFakeBridge(t, r, "alice")
	cs := connectClient(t, r.mcpURL("alice", "everything"), mustToken(t, "alice", ScopeClient), "2025-11-25", nil)
	id := cs.ID()
	echo(t, cs, "one")
	expectInits(t, fb1, "1")

	fb1.ws.Close()
	<-fb1.Gone
	waitOffline(t, r, "alice")

	done := make(chan struct{})
	go func() {
		defer close(done)
		echo(t, cs, "two")
	}()
	for w := range waits {
		if w == "bridge POST" {
			break
		}
	}
	fb2 := dialFakeBridge(t, r, "alice")
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the call made while the bridge was away never finished")
	}
	if cs.ID() != id {
		t.Fatalf("session id changed: %q → %q", id, cs.ID())
	}
	expectInits(t, fb2, resumeID)
	echo(t, cs, "three")
	expectInits(t, fb2)
}

// rawPost sends one JSON-RPC message with an optional session id.
func rawPost(t *testing.T, hc *http.Client, url, sid, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set(headerSession, sid)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readAll(t, resp)
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true}},"clientInfo":{"name":"raw","version":"1"}}}`
const listBody = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`

// openRaw initializes a session over plain HTTP and returns its id.
func openRaw(t *testing.T, hc *http.Client, url string) string {
	t.Helper()
	resp, body := rawPost(t, hc, url, "", initBody)
	sid := resp.Header.Get(headerSession)
	if resp.StatusCode != 200 || sid == "" {
		t.Fatalf("initialize: %d %q session %q", resp.StatusCode, body, sid)
	}
	rawPost(t, hc, url, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return sid
}

// expectGone checks the answer go-sdk reads as "session missing": 404 with
// a body that is not a JSON-RPC message.
func expectGone(t *testing.T, what string, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("%s: status %d %s, want 404", what, resp.StatusCode, body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil || m["jsonrpc"] != nil || m["error"] != "session not found" {
		t.Fatalf("%s: body %s, want a plain JSON error that is not JSON-RPC", what, body)
	}
}

// TestSessionIDsAreBound: a session id works only for its dev, server and
// token; forged, tampered and expired ids are 404.
func TestSessionIDsAreBound(t *testing.T) {
	r := newTestRelay(t, 10*time.Second)
	dialFakeBridge(t, r, "alice")
	dialFakeBridge(t, r, "bob")
	alice := authClient(mustToken(t, "alice", ScopeClient))
	url := r.mcpURL("alice", "everything")
	sid := openRaw(t, alice, url)
	if resp, body := rawPost(t, alice, url, sid, listBody); resp.StatusCode != 200 || !strings.Contains(body, `"echo"`) {
		t.Fatalf("own session: %d %s", resp.StatusCode, body)
	}

	bob := authClient(mustToken(t, "bob", ScopeClient))
	bobSID := openRaw(t, bob, r.mcpURL("bob", "everything"))
	// Another token of alice's (a different expiry makes it a different token).
	tok2, err := Issue(testSecret, "alice", ScopeClient, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	alice2 := authClient(tok2)

	sc, err := r.srv.signer.parse(sid)
	if err != nil {
		t.Fatal(err)
	}
	expired := *sc
	expired.Expires = time.Now().Add(-time.Second).Unix()
	expiredID, _ := r.srv.signer.sign(expired)
	otherServer := *sc
	otherServer.Server = "other"
	otherServerID, _ := r.srv.signer.sign(otherServer)
	forgedID, _ := newSessionSigner([]byte("not the relay's secret, 32 bytes")).sign(*sc)
	dot := strings.LastIndexByte(sid, '.')
	tampered := sid[:dot-2] + flip(sid[dot-2]) + sid[dot-1:]
	badSig := sid[:len(sid)-1] + flip(sid[len(sid)-1])

	cases := []struct {
		name string
		hc   *http.Client
		url  string
		sid  string
	}{
		{"bob's id on alice's path", alice, url, bobSID},
		{"alice's id with another token of alice", alice2, url, sid},
		{"alice's id at another server path", alice, r.mcpURL("alice", "everything2"), sid},
		{"an id signed for another server", alice, url, otherServerID},
		{"an expired id", alice, url, expiredID},
		{"an id signed with another key", alice, url, forgedID},
		{"a tampered payload", alice, url, tampered},
		{"a tampered signature", alice, url, badSig},
		{"random hex", alice, url, newSessionID()},
	}
	for _, c := range cases {
		resp, body := rawPost(t, c.hc, c.url, c.sid, listBody)
		if c.url != url {
			// Unknown server paths are 404 before any session check.
			if resp.StatusCode != 404 {
				t.Fatalf("%s: %d %s", c.name, resp.StatusCode, body)
			}
			continue
		}
		expectGone(t, c.name, resp, body)
	}
	// Bob's id on bob's path still works: nothing above ended it.
	if resp, body := rawPost(t, bob, r.mcpURL("bob", "everything"), bobSID, listBody); resp.StatusCode != 200 {
		t.Fatalf("bob's own session: %d %s", resp.StatusCode, body)
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// TestDeleteIsFinal: a DELETEd id is not resumed, whether it was live on
// the socket or not (after a bridge reconnect).
func TestDeleteIsFinal(t *testing.T) {
	r := newTestRelay(t, 10*time.Second)
	fb1 := dialFakeBridge(t, r, "alice")
	hc := authClient(mustToken(t, "alice", ScopeClient))
	url := r.mcpURL("alice", "everything")
	live, parked := openRaw(t, hc, url), openRaw(t, hc, url)

	del := func(sid string) int {
		req, _ := http.NewRequest("DELETE", url, nil)
		req.Header.Set(headerSession, sid)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := del(live); code != http.StatusNoContent {
		t.Fatalf("DELETE live session: %d", code)
	}
	resp, body := rawPost(t, hc, url, live, listBody)
	expectGone(t, "deleted live session", resp, body)

	fb1.ws.Close()
	<-fb1.Gone
	waitOffline(t, r, "alice")
	fb2 := dialFakeBridge(t, r, "alice")
	resp, body = rawPost(t, hc, url, live, listBody)
	expectGone(t, "deleted session after a reconnect", resp, body)
	if code := del(parked); code != http.StatusNoContent {
		t.Fatalf("DELETE parked session: %d", code)
	}
	resp, body = rawPost(t, hc, url, parked, listBody)
	expectGone(t, "deleted parked session", resp, body)
	expectInits(t, fb2) // neither was replayed
}

// TestIdleSessionNotResumed: a session idle past the timeout while its
// bridge was away is not resumed on the next socket.
func TestIdleSessionNotResumed(t *testing.T) {
	r := startRelay(t, &Server{Verifier: &Verifier{Secret: testSecret}, CallTimeout: 10 * time.Second, SessionIdleTimeout: time.Millisecond})
	fb1 := dialFakeBridge(t, r, "alice")
	hc := authClient(mustToken(t, "alice", ScopeClient))
	url := r.mcpURL("alice", "everything")
	sid := openRaw(t, hc, url)
	fb1.ws.Close()
	<-fb1.Gone
	waitOffline(t, r, "alice")
	time.Sleep(5 * time.Millisecond) // the idle time itself: nothing to await
	dialFakeBridge(t, r, "alice")
	resp, body := rawPost(t, hc, url, sid, listBody)
	expectGone(t, "idle session", resp, body)
}

// TestFailedInitializeHasNoSessionID: an initialize the bridge refuses
// (server not ready) gets its JSON-RPC error and no Mcp-Session-Id; a
// failed replay fails the call but leaves the session resumable.
func TestFailedInitializeHasNoSessionID(t *testing.T) {
	r := newTestRelay(t, 10*time.Second)
	fb := dialFakeBridge(t, r, "alice")
	hc := authClient(mustToken(t, "alice", ScopeClient))
	url := r.mcpURL("alice", "everything")
	fb.FailInit.Store(true)
	resp, body := rawPost(t, hc, url, "", initBody)
	if sid := resp.Header.Get(headerSession); sid != "" || !strings.Contains(body, "not ready") {
		t.Fatalf("failed initialize: session %q body %s", sid, body)
	}

	fb.FailInit.Store(false)
	sid := openRaw(t, hc, url)
	fb.ws.Close()
	<-fb.Gone
	waitOffline(t, r, "alice")
	fb2 := dialFakeBridge(t, r, "alice")
	fb2.FailInit.Store(true)
	resp, body = rawPost(t, hc, url, sid, listBody)
	if resp.StatusCode != 200 || !strings.Contains(body, "could not resume") || !strings.Contains(body, "not ready") {
		t.Fatalf("call during a failing replay: %d %s", resp.StatusCode, body)
	}
	fb2.FailInit.Store(false)
	resp, body = rawPost(t, hc, url, sid, listBody)
	if resp.StatusCode != 200 || !strings.Contains(body, `"echo"`) {
		t.Fatalf("call after the server became ready: %d %s", resp.StatusCode, body)
	}
	expectInits(t, fb2, resumeID, resumeID)
}

// TestInitializeWaitsForStart: an initialize for a server the catalog
// shows as starting waits for the catalog to say ready.
func TestInitializeWaitsForStart(t *testing.T) {
	waits := make(chan string, 16)
	r := startRelay(t, &Server{Verifier: &Verifier{Secret: testSecret}, CallTimeout: 10 * time.Second,
		onWait: func(what string) { waits <- what }})
	fb := dialFakeBridge(t, r, "alice")
	catalog := func(state string) {
		if err := fb.write(relay.Frame{Kind: relay.KindCatalog, Servers: []relay.ServerInfo{{Name: "everything", State: state}}}); err != nil {
			t.Fatal(err)
		}
		fb.waitOnline(t, r, "alice") // the relay read the catalog
	}
	catalog("starting")
	hc := authClient(mustToken(t, "alice", ScopeClient))
	type answer struct {
		sid, body string
	}
	got := make(chan answer, 1)
	go func() {
		resp, body := rawPost(t, hc, r.mcpURL("alice", "everything"), "", initBody)
		got <- answer{resp.Header.Get(headerSession), body}
	}()
	if w := <-waits; w != "server" {
		t.Fatalf("wait for %q, want server", w)
	}
	select {
	case a := <-got:
		t.Fatalf("initialize answered while the server was starting: %+v", a)
	default:
	}
	catalog("ready")
	a := <-got
	if a.sid == "" || !strings.Contains(a.body, `"result"`) {
		t.Fatalf("initialize after start: session %q body %s", a.sid, a.body)
	}
}

// TestSessionOutlivesALongOutage: the bridge is away far longer than the
// bridge wait (a laptop asleep). Calls made meanwhile fail (503), but the
// relay holds the session's GET stream instead of refusing it, so a client
// that gives a session up when its stream cannot be reopened (the go-sdk's,
// with its default retries) keeps it: once a bridge is back, the same
// session id works.
func TestSessionOutlivesALongOutage(t *testing.T) {
	const wait = 200 * time.Millisecond
	r := startRelay(t, &Server{Verifier: &Verifier{Secret: testSecret}, CallTimeout: 10 * time.Second, BridgeWait: wait})
	fb1 := dialFakeBridge(t, r, "alice")
	c := mcp.NewClient(&mcp.Implementation{Name: "relay-test", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint: r.mcpURL("alice", "everything"), HTTPClient: authClient(mustToken(t, "alice", ScopeClient)),
	}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	id := cs.ID()
	echo(t, cs, "before")

	fb1.ws.Close()
	<-fb1.Gone
	waitOffline(t, r, "alice")
	// Many bridge waits pass: the stream is reopened and held each time.
	outage := time.After(20 * wait)
	for done := false; !done; {
		select {
		case <-outage:
			done = true
		default:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "during"}})
			cancel()
			if err == nil {
				t.Fatal("a call succeeded with no bridge")
			}
			if strings.Contains(err.Error(), "client is closing") || strings.Contains(err.Error(), "connection closed") {
				t.Fatalf("the client gave the session up during the outage: %v", err)
			}
		}
	}
	dialFakeBridge(t, r, "alice")
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "after"}})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session never worked again after the outage: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // retrying a call until the bridge's catalog is in
	}
	if cs.ID() != id {
		t.Fatalf("session id changed: %q → %q", id, cs.ID())
	}
}
