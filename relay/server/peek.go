package server

import (
	"bytes"
	"encoding/json"
	"strconv"
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
}

func (p peek) isRequest() bool      { return p.Method != "" && len(p.ID) > 0 && string(p.ID) != "null" }
func (p peek) isNotification() bool { return p.Method != "" && !p.isRequest() }
func (p peek) isResponse() bool     { return p.Method == "" && len(p.ID) > 0 }

// peekMessage reads a JSON-RPC message. ok is false when d is not one
// valid JSON object (trailing whitespace allowed) or "method" is present
// but not a string.
func peekMessage(d []byte) (p peek, ok bool) {
	i := skipWS(d, 0)
	if i >= len(d) || d[i] != '{' {
		return peek{}, false
	}
	end, ok := scanObject(d, i, 0, func(key, val []byte) bool {
		switch string(key) {
		case "id":
			p.ID = val
		case "method":
			if val[0] != '"' {
				return false
			}
			m, ok := unquote(val)
			if !ok {
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
		}
		return true
	})
	if !ok || skipWS(d, end) != len(d) {
		return peek{}, false
	}
	return p, true
}

// errorCode returns the integer "code" of a JSON-RPC error object, or 0.
func errorCode(val []byte) int {
	code := 0
	if val[0] == '{' {
		scanObject(val, 0, 1, func(key, v []byte) bool {
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
	scanObject(params, 0, 1, func(key, meta []byte) bool {
		if string(key) != "_meta" || meta[0] != '{' {
			return true
		}
		scanObject(meta, 0, 2, func(k, v []byte) bool {
			if string(k) == metaProtocol && v[0] == '"' {
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

// maxDepth bounds nesting, as encoding/json does (10000).
const maxDepth = 10000

func skipWS(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// scanObject walks the object at d[i] and calls f with each key (still
// quoted when escaped; raw between the quotes otherwise) and raw value. f
// returning false stops with ok false. It returns the index after '}'.
func scanObject(d []byte, i, depth int, f func(key, val []byte) bool) (int, bool) {
	if depth > maxDepth {
		return 0, false
	}
	i = skipWS(d, i+1)
	if i < len(d) && d[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(d) || d[i] != '"' {
			return 0, false
		}
		kend, ok := scanString(d, i)
		if !ok {
			return 0, false
		}
		key := d[i+1 : kend-1]
		i = skipWS(d, kend)
		if i >= len(d) || d[i] != ':' {
			return 0, false
		}
		vstart := skipWS(d, i+1)
		vend, ok := scanValue(d, vstart, depth+1)
		if !ok {
			return 0, false
		}
		if f != nil && !f(key, d[vstart:vend]) {
			return 0, false
		}
		i = skipWS(d, vend)
		if i >= len(d) {
			return 0, false
		}
		switch d[i] {
		case ',':
			i = skipWS(d, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// scanValue checks the value at d[i] and returns the index after it.
func scanValue(d []byte, i, depth int) (int, bool) {
	if i >= len(d) {
		return 0, false
	}
	switch c := d[i]; {
	case c == '"':
		return scanString(d, i)
	case c == '{':
		return scanObject(d, i, depth, nil)
	case c == '[':
		return scanArray(d, i, depth)
	case c == 't':
		return scanLiteral(d, i, "true")
	case c == 'f':
		return scanLiteral(d, i, "false")
	case c == 'n':
		return scanLiteral(d, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return scanNumber(d, i)
	}
	return 0, false
}

func scanArray(d []byte, i, depth int) (int, bool) {
	if depth > maxDepth {
		return 0, false
	}
	i = skipWS(d, i+1)
	if i < len(d) && d[i] == ']' {
		return i + 1, true
	}
	for {
		end, ok := scanValue(d, i, depth+1)
		if !ok {
			return 0, false
		}
		i = skipWS(d, end)
		if i >= len(d) {
			return 0, false
		}
		switch d[i] {
		case ',':
			i = skipWS(d, i+1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

func scanLiteral(d []byte, i int, lit string) (int, bool) {
	if len(d)-i < len(lit) || string(d[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// scanString checks the string starting at d[i] ('"') as encoding/json
// would (escapes, no control characters) and returns the index
// after the closing quote.
func scanString(d []byte, i int) (int, bool) {
	i++
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			return i + 1, true
		case c == '\\':
			if i+1 >= len(d) {
				return 0, false
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(d)-i < 6 || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
					return 0, false
				}
				i += 6
			default:
				return 0, false
			}
		case c < 0x20:
			return 0, false
		default:
			// Bytes of any value from 0x20 up, as encoding/json accepts
			// (it reads invalid UTF-8 as U+FFFD rather than failing).
			i++
		}
	}
	return 0, false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanNumber checks a JSON number: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?
func scanNumber(d []byte, i int) (int, bool) {
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	default:
		return 0, false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !isDigit(d[i]) {
			return 0, false
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			return 0, false
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	return i, true
}
