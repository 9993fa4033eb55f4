package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tether-dev/tether/relay/server"
)

// fakeKey is what a careless server prints to its stderr.
const fakeKey = "sk-live-FAKE0123456789abcdefSECRET"

// leakyServers: "leaky" prints the key and then serves (its crash tool
// exits 3 mid-call); "broken" prints the key and exits 3 at once. SHARE is
// replaced by the test's shareStderr setting.
const leakyServers = `{"mcpServers": {
  "leaky": {"command": "sh", "args": ["-c", "echo 'OPENAI_API_KEY=` + fakeKey + `' >&2; exec SERVER"], "shareStderr": SHARE},
  "broken": {"command": "sh", "args": ["-c", "echo 'OPENAI_API_KEY=` + fakeKey + `' >&2; exit 3"], "shareStderr": SHARE}
}}`

// TestStderrReachesRemoteClientsOnlyWhenShared: a server's stderr (here an
// API key) never leaves the machine through the relay — not in the status
// API, not in a failed call, not in a failed initialize — unless its
// mcp.json entry says "shareStderr": true. What does cross is a classified
// error. The local status keeps the full text either way.
func TestStderrReachesRemoteClientsOnlyWhenShared(t *testing.T) {
	for _, share := range []bool{false, true} {
		name := map[bool]string{false: "private", true: "shared"}[share]
		t.Run(name, func(t *testing.T) {
			cfg := strings.ReplaceAll(leakyServers, "SHARE", map[bool]string{false: "false", true: "true"}[share])
			// The relay forwards at once (no wait for a starting server);
			// the bridge waits a short while, then answers with the reason.
			f := startEngine(t, cfg, func(o *EngineOptions) { o.ReadyWait = 300 * time.Millisecond },
				func(s *server.Server) { s.StartWait = -1 })
			f.waitState(t, "leaky ready, connected", func(st State) bool { return ready("leaky")(st) && st.Relay.Phase == "connected" })
			leaked := func(what, text string) {
				t.Helper()
				has := strings.Contains(text, fakeKey)
				if has != share {
					t.Errorf("%s: key shown = %v, want %v (shareStderr %v):\n%s", what, has, share, share, text)
				}
			}

			// The status API, once it shows broken's failure.
			status := waitRelayRaw(t, f, "broken's error", func(raw string) bool {
				return strings.Contains(raw, `"errorKind":"exited"`)
			})
			leaked("status API", status)
			if !share && !strings.Contains(status, `mcp server \"broken\" exited with status 3`) {
				t.Errorf("status API does not say how broken failed:\n%s", status)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// A failed initialize.
			_, err := openSession2025(ctx, f.relay.url+"/mcp/alice/broken", f.client)
			if err == nil {
				t.Fatal("initialize on a server that exits at once succeeded")
			}
			leaked("initialize error", err.Error())
			if !share && !strings.Contains(err.Error(), "exited with status 3") {
				t.Errorf("initialize error does not say how the server failed: %v", err)
			}

			// A call in flight when the server dies.
			cs := mcpSession2025(t, ctx, f.relay.url+"/mcp/alice/leaky", f.client)
			_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "crash", Arguments: map[string]any{}})
			if err == nil {
				t.Fatal("a call whose server crashed succeeded")
			}
			leaked("tools/call error", err.Error())
			if !share && !strings.Contains(err.Error(), "exited with status 3") {
				t.Errorf("tools/call error does not say how the server failed: %v", err)
			}

			// The local user sees everything, shared or not.
			st := f.waitState(t, "broken's stderr in the local state", func(st State) bool {
				v, ok := serverView(st, "broken")
				return ok && strings.Contains(v.LastError, fakeKey)
			})
			v, _ := serverView(st, "broken")
			if !strings.Contains(strings.Join(v.StderrTail, "\n"), fakeKey) {
				t.Errorf("local stderr tail lacks the key: %q", v.StderrTail)
			}
		})
	}
}

// waitRelayRaw polls the relay's status API until its raw JSON satisfies ok.
func waitRelayRaw(t *testing.T, f *engineFixture, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, f.relay.url+"/v1/bridges/"+f.dev, nil)
		req.Header.Set("Authorization", "Bearer "+f.client)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(b)
			if json.Valid(b) && ok(last) {
				return last
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("relay never showed %s; last view %s", what, last)
	return last
}
