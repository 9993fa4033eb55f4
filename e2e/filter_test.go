package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testbin"
)

// TestToolFilterBypassThroughRelay: the spellings of a denied tool's name
// that a reader of the first raw "name" member would miss are refused
// through the real relay and bridge, in a 2025-11-25 session and in
// 2026-07-28 stateless requests (to a 2025-only child, so they are
// translated), and the child never sees the call. A 2026 request carries
// Mcp-Name; the sly client sets it to what the relay reads ("x"), so the
// only thing between it and the child is the bridge's filter — except for a
// name given twice, which the relay itself refuses (no single name to
// match).
func TestToolFilterBypassThroughRelay(t *testing.T) {
	r := startRelay(t)
	bin := testbin.Build(t, "./internal/testservers/mcpserver")
	calls := filepath.Join(t.TempDir(), "calls.log")
	cfg := writeConfig(t, map[string]any{"guarded": map[string]any{
		"command": bin, "args": []string{"-era", "legacy", "-call-log", calls},
		"deny": []string{"echo"},
	}})
	startTetherd(t, r.token(t, dev, "bridge"), nil, "run", "--config", cfg, "--relay", r.url(), "--dev-id", dev)
	tok := r.token(t, dev, "client")
	r.waitServing(t, dev, tok, "guarded", 30*time.Second)

	cases := []struct {
		params  string
		mcpName string // what the relay reads as params.name
		code    map[string]int
	}{
		{`{"name":"x","name":"echo","arguments":{"text":"hi"}}`, "x",
			map[string]int{"2025-11-25": -32600, "2026-07-28": -32020}},
		{`{"\u006eame":"echo","arguments":{"text":"hi"}}`, "echo",
			map[string]int{"2025-11-25": -32602, "2026-07-28": -32602}},
		{`{"name":"x","Name":"echo","arguments":{"text":"hi"}}`, "x",
			map[string]int{"2025-11-25": -32602, "2026-07-28": -32602}},
	}
	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(version, func(t *testing.T) {
			c := newRawClient(t, r, tok, "guarded", version)
			meta := ""
			if modern(version) {
				meta = `,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
					`"io.modelcontextprotocol/clientInfo":{"name":"sly","version":"1"},` +
					`"io.modelcontextprotocol/clientCapabilities":{}}`
			}
			for i, tc := range cases {
				params := strings.TrimSuffix(tc.params, "}") + meta + "}"
				body := `{"jsonrpc":"2.0","id":` + strconv.Itoa(100+i) + `,"method":"tools/call","params":` + params + `}`
				req, _ := http.NewRequestWithContext(ctx10(t), http.MethodPost, c.url, bytes.NewReader([]byte(body)))
				c.headers(req)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				if modern(version) {
					req.Header.Set("Mcp-Method", "tools/call")
					req.Header.Set("Mcp-Name", tc.mcpName)
				}
				resp, err := c.http.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var answer json.RawMessage
				readMessages(resp, func(m json.RawMessage) bool { answer = m; return true })
				resp.Body.Close()
				var msg struct {
					Result json.RawMessage `json:"result"`
					Error  *struct {
						Code int `json:"code"`
					} `json:"error"`
				}
				if json.Unmarshal(answer, &msg) != nil || msg.Error == nil || msg.Error.Code != tc.code[version] {
					t.Errorf("tools/call with params %s: HTTP %d %s, want error %d", params, resp.StatusCode, answer, tc.code[version])
				}
			}
			// The session works, and the child logs what reaches it.
			res, errObj, _ := c.tool(ctx10(t), "sleep", map[string]any{"ms": 1}, nil)
			if got, _ := text0(res); errObj != nil || got != "slept" {
				t.Fatalf("sleep = %s %s", res, errObj)
			}
		})
	}
	toolCalls := callLines(t, calls, "tools/call")
	if len(toolCalls) != 2 || !strings.Contains(toolCalls[0], `"name":"sleep"`) || !strings.Contains(toolCalls[1], `"name":"sleep"`) {
		t.Fatalf("the child saw tools/call %q, want the two allowed sleeps only", toolCalls)
	}
}
