//go:build linux || darwin

package mcpchild

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startSh starts `sh -c script` the way Child does: Resolve, then startProcess.
func startSh(t *testing.T, script string, opts procOptions) *process {
	t.Helper()
	spec := Spec{Name: "test", Command: "sh", Args: []string{"-c", script}}
	path, _, err := Resolve(spec, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	if opts.Env == nil {
		opts.Env = os.Environ()
	}
	p, err := startProcess(spec, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.stop(100 * time.Millisecond) })
	return p
}

// stdoutLines delivers the child's stdout line by line.
func stdoutLines(p *process) <-chan string {
	ch := make(chan string, 16)
	go func() {
		defer close(ch)
		r := bufio.NewReader(p.Stdout)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				ch <- strings.TrimSuffix(line, "\n")
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

func nextLine(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("stdout closed before the expected line")
		}
		return l
	case <-time.After(20 * time.Second):
		t.Fatal("timed out waiting for a line on stdout")
	}
	return ""
}

func waitDone(t *testing.T, p *process) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("process not reaped within 20s")
	}
}

// liveGroupMembers lists the processes whose process group is pgid and that
// are not zombies (a killed grandchild is reparented and may stay a zombie
// until its new parent reaps it; it runs no code). Without /proc (macOS) it
// can only say whether the group exists: kill(-pgid, 0).
func liveGroupMembers(t *testing.T, pgid int) []string {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return []string{"group " + strconv.Itoa(pgid) + " exists"}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var live []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // state ppid pgrp ...
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			live = append(live, e.Name()+" "+s[:strings.LastIndexByte(s, ')')+1]+" "+f[0])
		}
	}
	return live
}

// settled polls check until it reports nothing left, for at most 5 s, and
// returns its last answer. A SIGKILLed process is torn down asynchronously:
// the kernel closes its files (so our pipes see EOF and Done fires) a moment
// before it becomes a zombie, and the death of a process that is not our
// child cannot be awaited portably. So the checks below poll -- with a bound,
// and they still fail if anything is left after it.
func settled[T any](check func() []T) []T {
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := check()
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// aliveOf returns the pids that are still running.
func aliveOf(pids ...int) []int {
	var out []int
	for _, p := range pids {
		if alive(p) {
			out = append(out, p)
		}
	}
	return out
}

// alive reports whether pid is a running (non-zombie) process.
func alive(pid int) bool {
	if runtimeHasNoProc() {
		return syscall.Kill(pid, 0) == nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])[0] != "Z"
}

func runtimeHasNoProc() bool {
	_, err := os.Stat("/proc/self/stat")
	return err != nil
}

// TestProcStopKillsForkingWrapper is the npx/uvx trap: the process we start
// forks the real work and waits. Signalling only the PID we started would
// leave the sleeps running.
func TestProcStopKillsForkingWrapper(t *testing.T) {
	scripts := map[string]string{
		"fork and wait": `sleep 600 & echo $!; sleep 600 & echo $!; wait`,
		// Like npx: the wrapper execs another shell that forks.
		"exec then fork": `exec sh -c 'sleep 600 & echo $!; sleep 600 & echo $!; wait'`,
	}
	for name, script := range scripts {
		t.Run(name, func(t *testing.T) {
			p := startSh(t, script, procOptions{})
			lines := stdoutLines(p)
			var kids []int
			for range 2 {
				pid, err := strconv.Atoi(nextLine(t, lines))
				if err != nil {
					t.Fatal(err)
				}
				kids = append(kids, pid)
			}
			if n := len(liveGroupMembers(t, p.Pid)); n != 3 && !runtimeHasNoProc() {
				t.Fatalf("process group has %d live members before stop, want 3", n)
			}
			grace := 300 * time.Millisecond
			start := time.Now()
			if err := p.stop(grace); err != nil {
				t.Fatal(err)
			}
			elapsed := time.Since(start)
			if live := settled(func() []string { return liveGroupMembers(t, p.Pid) }); len(live) > 0 {
				t.Fatalf("processes left in group %d after stop: %q", p.Pid, live)
			}
			if left := settled(func() []int { return aliveOf(kids...) }); len(left) > 0 {
				t.Fatalf("grandchildren %v still running after stop", left)
			}
			// sh ignores stdin; it dies at the group SIGTERM (stage 2).
			if got := p.ExitStatus(); got != "killed by signal 15" {
				t.Fatalf("exit = %q, want killed by signal 15", got)
			}
			if elapsed < grace || elapsed > 2*grace {
				t.Fatalf("stop took %v, want between %v and %v (stage 2)", elapsed, grace, 2*grace)
			}
			t.Logf("stopped a forking wrapper and its %d children in %v", len(kids), elapsed)
		})
	}
}

// TestProcLeaderExitKillsLeftovers: the wrapper exits by itself (a crash)
// but a child it forked lives on in the group, holding stdout and stderr.
// The reaper must remove it, or every crash-restart would leak a server.
func TestProcLeaderExitKillsLeftovers(t *testing.T) {
	p := startSh(t, `sleep 600 & echo $!; exit 7`, procOptions{})
	lines := stdoutLines(p)
	kid, err := strconv.Atoi(nextLine(t, lines))
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, p)
	if left := settled(func() []int { return aliveOf(kid) }); len(left) > 0 {
		t.Fatalf("grandchild %d survived its wrapper's exit", kid)
	}
	if live := settled(func() []string { return liveGroupMembers(t, p.Pid) }); len(live) > 0 {
		t.Fatalf("processes left in group %d: %q", p.Pid, live)
	}
	if got := p.ExitStatus(); got != "exit status 7" {
		t.Fatalf("exit = %q", got)
	}
	var ee *exec.ExitError
	if !errors.As(p.ExitErr(), &ee) || ee.ExitCode() != 7 {
		t.Fatalf("ExitErr = %v, want *exec.ExitError with code 7", p.ExitErr())
	}
	// stdout reached EOF because the group is gone.
	select {
	case _, ok := <-lines:
		if ok {
			t.Fatal("unexpected stdout line")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stdout not at EOF after the group was killed")
	}
}

func TestProcStopAtStdinClose(t *testing.T) {
	// Exits when stdin reaches EOF, like a well-behaved MCP server.
	p := startSh(t, `echo ready; while read -r line; do :; done; echo bye >&2; exit 0`, procOptions{StderrRing: NewRing(10)})
	lines := stdoutLines(p)
	nextLine(t, lines)
	grace := 5 * time.Second
	start := time.Now()
	if err := p.stop(grace); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if elapsed >= grace {
		t.Fatalf("stop took %v, want well under the %v grace (stage 1)", elapsed, grace)
	}
	if p.ExitErr() != nil || p.ExitStatus() != "exit status 0" {
		t.Fatalf("exit = %v / %q, want a clean exit", p.ExitErr(), p.ExitStatus())
	}
	t.Logf("stdin close to reaped: %v", elapsed)
}

func TestProcStopKillsChildIgnoringSIGTERM(t *testing.T) {
	// trap '' TERM is inherited by the sleep, so the whole group ignores TERM.
	p := startSh(t, `trap '' TERM; echo ready; sleep 600`, procOptions{})
	lines := stdoutLines(p)
	nextLine(t, lines)
	grace := 250 * time.Millisecond
	start := time.Now()
	if err := p.stop(grace); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if got := p.ExitStatus(); got != "killed by signal 9" {
		t.Fatalf("exit = %q, want killed by signal 9", got)
	}
	if elapsed < 2*grace {
		t.Fatalf("stop took %v, want at least two graces (%v) before SIGKILL", elapsed, 2*grace)
	}
	if live := settled(func() []string { return liveGroupMembers(t, p.Pid) }); len(live) > 0 {
		t.Fatalf("processes left in group %d: %q", p.Pid, live)
	}
	t.Logf("TERM-ignoring child killed after %v", elapsed)
}

type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	unended int // writes that did not end with a newline
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(p) == 0 || p[len(p)-1] != '\n' {
		s.unended++
	}
	return s.b.Write(p)
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

// TestProcStderrIsDrained: 1 MiB on stderr is 16 times a pipe buffer. If
// nobody read it the child would block before printing "done".
func TestProcStderrIsDrained(t *testing.T) {
	ring := NewRing(50)
	var sink syncBuffer
	const line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqr" // 100 bytes
	p := startSh(t, `yes `+line+` | head -c 1048576 >&2; echo done; read -r x`, procOptions{StderrRing: ring, Stderr: &sink})
	lines := stdoutLines(p)
	if got := nextLine(t, lines); got != "done" {
		t.Fatalf("stdout = %q", got)
	}
	if err := p.stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Whole lines only; the unterminated last line gets its newline at EOF.
	if sink.Len() != 1<<20+1 || sink.unended != 0 {
		t.Fatalf("sink got %d bytes (want %d) in %d writes not ending a line", sink.Len(), 1<<20+1, sink.unended)
	}
	got := ring.Lines()
	if len(got) != 50 {
		t.Fatalf("ring has %d lines, want 50", len(got))
	}
	for _, l := range got[:49] {
		if l != line {
			t.Fatalf("ring line %q", l)
		}
	}
	// 1 MiB is not a multiple of 101 bytes: the last line is partial and
	// was flushed at EOF.
	if want := line[:(1<<20)%101]; got[49] != want {
		t.Fatalf("last ring line = %q, want %q", got[49], want)
	}
}

// TestProcStdoutSurvivesExit: output written just before exit is still
// readable after Done (exec's StdoutPipe would have closed it in Wait).
func TestProcStdoutSurvivesExit(t *testing.T) {
	ring := NewRing(10)
	p := startSh(t, `printf 'a\nb\nc\n'; printf 'fatal: no config' >&2; exit 3`, procOptions{StderrRing: ring})
	waitDone(t, p)
	out, err := io.ReadAll(p.Stdout)
	if err != nil || string(out) != "a\nb\nc\n" {
		t.Fatalf("stdout after exit = %q, %v", out, err)
	}
	if got := ring.Tail(1); len(got) != 1 || got[0] != "fatal: no config" {
		t.Fatalf("stderr tail at Done = %q", got)
	}
	if p.ExitStatus() != "exit status 3" {
		t.Fatalf("exit = %q", p.ExitStatus())
	}
	start := time.Now()
	if err := p.stop(time.Minute); err != nil || time.Since(start) > time.Second {
		t.Fatalf("stop of an exited process: %v after %v", err, time.Since(start))
	}
}

func TestProcConcurrentStop(t *testing.T) {
	p := startSh(t, `echo ready; sleep 600`, procOptions{})
	nextLine(t, stdoutLines(p))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := p.stop(200 * time.Millisecond); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	select {
	case <-p.Done():
	default:
		t.Fatal("stop returned before the process was reaped")
	}
	// After the reap, signalling is a no-op (the PID may be someone else's).
	if err := p.signal(sigKill); err != nil {
		t.Fatal(err)
	}
}

func TestProcEnvAndCwd(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Name: "env", Command: "sh", Args: []string{"-c", `pwd; echo "$FOO"`}, Cwd: dir}
	env := MergeEnv(os.Environ(), map[string]string{"FOO": "bar baz"})
	path, _, err := Resolve(spec, env)
	if err != nil {
		t.Fatal(err)
	}
	p, err := startProcess(spec, path, procOptions{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop(time.Second)
	out, _ := io.ReadAll(p.Stdout)
	if string(out) != dir+"\nbar baz\n" {
		t.Fatalf("output = %q", out)
	}
}

func TestProcStartFailure(t *testing.T) {
	_, err := startProcess(Spec{Name: "bad", Cwd: "/nonexistent-dir"}, "/bin/sh", procOptions{})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent-dir") {
		t.Fatalf("err = %v", err)
	}
}

// --- BaseEnv: the login-shell PATH ---

// fakeShell writes a "login shell" that prints a banner (as start-up files
// often do), then runs its -c script with a PATH of its own.
func fakeShell(t *testing.T, prelude string) string {
	t.Helper()
	return writeExec(t, t.TempDir(), "fakesh", prelude+`
echo "Welcome! (banner from an rc file)"
for a; do last=$a; done
PATH=/opt/fake/bin:/usr/bin:/bin
export PATH
eval "$last"`)
}

func TestResolveBaseEnvFromLoginShell(t *testing.T) {
	sh := fakeShell(t, `echo "$@" >> "$0.args"`)
	env, source := userEnv(context.Background(), userEnvConfig{
		Shell:   sh,
		Environ: []string{"HOME=/h", "PATH=/usr/bin:/inherited", "KEEP=1"},
		Timeout: 5 * time.Second,
	})
	if got := envValue(env, "PATH"); got != "/opt/fake/bin:/usr/bin:/bin:/inherited" {
		t.Fatalf("PATH = %q (source %s)", got, source)
	}
	if envValue(env, "KEEP") != "1" || envValue(env, "HOME") != "/h" {
		t.Fatalf("other variables lost: %q", env)
	}
	if !strings.HasSuffix(source, " -l -i") {
		t.Fatalf("source = %q, want the interactive login shell", source)
	}
	args, _ := os.ReadFile(sh + ".args")
	if !strings.HasPrefix(string(args), "-l -i -c ") {
		t.Fatalf("shell called with %q", args)
	}
}

func TestResolveBaseEnvFallsBackToNonInteractive(t *testing.T) {
	sh := fakeShell(t, `case " $* " in *" -i "*) echo "no tty" >&2; exit 1;; esac`)
	env, source := userEnv(context.Background(), userEnvConfig{
		Shell: sh, Environ: []string{"PATH=/usr/bin"}, Timeout: 5 * time.Second,
	})
	if got := envValue(env, "PATH"); got != "/opt/fake/bin:/usr/bin:/bin" || !strings.HasSuffix(source, " -l") {
		t.Fatalf("PATH = %q from %q", got, source)
	}
}

func TestResolveBaseEnvRealBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is needed for this test")
	}
	home := t.TempDir()
	profile := "export PATH=/from/profile:$PATH\n"
	if err := os.WriteFile(filepath.Join(home, ".bash_profile"), []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	env, source := userEnv(context.Background(), userEnvConfig{
		Shell: bash, Home: home, Environ: []string{"HOME=" + home, "PATH=/usr/bin:/bin"}, Timeout: 5 * time.Second,
	})
	if p := envValue(env, "PATH"); !strings.HasPrefix(p, "/from/profile:") {
		t.Fatalf("PATH = %q from %q, want ~/.bash_profile's entry first", p, source)
	}
}

func TestResolveBaseEnvTimeoutFallsBack(t *testing.T) {
	home := t.TempDir()
	for _, d := range []string{".local/bin", ".cargo/bin", ".nvm/versions/node/v9.0.0/bin",
		".nvm/versions/node/v20.1.0/bin", ".nvm/versions/node/v18.19.1/bin", ".nvm/versions/node/v21.0.0"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pids := filepath.Join(t.TempDir(), "pids")
	// A shell whose rc file hangs, with a background job of its own.
	sh := writeExec(t, t.TempDir(), "hangsh", `sleep 600 & echo $$ $! >> `+pids+`; wait`)
	// Long enough for a shell to start and write its PIDs on a loaded
	// machine (300 ms was not, with 2 cores and a load of 10).
	timeout := time.Second
	start := time.Now()
	env, source := userEnv(context.Background(), userEnvConfig{
		Shell: sh, Home: home, Environ: []string{"PATH=/usr/bin:/bin"}, Timeout: timeout,
	})
	elapsed := time.Since(start)
	if source != "well-known directories" {
		t.Fatalf("source = %q", source)
	}
	want := []string{filepath.Join(home, ".local/bin"), filepath.Join(home, ".nvm/versions/node/v20.1.0/bin"),
		filepath.Join(home, ".cargo/bin")}
	got := filepath.SplitList(envValue(env, "PATH"))
	if len(got) < len(want)+2 {
		t.Fatalf("PATH = %q", got)
	}
	for i, w := range want {
		if got[i] != w {
			t.Fatalf("PATH = %q, want it to start with %q", got, want)
		}
	}
	if got[len(got)-2] != "/usr/bin" || got[len(got)-1] != "/bin" {
		t.Fatalf("PATH = %q, want the inherited entries last", got)
	}
	// Two attempts (-l -i, then -l), each bounded.
	if elapsed > 4*timeout+2*time.Second {
		t.Fatalf("fallback took %v", elapsed)
	}
	// Both hung shells and their background jobs were killed.
	b, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(b))
	if len(fields) != 4 {
		t.Fatalf("pid file %q, want two attempts", b)
	}
	var pidList []int
	for _, f := range fields {
		pid, _ := strconv.Atoi(f)
		pidList = append(pidList, pid)
	}
	if left := settled(func() []int { return aliveOf(pidList...) }); len(left) > 0 {
		t.Fatalf("processes %v from timed-out shell probes still running", left)
	}
}

func TestResolveBaseEnvIgnoresOutputWithoutMarker(t *testing.T) {
	sh := writeExec(t, t.TempDir(), "junksh", `printf 'PATH=/evil\0'; exit 0`)
	env, source := userEnv(context.Background(), userEnvConfig{
		Shell: sh, Environ: []string{"PATH=/usr/bin"}, Timeout: 5 * time.Second,
	})
	if source != "well-known directories" || strings.Contains(envValue(env, "PATH"), "/evil") {
		t.Fatalf("PATH = %q from %q", envValue(env, "PATH"), source)
	}
}

// TestResolveBaseEnvWiring runs BaseEnv itself as a service would see it: no
// SHLVL, a minimal PATH, $SHELL pointing at the (fake) login shell.
func TestResolveBaseEnvWiring(t *testing.T) {
	sh := fakeShell(t, "")
	t.Setenv("SHLVL", "")
	t.Setenv("SHELL", sh)
	t.Setenv("PATH", "/usr/bin:/bin")
	baseEnvCache.mu.Lock()
	baseEnvCache.env = nil
	baseEnvCache.mu.Unlock()
	t.Cleanup(func() {
		baseEnvCache.mu.Lock()
		baseEnvCache.env = nil
		baseEnvCache.mu.Unlock()
	})
	env := BaseEnv(context.Background())
	if got := envValue(env, "PATH"); got != "/opt/fake/bin:/usr/bin:/bin" {
		t.Fatalf("PATH = %q", got)
	}
	// Cached: a broken shell now does not change the answer.
	t.Setenv("SHELL", "/nonexistent")
	if got := envValue(BaseEnv(context.Background()), "PATH"); got != "/opt/fake/bin:/usr/bin:/bin" {
		t.Fatalf("second call PATH = %q, want the cached one", got)
	}
	// Started from a shell: the environment is used as is.
	t.Setenv("SHLVL", "2")
	if got := envValue(BaseEnv(context.Background()), "PATH"); got != "/usr/bin:/bin" {
		t.Fatalf("from a shell PATH = %q, want the inherited one", got)
	}
}

// TestProcRealNpxWrapper is the trap from the field with the real tools:
// npx runs "npm exec", which runs "sh -c mcp-server-everything", which runs
// node. The server is proven up by an initialize round trip; after stop,
// nothing of that tree may remain.
func TestProcRealNpxWrapper(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is required in CI")
		}
		t.Skip("node not installed (and CI unset): skipping the real npx test")
	}
	npmDir, err := filepath.Abs("../tools/npm")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		crashLeader bool // SIGKILL only npm, as if it crashed; stdin stays open
	}{{"graceful stop", false}, {"wrapper crash", true}} {
		t.Run(tc.name, func(t *testing.T) {
			spec := Spec{Name: "everything", Command: "npx", Args: []string{"--no-install", "mcp-server-everything"}, Cwd: npmDir}
			env := os.Environ()
			path, _, err := Resolve(spec, env)
			if err != nil {
				t.Fatal(err)
			}
			ring := NewRing(20)
			p, err := startProcess(spec, path, procOptions{Env: env, StderrRing: ring})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.stop(time.Second) })
			lines := stdoutLines(p)
			init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"proc-test","version":"0"}}}` + "\n"
			if _, err := io.WriteString(p.Stdin, init); err != nil {
				t.Fatal(err)
			}
			if got := nextLine(t, lines); !strings.Contains(got, `"id":1`) || !strings.Contains(got, `"serverInfo"`) {
				t.Fatalf("initialize answer = %q; stderr %q", got, ring.Lines())
			}
			members := liveGroupMembers(t, p.Pid)
			if len(members) < 3 && !runtimeHasNoProc() {
				t.Fatalf("expected npm, sh and node in the group, got %q", members)
			}
			var pids []int
			for _, m := range members {
				pid, _ := strconv.Atoi(strings.Fields(m)[0])
				pids = append(pids, pid)
			}
			start := time.Now()
			if tc.crashLeader {
				// node still has its stdin open, so only the reaper's
				// group kill can end it.
				if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				waitDone(t, p)
			} else if err := p.stop(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			elapsed := time.Since(start)
			if left := settled(func() []int { return aliveOf(pids...) }); len(left) > 0 {
				t.Fatalf("still running after stop: %v (of %q)", left, members)
			}
			if live := settled(func() []string { return liveGroupMembers(t, p.Pid) }); len(live) > 0 {
				t.Fatalf("processes left in group %d: %q", p.Pid, live)
			}
			t.Logf("%s: npx tree of %d processes gone after %v, leader %s", tc.name, len(pids), elapsed, p.ExitStatus())
		})
	}
}
