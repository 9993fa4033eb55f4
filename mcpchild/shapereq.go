package mcpchild

// Per-version shape of server→client requests (shape.go does results and
// notifications). A child speaking 2025-11-25 (or 2026-07-28, whose input
// requests mrtr.go and held.go turn into these) asks in its own shape; an
// older client that validates params rejects a sampling request with an
// array of content blocks or an elicitation with a titled enum. From the
// spec's schema.ts:
//
//   - sampling/createMessage: 2025-11-25 added tools, toolChoice and task to
//     the params, _meta to a SamplingMessage, an array of content blocks as
//     a message's content, and tool_use/tool_result blocks. A 2024-11-05
//     client has no audio block (content blocks as in shape.go).
//   - elicitation/create (2025-06-18 on; older clients are refused in
//     Session.refuses): 2025-11-25 added mode (and url mode), task,
//     requestedSchema.$schema, titled and multi-select enums (oneOf, type
//     array; SEP-1330) and default for strings, numbers and enums
//     (SEP-1034; booleans had it).
//   - roots/list: its params are RequestParams (_meta), unchanged since
//     2024-11-05; nothing to shape.
//
// A request that cannot be put in the client's shape without changing what
// the child asks (url mode, a multi-select) is refused: the child gets a
// JSON-RPC error saying why, rather than the client an answer it misreads.

import (
	"encoding/json"

	"github.com/tether-dev/tether/internal/jsonscan"
)

var (
	// CreateMessageRequest's params.
	samplingSince = since{"tools": v20251125, "toolChoice": v20251125, "task": v20251125}
	// SamplingMessage.
	samplingMessageSince = since{"_meta": v20251125}
	// Block types only a sampling message has.
	samplingTypeSince = map[string]string{"tool_use": v20251125, "tool_result": v20251125}
	// ElicitRequest's params.
	elicitSince = since{"mode": v20251125, "task": v20251125}
	// ElicitRequest's requestedSchema.
	requestedSchemaSince = since{"$schema": v20251125}
)

// samplingChangedIn and elicitChangedIn: a client of this version or later
// gets these requests as the child sent them.
const (
	samplingChangedIn = v20251125
	elicitChangedIn   = v20251125
)

// shapeRequestParams returns the params of server→client request method in
// the shape of version v (params itself when nothing changes), or why it
// cannot be sent to such a client.
func shapeRequestParams(v, method string, params []byte) ([]byte, string) {
	switch method {
	case "sampling/createMessage":
		return shapeSampling(v, params)
	case "elicitation/create":
		if v >= elicitChangedIn {
			return params, ""
		}
		return shapeElicit(v, params)
	}
	return params, ""
}

const dupMembers = "the server's request names a member twice, so it cannot be put in the client's shape"

func shapeSampling(v string, params []byte) ([]byte, string) {
	if v >= samplingChangedIn && v >= contentChangedIn {
		return params, ""
	}
	out, ok := editObject(params, func(key, val []byte) ([]byte, bool, bool) {
		if samplingSince.lacks(v, key) {
			return val, false, true
		}
		if string(key) != "messages" {
			return val, true, true
		}
		out, ok := samplingMessages(v, val)
		return out, true, ok
	})
	if !ok {
		return params, dupMembers
	}
	return out, ""
}

// samplingMessages shapes a sampling request's messages. For a client
// before 2025-11-25 a message holds one content block, so a message of
// several blocks becomes several messages of the same role, in order.
func samplingMessages(v string, arr []byte) ([]byte, bool) {
	i := jsonscan.SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return arr, true
	}
	var msgs [][]byte
	changed, failed := false, false
	_, ok := jsonscan.Elements(arr, i, 0, func(s, e int) bool {
		el := arr[s:e:e]
		out, ok := samplingMessage(v, el)
		if !ok {
			failed = true
			return false
		}
		if len(out) != 1 || !sameBytes(out[0], el) {
			changed = true
		}
		msgs = append(msgs, out...)
		return true
	})
	if !ok || failed {
		return arr, false
	}
	if !changed {
		return arr, true
	}
	out := append(make([]byte, 0, len(arr)), '[')
	for n, m := range msgs {
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, m...)
	}
	return append(out, ']'), true
}

// samplingMessage is one SamplingMessage in the shape of version v: one
// message, or one per content block when v lacks arrays of blocks.
func samplingMessage(v string, msg []byte) ([][]byte, bool) {
	if i := jsonscan.SkipSpace(msg, 0); i >= len(msg) || msg[i] != '{' {
		return [][]byte{msg}, true
	}
	var role, blocks []byte
	out, ok := editMembers(msg, func(key, val []byte) ([]byte, bool, bool) {
		if samplingMessageSince.lacks(v, key) {
			return val, false, true
		}
		switch string(key) {
		case "role":
			role = val
		case "content":
			if i := jsonscan.SkipSpace(val, 0); i < len(val) && val[i] == '[' && v < samplingChangedIn {
				blocks = val
				return val, true, true
			}
			out, ok := shapeSamplingBlock(v, val)
			return out, true, ok
		}
		return val, true, true
	})
	if !ok {
		return nil, false
	}
	if blocks == nil {
		return [][]byte{out}, true
	}
	if role == nil {
		role = []byte(`"user"`)
	}
	var msgs [][]byte
	_, ok = jsonscan.Elements(blocks, jsonscan.SkipSpace(blocks, 0), 0, func(s, e int) bool {
		b, bok := shapeSamplingBlock(v, blocks[s:e:e])
		if !bok {
			ok = false
			return false
		}
		msgs = append(msgs, samplingMessageOf(role, b))
		return true
	})
	if !ok {
		return nil, false
	}
	if len(msgs) == 0 { // an empty turn: one empty text block keeps the turn
		msgs = append(msgs, samplingMessageOf(role, textBlock("")))
	}
	return msgs, true
}

func samplingMessageOf(role, block []byte) []byte {
	out := append([]byte(`{"role":`), role...)
	out = append(out, `,"content":`...)
	out = append(out, block...)
	return append(out, '}')
}

// shapeSamplingBlock shapes one block of a sampling message: a tool use or
// tool result, which a client before 2025-11-25 cannot read, becomes text
// that says what was there; other blocks as content blocks anywhere.
func shapeSamplingBlock(v string, block []byte) ([]byte, bool) {
	if len(block) == 0 || block[0] != '{' {
		return block, true
	}
	typ := unquote(field(block, "type"))
	if first, ok := samplingTypeSince[typ]; ok {
		if v >= first {
			return block, true
		}
		var s string
		switch typ {
		case "tool_use":
			s = "[tool use omitted: " + unquote(field(block, "name")) + " (" + unquote(field(block, "id")) + "): MCP " + v + " has no tools in sampling]"
		default:
			s = "[tool result omitted for " + unquote(field(block, "toolUseId")) + ": MCP " + v + " has no tools in sampling]"
		}
		return textBlock(s), true
	}
	if v >= contentChangedIn {
		return block, true
	}
	return shapeContent(v, block)
}

// shapeElicit shapes an elicitation's params for a client before
// 2025-11-25: form mode only, legacy enums, defaults only for booleans.
func shapeElicit(v string, params []byte) ([]byte, string) {
	var why string
	out, ok := editObject(params, func(key, val []byte) ([]byte, bool, bool) {
		switch {
		case string(key) == "mode":
			if m := unquote(val); m != "form" {
				why = "the server asks in elicitation mode \"" + m + "\", which MCP " + v + " does not have"
			}
			return val, false, true
		case elicitSince.lacks(v, key):
			return val, false, true
		case string(key) == "requestedSchema":
			out, ok := editObject(val, func(key, val []byte) ([]byte, bool, bool) {
				if requestedSchemaSince.lacks(v, key) {
					return val, false, true
				}
				if string(key) != "properties" {
					return val, true, true
				}
				out, ok := editObject(val, func(name, prop []byte) ([]byte, bool, bool) {
					out, w := elicitProperty(v, prop)
					if w != "" && why == "" {
						why = "its field " + string(name) + " " + w
					}
					return out, true, w == ""
				})
				return out, true, ok
			})
			return out, true, ok
		}
		return val, true, true
	})
	if why != "" {
		return params, why
	}
	if !ok {
		return params, dupMembers
	}
	return out, ""
}

// elicitProperty is one field of an elicitation form (a
// PrimitiveSchemaDefinition) as a 2025-06-18 client reads it, or why it
// cannot be.
func elicitProperty(v string, prop []byte) ([]byte, string) {
	if i := jsonscan.SkipSpace(prop, 0); i >= len(prop) || prop[i] != '{' {
		return prop, ""
	}
	typ := unquote(field(prop, "type"))
	if typ == "array" {
		return prop, "is a multi-select, which MCP " + v + " does not have"
	}
	var oneOf []byte
	out, ok := editMembers(prop, func(key, val []byte) ([]byte, bool, bool) {
		switch string(key) {
		case "default":
			return val, typ == "boolean", true
		case "oneOf":
			oneOf = val
			return val, false, true
		}
		return val, true, true
	})
	if !ok {
		return prop, "names a member twice"
	}
	if oneOf == nil {
		return out, ""
	}
	// A titled single-select: the legacy form is enum plus enumNames.
	var opts []struct {
		Const *string `json:"const"`
		Title string  `json:"title"`
	}
	if err := json.Unmarshal(oneOf, &opts); err != nil || field(prop, "enum") != nil {
		return prop, "is a choice MCP " + v + " cannot show"
	}
	values, names := make([]string, len(opts)), make([]string, len(opts))
	for n, o := range opts {
		if o.Const == nil {
			return prop, "is a choice MCP " + v + " cannot show"
		}
		values[n], names[n] = *o.Const, o.Title
		if names[n] == "" {
			names[n] = *o.Const
		}
	}
	ev, _ := json.Marshal(values)
	en, _ := json.Marshal(names)
	out = setField(out, "enum", ev)
	return setField(out, "enumNames", en), ""
}
