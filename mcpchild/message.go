package mcpchild

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tether-dev/tether/internal/jsonscan"
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

// message is a JSON-RPC message, parsed once (parseMessage) and then asked
// questions: its top-level spans, and the members of params the bridge
// looks at. The slices point into raw; nothing is decoded beyond the method
// name and the protocol version.
type message struct {
	raw    []byte
	id     []byte // raw JSON value, nil when absent
	idAt   int    // where id starts in raw
	method string
	params []byte
	result []byte
	err    []byte
	p      paramsInfo
}

// paramsInfo is what the bridge asks of a message's params, read in the
// same parse as the message. Spans are offsets into params.
type paramsInfo struct {
	name         toolNameReader
	requestID    []byte // "requestId" (notifications/cancelled)
	level        []byte // "level" (logging/setLevel, notifications/message)
	meta         []byte // "_meta"
	token        span   // "progressToken" (notifications/progress)
	metaToken    span   // "_meta"."progressToken" (a request asking for progress)
	version      string // "_meta"'s protocol version, when a string
	subscription []byte // "_meta"'s subscription id
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

// errNotJSONRPC: the message is JSON but not a JSON-RPC message.
var errNotJSONRPC = errors.New("not a JSON-RPC request, notification or response")

// parseMessage validates one JSON-RPC message and finds the spans of its
// members, in one pass over the message (params, which is small, is walked
// once more for its own members). The objects the bridge reads (the
// message, params, params._meta) must not name a member twice: the
// bridge's decisions must be about what the child or client will read.
func parseMessage(raw []byte) (message, error) {
	m := message{raw: raw}
	if !members(raw, func(mb jsonscan.Member) {
		v := mb.Val(raw)
		switch string(mb.Key) {
		case "id":
			if string(v) != "null" {
				m.id, m.idAt = v, mb.ValStart
			}
		case "method":
			if v[0] == '"' {
				m.method = unquote(v)
			}
		case "params":
			m.params = v
		case "result":
			m.result = v
		case "error":
			m.err = v
		}
	}) {
		return message{}, errMalformed
	}
	if m.kind() == kindInvalid {
		return message{}, errNotJSONRPC
	}
	p, ok := parseParams(m.params)
	if !ok {
		return message{}, errMalformed
	}
	m.p = p
	return m, nil
}

// errMalformed: the message is not one JSON object, or an object the
// bridge reads names a member twice.
var errMalformed = errors.New("not one JSON object without repeated member names")

// parseParams reads the members of params the bridge asks about. Params
// that are not an object (absent, or an array) have none of them.
func parseParams(params []byte) (paramsInfo, bool) {
	p := paramsInfo{token: noSpan, metaToken: noSpan}
	if len(params) == 0 || params[0] != '{' {
		return p, true
	}
	metaAt := -1
	if !members(params, func(mb jsonscan.Member) {
		v := mb.Val(params)
		p.name.see(mb, params)
		switch string(mb.Key) {
		case "requestId":
			p.requestID = v
		case "level":
			p.level = v
		case "progressToken":
			p.token = span{mb.ValStart, mb.ValEnd}
		case "_meta":
			p.meta, metaAt = v, mb.ValStart
		}
	}) {
		return p, false
	}
	if len(p.meta) == 0 || p.meta[0] != '{' {
		return p, true
	}
	ok := members(p.meta, func(mb jsonscan.Member) {
		v := mb.Val(p.meta)
		switch string(mb.Key) {
		case "progressToken":
			p.metaToken = span{metaAt + mb.ValStart, metaAt + mb.ValEnd}
		case mcpwire.MetaProtocolVersion:
			if v[0] == '"' {
				p.version = unquote(v)
			}
		case mcpwire.MetaSubscriptionID:
			p.subscription = v
		}
	})
	return p, ok
}

// unquote decodes a JSON string value as encoding/json does; a plain one
// (no escapes, valid UTF-8) is cut out as is.
func unquote(b []byte) string {
	if len(b) >= 2 && bytes.IndexByte(b, '\\') < 0 && utf8.Valid(b) {
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

// progressToken returns the span of params._meta.progressToken, for params
// the bridge rewrote (a parsed message has it as p.metaToken).
func progressToken(params []byte) span {
	p, _ := parseParams(params)
	return p.metaToken
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
