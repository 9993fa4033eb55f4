package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tether-dev/tether/app/config"
	"github.com/tether-dev/tether/internal/netwatch"
	"github.com/tether-dev/tether/keystore"
	"github.com/tether-dev/tether/mcpchild"
	"github.com/tether-dev/tether/relay"
)

// EngineOptions configure an Engine. The zero value plus Paths runs the
// user's setup: mcp.json and settings.json from the folder, the token from
// the headless sources or the OS keychain.
type EngineOptions struct {
	// Paths is the config folder (DefaultPaths()).
	Paths Paths
	// ConfigFile overrides the mcp.json path (--config).
	ConfigFile string
	// Servers, when non-nil, are the only servers (quick mode, --mcp-cmd):
	// no mcp.json is read and nothing is watched.
	Servers map[string]mcpchild.Spec

	// Relay, TAG and DevID override settings.json when set (flags).
	Relay string
	TAG   bool
	DevID string
	// Insecure allows a ws:// or http:// relay that is not on loopback
	// (tetherd run --insecure; settings.json "insecure" does the same).
	Insecure bool

	// TokenFile is the --token-file flag.
	TokenFile string
	// Keychain is where tokens are stored; nil is the OS keychain.
	Keychain keystore.Store
	// Getenv reads the environment (token sources, ${VAR}); nil is os.Getenv.
	Getenv func(string) string

	Logger *slog.Logger
	// ServerLog, if set, opens the log file that receives one server's
	// stderr; the engine closes it when the server goes away.
	ServerLog func(name string) (io.WriteCloser, error)
	Version   string
	// Service is true when running under the OS service manager.
	Service bool
	// Control serves the control API on Paths.Socket and makes this engine
	// the user's one engine: Run fails with ErrEngineRunning when another
	// one already serves there.
	Control bool

	// Debounce is the quiet time after a config file event before reloading
	// (default 100 ms).
	Debounce time.Duration
	// Tuning tunes the relay connection; zero means the protocol defaults.
	Tuning RelayTuning
	// ReadyWait bounds how long a request for a server that is starting or
	// restarting waits for it (default DefaultReadyWait).
	ReadyWait time.Duration

	// wake detection, replaceable in tests
	wakeClock wakeClock
	wakeTicks <-chan time.Time
	// netChanges replaces the OS's network change notifications in tests.
	netChanges <-chan struct{}
}

// maxCalls is how many recent remote calls State keeps.
const maxCalls = 20

// expiryWarning is how long before expiry the token counts as expiring soon.
const expiryWarning = 3 * 24 * time.Hour

// Engine owns the configuration and its watcher, the fleet of children, the
// relay connection and the token, and publishes State. It implements
// Control. Create it with NewEngine and run it with Run.
type Engine struct {
	opts    EngineOptions
	log     *slog.Logger
	bridge  *bridge
	started time.Time
	// helpers are Run's goroutines (publishLoop, watch, watchWake and what
	// they start): Run returns only after they all have.
	helpers sync.WaitGroup

	reloadReq chan struct{}  // capacity 1: coalesces reload requests
	heartbeat chan time.Time // capacity 1: relay pings and pongs, for the sleep check
	dirty     chan struct{}  // capacity 1: coalesces State rebuilds
	ready     chan struct{}  // closed when Run has applied the first config

	mu       sync.Mutex
	settings config.Settings
	cfg      *config.Config // the last good config (nil before the first)
	lastGood *config.Config // the last valid mcp.json seen since the last reload (sawSave)
	cfgErr   string
	cfgAt    time.Time
	wanted   bool // connect requested (autoConnect), false after Disconnect
	tok      tokenInfo
	calls    []CallRecord // newest first
	logs     map[string]io.WriteCloser
	seq      uint64
	state    State
	subs     map[chan State]struct{}

	login loginRunner // sign-in with the browser (engine_login.go)
}

// tokenInfo is the resolved token and what is shown about it.
type tokenInfo struct {
	token  keystore.Token
	source keystore.Source
	claims keystore.Claims
	status TokenStatus
	err    string
}

// NewEngine prepares an engine; nothing runs until Run.
func NewEngine(opts EngineOptions) *Engine {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Keychain == nil {
		opts.Keychain = keystore.Keychain{}
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.ConfigFile == "" {
		opts.ConfigFile = opts.Paths.MCPJSON
	}
	e := &Engine{
		opts:      opts,
		log:       opts.Logger,
		started:   time.Now(),
		reloadReq: make(chan struct{}, 1),
		heartbeat: make(chan time.Time, 1),
		dirty:     make(chan struct{}, 1),
		ready:     make(chan struct{}),
		wanted:    true,
		logs:      map[string]io.WriteCloser{},
		subs:      map[chan State]struct{}{},
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname() // for the relay's page; the device login sends it too
	e.bridge = newBridge(bridgeOptions{
		Hostname:      host,
		Token:         e.dialToken,
		TAG:           opts.TAG,
		DevID:         opts.DevID,
		ServerOptions: e.childOptions,
		Logger:        e.log,
		Version:       opts.Version,
		OnConnState:   e.onConnState,
		OnCall:        e.onCall,
		OnChange:      e.markDirty,
		OnKeepalive:   e.keepaliveTick,
		RelayTuning:   opts.Tuning,
		ReadyWait:     opts.ReadyWait,
	})
	e.state = State{Version: opts.Version}
	return e
}

var _ Control = (*Engine)(nil)

// Run runs the engine until ctx ends: it claims the control socket (when
// opts.Control), loads the config, starts the servers, connects when a
// relay and a token are known, and then follows file changes, commands and
// wakes. It returns ErrEngineRunning (from the control API) when another
// engine of this user is already running.
func (e *Engine) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	quick := e.opts.Servers != nil
	if e.opts.Paths.Dir != "" {
		if err := e.opts.Paths.Ensure(); err != nil {
			return err
		}
	}
	if e.opts.Control {
		srv, err := ServeControl(ctx, e.opts.Paths.Socket, e, e.log)
		if err != nil {
			return err
		}
		defer srv.Close()
		// Holding the control socket makes this the one engine of this
		// folder: it reaps what a killed predecessor's children left.
		if _, err := mcpchild.TrackGroups(filepath.Join(e.opts.Paths.Dir, "children.json"), e.log); err != nil {
			e.log.Warn("cannot keep a record of the children's process groups", "err", err)
		}
	}
	if !quick && e.opts.ConfigFile == e.opts.Paths.MCPJSON {
		created, err := config.EnsureExample(e.opts.ConfigFile)
		if err != nil {
			return fmt.Errorf("create the example mcp.json: %w", err)
		}
		if created {
			e.log.Info("created an example mcp.json; add your servers there", "path", e.opts.ConfigFile)
		}
	}

	e.helpers.Go(func() { e.publishLoop(ctx) })
	e.bridge.Start(ctx)
	e.reload()
	e.login.open(ctx)
	close(e.ready)

	if !quick {
		e.helpers.Go(func() { e.watch(ctx) })
	}
	e.helpers.Go(func() { e.watchWake(ctx) })
	netDone := e.watchNetwork(ctx)

	for {
		select {
		case <-ctx.Done():
			e.log.Info("stopping")
			<-netDone
			e.login.close()
			e.bridge.Shutdown(context.WithoutCancel(ctx))
			e.closeLogs()
			e.markDirty()
			e.helpers.Wait()
			return nil
		case <-e.reloadReq:
			e.reload()
		}
	}
}

// Ready is closed once Run has loaded the config and started the servers.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// Wake tells the engine the machine just woke (or the network changed): the
// relay socket is dropped and dialled again at once.
func (e *Engine) Wake() {
	e.log.Info("wake: reconnecting to the relay")
	e.bridge.Kick()
}

func (e *Engine) watchWake(ctx context.Context) {
	clk, ticks := e.opts.wakeClock, e.opts.wakeTicks
	if clk == nil {
		clk = realWakeClock{start: time.Now()}
	}
	if ticks == nil {
		// The check runs on the relay's keepalive (a ping or pong every
		// 15 s while connected: the process is awake for it anyway) and on
		// a slow fallback ticker. While disconnected the reconnect backoff
		// (at most 30 s) redials regardless, and where the OS reports
		// wakes (logind) those come at once.
		interval := wakeInterval
		if e.watchPowerEvents(ctx) {
			interval = wakeIntervalWithOSEvents
		}
		t := time.NewTicker(interval)
		defer t.Stop()
		merged := make(chan time.Time)
		e.helpers.Go(func() {
			for {
				var at time.Time
				select {
				case <-ctx.Done():
					return
				case at = <-t.C:
				case at = <-e.heartbeat:
				}
				select {
				case merged <- at:
				case <-ctx.Done():
					return
				}
			}
		})
		ticks = merged
	}
	watchWake(ctx, clk, ticks, wakeSlack, func(slept time.Duration) {
		e.log.Info("the machine slept", "for", slept.Round(time.Second))
		e.Wake()
	})
}

// keepaliveTick offers a relay ping or pong to the sleep check.
func (e *Engine) keepaliveTick() {
	select {
	case e.heartbeat <- time.Now():
	default: // a check is already pending
	}
}

// watchPowerEvents reconnects whenever the OS reports a wake (logind on
// Linux, resume notifications on Windows) and reports whether such events
// are available at all.
func (e *Engine) watchPowerEvents(ctx context.Context) bool {
	wakes, err := powerEvents(ctx, &e.helpers)
	if err != nil {
		e.log.Debug("no OS power events; the clock check alone detects sleep", "err", err)
		return false
	}
	e.helpers.Go(func() {
		for range wakes {
			e.log.Info("the OS reported a wake")
			e.Wake()
		}
	})
	return true
}

// watchNetwork tells the relay link about every network change the OS
// reports (an address or route came or went), so a link waiting out its
// backoff dials at once and a connected one checks its socket. The returned
// channel closes when the watcher's goroutine has ended (after ctx).
func (e *Engine) watchNetwork(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	changes, err := e.opts.netChanges, error(nil)
	if changes == nil {
		changes, err = netwatch.Watch(ctx)
	}
	if err != nil {
		e.log.Debug("no network change notifications; backoff and keepalive alone bring the link back", "err", err)
		close(done)
		return done
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-changes:
				if !ok {
					return
				}
				e.log.Debug("the network changed")
				e.bridge.NetworkChanged()
			}
		}
	}()
	return done
}

// watch follows the config folder until ctx ends.
func (e *Engine) watch(ctx context.Context) {
	names := []string{filepath.Base(e.opts.ConfigFile), filepath.Base(e.opts.Paths.Settings), ".env"}
	err := config.WatchEach(ctx, filepath.Dir(e.opts.ConfigFile), names, e.opts.Debounce, e.sawSave, e.requestReload)
	if err != nil && ctx.Err() == nil {
		e.log.Error("cannot watch the config folder; edits need `tetherd` to be told (SIGHUP) or restarted", "err", err)
	}
}

// sawSave reads mcp.json as each save lands, before the debounce, and keeps
// the last one that is valid: a burst of saves that ends in a broken file
// (an editor's partial write, a truncated copy) then falls back to the last
// good file written, not to whatever was applied before the burst.
func (e *Engine) sawSave(name string) {
	if name != filepath.Base(e.opts.ConfigFile) {
		return
	}
	cfg, err := config.Load(e.opts.ConfigFile)
	if err != nil {
		return
	}
	e.mu.Lock()
	e.lastGood = cfg
	e.mu.Unlock()
}

func (e *Engine) requestReload() {
	select {
	case e.reloadReq <- struct{}{}:
	default:
	}
}

// reload reads settings.json and mcp.json and applies them. Only Run's
// goroutine calls it, so reloads never overlap.
func (e *Engine) reload() {
	quick := e.opts.Servers != nil
	settings := e.currentSettings()
	if !quick || e.opts.Paths.Settings != "" {
		s, err := config.LoadSettings(e.opts.Paths.Settings)
		if err != nil {
			e.log.Error("settings.json is invalid; keeping the previous settings", "err", err)
		} else {
			settings = s
		}
	}

	var defs map[string]ServerDef
	var cfg *config.Config
	var cfgErr string
	if quick {
		cfg = &config.Config{Servers: e.opts.Servers}
		for name, spec := range e.opts.Servers {
			spec.Name = name
			cfg.Entries = append(cfg.Entries, config.ServerEntry{Name: name, Spec: spec, Kind: kindOf(spec)})
		}
	} else {
		c, err := config.Load(e.opts.ConfigFile)
		if err != nil {
			cfgErr = err.Error()
			e.mu.Lock()
			good := e.lastGood
			e.lastGood = nil
			e.mu.Unlock()
			if good != nil {
				// A valid save came during the burst that ended here.
				cfg = good
				e.log.Error("mcp.json is invalid; running the last valid version saved before it", "err", err)
			} else {
				e.log.Error("mcp.json is invalid; the last good config keeps running", "err", err)
			}
		} else {
			cfg = c
			e.mu.Lock()
			e.lastGood = nil // this reload read a valid file itself
			e.mu.Unlock()
			for _, m := range c.Missing {
				e.log.Warn("variable in mcp.json is not set", "var", m)
			}
		}
	}

	e.mu.Lock()
	e.settings = settings
	if cfg != nil {
		e.cfg, e.cfgAt = cfg, time.Now()
	}
	e.cfgErr = cfgErr
	if e.settings.AutoConnect != nil {
		e.wanted = *e.settings.AutoConnect
	}
	cur := e.cfg
	e.mu.Unlock()

	if cur != nil {
		defs = serverDefs(cur)
		added, removed, restarted := e.bridge.Apply(defs)
		if len(added)+len(removed)+len(restarted) > 0 {
			e.log.Info("servers applied", "added", added, "removed", removed, "restarted", restarted)
		}
		e.closeLogsExcept(defs)
	}
	url, tag, dev := e.relayTarget()
	e.bridge.setTarget(relayTarget{url: url, tag: tag, devID: dev, insecure: e.opts.Insecure || settings.Insecure})
	e.refreshToken()
	e.syncLink()
	e.markDirty()
}

// serverDefs turns the enabled entries of a config into what the bridge runs.
func serverDefs(cfg *config.Config) map[string]ServerDef {
	defs := map[string]ServerDef{}
	for _, en := range cfg.Entries {
		if en.Disabled {
			continue
		}
		def := ServerDef{Spec: en.Spec, Era: en.Era, Key: en.Spec.Hash() + "|" + string(en.Era)}
		if en.Isolate == config.IsolateSession {
			def.Isolate, def.MaxProcesses = true, en.MaxProcesses
			def.Key += fmt.Sprintf("|isolate %d", en.MaxProcesses)
		}
		if f := en.Filter; len(f.Allow)+len(f.Deny) > 0 {
			def.Allow = f.Allows
		}
		defs[en.Name] = def
	}
	return defs
}

func kindOf(spec mcpchild.Spec) ServerKind {
	if spec.URL != "" {
		return KindHTTP
	}
	return KindStdio
}

func (e *Engine) currentSettings() config.Settings {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.settings
}

// relayTarget is the relay to use: flags first, then settings.json.
func (e *Engine) relayTarget() (url string, tag bool, devID string) {
	s := e.currentSettings()
	url, tag, devID = s.Relay, s.TAG, s.DevID
	if e.opts.Relay != "" {
		url = e.opts.Relay
	}
	if e.opts.TAG {
		tag = true
	}
	if e.opts.DevID != "" {
		devID = e.opts.DevID
	}
	return url, tag, devID
}

// syncLink starts or stops the relay link to match what is wanted and
// possible: a relay URL, a token, and no Disconnect.
func (e *Engine) syncLink() {
	e.mu.Lock()
	want := e.wanted && e.tok.token != ""
	e.mu.Unlock()
	if want && e.bridge.RelayURL() != "" {
		e.bridge.Connect()
	} else {
		e.bridge.Disconnect()
	}
}

// resolver is the token lookup for the current relay.
func (e *Engine) resolver() keystore.Resolver {
	url, _, _ := e.relayTarget()
	r := keystore.Resolver{TokenFile: e.opts.TokenFile, Getenv: e.opts.Getenv, Keychain: e.opts.Keychain}
	if url != "" {
		r.Account = keystore.AccountFor(url)
	}
	return r
}

// refreshToken resolves the token again and records what is shown about it.
func (e *Engine) refreshToken() keystore.Token {
	t, src, err := e.resolver().Resolve()
	info := tokenInfo{token: t, source: src, status: tokenStatus(err)}
	if err != nil {
		info.err = err.Error()
	} else if c, cerr := keystore.ParseClaims(t); cerr == nil {
		info.claims = c
	}
	e.mu.Lock()
	changed := e.tok.token != info.token || e.tok.err != info.err
	e.tok = info
	e.mu.Unlock()
	if changed {
		if err != nil {
			e.log.Warn("no bridge token", "err", err)
		} else {
			e.log.Info("bridge token found", "source", src, "token", t)
		}
		e.markDirty()
	}
	return t
}

// dialToken is the relay client's token source. A token file is read again
// on every dial so a rotated file is picked up without a restart; the
// keychain is asked only when the cached token is gone.
func (e *Engine) dialToken(ctx context.Context) (string, error) {
	e.mu.Lock()
	tok, src := e.tok.token, e.tok.source
	e.mu.Unlock()
	if tok == "" || src == keystore.SourceTokenFile {
		tok = e.refreshToken()
	}
	if tok == "" {
		e.mu.Lock()
		msg := e.tok.err
		e.mu.Unlock()
		return "", errors.New(msg)
	}
	if url, _, _ := e.relayTarget(); url != "" {
		if err := CheckTokenAudience(tok, url); err != nil {
			return "", err // retried with backoff: a fixed token file is picked up
		}
	}
	return tok.Reveal(), nil
}

func (e *Engine) childOptions(name string) mcpchild.Options {
	opts := mcpchild.Options{
		Logger:        e.log,
		ClientName:    "tetherd",
		ClientVersion: e.opts.Version,
	}
	if e.opts.ServerLog != nil {
		e.mu.Lock()
		w := e.logs[name]
		e.mu.Unlock()
		if w == nil {
			var err error
			w, err = e.opts.ServerLog(name)
			if err != nil {
				e.log.Warn("cannot open the server's log file", "server", name, "err", err)
			} else {
				e.mu.Lock()
				e.logs[name] = w
				e.mu.Unlock()
			}
		}
		if w != nil {
			opts.Log = w
		}
	}
	return opts
}

// closeLogsExcept closes the log files of servers no longer running.
func (e *Engine) closeLogsExcept(defs map[string]ServerDef) {
	var gone []io.WriteCloser
	e.mu.Lock()
	for name, w := range e.logs {
		if _, ok := defs[name]; !ok {
			gone = append(gone, w)
			delete(e.logs, name)
		}
	}
	e.mu.Unlock()
	// Closed after the lock: a Close flushes to a file and may wait.
	for _, w := range gone {
		w.Close()
	}
}

func (e *Engine) closeLogs() { e.closeLogsExcept(nil) }

func (e *Engine) onConnState(relay.ConnState) { e.markDirty() }

func (e *Engine) onCall(rec CallRecord) {
	e.mu.Lock()
	if len(e.calls) < maxCalls {
		e.calls = append(e.calls, CallRecord{})
	}
	copy(e.calls[1:], e.calls)
	e.calls[0] = rec
	e.mu.Unlock()
	e.markDirty()
}
