package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeControl is a test double of the engine: it holds a State, records
// every command, and publishes changes to subscribers the way Control asks
// (current snapshot first, latest wins). The real engine is exercised end to
// end elsewhere.
type fakeControl struct {
	mu    sync.Mutex
	st    State
	subs  map[chan State]struct{}
	calls []string
	err   error // returned by every command when set
}

func newFakeControl() *fakeControl {
	return &fakeControl{
		st: State{
			Seq:     1,
			Version: "test",
			At:      time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			Engine:  EngineInfo{PID: 4242, Home: "/home/t/.config/tether", Started: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)},
			Relay:   RelayState{URL: "https://relay.example", Wanted: true, Phase: "connected", Since: time.Date(2026, 1, 2, 3, 1, 0, 0, time.UTC)},
			Token:   TokenState{Present: true, Source: "keychain", Last4: "wxyz", DevID: "alice", Scope: []string{"bridge"}},
			Servers: []ServerView{{Name: "github", Enabled: true, Kind: "stdio", Phase: "ready", PID: 99, ToolCount: 2, Tools: []string{"a", "b"}}},
			Calls:   []CallRecord{{At: time.Date(2026, 1, 2, 3, 2, 0, 0, time.UTC), Server: "github", Tool: "a", Duration: 1500 * time.Microsecond, Outcome: "ok"}},
		},
		subs: map[chan State]struct{}{},
	}
}

func (f *fakeControl) State(context.Context) (State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st, nil
}

func (f *fakeControl) Subscribe(ctx context.Context) (<-chan State, error) {
	ch := make(chan State, 1)
	f.mu.Lock()
	ch <- f.st
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, ch)
		close(ch)
	})
	return ch, nil
}

// publish changes the state and hands it to every subscriber.
func (f *fakeControl) publish(change func(*State)) State {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.st)
	f.st.Seq++
	for ch := range f.subs {
		select {
		case <-ch:
		default:
		}
		ch <- f.st
	}
	return f.st
}

func (f *fakeControl) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	return f.err
}

func (f *fakeControl) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeControl) Connect(context.Context) error    { return f.record("connect") }
func (f *fakeControl) Disconnect(context.Context) error { return f.record("disconnect") }
func (f *fakeControl) SetToken(_ context.Context, token string) error {
	if err := f.record("token " + token); err != nil {
		// A careless engine quoting the token: the server must scrub it.
		return fmt.Errorf("keychain refused %q: %w", token, err)
	}
	return nil
}
func (f *fakeControl) ClearToken(context.Context) error { return f.record("clear token") }
func (f *fakeControl) Reload(context.Context) error     { return f.record("reload") }
func (f *fakeControl) RestartServer(_ context.Context, name string) error {
	return f.record("restart " + name)
}
func (f *fakeControl) SetServerEnabled(_ context.Context, name string, enabled bool) error {
	return f.record(fmt.Sprintf("enabled %s %v", name, enabled))
}

func (f *fakeControl) SetRelay(_ context.Context, url string) error {
	return f.record("relay " + url)
}
func (f *fakeControl) Login(context.Context) (LoginState, error) {
	if err := f.record("login"); err != nil {
		return LoginState{}, err
	}
	return LoginState{Phase: LoginWaiting, Relay: "https://relay.example", UserCode: "BCDF-GHJK"}, nil
}
func (f *fakeControl) CancelLogin(context.Context) error { return f.record("cancel login") }
func (f *fakeControl) SetLinkRelay(_ context.Context, url string, unboundOK bool) error {
	return f.record(fmt.Sprintf("link relay %s %v", url, unboundOK))
}
func (f *fakeControl) ImportServers(_ context.Context, srcs []ImportSource) (ImportReport, error) {
	var names []string
	for _, s := range srcs {
		names = append(names, s.App+"="+s.Path)
	}
	if err := f.record("import " + strings.Join(names, ",")); err != nil {
		return ImportReport{}, err
	}
	return ImportReport{Dst: "/t/mcp.json", Sources: []SourceReport{{ImportSource: srcs[0], Found: true,
		Imported: []string{"github-claude"}, Skipped: []SkippedServer{{Name: "x", Reason: "no command"}}}}}, nil
}

// syncBuffer collects log output from the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// controlDir makes a short 0700 folder under the system temp dir: unix
// socket paths must fit in ~104 bytes and t.TempDir() paths can be longer.
func controlDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// serveFake serves a fakeControl on a fresh socket, logging into the
// returned buffer at debug level.
func serveFake(t *testing.T) (*ControlServer, *fakeControl, *syncBuffer) {
	t.Helper()
	fake := newFakeControl()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := ServeControl(t.Context(), filepath.Join(controlDir(t), "tether.sock"), fake, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, fake, logs
}

func dialFake(t *testing.T, srv *ControlServer) *ControlClient {
	t.Helper()
	cl, err := DialControl(t.Context(), srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestControlStateRoundTrip(t *testing.T) {
	srv, fake, _ := serveFake(t)
	cl := dialFake(t, srv)
	got, err := cl.State(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := fake.State(t.Context())
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Fatalf("state over the socket differs:\n got %s\nwant %s", g, w)
	}
}

func TestControlEventsFirstSnapshotThenChange(t *testing.T) {
	srv, fake, _ := serveFake(t)
	cl := dialFake(t, srv)
	ch, err := cl.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	first := recvState(t, ch)
	if first.Seq != 1 || first.Relay.Phase != "connected" {
		t.Fatalf("first event = seq %d phase %q, want the current state (seq 1, connected)", first.Seq, first.Relay.Phase)
	}
	want := fake.publish(func(s *State) { s.Relay.Phase = "backoff"; s.Relay.LastError = "line1\nline2" })
	got := recvState(t, ch)
	if mustJSON(t, got) != mustJSON(t, want) {
		t.Fatalf("change event = %s, want %s", mustJSON(t, got), mustJSON(t, want))
	}

	// The engine going away ends the stream and closes the channel.
	srv.Close()
	select {
	case st, ok := <-ch:
		if ok {
			t.Fatalf("got seq %d after the server closed, want the channel closed", st.Seq)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("subscription channel not closed after the server closed")
	}
}

func TestControlSubscribeEndsWithContext(t *testing.T) {
	srv, _, _ := serveFake(t)
	cl := dialFake(t, srv)
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := cl.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recvState(t, ch)
	cancel()
	for range ch { // drains until closed; the test times out otherwise
	}
}

func recvState(t *testing.T, ch <-chan State) State {
	t.Helper()
	select {
	case st, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed early")
		}
		return st
	case <-time.After(10 * time.Second):
		t.Fatal("no state event within 10s")
	}
	return State{}
}

func TestControlEventsKeepalive(t *testing.T) {
	old := controlKeepalive
	controlKeepalive = 20 * time.Millisecond
	t.Cleanup(func() { controlKeepalive = old })
	srv, _, _ := serveFake(t)

	resp := rawRequest(t, srv.Path(), http.MethodGet, "/v1/events", "")
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if sc.Text() == ": keepalive" {
			break
		}
	}
	if len(lines) < 3 || lines[0] != "event: state" || !strings.HasPrefix(lines[1], "data: {") || lines[2] != "" {
		t.Fatalf("stream starts %q, want event: state / data: {...} / blank", lines)
	}
	if lines[len(lines)-1] != ": keepalive" {
		t.Fatalf("no keepalive comment on an idle stream: %q", lines)
	}
}

// rawRequest talks HTTP to the socket without ControlClient, to see the wire.
func rawRequest(t *testing.T, socket, method, path, body string) *http.Response {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	req, err := http.NewRequestWithContext(t.Context(), method, "http://x"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestControlCommandsReachTheEngine(t *testing.T) {
	srv, fake, logs := serveFake(t)
	cl := dialFake(t, srv)
	ctx := t.Context()
	const token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkZXY6YWxpY2UifQ.s3cr3t-SIGNATURE+/=" // never logged
	name := "my server/with slash"
	steps := []struct {
		do   func() error
		want string
	}{
		{func() error { return cl.Connect(ctx) }, "connect"},
		{func() error { return cl.Disconnect(ctx) }, "disconnect"},
		{func() error { return cl.SetToken(ctx, token) }, "token " + token},
		{func() error { return cl.ClearToken(ctx) }, "clear token"},
		{func() error { return cl.Reload(ctx) }, "reload"},
		{func() error { return cl.RestartServer(ctx, name) }, "restart " + name},
		{func() error { return cl.SetServerEnabled(ctx, name, true) }, "enabled " + name + " true"},
		{func() error { return cl.SetServerEnabled(ctx, "github", false) }, "enabled github false"},
		{func() error { return cl.SetRelay(ctx, "https://relay.example/x") }, "relay https://relay.example/x"},
		{func() error { return cl.SetLinkRelay(ctx, "https://relay.example/y", false) }, "link relay https://relay.example/y false"},
		{func() error { return cl.SetLinkRelay(ctx, "https://relay.example/z", true) }, "link relay https://relay.example/z true"},
		{func() error {
			rep, err := cl.ImportServers(ctx, []ImportSource{{App: AppCursor, Path: "/h/.cursor/mcp.json"}, {App: "file", Path: "/x.json"}})
			if err == nil && (rep.Dst != "/t/mcp.json" || len(rep.Sources) != 1 || rep.Sources[0].App != AppCursor ||
				!slices.Equal(rep.Imported(), []string{"github-claude"}) || rep.Sources[0].Skipped[0].Reason != "no command") {
				err = fmt.Errorf("report did not round-trip: %+v", rep)
			}
			return err
		}, "import " + AppCursor + "=/h/.cursor/mcp.json,file=/x.json"},
		{func() error {
			st, err := cl.Login(ctx)
			if err == nil && (st.Phase != LoginWaiting || st.UserCode != "BCDF-GHJK" || st.Relay != "https://relay.example") {
				err = fmt.Errorf("login state did not round-trip: %+v", st)
			}
			return err
		}, "login"},
		{func() error { return cl.CancelLogin(ctx) }, "cancel login"},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d (%s): %v", i, s.want, err)
		}
		got := fake.recorded()
		if len(got) != i+1 || got[i] != s.want {
			t.Fatalf("after step %d the engine saw %q, want last %q", i, got, s.want)
		}
	}
	// DELETE /v1/token is the same as POST /v1/token/clear.
	resp := rawRequest(t, srv.Path(), http.MethodDelete, "/v1/token", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || fake.recorded()[len(steps)] != "clear token" {
		t.Fatalf("DELETE /v1/token: status %d, calls %q", resp.StatusCode, fake.recorded())
	}
	if strings.Contains(logs.String(), token) || strings.Contains(logs.String(), "s3cr3t") {
		t.Fatalf("the server logged the token:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "token set") {
		t.Fatalf("log lacks the token-set line (is the log captured at all?):\n%s", logs.String())
	}
}

func TestControlErrorsCarryTheMessage(t *testing.T) {
	srv, fake, logs := serveFake(t)
	cl := dialFake(t, srv)

	fake.err = &ControlError{Status: http.StatusNotFound, Message: `no server "nope"`}
	err := cl.RestartServer(t.Context(), "nope")
	var ce *ControlError
	if !errors.As(err, &ce) || ce.Status != http.StatusNotFound || ce.Message != `no server "nope"` {
		t.Fatalf("RestartServer error = %#v, want ControlError 404 with the engine's message", err)
	}

	fake.err = errors.New("keychain locked")
	const token = "tok-0123456789-SECRET"
	err = cl.SetToken(t.Context(), token)
	if !errors.As(err, &ce) || ce.Status != http.StatusInternalServerError || !strings.Contains(ce.Message, "keychain locked") {
		t.Fatalf("SetToken error = %#v, want a 500 with the engine's message", err)
	}
	if strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "[redacted]") {
		t.Fatalf("the token came back in the error: %v", err)
	}
	if strings.Contains(logs.String(), "SECRET") {
		t.Fatalf("the token reached the log:\n%s", logs.String())
	}

	for _, c := range []struct{ method, path, body, want string }{
		{"POST", "/v1/token", `{"token": "   "}`, "empty token"},
		{"POST", "/v1/token", `{"token": "abc-SECRET`, "body must be JSON"},
		{"POST", "/v1/token", `{"token": "` + strings.Repeat("A", maxControlBody) + `"}`, "over 65536 bytes"},
		{"GET", "/v1/nothing", "", "no such endpoint"},
	} {
		resp := rawRequest(t, srv.Path(), c.method, c.path, c.body)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct{ Error string }
		if json.Unmarshal(raw, &e) != nil || !strings.Contains(e.Error, c.want) || strings.Contains(string(raw), "SECRET") {
			t.Fatalf("%s %s: status %d body %s, want a JSON error containing %q", c.method, c.path, resp.StatusCode, raw, c.want)
		}
		if resp.StatusCode < 400 {
			t.Fatalf("%s %s: status %d", c.method, c.path, resp.StatusCode)
		}
	}
}

func TestControlDialWithoutEngine(t *testing.T) {
	dir := controlDir(t)
	sock := filepath.Join(dir, "tether.sock")
	if _, err := DialControl(t.Context(), sock); !errors.Is(err, ErrNoEngine) {
		t.Fatalf("dial with no socket file: %v, want ErrNoEngine", err)
	}
	makeStaleSocket(t, sock)
	if _, err := DialControl(t.Context(), sock); !errors.Is(err, ErrNoEngine) {
		t.Fatalf("dial a stale socket: %v, want ErrNoEngine", err)
	}
}

// makeStaleSocket leaves a socket file nobody listens on, like a crash does.
func makeStaleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("stale socket not left behind: %v", err)
	}
}

func TestControlTakesOverStaleSocket(t *testing.T) {
	dir := controlDir(t)
	sock := filepath.Join(dir, "tether.sock")
	makeStaleSocket(t, sock)
	srv, err := ServeControl(t.Context(), sock, newFakeControl(), nil)
	if err != nil {
		t.Fatalf("stale socket not taken over: %v", err)
	}
	defer srv.Close()
	if _, err := dialFake(t, srv).State(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestControlRefusesNonSocketFile(t *testing.T) {
	sock := filepath.Join(controlDir(t), "tether.sock")
	if err := os.WriteFile(sock, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ServeControl(t.Context(), sock, newFakeControl(), nil)
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("ServeControl over a regular file: %v, want a refusal", err)
	}
	if data, _ := os.ReadFile(sock); string(data) != "precious" {
		t.Fatal("the regular file was touched")
	}
}

func TestControlLiveEngineGivesErrEngineRunning(t *testing.T) {
	srv, _, _ := serveFake(t)
	_, err := ServeControl(t.Context(), srv.Path(), newFakeControl(), nil)
	var running *EngineRunningError
	if !errors.Is(err, ErrEngineRunning) || !errors.As(err, &running) || running.PID != 4242 || running.Unresponsive {
		t.Fatalf("second ServeControl: %v, want ErrEngineRunning with pid 4242 from /v1/state", err)
	}
	// The first engine is untouched.
	if _, err := dialFake(t, srv).State(t.Context()); err != nil {
		t.Fatalf("first engine broken by the second attempt: %v", err)
	}
}

// An engine that answers on the socket but holds no lock (an older build,
// or its lock file was deleted) must not lose its socket either.
func TestControlLiveEngineWithoutLock(t *testing.T) {
	sock := filepath.Join(controlDir(t), "tether.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: newControlHandler(newFakeControl(), slog.New(slog.DiscardHandler))}
	go hs.Serve(ln)
	defer hs.Close()

	_, err = ServeControl(t.Context(), sock, newFakeControl(), nil)
	var running *EngineRunningError
	if !errors.As(err, &running) || running.PID != 4242 {
		t.Fatalf("ServeControl beside an unlocked live engine: %v, want ErrEngineRunning pid 4242", err)
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("the live engine's socket was removed: %v", err)
	}
}

func TestControlConcurrentStartOneWins(t *testing.T) {
	for round := range 10 {
		sock := filepath.Join(controlDir(t), "tether.sock")
		if round%2 == 1 {
			makeStaleSocket(t, sock) // racing over a crashed engine's leftovers
		}
		start := make(chan struct{})
		type result struct {
			srv *ControlServer
			err error
		}
		results := make(chan result, 2)
		for range 2 {
			go func() {
				<-start
				srv, err := ServeControl(t.Context(), sock, newFakeControl(), nil)
				results <- result{srv, err}
			}()
		}
		close(start)
		var winners, losers int
		for range 2 {
			r := <-results
			switch {
			case r.err == nil:
				winners++
				defer r.srv.Close()
			case errors.Is(r.err, ErrEngineRunning):
				losers++
				var running *EngineRunningError
				if errors.As(r.err, &running) && running.Unresponsive {
					t.Errorf("round %d: loser saw an unresponsive engine: %v", round, r.err)
				}
			default:
				t.Fatalf("round %d: unexpected error %v", round, r.err)
			}
		}
		if winners != 1 || losers != 1 {
			t.Fatalf("round %d: %d winners, %d losers; want exactly one of each", round, winners, losers)
		}
		cl, err := DialControl(t.Context(), sock)
		if err != nil {
			t.Fatalf("round %d: winner not answering: %v", round, err)
		}
		cl.Close()
	}
}

func TestControlSocketAndLockModes(t *testing.T) {
	srv, _, _ := serveFake(t)
	for _, p := range []string{srv.Path(), filepath.Join(filepath.Dir(srv.Path()), LockFileName)} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %#o, want 0600", p, fi.Mode().Perm())
		}
	}
	srv.Close()
	if _, err := os.Lstat(srv.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket still there after Close: %v", err)
	}
	// The lock was released: a new engine starts on the same path.
	srv2, err := ServeControl(t.Context(), srv.Path(), newFakeControl(), nil)
	if err != nil {
		t.Fatalf("restart after Close: %v", err)
	}
	srv2.Close()
}

func TestControlStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	srv, err := ServeControl(ctx, filepath.Join(controlDir(t), "tether.sock"), newFakeControl(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-srv.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("server still serving after its context ended")
	}
}

func TestControlRefusesOpenFolder(t *testing.T) {
	dir := filepath.Join(controlDir(t), "home")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // whatever the umask
	_, err := ServeControl(t.Context(), filepath.Join(dir, "tether.sock"), newFakeControl(), nil)
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("ServeControl in a 0755 folder: %v, want a refusal naming %s and the fix", err, dir)
	}
	if _, err := os.Lstat(filepath.Join(dir, "tether.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a socket was created in the refused folder")
	}
}

// TestControlTimeouts: a client that stops mid-request and one that leaves
// an idle connection open are both cut off, while the event stream lives on
// past the read timeout.
func TestControlTimeouts(t *testing.T) {
	to := controlTimeouts{read: 300 * time.Millisecond, idle: 300 * time.Millisecond}
	fake := newFakeControl()
	srv, err := serveControl(t.Context(), filepath.Join(controlDir(t), "tether.sock"), fake, nil, to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("unix", srv.Path())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedWithin reads until the server closes c (or the bound passes).
	closedWithin := func(c net.Conn, bound time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(bound))
		_, err := io.Copy(io.Discard, c)
		return err == nil // EOF: the server closed it; a timeout is an error
	}

	// Headers promise a body that never comes.
	slow := dial()
	fmt.Fprintf(slow, "POST /v1/reload HTTP/1.1\r\nHost: tether\r\nContent-Length: 100\r\n\r\n")
	if !closedWithin(slow, 5*time.Second) {
		t.Error("a request whose body never came kept its connection")
	}

	// One request, then silence on a keep-alive connection.
	idle := dial()
	fmt.Fprintf(idle, "GET /v1/state HTTP/1.1\r\nHost: tether\r\n\r\n")
	if !closedWithin(idle, 5*time.Second) {
		t.Error("an idle keep-alive connection was never closed")
	}

	// The event stream outlives the read timeout: a change published after
	// several read timeouts still arrives.
	cc := dialFake(t, srv)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := cc.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	<-ch                    // the current snapshot
	time.Sleep(4 * to.read) // the scenario: a quiet stream longer than the read timeout
	fake.publish(func(s *State) { s.Version = "after-quiet" })
	select {
	case st, ok := <-ch:
		if !ok || st.Version != "after-quiet" {
			t.Fatalf("after a quiet spell the stream gave %+v (open %v)", st.Version, ok)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the event stream died during a quiet spell longer than the read timeout")
	}
}
