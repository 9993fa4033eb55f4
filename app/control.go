package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The local control API: any Control (normally the *Engine) served as JSON
// over HTTP on a unix socket in the config folder. The tray and `tetherd
// status` talk to it through ControlClient, so they behave the same with an
// in-process engine or the service.
//
//	GET  /v1/state                       → State
//	GET  /v1/events                      → SSE: "event: state" + "data: <State>", first the current one
//	POST /v1/connect | /v1/disconnect | /v1/reload
//	POST /v1/token        {"token": "..."}  (never logged, never echoed)
//	POST /v1/token/clear  (DELETE /v1/token does the same)
//	POST /v1/servers/{name}/restart | enable | disable
//	POST /v1/relay        {"relay": "https://...", "fromLink": true, "unboundTokenOK": false}
//	                      (fromLink: Control.SetLinkRelay, 403 when the token may not go there)
//
// Errors are {"error": "..."} with a fitting status. Who may connect: the
// socket is 0600 in a folder that must be 0700 and ours, and on Linux and
// macOS every accepted connection's peer uid must be ours too (control_unix.go;
// Windows: control_windows.go).
//
// The socket doubles as the single-engine check: ServeControl holds an
// exclusive lock on tether.lock beside it for the engine's life, and a second
// engine gets ErrEngineRunning instead of a second socket.

// ErrEngineRunning is returned (wrapped in *EngineRunningError) by
// ServeControl when another engine of this user already serves the socket:
// attach to it with DialControl instead of starting a second one.
var ErrEngineRunning = errors.New("an engine is already running")

// ErrNoEngine is returned by DialControl when no engine answers on the socket.
var ErrNoEngine = errors.New("no engine is running")

// EngineRunningError says which engine holds the socket.
type EngineRunningError struct {
	PID    int // from its /v1/state (or its lock file when it did not answer)
	Socket string
	// Unresponsive is true when the engine holds the lock but did not answer
	// on the socket in time (still starting, or hung).
	Unresponsive bool
}

func (e *EngineRunningError) Error() string {
	if e.Unresponsive {
		return fmt.Sprintf("an engine (pid %d) holds the lock for %s but does not answer on it", e.PID, e.Socket)
	}
	return fmt.Sprintf("an engine is already running (pid %d) on %s", e.PID, e.Socket)
}

func (e *EngineRunningError) Unwrap() error { return ErrEngineRunning }

// ControlError is an error answered by the control API. A Control
// implementation may return an error with a StatusCode() int method to pick
// the HTTP status (ControlError itself has one, so errors pass through a
// chain of control APIs unchanged); anything else is a 500.
type ControlError struct {
	Status  int
	Message string
}

func (e *ControlError) Error() string   { return e.Message }
func (e *ControlError) StatusCode() int { return e.Status }

const (
	// LockFileName is the lock held beside the socket by the serving engine.
	LockFileName = "tether.lock"
	// maxControlBody caps request bodies; the largest is a token.
	maxControlBody = 64 << 10
	// maxSocketPath keeps within sun_path (104 bytes on macOS, 108 on
	// Linux and Windows, including the NUL).
	maxSocketPath = 103
)

var (
	// controlKeepalive is how often an idle event stream gets a comment, so
	// both sides notice a dead peer. A variable so tests can shorten it.
	controlKeepalive = 20 * time.Second
	// controlStartWait is how long a losing ServeControl waits for the
	// engine holding the lock to answer on the socket.
	controlStartWait = 5 * time.Second
)

// ControlServer serves a Control on a unix socket. Close it (or cancel the
// context given to ServeControl) to stop; the socket file is removed and the
// lock released.
type ControlServer struct {
	path   string
	log    *slog.Logger
	ln     net.Listener
	lock   *os.File
	srv    *http.Server
	cancel context.CancelFunc // ends event streams and the ctx watcher
	done   chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// ServeControl listens on socketPath and serves c until ctx ends or Close.
// It creates the socket's folder (0700) if missing and refuses a folder that
// others can open or that belongs to someone else. When another engine
// already serves the socket it returns an *EngineRunningError (errors.Is
// ErrEngineRunning); a socket left by a crashed engine is removed and taken
// over. log may be nil.
func ServeControl(ctx context.Context, socketPath string, c Control, log *slog.Logger) (*ControlServer, error) {
	return serveControl(ctx, socketPath, c, log, defaultControlTimeouts)
}

// controlTimeouts bound the control API's connections.
type controlTimeouts struct {
	read time.Duration // whole request, body included
	idle time.Duration // an idle keep-alive connection
}

var defaultControlTimeouts = controlTimeouts{read: 30 * time.Second, idle: 2 * time.Minute}

func serveControl(ctx context.Context, socketPath string, c Control, log *slog.Logger, to controlTimeouts) (*ControlServer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if c == nil {
		return nil, errors.New("control server: nil Control")
	}
	path, err := filepath.Abs(socketPath)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", socketPath, err)
	}
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control socket path %s is %d bytes, longer than the %d a unix socket allows: use a shorter config folder ($TETHER_HOME)", path, len(path), maxSocketPath)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create control socket folder: %w", err)
	}
	if err := checkControlDir(dir); err != nil {
		return nil, err
	}

	lock, held, err := controlLock(filepath.Join(dir, LockFileName))
	if err != nil {
		return nil, err
	}
	if held {
		// Another engine holds the lock: it is running or about to listen.
		return nil, waitForControl(ctx, path)
	}
	s, err := listenControl(ctx, path, lock, c, log, to)
	if err != nil {
		controlUnlock(lock)
		return nil, err
	}
	return s, nil
}

// listenControl runs with the engine lock held, so no other locking engine
// can be listening: a socket file that does not answer is stale.
func listenControl(ctx context.Context, path string, lock *os.File, c Control, log *slog.Logger, to controlTimeouts) (*ControlServer, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s exists and is not a socket: move it away", path)
		}
		// An engine without the lock (an older build, or a lock file
		// someone deleted) would still answer: never steal its socket.
		if pid, err := probeControl(ctx, path, time.Second); err == nil {
			return nil, &EngineRunningError{PID: pid, Socket: path}
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove stale control socket: %w", err)
		}
		log.Info("control: removed a stale socket left by a previous engine", "socket", path)
	}

	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on control socket: %w", err)
	}
	// The folder already keeps others out; the mode is a second wall.
	if err := restrictControlSocket(path); err != nil {
		ln.Close()
		return nil, err
	}

	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &ControlServer{
		path:   path,
		log:    log,
		ln:     &peerCheckListener{Listener: ln, log: log},
		lock:   lock,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	s.srv = &http.Server{
		Handler:           newControlHandler(c, log),
		ReadHeaderTimeout: 10 * time.Second,
		// A client that stops mid-request, or keeps an idle connection,
		// must not hold a connection (and a goroutine) for good: every
		// request is read within to.read, and an idle keep-alive
		// connection closes after to.idle. The event
		// stream lifts its read deadline itself (see events).
		ReadTimeout: to.read,
		IdleTimeout: to.idle,
		BaseContext: func(net.Listener) context.Context { return base },
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control: serve stopped", "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-base.Done():
		}
	}()
	log.Info("control: listening", "socket", path)
	return s, nil
}

// Path is the socket's absolute path.
func (s *ControlServer) Path() string { return s.path }

// Done is closed when the server has stopped serving.
func (s *ControlServer) Done() <-chan struct{} { return s.done }

// Close stops serving: event streams end, requests in flight get a moment to
// finish, the socket file is removed and then the lock released (in that
// order, so a successor never loses its fresh socket to our cleanup).
func (s *ControlServer) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.srv.Close()
		}
		<-s.done
		// Serve closed the listener, which unlinks the socket; make sure.
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.closeErr = fmt.Errorf("remove control socket: %w", err)
		}
		controlUnlock(s.lock)
		s.log.Info("control: stopped", "socket", s.path)
	})
	return s.closeErr
}

// waitForControl runs when another engine holds the lock: it waits for that
// engine to answer on the socket (it may be between locking and listening)
// and reports it.
func waitForControl(ctx context.Context, path string) error {
	deadline := time.Now().Add(controlStartWait)
	delay := 20 * time.Millisecond
	for {
		pid, err := probeControl(ctx, path, time.Second)
		if err == nil {
			return &EngineRunningError{PID: pid, Socket: path}
		}
		if time.Now().After(deadline) {
			return &EngineRunningError{PID: controlLockPID(filepath.Join(filepath.Dir(path), LockFileName)), Socket: path, Unresponsive: true}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for the running engine: %w", ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, 250*time.Millisecond)
	}
}

// probeControl asks the engine on path for its PID.
func probeControl(ctx context.Context, path string, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl, err := DialControl(ctx, path)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	st, err := cl.State(ctx)
	if err != nil {
		return 0, err
	}
	return st.Engine.PID, nil
}

// ListenOwnerOnly listens on a unix socket at path guarded like the control
// socket: its folder must be ours and closed to others (0700), the socket
// file is 0600, and where the OS reports the peer every connection from
// another user is dropped before it is read. The tray's own socket
// (tray.sock, which takes tether:// links from a second launch) uses it. A
// bind error is returned unwrapped from net.Listen's, so EADDRINUSE can be
// told apart. log may be nil.
func ListenOwnerOnly(path string, log *slog.Logger) (net.Listener, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("socket path %s is %d bytes, longer than the %d a unix socket allows: use a shorter config folder ($TETHER_HOME)", path, len(path), maxSocketPath)
	}
	if err := checkControlDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := restrictControlSocket(path); err != nil {
		ln.Close()
		return nil, err
	}
	return &peerCheckListener{Listener: ln, log: log}, nil
}

// peerCheckListener drops connections from other users before HTTP sees
// them (where the OS tells us the peer; see controlPeerAllowed).
type peerCheckListener struct {
	net.Listener
	log *slog.Logger
}

func (l *peerCheckListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if err := controlPeerAllowed(conn); err != nil {
			l.log.Warn("control: refused a connection", "err", err)
			conn.Close()
			continue
		}
		return conn, nil
	}
}

// newControlHandler routes the API onto c.
func newControlHandler(c Control, log *slog.Logger) http.Handler {
	h := &controlHandler{c: c, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/state", h.state)
	mux.HandleFunc("GET /v1/events", h.events)
	mux.HandleFunc("POST /v1/connect", h.command("connect", c.Connect))
	mux.HandleFunc("POST /v1/disconnect", h.command("disconnect", c.Disconnect))
	mux.HandleFunc("POST /v1/reload", h.command("reload", c.Reload))
	mux.HandleFunc("POST /v1/token", h.setToken)
	mux.HandleFunc("POST /v1/token/clear", h.command("clear token", c.ClearToken))
	mux.HandleFunc("DELETE /v1/token", h.command("clear token", c.ClearToken))
	mux.HandleFunc("POST /v1/servers/{name}/restart", h.server("restart", func(ctx context.Context, name string) error {
		return c.RestartServer(ctx, name)
	}))
	mux.HandleFunc("POST /v1/servers/{name}/enable", h.server("enable", func(ctx context.Context, name string) error {
		return c.SetServerEnabled(ctx, name, true)
	}))
	mux.HandleFunc("POST /v1/servers/{name}/disable", h.server("disable", func(ctx context.Context, name string) error {
		return c.SetServerEnabled(ctx, name, false)
	}))
	mux.HandleFunc("POST /v1/relay", h.setRelay)
	mux.HandleFunc("POST /v1/servers/import", h.importServers)
	mux.HandleFunc("POST /v1/login", h.login)
	mux.HandleFunc("POST /v1/login/cancel", h.command("cancel login", c.CancelLogin))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		controlWriteError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

type controlHandler struct {
	c   Control
	log *slog.Logger
}

func (h *controlHandler) state(w http.ResponseWriter, r *http.Request) {
	st, err := h.c.State(r.Context())
	if err != nil {
		h.fail(w, "state", err, "")
		return
	}
	controlWriteJSON(w, http.StatusOK, st)
}

// events streams snapshots as Server-Sent Events until the client leaves or
// the server closes. The Control's Subscribe already coalesces, so a slow
// reader here only delays its own stream.
func (h *controlHandler) events(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ch, err := h.c.Subscribe(ctx)
	if err != nil {
		h.fail(w, "subscribe", err, "")
		return
	}
	rc := http.NewResponseController(w)
	// The stream outlives the server's ReadTimeout: without this, the
	// server's background read would hit that deadline and cancel r's
	// context, ending the stream after the read timeout.
	_ = rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	keep := time.NewTicker(controlKeepalive)
	defer keep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case st, ok := <-ch:
			if !ok {
				return // the engine went away
			}
			data, err := json.Marshal(st)
			if err != nil {
				h.log.Error("control: encode state", "err", err)
				return
			}
			// json.Marshal never emits a raw newline, so one data line holds it.
			if _, err := fmt.Fprintf(w, "event: state\ndata: %s\n\n", data); err != nil {
				return
			}
		case <-keep.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// command adapts an argument-less Control method.
func (h *controlHandler) command(what string, fn func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(r.Context()); err != nil {
			h.fail(w, what, err, "")
			return
		}
		h.log.Debug("control: command", "command", what)
		w.WriteHeader(http.StatusNoContent)
	}
}

// server adapts a per-server command; the name is one path segment
// (ControlClient escapes it).
func (h *controlHandler) server(what string, fn func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if name == "" {
			controlWriteError(w, http.StatusBadRequest, "missing server name")
			return
		}
		if err := fn(r.Context(), name); err != nil {
			h.fail(w, what+" "+name, err, "")
			return
		}
		h.log.Debug("control: command", "command", what, "server", name)
		w.WriteHeader(http.StatusNoContent)
	}
}

// setToken takes {"token": "..."}. The token is never logged nor echoed,
// not even inside an error the Control returns.
func (h *controlHandler) setToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Token string `json:"token"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxControlBody)
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			controlWriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", maxControlBody))
			return
		}
		// The decoder's message can quote the body: keep it out.
		controlWriteError(w, http.StatusBadRequest, `body must be JSON {"token": "..."}`)
		return
	}
	token := strings.TrimSpace(body.Token)
	if token == "" {
		controlWriteError(w, http.StatusBadRequest, "empty token")
		return
	}
	if err := h.c.SetToken(r.Context(), token); err != nil {
		h.fail(w, "set token", err, token)
		return
	}
	h.log.Info("control: token set")
	w.WriteHeader(http.StatusNoContent)
}

// setRelay takes {"relay": "https://..."}.
func (h *controlHandler) setRelay(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Relay string `json:"relay"`
		// FromLink marks a relay named by a tether:// link: the engine
		// checks the token it would send there (Control.SetLinkRelay).
		FromLink  bool `json:"fromLink,omitempty"`
		UnboundOK bool `json:"unboundTokenOK,omitempty"`
	}
	if !h.decode(w, r, &body, `{"relay": "https://..."}`) {
		return
	}
	set := func(ctx context.Context) error { return h.c.SetRelay(ctx, body.Relay) }
	if body.FromLink {
		set = func(ctx context.Context) error { return h.c.SetLinkRelay(ctx, body.Relay, body.UnboundOK) }
	}
	if err := set(r.Context()); err != nil {
		h.fail(w, "set relay", err, "")
		return
	}
	h.log.Info("control: relay set", "relay", body.Relay)
	w.WriteHeader(http.StatusNoContent)
}

// importServers takes {"sources": [{"App": ..., "Path": ...}]} and answers
// the ImportReport.
func (h *controlHandler) importServers(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Sources []ImportSource `json:"sources"`
	}
	if !h.decode(w, r, &body, `{"sources": [{"App": "...", "Path": "..."}]}`) {
		return
	}
	rep, err := h.c.ImportServers(r.Context(), body.Sources)
	if err != nil {
		h.fail(w, "import servers", err, "")
		return
	}
	h.log.Info("control: servers imported", "count", len(rep.Imported()))
	controlWriteJSON(w, http.StatusOK, rep)
}

// decode reads a small JSON body into v, or answers 400/413 and returns
// false; want shows the expected shape.
func (h *controlHandler) decode(w http.ResponseWriter, r *http.Request, v any, want string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxControlBody)
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			controlWriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", maxControlBody))
			return false
		}
		controlWriteError(w, http.StatusBadRequest, "body must be JSON "+want)
		return false
	}
	return true
}

// fail answers a Control error. secret, when set, is scrubbed from the
// message in case the Control quoted it.
func (h *controlHandler) fail(w http.ResponseWriter, what string, err error, secret string) {
	status := http.StatusInternalServerError
	var sc interface{ StatusCode() int }
	switch {
	case errors.As(err, &sc) && sc.StatusCode() >= 400 && sc.StatusCode() <= 599:
		status = sc.StatusCode()
	case errors.Is(err, context.Canceled):
		status = http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
	}
	msg := err.Error()
	if secret != "" {
		msg = strings.ReplaceAll(msg, secret, "[redacted]")
	}
	h.log.Warn("control: command failed", "command", what, "status", status, "err", msg)
	controlWriteError(w, status, msg)
}

func controlWriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func controlWriteError(w http.ResponseWriter, status int, msg string) {
	controlWriteJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}

// login starts a sign-in with the browser and answers its LoginState.
func (h *controlHandler) login(w http.ResponseWriter, r *http.Request) {
	st, err := h.c.Login(r.Context())
	if err != nil {
		h.fail(w, "login", err, "")
		return
	}
	h.log.Info("control: sign-in started", "relay", st.Relay)
	controlWriteJSON(w, http.StatusOK, st)
}
