// Package app is Tether's engine: the fleet of MCP children and the one relay
// connection that serves them. This file is the minimal engine behind
// `tetherd run`; hot reload, the keychain, the control API and the observable
// State come later.
package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/tether-dev/tether/mcpchild"
	"github.com/tether-dev/tether/relay"
)

// stopTimeout bounds stopping all children when Run returns. Each child's own
// stop stages (stdin, SIGTERM, SIGKILL) fit well inside it.
const stopTimeout = 15 * time.Second

// BridgeOptions configure a Bridge.
type BridgeOptions struct {
	// RelayURL is the relay's base URL (http(s)://host[:port][/prefix]).
	RelayURL string
	// Token returns the bridge token; called on every dial, never logged.
	Token func(ctx context.Context) (string, error)
	// TAG speaks the TAG relay protocol (one flat tool list, rpc.request).
	TAG bool
	// DevID is the dev slot: required in TAG mode, optional otherwise.
	DevID string
	// Servers are the MCP servers to run, by name.
	Servers map[string]mcpchild.Spec
	// ServerOptions returns the options of one child (nil: zero options).
	// OnStatus set there is still called; the bridge chains its own after it.
	ServerOptions func(name string) mcpchild.Options
	// Logger receives the bridge's logs; nil discards them.
	Logger *slog.Logger
	// Version is the bridge's software version, shown by the relay.
	Version string
	// OnConnState, if set, receives every relay connection state change. It
	// must not block.
	OnConnState func(relay.ConnState)

	// Relay client tuning; zero means the protocol defaults.
	PingInterval time.Duration
	PongWait     time.Duration
	BackoffBase  time.Duration
	BackoffCap   time.Duration
}

// Bridge owns the children and one relay.Client, and routes frames between
// them. Create it with NewBridge and run it with Run.
type Bridge struct {
	opts     BridgeOptions
	log      *slog.Logger
	client   *relay.Client
	names    []string // server names, sorted: the order of hello and catalog
	children map[string]*mcpchild.Child

	runCtx context.Context // set by Run before anything can use it

	catalogDirty chan struct{} // capacity 1: coalesces catalog updates

	mu         sync.Mutex
	sessions   map[sessionKey]*session
	connected  bool
	routes     map[string]relay.TAGRoute // TAG mode: flattened name → server/tool
	helloTools json.RawMessage           // TAG mode: the tool list the relay was last given
	lastErr    map[string]string         // per server: the last error logged
}

type sessionKey struct{ server, session string }

// NewBridge builds the children (nothing starts until Run).
func NewBridge(opts BridgeOptions) *Bridge {
	b := &Bridge{
		opts:         opts,
		log:          opts.Logger,
		children:     map[string]*mcpchild.Child{},
		catalogDirty: make(chan struct{}, 1),
		sessions:     map[sessionKey]*session{},
		lastErr:      map[string]string{},
	}
	if b.log == nil {
		b.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for name, spec := range opts.Servers {
		spec.Name = name
		var copts mcpchild.Options
		if opts.ServerOptions != nil {
			copts = opts.ServerOptions(name)
		}
		userHook := copts.OnStatus
		copts.OnStatus = func(st mcpchild.Status) {
			if userHook != nil {
				userHook(st)
			}
			b.onChildStatus(name, st)
		}
		if copts.Logger == nil {
			copts.Logger = b.log // mcpchild adds the server name itself
		}
		b.children[name] = mcpchild.New(spec, copts)
		b.names = append(b.names, name)
	}
	sort.Strings(b.names)

	b.client = relay.NewClient(relay.ClientOptions{
		URL:          opts.RelayURL,
		Token:        opts.Token,
		TAG:          opts.TAG,
		DevID:        opts.DevID,
		Hello:        b.hello,
		OnFrame:      b.onFrame,
		OnState:      b.onConnState,
		Logger:       b.log,
		PingInterval: opts.PingInterval,
		PongWait:     opts.PongWait,
		BackoffBase:  opts.BackoffBase,
		BackoffCap:   opts.BackoffCap,
	})
	return b
}

// Child returns the named child, or nil.
func (b *Bridge) Child(name string) *mcpchild.Child { return b.children[name] }

// ConnState is the relay connection's current state.
func (b *Bridge) ConnState() relay.ConnState { return b.client.State() }

// Kick drops the relay socket and dials again at once (wake, network change).
func (b *Bridge) Kick() { b.client.Kick() }

// Run starts the children, keeps the relay connection up until ctx ends or
// the relay rejects the bridge for good, and then stops everything: the
// children are stopped in parallel. It returns nil when ctx ended.
func (b *Bridge) Run(ctx context.Context) error {
	b.runCtx = ctx
	for _, name := range b.names {
		b.children[name].Start(ctx)
	}
	catCtx, stopCatalog := context.WithCancel(ctx)
	catalogDone := make(chan struct{})
	go func() {
		defer close(catalogDone)
		b.catalogLoop(catCtx)
	}()

	err := b.client.Run(ctx)
	stopCatalog()
	<-catalogDone

	b.closeAllSessions()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, name := range b.names {
		c := b.children[name]
		wg.Go(func() {
			if serr := c.Stop(stopCtx); serr != nil {
				b.log.Warn("stopping server", "server", name, "err", serr)
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}

// servers is the current catalog, in name order.
func (b *Bridge) servers() []relay.ServerInfo {
	out := make([]relay.ServerInfo, 0, len(b.names))
	for _, name := range b.names {
		c := b.children[name]
		st := c.Status()
		si := relay.ServerInfo{
			Name: name, State: string(st.Phase), Era: string(st.Era),
			ToolCount: st.ToolCount, Restarts: st.Restarts, Error: st.LastError,
		}
		if st.Phase == mcpchild.PhaseReady {
			si.Tools = c.Tools()
		}
		out = append(out, si)
	}
	return out
}

// hello builds the first frame of each connection from the current state.
func (b *Bridge) hello() relay.Frame {
	f := relay.Frame{Kind: relay.KindHello, DevID: b.opts.DevID, Version: b.opts.Version}
	servers := b.servers()
	if !b.opts.TAG {
		f.Protocol = relay.ProtocolVersion
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
func (b *Bridge) flattenTools(servers []relay.ServerInfo) json.RawMessage {
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
func (b *Bridge) onChildStatus(name string, st mcpchild.Status) {
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
}

func (b *Bridge) markCatalogDirty() {
	select {
	case b.catalogDirty <- struct{}{}:
	default: // an update is already pending; it will read the latest state
	}
}

// catalogLoop sends a catalog after each change. Being one goroutine, at most
// one catalog is in flight, and each one is built when it is sent, so the
// relay always ends up with the latest state however many changes piled up.
func (b *Bridge) catalogLoop(ctx context.Context) {
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
		if b.opts.TAG {
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
				b.client.Kick()
			}
			continue
		}
		f = relay.Frame{Kind: relay.KindCatalog, Servers: b.servers()}
		if err := b.client.Send(ctx, f); err != nil && !errors.Is(err, relay.ErrNotConnected) && ctx.Err() == nil {
			b.log.Warn("sending catalog", "err", err)
		}
	}
}

// onConnState tracks the socket. Sessions do not survive the socket (the
// relay forgets them), so a drop closes them all; the children stay warm.
func (b *Bridge) onConnState(st relay.ConnState) {
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
		go b.closeAllSessions()
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
func (b *Bridge) onFrame(f relay.Frame) {
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
		b.log.Warn("relay reported an error", "code", f.Code, "message", f.Message, "server", f.Server, "session", f.Session)
	case relay.KindRPCRequest:
		if !b.opts.TAG {
			b.sendError(f, relay.ErrCodeUnknownKind, "rpc.request is for TAG bridges")
			return
		}
		go b.handleTAG(f)
	default:
		b.sendError(f, relay.ErrCodeUnknownKind, "unknown frame kind "+string(f.Kind))
	}
}

func (b *Bridge) onMCP(f relay.Frame) {
	c := b.children[f.Server]
	if c == nil {
		b.answerUnknownServer(f)
		return
	}
	key := sessionKey{f.Server, f.Session}
	b.mu.Lock()
	s := b.sessions[key]
	if s == nil {
		s = b.newSession(c, key)
		b.sessions[key] = s
	}
	b.mu.Unlock()
	s.push(f.Msg)
}

// answerUnknownServer answers a request for a server this bridge does not
// have with a JSON-RPC error (so the caller is not left waiting: error frames
// never answer requests), and reports the frame with an error frame.
func (b *Bridge) answerUnknownServer(f relay.Frame) {
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

func (b *Bridge) sendError(f relay.Frame, code, msg string) {
	b.send(relay.Frame{Kind: relay.KindError, Code: code, Message: msg, Server: f.Server, Session: f.Session})
}

// send queues a frame; a frame for a dropped socket is dropped with it.
func (b *Bridge) send(f relay.Frame) {
	ctx := b.runCtx
	if err := b.client.Send(ctx, f); err != nil && !errors.Is(err, relay.ErrNotConnected) && ctx.Err() == nil {
		b.log.Warn("sending to the relay", "kind", f.Kind, "err", err)
	}
}

// closeAllSessions closes every session (socket dropped, or stopping).
func (b *Bridge) closeAllSessions() {
	b.mu.Lock()
	all := b.sessions
	b.sessions = map[sessionKey]*session{}
	b.mu.Unlock()
	for _, s := range all {
		s.close()
	}
}
