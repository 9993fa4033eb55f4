package relay

import "time"

// Phase is where the client's connection loop is. It is derived by the loop
// itself; reasons and errors travel beside it in ConnState, never as extra
// phases.
type Phase string

const (
	// PhaseOffline: Run is not running (never started, or its context ended).
	PhaseOffline Phase = "offline"
	// PhaseConnecting: a dial (TCP, TLS, WebSocket upgrade, hello) is under way.
	PhaseConnecting Phase = "connecting"
	// PhaseConnected: the socket is up and the hello was written.
	PhaseConnected Phase = "connected"
	// PhaseBackoff: waiting before the next dial; NextRetry says until when.
	PhaseBackoff Phase = "backoff"
	// PhaseRejected: the relay refused us for good (another bridge took the
	// slot, or the token was rejected). Run has returned and will not retry
	// until it is called again.
	PhaseRejected Phase = "rejected"
)

// ConnState is one snapshot of the client's connection, for the UI and logs.
// It is a value: holding it does not pin anything inside the client.
type ConnState struct {
	Phase Phase
	// Since is when this phase began.
	Since time.Time
	// NextRetry is when the next dial starts (PhaseBackoff only).
	NextRetry time.Time
	// Attempt counts failed dials and short-lived connections in a row. It
	// goes back to 0 after a connection that lasted StableAfter (checked when
	// that connection ends) and after a Kick.
	Attempt int
	// Reason says in plain words why the client is in this phase, for
	// example "another Tether bridge took over this dev slot".
	Reason string
	// LastError is the error that ended the last dial or connection, if any.
	// It never contains the token.
	LastError string
}

// Clock is the time source of the reconnect loop, injectable so tests can
// drive backoff waits without real waiting. Keepalive timers (ping, read and
// write deadlines) use real time, because the socket's deadlines do.
type Clock interface {
	Now() time.Time
	// NewTimer starts a timer that fires once after d.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the client uses.
type Timer interface {
	C() <-chan time.Time
	// Stop reports whether it stopped the timer before it fired.
	Stop() bool
}

// realClock is Clock on the time package.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// ReasonStopped is ConnState.Reason once Run has ended because its context
// did (the bridge was told to stop, not refused).
const ReasonStopped = "stopped"
