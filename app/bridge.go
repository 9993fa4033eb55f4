// Package app is Tether's engine: the fleet of MCP children and the one relay
// connection that serves them (bridge, this file), the configuration and its
// watcher, the token, the observable State (Engine) and the control API.
//
// # Locks
//
// One rule keeps the engine from hanging: a mutex here guards data, and
// nothing that can block runs while one is held — no socket or pipe write,
// no relay Send, no call into mcpchild that may deliver to a session
// (SetToolFilter, Session.Close, Handle), no user callback (OnChange,
// OnCall, OnConnState, the State subscribers). Code that must do such a
// thing collects what it needs under the lock, releases it, and acts
// after. Where state needs an owner rather than a lock (the catalog, the
// State publisher), one goroutine owns it and others poke it through a
// capacity-1 channel that never blocks the sender.
//
// The delivery path — a child's output going to the relay (session.go,
// bridge.sendOn) — takes no bridge lock at all: it reads the relay link
// through an atomic pointer. So anything that holds bridge.mu can never
// wait for a delivery, and a delivery can never wait for bridge.mu.
// TestEngineReloadWithSessionOpen and TestEngineStress check this.
package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-dev/tether/mcpchild"
	"github.com/tether-dev/tether/relay"
)

// stopTimeout bounds stopping all children when the bridge shuts down. Each
// child's own stop stages (stdin, SIGTERM, SIGKILL) fit well inside it.
const stopTimeout = 15 * time.Second

// bridgeOptions configure a bridge.
type bridgeOptions struct {
	// RelayURL is the relay's base URL (http(s)://host[:port][/prefix]).
	RelayURL string
	// Token returns the bridge token; called on every dial, never logged.
	Token func(ctx context.Context) (string, error)
	// TAG speaks the TAG relay protocol (one flat tool list, rpc.request).
	TAG bool
	// DevID is the dev slot: required in TAG mode, optional otherwise.
	DevID string
	// Servers are the MCP servers Run starts, by name. The engine leaves it
	// empty and calls Apply instead.
	Servers map[string]mcpchild.Spec
	// ServerOptions returns the options of one child (nil: zero options).
	// OnStatus and OnCall set there are still called; the bridge chains its
	// own after them.
	ServerOptions func(name string) mcpchild.Options
	// Logger receives the bridge's logs; nil discards them.
	Logger *slog.Logger
	// Version is the bridge's software version, shown by the relay.
	Version string
	// Hostname is this machine's name, sent in the Tether hello so the
	// owner's page on the relay says which computer the bridge runs on
	// ("": none; never sent to a TAG relay).
	Hostname string
	// OnConnState, if set, receives every relay connection state change. It
	// must not block.
	OnConnState func(relay.ConnState)
	// OnCall, if set, receives every finished remote tools/call (MCP and
	// TAG). It must be cheap: it runs on the path of the response.
	OnCall func(CallRecord)
	// OnChange, if set, is called after the fleet or a child's status
	// changed (the engine rebuilds its State). It must not block.
	OnChange func()
	// OnKeepalive, if set, is called for every ping or pong from the relay.
	// It must not block.
	OnKeepalive func()

	// RelayTuning tunes the relay client; zero means the protocol defaults.
	RelayTuning

	// ReadyWait bounds how long a request for a server that is starting
	// or restarting waits for it to be ready before it fails (default
	// DefaultReadyWait). The relay's own per-request timeout still applies.
	ReadyWait time.Duration
}

// DefaultReadyWait is how long a request waits for its server to start.
const DefaultReadyWait = 30 * time.Second

// ServerDef is one server the bridge should run: its spec, pinned era and
// tool filter. Apply compares Key to decide whether a server changed.
type ServerDef struct {
	Spec mcpchild.Spec
	Era  mcpchild.Era
	// Allow filters the tools seen and callable through the relay; nil
	// allows every tool. Changing it never restarts the child.
	Allow func(tool string) bool
	// Isolate gives every remote session a process of its own, at most
	// MaxProcesses at once (mcpchild.Options.Isolate).
	Isolate      bool
	MaxProcesses int
	// Key identifies the spec, era and isolation (not the filter): a
	// different key restarts the child (an isolated one with every
	// session's process), the same key leaves it and its sessions alone.
	Key string
}

// bridge owns the children and one relay link, and routes frames between
// them. The fleet changes with Apply; the link starts with Connect, stops
// with Disconnect and moves with SetRelay, while the children stay warm.
type bridge struct {
	opts bridgeOptions
	log  *slog.Logger

	// startGate bounds how many children start (spawn to ready) at once,
	// so a reload that adds 200 servers does not starve the engine.
	startGate chan struct{}

	runCtx context.Context // set by Start before anything can use it

	// loops are the bridge's own goroutines (catalogLoop, the link's Run,
	// session closers, TAG calls); Shutdown ends and waits for them all.
	loops     sync.WaitGroup
	stopLoops context.CancelFunc // ends catalogLoop; set by Start

	catalogDirty chan struct{} // capacity 1: coalesces catalog updates

	holds writeHolds // child writes put off while the read loop has more frames (writehold.go)

	// link is the relay connection, nil when disconnected. It is read
	// without a lock (the delivery path must never wait for mu) and
	// replaced under mu, so Connect, Disconnect and SetRelay do not race.
	link atomic.Pointer[link]

	// applyMu makes Apply calls one at a time. It is held across Apply's
	// work (building children, telling sessions of a filter change) and
	// nothing on the delivery path ever takes it.
	applyMu sync.Mutex

	// mu guards the fields below. Never hold it across anything that can
	// block (see the package comment).
	mu         sync.Mutex
	names      []string // server names, sorted: the order of hello and catalog
	children   map[string]*mcpchild.Child
	keys       map[string]string // per server: the ServerDef.Key it runs
	target     relayTarget       // where the link dials; SetRelay changes it, so read it under mu
	sessions   map[sessionKey]*session
	connected  bool
	routes     map[string]relay.TAGRoute // TAG mode: flattened name → server/tool
	helloTools json.RawMessage           // TAG mode: the tool list the relay was last given
	lastErr    map[string]string         // per server: the last error logged
	stopping   sync.WaitGroup            // children being stopped after a removal
}

// link is one relay.Client and the goroutine running it.
type link struct {
	client *relay.Client
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // Run's result, readable after done
	// tookOver is the relay's word that this link took the dev slot from
	// another bridge with the same token (when, and from where).
	tookOver atomic.Pointer[string]
}

type sessionKey struct{ server, session string }

// relayTarget is the relay the link dials and how it speaks to it.
type relayTarget struct {
	url   string
	tag   bool   // the TAG relay protocol
	devID string // the dev slot (required in TAG mode)
	// insecure allows ws:// to a relay off loopback (tetherd run
	// --insecure, "insecure" in settings.json); see relay.CheckTransport.
	insecure bool
}

// relayTarget reads the target under the lock: SetRelay may change it
// while the link's callbacks (hello, onFrame, catalogLoop) run.
func (b *bridge) relayTarget() relayTarget {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.target
}

// newBridge prepares a bridge; nothing starts until Start (or Run).
func newBridge(opts bridgeOptions) *bridge {
	b := &bridge{
		opts:         opts,
		log:          opts.Logger,
		children:     map[string]*mcpchild.Child{},
		keys:         map[string]string{},
		target:       relayTarget{url: opts.RelayURL, tag: opts.TAG, devID: opts.DevID},
		catalogDirty: make(chan struct{}, 1),
		sessions:     map[sessionKey]*session{},
		lastErr:      map[string]string{},
		startGate:    make(chan struct{}, startConcurrency),
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.opts.ReadyWait <= 0 {
		b.opts.ReadyWait = DefaultReadyWait
	}
	return b
}

// startConcurrency is how many servers start at once. Eight keeps a
// reload of a few servers as fast as before while 200 at once no longer
// fork and handshake together (see mcpchild.Options.StartGate).
const startConcurrency = 8

// newChild builds one child with the bridge's hooks chained after the
// caller's.
func (b *bridge) newChild(name string, def ServerDef) *mcpchild.Child {
	spec := def.Spec
	spec.Name = name
	var copts mcpchild.Options
	if b.opts.ServerOptions != nil {
		copts = b.opts.ServerOptions(name)
	}
	if def.Era != "" {
		copts.Era = def.Era
	}
	copts.Isolate, copts.MaxProcesses = def.Isolate, def.MaxProcesses
	if copts.StartGate == nil {
		copts.StartGate = b.startGate
	}
	userStatus := copts.OnStatus
	copts.OnStatus = func(st mcpchild.Status) {
		if userStatus != nil {
			userStatus(st)
		}
		b.onChildStatus(name, st)
	}
	userCall := copts.OnCall
	copts.OnCall = func(ci mcpchild.CallInfo) {
		if userCall != nil {
			userCall(ci)
		}
		if b.opts.OnCall != nil {
			b.opts.OnCall(CallRecord{At: ci.Start, Server: name, Tool: ci.Tool, Duration: ci.Duration, Outcome: Outcome(ci.Outcome), Error: ci.Error})
		}
	}
	if copts.Logger == nil {
		copts.Logger = b.log // mcpchild adds the server name itself
	}
	c := mcpchild.New(spec, copts)
	c.SetToolFilter(def.Allow)
	return c
}

// Child returns the named child, or nil.
func (b *bridge) Child(name string) *mcpchild.Child {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.children[name]
}

// ConnState is the relay connection's current state (offline when no link).
func (b *bridge) ConnState() relay.ConnState {
	l := b.link.Load()
	if l == nil {
		return relay.ConnState{Phase: relay.PhaseOffline}
	}
	return l.client.State()
}

// Kick drops the relay socket and dials again at once (wake, network change).
func (b *bridge) Kick() {
	if l := b.link.Load(); l != nil {
		l.client.Kick()
	}
}

// NetworkChanged tells the relay link the machine's network changed: an
// offline link dials at once, a connected one checks its socket (see
// relay.Client.NetworkChanged). It never blocks.
func (b *bridge) NetworkChanged() {
	if l := b.link.Load(); l != nil {
		l.client.NetworkChanged()
	}
}

// Start begins the bridge's life: children started later by Apply live
// until ctx ends or Shutdown. It must be called once, before Apply/Connect.
func (b *bridge) Start(ctx context.Context) {
	b.runCtx = ctx
	loopCtx, cancel := context.WithCancel(ctx)
	b.stopLoops = cancel
	b.loops.Go(func() { b.catalogLoop(loopCtx) })
}

// Run is the simple life of a fixed bridge (quick mode, tests): start the
// children of opts.Servers, keep the relay connection up until ctx ends or
// the relay rejects the bridge for good, then stop everything. It returns
// nil when ctx ended.
func (b *bridge) Run(ctx context.Context) error {
	b.Start(ctx)
	defs := map[string]ServerDef{}
	for name, spec := range b.opts.Servers {
		defs[name] = ServerDef{Spec: spec, Key: spec.Hash()}
	}
	b.Apply(defs)
	done := b.Connect()
	var err error
	select {
	case <-ctx.Done():
	case <-done:
		err = b.linkErr()
	}
	b.Shutdown(context.WithoutCancel(ctx))
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		err = nil
	}
	return err
}

// Apply makes the fleet match defs: servers that are new are started, gone
// ones stopped, ones whose Key changed restarted, and the rest left alone
// with their sessions and in-flight calls (only their tool filter is
// updated). It returns at once; stopping happens in the background.
func (b *bridge) Apply(defs map[string]ServerDef) (added, removed, restarted []string) {
	type filterChange struct {
		c     *mcpchild.Child
		allow func(string) bool
	}
	var (
		toStop  []*mcpchild.Child
		toStart []*mcpchild.Child
		toClose []takenSession
		filters []filterChange
	)
	// Only Apply changes the fleet, and applyMu makes Apply one at a time,
	// so the plan made here still holds when it is carried out below.
	b.applyMu.Lock()
	defer b.applyMu.Unlock()
	// New children are built before b.mu is taken: building one calls
	// ServerOptions (the engine opens the server's log file there).
	b.mu.Lock()
	var build []string
	for name, def := range defs {
		if b.children[name] == nil || b.keys[name] != def.Key {
			build = append(build, name)
		}
	}
	b.mu.Unlock()
	built := make(map[string]*mcpchild.Child, len(build))
	for _, name := range build {
		built[name] = b.newChild(name, defs[name])
	}

	b.mu.Lock()
	for name, c := range b.children {
		def, keep := defs[name]
		if keep && def.Key == b.keys[name] {
			// Not here: a filter change tells every session, and telling a
			// session sends to the relay.
			filters = append(filters, filterChange{c, def.Allow})
			continue
		}
		toStop = append(toStop, c)
		toClose = append(toClose, b.takeSessionsLocked(name)...)
		delete(b.children, name)
		delete(b.keys, name)
		if keep {
			restarted = append(restarted, name)
		} else {
			removed = append(removed, name)
		}
	}
	for name, def := range defs {
		if _, ok := b.children[name]; ok {
			continue
		}
		c := built[name]
		b.children[name] = c
		b.keys[name] = def.Key
		toStart = append(toStart, c)
		if !slices.Contains(restarted, name) {
			added = append(added, name)
		}
	}
	b.names = b.names[:0]
	for name := range b.children {
		b.names = append(b.names, name)
	}
	sort.Strings(b.names)
	b.stopping.Add(len(toStop))
	b.mu.Unlock()

	tag := b.relayTarget().tag
	for _, t := range toClose {
		t.sess.close()
		if !tag {
			// Tell the relay the session's state here is gone: it forgets
			// its side too, and the client's next request resumes the
			// session (the relay replays its initialize from the
			// self-describing id) instead of reaching a virtual session
			// that was never initialized on the new child.
			b.sendFrame(relay.Frame{Kind: relay.KindClose, Server: t.key.server, Session: t.key.session}, true)
		}
	}
	for _, fc := range filters {
		fc.c.SetToolFilter(fc.allow)
	}
	for _, c := range toStop {
		go func() {
			defer b.stopping.Done()
			ctx, cancel := context.WithTimeout(context.WithoutCancel(b.runCtx), stopTimeout)
			defer cancel()
			if err := c.Stop(ctx); err != nil {
				b.log.Warn("stopping server", "server", c.Status().Name, "err", err)
			}
		}()
	}
	for _, c := range toStart {
		c.Start(b.runCtx)
	}
	sort.Strings(added)
	sort.Strings(removed)
	sort.Strings(restarted)
	b.markCatalogDirty()
	b.changed()
	return added, removed, restarted
}

// Connect starts the relay link if it is not running (a rejected link is
// started again). The returned channel closes when that link's Run returns.
func (b *bridge) Connect() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur := b.link.Load(); cur != nil {
		select {
		case <-cur.done: // ended (rejected): start a fresh one below
		default:
			return cur.done
		}
	}
	ctx, cancel := context.WithCancel(b.runCtx)
	l := &link{cancel: cancel, done: make(chan struct{})}
	l.client = relay.NewClient(relay.ClientOptions{
		URL:          b.target.url,
		Token:        b.opts.Token,
		TAG:          b.target.tag,
		DevID:        b.target.devID,
		Insecure:     b.target.insecure,
		Hello:        b.hello,
		OnFrame:      b.onFrame,
		BeforeWait:   b.holds.releaseAll,
		OnState:      b.onConnState,
		OnKeepalive:  b.opts.OnKeepalive,
		Logger:       b.log,
		PingInterval: b.opts.PingInterval,
		PongWait:     b.opts.PongWait,
		BackoffBase:  b.opts.BackoffBase,
		BackoffCap:   b.opts.BackoffCap,
	})
	b.link.Store(l)
	b.loops.Go(func() {
		l.err = l.client.Run(ctx)
		close(l.done)
		b.changed()
	})
	return l.done
}

// Disconnect stops the relay link and waits until it is down; the children
// stay up.
func (b *bridge) Disconnect() {
	b.mu.Lock()
	l := b.link.Swap(nil)
	b.mu.Unlock()
	if l == nil {
		return
	}
	l.cancel()
	<-l.done
	b.closeAllSessions()
	b.changed()
}

// SetRelay points the link at another relay (or the same relay in another
// mode). A running link is restarted; a stopped one stays stopped.
func (b *bridge) SetRelay(url string, tag bool, devID string) {
	b.setTarget(relayTarget{url: url, tag: tag, devID: devID})
}

// setTarget is SetRelay with every field of the target.
func (b *bridge) setTarget(next relayTarget) {
	b.mu.Lock()
	same := b.target == next
	running := b.link.Load() != nil
	b.mu.Unlock()
	if same {
		return
	}
	b.Disconnect()
	b.mu.Lock()
	b.target = next
	b.mu.Unlock()
	if running {
		b.Connect()
	}
}

// RelayURL is the relay the link dials.
func (b *bridge) RelayURL() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.target.url
}

// tookOver is the relay's takeover notice for the current link, or "".
func (b *bridge) tookOver() string {
	if l := b.link.Load(); l != nil {
		if p := l.tookOver.Load(); p != nil {
			return *p
		}
	}
	return ""
}

// linkErr is the error the current link's Run returned (nil while running).
func (b *bridge) linkErr() error {
	l := b.link.Load()
	if l == nil {
		return nil
	}
	select {
	case <-l.done:
		return l.err
	default:
		return nil
	}
}

// Shutdown drops the relay link and stops every child in parallel.
func (b *bridge) Shutdown(ctx context.Context) {
	b.Disconnect()
	b.closeAllSessions()
	b.mu.Lock()
	all := make([]*mcpchild.Child, 0, len(b.children))
	for _, c := range b.children {
		all = append(all, c)
	}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range all {
		wg.Go(func() {
			if err := c.Stop(ctx); err != nil {
				b.log.Warn("stopping server", "server", c.Status().Name, "err", err)
			}
		})
	}
	wg.Wait()
	b.stopping.Wait()
	if b.stopLoops != nil {
		b.stopLoops()
	}
	b.loops.Wait()
}

// Children returns the running children by name, in name order.
func (b *bridge) Children() ([]string, map[string]*mcpchild.Child) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.names), maps.Clone(b.children)
}

func (b *bridge) changed() {
	if b.opts.OnChange != nil {
		b.opts.OnChange()
	}
}

// servers is the current catalog, in name order.
func (b *bridge) servers() []relay.ServerInfo {
	names, children := b.Children()
	out := make([]relay.ServerInfo, 0, len(names))
	for _, name := range names {
		c := children[name]
		st := c.Status()
		// What crosses the relay is the classified error, not stderr
		// (which has carried API keys), unless the server opts in.
		si := relay.ServerInfo{
			Name: name, State: string(st.Phase), Era: string(st.Era),
			ToolCount: st.ToolCount, Restarts: st.Restarts,
			Error: st.RemoteError(c.Spec().ShareStderr),
		}
		if si.Error != "" {
			si.ErrorKind = errorKind(st.Failure.Kind)
		}
		if st.Phase == mcpchild.PhaseReady {
			si.Tools = c.Tools()
		}
		out = append(out, si)
	}
	return out
}

// errorKind is the wire form of a failure's kind.
func errorKind(k mcpchild.FailureKind) relay.ErrorKind {
	switch k {
	case mcpchild.FailExited:
		return relay.ErrorExited
	case mcpchild.FailCrashed:
		return relay.ErrorCrashed
	case mcpchild.FailNotFound:
		return relay.ErrorNotFound
	case mcpchild.FailTimedOut:
		return relay.ErrorTimedOut
	case mcpchild.FailStart:
		return relay.ErrorStartFailed
	}
	return relay.ErrorUnavailable
}

// hello builds the first frame of each connection from the current state.
func (b *bridge) hello() relay.Frame {
	target := b.relayTarget()
	f := relay.Frame{Kind: relay.KindHello, DevID: target.devID, Version: b.opts.Version}
	servers := b.servers()
	if !target.tag {
		f.Protocol = relay.ProtocolVersion
		f.Hostname = b.opts.Hostname
		f.Servers = servers
		return f
	}
	f.Tools = b.flattenTools(servers)
	b.mu.Lock()
	b.helloTools = f.Tools
	b.mu.Unlock()
	return f
}

// flattenTools builds the TAG tool list and remembers its routes.
func (b *bridge) flattenTools(servers []relay.ServerInfo) json.RawMessage {
	tools, routes, err := relay.FlattenTAGTools(servers)
	if err != nil {
		b.log.Error("cannot build the TAG tool list", "err", err)
		tools, routes = json.RawMessage("[]"), nil
	}
	b.mu.Lock()
	b.routes = routes
	b.mu.Unlock()
	return tools
}

// onChildStatus logs a new error once and schedules a catalog update.
func (b *bridge) onChildStatus(name string, st mcpchild.Status) {
	b.mu.Lock()
	changed := st.LastError != b.lastErr[name]
	b.lastErr[name] = st.LastError
	b.mu.Unlock()
	if changed && st.LastError != "" {
		b.log.Error("mcp server failed", "server", name, "phase", st.Phase, "err", st.LastError)
	}
	if st.Warning != "" && changed {
		b.log.Warn("mcp server warning", "server", name, "warning", st.Warning)
	}
	b.markCatalogDirty()
	b.changed()
}

func (b *bridge) markCatalogDirty() {
	select {
	case b.catalogDirty <- struct{}{}:
	default: // an update is already pending; it will read the latest state
	}
}

// catalogLoop sends a catalog after each change. Being one goroutine, at most
// one catalog is in flight, and each one is built when it is sent, so the
// relay always ends up with the latest state however many changes piled up.
func (b *bridge) catalogLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.catalogDirty:
		}
		b.mu.Lock()
		up := b.connected
		b.mu.Unlock()
		if !up {
			continue // the next hello carries the state
		}
		var f relay.Frame
		if b.relayTarget().tag {
			// A TAG relay has no catalog frame: its tool list comes only with
			// the hello. Refresh the routes so calls see new tools, and when
			// the list the relay knows is stale, reconnect so it gets a
			// fresh hello (a TAG relay holds the slot for the newest socket).
			tools := b.flattenTools(b.servers())
			b.mu.Lock()
			stale := !bytes.Equal(tools, b.helloTools)
			b.mu.Unlock()
			if stale {
				b.log.Info("tool list changed; reconnecting so the TAG relay sees it")
				b.Kick()
			}
			continue
		}
		f = relay.Frame{Kind: relay.KindCatalog, Servers: b.servers()}
		if err := b.sendCtx(ctx, f); err != nil && !errors.Is(err, relay.ErrNotConnected) && ctx.Err() == nil {
			b.log.Warn("sending catalog", "err", err)
		}
	}
}

// onConnState tracks the socket. Sessions do not survive the socket (the
// relay forgets them), so a drop closes them all; the children stay warm.
func (b *bridge) onConnState(st relay.ConnState) {
	b.mu.Lock()
	was := b.connected
	b.connected = st.Phase == relay.PhaseConnected
	b.mu.Unlock()
	switch {
	case st.Phase == relay.PhaseConnected:
		b.log.Info("connected to the relay")
		// A change between building the hello and now would otherwise wait
		// for the next change.
		b.markCatalogDirty()
	case was:
		b.log.Warn("relay connection lost", "phase", st.Phase, "reason", st.Reason, "err", st.LastError)
		if l := b.link.Load(); l != nil {
			l.tookOver.Store(nil) // it was about that connection
		}
		b.loops.Go(b.closeAllSessions)
	case st.Phase == relay.PhaseRejected:
		b.log.Error("the relay rejected this bridge", "reason", st.Reason, "err", st.LastError)
	}
	if b.opts.OnConnState != nil {
		b.opts.OnConnState(st)
	}
}

// onFrame dispatches one inbound frame. It runs on the client's read loop and
// must return quickly: MCP work goes to per-session queues, TAG calls to
// their own goroutines.
func (b *bridge) onFrame(f relay.Frame) {
	switch f.Kind {
	case relay.KindMCP:
		b.onMCP(f)
	case relay.KindClose:
		b.mu.Lock()
		s := b.sessions[sessionKey{f.Server, f.Session}]
		delete(b.sessions, sessionKey{f.Server, f.Session})
		b.mu.Unlock()
		if s != nil {
			s.close()
		}
	case relay.KindError:
		if f.Code == relay.ErrCodeTookOver {
			if l := b.link.Load(); l != nil {
				msg := f.Message
				l.tookOver.Store(&msg)
			}
			b.log.Warn("this bridge took the dev slot from another Tether using the same token: is a copy of the token in use elsewhere?", "relay", f.Message)
			b.changed()
			return
		}
		b.log.Warn("relay reported an error", "code", f.Code, "message", f.Message, "server", f.Server, "session", f.Session)
	case relay.KindRPCRequest:
		if !b.relayTarget().tag {
			b.sendError(f, relay.ErrCodeUnknownKind, "rpc.request is for TAG bridges")
			return
		}
		b.loops.Go(func() { b.handleTAG(f) })
	default:
		b.sendError(f, relay.ErrCodeUnknownKind, "unknown frame kind "+string(f.Kind))
	}
}

func (b *bridge) onMCP(f relay.Frame) {
	key := sessionKey{f.Server, f.Session}
	b.mu.Lock()
	c := b.children[f.Server]
	if c == nil {
		b.mu.Unlock()
		b.answerUnknownServer(f)
		return
	}
	s := b.sessions[key]
	if s == nil {
		s = b.newSession(c, key, f.Msg)
		b.sessions[key] = s
	}
	b.mu.Unlock()
	s.push(f.Msg)
}

// answerUnknownServer answers a request for a server this bridge does not
// have with a JSON-RPC error (so the caller is not left waiting: error frames
// never answer requests), and reports the frame with an error frame.
func (b *bridge) answerUnknownServer(f relay.Frame) {
	msg := "no server \"" + f.Server + "\" on this bridge"
	var peek struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if json.Unmarshal(f.Msg, &peek) == nil && len(peek.ID) > 0 && string(peek.ID) != "null" && peek.Method != "" {
		resp, _ := json.Marshal(map[string]any{
			"jsonrpc": "2.0", "id": peek.ID,
			"error": map[string]any{"code": -32601, "message": msg},
		})
		b.send(relay.Frame{Kind: relay.KindMCP, Server: f.Server, Session: f.Session, Msg: resp})
	}
	b.send(relay.Frame{Kind: relay.KindError, Code: relay.ErrCodeUnknownServer, Message: msg, Server: f.Server, Session: f.Session})
}

func (b *bridge) sendError(f relay.Frame, code, msg string) {
	b.send(relay.Frame{Kind: relay.KindError, Code: code, Message: msg, Server: f.Server, Session: f.Session})
}

// send sends a frame; a frame for a dropped socket is dropped with it.
func (b *bridge) send(f relay.Frame) { b.sendFrame(f, false) }

// sendFrame is send; batched asks for the queue rather than an inline
// write (see relay.Client.SendBatched).
func (b *bridge) sendFrame(f relay.Frame, batched bool) {
	ctx := b.runCtx
	if err := b.sendOn(ctx, f, batched); err != nil && !errors.Is(err, relay.ErrNotConnected) && ctx.Err() == nil {
		b.log.Warn("sending to the relay", "kind", f.Kind, "err", err)
	}
}

// sendCtx sends a frame on the current link.
func (b *bridge) sendCtx(ctx context.Context, f relay.Frame) error { return b.sendOn(ctx, f, false) }

// sendOn is the delivery path: it takes no lock of the bridge's (see the
// package comment), so a caller holding one can never deadlock with it.
func (b *bridge) sendOn(ctx context.Context, f relay.Frame, batched bool) error {
	l := b.link.Load()
	if l == nil {
		return relay.ErrNotConnected
	}
	if batched {
		return l.client.SendBatched(ctx, f)
	}
	return l.client.Send(ctx, f)
}

// takeSessionsLocked removes the sessions of one server (it is being
// stopped or replaced) and returns them for the caller to close once it has
// released b.mu. The caller holds b.mu.
func (b *bridge) takeSessionsLocked(server string) []takenSession {
	var out []takenSession
	for k, s := range b.sessions {
		if k.server == server {
			delete(b.sessions, k)
			out = append(out, takenSession{k, s})
		}
	}
	return out
}

// takenSession is a session taken out of the bridge's map, with its key.
type takenSession struct {
	key  sessionKey
	sess *session
}

// closeAllSessions closes every session (socket dropped, or stopping).
func (b *bridge) closeAllSessions() {
	b.mu.Lock()
	all := b.sessions
	b.sessions = map[sessionKey]*session{}
	b.mu.Unlock()
	for _, s := range all {
		s.close()
	}
}
