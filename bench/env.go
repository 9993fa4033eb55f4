//go:build linux

package main

import (
	"github.com/tether-dev/tether/internal/waitbuf"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// env is the run's shared state: the built binaries, the npm peers, and
// every process started, so each section can end them all.
type env struct {
	root    string // module root
	dir     string // temp dir: binaries, secrets, configs
	log     *slog.Logger
	verbose bool

	tetherd, relay, mcpserver, rawecho string // binaries
	tray                               string // the tray app; "" when -bin has none
	node, tagBridge, supergateway      string // "" when node or the peers are missing

	mu    sync.Mutex
	procs []*proc
	paths []path // the four paths' processes, shared by latency and throughput
}

func newEnv(ctx context.Context, logger *slog.Logger, verbose bool, binDir string) (*env, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tether-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	e := &env{root: root, dir: dir, log: logger, verbose: verbose}
	bins := []struct {
		dst *string
		pkg string
		out string
	}{
		{&e.tetherd, "./cmd/svc", "tetherd"},
		{&e.relay, "./cmd/relay", "tether-relay"},
		{&e.mcpserver, "./internal/testservers/mcpserver", "mcpserver"},
		{&e.rawecho, "./internal/testservers/rawecho", "rawecho"},
		{&e.tray, "./cmd/tray", "tether"},
	}
	for _, b := range bins {
		if binDir != "" {
			*b.dst = filepath.Join(binDir, b.out)
			if b.out == "tether" && !fileExists(*b.dst) {
				*b.dst = "" // older -bin folders have no tray; its row says so
				continue
			}
			if !fileExists(*b.dst) {
				os.RemoveAll(dir)
				return nil, fmt.Errorf("-bin: %s not found", *b.dst)
			}
			continue
		}
		*b.dst = filepath.Join(dir, b.out)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", *b.dst, b.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("build %s: %w\n%s", b.pkg, err, out)
		}
	}
	if node, err := exec.LookPath("node"); err == nil {
		nm := filepath.Join(root, "tools/npm/node_modules")
		tag := filepath.Join(nm, "@tournesol-tag/mcp-bridge/dist/cli.js")
		sg := filepath.Join(nm, "supergateway/dist/index.js")
		if fileExists(tag) && fileExists(sg) {
			e.node, e.tagBridge, e.supergateway = node, tag, sg
		}
	}
	return e, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run bench from inside the tether module (go run ./bench)")
	}
	return filepath.Dir(mod), nil
}

// needNode says why peer rows cannot run, or "".
func (e *env) needNode() string {
	if e.node == "" {
		return "node or tools/npm peers missing (run: npm ci --prefix tools/npm)"
	}
	return ""
}

func (e *env) close() {
	e.stopAll()
	os.RemoveAll(e.dir)
}

// stopAll ends every process this run started, newest first.
func (e *env) stopAll() {
	e.mu.Lock()
	procs := e.procs
	e.procs = nil
	e.paths = nil
	e.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		start := time.Now()
		procs[i].stop()
		e.log.Debug("stopped", "proc", procs[i].name, "took", time.Since(start))
	}
}

// proc is one started process with its combined output captured.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *waitbuf.Buffer
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// start runs a process in its own process group (so node's children and
// the bridge's MCP children end with it) and keeps its output.
func (e *env) start(name string, extraEnv []string, bin string, args ...string) (*proc, error) {
	// Bounded: a chatty peer must not grow the harness's memory.
	p := &proc{name: name, out: waitbuf.Bounded(1 << 20), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = e.dir
	p.cmd.Env = append(os.Environ(), extraEnv...)
	var w io.Writer = p.out
	if e.verbose {
		w = io.MultiWriter(p.out, prefixWriter{name})
	}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the group, then SIGKILL after half a second: a
// graceful shutdown is not measured, and the relay's waits for open SSE
// streams would only make the run longer.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(500 * time.Millisecond):
		syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
	// Children that outlived the leader (or ignored SIGTERM) go too.
	syscall.Kill(-p.pid(), syscall.SIGKILL)
}

// kill is SIGKILL to the process only (a crash, not a shutdown).
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// waitOutput waits for s in the process's output, failing early if it exits.
func (p *proc) waitOutput(ctx context.Context, s string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		text, changed := p.out.Snapshot()
		if strings.Contains(text, s) {
			return nil
		}
		select {
		case <-changed:
		case <-p.done:
			return fmt.Errorf("%s exited (%v) before printing %q:\n%s", p.name, p.err, s, tail(p.out.String(), 2000))
		case <-ctx.Done():
			return fmt.Errorf("%s did not print %q within %v:\n%s", p.name, s, timeout, tail(p.out.String(), 2000))
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

type prefixWriter struct{ name string }

func (w prefixWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		fmt.Fprintf(os.Stderr, "[%s] %s\n", w.name, line)
	}
	return len(p), nil
}

// freeAddr picks a loopback port that a process can then listen on (and
// listen on again after a restart).
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}
