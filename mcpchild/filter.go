package mcpchild

import (
	"encoding/json"
	"fmt"

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
}

// toolFilter is the current filter, or nil when every tool is allowed.
func (c *Child) toolFilter() func(string) bool {
	if p := c.filter.Load(); p != nil {
		return *p
	}
	return nil
}

func deniedMessage(tool string) string {
	return fmt.Sprintf("tool %q is not available through this bridge (blocked by allow/deny in mcp.json)", tool)
}

// toolName is the "name" of a tool object or of tools/call params.
func toolName(obj []byte) string {
	v := field(obj, "name")
	if len(v) < 2 || v[0] != '"' {
		return ""
	}
	return unquote(v)
}

// visibleTools splits the cached tools by the filter. Caller holds c.mu.
func (c *Child) visibleToolsLocked() (visible []json.RawMessage, hidden int) {
	allow := c.toolFilter()
	if allow == nil {
		return c.tools, 0
	}
	visible = make([]json.RawMessage, 0, len(c.tools))
	for _, t := range c.tools {
		if allow(toolName(t)) {
			visible = append(visible, t)
		}
	}
	return visible, len(c.tools) - len(visible)
}

// filterToolsResult cuts denied tools out of a tools/list result; the rest
// of the result, and every kept tool, stays byte for byte.
func filterToolsResult(result []byte, allow func(string) bool) []byte {
	ts, te := -1, -1
	_ = eachKey(result, func(k []byte, s, e int) bool {
		if string(k) == "tools" {
			ts, te = s, e
			return false
		}
		return true
	})
	if ts < 0 {
		return result
	}
	arr := result[ts:te]
	type span struct{ s, e int }
	var kept []span
	dropped := false
	if err := eachElement(arr, func(s, e int) bool {
		if allow(toolName(arr[s:e])) {
			kept = append(kept, span{s, e})
		} else {
			dropped = true
		}
		return true
	}); err != nil || !dropped {
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
	type listen struct {
		s  *Session
		id []byte
	}
	var childListens []listen
	c.mu.Lock()
	for _, p := range c.pending {
		if p.sess != nil && p.method == "subscriptions/listen" {
			childListens = append(childListens, listen{p.sess, p.origID})
		}
	}
	c.mu.Unlock()
	for _, s := range c.sessionList() {
		s.deliverBroadcast(&m)
	}
	for _, l := range childListens {
		meta := setField(nil, mcpwire.MetaSubscriptionID, l.id)
		l.s.deliver(buildNotification(method, setField(nil, "_meta", meta)), l.id)
	}
}
