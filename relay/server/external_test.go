package server

import (
	"bytes"
	"context"
	"encoding/json"
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
)

// Tests with real npm peers: the TS SDK client, the MCP Inspector CLI and
// the published tag-mcp-bridge running server-everything.

const npmDir = "../../tools/npm/node_modules"

func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is required in CI")
		}
		t.Skip("node not on PATH; these tests need node and tools/npm")
	}
	if _, err := os.Stat(npmDir); err != nil {
		t.Fatalf("npm peers missing at %s: %v", npmDir, err)
	}
	return node
}

func absNPM(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(npmDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// syncBuf collects a child's output for failure messages.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTSClientThroughRelay(t *testing.T) {
	node := requireNode(t)
	r := newTestRelay(t, 30*time.Second)
	dialFakeBridge(t, r, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "testdata/ts_client.mjs")
	cmd.Env = append(os.Environ(),
		"SDK_DIR="+absNPM(t, "@modelcontextprotocol/sdk"),
		"MCP_URL="+r.mcpURL("alice", "everything"),
		"MCP_TOKEN="+mustToken(t, "alice", ScopeClient))
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("ts client: %v\n%s\n%s", err, out, stderr)
	}
	var got struct {
		Tools     []string
		Text      string
		SessionID string
		Protocol  string
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &got); err != nil {
		t.Fatalf("ts client output %q: %v", out, err)
	}
	t.Logf("TS SDK client: protocol %s, session %q", got.Protocol, got.SessionID)
	if !slices.Contains(got.Tools, "echo") || got.Text != "from ts" {
		t.Fatalf("ts client got %+v", got)
	}
}

func TestInspectorCLIThroughRelay(t *testing.T) {
	node := requireNode(t)
	r := newTestRelay(t, 30*time.Second)
	dialFakeBridge(t, r, "alice")
	inspector := absNPM(t, ".bin/mcp-inspector")
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		full := append([]string{inspector, "--cli", r.mcpURL("alice", "everything"), "--transport", "http",
			"--header", "Authorization: Bearer " + mustToken(t, "alice", ScopeClient)}, args...)
		cmd := exec.CommandContext(ctx, node, full...)
		// The inspector writes a catalog file by default; keep it in the test's dir.
		cmd.Env = append(os.Environ(), "MCP_CATALOG_PATH="+filepath.Join(t.TempDir(), "catalog.json"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("inspector %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("--method", "tools/list"); !strings.Contains(out, `"echo"`) {
		t.Fatalf("inspector tools/list:\n%s", out)
	}
	if out := run("--method", "tools/call", "--tool-name", "echo", "--tool-arg", "message=inspected"); !strings.Contains(out, "inspected") {
		t.Fatalf("inspector tools/call:\n%s", out)
	}
}

// TestTAGBridge runs the published tag-mcp-bridge (token from the
// environment, not argv) with server-everything behind it, and a go-sdk
// client of each era calls echo through the relay's MCP façade.
func TestTAGBridge(t *testing.T) {
	node := requireNode(t)
	registered := make(chan string, 4)
	srv := &Server{Verifier: &Verifier{Secret: testSecret}, CallTimeout: 30 * time.Second,
		onRegister: func(dev, protocol string) { registered <- dev + "/" + protocol }}
	r := startRelay(t, srv)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	everything := absNPM(t, "@modelcontextprotocol/server-everything/dist/index.js")
	cmd := exec.CommandContext(ctx, node, absNPM(t, "@tournesol-tag/mcp-bridge/dist/cli.js"),
		"--relay", r.ts.URL, "--mcp-cmd", node+" "+everything+" stdio")
	cmd.Env = append(os.Environ(), "TAG_BRIDGE_TOKEN="+mustToken(t, "carol", ScopeBridge))
	logs := &syncBuf{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("tag-mcp-bridge output:\n%s", logs.String())
		}
	})
	select {
	case got := <-registered:
		if got != "carol/tag" {
			t.Fatalf("registered %q", got)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("tag-mcp-bridge never connected:\n%s", logs.String())
	}

	hc := authClient(mustToken(t, "carol", ScopeClient))
	resp, err := hc.Get(r.ts.URL + "/v1/bridges/carol")
	if err != nil {
		t.Fatal(err)
	}
	var st bridgeStatus
	json.Unmarshal([]byte(readAll(t, resp)), &st)
	if !st.Connected || st.Protocol != "tag" || len(st.Servers) != 1 || st.Servers[0].Name != "default" || st.Servers[0].ToolCount == 0 {
		t.Fatalf("status %+v", st)
	}
	if resp, _ := hc.Post(r.mcpURL("carol", "other"), "application/json", strings.NewReader(`{}`)); resp.StatusCode != 404 {
		t.Fatalf("unknown TAG server: %d", resp.StatusCode)
	}

	for _, version := range eras {
		t.Run(version, func(t *testing.T) {
			cs := connectClient(t, r.mcpURL("carol", "default"), mustToken(t, "carol", ScopeClient), version, nil)
			if stateless := version >= "2026-07-28"; (cs.ID() == "") != stateless {
				t.Fatalf("session id %q at %s", cs.ID(), version)
			}
			tools, err := cs.ListTools(context.Background(), nil)
			if err != nil {
				t.Fatalf("tools/list: %v", err)
			}
			if !slices.ContainsFunc(tools.Tools, func(tl *mcp.Tool) bool { return tl.Name == "echo" }) {
				t.Fatalf("no echo among %d tools", len(tools.Tools))
			}
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hi " + version}})
			if err != nil {
				t.Fatalf("tools/call: %v", err)
			}
			if got := toolText(t, res); got != "Echo: hi "+version {
				t.Fatalf("echo = %q", got)
			}
			res, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "no-such-tool", Arguments: map[string]any{}})
			if err == nil && !res.IsError {
				t.Fatalf("unknown tool succeeded: %+v", res)
			}
		})
	}
}
