package app

import (
	"context"
	"errors"
	"time"

	"github.com/tether-dev/tether/keystore"
	"github.com/tether-dev/tether/mcpchild"
	"github.com/tether-dev/tether/relay"
)

// State is one immutable snapshot of the engine, published to subscribers on
// every change. The tray, `tetherd status` and the control API all render it;
// none of them reaches into the engine any other way. Nothing in it is
// secret: the token appears only as its claims and last four characters.
type State struct {
	// Seq increases with every published snapshot of one engine.
	Seq     uint64    `json:"seq"`
	Version string    `json:"version"`
	At      time.Time `json:"at"`

	Engine  EngineInfo   `json:"engine"`
	Relay   RelayState   `json:"relay"`
	Token   TokenState   `json:"token"`
	Config  ConfigState  `json:"config"`
	Servers []ServerView `json:"servers"`
	// Login is the latest sign-in with the browser.
	Login LoginState `json:"login,omitzero"`
	// Calls are the most recent remote tool calls, newest first.
	Calls []CallRecord `json:"calls"`
}

// EngineInfo says which engine this is.
type EngineInfo struct {
	PID     int       `json:"pid"`
	Home    string    `json:"home"`    // the config folder
	Started time.Time `json:"started"` // when the engine started
	// Service is true when the engine runs as the OS service (tetherd
	// installed), false for a foreground `tetherd run` or the tray.
	Service bool `json:"service"`
	// Goroutines is runtime.NumGoroutine() when the snapshot was built: a
	// leak shows as growth across reloads and reconnects.
	Goroutines int `json:"goroutines"`
}

// RelayState is the relay connection.
type RelayState struct {
	URL string `json:"url"`
	// Wanted is false after Disconnect: the engine stays offline on purpose.
	Wanted    bool       `json:"wanted"`
	Phase     RelayPhase `json:"phase"`
	Reason    string     `json:"reason,omitempty"`
	LastError string     `json:"lastError,omitempty"`
	Since     time.Time  `json:"since"`
	NextRetry time.Time  `json:"nextRetry,omitzero"`
	Attempt   int        `json:"attempt,omitempty"`
	// Replaced is true when another bridge took this dev slot (close 4001).
	Replaced bool `json:"replaced,omitempty"`
	// Unauthorized is true when the relay rejected the token.
	Unauthorized bool `json:"unauthorized,omitempty"`
	// TookOver is set when this bridge took the dev slot from another
	// Tether holding the same token: the relay's words, with when and from
	// which address. The other side sees it in Reason (close 4001).
	TookOver string `json:"tookOver,omitempty"`
}

// TokenState describes the bridge token without revealing it.
type TokenState struct {
	Present bool `json:"present"`
	// Status says why there is no token, so a UI can pick its words by
	// type rather than by reading Error.
	Status TokenStatus `json:"status"`
	Source TokenSource `json:"source,omitempty"`
	Last4  string      `json:"last4,omitempty"`
	// DevID and Subject come from the JWT claims, read for display only.
	DevID   string    `json:"devId,omitempty"`
	Subject string    `json:"subject,omitempty"`
	Scope   []string  `json:"scope,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
	// Audience is the aud claim (display only, like DevID): the relay
	// URL(s) the token was issued for, or a name such as "tether-relay"
	// that binds it to no URL. A UI checks a link's relay against it with
	// CheckLinkRelay before asking; the engine checks again.
	Audience []string `json:"audience,omitempty"`
	// ExpiringSoon is true from three days before expiry.
	ExpiringSoon bool `json:"expiringSoon,omitempty"`
	Expired      bool `json:"expired,omitempty"`
	// Error says why no token could be read (no keychain, unreadable file).
	Error string `json:"error,omitempty"`
}

// ConfigState is mcp.json as the engine last saw it.
type ConfigState struct {
	Path string `json:"path"`
	// Error is set while the file on disk is invalid (with line:column); the
	// last good config keeps running meanwhile.
	Error    string    `json:"error,omitempty"`
	LoadedAt time.Time `json:"loadedAt,omitzero"`
	// Missing lists "server: VAR" for every ${VAR} that was not set.
	Missing []string `json:"missing,omitempty"`
}

// ServerView is one server from mcp.json (enabled or not).
type ServerView struct {
	Name    string     `json:"name"`
	Enabled bool       `json:"enabled"`
	Kind    ServerKind `json:"kind"`
	// Phase is the child's phase, or ServerDisabled.
	Phase       ServerPhase  `json:"phase"`
	Era         mcpchild.Era `json:"era,omitempty"`
	PID         int          `json:"pid,omitempty"`
	ToolCount   int          `json:"toolCount"`
	Tools       []string     `json:"tools,omitempty"`  // tool names after allow/deny, sorted
	Hidden      int          `json:"hidden,omitempty"` // tools removed by allow/deny
	Restarts    int          `json:"restarts"`
	LastError   string       `json:"lastError,omitempty"`
	Warning     string       `json:"warning,omitempty"`
	StderrTail  []string     `json:"stderrTail,omitempty"`
	Since       time.Time    `json:"since,omitzero"`
	NextRestart time.Time    `json:"nextRestart,omitzero"`
	LogFile     string       `json:"logFile,omitempty"`
	// Isolated servers ("isolate": "session") run one process per remote
	// session besides the warm one the rest of the view describes:
	// Processes of them now, at most MaxProcesses. Both are 0 otherwise.
	Processes    int `json:"processes,omitempty"`
	MaxProcesses int `json:"maxProcesses,omitempty"`
}

// CallRecord is one remote tools/call that finished.
type CallRecord struct {
	At       time.Time     `json:"at"` // when it started
	Server   string        `json:"server"`
	Tool     string        `json:"tool"`
	Duration time.Duration `json:"durationNs"`
	Outcome  Outcome       `json:"outcome"`
	Error    string        `json:"error,omitempty"`
}

// RelayPhase is where the relay connection is; the relay client's own type.
type RelayPhase = relay.Phase

// Relay phases, named here so a UI needs only this package.
const (
	RelayOffline    = relay.PhaseOffline
	RelayConnecting = relay.PhaseConnecting
	RelayConnected  = relay.PhaseConnected
	RelayBackoff    = relay.PhaseBackoff
	RelayRejected   = relay.PhaseRejected
)

// RelayReasonStopped is RelayState.Reason when the link was stopped on
// purpose (Disconnect, shutdown), not refused or lost.
const RelayReasonStopped = relay.ReasonStopped

// ServerPhase is a server's phase: its child's phase, or ServerDisabled
// for a server that mcp.json marks disabled (it has no child).
type ServerPhase string

const (
	ServerStopped               = ServerPhase(mcpchild.PhaseStopped)
	ServerStarting              = ServerPhase(mcpchild.PhaseStarting)
	ServerReady                 = ServerPhase(mcpchild.PhaseReady)
	ServerBackoff               = ServerPhase(mcpchild.PhaseBackoff)
	ServerCrashLoop             = ServerPhase(mcpchild.PhaseCrashLoop)
	ServerDisabled  ServerPhase = "disabled"
)

// Outcome is how one remote tools/call ended.
type Outcome string

const (
	OutcomeOK        Outcome = mcpchild.OutcomeOK        // a result
	OutcomeToolError Outcome = mcpchild.OutcomeToolError // a result with isError
	OutcomeError     Outcome = mcpchild.OutcomeError     // a JSON-RPC error
	OutcomeCancelled Outcome = mcpchild.OutcomeCancelled // the session cancelled it or closed
	OutcomeFailed    Outcome = mcpchild.OutcomeFailed    // the server crashed, went away or was not ready
	OutcomeDenied    Outcome = mcpchild.OutcomeDenied    // blocked by the tool filter
)

// TokenSource is where the token came from; the keystore's own type.
type TokenSource = keystore.Source

// Token sources, named here so a UI needs only this package.
const (
	TokenFromFile     = keystore.SourceTokenFile
	TokenFromEnv      = keystore.SourceEnv
	TokenFromSystemd  = keystore.SourceSystemd
	TokenFromKeychain = keystore.SourceKeychain
)

// TokenStatus says whether a token was found and, if not, what kind of
// problem kept it away: nothing stored (paste one) is not the same as a
// keychain that cannot be reached (use a file) or a named source that is
// broken (fix it).
type TokenStatus string

const (
	TokenPresent TokenStatus = "present"
	// TokenMissing: no source holds a token.
	TokenMissing TokenStatus = "missing"
	// TokenKeychainUnavailable: no other source holds one and the OS
	// keychain could not be asked (headless, locked, no Secret Service).
	TokenKeychainUnavailable TokenStatus = "keychain-unavailable"
	// TokenUnreadable: a source was named but is broken (missing file,
	// loose permissions, keychain error); Error says which.
	TokenUnreadable TokenStatus = "unreadable"
)

// tokenStatus classifies the token lookup's error.
func tokenStatus(err error) TokenStatus {
	switch {
	case err == nil:
		return TokenPresent
	case errors.Is(err, keystore.ErrUnavailable):
		return TokenKeychainUnavailable // checked first: it also wraps ErrNoToken
	case errors.Is(err, keystore.ErrNoToken):
		return TokenMissing
	}
	return TokenUnreadable
}

// Control is what a UI can do with an engine. *Engine implements it in
// process; the control API client implements it for an engine in another
// process (the service), so the tray and `tetherd status` work with either.
type Control interface {
	// State returns the latest snapshot.
	State(ctx context.Context) (State, error)
	// Subscribe delivers snapshots until ctx ends: the current one first,
	// then each change. A slow reader misses intermediate snapshots, never
	// the latest. The channel closes when ctx ends or the engine goes away.
	Subscribe(ctx context.Context) (<-chan State, error)

	Connect(ctx context.Context) error
	Disconnect(ctx context.Context) error
	// SetToken stores the bridge token (in the keychain for the engine's
	// relay URL) and reconnects with it.
	SetToken(ctx context.Context, token string) error
	ClearToken(ctx context.Context) error
	// Reload reads settings.json and mcp.json again.
	Reload(ctx context.Context) error
	RestartServer(ctx context.Context, name string) error
	// SetServerEnabled writes "disabled" into mcp.json for that server; the
	// watcher then applies it like any other edit.
	SetServerEnabled(ctx context.Context, name string, enabled bool) error
	// SetRelay writes the relay URL into settings.json and reloads; State
	// shows the new relay once the reload is applied.
	SetRelay(ctx context.Context, url string) error
	// SetLinkRelay is SetRelay for a relay named by a tether:// link: it
	// first refuses when the token the engine would send to url does not
	// pass CheckLinkRelay (unboundOK: the user accepted sending a token
	// bound to no relay there).
	SetLinkRelay(ctx context.Context, url string, unboundOK bool) error
	// ImportServers copies other apps' servers from srcs into mcp.json,
	// disabled, and reloads.
	ImportServers(ctx context.Context, srcs []ImportSource) (ImportReport, error)
	// Login starts a sign-in with the browser (RFC 8628 device flow) and
	// returns once its code is known; approval stores the token and
	// connects. CancelLogin stops one that waits.
	Login(ctx context.Context) (LoginState, error)
	CancelLogin(ctx context.Context) error
}
