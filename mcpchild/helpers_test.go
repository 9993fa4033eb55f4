package mcpchild

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/mcpwire"
	"github.com/tether-dev/tether/internal/testbin"
)

const testServerPkg = "github.com/tether-dev/tether/internal/testservers/mcpserver"

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// testOptions are fast timings for tests; the defaults are for people.
func testOptions(t testing.TB) Options {
	return Options{
		Env:        os.Environ(),
		StopGrace:  time.Second,
		RestartMin: 20 * time.Millisecond,
		RestartMax: 200 * time.Millisecond,
		Log:        io.Discard,
	}
}

// startTestServer starts the repo's Go test MCP server as a child and waits
// until it is ready.
func startTestServer(t testing.TB, opts Options, args ...string) *Child {
	t.Helper()
	bin := testbin.Build(t, testServerPkg)
	return startChild(t, Spec{Name: "test", Command: bin, Args: args}, opts)
}

func startChild(t testing.TB, spec Spec, opts Options) *Child {
	t.Helper()
	c := New(spec, opts)
	c.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("child not ready: %v (stderr: %q)", err, c.StderrLines())
	}
	return c
}

// client is a test MCP client on one Session: it sends raw JSON-RPC and
// collects what the session delivers.
type client struct {
	t      testing.TB
	s      *Session
	nextID atomic.Int64

	mu      sync.Mutex
	waiters map[string]chan []byte
	other   []delivered // notifications and server→client requests, in order
	cond    chan struct{}
}

type delivered struct {
	msg     []byte
	related []byte
}

func newClient(t testing.TB, c *Child, name string) *client {
	cl := &client{t: t, waiters: map[string]chan []byte{}, cond: make(chan struct{}, 1)}
	cl.s = c.NewSession(name, cl.receive)
	t.Cleanup(cl.s.Close)
	return cl
}

func (cl *client) receive(msg []byte, related []byte) {
	m, err := parseMessage(msg)
	if err != nil {
		cl.t.Errorf("session delivered a malformed message: %v: %s", err, msg)
		return
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if m.kind() == kindResponse {
		if ch, ok := cl.waiters[idKey(m.id)]; ok {
			delete(cl.waiters, idKey(m.id))
			ch <- msg
			return
		}
		cl.t.Errorf("response to an id nobody waits for: %s", truncate(string(msg), 300))
		return
	}
	cl.other = append(cl.other, delivered{msg, related})
	select {
	case cl.cond <- struct{}{}:
	default:
	}
}

// request sends a request and returns a channel for its response.
func (cl *client) request(method string, params any) (id string, resp <-chan []byte) {
	n := cl.nextID.Add(1)
	id = strconv.Quote(fmt.Sprintf("r%d", n)) // string ids, to check they come back as sent
	ch := make(chan []byte, 1)
	cl.mu.Lock()
	cl.waiters[id] = ch
	cl.mu.Unlock()
	p, _ := json.Marshal(params)
	if params == nil {
		p = nil
	}
	if err := cl.s.Handle(buildRequest([]byte(id), method, p)); err != nil {
		cl.t.Fatalf("handle: %v", err)
	}
	return id, ch
}

// call sends a request and waits for its response: result or error object.
func (cl *client) call(method string, params any) (result json.RawMessage, errObj json.RawMessage) {
	cl.t.Helper()
	id, ch := cl.request(method, params)
	select {
	case resp := <-ch:
		m, _ := parseMessage(resp)
		if idKey(m.id) != id {
			cl.t.Fatalf("response id %s, want %s", m.id, id)
		}
		return m.result, m.err
	case <-time.After(30 * time.Second):
		cl.t.Fatalf("no response to %s within 30s", method)
	}
	return nil, nil
}

// mustCall is call that fails the test on a JSON-RPC error.
func (cl *client) mustCall(method string, params any) json.RawMessage {
	cl.t.Helper()
	res, errObj := cl.call(method, params)
	if errObj != nil {
		cl.t.Fatalf("%s: error %s", method, errObj)
	}
	return res
}

// toolText calls a tool and returns the text of its first content item.
func (cl *client) toolText(name string, args any) string {
	cl.t.Helper()
	res := cl.mustCall("tools/call", map[string]any{"name": name, "arguments": args})
	var r struct {
		Content []struct{ Text string } `json:"content"`
		IsError bool                    `json:"isError"`
	}
	if err := json.Unmarshal(res, &r); err != nil || len(r.Content) == 0 {
		cl.t.Fatalf("tools/call %s: unexpected result %s", name, truncate(string(res), 300))
	}
	if r.IsError {
		cl.t.Fatalf("tools/call %s: tool error %s", name, r.Content[0].Text)
	}
	return r.Content[0].Text
}

// waitOther waits until a delivered non-response message satisfies match.
func (cl *client) waitOther(what string, match func(d delivered) bool) delivered {
	cl.t.Helper()
	deadline := time.After(30 * time.Second)
	seen := 0
	for {
		cl.mu.Lock()
		for ; seen < len(cl.other); seen++ {
			if match(cl.other[seen]) {
				d := cl.other[seen]
				cl.mu.Unlock()
				return d
			}
		}
		cl.mu.Unlock()
		select {
		case <-cl.cond:
		case <-deadline:
			cl.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func methodIs(method string) func(d delivered) bool {
	return func(d delivered) bool {
		m, _ := parseMessage(d.msg)
		return m.method == method
	}
}

func (cl *client) initialize(version string) json.RawMessage {
	cl.t.Helper()
	res := cl.mustCall("initialize", map[string]any{
		"protocolVersion": version,
		"capabilities":    map[string]any{"roots": map[string]any{"listChanged": true}, "elicitation": map[string]any{}},
		"clientInfo":      map[string]any{"name": "test-client", "version": "1"},
	})
	if err := cl.s.Handle(buildNotification("notifications/initialized", nil)); err != nil {
		cl.t.Fatal(err)
	}
	return res
}

// modernMeta is the per-request _meta of a 2026-07-28 client.
func modernMeta(name string) map[string]any {
	return map[string]any{
		mcpwire.MetaProtocolVersion:    mcpwire.Version2026,
		mcpwire.MetaClientInfo:         map[string]any{"name": name, "version": "1"},
		mcpwire.MetaClientCapabilities: map[string]any{},
	}
}

func contains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }

// rawCall sends raw, a request with the given raw id, as the client wrote
// it, and returns the error object of the answer (nil for a result).
func (cl *client) rawCall(id, raw string) json.RawMessage {
	cl.t.Helper()
	ch := make(chan []byte, 1)
	cl.mu.Lock()
	cl.waiters[id] = ch
	cl.mu.Unlock()
	_ = cl.s.Handle([]byte(raw)) // a refused message is answered, and reported here too
	select {
	case resp := <-ch:
		m, _ := parseMessage(resp)
		return m.err
	case <-time.After(30 * time.Second):
		cl.t.Fatalf("no answer to %s within 30s", raw)
	}
	return nil
}
