package mcpchild

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Why mcpchild runs the process itself instead of go-sdk's CommandTransport:
// that transport signals only the direct child, so killing an npx/uvx/sh
// wrapper leaves the real server running (architecture.md section 5).

// procOptions configures startProcess.
type procOptions struct {
	Env        []string     // full environment of the child (BaseEnv + MergeEnv)
	Stderr     io.Writer    // extra sink for stderr, whole lines per Write (e.g. the per-server log file); may be nil
	StderrRing *Ring        // keeps the stderr tail for status and crash reports; may be nil
	Logger     *slog.Logger // nil discards
}

// stderrDrainWait bounds how long the reaper waits, after the process group
// is gone, for the stderr pipe to reach EOF. Only a process that escaped the
// group (setsid, a daemon) can still hold it open; we do not wait for those.
const stderrDrainWait = 500 * time.Millisecond

// process is one running child in its own process group (POSIX) or job
// object (Windows).
//
// Stdout is a plain pipe (not exec's StdoutPipe, which Wait closes), so
// output the child wrote just before it exited can still be read after Done;
// it reaches EOF when every process holding it has exited. stop closes Stdin
// and Stdout; call stop (cheap once Done) to release them after a crash too.
type process struct {
	Stdin  io.WriteCloser
	Stdout io.ReadCloser
	Pid    int

	cmd  *exec.Cmd
	log  *slog.Logger
	plat procPlatform // per-OS state: nothing on unix, job object on Windows

	// mu orders signalling against reaping: the group is signalled only
	// while reaped is false, so a recycled PID is never signalled.
	mu     sync.Mutex
	reaped bool

	done    chan struct{} // closed after the process was reaped and stderr drained
	exitErr error

	stderr     *os.File      // read end of the stderr pipe
	stderrDone chan struct{} // closed when the drain goroutine returns

	stopOnce sync.Once
	stopErr  error
}

// startProcess starts path with spec.Args in spec.Cwd in a new process group
// (job object on Windows). spec.Name is not used: callers add it to errors. stderr is drained continuously into the ring and
// opts.Stderr by a goroutine, so a chatty child never blocks on a full pipe.
func startProcess(spec Spec, path string, opts procOptions) (*process, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// exec reports a missing working directory as "fork/exec <path>: no such
	// file or directory", which sends users looking for the wrong file.
	if spec.Cwd != "" {
		if fi, err := os.Stat(spec.Cwd); err != nil {
			return nil, fmt.Errorf("cwd: %w", err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("cwd %s: not a directory", spec.Cwd)
		}
	}
	cmd := exec.Command(path, spec.Args...)
	cmd.Env = opts.Env
	cmd.Dir = spec.Cwd
	if err := setupCmd(cmd, path, spec.Args); err != nil {
		return nil, err
	}

	// Plain os.Pipes: with *os.File for all three streams exec starts no
	// copying goroutines and Wait closes none of our ends.
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err := pipe()
	if err != nil {
		return nil, fmt.Errorf("stdin pipe: %w", err)
	}
	outR, outW, err := pipe()
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	errR, errW, err := pipe()
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW

	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, err // already names the path: "fork/exec /x: ..." or "chdir /y: ..."
	}
	// The child has its copies; ours of the child's ends must go, or we would
	// never see EOF on stdout/stderr.
	inR.Close()
	outW.Close()
	errW.Close()

	p := &process{
		Stdin:      inW,
		Stdout:     outR,
		Pid:        cmd.Process.Pid,
		cmd:        cmd,
		log:        log.With("pid", cmd.Process.Pid),
		done:       make(chan struct{}),
		stderr:     errR,
		stderrDone: make(chan struct{}),
	}
	if err := p.afterStart(); err != nil {
		// Could not contain it (Windows job object): do not leave it running.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, err
	}
	go p.drainStderr(opts.StderrRing, opts.Stderr)
	go p.reap()
	return p, nil
}

// drainStderr copies stderr into the ring and the sink until EOF (see
// stderrLines: one line splitter feeds both).
func (p *process) drainStderr(ring *Ring, sink io.Writer) {
	defer close(p.stderrDone)
	lines := &stderrLines{ring: ring, sink: sink, log: p.log}
	buf := make([]byte, 32*1024)
	for {
		n, err := p.stderr.Read(buf)
		lines.Write(buf[:n])
		if err != nil {
			lines.Flush()
			return
		}
	}
}

// reap waits for the group leader, removes what is left of its process group
// and reaps it, then closes done. See waitLeader and killLeftovers in the
// platform files for why the order matters.
func (p *process) reap() {
	var err error
	if p.waitLeader() {
		p.mu.Lock()
		// The leader has exited but is not reaped: its PID, and so the group
		// ID, cannot have been reused. Anything still in the group is an
		// orphan of this server (a wrapper's child) that nobody can talk to,
		// so it goes now, before the reap releases the ID.
		p.killLeftovers()
		err = p.cmd.Wait() // returns at once: the leader is a zombie
		p.reaped = true
		p.mu.Unlock()
	} else {
		// No way to wait without reaping here: reap first, then clean the
		// group (see killLeftovers for why that is still safe enough).
		err = p.cmd.Wait()
		p.mu.Lock()
		p.reaped = true
		p.killLeftovers()
		p.mu.Unlock()
	}
	p.releasePlatform()

	// Let the drain goroutine read what the dead processes left in the pipe,
	// so the stderr tail is complete when done is closed.
	t := time.NewTimer(stderrDrainWait)
	select {
	case <-p.stderrDone:
	case <-t.C:
		p.log.Debug("stderr still open after the process group exited; closing it")
	}
	t.Stop()
	p.stderr.Close()
	<-p.stderrDone

	p.exitErr = err
	close(p.done)
}

// Done is closed after the process was reaped (and its stderr drained).
func (p *process) Done() <-chan struct{} { return p.done }

// ExitErr is the result of Wait once Done is closed: nil for exit status 0,
// otherwise usually an *exec.ExitError. Before Done it returns nil.
func (p *process) ExitErr() error {
	select {
	case <-p.done:
		return p.exitErr
	default:
		return nil
	}
}

// ExitStatus describes how the process ended: "exit status 3", "killed by
// signal 9"; "running" before Done.
func (p *process) ExitStatus() string {
	select {
	case <-p.done:
	default:
		return "running"
	}
	if p.exitErr == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(p.exitErr, &ee) {
		return exitDescription(ee.ProcessState)
	}
	return p.exitErr.Error()
}

// exitFailure classifies how the process ended (after Done): an exit
// status, a signal, or unavailable when the wait itself failed.
func (p *process) exitFailure() Failure {
	var ee *exec.ExitError
	switch {
	case p.ExitErr() == nil:
		return Failure{Kind: FailExited}
	case errors.As(p.ExitErr(), &ee):
		return exitFailure(ee.ProcessState)
	}
	return Failure{Kind: FailUnavailable}
}

// stop ends the process politely, then firmly, and always reaps it:
//
//  1. close stdin (the MCP stdio shutdown signal) and wait up to grace;
//  2. SIGTERM to the whole process group, wait up to grace (Windows has no
//     polite signal for a console-less child: skipped);
//  3. SIGKILL to the group (TerminateJobObject on Windows) and wait for the
//     reap.
//
// Signals go to the group only while the leader is unreaped (see reap), so a
// recycled PID is never hit. stop is safe to call more than once and from
// several goroutines; later calls wait for the first. It returns an error
// only when the operating system refused a signal.
func (p *process) stop(grace time.Duration) error {
	p.stopOnce.Do(func() { p.stopErr = p.stopSequence(grace) })
	<-p.done
	p.Stdout.Close()
	return p.stopErr
}

func (p *process) stopSequence(grace time.Duration) error {
	p.Stdin.Close()
	if p.waitDone(grace) {
		return nil
	}
	var errs []error
	if p.canTerminate() {
		p.log.Info("child still running after stdin closed; sending SIGTERM to its process group", "grace", grace)
		if err := p.signal(sigTerminate); err != nil {
			errs = append(errs, err)
		}
		if p.waitDone(grace) {
			return errors.Join(errs...)
		}
	}
	p.log.Warn("child did not stop in time; killing its process group", "grace", grace)
	if err := p.signal(sigKill); err != nil {
		errs = append(errs, err)
	}
	<-p.done
	return errors.Join(errs...)
}

func (p *process) waitDone(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

type stopSignal int

const (
	sigTerminate stopSignal = iota
	sigKill
)

// signal sends sig to the whole group unless the leader was already reaped.
func (p *process) signal(sig stopSignal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return nil
	}
	if err := p.signalGroup(sig); err != nil {
		return fmt.Errorf("signal process group %d: %w", p.Pid, err)
	}
	return nil
}

// batCommandLine (used by proc_windows.go; here so that tests run on every
// OS) builds `cmd.exe /e:ON /v:OFF /d /c ""script" args"` the way
// Rust's standard library does since CVE-2024-24576 ("BatBadBut"): cmd strips
// the outer quote pair; each argument that needs it is quoted, an embedded
// quote is doubled, backslashes before a quote are doubled, and "%" becomes
// "%%cd:~,%" (an empty substring of %cd%), which stops cmd from expanding
// %VAR% inside arguments. Newlines cannot be passed to a batch file safely
// and are rejected.
func batCommandLine(script string, args []string) (string, error) {
	if strings.ContainsRune(script, '"') || strings.HasSuffix(script, `\`) {
		return "", fmt.Errorf("batch file path %q may not contain '\"' or end with '\\'", script)
	}
	var b strings.Builder
	b.WriteString(`cmd.exe /e:ON /v:OFF /d /c ""`)
	b.WriteString(script)
	b.WriteString(`"`)
	for _, a := range args {
		if strings.ContainsAny(a, "\r\n\x00") {
			return "", fmt.Errorf("argument %q for a batch file contains a line break or NUL", a)
		}
		b.WriteByte(' ')
		appendBatArg(&b, a)
	}
	b.WriteByte('"')
	return b.String(), nil
}

func appendBatArg(b *strings.Builder, a string) {
	const unquoted = `#$*+-./:?@\_`
	quote := a == "" || strings.HasSuffix(a, `\`)
	for _, r := range a {
		if r < 0x80 && !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(unquoted, r)) {
			quote = true
		}
	}
	if quote {
		b.WriteByte('"')
	}
	backslashes := 0
	for _, r := range a {
		switch r {
		case '\\':
			backslashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, backslashes))
			b.WriteByte('"')
			backslashes = 0
		case '%':
			b.WriteString("%%cd:~,")
			backslashes = 0
		default:
			backslashes = 0
		}
		b.WriteRune(r)
	}
	if quote {
		b.WriteString(strings.Repeat(`\`, backslashes))
		b.WriteByte('"')
	}
}
