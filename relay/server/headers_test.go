package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/mcpwire"
)

// TestHeaderMismatch: a 2026-07-28 request whose Mcp-Method or Mcp-Name
// header disagrees with its body — what a gateway in front of the relay
// decides on versus what the server acts on — is refused with 400 and
// -32020 before it reaches the bridge; names are compared decoded, and a
// body naming "name" twice has no single value to match. A request is
// 2026-07-28 by its version header, its body's _meta or its method
// (server/discover), as for serving it statelessly.
func TestHeaderMismatch(t *testing.T) {
	call := func(params string) string {
		return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + params + `}`
	}
	meta := `"_meta":{"` + mcpwire.MetaProtocolVersion + `":"2026-07-28"}`
	cases := []struct {
		name     string
		version  string
		method   string // Mcp-Method; "-" leaves it out
		mcpName  string // Mcp-Name; "-" leaves it out
		body     string
		mismatch bool
	}{
		{"agrees", "2026-07-28", "tools/call", "echo", call(`{"name":"echo","arguments":{"message":"hi"},` + meta + `}`), false},
		{"escaped name agrees decoded", "2026-07-28", "tools/call", "echo", call(`{"name":"\u0065cho","arguments":{"message":"hi"},` + meta + `}`), false},
		{"2025 has no such headers", "2025-11-25", "-", "-", call(`{"name":"echo","arguments":{"message":"hi"}}`), false},
		{"method missing", "2026-07-28", "-", "echo", call(`{"name":"echo",` + meta + `}`), true},
		{"method differs", "2026-07-28", "tools/list", "echo", call(`{"name":"echo",` + meta + `}`), true},
		{"name missing", "2026-07-28", "tools/call", "-", call(`{"name":"echo",` + meta + `}`), true},
		{"name differs", "2026-07-28", "tools/call", "echo", call(`{"name":"add",` + meta + `}`), true},
		{"name twice", "2026-07-28", "tools/call", "echo", call(`{"name":"echo","name":"add",` + meta + `}`), true},
		{"name twice, once escaped", "2026-07-28", "tools/call", "add", call(`{"name":"echo","\u006eame":"add",` + meta + `}`), true},
		{"name not a string", "2026-07-28", "tools/call", "1", call(`{"name":1,` + meta + `}`), true},
		{"resources/read uri", "2026-07-28", "resources/read", "file:///a", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///b",` + meta + `}}`, true},
		// No version header: the body's _meta (or server/discover) makes the
		// request 2026-07-28 — it is served statelessly — so it is checked.
		{"_meta 2026 without version header agrees", "", "tools/call", "echo", call(`{"name":"echo","arguments":{"message":"hi"},` + meta + `}`), false},
		{"_meta 2026 without version header, method missing", "", "-", "echo", call(`{"name":"echo",` + meta + `}`), true},
		{"_meta 2026 without version header, name differs", "", "tools/call", "echo", call(`{"name":"add",` + meta + `}`), true},
		{"_meta 2026 without version header, name twice", "", "tools/call", "add", call(`{"name":"echo","name":"add",` + meta + `}`), true},
		{"_meta 2026 under a 2025 version header", "2025-11-25", "tools/call", "echo", call(`{"name":"add",` + meta + `}`), true},
		{"server/discover without version header, method missing", "", "-", "-", `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}`, true},
	}
	r := newTestRelay(t, 5*time.Second)
	dialFakeBridge(t, r, "alice")
	hc := authClient(mustToken(t, "alice", ScopeClient))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", r.mcpURL("alice", "everything"), strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if tc.version != "" {
				req.Header.Set(headerProtocol, tc.version)
			}
			if tc.method != "-" {
				req.Header.Set(headerMethod, tc.method)
			}
			if tc.mcpName != "-" {
				req.Header.Set(headerName, tc.mcpName)
			}
			if tc.version != "" && tc.version < mcpwire.Version2026 {
				// A 2025 request needs a session; the check comes first
				// either way, so an unknown session id (404) proves it passed.
				req.Header.Set(headerSession, "no-such-session")
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			var msg struct {
				Error *struct {
					Code int `json:"code"`
				} `json:"error"`
			}
			json.Unmarshal([]byte(body), &msg)
			refused := resp.StatusCode == http.StatusBadRequest && msg.Error != nil && msg.Error.Code == mcpwire.CodeHeaderMismatch
			if refused != tc.mismatch {
				t.Fatalf("status %d body %s; want refused=%v", resp.StatusCode, body, tc.mismatch)
			}
		})
	}
}

// FuzzHeaderName: whatever the body, a name the check accepts is exactly
// the decoded params member encoding/json reads (the server's view).
func FuzzHeaderName(f *testing.F) {
	for _, s := range []string{`{"name":"echo"}`, `{"name":"e\u0063ho"}`, `{"name":"a","name":"b"}`, `{"\u006eame":"x"}`, `{"name":"\ud800"}`, `{"uri":1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, params string) {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + params + `}`
		pk, ok := peekMessage([]byte(body))
		if !ok || !pk.NameOK {
			return
		}
		var p struct {
			Name *string `json:"name"`
		}
		if err := json.Unmarshal([]byte(params), &p); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", params, err)
		}
		if p.Name == nil || *p.Name != pk.Name {
			t.Fatalf("check read name %q, encoding/json reads %v", pk.Name, p.Name)
		}
	})
}
