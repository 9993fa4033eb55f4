// Package mcpwire is Tether's one MCP/JSON-RPC vocabulary: the error codes
// Tether answers with, the protocol revisions it knows by name, and the
// per-request _meta keys of the 2026 revision. The standard JSON-RPC codes
// are the go-sdk's own (re-exported here so a reader finds every code in one
// place); the Tether codes each have exactly one meaning, on the bridge and
// on the relay alike. docs/protocol.md ("JSON-RPC errors") lists them.
package mcpwire

import (
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Standard JSON-RPC 2.0 codes.
const (
	CodeParseError     = jsonrpc.CodeParseError     // -32700: not JSON
	CodeInvalidRequest = jsonrpc.CodeInvalidRequest // -32600: JSON, but not a JSON-RPC message
	CodeMethodNotFound = jsonrpc.CodeMethodNotFound // -32601
	CodeInvalidParams  = jsonrpc.CodeInvalidParams  // -32602: MCP also uses it for an unknown or blocked tool
	CodeInternal       = jsonrpc.CodeInternalError  // -32603
)

// MCP's own codes (SEP-2575) that Tether looks at.
const (
	CodeHeaderMismatch             = mcp.CodeHeaderMismatch                    // -32020: Mcp-Method/Mcp-Name disagree with the body
	CodeMissingClientCapabilities  = mcp.CodeMissingRequiredClientCapabilities // -32021
	CodeUnsupportedProtocolVersion = mcp.CodeUnsupportedProtocolVersion        // -32022
)

// Tether's own codes, in JSON-RPC's "server error" range (-32000 to -32099).
// -32000 and -32001 are the numbers the TypeScript SDK gives the same
// meanings (ConnectionClosed, RequestTimeout), so its clients recognise
// them. The range's other numbers MCP has taken (-32002 resource not found,
// -32020 to -32022, -32042) are never used for Tether's meanings.
const (
	// CodeUnavailable: the MCP server cannot answer: it is not running
	// (starting, restarting, crash-looping, stopped), it died or the bridge
	// went away while the request was in flight, or the session ended.
	CodeUnavailable = -32000
	// CodeTimeout: the relay gave up waiting for the bridge's answer and
	// cancelled the request.
	CodeTimeout = -32001
	// CodeTooLarge: a message was over a size cap (the bridge's cap on one
	// message from a child).
	CodeTooLarge = -32090
)

// Protocol revisions Tether knows by name.
const (
	// Version2026 is the first stateless revision (SEP-2575): server/discover
	// and per-request _meta instead of initialize. Revisions compare as
	// strings (they are dates), so v >= Version2026 means "2026 era or later".
	Version2026 = "2026-07-28"
	// Version2025 is the newest revision with the initialize handshake: what
	// the bridge speaks to a 2025-era child and offers a 2025-era client.
	Version2025 = "2025-11-25"
)

// LegacyVersions are the initialize-era revisions, newest first.
var LegacyVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

// IsModern reports whether revision v is of the 2026 (stateless) era.
func IsModern(v string) bool { return v >= Version2026 }

// Per-request _meta keys of the 2026 revision (SEP-2575), as the go-sdk
// names them.
const (
	MetaPrefix             = "io.modelcontextprotocol/"
	MetaProtocolVersion    = mcp.MetaKeyProtocolVersion
	MetaClientInfo         = mcp.MetaKeyClientInfo
	MetaClientCapabilities = mcp.MetaKeyClientCapabilities
	MetaServerInfo         = mcp.MetaKeyServerInfo
	MetaSubscriptionID     = mcp.MetaKeySubscriptionID
	MetaLogLevel           = mcp.MetaKeyLogLevel //lint:ignore SA1019 a 2026 child still takes the log level per request during the deprecation window
)
