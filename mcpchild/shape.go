package mcpchild

// Per-version shape. A session is answered in the protocol version its
// client asked for (session.go, initialize), but the child speaks its own
// (2025-11-25 for a 2025-era child): its results may carry members, content
// types and notifications the client's version does not have. Strict clients
// (schema-validating SDKs, clients pinned to 2024-11-05) reject or misread
// them, so everything a session is sent passes through shapeFor on the way
// out (Session.deliver): members the version lacks are removed, content
// types it lacks become text that says what was there, and notifications it
// lacks are not sent.
//
// The table below is derived from the spec's schema.ts of each revision
// (modelcontextprotocol/modelcontextprotocol, schema/<version>/schema.ts);
// docs/protocol.md ("Per-version shape") lists it for readers. A session of
// the newest initialize-era version, or of the 2026 era, is not touched:
// shapeFor is not even called, so the hot path costs nothing extra.
//
// Shaping works on the raw bytes (jsonscan walks, spliced rewrites): an
// object is rebuilt only when something in it changes; otherwise the child's
// own bytes go on.

import (
	"encoding/json"
	"slices"

	"github.com/tether-dev/tether/internal/jsonscan"
	"github.com/tether-dev/tether/internal/mcpwire"
)

// Revisions, oldest first, by the names the shape table uses.
const (
	v20241105 = "2024-11-05"
	v20250326 = "2025-03-26"
	v20250618 = "2025-06-18"
	v20251125 = "2025-11-25"
	v20260728 = "2026-07-28"
)

// since maps a member name to the first revision that has it.
type since map[string]string

// lacks reports whether a client of version v lacks member key of t.
func (t since) lacks(v string, key []byte) bool {
	first, ok := t[string(key)]
	return ok && v < first
}

// The shape table: what each kind of object gained, and when.
var (
	// Tool (tools/list).
	toolSince = since{"annotations": v20250326, "title": v20250618, "outputSchema": v20250618, "_meta": v20250618, "icons": v20251125, "execution": v20251125}
	// Resource, ResourceTemplate, Prompt (their list results): BaseMetadata's
	// title, _meta and Icons.
	metadataSince = since{"title": v20250618, "_meta": v20250618, "icons": v20251125}
	// PromptArgument.
	promptArgSince = since{"title": v20250618}
	// Implementation (initialize's serverInfo).
	implSince = since{"title": v20250618, "icons": v20251125, "description": v20251125, "websiteUrl": v20251125}
	// ServerCapabilities (initialize's capabilities).
	serverCapsSince = since{"completions": v20250326, "tasks": v20251125, "extensions": v20260728}
	// CallToolResult.
	callResultSince = since{"structuredContent": v20250618}
	// Content blocks (TextContent, ImageContent, AudioContent,
	// EmbeddedResource, ResourceLink) and ResourceContents.
	contentSince = since{"_meta": v20250618}
	// Annotations of a content block or resource.
	annotationsSince = since{"lastModified": v20250618}
	// ProgressNotification's params.
	progressSince = since{"message": v20250326}
	// Content block types: a type a version lacks is turned into text.
	contentTypeSince = map[string]string{"text": v20241105, "image": v20241105, "resource": v20241105, "audio": v20250326, "resource_link": v20250618}
	// Any result (2026-07-28's Result and CacheableResult): what a 2026
	// child adds to every answer, which a 2025-era client never sees.
	resultSince = since{"resultType": v20260728, "cacheScope": v20260728, "ttlMs": v20260728}
	// Server→client notifications: one a version lacks is not sent.
	notificationSince = map[string]string{
		"notifications/elicitation/complete": v20251125,
		"notifications/tasks/status":         v20251125,
	}
)

// contentChangedIn is the newest revision that changed content blocks or
// resource contents: a client of it or later needs no walk of a result's
// content (often nearly all of a big result's bytes). Through 2026-07-28
// ContentBlock is the same five types.
var contentChangedIn = newest(contentSince, annotationsSince, since(contentTypeSince))

func newest(ts ...since) string {
	var n string
	for _, t := range ts {
		for _, v := range t {
			n = max(n, v)
		}
	}
	return n
}

// needsShape reports whether a session of version v is sent messages in a
// shape older than those of a child that speaks version child: v is a
// released initialize-era version older than the child's. ("" is a 2026
// session or one not yet initialized; a version Tether does not know was
// answered with the child's own.)
func needsShape(v, child string) bool {
	return v < child && slices.Contains(mcpwire.LegacyVersions, v)
}

// childVersion is the version a child's messages are shaped in: 2026-07-28
// for a child spoken to in the 2026 era only, else the 2025 era's newest
// (a child that speaks both is spoken to in 2025 by 2025-era sessions).
func childVersion(hs handshake) string {
	if hs.era == Era2026 {
		return mcpwire.Version2026
	}
	return mcpwire.Version2025
}

// shapeFor returns msg in the shape of protocol version v: msg itself when
// nothing changes, a new slice otherwise, nil when the message must not be
// sent to such a client. A response whose result cannot be walked to be
// shaped (an object that names a member twice) becomes an error response:
// the bridge cannot vouch for what the client would read.
func shapeFor(v string, msg []byte) []byte {
	var id, method, params, result []byte
	ps, rs := noSpan, noSpan
	if !members(msg, func(m jsonscan.Member) {
		switch string(m.Key) {
		case "id":
			id = m.Val(msg)
		case "method":
			method = m.Val(msg)
		case "params":
			params, ps = m.Val(msg), span{m.ValStart, m.ValEnd}
		case "result":
			result, rs = m.Val(msg), span{m.ValStart, m.ValEnd}
		}
	}) {
		return msg // not ours to judge: the read loop validated it
	}
	switch {
	case method != nil:
		name := unquote(method)
		if first, ok := notificationSince[name]; ok && v < first {
			return nil
		}
		var out []byte
		var ok bool
		switch name {
		case "notifications/progress":
			out, ok = dropMembers(v, params, progressSince)
		case "sampling/createMessage", "elicitation/create":
			// Session.refuses turned away (with an error to the child)
			// a request that cannot be shaped, before it came here.
			var why string
			out, why = shapeRequestParams(v, name, params)
			ok = why == ""
		default:
			return msg
		}
		if !ok {
			return nil
		}
		return replaceSpan(msg, ps, params, out)
	case result != nil:
		out, ok := shapeResult(v, result)
		if !ok {
			if id == nil {
				id = []byte("null")
			}
			return errorResponse(id, mcpwire.CodeInternal,
				"tether bridge: the server's answer names a member twice; it cannot be passed on to an MCP "+v+" client")
		}
		return replaceSpan(msg, rs, result, out)
	}
	return msg
}

// replaceSpan is msg with the value at sp replaced by out, or msg itself
// when out is the same bytes as old.
func replaceSpan(msg []byte, sp span, old, out []byte) []byte {
	if sameBytes(old, out) {
		return msg
	}
	return splice(msg, sp.s, sp.e, out)
}

// shapeResult shapes a result by what it holds: results carry no method,
// and their members name their kind (tools, content, capabilities…).
func shapeResult(v string, res []byte) ([]byte, bool) {
	if len(res) == 0 || res[0] != '{' {
		return res, true
	}
	return editMembers(res, func(key, val []byte) ([]byte, bool, bool) {
		if resultSince.lacks(v, key) {
			return val, false, true
		}
		switch string(key) {
		case "content", "messages", "contents":
			if v >= contentChangedIn {
				return val, true, true
			}
		}
		switch string(key) {
		case "structuredContent":
			return val, !callResultSince.lacks(v, key), true
		case "tools":
			out, ok := mapArray(val, func(t []byte) ([]byte, bool) { return dropMembers(v, t, toolSince) })
			return out, true, ok
		case "resources", "resourceTemplates":
			out, ok := mapArray(val, func(r []byte) ([]byte, bool) { return shapeMetadata(v, r, nil) })
			return out, true, ok
		case "prompts":
			out, ok := mapArray(val, func(p []byte) ([]byte, bool) { return shapeMetadata(v, p, promptArgs(v)) })
			return out, true, ok
		case "content": // CallToolResult
			out, ok := mapArray(val, func(b []byte) ([]byte, bool) { return shapeContent(v, b) })
			return out, true, ok
		case "messages": // GetPromptResult: each message has one content block
			out, ok := mapArray(val, func(m []byte) ([]byte, bool) {
				return editObject(m, func(key, val []byte) ([]byte, bool, bool) {
					if string(key) != "content" {
						return val, true, true
					}
					out, ok := shapeContent(v, val)
					return out, true, ok
				})
			})
			return out, true, ok
		case "contents": // ReadResourceResult
			out, ok := mapArray(val, func(c []byte) ([]byte, bool) { return dropMembers(v, c, contentSince) })
			return out, true, ok
		case "capabilities": // InitializeResult
			out, ok := dropMembers(v, val, serverCapsSince)
			return out, true, ok
		case "serverInfo":
			out, ok := dropMembers(v, val, implSince)
			return out, true, ok
		}
		return val, true, true
	})
}

// promptArgs shapes a prompt's arguments.
func promptArgs(v string) func(key, val []byte) ([]byte, bool, bool) {
	return func(key, val []byte) ([]byte, bool, bool) {
		if string(key) != "arguments" {
			return val, true, true
		}
		out, ok := mapArray(val, func(a []byte) ([]byte, bool) { return dropMembers(v, a, promptArgSince) })
		return out, true, ok
	}
}

// shapeMetadata shapes a Resource, ResourceTemplate or Prompt: its
// BaseMetadata members, its annotations, and (more, when not nil) any
// member of its own.
func shapeMetadata(v string, obj []byte, more func(key, val []byte) ([]byte, bool, bool)) ([]byte, bool) {
	return editObject(obj, func(key, val []byte) ([]byte, bool, bool) {
		if metadataSince.lacks(v, key) {
			return val, false, true
		}
		if string(key) == "annotations" {
			out, ok := dropMembers(v, val, annotationsSince)
			return out, true, ok
		}
		if more != nil {
			return more(key, val)
		}
		return val, true, true
	})
}

// shapeContent shapes one content block: a type the version lacks becomes
// a text block that says what was there (a client must not lose sight of
// it silently); members it lacks are dropped. One walk of the block: a
// block's text may be most of a big result.
func shapeContent(v string, block []byte) ([]byte, bool) {
	if len(block) == 0 || block[0] != '{' {
		return block, true
	}
	var typ, uri, name, mime []byte
	out, ok := editMembers(block, func(key, val []byte) ([]byte, bool, bool) {
		switch string(key) {
		case "type":
			typ = val
		case "uri":
			uri = val
		case "name":
			name = val
		case "mimeType":
			mime = val
		case "annotations":
			out, ok := dropMembers(v, val, annotationsSince)
			return out, true, ok
		case "resource": // an embedded resource's ResourceContents
			out, ok := dropMembers(v, val, contentSince)
			return out, true, ok
		}
		return val, !contentSince.lacks(v, key), true
	})
	if !ok {
		return block, false
	}
	t := unquote(typ)
	if first, known := contentTypeSince[t]; !known || v < first {
		return textBlock(contentStandIn(v, t, unquote(uri), unquote(name), unquote(mime))), true
	}
	return out, true
}

// contentStandIn is the text that stands in for a content block of a type
// a client of version v does not know.
func contentStandIn(v, typ, uri, name, mt string) string {
	switch typ {
	case "resource_link":
		s := "[resource link: " + uri
		if name != "" {
			s += " (" + name + ")"
		}
		if mt != "" {
			s += ", " + mt
		}
		return s + "]"
	case "audio":
		s := "[audio content omitted"
		if mt != "" {
			s += " (" + mt + ")"
		}
		return s + ": MCP " + v + " has no audio content]"
	}
	return "[content of type \"" + typ + "\" omitted: MCP " + v + " does not have it]"
}

func textBlock(text string) []byte {
	q, _ := json.Marshal(text) // JSON's escapes, not Go's (strconv.Quote writes \x00)
	out := append([]byte(`{"type":"text","text":`), q...)
	return append(out, '}')
}

// dropMembers is obj without the members a client of version v lacks.
// A value that is not an object is returned as it is.
func dropMembers(v string, obj []byte, t since) ([]byte, bool) {
	return editObject(obj, func(key, val []byte) ([]byte, bool, bool) {
		return val, !t.lacks(v, key), true
	})
}

// editObject is editMembers for a value that may not be an object (left
// as it is).
func editObject(obj []byte, edit func(key, val []byte) (out []byte, keep, ok bool)) ([]byte, bool) {
	if i := jsonscan.SkipSpace(obj, 0); i >= len(obj) || obj[i] != '{' {
		return obj, true
	}
	return editMembers(obj, edit)
}

// editMembers rebuilds object obj with each member's value replaced by
// edit's out, or dropped when keep is false. It returns obj itself when
// nothing changed, and ok false when obj is not one valid object without
// duplicate member names, or an edit failed.
func editMembers(obj []byte, edit func(key, val []byte) (out []byte, keep, ok bool)) ([]byte, bool) {
	type part struct {
		ks, ke int    // the member's key, with its colon, in obj
		val    []byte // its value, edited
	}
	var parts []part
	changed, failed := false, false
	if !members(obj, func(m jsonscan.Member) {
		if failed {
			return
		}
		val := m.Val(obj)
		out, keep, ok := edit(m.Key, val)
		switch {
		case !ok:
			failed = true
		case !keep:
			changed = true
		default:
			if !sameBytes(out, val) {
				changed = true
			}
			parts = append(parts, part{m.KeyStart, m.ValStart, out})
		}
	}) || failed {
		return obj, false
	}
	if !changed {
		return obj, true
	}
	out := make([]byte, 0, len(obj))
	out = append(out, '{')
	for n, p := range parts {
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, obj[p.ks:p.ke]...)
		out = append(out, p.val...)
	}
	return append(out, '}'), true
}

// mapArray rebuilds array arr with fn applied to each element; arr itself
// when nothing changed. A value that is not an array is returned as it is.
func mapArray(arr []byte, fn func(elem []byte) ([]byte, bool)) ([]byte, bool) {
	i := jsonscan.SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return arr, true
	}
	var elems [][]byte
	changed, failed := false, false
	_, ok := jsonscan.Elements(arr, i, 0, func(s, e int) bool {
		el := arr[s:e:e]
		out, ok := fn(el)
		if !ok {
			failed = true
			return false
		}
		if !sameBytes(out, el) {
			changed = true
		}
		elems = append(elems, out)
		return true
	})
	if !ok || failed {
		return arr, false
	}
	if !changed {
		return arr, true
	}
	out := make([]byte, 0, len(arr))
	out = append(out, '[')
	for n, el := range elems {
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, el...)
	}
	return append(out, ']'), true
}
