package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "module github.com/tether-dev/tether") {
		t.Fatalf("%s/go.mod is not the tether module", root)
	}
}

func TestBuildCachesAndRuns(t *testing.T) {
	const pkg = "./internal/testservers/rawecho"
	p1 := Build(t, pkg)
	p2 := Build(t, pkg)
	if p1 != p2 {
		t.Fatalf("second Build returned %s, want cached %s", p2, p1)
	}
	cmd := exec.Command(p1)
	cmd.Stdin = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run %s: %v", p1, err)
	}
	if got := strings.TrimSpace(string(out)); got != `{"jsonrpc":"2.0","id":1,"result":{}}` {
		t.Fatalf("ping output %q", got)
	}
	// The import path form builds a distinct binary of the same package.
	if p3 := Build(t, "github.com/tether-dev/tether/internal/testservers/rawecho"); p3 == p1 {
		t.Fatal("different pkg strings share one cache entry")
	}
}

func TestNodeAndNPMBin(t *testing.T) {
	node := Node(t)
	if out, err := exec.Command(node, "--version").Output(); err != nil || !strings.HasPrefix(string(out), "v") {
		t.Fatalf("node --version: %q %v", out, err)
	}
	bin := NPMBin(t, "mcp-server-everything")
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		t.Fatalf("stat %s: %v", bin, err)
	}
}
