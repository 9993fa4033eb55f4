package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestHostAllowed(t *testing.T) {
	t.Parallel()
	s := &Server{PublicURLs: []string{"https://relay.example.com", "http://Other.Example:8080/prefix"}}
	for host, want := range map[string]bool{
		"127.0.0.1:8080":                 true,
		"[::1]:8080":                     true,
		"localhost":                      true,
		"localhost.:80":                  true,
		"app.localhost":                  true,
		"10.231.2.2:8080":                true, // an IP literal cannot be rebound
		"relay.example.com":              true,
		"RELAY.example.com:443":          true,
		"other.example":                  true,
		"evil.example":                   false,
		"relay.example.com.evil.example": false,
		"":                               false,
	} {
		if got := s.hostAllowed(host); got != want {
			t.Errorf("hostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestOriginAllowed(t *testing.T) {
	t.Parallel()
	s := &Server{PublicURLs: []string{"https://relay.example.com"}, AllowOrigins: []string{"https://App.Example.com"}}
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/mcp/a/b", nil)
	for origin, want := range map[string]bool{
		"https://app.example.com":      true,
		"https://relay.example.com":    true, // the relay's own page
		"http://127.0.0.1:8080":        true, // same origin as asked
		"https://evil.example":         false,
		"https://app.example.com.evil": false,
		"http://app.example.com":       false, // another scheme is another origin
		"null":                         false,
		"garbage":                      false,
	} {
		if got := s.originAllowed(origin, r); got != want {
			t.Errorf("originAllowed(%q) = %v, want %v", origin, got, want)
		}
	}
	if !(&Server{AllowOrigins: []string{"*"}}).originAllowed("https://anything.example", r) {
		t.Error(`"*" should allow any origin`)
	}
}

// TestBrowserGuard: through the real relay, a foreign Origin is refused
// even with a valid token (DNS rebinding, the spec's MUST), a Host that is
// not the relay's gets 421, and an allowed origin gets CORS headers and its
// preflight answered.
func TestBrowserGuard(t *testing.T) {
	r := startRelay(t, &Server{Verifier: &Verifier{Secret: testSecret}, CallTimeout: time.Second,
		AllowOrigins: []string{"https://inspector.example"}})
	tok := mustToken(t, "alice", "client")
	do := func(method, host, origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, r.mcpURL("alice", "x"), strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if host != "" {
			req.Host = host
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := do(http.MethodPost, "", "https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Origin with a valid token: %d, want 403", resp.StatusCode)
	}
	if resp := do(http.MethodPost, "evil.example", ""); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("foreign Host: %d, want 421", resp.StatusCode)
	}
	// No Origin (not a browser): past the guard, to the offline bridge.
	if resp := do(http.MethodPost, "", ""); resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusMisdirectedRequest {
		t.Errorf("a non-browser client was refused by the guard: %d", resp.StatusCode)
	}
	resp := do(http.MethodPost, "", "https://inspector.example")
	if resp.StatusCode == http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "https://inspector.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Mcp-Session-Id") {
		t.Errorf("allowed origin: %d, headers %v", resp.StatusCode, resp.Header)
	}
	resp = do(http.MethodOptions, "", "https://inspector.example")
	if resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Mcp-Session-Id") {
		t.Errorf("preflight: %d, headers %v", resp.StatusCode, resp.Header)
	}
	// The refusals are counted.
	body := r.metrics(t)
	for _, want := range []string{`tether_relay_refused_total{reason="origin"} 1`, `tether_relay_refused_total{reason="host"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestSlowBodyIsCutOff: headers that promise a body which never comes hold
// no connection past BodyTimeout, with or without a valid token (a 401 is
// sent only after net/http drains the body); a call that takes longer than
// BodyTimeout still lives to its own timeout.
func TestSlowBodyIsCutOff(t *testing.T) {
	r := startRelay(t, &Server{Verifier: &Verifier{Secret: testSecret}, CallTimeout: time.Second, BodyTimeout: 300 * time.Millisecond})
	tok := mustToken(t, "alice", "client")
	dialFakeBridge(t, r, "alice")
	for _, auth := range []string{"", "Authorization: Bearer " + tok + "\r\n"} {
		c, err := net.Dial("tcp", strings.TrimPrefix(r.ts.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /mcp/alice/everything HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: application/json\r\nContent-Length: 100\r\n\r\n", auth)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, c)
		c.Close()
		if err != nil {
			t.Errorf("token %v: the connection stayed open past BodyTimeout: %v", auth != "", err)
		}
	}

	cs := connectClient(t, r.mcpURL("alice", "everything"), tok, "2025-11-25", nil)
	_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{}})
	if err == nil || !strings.Contains(err.Error(), "no answer from the bridge within 1s") {
		t.Fatalf("a call longer than BodyTimeout ended with %v, want the relay's 1 s call timeout", err)
	}
}
