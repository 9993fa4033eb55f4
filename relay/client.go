package relay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-dev/tether/relay/internal/wire"
)

// Terminal and usage errors of the client. Decide on them with errors.Is.
var (
	// ErrReplaced: the relay closed the socket with CloseReplaced (4001)
	// because a newer bridge took this dev slot. Run returns it and does not
	// reconnect on its own.
	ErrReplaced = errors.New("replaced by another bridge")
	// ErrUnauthorized: the relay rejected the token, either with HTTP 401/403
	// before the upgrade or with CloseUnauthorized (4003) later. Run returns
	// it; reconnecting needs a new token and a new Run.
	ErrUnauthorized = errors.New("relay rejected the token")
	// ErrNotConnected: Send was called while no socket is up.
	ErrNotConnected = errors.New("not connected to the relay")
)

// Human reasons shown in ConnState.Reason for the two terminal cases.
const (
	reasonReplaced     = "another Tether bridge took over this dev slot"
	reasonUnauthorized = "the relay rejected the token"
)

// closeGrace bounds the polite goodbye: the close frame written when Run's
// context ends, and the wait for the relay's answering close frame.
const closeGrace = time.Second

// kickGrace bounds the close frame written on Kick. After a wake the socket
// is usually dead, so this must not delay the new dial noticeably.
const kickGrace = 250 * time.Millisecond

// processInstance is the default ClientOptions.Instance: random, so it
// says nothing about the machine.
var processInstance = func() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// ClientOptions configures a Client. Zero values are sensible defaults,
// except URL and Token, which are required.
type ClientOptions struct {
	// URL is the relay base URL, http(s)://host[:port][/prefix] (ws and wss
	// are accepted too). The client dials {URL}/v1/connect, or in TAG mode
	// {URL}/dev/{DevID}/connect.
	URL string
	// Instance identifies this bridge process across reconnects (see
	// Frame.Instance); empty means one random id shared by the process.
	Instance string
	// Token returns the bridge token. It is called on every dial, so a
	// rotated token is picked up. The token is sent only as
	// "Authorization: Bearer" and never logged. An error wrapping
	// ErrUnauthorized ends Run; any other error is retried with backoff.
	Token func(ctx context.Context) (string, error)
	// TAG speaks the TAG relay protocol (GET /dev/{DevID}/connect, hello with
	// tools, rpc.request / rpc.response) to a TAG relay.
	TAG bool
	// DevID is the dev slot; required in TAG mode (it is part of the path).
	DevID string
	// Hello builds the hello frame at each connect, so it is current. It is
	// sent as given, except that an empty Kind becomes "hello", an empty
	// DevID becomes opts.DevID, and in TAG mode missing Tools become [].
	// Nil sends {kind:"hello", protocol, devId}.
	Hello func() Frame
	// OnFrame receives every inbound frame that decodes; the client itself
	// handles only WebSocket control frames and undecodable messages (it
	// answers those with an error frame, code bad_frame). It is called from
	// the read loop, one frame at a time: it must return quickly (the caller
	// dispatches work elsewhere), or keepalive and every other session stall.
	// It is never called after Run has returned.
	OnFrame func(Frame)
	// BeforeWait, if set, is called from the read loop once every frame
	// received so far has gone to OnFrame and the loop is about to wait
	// for more bytes (and once more when the loop ends). OnFrame may
	// therefore put work off until then, such as writes to a child that
	// are better made together for a burst of frames. It must not block.
	BeforeWait func()
	// OnState receives every state change, in order, from Run's goroutine.
	// It must not block.
	OnState func(ConnState)
	// OnKeepalive, if set, is called from the read loop whenever a ping or
	// pong arrives: a heartbeat the engine uses to run its sleep check
	// without waking the process on a timer of its own. It must not block.
	OnKeepalive func()
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
	// Insecure allows ws:// (http://) to a relay that is not on loopback.
	// Without it Run refuses such a URL with ErrInsecureRelay, in state
	// PhaseRejected with a Reason that says what to do.
	Insecure bool
	// Dialer dials the WebSocket; nil uses a copy of websocket.DefaultDialer
	// (proxy from the environment) with HandshakeTimeout.
	Dialer *websocket.Dialer

	// Tuning; zero means the default from protocol.go.
	PingInterval time.Duration // how often the client pings
	PongWait     time.Duration // silence after which the socket is declared dead
	ProbeWait    time.Duration // silence allowed after NetworkChanged pings a connected socket
	WriteWait    time.Duration // deadline of every write
	BackoffBase  time.Duration // bound of the first reconnect wait
	BackoffCap   time.Duration // largest bound of a reconnect wait
	StableAfter  time.Duration // connected this long resets the backoff
	SendQueue    int           // length of the bounded outbound queue

	// Clock drives the reconnect loop (backoff waits, Since, StableAfter);
	// nil is real time. Keepalive uses real time regardless.
	Clock Clock
}

// Client keeps one outbound WebSocket to a relay alive. Create it with
// NewClient, run it with Run, and talk through Send and OnFrame. All methods
// are safe for concurrent use.
type Client struct {
	opts  ClientOptions
	log   *slog.Logger
	clock Clock

	mu         sync.Mutex
	state      ConnState
	cur        *conn              // the live socket, nil when none is up
	running    bool               // a Run is active
	abortPhase context.CancelFunc // ends the current dial, connection or wait (Kick)
	kicked     bool               // a Kick arrived and was not yet acted on

	randN   func(n int64) int64 // backoff jitter source; nil is math/rand/v2 (tests pin it)
	busyGap time.Duration       // see the busyGap constant; a benchmark sets 0
}

// NewClient returns a client; it does nothing until Run.
func NewClient(opts ClientOptions) *Client {
	if opts.Instance == "" {
		opts.Instance = processInstance
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = PingInterval
	}
	if opts.PongWait <= 0 {
		opts.PongWait = PongWait
	}
	if opts.ProbeWait <= 0 {
		opts.ProbeWait = min(ProbeWait, opts.PongWait)
	}
	if opts.PingInterval >= opts.PongWait {
		// A ping must be able to come back before the deadline passes.
		opts.PingInterval = opts.PongWait / 2
	}
	if opts.WriteWait <= 0 {
		opts.WriteWait = WriteWait
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = BackoffBase
	}
	if opts.BackoffCap <= 0 {
		opts.BackoffCap = BackoffCap
	}
	if opts.StableAfter <= 0 {
		opts.StableAfter = StableAfter
	}
	if opts.SendQueue <= 0 {
		opts.SendQueue = SendQueue
	}
	if opts.Dialer == nil {
		d := *websocket.DefaultDialer
		d.HandshakeTimeout = HandshakeTimeout
		d.NetDialContext = (&net.Dialer{Timeout: ConnectTimeout}).DialContext
		opts.Dialer = &d
	}
	c := &Client{opts: opts, log: opts.Logger, clock: opts.Clock, busyGap: busyGap}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.clock == nil {
		c.clock = realClock{}
	}
	c.state = ConnState{Phase: PhaseOffline, Since: c.clock.Now()}
	return c
}

// State returns the current connection state.
func (c *Client) State() ConnState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Kick drops the current socket at once (without waiting for its keepalive
// to time out) and dials again immediately with a fresh backoff. During a
// backoff wait it cuts the wait short; during a dial it restarts the dial.
// It is the entry point for wake-from-sleep and network changes, safe from
// any goroutine, and never blocks.
func (c *Client) Kick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kicked = true
	if c.abortPhase != nil {
		c.abortPhase()
	}
}

// NetworkChanged tells the client that the machine's network changed (an
// address or route came or went). A client that is not connected dials
// again at once with a fresh backoff, as Kick does. A connected one keeps
// its socket — most changes (a VPN route, a container bridge) do not touch
// it — but pings the relay and gives the socket ProbeWait (ClientOptions) to show it is
// alive, so one that died with the old network is dropped in seconds, not
// after PongWait. Safe from any goroutine; never blocks.
func (c *Client) NetworkChanged() {
	c.mu.Lock()
	cn, connected := c.cur, c.state.Phase == PhaseConnected
	if !connected || cn == nil {
		c.kicked = true
		if c.abortPhase != nil {
			c.abortPhase()
		}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	cn.probe(c.opts.ProbeWait)
}

// Send writes one frame to the socket. A large Msg or Body is written from
// the caller's slice, not copied: it must not change after Send returns. Raw
// fields must be valid JSON (Send checks and fails). It returns
// ErrNotConnected when no socket is up (frames are not kept across
// reconnects: the relay's sessions do not survive them either).
//
// When no other write is in progress or queued, a frame of up to
// inlineSendMax bytes is written right here, on the caller's goroutine:
// handing it to the write pump would cost two goroutine switches per
// answer. Otherwise (a write in progress, frames queued, or a big frame) it
// joins the bounded queue, in order, and the write pump batches it with the
// others. Frames from one goroutine thus stay in order.
//
// How long Send may block: an inline write is bounded by WriteWait, not by
// ctx (a write cut short would leave half a frame on the socket, so the
// only way out of a stuck write is the deadline, which ends the socket).
// A queued frame waits only while the queue is full, until ctx ends or the
// socket dies - and the pump's own writes are bounded by WriteWait, so a
// socket that stops draining is dead within WriteWait either way. For the
// caller that matters most, a child's stdout reader, this means a relay
// socket that stalls holds the reader (and with it the child, through its
// pipe) for at most WriteWait, after which Send fails fast with
// ErrNotConnected until the client has reconnected. That is the same bound
// the queue alone gave (the reader blocked on a full queue until the stuck
// pump's deadline killed the socket), without the queue's memory: a child
// producing faster than the relay reads is slowed by its pipe rather than
// buffered.
func (c *Client) Send(ctx context.Context, f Frame) error { return c.send(ctx, f, true) }

// SendBatched is Send without the inline write: the frame always joins the
// queue, where the write pump writes it together with whatever else is
// queued by then (one syscall for a burst). It is for a caller that knows
// more frames follow at once, such as a child's reader with more answers
// already read: writing each inline would cost a syscall apiece.
func (c *Client) SendBatched(ctx context.Context, f Frame) error { return c.send(ctx, f, false) }

func (c *Client) send(ctx context.Context, f Frame, inline bool) error {
	c.mu.Lock()
	cn := c.cur
	c.mu.Unlock()
	if cn == nil || cn.w.Closed() {
		return ErrNotConnected
	}
	e, err := EncodeFrameParts(f)
	if err != nil {
		return err
	}
	err = cn.w.Send(ctx, e, inline)
	if errors.Is(err, wire.ErrClosed) {
		return ErrNotConnected
	}
	return err
}

// busyGap: a socket written less than this long ago is busy, and Send
// queues rather than writes inline. Under load (many calls in flight)
// answers come microseconds apart, and the write pump batches them into one
// syscall; a lone answer (one call at a time takes far longer than this)
// still goes out inline.
const busyGap = 50 * time.Microsecond

// inlineSendMax is the largest frame Send writes on the caller's goroutine.
// It fits a socket's send buffer, so an inline write normally does not wait
// for the relay to read; a bigger frame goes to the write pump, where one
// more goroutine switch is lost in the time the write takes anyway.
const inlineSendMax = 64 << 10

// Run connects and keeps reconnecting until ctx ends (it returns ctx.Err())
// or the relay rejects the bridge for good: then it returns an error wrapping
// ErrReplaced or ErrUnauthorized and the state is PhaseRejected. Run may be
// called again after it returned; two Runs at once are an error.
func (c *Client) Run(ctx context.Context) error {
	endpoint, err := c.endpoint()
	if err != nil {
		return err
	}
	if c.opts.Token == nil {
		return errors.New("relay client: no Token func")
	}
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("relay client: already running")
	}
	c.running = true
	c.mu.Unlock()
	if !c.opts.Insecure {
		if err := CheckTransport(c.opts.URL); err != nil {
			c.finish(ConnState{Phase: PhaseRejected, Reason: err.Error()})
			return err
		}
	}
	// loop clears running together with its final state (see finish), so a
	// caller that sees "rejected" or "offline" may call Run again at once.

	bo := &Backoff{Base: c.opts.BackoffBase, Cap: c.opts.BackoffCap, randN: c.randN}
	return c.loop(ctx, endpoint, bo)
}

// loop is Run's body: dial, serve, wait, and back to dial. It is the only
// goroutine that changes the state, so OnState sees changes in order.
func (c *Client) loop(ctx context.Context, endpoint string, bo *Backoff) error {
	var lastErr string
	nbo := &Backoff{Base: min(c.opts.BackoffBase, NetBackoffCap/4), Cap: min(c.opts.BackoffCap, NetBackoffCap), randN: c.randN}
	for {
		if ctx.Err() != nil {
			return c.stopped(ctx, lastErr)
		}

		// Dial and, if that worked, serve the socket until it ends. A Kick
		// that came before this point is satisfied by dialing now.
		pctx, endPhase := c.enterPhase(ctx, true)
		c.setState(ConnState{Phase: PhaseConnecting, Attempt: bo.Attempt(), LastError: lastErr,
			Reason: "connecting to " + redactURL(endpoint)})
		cn, err := c.dial(pctx, endpoint)
		wasUp := false
		if err == nil {
			connectedAt := c.clock.Now()
			c.mu.Lock()
			c.cur = cn // published before the state, so OnState(connected) may Send
			c.mu.Unlock()
			c.log.Info("relay connected", "url", redactURL(endpoint), "attempt", bo.Attempt())
			c.setState(ConnState{Phase: PhaseConnected, Attempt: bo.Attempt(), LastError: lastErr,
				Reason: "connected to " + redactURL(endpoint)})
			err = c.serve(ctx, pctx, cn)
			wasUp = true
			if c.clock.Now().Sub(connectedAt) >= c.opts.StableAfter {
				bo.Reset()
			}
			nbo.Reset()
		}
		kicked := endPhase()
		if ctx.Err() != nil {
			return c.stopped(ctx, lastErr)
		}
		if err != nil && !kicked {
			lastErr = err.Error()
		}
		if reason, ok := terminalReason(err); ok {
			c.log.Warn("relay rejected the bridge; not reconnecting", "reason", reason, "error", err)
			c.finish(ConnState{Phase: PhaseRejected, Attempt: bo.Attempt(), Reason: reason, LastError: lastErr})
			return err
		}
		if kicked {
			c.log.Info("relay kicked: dialing again now")
			bo.Reset()
			nbo.Reset()
			continue
		}

		// Back off, interruptible by ctx and by Kick. A dial that failed
		// at the TCP level waits at most NetBackoffCap and does not make
		// the next ordinary wait longer (see NetBackoffCap).
		var d time.Duration
		if (!wasUp && tcpLevel(err)) || (wasUp && relayWentAway(err)) {
			d = nbo.Next()
		} else {
			d = bo.Next()
		}
		pctx, endPhase = c.enterPhase(ctx, false)
		next := c.clock.Now().Add(d)
		c.log.Info("relay connection failed; retrying", "in", d, "attempt", bo.Attempt(), "error", err)
		c.setState(ConnState{Phase: PhaseBackoff, NextRetry: next, Attempt: bo.Attempt(), LastError: lastErr,
			Reason: waitReason(wasUp)})
		t := c.clock.NewTimer(d)
		select {
		case <-t.C():
		case <-pctx.Done():
			t.Stop()
		}
		if endPhase() {
			bo.Reset()
			nbo.Reset()
		}
	}
}

// relayWentAway reports whether a connection that was up ended because the
// relay or the path to it went away — the socket reset or cut (EOF, close
// 1006), the relay going down (close 1001), silence past the pong wait —
// rather than because the relay asked us to go (any other close code: a
// policy, "try again later", an internal error). A restarted or crashed
// relay is dialled again within NetBackoffCap however often it happens;
// one that keeps telling bridges to go away gets the climbing backoff.
func relayWentAway(err error) bool {
	if err == nil {
		return false
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code == websocket.CloseAbnormalClosure || ce.Code == websocket.CloseGoingAway
	}
	return true
}

// tcpLevel reports whether a dial failed before any byte reached the relay:
// the TCP connect (refused, unreachable, timed out) or the name lookup.
// net.OpError's Op is "dial" exactly there, on every platform, whatever
// the errno is called.
func tcpLevel(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true
	}
	var de *net.DNSError
	return errors.As(err, &de)
}

// waitReason says in plain words why the client is waiting.
func waitReason(wasUp bool) string {
	if wasUp {
		return "the connection to the relay was lost; reconnecting"
	}
	return "could not connect to the relay; retrying"
}

// stopped records the end of Run by its context.
func (c *Client) stopped(ctx context.Context, lastErr string) error {
	c.finish(ConnState{Phase: PhaseOffline, Reason: ReasonStopped, LastError: lastErr})
	return ctx.Err()
}

// finish publishes Run's last state and marks the client idle in one step.
func (c *Client) finish(s ConnState) {
	s.Since = c.clock.Now()
	c.mu.Lock()
	c.state = s
	c.running = false
	c.mu.Unlock()
	if c.opts.OnState != nil {
		c.opts.OnState(s)
	}
}

// enterPhase starts one interruptible phase (dial+connection, or a wait) and
// returns its context and a function that ends it and reports whether a Kick
// cut it short. With freshDial, a Kick that arrived between phases counts as
// satisfied (this phase is the new dial it asked for); otherwise such a Kick
// ends the phase at once.
func (c *Client) enterPhase(ctx context.Context, freshDial bool) (context.Context, func() bool) {
	pctx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	if freshDial {
		c.kicked = false
	} else if c.kicked {
		cancel()
	}
	c.abortPhase = cancel
	c.mu.Unlock()
	return pctx, func() bool {
		c.mu.Lock()
		kicked := c.kicked
		c.kicked = false
		c.abortPhase = nil
		c.mu.Unlock()
		cancel()
		return kicked
	}
}

// setState publishes a new state; Since is stamped here. Only the Run
// goroutine calls it, and OnState runs without the lock held.
func (c *Client) setState(s ConnState) {
	s.Since = c.clock.Now()
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
	if c.opts.OnState != nil {
		c.opts.OnState(s)
	}
}

// endpoint builds the WebSocket URL from the base URL.
func (c *Client) endpoint() (string, error) {
	u, err := url.Parse(c.opts.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the bare cause, without the URL and what it may carry
		}
		return "", fmt.Errorf("relay url: %w", err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("relay url %q: scheme must be http, https, ws or wss", redactURL(c.opts.URL))
	}
	if u.Host == "" {
		return "", fmt.Errorf("relay url %q: no host", redactURL(c.opts.URL))
	}
	u.RawQuery, u.Fragment = "", ""
	if !c.opts.TAG {
		return u.JoinPath("v1", "connect").String(), nil
	}
	id := c.opts.DevID
	if id == "" || id == "." || id == ".." || strings.Contains(id, "/") {
		return "", fmt.Errorf("relay client: TAG mode needs a DevID that is one path segment, got %q", id)
	}
	return u.JoinPath("dev", id, "connect").String(), nil
}
