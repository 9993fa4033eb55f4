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
)

// limitedRelay is a relay with limits and a fake bridge for alice.
func limitedRelay(t *testing.T, l Limits) (*testRelay, *fakeBridge) {
	t.Helper()
	r := startRelay(t, &Server{Verifier: &Verifier{Secret: testSecret}, CallTimeout: 30 * time.Second, Limits: l})
	return r, dialFakeBridge(t, r, "alice")
}

// checkRefusal asserts a JSON-RPC error answer with status, Retry-After
// (when retry > 0) and the request's id.
func checkRefusal(t *testing.T, resp *http.Response, body string, status, retry int, id string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if got, want := resp.Header.Get("Retry-After"), fmt.Sprint(retry); retry > 0 && got != want {
		t.Fatalf("Retry-After %q, want %q", got, want)
	}
	var msg struct {
		ID    json.RawMessage `json:"id"`
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &msg); err != nil || msg.Error.Message == "" {
		t.Fatalf("body %q is not a JSON-RPC error (%v)", body, err)
	}
	if string(msg.ID) != id {
		t.Fatalf("error id %s, want %s", msg.ID, id)
	}
}

// eventually retries f until it reports true; used where the relay frees
// a slot after the client already saw its answer.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClientRateLimit(t *testing.T) {
	r, _ := limitedRelay(t, Limits{ClientRate: 1}) // burst 2
	var mu sync.Mutex
	now := time.Now()
	r.srv.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	url := r.mcpURL("alice", "everything")
	hc := authClient(mustToken(t, "alice", ScopeClient))

	sid := openRaw(t, hc, url) // initialize + initialized: the whole burst
	resp, body := rawPost(t, hc, url, sid, listBody)
	checkRefusal(t, resp, body, http.StatusTooManyRequests, 1, "2")

	// Another token of the same dev has a bucket of its own.
	other, err := Issue(testSecret, "alice", ScopeClient, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	openRaw(t, authClient(other), url)

	mu.Lock()
	now = now.Add(time.Second) // the Retry-After
	mu.Unlock()
	if resp, body := rawPost(t, hc, url, sid, listBody); resp.StatusCode != 200 || !strings.Contains(body, "echo") {
		t.Fatalf("after Retry-After: %d %s", resp.StatusCode, body)
	}
}

// TestStatusEndpointIsRateLimited: GET /v1/bridges/{dev} takes from the
// same per-token bucket as the MCP endpoints.
func TestStatusEndpointIsRateLimited(t *testing.T) {
	r, _ := limitedRelay(t, Limits{ClientRate: 1}) // burst 2
	r.srv.now = func() time.Time { return time.Unix(1_800_000_000, 0) }
	hc := authClient(mustToken(t, "alice", ScopeClient))
	get := func() (*http.Response, string) {
		resp, err := hc.Get(r.ts.URL + "/v1/bridges/alice")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for i := range 2 {
		if resp, body := get(); resp.StatusCode != http.StatusOK {
			t.Fatalf("status poll %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	resp, body := get()
	checkRefusal(t, resp, body, http.StatusTooManyRequests, 1, "null")
}

func TestMaxInFlight(t *testing.T) {
	r, fb := limitedRelay(t, Limits{MaxInFlight: 1})
	url := r.mcpURL("alice", "everything")
	hc := authClient(mustToken(t, "alice", ScopeClient))
	sid := openRaw(t, hc, url)

	ctx, cancel := context.WithCancel(context.Background())
	slowDone := make(chan struct{})
	go func() {
		defer close(slowDone)
		req, _ := http.NewRequestWithContext(ctx, "POST", url,
			strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"slow","arguments":{}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(headerSession, sid)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-fb.SlowStarted
	resp, body := rawPost(t, hc, url, sid, listBody)
	checkRefusal(t, resp, body, http.StatusTooManyRequests, 1, "2")

	cancel()
	<-slowDone
	eventually(t, "tools/list after the slow call ended", func() bool {
		resp, _ := rawPost(t, hc, url, sid, listBody)
		return resp.StatusCode == 200
	})
}

// openStream opens a session's GET stream and returns its response.
func openStream(t *testing.T, hc *http.Client, url, sid string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(headerSession, sid)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestMaxStreams(t *testing.T) {
	r, _ := limitedRelay(t, Limits{MaxStreams: 1})
	url := r.mcpURL("alice", "everything")
	hc := authClient(mustToken(t, "alice", ScopeClient))
	a, b := openRaw(t, hc, url), openRaw(t, hc, url)

	first := openStream(t, hc, url, a)
	if first.StatusCode != 200 {
		t.Fatalf("first stream: %d", first.StatusCode)
	}
	second := openStream(t, hc, url, b)
	checkRefusal(t, second, readAll(t, second), http.StatusTooManyRequests, 1, "null")

	first.Body.Close()
	eventually(t, "a stream after the first closed", func() bool {
		resp := openStream(t, hc, url, b)
		defer resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func TestMaxSessionsEvictsIdle(t *testing.T) {
	r, _ := limitedRelay(t, Limits{MaxSessions: 2})
	url := r.mcpURL("alice", "everything")
	hc := authClient(mustToken(t, "alice", ScopeClient))
	s1 := openRaw(t, hc, url)
	s2 := openRaw(t, hc, url)
	rawPost(t, hc, url, s1, listBody) // s2 is now the least recently used
	s3 := openRaw(t, hc, url)

	if resp, body := rawPost(t, hc, url, s2, listBody); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("evicted session: %d %s, want 404", resp.StatusCode, body)
	}
	for _, sid := range []string{s1, s3} {
		if resp, body := rawPost(t, hc, url, sid, listBody); resp.StatusCode != 200 {
			t.Fatalf("kept session: %d %s", resp.StatusCode, body)
		}
	}
}

func TestMaxSessionsAllBusy(t *testing.T) {
	r, _ := limitedRelay(t, Limits{MaxSessions: 1})
	url := r.mcpURL("alice", "everything")
	hc := authClient(mustToken(t, "alice", ScopeClient))
	s1 := openRaw(t, hc, url)
	stream := openStream(t, hc, url, s1) // s1 is busy: not evictable
	if stream.StatusCode != 200 {
		t.Fatalf("stream: %d", stream.StatusCode)
	}
	resp, body := rawPost(t, hc, url, "", initBody)
	checkRefusal(t, resp, body, http.StatusTooManyRequests, 5, "1")
	if resp.Header.Get(headerSession) != "" {
		t.Fatal("a refused initialize handed out a session id")
	}

	stream.Body.Close()
	eventually(t, "initialize after the stream closed", func() bool {
		resp, _ := rawPost(t, hc, url, "", initBody)
		return resp.StatusCode == 200 && resp.Header.Get(headerSession) != ""
	})
}

// TestBodyOverLimitNotRead: a Content-Length over the limit is refused
// before a byte of the body is sent, and the connection is closed.
func TestBodyOverLimitNotRead(t *testing.T) {
	r, _ := limitedRelay(t, Limits{MaxBodyBytes: 1024})
	conn, err := net.Dial("tcp", r.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /mcp/alice/everything HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", mustToken(t, "alice", ScopeClient), 40<<20)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer before the body: %v", err)
	}
	body := readAll(t, resp)
	checkRefusal(t, resp, body, http.StatusRequestEntityTooLarge, 0, "null")
	if !resp.Close {
		t.Fatal("413 without Connection: close: net/http would drain the body")
	}

	// A chunked body has no Content-Length: it is cut at the limit.
	hc := authClient(mustToken(t, "alice", ScopeClient))
	big := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"` + strings.Repeat("x", 2048) + `"}}}`
	req, _ := http.NewRequest("POST", r.mcpURL("alice", "everything"), struct{ *strings.Reader }{strings.NewReader(big)})
	req.Header.Set("Content-Type", "application/json")
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body over the limit: %d %s", resp.StatusCode, body)
	}
}
