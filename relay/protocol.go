// Package relay holds Tether's wire protocol between a bridge (tetherd or the
// tray) and a relay (tether-relay), and the bridge-side client that keeps one
// outbound WebSocket alive.
//
// The protocol is written down for people in docs/protocol.md; this file is
// its single source in code. One WebSocket message carries exactly one JSON
// object (a Frame) with a "kind" field. The frames are a superset of the TAG
// relay protocol (@tournesol-tag/mcp-bridge 0.1.x: hello, rpc.request,
// rpc.response), so one relay serves both kinds of bridge.
//
// Handshake order (Tether bridge):
//
//	bridge: GET /v1/connect, Authorization: Bearer <bridge token>  (401/403 before upgrade)
//	bridge → relay: hello   {protocol, devId, version, servers}
//	relay  → bridge: mcp    {server, session, msg}   (a session opens on its first frame)
//	bridge → relay: mcp     {server, session, msg}   (responses, notifications, server→client requests)
//	either:          close  {server, session}         (session ended)
//	bridge → relay: catalog {servers}                 (after any change)
//
// TAG bridge: GET /dev/{id}/connect, hello {devId, version, tools}, then
// rpc.request {id, method:"list"|"call", path, body} answered by
// rpc.response {id, status, body}.
package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ProtocolVersion is bumped on any wire-incompatible change. A hello without
// a protocol field comes from a TAG bridge.
const ProtocolVersion = 1

// MaxHostname bounds the hello's hostname as the relay keeps and shows it
// (a DNS name is at most 253 bytes).
const MaxHostname = 253

// Kind names what a frame is.
type Kind string

const (
	// KindHello is the bridge's first frame: who it is and what it serves.
	KindHello Kind = "hello"
	// KindCatalog is the bridge's full server list, sent after any change.
	KindCatalog Kind = "catalog"
	// KindMCP carries one raw JSON-RPC message for a (server, session) pair.
	KindMCP Kind = "mcp"
	// KindClose ends a session, from either side.
	KindClose Kind = "close"
	// KindError reports a protocol error about one frame; the socket stays up.
	KindError Kind = "error"
	// KindRPCRequest is the TAG relay's request (relay → TAG bridge).
	KindRPCRequest Kind = "rpc.request"
	// KindRPCResponse is the TAG bridge's answer (TAG bridge → relay).
	KindRPCResponse Kind = "rpc.response"
)

// WebSocket close codes (4000–4999 are for applications).
const (
	// CloseReplaced: a newer bridge with the same dev id took the slot.
	// The replaced bridge must not reconnect on its own.
	CloseReplaced = 4001
	// CloseUnauthorized: the token was rejected (for example it expired while
	// connected). The bridge must not reconnect until it has a new token.
	CloseUnauthorized = 4003
	// CloseProtocolError: the peer broke the protocol (for example no hello
	// as the first frame). Reconnecting with backoff is allowed.
	CloseProtocolError = 4008
	// CloseTooLarge: a frame was over MaxFrameBytes.
	CloseTooLarge = 4009
)

// Limits and keepalive timings, shared by both ends.
const (
	// MaxFrameBytes caps one WebSocket message. A child's largest JSON-RPC
	// line (mcpchild's default cap is 32 MiB) plus the envelope fits.
	MaxFrameBytes = 48 << 20
	// PingInterval is how often each side pings. Load balancers drop idle
	// connections at 60 s, so this stays well inside that.
	PingInterval = 15 * time.Second
	// PongWait is how long a side waits for any inbound traffic (a pong
	// included) before it declares the socket dead. A half-open socket is
	// found within PongWait, at most 45 s.
	PongWait = 40 * time.Second
	// WriteWait bounds every write, so a stuck peer cannot block the writer.
	WriteWait = 10 * time.Second
	// HandshakeTimeout bounds one dial: TCP, TLS and the WebSocket upgrade.
	HandshakeTimeout = 15 * time.Second
)

// Reconnect timings of the bridge (relay.Client).
const (
	// BackoffBase is the bound of the first reconnect wait; the n-th wait in
	// a row is uniformly random in [0, min(BackoffCap, BackoffBase·2^n)].
	BackoffBase = 500 * time.Millisecond
	// BackoffCap is the largest bound of a reconnect wait.
	BackoffCap = 30 * time.Second
	// NetBackoffCap bounds the wait after a dial that failed at the TCP
	// level (refused, unreachable, no route, DNS, no answer within
	// ConnectTimeout), and after a connection that ended because the relay
	// or the network went away (reset, EOF, close 1006 or 1001, silence).
	// Such a failure says the network or the relay is not there right now,
	// and trying again costs almost nothing, so those waits do not climb
	// towards BackoffCap: the bridge is back within about a second of the
	// network's or the relay's return (a relay that restarts every few
	// seconds included). Failures past TCP (TLS, HTTP 5xx from a proxy, the
	// upgrade) and a relay that closes with any other code climb as before.
	NetBackoffCap = time.Second
	// ConnectTimeout bounds the TCP connect of one dial (the default dialer
	// only). Linux sends the 2nd SYN after 1 s and the 3rd after 3 s; a
	// fresh dial every 3 s keeps the gap between SYNs at 2 s at most, so a
	// network that returns mid-dial is found quickly.
	ConnectTimeout = 3 * time.Second
	// ProbeWait is how long a connected socket may stay silent after a
	// network change (NetworkChanged pings it) before it counts as dead.
	ProbeWait = 5 * time.Second
	// StableAfter is how long a connection must stay up before the backoff
	// starts again from BackoffBase.
	StableAfter = 10 * time.Second
	// SendQueue is the default length of the bounded outbound queue.
	SendQueue = 256
)

// Error codes carried in KindError frames.
const (
	ErrCodeBadFrame      = "bad_frame"      // not JSON, or missing fields
	ErrCodeUnknownKind   = "unknown_kind"   // a kind this side does not know
	ErrCodeUnknownServer = "unknown_server" // no server of that name on the bridge
	ErrCodeTooLarge      = "too_large"      // over a size limit
	ErrCodeUnavailable   = "unavailable"    // the server exists but is not ready
	// ErrCodeTookOver tells a bridge that it took its dev slot from another
	// bridge holding the same token (Message says when and from where). An
	// older bridge only logs it.
	ErrCodeTookOver = "took_over"
)

// takeoverPrefix starts the close text a bridge gets when another one took
// its slot with the same token; the client recognises it to say so.
const takeoverPrefix = "taken over with your token"

// TakeoverText is the close text (at most 123 bytes, the WebSocket limit)
// for a bridge whose slot another bridge took with the same token.
func TakeoverText(at time.Time, from string) string {
	s := fmt.Sprintf("%s at %s from %s", takeoverPrefix, at.UTC().Format(time.RFC3339), from)
	if len(s) > 123 {
		s = s[:123]
	}
	return s
}

// Frame is one protocol message. Which fields are set depends on Kind; the
// rest are omitted on the wire.
type Frame struct {
	Kind Kind `json:"kind"`

	// hello
	Protocol int    `json:"protocol,omitempty"`
	DevID    string `json:"devId,omitempty"`
	Version  string `json:"version,omitempty"`
	// Instance (Tether hello) names one bridge process for its whole life:
	// the relay tells the same bridge reconnecting over a half-open socket
	// from another machine taking the slot with the same token.
	Instance string `json:"instance,omitempty"`
	// Hostname (Tether hello, optional) is the bridge machine's name, for
	// its owner's page: which computer the bridge runs on. Bridges older
	// than this field leave it out; the relay clips it (MaxHostname) and
	// shows it only to the dev's owner.
	Hostname string `json:"hostname,omitempty"`

	// hello, catalog (Tether)
	Servers []ServerInfo `json:"servers,omitempty"`
	// hello (TAG): the tools/list "tools" array of the bridge's one server.
	Tools json.RawMessage `json:"tools,omitempty"`

	// mcp, close, error
	Server  string          `json:"server,omitempty"`
	Session string          `json:"session,omitempty"`
	Msg     json.RawMessage `json:"msg,omitempty"`
	// Related (bridge → relay, mcp only) is the JSON-RPC id, in the session's
	// own id space, of the client request this message belongs to: progress,
	// a log line or a server→client request sent while that request runs.
	// The relay writes such messages on that request's SSE stream; messages
	// without it go to the session's standalone GET stream.
	Related json.RawMessage `json:"related,omitempty"`

	// rpc.request, rpc.response (TAG); id is echoed as given.
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Path   string          `json:"path,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"`
	Status int             `json:"status,omitempty"`

	// error
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// ServerInfo is one bridged server as the relay sees it.
type ServerInfo struct {
	Name string `json:"name"`
	// State is the child's phase: starting, ready, backoff, crashloop, stopped, disabled.
	State string `json:"state"`
	// Era is the MCP protocol generation the bridge speaks with the child:
	// "2025" (initialize handshake) or "2026" (stateless, server/discover).
	Era       string            `json:"era,omitempty"`
	ToolCount int               `json:"toolCount"`
	Tools     []json.RawMessage `json:"tools,omitempty"`
	Restarts  int               `json:"restarts,omitempty"`
	// Error says why the server is not serving, in words fit for remote
	// clients: the sentence of ErrorKind, or the server's full error text
	// (stderr included) when its mcp.json entry says "shareStderr": true.
	Error string `json:"error,omitempty"`
	// ErrorKind classifies Error. Bridges older than this field send a
	// raw Error without it; the relay does not pass such text on.
	ErrorKind ErrorKind `json:"errorKind,omitempty"`
}

// ErrorKind says why a server is not serving, without quoting the server.
type ErrorKind string

const (
	ErrorExited      ErrorKind = "exited"       // the process exited with a status
	ErrorCrashed     ErrorKind = "crashed"      // the process was killed by a signal
	ErrorNotFound    ErrorKind = "not_found"    // the command is missing on the bridge's machine
	ErrorTimedOut    ErrorKind = "timed_out"    // the start-up handshake timed out
	ErrorStartFailed ErrorKind = "start_failed" // could not start, or failed its handshake
	ErrorUnavailable ErrorKind = "unavailable"  // anything else
)

// ErrBadFrame wraps every decoding failure.
var ErrBadFrame = errors.New("bad frame")

// DecodeFrame parses one WebSocket message. It checks only what every frame
// of that kind needs; an unknown kind decodes (the caller answers it with an
// unknown_kind error rather than dropping the socket).
//
// It accepts and rejects exactly what json.Unmarshal into a Frame does, but
// it does not copy: the raw fields of the result (Msg, Related, ID, Body,
// Tools) are slices of data. The caller must not modify data while the
// frame is in use; give each message its own buffer.
func DecodeFrame(data []byte) (Frame, error) {
	if len(data) > MaxFrameBytes {
		return Frame{}, fmt.Errorf("%w: %d bytes is over the %d byte limit", ErrBadFrame, len(data), MaxFrameBytes)
	}
	f, ok := decodeFast(data)
	if !ok {
		// Unusual input (an error, escaped or differently cased keys, a
		// repeated key): encoding/json decides, and words the error.
		var err error
		if f, err = decodeStd(data); err != nil {
			return Frame{}, err
		}
	}
	if f.Kind == "" {
		return Frame{}, fmt.Errorf("%w: missing kind", ErrBadFrame)
	}
	switch f.Kind {
	case KindMCP:
		if f.Server == "" || f.Session == "" || isMissing(f.Msg) {
			return Frame{}, fmt.Errorf("%w: mcp frame needs server, session and msg", ErrBadFrame)
		}
	case KindClose:
		if f.Server == "" || f.Session == "" {
			return Frame{}, fmt.Errorf("%w: close frame needs server and session", ErrBadFrame)
		}
	case KindRPCRequest, KindRPCResponse:
		if isMissing(f.ID) {
			return Frame{}, fmt.Errorf("%w: %s frame needs an id", ErrBadFrame, f.Kind)
		}
	}
	return f, nil
}

// decodeStd is the reference decoder: plain json.Unmarshal.
func decodeStd(data []byte) (Frame, error) {
	var f Frame
	if err := json.Unmarshal(data, &f); err != nil {
		return Frame{}, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	return f, nil
}

// isMissing reports an absent raw field or an explicit JSON null, which
// encoding/json keeps as the bytes "null".
func isMissing(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}
