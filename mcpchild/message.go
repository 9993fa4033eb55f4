package mcpchild

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tether-dev/tether/internal/mcpwire"
)

// msgKind is what a JSON-RPC message is.
type msgKind int

const (
	kindInvalid msgKind = iota
	kindRequest
	kindNotification
	kindResponse
)

// message is a JSON-RPC message seen through its top-level spans. The
// slices point into raw; nothing is decoded beyond the method name.
type message struct {
	raw    []byte
	id     []byte // raw JSON value, nil when absent
	idAt   int    // where id starts in raw
	method string
	params []byte
	result []byte
	err    []byte
}

func (m *message) kind() msgKind {
	switch {
	case m.method != "" && m.id != nil:
		return kindRequest
	case m.method != "":
		return kindNotification
	case m.id != nil && (m.result != nil || m.err != nil):
		return kindResponse
	}
	return kindInvalid
}

// parseMessage finds the spans of one JSON-RPC message. It does not run a
// full validation; callers validate input from outside with json.Valid.
func parseMessage(raw []byte) (message, error) {
	m := message{raw: raw}
	err := eachKey(raw, func(k []byte, s, e int) bool {
		switch string(k) {
		case "id":
			if v := raw[s:e]; string(v) != "null" {
				m.id, m.idAt = v, s
			}
		case "method":
			if raw[s] == '"' {
				m.method = unquote(raw[s:e])
			}
		case "params":
			m.params = raw[s:e]
		case "result":
			m.result = raw[s:e]
		case "error":
			m.err = raw[s:e]
		}
		return true
	})
	if err != nil {
		return message{}, err
	}
	if m.kind() == kindInvalid {
		return message{}, fmt.Errorf("not a JSON-RPC request, notification or response")
	}
	return m, nil
}

func unquote(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 && len(b) >= 2 {
		return string(b[1 : len(b)-1])
	}
	var s string
	_ = json.Unmarshal(b, &s)
	return s
}

// idKey turns a raw id into a map key. JSON-RPC ids are strings or numbers;
// the raw bytes are the identity (the peer echoes them back as sent).
func idKey(raw []byte) string { return string(bytes.TrimSpace(raw)) }

// buildRequest writes {"jsonrpc":"2.0","id":id,"method":method,"params":params}.
func buildRequest(id []byte, method string, params []byte) []byte {
	out := make([]byte, 0, len(params)+len(method)+len(id)+48)
	out = append(out, `{"jsonrpc":"2.0","id":`...)
	out = append(out, id...)
	out = append(out, `,"method":`...)
	out = strconv.AppendQuote(out, method)
	if params != nil {
		out = append(out, `,"params":`...)
		out = append(out, params...)
	}
	return append(out, '}')
}

func buildNotification(method string, params []byte) []byte {
	out := make([]byte, 0, len(params)+len(method)+40)
	out = append(out, `{"jsonrpc":"2.0","method":`...)
	out = strconv.AppendQuote(out, method)
	if params != nil {
		out = append(out, `,"params":`...)
		out = append(out, params...)
	}
	return append(out, '}')
}

// buildResponse writes a response carrying either result or errObj.
func buildResponse(id []byte, result, errObj []byte) []byte {
	out := make([]byte, 0, len(result)+len(errObj)+len(id)+40)
	out = append(out, `{"jsonrpc":"2.0","id":`...)
	out = append(out, id...)
	if errObj != nil {
		out = append(out, `,"error":`...)
		out = append(out, errObj...)
	} else {
		out = append(out, `,"result":`...)
		out = append(out, result...)
	}
	return append(out, '}')
}

// withID returns m.raw with its id replaced by id, reusing m.raw's memory
// when its spare capacity allows (lineReader leaves some): a tool result of
// many MiB is passed on without a copy. m's other spans are stale after it.
func (m *message) withID(id []byte) []byte {
	return slices.Replace(m.raw, m.idAt, m.idAt+len(m.id), id...)
}

func errorObject(code int, msg string) []byte {
	b, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg})
	return b
}

func errorResponse(id []byte, code int, msg string) []byte {
	if id == nil {
		id = []byte("null")
	}
	return buildResponse(id, nil, errorObject(code, msg))
}

// requestVersion reports the per-request protocol version a 2026-era message
// carries in params._meta, or "".
func requestVersion(params []byte) string {
	if params == nil {
		return ""
	}
	meta := field(params, "_meta")
	if meta == nil {
		return ""
	}
	v := field(meta, mcpwire.MetaProtocolVersion)
	if v == nil || v[0] != '"' {
		return ""
	}
	return unquote(v)
}

// stripProtocolMeta removes the 2026-era io.modelcontextprotocol/* keys from
// params._meta, for a child that speaks the 2025 era: the go-sdk server, for
// one, switches a request to stateless handling when it sees them.
func stripProtocolMeta(params []byte) []byte {
	meta := field(params, "_meta")
	if meta == nil {
		return params
	}
	newMeta, dropped := deleteFields(meta, func(k []byte) bool {
		return bytes.HasPrefix(k, []byte(mcpwire.MetaPrefix))
	})
	if !dropped {
		return params
	}
	return setField(params, "_meta", newMeta)
}

// addProtocolMeta sets the 2026-era per-request _meta triple for a child
// that speaks 2026 on behalf of a 2025-era session. Keys already present win.
func addProtocolMeta(params []byte, clientInfo, clientCaps []byte) []byte {
	meta := field(params, "_meta")
	if meta == nil {
		meta = []byte("{}")
	}
	if field(meta, mcpwire.MetaProtocolVersion) == nil {
		meta = setField(meta, mcpwire.MetaProtocolVersion, []byte(strconv.Quote(mcpwire.Version2026)))
	}
	if clientInfo != nil && field(meta, mcpwire.MetaClientInfo) == nil {
		meta = setField(meta, mcpwire.MetaClientInfo, clientInfo)
	}
	if field(meta, mcpwire.MetaClientCapabilities) == nil {
		if clientCaps == nil {
			clientCaps = []byte("{}")
		}
		meta = setField(meta, mcpwire.MetaClientCapabilities, clientCaps)
	}
	return setField(params, "_meta", meta)
}

// progressToken returns the span of params._meta.progressToken, as offsets
// into params, or -1s.
func progressToken(params []byte) (int, int) {
	ms, me := -1, -1
	_ = eachKey(params, func(k []byte, s, e int) bool {
		if string(k) == "_meta" {
			ms, me = s, e
			return false
		}
		return true
	})
	if ms < 0 {
		return -1, -1
	}
	ts, te := -1, -1
	_ = eachKey(params[ms:me], func(k []byte, s, e int) bool {
		if string(k) == "progressToken" {
			ts, te = ms+s, ms+e
			return false
		}
		return true
	})
	return ts, te
}

// splice returns b with b[s:e] replaced by v (a new slice).
func splice(b []byte, s, e int, v []byte) []byte {
	out := make([]byte, 0, len(b)-(e-s)+len(v))
	out = append(out, b[:s]...)
	out = append(out, v...)
	return append(out, b[e:]...)
}

// truncate shortens s for a log line.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// stripSubscription drops the subscription id from params._meta (and an
// emptied _meta), for clients that never opened a subscription.
func stripSubscription(params []byte) []byte {
	meta := field(params, "_meta")
	if meta == nil {
		return params
	}
	newMeta, _ := deleteFields(meta, func(k []byte) bool { return string(k) == mcpwire.MetaSubscriptionID })
	if string(newMeta) == "{}" {
		out, _ := deleteFields(params, func(k []byte) bool { return string(k) == "_meta" })
		return out
	}
	return setField(params, "_meta", newMeta)
}
