// Package server is tether-relay: it holds one WebSocket slot per developer
// for their bridge (Tether's own protocol at /v1/connect, the TAG protocol at
// /dev/{id}/connect) and exposes every bridged MCP server as a standard MCP
// Streamable HTTP endpoint at /mcp/{dev}/{server}.
//
// For Tether bridges the relay does not speak MCP: it routes raw JSON-RPC
// messages by (session, id) and leaves initialize, era translation and id
// rewriting to the bridge. For TAG bridges, which only know "list" and
// "call", the relay is the MCP façade itself (see tag.go).
package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-dev/tether/relay"
)

// DefaultCallTimeout bounds one relayed MCP request when Server.CallTimeout
// is zero.
const DefaultCallTimeout = 60 * time.Second

// DefaultSessionIdleTimeout ends a 2025-era client session that has seen no
// request, has no call in flight and no open GET stream for this long.
// Clients that never send DELETE would otherwise pin bridge sessions forever.
const DefaultSessionIdleTimeout = 30 * time.Minute

// DefaultSessionMaxAge caps how long a 2025-era session id is accepted
// after it was issued (sooner when the client's token expires). Ids are
// signed and outlive the relay process, so this cap, not the idle timeout,
// is what ends a session that was idle across a relay restart.
const DefaultSessionMaxAge = 24 * time.Hour

// DefaultBridgeWait is how long a request for a dev whose bridge is
// offline waits for it to come back before the 503.
const DefaultBridgeWait = 10 * time.Second

// DefaultStartWait is how long a request for a server that is starting
// (or waiting to restart after a crash) waits for it to be ready.
const DefaultStartWait = 30 * time.Second

// Server is the relay. Set the exported fields, then use it as an
// http.Handler; the zero value of every field but Verifier is usable.
type Server struct {
	// Verifier checks bearer tokens. Required.
	Verifier *Verifier
	// Logger receives structured logs; nil discards them. Tokens are never logged.
	Logger *slog.Logger
	// CallTimeout bounds each relayed request (default DefaultCallTimeout).
	CallTimeout time.Duration
	// SessionIdleTimeout ends idle client sessions (default DefaultSessionIdleTimeout).
	SessionIdleTimeout time.Duration
	// SessionMaxAge bounds a session id's life (default DefaultSessionMaxAge).
	SessionMaxAge time.Duration
	// BridgeWait is how long a request waits for an offline bridge
	// (default DefaultBridgeWait; negative: answer 503 at once).
	BridgeWait time.Duration
	// StartWait is how long a request waits for a server that is starting
	// (default DefaultStartWait; negative: do not wait).
	StartWait time.Duration
	// ResumeGrace is how long a 2025-era POST stream whose client
	// connection dropped before the response is held for a GET with
	// Last-Event-ID before the call is cancelled (default
	// DefaultResumeGrace; negative: streams are not resumable, they carry
	// no event ids and a dropped one cancels its call at once). See
	// poststream.go.
	ResumeGrace time.Duration

	// BodyTimeout bounds how long a client may take to send a request's
	// headers' promised body (default DefaultBodyTimeout). Without it a
	// client that sends headers with a Content-Length and then nothing
	// holds a connection, a goroutine and a file for good — even when the
	// answer is a 401, which net/http sends only after draining the body.
	BodyTimeout time.Duration

	// PublicURLs are the relay's public base URLs (https://relay.example.com).
	// Their hosts are the DNS names the MCP endpoints answer to, besides
	// loopback names and IP literals (see origin.go).
	PublicURLs []string
	// AllowOrigins are the browser origins (https://app.example.com, or "*")
	// allowed to call the MCP endpoints, besides the relay's own.
	AllowOrigins []string

	// MetricsToken, when set, is the bearer token that GET /metrics on
	// this handler requires (compared in constant time). Without it this
	// handler answers /metrics with 404; serve MetricsHandler on a listener
	// of its own instead.
	MetricsToken string

	// Limits bound what one client token may take (see limits.go).
	Limits Limits

	// Device, when set, serves the device authorization grant and
	// connect codes (device.go).
	Device *Device

	// OAuth, when set (and PublicURLs is not empty), makes the relay the
	// OAuth authorization server of its MCP endpoints (see oauth.go).
	OAuth *OAuthConfig
	oauth *oauthServer

	// now, when set (tests), is the clock of the rate limits.
	now func() time.Time

	// onRegister, when set (tests), is called after a bridge takes its slot.
	onRegister func(dev, protocol string)
	// onWait, when set (tests), is called when a request starts waiting
	// for a bridge ("bridge") or for a server to start ("server").
	onWait func(what string)
	// onStream, when set (tests), is called when a resumable POST stream
	// is held, buffers an event while held, is resumed, or its client
	// cancels it (see hook).
	onStream func(event string)

	initOnce sync.Once
	mux      *http.ServeMux
	log      *slog.Logger
	metrics  *metrics
	limits   *tokenLimits
	// tokenLimits bounds POST /oauth/token per client address.
	tokenLimits *keyedLimits

	stopWatch chan struct{} // closed by Shutdown: ends watchRevocations

	signer  *sessionSigner
	book    sessionBook
	streams streamBook // resumable POST streams (poststream.go)

	// activity is what the web page shows: last calls, change wake-ups.
	activity activity

	// Web, when set, serves every path the relay itself does not: the
	// web page (GET /, sign-in, tokens). See relay/web.
	Web http.Handler
	// lastBookSweep is the unix second of the book's last sweep.
	lastBookSweep atomic.Int64

	mu       sync.Mutex
	closed   bool
	bridges  map[string]*bridgeConn // dev → the one live bridge
	arrivals map[string]*arrival    // dev → requests waiting for its bridge
	wg       sync.WaitGroup         // bridge sockets still running
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.log = s.Logger
		if s.log == nil {
			s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
		s.metrics = newMetrics()
		s.limits = newTokenLimits(s.Limits)
		s.bridges = make(map[string]*bridgeConn)
		s.arrivals = make(map[string]*arrival)
		var secret []byte
		if s.Verifier != nil {
			secret = s.Verifier.Secret
		}
		s.signer = newSessionSigner(secret)
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", s.handleHealth)
		mux.HandleFunc("GET /metrics", s.handleGuardedMetrics)
		mux.HandleFunc("GET /v1/connect", s.handleTetherConnect)
		mux.HandleFunc("GET /dev/{id}/connect", s.handleTAGConnect)
		mux.HandleFunc("GET /v1/bridges/{dev}", s.handleStatus)
		mux.Handle("/mcp/{dev}/{server}", s.guardBrowser(http.HandlerFunc(s.handleMCP)))
		// The header-only alias for static tokens (see oauth.go).
		mux.Handle(staticAliasPrefix+"{dev}/{server}", s.guardBrowser(http.HandlerFunc(s.handleMCP)))
		s.initOAuth(mux)
		s.initAuthServer(mux)
		if s.Device != nil {
			s.Device.Routes(mux)
		}
		if s.Web != nil {
			mux.Handle("/", s.Web)
		}
		s.mux = mux
		s.stopWatch = make(chan struct{})
		if s.Verifier != nil && s.Verifier.Revocations != nil {
			go s.watchRevocations(s.Verifier.Revocations, s.stopWatch)
		}
	})
}

// watchRevocations closes, with 4003, the socket of every bridge whose
// token is revoked, each time the revocation set grows.
func (s *Server) watchRevocations(rv *Revocations, stop <-chan struct{}) {
	changed := rv.Changed()
	for {
		select {
		case <-stop:
			return
		case <-changed:
		}
		// Taken before the scan, so a revocation made during it wakes the
		// next round.
		changed = rv.Changed()
		s.mu.Lock()
		live := make([]*bridgeConn, 0, len(s.bridges))
		for _, b := range s.bridges {
			live = append(live, b)
		}
		s.mu.Unlock()
		for _, b := range live {
			if !rv.Has(b.tokenID) {
				continue
			}
			s.log.Warn("bridge token revoked; socket closed", "dev", b.dev, "remote", b.remote)
			b.shutdown(relay.CloseUnauthorized, "token revoked")
		}
	}
}

// DefaultBodyTimeout is Server.BodyTimeout's default: 48 MiB at 2 MB/s.
const DefaultBodyTimeout = 30 * time.Second

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	// The connection's read deadline covers this request's body. Handlers
	// that keep a request open past it (an SSE answer, the GET stream, a
	// TAG call) lift it with liftReadDeadline once the body is in: net/http
	// reads in the background during a handler and would cancel the
	// request when the deadline hits. A WebSocket upgrade clears it too.
	bt := s.BodyTimeout
	if bt <= 0 {
		bt = DefaultBodyTimeout
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bt))
	s.mux.ServeHTTP(w, r)
}

// liftReadDeadline ends the body deadline set in ServeHTTP, for a request
// whose body has been read and whose answer may take long.
func liftReadDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
}

func (s *Server) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

func (s *Server) callTimeout() time.Duration {
	if s.CallTimeout > 0 {
		return s.CallTimeout
	}
	return DefaultCallTimeout
}

func (s *Server) sessionIdleTimeout() time.Duration {
	if s.SessionIdleTimeout > 0 {
		return s.SessionIdleTimeout
	}
	return DefaultSessionIdleTimeout
}

func (s *Server) sessionMaxAge() time.Duration {
	if s.SessionMaxAge > 0 {
		return s.SessionMaxAge
	}
	return DefaultSessionMaxAge
}

// offOrDefault reads a duration option where a negative value turns the
// feature off (0) and zero means the default.
func offOrDefault(v, def time.Duration) time.Duration {
	switch {
	case v < 0:
		return 0
	case v == 0:
		return def
	}
	return v
}

func (s *Server) bridgeWait() time.Duration { return offOrDefault(s.BridgeWait, DefaultBridgeWait) }

func (s *Server) startWait() time.Duration { return offOrDefault(s.StartWait, DefaultStartWait) }

// Shutdown refuses new bridges, closes every bridge socket with 1001
// (going away) and waits for their loops to end or ctx to expire.
// http.Server.Shutdown cannot do this: it does not track hijacked
// connections, and WebSockets are hijacked.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	if !s.closed {
		close(s.stopWatch)
	}
	s.closed = true
	for dev := range s.arrivals {
		s.bridgeArrivedLocked(dev) // waiters see closed and give up
	}
	list := make([]*bridgeConn, 0, len(s.bridges))
	for _, b := range s.bridges {
		list = append(list, b)
	}
	s.mu.Unlock()
	for _, b := range list {
		b.shutdown(closeGoingAway, "relay shutting down")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, b := range list {
			b.ws.Close()
		}
		return ctx.Err()
	}
}

// Close is Shutdown without waiting for bridges to answer the close frame.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Shutdown(ctx)
	if err == context.Canceled {
		return nil
	}
	return err
}

// bridge returns the live bridge of dev, or nil.
func (s *Server) bridge(dev string) *bridgeConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bridges[dev]
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// bridgeStatus is the body of GET /v1/bridges/{dev}.
type bridgeStatus struct {
	Dev       string     `json:"dev"`
	Connected bool       `json:"connected"`
	Since     *time.Time `json:"since,omitempty"`
	Protocol  string     `json:"protocol,omitempty"`
	Version   string     `json:"version,omitempty"`
	// Hostname is the bridge machine's name from its hello; bridges older
	// than the field leave it out.
	Hostname string         `json:"hostname,omitempty"`
	Servers  []serverStatus `json:"servers"`
}

type serverStatus struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	Era       string `json:"era,omitempty"`
	ToolCount int    `json:"toolCount"`
	Restarts  int    `json:"restarts"`
	// Error is classified by ErrorKind; it quotes the server's stderr only
	// when the bridge's mcp.json opts in ("shareStderr": true).
	Error     string          `json:"error,omitempty"`
	ErrorKind relay.ErrorKind `json:"errorKind,omitempty"`
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	dev := r.PathValue("dev")
	claims, code, err := s.Verifier.authorize(r, dev, ScopeClient, ScopeBridge)
	if err != nil {
		s.authError(w, code, err)
		return
	}
	// The same per-token rate as the MCP endpoints: a status poll is a
	// request like any other (rate only: it holds no call or stream slot).
	release, refused := s.limits.admit(claims.Principal(), "", s.clock())
	if refused != nil {
		s.refuse(w, r, refused)
		return
	}
	defer release()
	st := bridgeStatus{Dev: dev, Servers: []serverStatus{}}
	if b := s.bridge(dev); b != nil {
		since := b.since
		st.Connected, st.Since, st.Protocol, st.Version, st.Hostname = true, &since, b.protocol, b.version, b.hostname
		for _, si := range b.catalog() {
			st.Servers = append(st.Servers, serverStatus{
				Name: si.Name, State: si.State, Era: si.Era, ToolCount: si.ToolCount,
				Restarts: si.Restarts, Error: si.Error, ErrorKind: si.ErrorKind,
			})
		}
	}
	writeJSON(w, http.StatusOK, st)
}

// authError answers 401/403 with a JSON body. The message names the check
// that failed, never the token.
func (s *Server) authError(w http.ResponseWriter, code int, err error) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tether-relay"`)
	}
	// The body is not read: with Connection: close net/http answers and
	// drops the connection instead of draining what the client sends.
	w.Header().Set("Connection", "close")
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
