package mcpchild

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testbin"
)

// httpServer is the repo's test MCP server run as its own process, serving
// Streamable HTTP on 127.0.0.1 (the go-sdk's StreamableHTTPHandler).
type httpServer struct {
	URL  string
	Addr string
	cmd  *exec.Cmd
}

// startHTTPServer starts the test server with -http addr (127.0.0.1:0 for
// any port) and waits until it listens.
func startHTTPServer(t testing.TB, addr string, args ...string) *httpServer {
	t.Helper()
	bin := testbin.Build(t, testServerPkg)
	cmd := exec.Command(bin, append([]string{"-http", addr}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	srv := &httpServer{cmd: cmd}
	t.Cleanup(srv.kill)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("test HTTP server did not start: %v", err)
	}
	srv.URL = strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	srv.Addr = strings.TrimSuffix(strings.TrimPrefix(srv.URL, "http://"), "/mcp")
	return srv
}

// kill ends the server the hard way: no goodbye on any stream.
func (s *httpServer) kill() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// statusWatch keeps the latest status a child reported.
type statusWatch struct {
	mu   sync.Mutex
	last Status
	kick chan struct{}
}

func watchStatus(opts *Options) *statusWatch {
	w := &statusWatch{kick: make(chan struct{}, 1)}
	opts.OnStatus = func(s Status) {
		w.mu.Lock()
		w.last = s
		w.mu.Unlock()
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return w
}

func (w *statusWatch) wait(t testing.TB, what string, ok func(Status) bool) Status {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		w.mu.Lock()
		st := w.last
		w.mu.Unlock()
		if ok(st) {
			return st
		}
		select {
		case <-w.kick:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; last status %+v", what, st)
		}
	}
}

// An HTTP server is bridged like a stdio one, in both eras: a stateful
// go-sdk server is spoken to in 2025 (initialize, Mcp-Session-Id), a
// stateless one in 2026-07-28; sessions of either era call tools, see
// progress and hear list changes.
func TestHTTPChildBothEras(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		era  Era
	}{
		{"stateful", nil, Era2025},
		{"stateless", []string{"-stateless"}, Era2026},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startHTTPServer(t, "127.0.0.1:0", tc.args...)
			c := startChild(t, Spec{Name: "remote", URL: srv.URL}, testOptions(t))
			st := c.Status()
			if st.Kind != KindHTTP || st.Pid != 0 || st.Era != tc.era || st.ToolCount < 10 {
				t.Fatalf("status = %+v, want kind http, pid 0, era %s, tools", st, tc.era)
			}

			legacy := newClient(t, c, "legacy")
			legacy.initialize("2025-11-25")
			if got := legacy.toolText("echo", map[string]any{"text": "over http"}); got != "over http" {
				t.Fatalf("echo = %q", got)
			}
			if got := legacy.toolText("whoami", map[string]any{}); tc.era == Era2026 && got != "client=test-client" {
				t.Fatalf("whoami = %q: the server did not see the session's client info", got)
			}
			list := legacy.mustCall("tools/list", map[string]any{})
			if !contains(list, `"name":"sleep"`) {
				t.Fatalf("tools/list = %s", truncate(string(list), 300))
			}
			res := legacy.mustCall("tools/call", map[string]any{"name": "progress", "arguments": map[string]any{"steps": 2},
				"_meta": map[string]any{"progressToken": "p1"}})
			if !contains(res, "done") {
				t.Fatalf("progress = %s", res)
			}
			legacy.waitOther("progress with the session's own token", func(d delivered) bool {
				return contains(d.msg, `"notifications/progress"`) && contains(d.msg, `"progressToken":"p1"`)
			})

			modern := newClient(t, c, "modern")
			modern.mustCall("server/discover", map[string]any{"_meta": modernMeta("m")})
			got := modern.mustCall("tools/call", map[string]any{"_meta": modernMeta("m"), "name": "echo", "arguments": map[string]any{"text": "2026"}})
			if !contains(got, `"2026"`) {
				t.Fatalf("modern echo = %s", got)
			}

			// Cancellation: the call is forgotten at once and the link stays usable.
			id, ch := legacy.request("tools/call", map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 60000}})
			waitPending(t, c, 1)
			if err := legacy.s.Handle(buildNotification("notifications/cancelled", []byte(`{"requestId":`+id+`}`))); err != nil {
				t.Fatal(err)
			}
			if n := sessionPending(c); n != 0 {
				t.Fatalf("%d requests pending after cancel", n)
			}
			if got := legacy.toolText("echo", map[string]any{"text": "after cancel"}); got != "after cancel" {
				t.Fatalf("echo after cancel = %q", got)
			}
			select {
			case resp := <-ch:
				t.Fatalf("cancelled call answered: %s", resp)
			default:
			}

			// A list change on the server reaches the sessions and the cache.
			legacy.mustCall("tools/call", map[string]any{"name": "add_tool", "arguments": map[string]any{"name": "late_tool"}})
			legacy.waitOther("tools/list_changed", methodIs("notifications/tools/list_changed"))
			deadline := time.Now().Add(30 * time.Second)
			for !hasTool(c, "late_tool") {
				if time.Now().After(deadline) {
					t.Fatal("tool cache not refreshed after list_changed")
				}
				time.Sleep(20 * time.Millisecond) // polling a cache with no event of its own
			}
		})
	}
}

func hasTool(c *Child, name string) bool {
	for _, tl := range c.Tools() {
		if n, ok := toolName(tl); ok && n == name {
			return true
		}
	}
	return false
}

// A server that wants a credential: without it the status says 401 and
// the URL in plain words (and never the header value); with it, from
// "${VAR}" in mcp.json, the child works.
func TestHTTPRequiredHeader(t *testing.T) {
	const secret = "s3cret-token-value"
	srv := startHTTPServer(t, "127.0.0.1:0", "-require-header", "Authorization=Bearer "+secret)

	var logs bytes.Buffer
	var logMu sync.Mutex
	opts := testOptions(t)
	opts.Logger = slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Log = lockedWriter{&logs, &logMu}
	opts.Env = append(os.Environ(), "TETHER_TEST_TOKEN="+secret)
	w := watchStatus(&opts)
	bad := New(Spec{Name: "keyed", URL: srv.URL, Headers: map[string]string{"Authorization": "Bearer wrong-" + secret}}, opts)
	bad.Start(context.Background())
	t.Cleanup(func() { _ = bad.Stop(context.Background()) })
	st := w.wait(t, "a 401 in LastError", func(s Status) bool { return strings.Contains(s.LastError, "401") })
	t.Logf("LastError: %s", st.LastError)
	for _, want := range []string{srv.URL, "HTTP 401 Unauthorized", `"headers"`} {
		if !strings.Contains(st.LastError, want) {
			t.Errorf("LastError %q lacks %q", st.LastError, want)
		}
	}
	if st.Phase != PhaseBackoff && st.Phase != PhaseCrashLoop && st.Phase != PhaseStarting {
		t.Errorf("phase after 401 = %s, want the restart backoff", st.Phase)
	}
	w.wait(t, "a restart after the 401", func(s Status) bool { return s.Restarts >= 1 })
	_ = bad.Stop(context.Background())

	good := startChild(t, Spec{Name: "keyed", URL: srv.URL, Headers: map[string]string{"Authorization": "Bearer ${TETHER_TEST_TOKEN}"}}, opts)
	cl := newClient(t, good, "a")
	cl.initialize("2025-11-25")
	if got := cl.toolText("echo", map[string]any{"text": "authorized"}); got != "authorized" {
		t.Fatalf("echo = %q", got)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("a header value reached the logs:\n%s", logs.String())
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// A host that does not resolve is reported in plain words with the URL.
func TestHTTPUnresolvableHost(t *testing.T) {
	opts := testOptions(t)
	w := watchStatus(&opts)
	c := New(Spec{Name: "nowhere", URL: "http://tether-test.invalid/mcp?key=hidden"}, opts)
	c.Start(context.Background())
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	st := w.wait(t, "a DNS error", func(s Status) bool { return s.LastError != "" })
	t.Logf("LastError: %s", st.LastError)
	for _, want := range []string{"http://tether-test.invalid/mcp", "DNS lookup"} {
		if !strings.Contains(st.LastError, want) {
			t.Errorf("LastError %q lacks %q", st.LastError, want)
		}
	}
	if strings.Contains(st.LastError, "hidden") {
		t.Errorf("LastError shows the URL's query: %q", st.LastError)
	}
}

// An HTTP server that stays unreachable is retried with a growing backoff
// and never parked in the crash loop: it is an outage, not a crash.
func TestHTTPUnreachableNeverCrashLoops(t *testing.T) {
	opts := testOptions(t)
	opts.CrashLoopCount = 2
	opts.RestartMin, opts.RestartMax = time.Millisecond, 40*time.Millisecond
	w := watchStatus(&opts)
	c := New(Spec{Name: "down", URL: "http://127.0.0.1:1/mcp"}, opts)
	c.Start(context.Background())
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	var waits []time.Duration
	for len(waits) < 8 {
		st := w.wait(t, "a retry", func(s Status) bool {
			if s.Phase == PhaseCrashLoop {
				t.Fatalf("an unreachable HTTP server was parked in the crash loop: %s", s.LastError)
			}
			return s.Phase == PhaseBackoff && s.Restarts == len(waits)
		})
		waits = append(waits, st.NextRestart.Sub(st.Since))
	}
	if last := waits[len(waits)-1]; last < 20*time.Millisecond {
		t.Errorf("backoff did not grow towards the cap: %v", waits)
	}
}

// The server going away fails calls in flight at once; the child
// reconnects through the restart backoff when the server is back.
func TestHTTPServerGoesAwayAndComesBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"stateful", nil},
		{"stateless", []string{"-stateless"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startHTTPServer(t, "127.0.0.1:0", tc.args...)
			opts := testOptions(t)
			opts.CrashLoopCount = 1000 // keep retrying while the server is down
			w := watchStatus(&opts)
			c := startChild(t, Spec{Name: "remote", URL: srv.URL}, opts)
			cl := newClient(t, c, "a")
			cl.initialize("2025-11-25")
			_, slow := cl.request("tools/call", map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 60000}})
			waitPending(t, c, 1)

			start := time.Now()
			srv.kill()
			select {
			case resp := <-slow:
				t.Logf("pending call: %s", resp)
				// The session's client may be remote: it is told the server
				// is unavailable, not the server's address (LastError, for
				// the local user, names it: below).
				if !contains(resp, `"error"`) || !contains(resp, `mcp server \"remote\" is unavailable`) || contains(resp, srv.URL) {
					t.Errorf("pending call's answer = %s, want the classified error without the URL", resp)
				}
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("pending call failed after %s, want at once", d)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("pending call not failed after the server went away")
			}
			st := w.wait(t, "the connection error", func(s Status) bool { return strings.Contains(s.LastError, "connection refused") })
			t.Logf("LastError: %s", st.LastError)
			if !strings.Contains(st.LastError, srv.URL) {
				t.Errorf("LastError %q lacks the URL", st.LastError)
			}

			startHTTPServer(t, srv.Addr, tc.args...)
			w.wait(t, "ready again", func(s Status) bool { return s.Phase == PhaseReady && s.Restarts >= 1 })
			if got := cl.toolText("echo", map[string]any{"text": "back"}); got != "back" {
				t.Fatalf("echo after reconnect = %q", got)
			}
		})
	}
}

// Stop ends the HTTP session: the link closes, nothing is left pending.
func TestHTTPStopClosesTheConnection(t *testing.T) {
	srv := startHTTPServer(t, "127.0.0.1:0")
	c := New(Spec{Name: "remote", URL: srv.URL}, testOptions(t))
	c.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, c, "a")
	cl.initialize("2025-11-25")
	_, slow := cl.request("tools/call", map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 60000}})
	waitPending(t, c, 1)
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-slow:
		if !contains(resp, `mcp server \"remote\" is unavailable`) {
			t.Fatalf("call pending at stop answered %s", resp)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("call pending at stop not answered")
	}
	if st := c.Status(); st.Phase != PhaseStopped {
		t.Fatalf("phase after stop = %s", st.Phase)
	}
}
