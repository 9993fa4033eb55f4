package server

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/tether-dev/tether/internal/jsonscan"
	"github.com/tether-dev/tether/internal/mcpwire"
)

// peek is the part of a JSON-RPC message the relay looks at. peekMessage
// fills it in one pass over the top level of the message, skipping every
// other value (a tool result, however large, is scanned once and never
// decoded), in place of a json.Unmarshal into a struct with a _meta map,
// which cost more than the rest of the relay's per-call work together.
type peek struct {
	ID     json.RawMessage // raw id value; nil when absent
	Method string
	// HasError is set when "error" is present and not null; ErrorCode is
	// its numeric "code", 0 when absent or not a number.
	HasError  bool
	ErrorCode int
	// MetaProtocol is params._meta["io.modelcontextprotocol/protocolVersion"]
	// when it is a string (2026-era clients send it on every request).
	MetaProtocol string
	// Name is what the Mcp-Name header must mirror: params.name of
	// tools/call and prompts/get, params.uri of resources/read, decoded;
	// NameOK is false when that member is missing, not a string, or named
	// twice in params (then no header can be checked against it).
	Name   string
	NameOK bool
	params []byte
}

func (p peek) isRequest() bool  { return p.Method != "" && len(p.ID) > 0 && string(p.ID) != "null" }
func (p peek) isResponse() bool { return p.Method == "" && len(p.ID) > 0 }

// peekMessage reads a JSON-RPC message. ok is false when d is not one
// valid JSON object (trailing whitespace allowed), names a top-level member
// twice (parsers disagree on which one wins, and the relay routes on what
// it reads), or "method" is present but not a string of valid UTF-8. Member names are
// compared decoded, as the bridge and the client will read them.
func peekMessage(d []byte) (p peek, ok bool) {
	end, ok := jsonscan.Members(d, jsonscan.SkipSpace(d, 0), 0, func(m jsonscan.Member) bool {
		val := m.Val(d)
		switch string(m.Key) {
		case "id":
			p.ID = val
		case "method":
			if val[0] != '"' {
				return false
			}
			m, ok := unquote(val)
			if !ok || !utf8.ValidString(m) {
				// Not valid UTF-8: encoding/json (the bridge, the client)
				// would read U+FFFD where this reads the raw bytes.
				return false
			}
			p.Method = m
		case "error":
			if string(val) != "null" {
				p.HasError = true
				p.ErrorCode = errorCode(val)
			}
		case "params":
			p.MetaProtocol = metaProtocolOf(val)
			p.params = val
		}
		return true
	})
	if !ok || jsonscan.SkipSpace(d, end) != len(d) {
		return peek{}, false
	}
	if key := nameMember(p.Method); key != "" && len(p.params) > 0 && p.params[0] == '{' {
		p.Name, p.NameOK = stringMember(p.params, key)
	}
	p.params = nil
	return p, true
}

// nameMember is the params member the Mcp-Name header mirrors for method,
// or "" when the method has none (SEP-2243, 2026-07-28).
func nameMember(method string) string {
	switch method {
	case "tools/call", "prompts/get":
		return "name"
	case "resources/read":
		return "uri"
	}
	return ""
}

// stringMember returns the decoded string value of obj's member key. ok is
// false when it is absent, not a valid UTF-8 string, or obj names any
// member twice: the next hop's parser and this one could then read
// different values.
func stringMember(obj []byte, key string) (string, bool) {
	var out string
	found := false
	_, ok := jsonscan.Members(obj, 0, 1, func(m jsonscan.Member) bool {
		if string(m.Key) != key {
			return true
		}
		v := m.Val(obj)
		if v[0] != '"' {
			return false
		}
		s, ok := unquote(v)
		if !ok || !utf8.ValidString(s) {
			return false
		}
		out, found = s, true
		return true
	})
	return out, ok && found
}

// errorCode returns the integer "code" of a JSON-RPC error object, or 0.
func errorCode(val []byte) int {
	code := 0
	if val[0] == '{' {
		jsonscan.Object(val, 0, 1, func(key, v []byte, _ bool) bool {
			if string(key) == "code" {
				if n, err := strconv.Atoi(string(v)); err == nil {
					code = n
				}
			}
			return true
		})
	}
	return code
}

// metaProtocolOf returns params._meta's protocol version string, or "".
func metaProtocolOf(params []byte) string {
	var out string
	if params[0] != '{' {
		return ""
	}
	jsonscan.Object(params, 0, 1, func(key, meta []byte, _ bool) bool {
		if string(key) != "_meta" || meta[0] != '{' {
			return true
		}
		jsonscan.Object(meta, 0, 2, func(k, v []byte, _ bool) bool {
			if string(k) == mcpwire.MetaProtocolVersion && v[0] == '"' {
				out, _ = unquote(v)
			}
			return true
		})
		return true
	})
	return out
}

// unquote decodes a JSON string value; a string without escapes is cut out
// as is.
func unquote(v []byte) (string, bool) {
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	var s string
	return s, json.Unmarshal(v, &s) == nil
}

// idKey makes a map key of a JSON-RPC id: "s:<string>" or "n:<number>".
// Plain strings and small integers, which is what clients send, skip
// json.Unmarshal; what they produce is what the slow path produces.
func idKey(raw json.RawMessage) string {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return "s:" + string(raw[1:n-1])
	}
	if isSmallInt(raw) {
		return "n:" + string(raw)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "x:" + string(raw)
	}
	if s, ok := v.(string); ok {
		return "s:" + s
	}
	b, _ := json.Marshal(v) // a float64: the same text for the same number
	return "n:" + string(b)
}

// isSmallInt reports whether raw is an integer float64 holds exactly and
// encoding/json writes back unchanged: at most 15 digits, no leading zero.
func isSmallInt(raw []byte) bool {
	d := raw
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 15 || (d[0] == '0' && len(d) > 1) || (len(raw) != len(d) && string(d) == "0") {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
