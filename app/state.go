package app

import (
	"context"
	"time"
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
}

// RelayState is the relay connection.
type RelayState struct {
	URL string `json:"url"`
	// Wanted is false after Disconnect: the engine stays offline on purpose.
	Wanted bool `json:"wanted"`
	// Phase is offline, connecting, connected, backoff or rejected.
	Phase     string    `json:"phase"`
	Reason    string    `json:"reason,omitempty"`
	LastError string    `json:"lastError,omitempty"`
	Since     time.Time `json:"since"`
	NextRetry time.Time `json:"nextRetry,omitzero"`
	Attempt   int       `json:"attempt,omitempty"`
	// Replaced is true when another bridge took this dev slot (close 4001).
	Replaced bool `json:"replaced,omitempty"`
	// Unauthorized is true when the relay rejected the token.
	Unauthorized bool `json:"unauthorized,omitempty"`
}

// TokenState describes the bridge token without revealing it.
type TokenState struct {
	Present bool   `json:"present"`
	Source  string `json:"source,omitempty"` // token-file, env, systemd-credential, keychain
	Last4   string `json:"last4,omitempty"`
	// DevID and Subject come from the JWT claims, read for display only.
	DevID   string    `json:"devId,omitempty"`
	Subject string    `json:"subject,omitempty"`
	Scope   []string  `json:"scope,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
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
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	// Kind is "stdio" or "http".
	Kind string `json:"kind"`
	// Phase is the child's phase (starting, ready, backoff, crashloop,
	// stopped, ...); "disabled" for a disabled server.
	Phase       string    `json:"phase"`
	Era         string    `json:"era,omitempty"`
	PID         int       `json:"pid,omitempty"`
	ToolCount   int       `json:"toolCount"`
	Tools       []string  `json:"tools,omitempty"`  // tool names after allow/deny, sorted
	Hidden      int       `json:"hidden,omitempty"` // tools removed by allow/deny
	Restarts    int       `json:"restarts"`
	LastError   string    `json:"lastError,omitempty"`
	Warning     string    `json:"warning,omitempty"`
	StderrTail  []string  `json:"stderrTail,omitempty"`
	Since       time.Time `json:"since,omitzero"`
	NextRestart time.Time `json:"nextRestart,omitzero"`
	LogFile     string    `json:"logFile,omitempty"`
}

// CallRecord is one remote tools/call that finished.
type CallRecord struct {
	At       time.Time     `json:"at"` // when it started
	Server   string        `json:"server"`
	Tool     string        `json:"tool"`
	Duration time.Duration `json:"durationNs"`
	// Outcome is ok, tool_error (the tool said isError), error (JSON-RPC
	// error), cancelled, or failed (the server crashed or went away).
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
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
}
