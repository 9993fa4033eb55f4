// Package testbin builds and locates the binaries that tests run as real
// child processes: the repo's own main packages (test MCP servers, daemons)
// and the npm peers installed under tools/npm.
package testbin

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"
)

var (
	mu     sync.Mutex
	binDir string            // shared by every test of this process
	built  map[string]string // pkg -> binary path
)

// Build compiles the main package pkg (an import path, or a path like
// "./cmd/svc" relative to the module root) once per test process and returns
// the binary's path. The binary lives in a temp dir shared by all tests of
// the process, because it must outlive any single test; call Cleanup from
// TestMain to remove it.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	root := RepoRoot(t)
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	if binDir == "" {
		dir, err := os.MkdirTemp("", "tether-testbin-")
		if err != nil {
			t.Fatalf("testbin: make temp dir: %v", err)
		}
		binDir = dir
		built = map[string]string{}
	}
	sum := sha256.Sum256([]byte(pkg))
	out := filepath.Join(binDir, path.Base(filepath.ToSlash(pkg))+"-"+hex.EncodeToString(sum[:4]))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testbin: go build %s: %v\n%s", pkg, err, msg)
	}
	built[pkg] = out
	return out
}

// Cleanup removes the binaries built by Build. It is optional (the OS temp
// dir is eventually cleaned) and meant for TestMain, after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
		binDir, built = "", nil
	}
}

// RepoRoot returns the module root: the nearest directory at or above the
// working directory that holds go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testbin: getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testbin: no go.mod above the working directory")
		}
		dir = parent
	}
}

const npmHint = "node/npm peers not installed; run `npm ci --prefix tools/npm`"

// NPMBin returns <root>/tools/npm/node_modules/.bin/<name>. When node or the
// binary is missing the test is skipped locally and fails on CI (CI set).
func NPMBin(t testing.TB, name string) string {
	t.Helper()
	Node(t)
	p := filepath.Join(RepoRoot(t), "tools", "npm", "node_modules", ".bin", name)
	if _, err := os.Stat(p); err != nil {
		missing(t, "%s: %s: %v", npmHint, name, err)
	}
	return p
}

// Node returns the path of node on PATH, with NPMBin's skip/fail rule.
func Node(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		missing(t, "%s: node is not on PATH: %v", npmHint, err)
	}
	return p
}

// missing skips on a developer machine but fails on CI, where the peers are
// part of the contract.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "" {
		t.Skipf(format, args...)
	}
	t.Fatalf(format, args...)
}
