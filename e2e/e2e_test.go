package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tether-dev/tether/internal/testbin"
)

const dev = "alice"

// testServer starts tetherd with the repo's Go test MCP server as "test".
func testServer(t *testing.T, r *relayProc, env ...string) *tetherd {
	t.Helper()
	cfg := writeConfig(t, map[string]any{
		"test": map[string]any{"command": testbin.Build(t, "./internal/testservers/mcpserver")},
	})
	return startTetherd(t, r.token(t, dev, "bridge"), env, "run", "--config", cfg, "--relay", r.url(), "--dev-id", dev)
}

// TestInspectorEverything: the MCP Inspector CLI lists and calls
// server-everything (run by npx, resolved locally in tools/npm) through
// tether-relay and tetherd.
func TestInspectorEverything(t *testing.T) {
	inspector := testbin.NPMBin(t, "mcp-inspector")
	testbin.NPMBin(t, "mcp-server-everything")
	r := startRelay(t)
	cfg := writeConfig(t, map[string]any{
		"everything": map[string]any{
			"command": "npx", "args": []string{"mcp-server-everything"},
			"cwd": filepath.Join(testbin.RepoRoot(t), "tools", "npm"),
		},
	})
	startTetherd(t, r.token(t, dev, "bridge"), nil, "run", "--config", cfg, "--relay", r.url())
	client := r.token(t, dev, "client")
	r.waitServing(t, dev, client, "everything", 90*time.Second)

	url := r.mcpURL(dev, "everything")
	inspect := func(args ...string) string {
		t.Helper()
		base := []string{"--cli", url, "--transport", "http", "--header", "Authorization: Bearer " + client}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, inspector, append(base, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("inspector %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	list := inspect("--method", "tools/list")
	if !strings.Contains(list, `"name": "echo"`) {
		t.Fatalf("tools/list has no echo tool:\n%s", list)
	}
	call := inspect("--method", "tools/call", "--tool-name", "echo", "--tool-arg", "message=hi-from-inspector")
	if !strings.Contains(call, "hi-from-inspector") {
		t.Fatalf("echo call did not echo:\n%s", call)
	}
}

// TestGoSDKClient: both MCP eras of the go-sdk client through the full path.
func TestGoSDKClient(t *testing.T) {
	r := startRelay(t)
	testServer(t, r)
	client := r.token(t, dev, "client")
	r.waitServing(t, dev, client, "test", 30*time.Second)
	url := r.mcpURL(dev, "test")

	for _, version := range []string{"2025-11-25", ""} {
		name := version
		if name == "" {
			name = "newest"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			// echo
			cs := connect(t, ctx, url, client, version, nil)
			if got, err := callText(ctx, cs, "echo", map[string]any{"text": "hello"}); err != nil || got != "hello" {
				t.Fatalf("echo = %q, %v", got, err)
			}

			// progress notifications reach the caller
			progress := make(chan float64, 10)
			pcs := connect(t, ctx, url, client, version, &mcp.ClientOptions{
				ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
					progress <- req.Params.Progress
				},
			})
			res, err := pcs.CallTool(ctx, &mcp.CallToolParams{
				Name: "progress", Arguments: map[string]any{"steps": 3},
				Meta: mcp.Meta{"progressToken": "p-" + name},
			})
			if err != nil || res.IsError {
				t.Fatalf("progress call: %v %v", res, err)
			}
			// The SDK may dispatch notifications after the result; wait for them.
			for i := 1; i <= 3; i++ {
				select {
				case p := <-progress:
					if p != float64(i) {
						t.Fatalf("progress %d = %v", i, p)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("got %d progress notifications, want 3", i-1)
				}
			}

			// cancellation: a long sleep is cut short, and the session still works
			cctx, ccancel := context.WithCancel(ctx)
			errc := make(chan error, 1)
			start := time.Now()
			go func() {
				_, err := callText(cctx, cs, "sleep", map[string]any{"ms": 60000})
				errc <- err
			}()
			time.AfterFunc(300*time.Millisecond, ccancel)
			if err := <-errc; err == nil {
				t.Fatal("cancelled sleep returned no error")
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("cancel took %v", d)
			}
			if got, err := callText(ctx, cs, "echo", map[string]any{"text": "after-cancel"}); err != nil || got != "after-cancel" {
				t.Fatalf("echo after cancel = %q, %v", got, err)
			}

			// two sessions × 50 parallel calls never see each other's answers
			a := connect(t, ctx, url, client, version, nil)
			b := connect(t, ctx, url, client, version, nil)
			var wg sync.WaitGroup
			var bad atomic.Int32
			for i := range 50 {
				for j, s := range []*mcp.ClientSession{a, b} {
					wg.Go(func() {
						want := fmt.Sprintf("s%d-call%d-%s", j, i, name)
						got, err := callText(ctx, s, "echo", map[string]any{"text": want})
						if err != nil || got != want {
							bad.Add(1)
							t.Errorf("session %d call %d: got %q, %v", j, i, got, err)
						}
					})
				}
			}
			wg.Wait()
			if bad.Load() != 0 {
				t.Fatalf("%d calls failed or crossed", bad.Load())
			}
		})
	}
}

// TestRelayRestartUnderLoad kills the relay under load and starts it again
// on the same port: the bridge must serve again within 2 s of the relay
// listening, and no caller may ever get another caller's answer.
func TestRelayRestartUnderLoad(t *testing.T) {
	r := startRelay(t)
	testServer(t, r)
	client := r.token(t, dev, "client")
	r.waitServing(t, dev, client, "test", 30*time.Second)
	url := r.mcpURL(dev, "test")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ok, failed, crossed atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
				cs, err := connectQuiet(cctx, url, client)
				if err != nil {
					ccancel()
					failed.Add(1)
					continue
				}
				for k := 0; k < 20 && cctx.Err() == nil; k++ {
					want := fmt.Sprintf("w%d-i%d-k%d", w, i, k)
					got, err := callText(cctx, cs, "echo", map[string]any{"text": want})
					switch {
					case err != nil:
						failed.Add(1)
					case got != want:
						crossed.Add(1)
						t.Errorf("caller %s got %q", want, got)
					default:
						ok.Add(1)
					}
					if err != nil {
						break
					}
				}
				cs.Close()
				ccancel()
			}
		})
	}
	// Let load build up, then kill the relay.
	waitCount(t, &ok, 200, 20*time.Second)
	r.kill(t)
	r.start(t)
	listening := time.Now()
	r.waitServing(t, dev, client, "test", 10*time.Second)
	resumed := time.Since(listening)
	// Serving means calls succeed again, not only a status line.
	before := ok.Load()
	waitCount(t, &ok, before+50, 10*time.Second)
	cancel()
	wg.Wait()
	t.Logf("bridge serving again %v after the relay listened; calls ok=%d failed=%d crossed=%d", resumed, ok.Load(), failed.Load(), crossed.Load())
	if resumed > 2*time.Second {
		t.Fatalf("bridge took %v to serve again (want ≤ 2s)", resumed)
	}
	if crossed.Load() != 0 {
		t.Fatalf("%d responses went to the wrong caller", crossed.Load())
	}
}

func connectQuiet(ctx context.Context, url, tok string) (*mcp.ClientSession, error) {
	c := mcp.NewClient(&mcp.Implementation{Name: "load", Version: "1"}, nil)
	return c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: url, HTTPClient: &http.Client{Transport: bearer{tok, transportFor(hostOf(url))}}, MaxRetries: -1,
	}, nil)
}

func waitCount(t *testing.T, n *atomic.Int64, want int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for n.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("count %d did not reach %d within %v", n.Load(), want, timeout)
		}
		time.Sleep(5 * time.Millisecond) // polling a counter, not synchronisation
	}
}

// TestQuickMode: --mcp-cmd serves one command as "default".
func TestQuickMode(t *testing.T) {
	r := startRelay(t)
	srv := testbin.Build(t, "./internal/testservers/mcpserver")
	startTetherd(t, r.token(t, dev, "bridge"), nil, "run", "--relay", r.url(), "--mcp-cmd", "'"+srv+"' -era both", "--mcp-env", "X=1")
	client := r.token(t, dev, "client")
	r.waitServing(t, dev, client, "default", 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := connect(t, ctx, r.mcpURL(dev, "default"), client, "", nil)
	if got, err := callText(ctx, cs, "echo", map[string]any{"text": "quick"}); err != nil || got != "quick" {
		t.Fatalf("echo = %q, %v", got, err)
	}
}

// TestMissingBinary: a server whose command does not exist is logged with
// its name and the PATH searched, and the other servers keep serving.
func TestMissingBinary(t *testing.T) {
	r := startRelay(t)
	cfg := writeConfig(t, map[string]any{
		"good":   map[string]any{"command": testbin.Build(t, "./internal/testservers/mcpserver")},
		"broken": map[string]any{"command": "no-such-mcp-server-xyz"},
	})
	d := startTetherd(t, r.token(t, dev, "bridge"), []string{"PATH=/usr/bin:/bin"}, "run", "--config", cfg, "--relay", r.url())
	d.log.waitFor(t, 0, `level=ERROR msg="mcp server failed" server=broken`, 30*time.Second)
	line := ""
	for _, l := range scanLines(d.log.String()) {
		if strings.Contains(l, "no-such-mcp-server-xyz") && strings.Contains(l, "level=ERROR") {
			line = l
		}
	}
	if line == "" || !strings.Contains(line, "/usr/bin:/bin") {
		t.Fatalf("no error line naming the binary and PATH; log:\n%s", d.log.String())
	}
	client := r.token(t, dev, "client")
	r.waitServing(t, dev, client, "good", 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := connect(t, ctx, r.mcpURL(dev, "good"), client, "2025-11-25", nil)
	if got, err := callText(ctx, cs, "echo", map[string]any{"text": "still-up"}); err != nil || got != "still-up" {
		t.Fatalf("echo = %q, %v", got, err)
	}
}

// TestRunErrors: the messages tell the user what to do.
func TestRunErrors(t *testing.T) {
	bin := testbin.Build(t, "./cmd/svc")
	home := t.TempDir()
	cmd := exec.Command(bin, "run")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "TETHER_HOME=" + home}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no relay URL") || !strings.Contains(string(out), filepath.Join(home, "settings.json")) {
		t.Errorf("tetherd run with no relay: err=%v, output:\n%s", err, out)
	}

	// No token and no mcp.json yet: tetherd creates a commented example
	// config, keeps running, and says how to give it a token; `tetherd
	// status` shows the same.
	d := startTetherd(t, "", []string{"HOME=" + home}, "run", "--relay", "http://127.0.0.1:1")
	d.log.waitFor(t, 0, "created an example mcp.json", 30*time.Second)
	d.log.waitFor(t, 0, "tetherd token set", 30*time.Second)
	example, err := os.ReadFile(filepath.Join(d.home, "mcp.json"))
	if err != nil || !strings.Contains(string(example), "//") {
		t.Fatalf("example mcp.json: %v\n%s", err, example)
	}
	st := exec.Command(bin, "status")
	st.Env = append(os.Environ(), "TETHER_HOME="+d.home)
	out, err = st.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "no bridge token") || !strings.Contains(string(out), "disabled") {
		t.Errorf("tetherd status: %v\n%s", err, out)
	}
}

// TestDemo: `tetherd demo` prints a URL and a token that a go-sdk client can use.
func TestDemo(t *testing.T) {
	d := startTetherd(t, "", nil, "demo")
	d.stdout.waitFor(t, 0, "Press Ctrl-C", 60*time.Second)
	out := d.stdout.String()
	url := regexp.MustCompile(`MCP URL:\s+(\S+)`).FindStringSubmatch(out)
	tok := regexp.MustCompile(`Authorization:\s+Bearer\s+(\S+)`).FindStringSubmatch(out)
	if url == nil || tok == nil {
		t.Fatalf("demo output lacks URL or token:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := connect(t, ctx, url[1], tok[1], "", nil)
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	if strings.Join(names, ",") != "echo,time" {
		t.Fatalf("demo tools = %v", names)
	}

	// The Inspector command the demo prints, run as printed (with the local
	// copy of the Inspector in place of npx's download).
	line := regexp.MustCompile(`(?m)^\s*npx @modelcontextprotocol/inspector (--cli .*)$`).FindStringSubmatch(out)
	if line == nil {
		t.Fatalf("demo output lacks the inspector command:\n%s", out)
	}
	var args []string
	for _, m := range regexp.MustCompile(`"([^"]*)"|(\S+)`).FindAllStringSubmatch(line[1], -1) {
		args = append(args, m[1]+m[2])
	}
	ictx, icancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer icancel()
	res2, err := exec.CommandContext(ictx, testbin.NPMBin(t, "mcp-inspector"), args...).CombinedOutput()
	if err != nil || !strings.Contains(string(res2), `"text": "hello"`) {
		t.Fatalf("inspector %q: %v\n%s", args, err, res2)
	}
}

// TestSecondRunAttaches: a second `tetherd run` for the same user finds the
// running engine over the control socket and follows it instead of taking
// the relay slot from it.
func TestSecondRunAttaches(t *testing.T) {
	r := startRelay(t)
	cfg := writeConfig(t, map[string]any{"test": map[string]any{"command": testbin.Build(t, "./internal/testservers/mcpserver")}})
	tok := r.token(t, dev, "bridge")
	first := startTetherd(t, tok, nil, "run", "--config", cfg, "--relay", r.url())
	client := r.token(t, dev, "client")
	r.waitServing(t, dev, client, "test", 30*time.Second)
	before, err := r.status(dev, client)
	if err != nil {
		t.Fatal(err)
	}

	second := startTetherd(t, tok, []string{"TETHER_HOME=" + first.home}, "run", "--config", cfg, "--relay", r.url())
	second.stdout.waitFor(t, 0, fmt.Sprintf("already running for this user (pid %d)", first.cmd.Process.Pid), 30*time.Second)
	second.stdout.waitFor(t, 0, "connected to 127.0.0.1", 30*time.Second)
	second.stop(t)

	after, err := r.status(dev, client)
	if err != nil || !after.Connected || !after.Since.Equal(before.Since) {
		t.Fatalf("the first engine lost its slot: before %+v after %+v %v", before, after, err)
	}
}

// TestConfigImport: `tetherd config import` copies the servers of the
// other apps' configs found under HOME into Tether's mcp.json, disabled, and
// a second run adds nothing.
func TestConfigImport(t *testing.T) {
	bin := testbin.Build(t, "./cmd/svc")
	home, tetherHome := t.TempDir(), t.TempDir()
	cursor := filepath.Join(home, ".cursor", "mcp.json")
	if err := os.MkdirAll(filepath.Dir(cursor), 0o700); err != nil {
		t.Fatal(err)
	}
	// Cursor's format, with a comment and a trailing comma as editors allow.
	writeFileT(t, cursor, `{
  // my tools
  "mcpServers": {
    "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"]},
  }
}`)
	run := func() string {
		cmd := exec.Command(bin, "config", "import")
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "TETHER_HOME="+tetherHome)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("config import: %v\n%s", err, out)
		}
		return string(out)
	}
	out := run()
	if !strings.Contains(out, "imported 1 (github)") || !strings.Contains(out, "disabled") {
		t.Fatalf("config import output:\n%s", out)
	}
	data, err := os.ReadFile(filepath.Join(tetherHome, "mcp.json"))
	if err != nil || !strings.Contains(string(data), `"github"`) || !strings.Contains(string(data), `"disabled": true`) {
		t.Fatalf("mcp.json after import: %v\n%s", err, data)
	}
	if again := run(); !strings.Contains(again, "Nothing new to import") {
		t.Fatalf("second import:\n%s", again)
	}
}
