package mcpchild

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tether-dev/tether/internal/mcpwire"
)

func TestShapeFor(t *testing.T) {
	initRes := `{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{"completions":{},"logging":{},"tasks":{"list":{}},"tools":{"listChanged":true}},"serverInfo":{"name":"s","title":"S","version":"1","icons":[{"src":"x.png"}],"websiteUrl":"https://x"}}}`
	toolsRes := `{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"t","title":"T","description":"d","inputSchema":{"type":"object","properties":{"title":{"type":"string"}}},"outputSchema":{"type":"object"},"annotations":{"readOnlyHint":true},"icons":[{"src":"i"}],"execution":{"taskSupport":"optional"},"_meta":{"k":1}}]}}`
	callRes := `{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"hi","_meta":{"a":1},"annotations":{"audience":["user"],"lastModified":"2025-01-01T00:00:00Z"}},{"type":"audio","data":"AAAA","mimeType":"audio/wav"},{"type":"resource_link","uri":"file:///a.txt","name":"a","mimeType":"text/plain"},{"type":"resource","resource":{"uri":"x:y","text":"t","_meta":{}}}],"structuredContent":{"x":1},"isError":false}}`
	promptsRes := `{"jsonrpc":"2.0","id":4,"result":{"prompts":[{"name":"p","title":"P","icons":[],"arguments":[{"name":"a","title":"A","required":true}]}]}}`
	resourcesRes := `{"jsonrpc":"2.0","id":5,"result":{"resources":[{"uri":"x:y","name":"n","title":"N","_meta":{},"annotations":{"priority":1,"lastModified":"z"}}]}}`
	getPromptRes := `{"jsonrpc":"2.0","id":6,"result":{"messages":[{"role":"user","content":{"type":"resource_link","uri":"file:///b","name":"b"}}]}}`
	progress := `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1,"message":"half"}}`
	elicitDone := `{"jsonrpc":"2.0","method":"notifications/elicitation/complete","params":{"elicitationId":"e"}}`

	for _, c := range []struct {
		name, v, in, want string
	}{
		{"init 2024", v20241105, initRes, `{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{"logging":{},"tools":{"listChanged":true}},"serverInfo":{"name":"s","version":"1"}}}`},
		{"init 2025-03", v20250326, initRes, `{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{"completions":{},"logging":{},"tools":{"listChanged":true}},"serverInfo":{"name":"s","version":"1"}}}`},
		{"init 2025-06", v20250618, initRes, `{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{"completions":{},"logging":{},"tools":{"listChanged":true}},"serverInfo":{"name":"s","title":"S","version":"1"}}}`},
		{"tools 2024", v20241105, toolsRes, `{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"t","description":"d","inputSchema":{"type":"object","properties":{"title":{"type":"string"}}}}]}}`},
		{"tools 2025-03", v20250326, toolsRes, `{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"t","description":"d","inputSchema":{"type":"object","properties":{"title":{"type":"string"}}},"annotations":{"readOnlyHint":true}}]}}`},
		{"tools 2025-06", v20250618, toolsRes, `{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"t","title":"T","description":"d","inputSchema":{"type":"object","properties":{"title":{"type":"string"}}},"outputSchema":{"type":"object"},"annotations":{"readOnlyHint":true},"_meta":{"k":1}}]}}`},
		{"call 2024", v20241105, callRes, `{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"hi","annotations":{"audience":["user"]}},{"type":"text","text":"[audio content omitted (audio/wav): MCP 2024-11-05 has no audio content]"},{"type":"text","text":"[resource link: file:///a.txt (a), text/plain]"},{"type":"resource","resource":{"uri":"x:y","text":"t"}}],"isError":false}}`},
		{"call 2025-03", v20250326, callRes, `{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"hi","annotations":{"audience":["user"]}},{"type":"audio","data":"AAAA","mimeType":"audio/wav"},{"type":"text","text":"[resource link: file:///a.txt (a), text/plain]"},{"type":"resource","resource":{"uri":"x:y","text":"t"}}],"isError":false}}`},
		{"call 2025-06", v20250618, callRes, callRes},
		{"prompts 2024", v20241105, promptsRes, `{"jsonrpc":"2.0","id":4,"result":{"prompts":[{"name":"p","arguments":[{"name":"a","required":true}]}]}}`},
		{"prompts 2025-06", v20250618, promptsRes, `{"jsonrpc":"2.0","id":4,"result":{"prompts":[{"name":"p","title":"P","arguments":[{"name":"a","title":"A","required":true}]}]}}`},
		{"resources 2025-03", v20250326, resourcesRes, `{"jsonrpc":"2.0","id":5,"result":{"resources":[{"uri":"x:y","name":"n","annotations":{"priority":1}}]}}`},
		{"get prompt 2025-03", v20250326, getPromptRes, `{"jsonrpc":"2.0","id":6,"result":{"messages":[{"role":"user","content":{"type":"text","text":"[resource link: file:///b (b)]"}}]}}`},
		{"progress 2024", v20241105, progress, `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}`},
		{"progress 2025-03", v20250326, progress, progress},
		{"elicitation complete 2025-06", v20250618, elicitDone, ""},
		{"unknown content type", v20250326, `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"hologram"}]}}`, `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"[content of type \"hologram\" omitted: MCP 2025-03-26 does not have it]"}]}}`},
		{"error untouched", v20241105, `{"jsonrpc":"2.0","id":8,"error":{"code":1,"message":"m"}}`, `{"jsonrpc":"2.0","id":8,"error":{"code":1,"message":"m"}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := shapeFor(c.v, []byte(c.in))
			if string(got) != c.want {
				t.Fatalf("shapeFor(%s)\n got %s\nwant %s", c.v, got, c.want)
			}
		})
	}
}

// TestShapeForUnchangedIsSameBytes: nothing to change means the same
// bytes, not a copy (the hot path of a message that needs nothing).
func TestShapeForUnchangedIsSameBytes(t *testing.T) {
	msg := []byte(`{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"hi"}],"isError":false}}`)
	if got := shapeFor(v20241105, msg); !sameBytes(got, msg) {
		t.Fatalf("shapeFor copied an unchanged message: %s", got)
	}
}

// TestShapeForDuplicateMembers: a nested object the shaper must walk that
// names a member twice cannot be vouched for: the client gets an error.
func TestShapeForDuplicateMembers(t *testing.T) {
	msg := []byte(`{"jsonrpc":"2.0","id":9,"result":{"tools":[{"name":"t","title":"a","title":"b"}]}}`)
	got := shapeFor(v20250326, msg)
	var r struct {
		ID    int `json:"id"`
		Error *struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(got, &r); err != nil || r.ID != 9 || r.Error == nil || r.Error.Code != mcpwire.CodeInternal {
		t.Fatalf("shapeFor = %s, want an internal error for id 9", got)
	}
}

func TestNeedsShape(t *testing.T) {
	v26 := mcpwire.Version2026
	for _, c := range []struct {
		v, child string
		want     bool
	}{
		{"", v20251125, false}, {"0", v20251125, false}, {"2025-01-01", v20251125, false},
		{v20241105, v20251125, true}, {v20250326, v20251125, true}, {v20250618, v20251125, true},
		{v20251125, v20251125, false}, {v26, v20251125, false},
		{v20251125, v26, true}, {v20241105, v26, true}, {v26, v26, false}, {"", v26, false},
	} {
		if got := needsShape(c.v, c.child); got != c.want {
			t.Errorf("needsShape(%q, %q) = %v, want %v", c.v, c.child, got, c.want)
		}
	}
}

// TestShapeFor2026Child: a 2026 child's results carry resultType and the
// cache hints, which no 2025-era client has.
func TestShapeFor2026Child(t *testing.T) {
	in := `{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","tools":[{"name":"t","icons":[]}],"ttlMs":1000,"cacheScope":"public"}}`
	for v, want := range map[string]string{
		v20251125: `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"t","icons":[]}]}}`,
		v20250618: `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"t"}]}}`,
	} {
		if got := shapeFor(v, []byte(in)); string(got) != want {
			t.Errorf("shapeFor(%s)\n got %s\nwant %s", v, got, want)
		}
	}
	caps := `{"jsonrpc":"2.0","id":2,"result":{"capabilities":{"extensions":{"x":{}},"tools":{}}}}`
	if got := shapeFor(v20251125, []byte(caps)); string(got) != `{"jsonrpc":"2.0","id":2,"result":{"capabilities":{"tools":{}}}}` {
		t.Errorf("capabilities for 2025-11-25 = %s", got)
	}
}

// FuzzShapeFor: shaped output is always one valid JSON value (or nil, not
// sent), and never holds a member or content type the version lacks where
// the shaper looks.
func FuzzShapeFor(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"result":{"capabilities":{"completions":{},"tasks":{}},"serverInfo":{"name":"s","title":"t","icons":[]}}}`,
		`{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"t","title":"T","outputSchema":{},"annotations":{},"icons":[],"execution":{},"_meta":{}}]}}`,
		`{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"audio","data":"A"},{"type":"resource_link","uri":"u\"x","name":"\u006e"},{"type":"text","text":"x","_meta":{}}],"structuredContent":{}}}`,
		`{"jsonrpc":"2.0","id":4,"result":{"prompts":[{"name":"p","title":"P","arguments":[{"name":"a","title":"A"}]}],"resources":[{"uri":"u","_meta":{}}]}}`,
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1,"message":"m"}}`,
		`{"jsonrpc":"2.0","id":5,"result":{"messages":[{"role":"user","content":{"type":"audio"}}],"contents":[{"uri":"u","_meta":{}}]}}`,
		`{"jsonrpc":"2.0","id":6,"result":{"\u0074ools":[{"name":"t","\u0074itle":"T"}]}}`,
		`{"jsonrpc":"2.0","id":7,"result":{"resultType":"complete","ttlMs":1,"cacheScope":"x","capabilities":{"extensions":{}}}}`,
		`{"jsonrpc":"2.0","id":8,"method":"sampling/createMessage","params":{"messages":[{"role":"user","content":[{"type":"tool_use","name":"n"},{"type":"audio"}],"_meta":{}}],"tools":[],"toolChoice":{},"task":{}}}`,
		`{"jsonrpc":"2.0","id":9,"method":"elicitation/create","params":{"mode":"form","message":"m","requestedSchema":{"$schema":"s","properties":{"a":{"type":"string","oneOf":[{"const":"x","title":"X"}],"default":"x"},"b":{"type":"boolean","default":true},"c":{"type":"number","default":1}}}}}`,
	} {
		for _, v := range []string{v20241105, v20250326, v20250618, v20251125} {
			f.Add(v, s)
		}
	}
	f.Fuzz(func(t *testing.T, v string, in string) {
		if !needsShape(v, mcpwire.Version2026) {
			return
		}
		msg := []byte(in)
		if _, err := parseMessage(msg); err != nil {
			return // the read loop passes on only valid JSON-RPC messages
		}
		out := shapeFor(v, msg)
		if out == nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("shapeFor(%s, %s) = %s: not valid JSON", v, msg, out)
		}
		checkRequest(t, v, out)
		var m struct {
			Result map[string]json.RawMessage `json:"result"`
		}
		if json.Unmarshal(out, &m) != nil || m.Result == nil {
			return
		}
		for k := range m.Result {
			if resultSince.lacks(v, []byte(k)) || callResultSince.lacks(v, []byte(k)) {
				t.Fatalf("%s kept result.%s: %s", v, k, out)
			}
		}
		checkEach := func(key string, t2 since) {
			var objs []map[string]json.RawMessage
			if json.Unmarshal(m.Result[key], &objs) != nil {
				return
			}
			for _, o := range objs {
				for k := range o {
					if t2.lacks(v, []byte(k)) {
						t.Fatalf("%s kept %s.%s: %s", v, key, k, out)
					}
				}
			}
		}
		checkEach("tools", toolSince)
		checkEach("resources", metadataSince)
		checkEach("prompts", metadataSince)
		checkEach("contents", contentSince)
		// Content blocks have not changed since contentChangedIn (through
		// 2026-07-28's schema.ts, ContentBlock is the same five types), so
		// clients of it or later get content unwalked.
		var content []map[string]json.RawMessage
		if json.Unmarshal(m.Result["content"], &content) == nil && v < contentChangedIn {
			for _, b := range content {
				var typ string
				if json.Unmarshal(b["type"], &typ) != nil {
					continue // not a string: not a content block the shaper can name
				}
				if first, ok := contentTypeSince[typ]; !ok || v < first {
					t.Fatalf("%s kept content type %q: %s", v, typ, out)
				}
				if _, ok := b["_meta"]; ok && contentSince.lacks(v, []byte("_meta")) {
					t.Fatalf("%s kept a content block's _meta: %s", v, out)
				}
			}
		}
		var caps map[string]json.RawMessage
		if json.Unmarshal(m.Result["capabilities"], &caps) == nil {
			for k := range caps {
				if serverCapsSince.lacks(v, []byte(k)) {
					t.Fatalf("%s kept capability %s: %s", v, k, out)
				}
			}
		}
		if strings.Contains(string(out), `"notifications/elicitation/complete"`) && v < v20251125 && strings.HasPrefix(in, `{"jsonrpc":"2.0","method":"notifications/elicitation/complete"`) {
			t.Fatalf("%s was sent notifications/elicitation/complete", v)
		}
	})
}

// TestShapeRequestParams: server→client requests in each version's shape
// (shapereq.go), and the ones that cannot be, refused with a reason.
func TestShapeRequestParams(t *testing.T) {
	sampling := `{"messages":[{"role":"user","content":{"type":"audio","data":"AA","mimeType":"audio/wav","_meta":{"m":1}},"_meta":{"x":1}},{"role":"assistant","content":[{"type":"text","text":"let me look"},{"type":"tool_use","id":"c1","name":"search","input":{}}]},{"role":"user","content":[{"type":"tool_result","toolUseId":"c1","content":[]}]}],"maxTokens":9,"tools":[{"name":"search","inputSchema":{"type":"object"}}],"toolChoice":{"mode":"auto"},"task":{"ttl":1},"_meta":{"progressToken":1}}`
	elicit := `{"mode":"form","message":"m","task":{},"requestedSchema":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"color":{"type":"string","title":"Color","oneOf":[{"const":"r","title":"Red"},{"const":"g"}],"default":"r"},"size":{"type":"string","enum":["s","m"],"default":"m"},"n":{"type":"integer","default":3},"ok":{"type":"boolean","default":true},"legacy":{"type":"string","enum":["a"],"enumNames":["A"],"default":"a"}},"required":["color"]}}`
	for _, c := range []struct {
		name, v, method, in, want, why string
	}{
		{"sampling 2025-11-25", v20251125, "sampling/createMessage", sampling, sampling, ""},
		{"sampling 2025-06-18", v20250618, "sampling/createMessage", sampling,
			`{"messages":[{"role":"user","content":{"type":"audio","data":"AA","mimeType":"audio/wav","_meta":{"m":1}}},{"role":"assistant","content":{"type":"text","text":"let me look"}},{"role":"assistant","content":{"type":"text","text":"[tool use omitted: search (c1): MCP 2025-06-18 has no tools in sampling]"}},{"role":"user","content":{"type":"text","text":"[tool result omitted for c1: MCP 2025-06-18 has no tools in sampling]"}}],"maxTokens":9,"_meta":{"progressToken":1}}`, ""},
		{"sampling 2025-03-26", v20250326, "sampling/createMessage", `{"messages":[{"role":"user","content":{"type":"audio","data":"AA","mimeType":"audio/wav","_meta":{"m":1}}}],"maxTokens":9}`,
			`{"messages":[{"role":"user","content":{"type":"audio","data":"AA","mimeType":"audio/wav"}}],"maxTokens":9}`, ""},
		{"sampling 2024-11-05", v20241105, "sampling/createMessage", `{"messages":[{"role":"user","content":{"type":"audio","data":"AA","mimeType":"audio/wav"}},{"role":"user","content":[]}],"maxTokens":9}`,
			`{"messages":[{"role":"user","content":{"type":"text","text":"[audio content omitted (audio/wav): MCP 2024-11-05 has no audio content]"}},{"role":"user","content":{"type":"text","text":""}}],"maxTokens":9}`, ""},
		{"elicitation 2025-11-25", v20251125, "elicitation/create", elicit, elicit, ""},
		{"elicitation 2025-06-18", v20250618, "elicitation/create", elicit,
			`{"message":"m","requestedSchema":{"type":"object","properties":{"color":{"enumNames":["Red","g"],"enum":["r","g"],"type":"string","title":"Color"},"size":{"type":"string","enum":["s","m"]},"n":{"type":"integer"},"ok":{"type":"boolean","default":true},"legacy":{"type":"string","enum":["a"],"enumNames":["A"]}},"required":["color"]}}`, ""},
		{"elicitation url mode", v20250618, "elicitation/create", `{"mode":"url","message":"m","url":"https://x","elicitationId":"e"}`, "", `elicitation mode "url"`},
		{"elicitation multi-select", v20250618, "elicitation/create", `{"message":"m","requestedSchema":{"type":"object","properties":{"tags":{"type":"array","items":{"type":"string","enum":["a","b"]}}}}}`, "", "tags is a multi-select"},
		{"elicitation duplicate", v20250618, "elicitation/create", `{"message":"m","message":"n"}`, "", "twice"},
		{"roots untouched", v20241105, "roots/list", `{"_meta":{"progressToken":1}}`, `{"_meta":{"progressToken":1}}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, why := shapeRequestParams(c.v, c.method, []byte(c.in))
			if c.why != "" {
				if !strings.Contains(why, c.why) {
					t.Fatalf("why = %q, want it to say %q", why, c.why)
				}
				return
			}
			if why != "" || string(got) != c.want {
				t.Fatalf("shapeRequestParams(%s)\n got %s (%q)\nwant %s", c.v, got, why, c.want)
			}
		})
	}
	// shapeFor applies it to the whole request.
	req := `{"jsonrpc":"2.0","id":"q","method":"sampling/createMessage","params":{"messages":[],"maxTokens":1,"tools":[]}}`
	if got := shapeFor(v20250618, []byte(req)); string(got) != `{"jsonrpc":"2.0","id":"q","method":"sampling/createMessage","params":{"messages":[],"maxTokens":1}}` {
		t.Fatalf("shapeFor(sampling) = %s", got)
	}
}

// checkRequest fails when a shaped server→client request holds what
// version v lacks where the shaper looks.
func checkRequest(t *testing.T, v string, out []byte) {
	// Maps, not structs: encoding/json matches struct fields without
	// regard to case, the shaper (like the client's schema) exactly.
	var top, params map[string]json.RawMessage
	var method string
	if json.Unmarshal(out, &top) != nil || json.Unmarshal(top["method"], &method) != nil || json.Unmarshal(top["params"], &params) != nil || params == nil {
		return
	}
	r := struct {
		Method string
		Params map[string]json.RawMessage
	}{method, params}
	switch r.Method {
	case "sampling/createMessage":
		for k := range r.Params {
			if samplingSince.lacks(v, []byte(k)) {
				t.Fatalf("%s kept sampling param %s: %s", v, k, out)
			}
		}
		var msgs []map[string]json.RawMessage
		if json.Unmarshal(r.Params["messages"], &msgs) != nil || v >= samplingChangedIn {
			return
		}
		for _, m := range msgs {
			if _, ok := m["_meta"]; ok {
				t.Fatalf("%s kept a sampling message's _meta: %s", v, out)
			}
			var blocks []json.RawMessage
			if json.Unmarshal(m["content"], &blocks) == nil {
				t.Fatalf("%s got an array of content blocks: %s", v, out)
			}
			var b map[string]json.RawMessage
			var typ string
			if json.Unmarshal(m["content"], &b) == nil && json.Unmarshal(b["type"], &typ) == nil {
				if first, ok := samplingTypeSince[typ]; ok && v < first {
					t.Fatalf("%s got a %s block: %s", v, typ, out)
				}
			}
		}
	case "elicitation/create":
		if v >= elicitChangedIn {
			return
		}
		for k := range r.Params {
			if elicitSince.lacks(v, []byte(k)) {
				t.Fatalf("%s kept elicitation param %s: %s", v, k, out)
			}
		}
		var schema map[string]json.RawMessage
		var props map[string]map[string]json.RawMessage
		if json.Unmarshal(r.Params["requestedSchema"], &schema) != nil || json.Unmarshal(schema["properties"], &props) != nil {
			return
		}
		for name, p := range props {
			var typ string
			_ = json.Unmarshal(p["type"], &typ)
			_, oneOf := p["oneOf"]
			_, def := p["default"]
			if oneOf || typ == "array" || (def && typ != "boolean") {
				t.Fatalf("%s got field %s in a shape it lacks: %s", v, name, out)
			}
		}
	}
}
