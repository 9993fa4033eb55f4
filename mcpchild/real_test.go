//go:build unix

package mcpchild

import (
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testbin"
)

// A server started through a shell wrapper (as npx, uvx and `sh -c` do)
// leaves no process behind when it is stopped: not the wrapper, not the
// server, not the server's own child.
func TestStopThroughWrapperLeavesNoOrphans(t *testing.T) {
	bin := testbin.Build(t, testServerPkg)
	opts := testOptions(t)
	c := New(Spec{Name: "wrapped", Command: "sh", Args: []string{"-c", bin + " -spawn-grandchild"}}, opts)
	c.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, c, "a")
	cl.initialize("2025-11-25")
	if got := cl.toolText("echo", map[string]any{"text": "wrapped"}); got != "wrapped" {
		t.Fatalf("echo = %q", got)
	}
	pgid := c.Status().Pid
	var grandchild int
	re := regexp.MustCompile(`grandchild pid=(\d+)`)
	for _, l := range c.StderrLines() {
		if m := re.FindStringSubmatch(l); m != nil {
			grandchild, _ = strconv.Atoi(m[1])
		}
	}
	if grandchild == 0 {
		t.Fatalf("no grandchild pid in stderr: %q", c.StderrLines())
	}
	if err := syscall.Kill(grandchild, 0); err != nil {
		t.Fatalf("grandchild %d not running before stop: %v", grandchild, err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if left := settled(func() []string { return liveGroupMembers(t, pgid) }); len(left) > 0 {
		t.Fatalf("processes left in group %d after stop: %v", pgid, left)
	}
	if len(settled(func() []int { return aliveOf(grandchild) })) > 0 {
		t.Fatalf("grandchild %d survived the stop", grandchild)
	}
}

// The real reference server from npm, started the way users start it (npx),
// behaves like the Go test server: tools listed, echo, progress routed.
func TestServerEverythingThroughNpx(t *testing.T) {
	testbin.NPMBin(t, "mcp-server-everything") // skips (or fails in CI) without node
	dir := filepath.Join(testbin.RepoRoot(t), "tools", "npm")
	opts := testOptions(t)
	c := startChild(t, Spec{Name: "everything", Command: "npx", Args: []string{"--no-install", "mcp-server-everything"}, Cwd: dir}, opts)
	st := c.Status()
	if st.ToolCount < 5 {
		t.Fatalf("server-everything lists %d tools: %+v", st.ToolCount, st)
	}
	cl := newClient(t, c, "a")
	cl.initialize("2025-06-18")
	res := cl.mustCall("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"message": "from npx"}})
	if !contains(res, "from npx") {
		t.Fatalf("echo = %s", res)
	}
	pgid := st.Pid
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if left := settled(func() []string { return liveGroupMembers(t, pgid) }); len(left) > 0 {
		t.Fatalf("npx left processes behind: %v", left)
	}
}

func TestMissingBinaryNamesWhatAndWhere(t *testing.T) {
	statuses := make(chan Status, 100)
	opts := testOptions(t)
	opts.Env = []string{"PATH=/nonexistent/a:/nonexistent/b"}
	opts.OnStatus = func(s Status) { statuses <- s }
	c := New(Spec{Name: "ghost", Command: "no-such-mcp-server"}, opts)
	c.Start(context.Background())
	defer c.Stop(context.Background())
	st := waitStatus(t, statuses, func(s Status) bool { return s.LastError != "" })
	for _, want := range []string{"no-such-mcp-server", "/nonexistent/a", "/nonexistent/b"} {
		if !strings.Contains(st.LastError, want) {
			t.Errorf("error %q does not name %q", st.LastError, want)
		}
	}
}
