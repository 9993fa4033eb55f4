// Package e2e runs Tether end to end with real processes on loopback: the
// tether-relay binary, the tetherd binary with real stdio MCP children, and
// real MCP clients (the go-sdk and the MCP Inspector CLI).
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tether-dev/tether/internal/testbin"
	"github.com/tether-dev/tether/internal/waitbuf"
)

// afterRun holds what runs once all tests are done (the fault suite's
// table).
var afterRun []func()

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range afterRun {
		f()
	}
	testbin.Cleanup()
	os.Exit(code)
}

// logBuf captures a process's output; waitFor waits for a line in it
// without sleeping (waitbuf wakes it on every write).
type logBuf struct{ waitbuf.Buffer }

func newLogBuf() *logBuf { return &logBuf{} }

// waitFor blocks until the output contains s at or after byte offset from,
// and returns the offset just past it.
func (l *logBuf) waitFor(t *testing.T, from int, s string, timeout time.Duration) int {
	t.Helper()
	deadline := time.After(timeout)
	for {
		text, changed := l.Snapshot()
		if from <= len(text) {
			if i := strings.Index(text[from:], s); i >= 0 {
				return from + i + len(s)
			}
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %q in output:\n%s", timeout, s, text)
		}
	}
}

func (l *logBuf) len() int { return l.Len() }

// relayProc is one tether-relay serve process.
type relayProc struct {
	bin, secret, addr string
	cmd               *exec.Cmd
	out               *logBuf
	// wrap runs the relay through another command (ip netns exec NS).
	wrap []string
	// metricsAddr, when set, is where the relay serves its metrics
	// (--metrics-listen); its public address does not serve them.
	metricsAddr string
	// args are more serve flags (they override the defaults start gives).
	args []string
}

// transports maps a host:port to the transport that reaches it, for relays
// in a network namespace of their own; others use the default.
var transports sync.Map // string → http.RoundTripper

func transportFor(addr string) http.RoundTripper {
	if rt, ok := transports.Load(addr); ok {
		return rt.(http.RoundTripper)
	}
	return http.DefaultTransport
}

func (r *relayProc) http() *http.Client { return &http.Client{Transport: transportFor(r.addr)} }

// freeAddr picks a loopback port (the relay can then be restarted on it).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func startRelay(t *testing.T) *relayProc {
	t.Helper()
	r := &relayProc{
		bin:         testbin.Build(t, "./cmd/relay"),
		secret:      filepath.Join(t.TempDir(), "secret"),
		addr:        freeAddr(t),
		metricsAddr: freeAddr(t),
	}
	r.start(t)
	return r
}

// start runs serve on r.addr and returns once /healthz answers.
func (r *relayProc) start(t *testing.T) {
	t.Helper()
	r.out = newLogBuf()
	args := append(append(slices.Clone(r.wrap), r.bin), "serve", "--listen", r.addr, "--secret-file", r.secret, "--call-timeout", "30s",
		"--client-rate", "0") // the fault suite's callers run flat out on one token
	if r.metricsAddr != "" {
		args = append(args, "--metrics-listen", r.metricsAddr)
	}
	args = append(args, r.args...)
	r.cmd = exec.Command(args[0], args[1:]...)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := r.cmd
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r.out.waitFor(t, 0, "listening on http://", 15*time.Second)
	resp, err := r.http().Get(r.url() + "/healthz")
	if err != nil {
		t.Fatalf("relay healthz: %v", err)
	}
	resp.Body.Close()
}

func (r *relayProc) kill(t *testing.T) {
	t.Helper()
	r.cmd.Process.Kill()
	r.cmd.Wait()
}

func (r *relayProc) url() string { return "http://" + r.addr }

func (r *relayProc) mcpURL(dev, server string) string {
	return r.url() + "/mcp/" + dev + "/" + server
}

// token issues a token with the relay's own CLI.
func (r *relayProc) token(t *testing.T, dev, scope string) string {
	t.Helper()
	out, err := exec.Command(r.bin, "token", "--secret-file", r.secret, "--dev", dev, "--scope", scope, "--ttl", "1h").Output()
	if err != nil {
		t.Fatalf("issue token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

type bridgeStatus struct {
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since"`
	Servers   []struct {
		Name      string `json:"name"`
		State     string `json:"state"`
		ToolCount int    `json:"toolCount"`
		Error     string `json:"error"`
	} `json:"servers"`
}

func (r *relayProc) status(dev, tok string) (bridgeStatus, error) {
	var st bridgeStatus
	req, _ := http.NewRequest(http.MethodGet, r.url()+"/v1/bridges/"+dev, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := r.http().Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// waitServing polls the relay's status API (the only place that shows when
// the relay took the bridge's slot) until server is ready there.
func (r *relayProc) waitServing(t *testing.T, dev, tok, server string, timeout time.Duration) {
	t.Helper()
	r.waitServingSince(t, dev, tok, server, time.Time{}, timeout)
}

// waitServingSince is waitServing for a slot taken after since: a relay
// that was frozen still shows the old, dead socket until it notices.
func (r *relayProc) waitServingSince(t *testing.T, dev, tok, server string, since time.Time, timeout time.Duration) {
	t.Helper()
	r.waitStatus(t, dev, tok, server+" ready", timeout, func(st bridgeStatus) bool {
		if !st.Connected || st.Since.Before(since) {
			return false
		}
		for _, s := range st.Servers {
			if s.Name == server && s.State == "ready" {
				return true
			}
		}
		return false
	})
}

// waitStatus polls the relay's status API until ok holds.
func (r *relayProc) waitStatus(t *testing.T, dev, tok, what string, timeout time.Duration, ok func(bridgeStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last bridgeStatus
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = r.status(dev, tok)
		if lastErr == nil && ok(last) {
			return
		}
		time.Sleep(10 * time.Millisecond) // polling interval of a status API, not synchronisation by sleep
	}
	t.Fatalf("relay never showed %s for %s: last status %+v, err %v", what, dev, last, lastErr)
}

// assertNoToken fails if the token appears in any file under dir (logs,
// settings, the example config, …) or in any of the given outputs.
func assertNoToken(t *testing.T, token, dir string, outputs ...string) {
	t.Helper()
	if token == "" {
		return
	}
	for i, out := range outputs {
		if strings.Contains(out, token) {
			t.Errorf("the token appears in output %d", i)
		}
	}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSocket != 0 {
			return nil
		}
		if data, err := os.ReadFile(path); err == nil && strings.Contains(string(data), token) {
			t.Errorf("the token appears in %s", path)
		}
		return nil
	})
}

// tetherd is one tetherd process with its stderr captured.
type tetherd struct {
	cmd    *exec.Cmd
	log    *logBuf
	stdout *logBuf
	token  string
	home   string // its TETHER_HOME
}

// startTetherd runs tetherd with args; env adds to the test's environment.
// The bridge token goes in through $TETHER_TOKEN, never argv.
func startTetherd(t *testing.T, token string, env []string, args ...string) *tetherd {
	t.Helper()
	return startTetherdWrapped(t, nil, token, env, args...)
}

// startTetherdWrapped is startTetherd through another command (ip netns
// exec NS): the process's environment still carries the token, argv never.
func startTetherdWrapped(t *testing.T, wrap []string, token string, env []string, args ...string) *tetherd {
	t.Helper()
	bin := testbin.Build(t, "./cmd/svc")
	d := &tetherd{log: newLogBuf(), stdout: newLogBuf(), token: token, home: t.TempDir()}
	for _, kv := range env {
		if h, ok := strings.CutPrefix(kv, "TETHER_HOME="); ok {
			d.home = h
		}
	}
	argv := append(append(slices.Clone(wrap), bin), args...)
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Env = append(append(os.Environ(), "TETHER_HOME="+d.home, "TETHER_TOKEN="+token), env...)
	d.cmd.Stderr, d.cmd.Stdout = d.log, d.stdout
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.stop(t)
		// The token must never reach the log, stdout, or any file tetherd
		// wrote in its folder (logs/, settings.json, mcp.json, ...).
		assertNoToken(t, token, d.home, d.log.String(), d.stdout.String())
		if t.Failed() {
			t.Logf("tetherd log:\n%s", d.log.String())
		}
	})
	return d
}

// stop sends SIGTERM and waits for a clean exit.
func (d *tetherd) stop(t *testing.T) {
	if d.cmd.ProcessState != nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("tetherd exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-done
		t.Errorf("tetherd did not stop within 20s of SIGTERM")
	}
}

func writeConfig(t *testing.T, servers map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"mcpServers": servers})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "mcp.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// bearer adds an Authorization header to every request.
type bearer struct {
	tok  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.tok)
	return b.base.RoundTrip(r)
}

// connect opens a go-sdk client session to url. version "" is the SDK's newest.
func connect(t *testing.T, ctx context.Context, url, tok, version string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	return connectRetrying(t, ctx, url, tok, version, opts, -1)
}

// connectRetrying is connect with the transport's retries of the standalone
// GET stream: -1 none, 0 the SDK's default (what a real client runs with).
func connectRetrying(t *testing.T, ctx context.Context, url, tok, version string, opts *mcp.ClientOptions, retries int) *mcp.ClientSession {
	t.Helper()
	if opts == nil {
		opts = &mcp.ClientOptions{}
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, opts)
	tr := &mcp.StreamableClientTransport{
		Endpoint:   url,
		HTTPClient: &http.Client{Transport: bearer{tok, transportFor(hostOf(url))}},
		MaxRetries: retries,
	}
	cs, err := c.Connect(ctx, tr, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect %s (version %q): %v", url, version, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func callText(ctx context.Context, cs *mcp.ClientSession, tool string, args map[string]any) (string, error) {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return "", err
	}
	if res.IsError {
		return "", fmt.Errorf("tool error: %v", res.Content)
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String(), nil
}

// hostOf is the host:port of a URL.
func hostOf(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// scanLines returns the lines of s.
func scanLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

var _ = io.Discard

func writeFileT(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// callLines returns the lines of a child's call log that hold s.
func callLines(t *testing.T, path, s string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, l := range scanLines(string(b)) {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}
