package relay

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// TAG mode: a TAG relay knows one flat tool list per bridge (hello.tools) and
// calls tools by name (rpc.request path). A Tether bridge serves several
// servers, so their lists are merged and each final name is routed back to
// the server and the tool name the server itself uses.

// TAGSeparator joins a server name and a tool name when a tool name is used
// by more than one server.
const TAGSeparator = "__"

// TAGRoute says which server answers a flattened tool name, and under which
// name that server knows the tool.
type TAGRoute struct{ Server, Tool string }

// FlattenTAGTools merges several servers' tool lists into the single list a
// TAG relay expects. A tool name used by only one server stays as is; a name
// used by two or more servers becomes "server__tool" for each of them. Tool
// objects are kept byte for byte, except the "name" value of renamed ones.
// The order is the servers' order, then each server's tool order.
//
// It fails on a tool that is not a JSON object with a string "name", and when
// a prefixed name equals another tool's final name (so no call could be
// routed without guessing). Renaming can push a name past the 64 characters
// some MCP clients accept; that is left to the caller to report.
func FlattenTAGTools(servers []ServerInfo) (tools json.RawMessage, routes map[string]TAGRoute, err error) {
	type entry struct {
		server, name string
		raw          json.RawMessage
	}
	var entries []entry
	usedBy := map[string]map[string]bool{} // tool name → servers that have it
	for _, s := range servers {
		for i, raw := range s.Tools {
			name, err := toolName(raw)
			if err != nil {
				return nil, nil, fmt.Errorf("server %q tool %d: %w", s.Name, i, err)
			}
			entries = append(entries, entry{s.Name, name, raw})
			if usedBy[name] == nil {
				usedBy[name] = map[string]bool{}
			}
			usedBy[name][s.Name] = true
		}
	}

	routes = make(map[string]TAGRoute, len(entries))
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, e := range entries {
		final, raw := e.name, e.raw
		if len(usedBy[e.name]) > 1 {
			final = e.server + TAGSeparator + e.name
			if raw, err = renameTool(e.raw, final); err != nil {
				return nil, nil, fmt.Errorf("server %q tool %q: %w", e.server, e.name, err)
			}
		}
		if prev, ok := routes[final]; ok && prev != (TAGRoute{e.server, e.name}) {
			return nil, nil, fmt.Errorf("tool name %q is used by server %q (tool %q) and server %q (tool %q)",
				final, prev.Server, prev.Tool, e.server, e.name)
		}
		routes[final] = TAGRoute{Server: e.server, Tool: e.name}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(raw)
	}
	buf.WriteByte(']')
	return json.RawMessage(buf.Bytes()), routes, nil
}

// toolName returns the string value of a tool object's top-level "name" key
// (matched exactly, unlike encoding/json's case-insensitive field matching).
func toolName(raw json.RawMessage) (string, error) {
	spans, err := nameSpans(raw)
	if err != nil {
		return "", err
	}
	if len(spans) == 0 {
		return "", fmt.Errorf("tool has no \"name\"")
	}
	last := spans[len(spans)-1] // a duplicate key: the last one wins, as in JSON.parse
	var name string
	if err := json.Unmarshal(raw[last[0]:last[1]], &name); err != nil {
		return "", fmt.Errorf("tool \"name\" is not a string")
	}
	if name == "" {
		return "", fmt.Errorf("tool \"name\" is empty")
	}
	return name, nil
}

// renameTool replaces the value of every top-level "name" key and leaves
// every other byte as it was.
func renameTool(raw json.RawMessage, name string) (json.RawMessage, error) {
	spans, err := nameSpans(raw)
	if err != nil {
		return nil, err
	}
	var q bytes.Buffer
	enc := json.NewEncoder(&q)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(name); err != nil {
		return nil, err
	}
	quoted := bytes.TrimSuffix(q.Bytes(), []byte("\n"))
	out := make([]byte, 0, len(raw)+len(quoted))
	prev := 0
	for _, sp := range spans {
		out = append(out, raw[prev:sp[0]]...)
		out = append(out, quoted...)
		prev = sp[1]
	}
	out = append(out, raw[prev:]...)
	return out, nil
}

// nameSpans returns the byte ranges of the values of the top-level "name"
// keys of a JSON object, in order.
func nameSpans(raw json.RawMessage) ([][2]int, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("tool is not a JSON object")
	}
	var spans [][2]int
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("tool object: %w", err)
		}
		key, _ := tok.(string)
		keyEnd := int(dec.InputOffset())
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("tool object: %w", err)
		}
		if key != "name" {
			continue
		}
		// The value starts after the colon and any white space around it.
		start := keyEnd
		for start < len(raw) && (isJSONSpace(raw[start]) || raw[start] == ':') {
			start++
		}
		spans = append(spans, [2]int{start, int(dec.InputOffset())})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, fmt.Errorf("tool object is not closed")
	}
	return spans, nil
}

func isJSONSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }
