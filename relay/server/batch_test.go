package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// openRawVersion initializes a session of protocol version v over plain
// HTTP and returns its id.
func openRawVersion(t *testing.T, hc *http.Client, url, v string) string {
	t.Helper()
	resp, body := rawPost(t, hc, url, "", strings.Replace(initBody, "2025-06-18", v, 1))
	sid := resp.Header.Get(headerSession)
	if resp.StatusCode != 200 || sid == "" {
		t.Fatalf("initialize %s: %d %q session %q", v, resp.StatusCode, body, sid)
	}
	rawPost(t, hc, url, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return sid
}

// TestBatchFor2025_03_26: a 2025-03-26 client may POST a JSON-RPC batch
// (its spec: receivers MUST support them). The relay splits it into single
// messages for the bridge and answers one JSON array, in the order of the
// batch's requests; initialize in a batch is answered with an error; a batch
// of notifications only is 202. Any other version's session, and a POST
// without a session, are refused with a clear error.
func TestBatchFor2025_03_26(t *testing.T) {
	r := newTestRelay(t, 10*time.Second)
	dialFakeBridge(t, r, "alice")
	hc := authClient(mustToken(t, "alice", ScopeClient))
	url := r.mcpURL("alice", "everything")
	sid := openRawVersion(t, hc, url, "2025-03-26")

	batch := `[{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo","arguments":{"message":"one"}}},` +
		`{"jsonrpc":"2.0","method":"notifications/roots/list_changed"},` +
		`{"jsonrpc":"2.0","id":7,"method":"tools/list"},` +
		`{"jsonrpc":"2.0","id":"c","method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"x","version":"1"}}},` +
		`{"jsonrpc":"2.0","id":"d","method":"tools/call","params":{"name":"echo","arguments":{"message":"two"}}}]`
	resp, body := rawPost(t, hc, url, sid, batch)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("batch: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var answers []struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &answers); err != nil {
		t.Fatalf("batch answer %q: %v", body, err)
	}
	var ids []string
	for _, a := range answers {
		ids = append(ids, string(a.ID))
	}
	if got := strings.Join(ids, " "); got != `"a" 7 "c" "d"` {
		t.Fatalf("answer ids = %s, want \"a\" 7 \"c\" \"d\": %s", got, body)
	}
	if !strings.Contains(string(answers[0].Result), `"one"`) || !strings.Contains(string(answers[3].Result), `"two"`) {
		t.Errorf("tools/call answers: %s", body)
	}
	if !strings.Contains(string(answers[1].Result), `"echo"`) {
		t.Errorf("tools/list answer: %s", answers[1].Result)
	}
	if answers[2].Error == nil || !strings.Contains(answers[2].Error.Message, "initialize must not be part") {
		t.Errorf("initialize in a batch: %s", body)
	}

	resp, body = rawPost(t, hc, url, sid, `[{"jsonrpc":"2.0","method":"notifications/roots/list_changed"},{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}]`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notifications-only batch: %d %q", resp.StatusCode, body)
	}

	// The session still takes single messages after its batches.
	if resp, body := rawPost(t, hc, url, sid, listBody); resp.StatusCode != 200 || !strings.Contains(body, `"echo"`) {
		t.Fatalf("tools/list after batches: %d %q", resp.StatusCode, body)
	}

	for _, c := range []struct{ name, sid, want string }{
		{"2025-06-18 session", openRawVersion(t, hc, url, "2025-06-18"), "MCP 2025-06-18 has no batches"},
		{"no session", "", "JSON-RPC batches are not supported; send one message per POST"},
	} {
		resp, body := rawPost(t, hc, url, c.sid, `[`+listBody+`]`)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, c.want) {
			t.Errorf("%s: batch = %d %q, want 400 saying %q", c.name, resp.StatusCode, body, c.want)
		}
	}
}
