package mcpchild

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tether-dev/tether/internal/jsonscan"
	"github.com/tether-dev/tether/internal/mcpwire"
)

// Tool filters come from allow/deny lists in mcp.json. The child always
// keeps its full tool list; the filter only decides what clients see and may
// call, so changing it needs no restart:
//   - Tools and Status.ToolCount show allowed tools only (Status.Hidden
//     counts the rest);
//   - a session's tools/list answer has denied tools cut out (only that
//     answer is decoded, and only far enough to read each tool's name);
//   - a tools/call of a denied tool is answered by the bridge and never
//     reaches the child.

// SetToolFilter sets which tools clients may see and call; nil allows all.
// It takes effect at once: sessions are told the list changed (as when the
// child changes it) and OnStatus is called. allow must be cheap and safe
// for concurrent use; it is called on every tools/call.
func (c *Child) SetToolFilter(allow func(tool string) bool) {
	if allow == nil {
		c.filter.Store(nil)
	} else {
		c.filter.Store(&allow)
	}
	c.kickStatus()
	c.announceToolsChanged()
	for _, m := range c.memberList() {
		m.announceToolsChanged() // a member reads its parent's filter
	}
}

// toolFilter is the current filter, or nil when every tool is allowed.
func (c *Child) toolFilter() func(string) bool {
	if c.parent != nil {
		return c.parent.toolFilter()
	}
	if p := c.filter.Load(); p != nil {
		return *p
	}
	return nil
}

// deniedMessage explains a refused tools/call; ok false means the tool's
// name was in doubt.
func deniedMessage(tool string, ok bool) string {
	if !ok {
		return "tools/call refused: its tool name is not one plain string (it is repeated, not a string, or also given as \"Name\" or the like)"
	}
	return fmt.Sprintf("tool %q is not available through this bridge (blocked by allow/deny in mcp.json)", tool)
}

// exactMember reads one member of an object walk the way every reader of
// the same bytes will, for a policy decision. The walk (jsonscan.Members)
// already compares names decoded and refuses a name given twice; on top of
// that, a member whose name differs from key only in case makes the read
// doubtful, because encoding/json, which some servers and clients decode
// with, matches such a name to the same field.
type exactMember struct {
	key    string
	val    []byte
	at     span // where val lies in the walked object
	folded bool // a member named like key but in another case
}

func (r *exactMember) see(m jsonscan.Member, obj []byte) {
	switch {
	case string(m.Key) == r.key:
		r.val, r.at = m.Val(obj), span{m.ValStart, m.ValEnd}
	case bytes.EqualFold(m.Key, []byte(r.key)):
		r.folded = true
	}
}

// toolNameReader reads the "name" of a tool object or of tools/call
// params; its zero value is ready for use.
type toolNameReader struct{ exactMember }

func (r *toolNameReader) see(m jsonscan.Member, obj []byte) {
	r.key = "name"
	r.exactMember.see(m, obj)
}

// get returns the tool name, "" when there is none. ok is false when the
// name cannot be read without doubt: it is not a string, or another member
// is "name" in another case.
func (r *toolNameReader) get() (name string, ok bool) {
	if r.folded || r.val != nil && r.val[0] != '"' {
		return "", false
	}
	if r.val == nil {
		return "", true
	}
	return unquote(r.val), true
}

// toolName is the "name" of a tool object or of tools/call params; ok is
// false when obj is not one valid object without repeated member names, or
// the name is in doubt (see toolNameReader.get).
func toolName(obj []byte) (name string, ok bool) {
	var r toolNameReader
	if !members(obj, func(m jsonscan.Member) { r.see(m, obj) }) {
		return "", false
	}
	return r.get()
}

// allowedTool applies the filter to a tool object or tools/call params: a
// name in doubt is denied.
func allowedTool(allow func(string) bool, obj []byte) bool {
	name, ok := toolName(obj)
	return ok && allow(name)
}

// visibleTools splits the cached tools by the filter. Caller holds c.mu.
func (c *Child) visibleToolsLocked() (visible []json.RawMessage, hidden int) {
	allow := c.toolFilter()
	if allow == nil {
		return c.tools, 0
	}
	visible = make([]json.RawMessage, 0, len(c.tools))
	for _, t := range c.tools {
		if allowedTool(allow, t) {
			visible = append(visible, t)
		}
	}
	return visible, len(c.tools) - len(visible)
}

// noTools is what filterToolsResult answers for a result it cannot read
// without doubt: showing none is the only answer sure to hide denied tools.
var noTools = []byte(`{"tools":[]}`)

// filterToolsResult cuts denied tools out of a tools/list result; the rest
// of the result, and every kept tool, stays byte for byte.
func filterToolsResult(result []byte, allow func(string) bool) []byte {
	r := exactMember{key: "tools"}
	if !members(result, func(m jsonscan.Member) { r.see(m, result) }) || r.folded {
		return noTools
	}
	if r.val == nil {
		return result
	}
	ts, te := r.at.s, r.at.e
	arr := result[ts:te]
	var kept []span
	dropped := false
	if _, ok := jsonscan.Elements(arr, 0, 1, func(s, e int) bool {
		if allowedTool(allow, arr[s:e]) {
			kept = append(kept, span{s, e})
		} else {
			dropped = true
		}
		return true
	}); !ok {
		return noTools
	}
	if !dropped {
		return result
	}
	out := make([]byte, 0, len(result))
	out = append(out, result[:ts]...)
	out = append(out, '[')
	for i, sp := range kept {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, arr[sp.s:sp.e]...)
	}
	out = append(out, ']')
	return append(out, result[te:]...)
}

// announceToolsChanged tells every session the tool list changed, the way
// each expects it: a plain notification for 2025-era sessions, one on each
// subscriptions/listen for 2026-era sessions — held by the bridge (2025
// child) or by the child (2026 child; the bridge speaks for it on the same
// stream).
func (c *Child) announceToolsChanged() {
	const method = "notifications/tools/list_changed"
	plain := buildNotification(method, nil)
	m := message{raw: plain, method: method}
	childListens := c.route.listens()
	for _, s := range c.sessionList() {
		s.deliverBroadcast(&m)
	}
	for _, l := range childListens {
		meta := setField(nil, mcpwire.MetaSubscriptionID, l.id)
		l.s.deliver(buildNotification(method, setField(nil, "_meta", meta)), l.id)
	}
}
