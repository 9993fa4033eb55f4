// Package mcpchild runs one MCP server as the bridge sees it: a supervised
// stdio child process (in its own process group) or a connection to a remote
// Streamable HTTP server (httplink.go), the MCP handshake in either
// protocol era, a cached tool list, and a multiplexer that lets many virtual
// client sessions share the one warm child.
//
// Lifecycle: New (no side effects) → Start (supervisor goroutine) → Stop.
// Sessions: NewSession → Session.Handle for every client message, the out
// callback for every message to the client → Session.Close.
package mcpchild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Phase is where a child is in its life.
type Phase string

const (
	PhaseStopped   Phase = "stopped"   // not started, or stopped on request
	PhaseStarting  Phase = "starting"  // process spawned, handshake running
	PhaseReady     Phase = "ready"     // handshake done, serving
	PhaseBackoff   Phase = "backoff"   // crashed; waiting to restart
	PhaseCrashLoop Phase = "crashloop" // crashed too often; waits for Restart
)

// Era is the MCP protocol generation spoken with a child or a session.
type Era string

const (
	EraUnknown Era = ""
	Era2025    Era = "2025" // initialize handshake, stateful session
	Era2026    Era = "2026" // 2026-07-28: stateless, server/discover, per-request _meta
	// EraBoth is a child that speaks both (initialized, and answers
	// server/discover): each session is spoken to in its own era. It is a
	// Status value only; mcp.json pins 2025 or 2026.
	EraBoth Era = "both"
)

// Kinds of server, as in Status.Kind.
const (
	KindStdio = "stdio" // a child process on stdin/stdout
	KindHTTP  = "http"  // a remote Streamable HTTP server (Spec.URL)
)

// Status is a snapshot of a child, a value the caller may keep.
type Status struct {
	Name        string    `json:"name"`
	Kind        string    `json:"kind"` // "stdio" or "http"
	Phase       Phase     `json:"phase"`
	Era         Era       `json:"era,omitempty"`
	Pid         int       `json:"pid,omitempty"`
	Restarts    int       `json:"restarts"`
	ToolCount   int       `json:"toolCount"`           // tools the filter allows
	Hidden      int       `json:"hidden,omitempty"`    // tools the filter hides
	LastError   string    `json:"lastError,omitempty"` // the full text, for the local user only
	Failure     Failure   `json:"failure,omitzero"`    // LastError classified: what a remote client may see
	Warning     string    `json:"warning,omitempty"`
	StderrTail  []string  `json:"stderrTail,omitempty"`
	Since       time.Time `json:"since"`
	NextRestart time.Time `json:"nextRestart,omitzero"`
	// MaxProcesses is set for a server isolated per session (Options.Isolate):
	// the bound on its per-session processes, of which Processes run now.
	// The rest of the status is the warm probe instance's (isolate.go).
	MaxProcesses int `json:"maxProcesses,omitempty"`
	Processes    int `json:"processes,omitempty"`
}

// Options tune a Child. The zero value works.
type Options struct {
	Logger *slog.Logger
	// Log receives the child's stderr and lifecycle lines (a per-server log file).
	Log io.Writer
	// Env is the environment children start from; nil means BaseEnv (the
	// user's login-shell PATH included).
	Env []string
	// MaxMessageBytes caps one JSON-RPC message from the child (default 32 MiB).
	MaxMessageBytes int
	// StopGrace is how long each stop stage waits: stdin closed, then SIGTERM,
	// then SIGKILL (default 2 s).
	StopGrace time.Duration
	// HandshakeTimeout bounds spawn-to-ready (default 60 s: npx may download).
	HandshakeTimeout time.Duration
	// StartGate, when set, bounds how many children sharing it spawn and
	// handshake at once: a slot (a send on the buffered channel) is held from
	// spawn to ready. 200 servers started by one reload otherwise fork and
	// handshake all at once, and the process that owns them stops answering
	// anything else for seconds. Waiting for a slot shows as "starting".
	StartGate chan struct{}
	// ProbeTimeout bounds the server/discover probe before falling back to
	// initialize, for servers that ignore unknown methods (default 5 s).
	ProbeTimeout time.Duration
	// RestartMin and RestartMax bound the restart backoff (250 ms, 30 s).
	RestartMin, RestartMax time.Duration
	// CrashLoopCount crashes within CrashLoopWindow stop the restarts until
	// Restart is called (default 5 in 60 s).
	CrashLoopCount  int
	CrashLoopWindow time.Duration
	// Era pins the protocol era spoken with the child. Empty means: probe
	// with server/discover and speak 2026 when it answers, else 2025 (see
	// handshake.go for why).
	Era Era
	// StderrLines is the size of the stderr ring kept for the UI (default 50).
	StderrLines int
	// OnStatus is called (never concurrently, never with locks held) after
	// every change; it receives the latest status and may skip intermediate ones.
	OnStatus func(Status)
	// OnCall is called once for every finished tools/call from a session
	// (see CallInfo). It runs on the goroutine that handles the answer — for
	// most calls the child's read loop — so it must be cheap and must not
	// block: hand the value to a channel or a ring buffer and return. With
	// OnCall nil the bridge does no per-call bookkeeping at all.
	OnCall func(CallInfo)
	// InputTimeout is how long a 2026-07-28 client may take to retry a call
	// the bridge answered with input_required for a 2025-era child's
	// sampling, elicitation or roots request (held.go); after it the
	// child's request gets an error and the call is cancelled (default 2 min).
	InputTimeout time.Duration
	// ClientName and ClientVersion are what the bridge calls itself in its handshake.
	ClientName, ClientVersion string
	// Isolate gives every session a process of its own (mcp.json "isolate":
	// "session"): NewSession starts it, Session.Close stops it, so a
	// server→client request always belongs to the one session there is.
	// The Child itself stays up as the warm instance that lists the tools
	// and serves Call (see isolate.go).
	Isolate bool
	// MaxProcesses bounds the per-session processes of an isolated child
	// (default DefaultMaxProcesses); a session over it is refused. The
	// processes kept for 2026-era requests count too.
	MaxProcesses int
	// PooledIdle is how long an isolated child keeps a process for 2026-era
	// requests up after its last call ended, to serve the next one without
	// a spawn (default DefaultPooledIdle; see isolate.go).
	PooledIdle time.Duration
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 2 * time.Second
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 60 * time.Second
	}
	if o.InputTimeout <= 0 {
		o.InputTimeout = 2 * time.Minute
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 5 * time.Second
	}
	if o.RestartMin <= 0 {
		o.RestartMin = 250 * time.Millisecond
	}
	if o.RestartMax <= 0 {
		o.RestartMax = 30 * time.Second
	}
	if o.CrashLoopCount <= 0 {
		o.CrashLoopCount = 5
	}
	if o.CrashLoopWindow <= 0 {
		o.CrashLoopWindow = 60 * time.Second
	}
	if o.StderrLines <= 0 {
		o.StderrLines = 50
	}
	if o.ClientName == "" {
		o.ClientName = "tether"
	}
	if o.ClientVersion == "" {
		o.ClientVersion = "dev"
	}
	if o.Isolate && o.MaxProcesses <= 0 {
		o.MaxProcesses = DefaultMaxProcesses
	}
	if o.PooledIdle <= 0 {
		o.PooledIdle = DefaultPooledIdle
	}
}

// Child is one supervised MCP server. Its methods are safe for concurrent use.
type Child struct {
	spec   Spec
	opts   Options
	log    *slog.Logger
	stderr *Ring

	nextID       atomic.Int64                      // ids the child sees for every request the bridge sends it
	bridgeListen atomic.Int64                      // id of the bridge's own subscriptions/listen (2026 child)
	filter       atomic.Pointer[func(string) bool] // SetToolFilter; nil allows every tool
	morePending  atomic.Bool                       // see OutputPending
	noise        noiseLimiter                      // skipped stdout lines (noise.go)

	mu       sync.Mutex
	st       Status
	inst     *instance // the running process, nil between runs
	sessions map[*Session]struct{}
	tools    []json.RawMessage
	init     handshake // cached handshake results of the current instance
	started  bool
	runCtx   context.Context // Start's context, for the processes of an isolated child

	// An isolated child (Options.Isolate) has one member per session, each
	// a Child of its own whose parent is this one (isolate.go).
	parent   *Child
	members  map[*Child]struct{}
	stopping bool // Stop was called: no new members
	// A member made for 2026-era requests (pooled) serves one call at a
	// time and outlives the one-POST sessions it serves. claims, retired
	// and idleGen are guarded by the parent's mu.
	pooled  bool
	claims  int  // sessions open on it
	retired bool // being stopped: never claimed again
	idleGen int  // bumped on every claim, so a stale idle check does nothing

	restartCh chan struct{}
	cancel    context.CancelFunc
	done      chan struct{}
	ready     chan struct{} // closed and replaced on every transition to ready

	statusKick chan struct{}
	relistKick chan struct{}

	route *router       // the id maps; its own lock, taken after mu
	subs  *resourceSubs // who is subscribed to which resource (subs.go); its own lock
}

// OutputPending reports whether, while a message from the child is being
// delivered, more of the child's output has already been read and waits
// behind it. It is a hint for the session's out callback (called on the
// child's read loop): with more answers about to follow at once, the caller
// may queue this one so that they are written together, rather than write
// each on its own. It is false for HTTP servers.
func (c *Child) OutputPending() bool { return c.morePending.Load() }

// HoldWrites makes messages for the running child's stdin queue instead of
// being written, until the returned release is called, which writes them
// all in one go. It is for a caller about to hand over several messages
// at once (the bridge's relay reader with more frames already read), so a
// burst costs one write to the pipe, not one per message. Messages still
// leave in order and Handle still never waits. release must be called
// soon, whatever happens; it is safe to call after the child stopped.
// HoldWrites returns nil when there is nothing to hold (the child is not
// running, or is an HTTP server).
func (c *Child) HoldWrites() (release func()) {
	c.mu.Lock()
	in := c.inst
	c.mu.Unlock()
	if in == nil {
		return nil
	}
	l, ok := in.link.(*stdioLink)
	if !ok {
		return nil
	}
	l.w.hold()
	return l.w.release
}

// New describes a child; it starts nothing.
func New(spec Spec, opts Options) *Child {
	opts.defaults()
	c := &Child{
		spec:       spec,
		opts:       opts,
		log:        opts.Logger.With("server", spec.Name),
		stderr:     NewRing(opts.StderrLines),
		route:      newRouter(),
		subs:       newResourceSubs(),
		sessions:   map[*Session]struct{}{},
		restartCh:  make(chan struct{}, 1),
		ready:      make(chan struct{}),
		statusKick: make(chan struct{}, 1),
		relistKick: make(chan struct{}, 1),
		members:    map[*Child]struct{}{},
	}
	c.st = Status{Name: spec.Name, Kind: KindStdio, Phase: PhaseStopped, Since: time.Now()}
	if opts.Isolate {
		c.st.MaxProcesses = opts.MaxProcesses
	}
	if spec.URL != "" {
		c.st.Kind = KindHTTP
	}
	return c
}

// Name is the server's name from mcp.json.
func (c *Child) Name() string { return c.spec.Name }

// Spec is what the child was made from.
func (c *Child) Spec() Spec { return c.spec }

// Status returns a snapshot.
func (c *Child) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.statusLocked()
}

func (c *Child) statusLocked() Status {
	st := c.st
	visible, hidden := c.visibleToolsLocked()
	st.ToolCount, st.Hidden = len(visible), hidden
	st.StderrTail = c.stderr.Tail(10)
	st.Processes = len(c.members)
	return st
}

// Tools returns the child's tool list as the child sent it (each entry is
// one tool object, byte for byte), without the tools the filter hides.
func (c *Child) Tools() []json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	visible, _ := c.visibleToolsLocked()
	return append([]json.RawMessage(nil), visible...)
}

// StderrLines returns the recent stderr lines, oldest first.
func (c *Child) StderrLines() []string { return c.stderr.Lines() }

// Start launches the supervisor, which spawns the child and keeps it up. It
// returns at once; use WaitReady to wait for the handshake.
func (c *Child) Start(ctx context.Context) {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return
	}
	c.started = true
	c.runCtx = context.WithoutCancel(ctx)
	ctx, c.cancel = context.WithCancel(c.runCtx)
	c.done = make(chan struct{})
	c.mu.Unlock()
	go c.deliverStatus(ctx)
	go c.relistLoop(ctx)
	go c.supervise(ctx)
}

// WaitReady blocks until the child is ready, it crash-loops, or ctx ends.
func (c *Child) WaitReady(ctx context.Context) error {
	for {
		c.mu.Lock()
		st, ready := c.st, c.ready
		c.mu.Unlock()
		switch st.Phase {
		case PhaseReady:
			return nil
		case PhaseCrashLoop:
			return &ServerError{Server: c.spec.Name, Failure: st.Failure,
				Err: fmt.Errorf("mcp server %q is crash-looping: %s", c.spec.Name, st.LastError)}
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return fmt.Errorf("mcp server %q not ready (%s): %w", c.spec.Name, st.Phase, ctx.Err())
		}
	}
}

// Restart stops the running process (if any) and starts a fresh one now,
// also leaving a crash loop.
func (c *Child) Restart() {
	for _, m := range c.memberList() {
		m.Restart()
	}
	select {
	case c.restartCh <- struct{}{}:
	default:
	}
}

// Stop stops the supervisor and the process group (stdin closed, SIGTERM,
// SIGKILL), fails pending requests, and waits until all is down or ctx ends.
func (c *Child) Stop(ctx context.Context) error {
	c.mu.Lock()
	c.stopping = true
	if !c.started {
		c.mu.Unlock()
		return c.stopMembers(ctx)
	}
	cancel, done := c.cancel, c.done
	c.mu.Unlock()
	cancel()
	merr := c.stopMembers(ctx)
	select {
	case <-done:
		return merr
	case <-ctx.Done():
		return fmt.Errorf("stop mcp server %q: %w", c.spec.Name, ctx.Err())
	}
}

// setStatus applies fn to the status under the lock and schedules delivery.
func (c *Child) setStatus(fn func(*Status)) {
	c.mu.Lock()
	before := c.st.Phase
	fn(&c.st)
	if c.st.Phase != before {
		c.st.Since = time.Now()
		if c.st.Phase == PhaseReady || before == PhaseReady {
			close(c.ready)
			c.ready = make(chan struct{})
		}
	}
	c.mu.Unlock()
	c.kickStatus()
}

func (c *Child) kickStatus() {
	select {
	case c.statusKick <- struct{}{}:
	default:
	}
}

// deliverStatus calls OnStatus from one goroutine, coalescing bursts, so a
// slow observer never stalls the child's read loop.
func (c *Child) deliverStatus(ctx context.Context) {
	for {
		select {
		case <-c.statusKick:
			if c.opts.OnStatus != nil {
				c.opts.OnStatus(c.Status())
			}
		case <-ctx.Done():
			if c.opts.OnStatus != nil {
				<-c.done
				c.opts.OnStatus(c.Status())
			}
			return
		}
	}
}

// supervise runs the child, restarting it with backoff, until ctx ends.
func (c *Child) supervise(ctx context.Context) {
	defer close(c.done)
	var crashes []time.Time
	fails := 0 // failures in a row, for the backoff of HTTP children
	for {
		began := time.Now()
		err := c.runOnce(ctx)
		if ctx.Err() != nil {
			c.setStatus(func(s *Status) { s.Phase, s.Pid, s.NextRestart = PhaseStopped, 0, time.Time{} })
			return
		}
		restartNow := errors.Is(err, errRestartRequested)
		now := time.Now()
		if restartNow || now.Sub(began) > c.opts.CrashLoopWindow {
			fails = 0 // asked for, or it had been up for a good while
		}
		fails++
		if restartNow {
			crashes = nil
		} else {
			crashes = append(crashes, now)
			cut := 0
			for cut < len(crashes) && now.Sub(crashes[cut]) > c.opts.CrashLoopWindow {
				cut++
			}
			crashes = crashes[cut:]
		}
		msg := err.Error()
		failure := classify(c.spec.Name, c.spec.URL != "", err).Failure
		c.logLine("mcp server stopped: " + msg)
		c.log.Warn("mcp server stopped", "err", msg)

		var wait <-chan time.Time
		switch {
		case restartNow:
			c.setStatus(func(s *Status) { s.Phase, s.Pid = PhaseStarting, 0; s.Restarts++ })
			continue
		case len(crashes) >= c.opts.CrashLoopCount && c.spec.URL == "":
			// Only a process can crash-loop. An HTTP server that cannot be
			// reached (VPN down, server restarting) is someone else's outage:
			// keep retrying at the backoff's cap so the bridge comes back by
			// itself, as a user expects of "it just stays up".
			c.setStatus(func(s *Status) {
				s.Phase, s.Pid, s.NextRestart = PhaseCrashLoop, 0, time.Time{}
				s.LastError = fmt.Sprintf("crashed %d times in %s; last: %s", len(crashes), c.opts.CrashLoopWindow, msg)
				s.Failure = failure
				s.Failure.Crashes = len(crashes)
			})
		default:
			n := len(crashes)
			if c.spec.URL != "" {
				// Not windowed: an outage longer than the window would
				// otherwise fall back to fast retries and fill the log.
				n = fails
			}
			delay := restartDelay(c.opts.RestartMin, c.opts.RestartMax, n)
			t := time.NewTimer(delay)
			wait = t.C
			c.setStatus(func(s *Status) {
				s.Phase, s.Pid, s.NextRestart, s.LastError, s.Failure = PhaseBackoff, 0, now.Add(delay), msg, failure
			})
		}
		select {
		case <-ctx.Done():
			c.setStatus(func(s *Status) { s.Phase, s.NextRestart = PhaseStopped, time.Time{} })
			return
		case <-wait:
		case <-c.restartCh:
			crashes = nil
		}
		// Starting from here on: a status that still said "backoff" with
		// no restart time would show a wait that is over.
		c.setStatus(func(s *Status) { s.Phase, s.NextRestart = PhaseStarting, time.Time{}; s.Restarts++ })
	}
}

var errRestartRequested = errors.New("restart requested")

// restartDelay doubles from lo per recent crash, capped at hi.
func restartDelay(lo, hi time.Duration, crashes int) time.Duration {
	d := lo
	for i := 1; i < crashes && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// runOnce spawns the process, does the handshake, serves until the process
// ends, ctx ends or a restart is requested, and always leaves nothing running.
func (c *Child) runOnce(ctx context.Context) error {
	c.setStatus(func(s *Status) { s.Phase, s.Pid, s.Era = PhaseStarting, 0, EraUnknown })
	release := func() {}
	if gate := c.opts.StartGate; gate != nil {
		select {
		case gate <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		var once sync.Once
		release = func() { once.Do(func() { <-gate }) }
	}
	defer release() // on every early return; the normal path releases at ready
	inst, err := c.spawn(ctx)
	if err != nil {
		return err
	}
	defer c.teardown(inst)

	hctx, cancel := context.WithTimeout(ctx, c.opts.HandshakeTimeout)
	hs, err := c.handshake(hctx, inst)
	cancel()
	if err != nil {
		// A write to a child that just exited fails with "broken pipe"
		// before the exit is seen; the exit status is the useful error.
		select {
		case <-inst.link.gone():
			return inst.deathError()
		case <-time.After(200 * time.Millisecond):
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("handshake with mcp server %q failed: %w", c.spec.Name, err)
	}
	tools, err := c.listTools(ctx, inst, hs)
	if err != nil {
		select {
		case <-inst.dead:
			return inst.deathError()
		default:
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("tools/list on mcp server %q failed: %w", c.spec.Name, err)
	}
	c.mu.Lock()
	c.init = hs
	c.tools = tools
	c.mu.Unlock()
	release()
	renew := c.subs.forRestart() // before sessions can see the instance ready
	era := hs.era
	if hs.both {
		era = EraBoth
	}
	c.setStatus(func(s *Status) { s.Phase, s.Era, s.LastError, s.Failure = PhaseReady, era, "", Failure{} })
	c.log.Info("mcp server ready", "era", era, "tools", len(tools), "pid", inst.link.pid())
	c.resubscribe(inst, hs, renew) // clients subscribed before a restart stay subscribed

	select {
	case <-inst.dead:
		return inst.deathError()
	case <-ctx.Done():
		return ctx.Err()
	case <-c.restartCh:
		return errRestartRequested
	}
}

func (c *Child) logLine(s string) {
	if c.opts.Log != nil {
		fmt.Fprintf(c.opts.Log, "%s [tether] %s\n", time.Now().Format(time.RFC3339), s)
	}
}

// spawn starts the process (or connects to the URL) and its read loop.
func (c *Child) spawn(ctx context.Context) (*instance, error) {
	env := c.opts.Env
	if env == nil {
		env = BaseEnv(ctx)
	}
	spec, missing := c.spec.Expand(func(k string) (string, bool) { return lookupEnv(env, k) })
	if len(missing) > 0 {
		c.log.Warn("mcp.json refers to unset variables; they expand to empty", "vars", strings.Join(missing, ","))
	}
	if spec.URL != "" {
		return c.connectHTTP(spec)
	}
	env = MergeEnv(env, spec.Env)
	path, warning, err := Resolve(spec, env)
	if err != nil {
		return nil, err
	}
	c.setStatus(func(s *Status) { s.Warning = warning })
	if warning != "" {
		c.log.Warn(warning)
		c.logLine(warning)
	}
	var sink io.Writer
	if c.opts.Log != nil {
		sink = c.opts.Log
	}
	proc, err := startProcess(spec, path, procOptions{Env: env, Stderr: sink, StderrRing: c.stderr, Logger: c.log})
	if err != nil {
		return nil, fmt.Errorf("start mcp server %q (%s): %w", c.spec.Name, path, err)
	}
	c.logLine(fmt.Sprintf("started %s (pid %d)", path, proc.Pid))
	inst := newInstance(c, newStdioLink(c, proc))
	c.mu.Lock()
	c.inst = inst
	c.mu.Unlock()
	c.setStatus(func(s *Status) { s.Pid = proc.Pid })
	go inst.readLoop()
	return inst, nil
}

// teardown stops the process group and fails every request still pending.
func (c *Child) teardown(inst *instance) {
	c.mu.Lock()
	if c.inst == inst {
		c.inst = nil
	}
	c.mu.Unlock()
	if err := inst.link.stop(c.opts.StopGrace); err != nil {
		c.log.Warn("stopping mcp server", "err", err)
	}
	<-inst.readDone
	c.failPending(inst.deathError())
}

// lookupEnv expands ${VAR} in mcp.json from the children's environment,
// with HOME known even when that environment lacks it.
func lookupEnv(env []string, key string) (string, bool) {
	if v, ok := envLookup(env, key); ok {
		return v, true
	}
	if key == "HOME" {
		if h, err := os.UserHomeDir(); err == nil {
			return h, true
		}
	}
	return "", false
}
