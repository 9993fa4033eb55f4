package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tether-dev/tether/app/config"
	"github.com/tether-dev/tether/internal/testbin"
	"github.com/tether-dev/tether/keystore"
	"github.com/tether-dev/tether/relay/server"
)

// testRelay is the real relay server, in process on loopback.
type testRelay struct {
	url    string
	secret []byte
	srv    *server.Server
}

// testRelaySecret signs the test relay's tokens.
const testRelaySecret = "engine-test-secret-0123456789abcdef"

func newTestRelay(t *testing.T, tweaks ...func(*server.Server)) *testRelay {
	t.Helper()
	r := &testRelay{secret: []byte(testRelaySecret)}
	r.srv = &server.Server{Verifier: &server.Verifier{Secret: r.secret}}
	for _, tw := range tweaks {
		tw(r.srv)
	}
	hs := httptest.NewServer(r.srv)
	t.Cleanup(func() { r.srv.Close(); hs.Close() })
	r.url = hs.URL
	return r
}

func (r *testRelay) token(t *testing.T, dev, scope string, ttl time.Duration) string {
	t.Helper()
	tok, err := server.Issue(r.secret, dev, scope, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// relayView is what the relay shows of a dev's bridge.
type relayView struct {
	Connected bool `json:"connected"`
	Servers   []struct {
		Name      string `json:"name"`
		State     string `json:"state"`
		ToolCount int    `json:"toolCount"`
	} `json:"servers"`
}

func (v relayView) server(name string) (state string, tools int, ok bool) {
	for _, s := range v.Servers {
		if s.Name == name {
			return s.State, s.ToolCount, true
		}
	}
	return "", 0, false
}

// waitRelay polls the relay's status API until ok holds. The relay has no
// push channel for its own status, so polling it is how a hosted client
// would observe it too; the interval is short and the wait bounded.
func (r *testRelay) waitRelay(t *testing.T, dev, clientTok string, what string, ok func(relayView) bool) relayView {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last relayView
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, r.url+"/v1/bridges/"+dev, nil)
		req.Header.Set("Authorization", "Bearer "+clientTok)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			last = relayView{}
			json.NewDecoder(resp.Body).Decode(&last)
			resp.Body.Close()
			if ok(last) {
				return last
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("relay never showed %s; last view %+v", what, last)
	return last
}

// engineFixture is a running engine in a private config folder.
type engineFixture struct {
	t      *testing.T
	eng    *Engine
	paths  Paths
	relay  *testRelay
	kc     *keystore.Memory
	dev    string
	client string // client token for the relay's status API and MCP calls
	server string // the test MCP server binary
	cancel context.CancelFunc
	done   chan error
}

// shortTempDir keeps the control socket path under the 104-byte limit of
// AF_UNIX addresses, which t.TempDir() paths can exceed.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "te")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func startEngine(t *testing.T, mcpJSON string, tweak func(*EngineOptions), relayTweaks ...func(*server.Server)) *engineFixture {
	t.Helper()
	f := &engineFixture{t: t, relay: newTestRelay(t, relayTweaks...), kc: &keystore.Memory{}, dev: "alice"}
	f.server = testbin.Build(t, "./internal/testservers/mcpserver")
	f.paths = PathsIn(shortTempDir(t))
	if err := f.paths.Ensure(); err != nil {
		t.Fatal(err)
	}
	f.client = f.relay.token(t, f.dev, server.ScopeClient, time.Hour)
	if err := f.kc.Set(keystore.AccountFor(f.relay.url), keystore.Token(f.relay.token(t, f.dev, server.ScopeBridge, time.Hour))); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.paths.Settings, fmt.Sprintf(`{"relay": %q}`, f.relay.url))
	writeFile(t, f.paths.MCPJSON, strings.ReplaceAll(mcpJSON, "SERVER", f.server))
	opts := EngineOptions{
		Paths:    f.paths,
		Keychain: f.kc,
		Getenv:   func(string) string { return "" }, // no token from this test's environment
		Control:  true,
		Version:  "test",
		Debounce: 20 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&opts)
	}
	f.eng = NewEngine(opts)
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan error, 1)
	go func() { f.done <- f.eng.Run(ctx) }()
	t.Cleanup(f.stop)
	return f
}

func (f *engineFixture) stop() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	f.cancel = nil
	// Bounded, so a test that found a hang reports it instead of hanging
	// in its cleanup.
	select {
	case err := <-f.done:
		if err != nil {
			f.t.Errorf("engine Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		f.t.Errorf("the engine did not stop within 30 s")
	}
}

// waitState waits for a published State that satisfies ok.
func (f *engineFixture) waitState(t *testing.T, what string, ok func(State) bool) State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := f.eng.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var last State
	for st := range ch {
		if ok(st) {
			return st
		}
		last = st
	}
	b, _ := json.MarshalIndent(last, "", " ")
	t.Fatalf("state never showed %s; last state:\n%s", what, b)
	return last
}

func serverView(st State, name string) (ServerView, bool) {
	for _, s := range st.Servers {
		if s.Name == name {
			return s, true
		}
	}
	return ServerView{}, false
}

func ready(name string) func(State) bool {
	return func(st State) bool {
		s, ok := serverView(st, name)
		return ok && s.Phase == "ready"
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// atomicSave is how VS Code, JetBrains and most tools save: write a temp
// file beside the target, then rename it over.
func atomicSave(t *testing.T, path, data string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".mcp.json.tmp~")
	writeFile(t, tmp, data)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func mcpClient(t *testing.T, ctx context.Context, url, tok string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "engine-test", Version: "1"}, opts)
	tr := &mcp.StreamableClientTransport{
		Endpoint:   url,
		HTTPClient: &http.Client{Transport: bearerRT{tok}},
		MaxRetries: -1,
	}
	cs, err := c.Connect(ctx, tr, nil)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

type bearerRT struct{ tok string }

func (b bearerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.tok)
	return http.DefaultTransport.RoundTrip(r)
}

const oneServer = `{
  // one server to start with
  "mcpServers": {
    "a": {"command": "SERVER"}
  }
}`

func TestEngineHotReload(t *testing.T) {
	f := startEngine(t, oneServer, nil)
	st := f.waitState(t, "a ready and connected", func(st State) bool {
		return ready("a")(st) && st.Relay.Phase == "connected"
	})
	if st.Token.DevID != "alice" || st.Token.Source != "keychain" || st.Token.Last4 == "" {
		t.Fatalf("token state = %+v", st.Token)
	}
	a0, _ := serverView(st, "a")
	f.relay.waitRelay(t, f.dev, f.client, "a ready", func(v relayView) bool {
		s, _, _ := v.server("a")
		return v.Connected && s == "ready"
	})

	two := func(extraArgs string) string {
		return strings.ReplaceAll(`{"mcpServers": {
  "a": {"command": "SERVER"},
  "b": {"command": "SERVER", "args": [`+extraArgs+`]}
}}`, "SERVER", f.server)
	}

	t.Run("atomic save adds a server", func(t *testing.T) {
		saved := time.Now()
		atomicSave(t, f.paths.MCPJSON, two(`"-extra-tools", "2"`))
		v := f.relay.waitRelay(t, f.dev, f.client, "b ready", func(v relayView) bool {
			s, _, _ := v.server("b")
			return s == "ready"
		})
		_, n, _ := v.server("b")
		_, na, _ := v.server("a")
		if n != na+2 {
			t.Errorf("b has %d tools, want a's %d + 2 extra", n, na)
		}
		t.Logf("save → relay shows b ready: %v (includes b's start-up)", time.Since(saved))
		st := f.waitState(t, "b ready", ready("b"))
		if a, _ := serverView(st, "a"); a.PID != a0.PID || a.Restarts != 0 {
			t.Errorf("a was touched: pid %d → %d", a0.PID, a.PID)
		}
	})

	t.Run("in-place write restarts only the changed server", func(t *testing.T) {
		st, _ := f.eng.State(context.Background())
		b0, _ := serverView(st, "b")
		// An in-place write truncates first: the watcher may see the empty
		// file, which must not stop anything (an empty file is invalid).
		fh, err := os.OpenFile(f.paths.MCPJSON, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fh.WriteString(two(`"-extra-tools", "5"`))
		fh.Close()
		st = f.waitState(t, "b restarted with 5 extra tools", func(st State) bool {
			b, _ := serverView(st, "b")
			a, _ := serverView(st, "a")
			return b.Phase == "ready" && b.PID != b0.PID && b.ToolCount == a.ToolCount+5
		})
		if a, _ := serverView(st, "a"); a.PID != a0.PID {
			t.Errorf("a restarted too: pid %d → %d", a0.PID, a.PID)
		}
		f.relay.waitRelay(t, f.dev, f.client, "b with 5 extra tools", func(v relayView) bool {
			_, nb, _ := v.server("b")
			_, na, _ := v.server("a")
			return nb == na+5
		})
	})

	t.Run("half-written file keeps the last good config", func(t *testing.T) {
		st, _ := f.eng.State(context.Background())
		b0, _ := serverView(st, "b")
		writeFile(t, f.paths.MCPJSON, "{\n  \"mcpServers\": {\n    \"a\": {\"command\": ")
		st = f.waitState(t, "a config error", func(st State) bool { return st.Config.Error != "" })
		if !strings.Contains(st.Config.Error, "line ") {
			t.Errorf("config error has no line:col: %q", st.Config.Error)
		}
		if b, _ := serverView(st, "b"); b.Phase != "ready" || b.PID != b0.PID {
			t.Errorf("b changed while the file was invalid: %+v", b)
		}
		atomicSave(t, f.paths.MCPJSON, two(`"-extra-tools", "5"`))
		st = f.waitState(t, "error cleared", func(st State) bool { return st.Config.Error == "" })
		if b, _ := serverView(st, "b"); b.PID != b0.PID {
			t.Errorf("b restarted by a config that did not change it")
		}
	})

	t.Run("removing a server leaves a call to another in flight alone", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		started := make(chan struct{}, 1)
		cs := mcpClient(t, ctx, f.relay.url+"/mcp/alice/a", f.client, &mcp.ClientOptions{
			ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
				select {
				case started <- struct{}{}:
				default:
				}
			},
		})
		type result struct {
			res *mcp.CallToolResult
			err error
			at  time.Time
		}
		done := make(chan result, 1)
		go func() {
			// progress reports each step, so the test knows the call is
			// running at the child before it removes the other server.
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{
				Name:      "progress",
				Arguments: map[string]any{"steps": 4, "ms": 400},
				Meta:      mcp.Meta{"progressToken": "p1"},
			})
			done <- result{res, err, time.Now()}
		}()
		// The first progress notification proves the call runs at the child.
		select {
		case <-started:
		case r := <-done:
			t.Fatalf("call ended before any progress: %v %+v", r.err, r.res)
		}
		atomicSave(t, f.paths.MCPJSON, strings.ReplaceAll(oneServer, "SERVER", f.server))
		st := f.waitState(t, "b gone", func(st State) bool { _, ok := serverView(st, "b"); return !ok })
		removedAt := time.Now()
		r := <-done
		if r.err != nil || r.res.IsError {
			t.Fatalf("call to a failed when b was removed: %v %+v", r.err, r.res)
		}
		if !r.at.After(removedAt) {
			t.Errorf("the call finished before b was removed; the test proved nothing")
		}
		if a, _ := serverView(st, "a"); a.PID != a0.PID {
			t.Errorf("a restarted")
		}
		st = f.waitState(t, "the call recorded", func(st State) bool { return len(st.Calls) > 0 })
		if c := st.Calls[0]; c.Server != "a" || c.Tool != "progress" || c.Outcome != "ok" || c.Duration < time.Second {
			t.Errorf("recent call = %+v", c)
		}
	})
}

func TestEngineCommands(t *testing.T) {
	f := startEngine(t, oneServer, nil)
	ctx := context.Background()
	f.waitState(t, "connected", func(st State) bool { return ready("a")(st) && st.Relay.Phase == "connected" })
	connected := func(want bool) func(relayView) bool {
		return func(v relayView) bool { return v.Connected == want }
	}

	t.Run("disconnect and connect", func(t *testing.T) {
		if err := f.eng.Disconnect(ctx); err != nil {
			t.Fatal(err)
		}
		f.relay.waitRelay(t, f.dev, f.client, "bridge gone", connected(false))
		st := f.waitState(t, "disconnected", func(st State) bool { return st.Relay.Phase == "offline" && !st.Relay.Wanted })
		if a, _ := serverView(st, "a"); a.Phase != "ready" {
			t.Errorf("servers should stay warm while disconnected: %+v", a)
		}
		s, err := config.LoadSettings(f.paths.Settings)
		if err != nil || s.AutoConnect == nil || *s.AutoConnect {
			t.Errorf("disconnect not remembered in settings.json: %+v %v", s, err)
		}
		if err := f.eng.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		f.relay.waitRelay(t, f.dev, f.client, "bridge back", connected(true))
	})

	t.Run("bad tokens are refused with a reason", func(t *testing.T) {
		for tok, want := range map[string]string{
			"hello": "not a Tether bridge token",
			f.relay.token(t, "alice", server.ScopeClient, time.Hour): "scope",
		} {
			err := f.eng.SetToken(ctx, tok)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("SetToken(%.10s…) = %v, want %q", tok, err, want)
			}
			if err != nil && strings.Contains(err.Error(), tok) {
				t.Errorf("error repeats the token: %v", err)
			}
		}
	})

	t.Run("clear and set token", func(t *testing.T) {
		if err := f.eng.ClearToken(ctx); err != nil {
			t.Fatal(err)
		}
		f.relay.waitRelay(t, f.dev, f.client, "bridge gone", connected(false))
		st := f.waitState(t, "no token", func(st State) bool { return !st.Token.Present && st.Relay.Phase == "offline" })
		if !strings.Contains(st.Relay.Reason, "token") {
			t.Errorf("offline reason = %q", st.Relay.Reason)
		}
		if _, err := f.kc.Get(keystore.AccountFor(f.relay.url)); err == nil {
			t.Error("token still in the keychain")
		}
		// A token for bob, about to expire: stored, used, and flagged.
		bob := f.relay.token(t, "bob", server.ScopeBridge, 2*time.Hour)
		if err := f.eng.SetToken(ctx, bob); err != nil {
			t.Fatal(err)
		}
		bobClient := f.relay.token(t, "bob", server.ScopeClient, time.Hour)
		f.relay.waitRelay(t, "bob", bobClient, "bob's bridge", connected(true))
		st = f.waitState(t, "bob's token", func(st State) bool { return st.Token.DevID == "bob" })
		if !st.Token.ExpiringSoon || st.Token.Expired || st.Token.Last4 != bob[len(bob)-4:] {
			t.Errorf("token state = %+v", st.Token)
		}
		b, _ := json.Marshal(st)
		if strings.Contains(string(b), bob) {
			t.Fatal("State contains the token")
		}
	})

	t.Run("disable, enable and restart a server", func(t *testing.T) {
		if err := f.eng.SetServerEnabled(ctx, "a", false); err != nil {
			t.Fatal(err)
		}
		f.waitState(t, "a disabled", func(st State) bool {
			a, ok := serverView(st, "a")
			return ok && !a.Enabled && a.Phase == "disabled"
		})
		data, _ := os.ReadFile(f.paths.MCPJSON)
		if !strings.Contains(string(data), `"disabled": true`) || !strings.Contains(string(data), "// one server to start with") {
			t.Errorf("mcp.json after disable:\n%s", data)
		}
		if err := f.eng.SetServerEnabled(ctx, "a", true); err != nil {
			t.Fatal(err)
		}
		st := f.waitState(t, "a back", ready("a"))
		a0, _ := serverView(st, "a")
		if err := f.eng.RestartServer(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		f.waitState(t, "a restarted", func(st State) bool {
			a, _ := serverView(st, "a")
			return a.Phase == "ready" && a.PID != a0.PID
		})
		if err := f.eng.RestartServer(ctx, "nope"); err == nil {
			t.Error("restarting an unknown server worked")
		}
	})
}

func TestEngineWakeKicksTheRelay(t *testing.T) {
	clk := &fakeWakeClock{w: time.Now().Round(0)}
	ticks := make(chan time.Time)
	f := startEngine(t, oneServer, func(o *EngineOptions) {
		o.wakeClock, o.wakeTicks = clk, ticks
	})
	st := f.waitState(t, "connected", func(st State) bool { return st.Relay.Phase == "connected" })
	since := st.Relay.Since
	ticks <- time.Time{} // first readings taken
	clk.advance(5*time.Second, 2*time.Hour)
	ticks <- time.Time{}
	f.waitState(t, "a fresh connection after the wake", func(st State) bool {
		return st.Relay.Phase == "connected" && st.Relay.Since.After(since)
	})
}

func TestEngineSecondEngineIsRefused(t *testing.T) {
	f := startEngine(t, oneServer, nil)
	f.waitState(t, "running", func(st State) bool { return st.Seq > 0 })
	second := NewEngine(EngineOptions{Paths: f.paths, Keychain: f.kc, Control: true})
	err := second.Run(context.Background())
	var running *EngineRunningError
	if !errors.As(err, &running) || running.PID != os.Getpid() {
		t.Fatalf("second engine: %v, want EngineRunningError with this pid", err)
	}
	// The first engine still holds the relay slot.
	f.relay.waitRelay(t, f.dev, f.client, "the first engine connected", func(v relayView) bool { return v.Connected })
	c, err := DialControl(context.Background(), f.paths.Socket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.State(context.Background())
	if err != nil || st.Engine.PID != os.Getpid() || len(st.Servers) != 1 {
		t.Fatalf("state over the socket: %+v %v", st, err)
	}
	// The goroutine count is this process's: at least the engine's own
	// loops and the test's, never zero (the fault suite reads it).
	if st.Engine.Goroutines < 5 {
		t.Errorf("engine goroutines = %d", st.Engine.Goroutines)
	}
}

// TestEngineToolFilter: a tool denied in mcp.json is neither listed nor
// callable through the relay, and changing the filter applies without a
// restart.
func TestEngineToolFilter(t *testing.T) {
	f := startEngine(t, `{"mcpServers": {"a": {"command": "SERVER", "deny": ["echo", "crash"]}}}`, nil)
	st := f.waitState(t, "a ready", func(st State) bool { return ready("a")(st) && st.Relay.Phase == "connected" })
	a0, _ := serverView(st, "a")
	if a0.Hidden != 2 || slices.Contains(a0.Tools, "echo") || !slices.Contains(a0.Tools, "sleep") {
		t.Fatalf("server view = %+v", a0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.relay.waitRelay(t, f.dev, f.client, "a ready", func(v relayView) bool { s, _, _ := v.server("a"); return s == "ready" })
	cs := mcpClient(t, ctx, f.relay.url+"/mcp/alice/a", f.client, nil)
	list, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range list.Tools {
		if tool.Name == "echo" || tool.Name == "crash" {
			t.Errorf("denied tool %q listed through the relay", tool.Name)
		}
	}
	if len(list.Tools) != a0.ToolCount {
		t.Errorf("relay lists %d tools, State says %d", len(list.Tools), a0.ToolCount)
	}
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}})
	if err == nil || !strings.Contains(err.Error(), "not available through this bridge") {
		t.Errorf("calling a denied tool: %v", err)
	}

	// Lift the deny: the same process now lists and serves echo.
	atomicSave(t, f.paths.MCPJSON, strings.ReplaceAll(`{"mcpServers": {"a": {"command": "SERVER"}}}`, "SERVER", f.server))
	st = f.waitState(t, "echo visible", func(st State) bool {
		a, _ := serverView(st, "a")
		return slices.Contains(a.Tools, "echo")
	})
	if a, _ := serverView(st, "a"); a.PID != a0.PID {
		t.Errorf("changing the filter restarted the server: pid %d → %d", a0.PID, a.PID)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "now-allowed"}})
	if err != nil || res.IsError {
		t.Fatalf("echo after lifting the deny: %v %+v", err, res)
	}
}

// TestEngineWakeCheckRidesTheKeepalive: with no timer of its own to drive
// it, the sleep check runs on the relay keepalive (the bridge's pings come
// back as pongs), so a clock jump is noticed at the next heartbeat.
func TestEngineWakeCheckRidesTheKeepalive(t *testing.T) {
	clk := &fakeWakeClock{w: time.Now().Round(0)}
	f := startEngine(t, oneServer, func(o *EngineOptions) {
		o.wakeClock = clk // real heartbeats, no injected ticks
		o.Tuning.PingInterval, o.Tuning.PongWait = 50*time.Millisecond, 5*time.Second
	})
	st := f.waitState(t, "connected", func(st State) bool { return st.Relay.Phase == "connected" })
	clk.advance(0, 2*time.Hour)
	f.waitState(t, "a fresh connection after the jump", func(s State) bool {
		return s.Relay.Phase == "connected" && s.Relay.Since.After(st.Relay.Since)
	})
}
