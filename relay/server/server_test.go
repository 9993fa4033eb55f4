package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tether-dev/tether/relay"
)

func TestTokenVerify(t *testing.T) {
	v := &Verifier{Secret: testSecret}
	tok, err := Issue(testSecret, "alice", ScopeBridge, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(tok)
	if err != nil || c.Dev != "alice" || !c.HasScope(ScopeBridge) || c.HasScope(ScopeClient) {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	if time.Until(c.Expiry) < 59*time.Minute {
		t.Fatalf("expiry %v", c.Expiry)
	}

	later := &Verifier{Secret: testSecret, Now: func() time.Time { return time.Now().Add(2 * time.Hour) }}
	if _, err := later.Verify(tok); !errors.Is(err, ErrExpiredToken) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := (&Verifier{Secret: []byte("another secret, long enough....")}).Verify(tok); !errors.Is(err, ErrBadToken) {
		t.Fatalf("wrong secret: %v", err)
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "dev:alice", "scope": []string{"bridge"}, "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	if _, err := v.Verify(none); !errors.Is(err, ErrBadToken) {
		t.Fatalf("alg none accepted: %v", err)
	}
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": "dev:alice", "scope": []string{"bridge"}, "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString(testSecret)
	if _, err := v.Verify(hs512); !errors.Is(err, ErrBadToken) {
		t.Fatalf("HS512 accepted: %v", err)
	}
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "dev:alice", "scope": "bridge client"}).SignedString(testSecret)
	if _, err := v.Verify(noExp); !errors.Is(err, ErrBadToken) {
		t.Fatalf("token without exp accepted: %v", err)
	}
	badSub, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(testSecret)
	if _, err := v.Verify(badSub); !errors.Is(err, ErrBadToken) {
		t.Fatalf("sub without dev: accepted: %v", err)
	}
	strScope, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "dev:bob", "scope": "bridge client", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(testSecret)
	if c, err := v.Verify(strScope); err != nil || !c.HasScope(ScopeClient) || !c.HasScope(ScopeBridge) {
		t.Fatalf("space-separated scope: %+v %v", c, err)
	}
	for _, bad := range []string{"", "garbage", "a.b.c"} {
		if _, err := v.Verify(bad); err == nil {
			t.Fatalf("Verify(%q) succeeded", bad)
		}
	}
	if _, err := Issue(testSecret, "bad/dev", ScopeClient, time.Hour); err == nil {
		t.Fatal("Issue accepted a dev id with a slash")
	}
	if _, err := Issue(testSecret, "alice", "admin", time.Hour); err == nil {
		t.Fatal("Issue accepted an unknown scope")
	}
}

func TestAuthTable(t *testing.T) {
	r := newTestRelay(t, 5*time.Second)
	dialFakeBridge(t, r, "alice")
	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "dev:alice", "scope": []string{"client"}, "exp": time.Now().Add(-time.Minute).Unix()}).SignedString(testSecret)
	forged, _ := Issue([]byte("not the relay's secret at all!!"), "alice", ScopeClient, time.Hour)
	mcpURL := r.mcpURL("alice", "everything")
	initBody := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

	cases := []struct {
		name, method, url, token string
		want                     int
	}{
		{"mcp no token", "POST", mcpURL, "", 401},
		{"mcp garbage", "POST", mcpURL, "garbage", 401},
		{"mcp wrong signature", "POST", mcpURL, forged, 401},
		{"mcp expired", "POST", mcpURL, expired, 401},
		{"mcp other dev", "POST", mcpURL, mustToken(t, "bob", ScopeClient), 403},
		{"mcp bridge token", "POST", mcpURL, mustToken(t, "alice", ScopeBridge), 403},
		{"mcp ok", "POST", mcpURL, mustToken(t, "alice", ScopeClient), 200},
		{"status no token", "GET", r.ts.URL + "/v1/bridges/alice", "", 401},
		{"status other dev", "GET", r.ts.URL + "/v1/bridges/alice", mustToken(t, "bob", ScopeClient), 403},
		{"status bridge token", "GET", r.ts.URL + "/v1/bridges/alice", mustToken(t, "alice", ScopeBridge), 200},
		{"connect not an upgrade", "GET", r.ts.URL + "/v1/connect", mustToken(t, "alice", ScopeBridge), 426},
		{"tag not an upgrade", "GET", r.ts.URL + "/dev/alice/connect", "", 426},
		{"connect no token", "GET", r.ts.URL + "/v1/connect", "", 401},
		{"connect client token", "GET", r.ts.URL + "/v1/connect", mustToken(t, "alice", ScopeClient), 403},
		{"connect expired", "GET", r.ts.URL + "/v1/connect", expired, 401},
		{"tag other dev", "GET", r.ts.URL + "/dev/alice/connect", mustToken(t, "bob", ScopeBridge), 403},
		{"tag client token", "GET", r.ts.URL + "/dev/alice/connect", mustToken(t, "alice", ScopeClient), 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body *strings.Reader
			if tc.method == "POST" {
				body = strings.NewReader(initBody)
			} else {
				body = strings.NewReader("")
			}
			req, _ := http.NewRequest(tc.method, tc.url, body)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			if tc.method == "GET" && strings.HasSuffix(tc.url, "/connect") && tc.want != http.StatusUpgradeRequired {
				// What a WebSocket client sends: the bridge endpoints
				// answer 426 before auth to anything else.
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
				req.Header.Set("Sec-WebSocket-Version", "13")
				req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(t, resp)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, got)
			}
			for _, secret := range []string{tc.token, string(testSecret)} {
				if secret != "" && strings.Contains(got, secret) {
					t.Fatal("response body contains the token or secret")
				}
			}
		})
	}

	// The WebSocket endpoints answer before the upgrade, as a plain HTTP status.
	_, resp, err := websocket.DefaultDialer.Dial(r.wsURL("/v1/connect"), http.Header{"Authorization": {"Bearer " + mustToken(t, "alice", ScopeClient)}})
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("client token on /v1/connect: err=%v resp=%v", err, resp)
	}
}

func TestOfflineAndUnknownServer(t *testing.T) {
	const wait = 300 * time.Millisecond
	r := startRelay(t, &Server{Verifier: &Verifier{Secret: testSecret}, CallTimeout: 5 * time.Second, BridgeWait: wait})
	hc := authClient(mustToken(t, "alice", ScopeClient))
	post := func(url string) (*http.Response, map[string]any) {
		resp, err := hc.Post(url, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(readAll(t, resp)), &body); err != nil {
			t.Fatalf("body is not JSON: %v", err)
		}
		return resp, body
	}
	start := time.Now()
	resp, body := post(r.mcpURL("alice", "everything"))
	if d := time.Since(start); d < wait {
		t.Errorf("503 after %v, before the bridge wait of %v", d, wait)
	}
	if resp.StatusCode != 503 || body["error"] != "bridge offline" || body["dev"] != "alice" || body["hint"] == nil {
		t.Fatalf("offline: %d %v", resp.StatusCode, body)
	}
	dialFakeBridge(t, r, "alice")
	resp, body = post(r.mcpURL("alice", "nosuch"))
	if resp.StatusCode != 404 || body["error"] != "unknown server" {
		t.Fatalf("unknown server: %d %v", resp.StatusCode, body)
	}
}

func TestStatusCatalogHealthMetrics(t *testing.T) {
	r := newTestRelay(t, 5*time.Second)
	fb := dialFakeBridge(t, r, "alice")
	hc := authClient(mustToken(t, "alice", ScopeClient))
	status := func() bridgeStatus {
		resp, err := hc.Get(r.ts.URL + "/v1/bridges/alice")
		if err != nil {
			t.Fatal(err)
		}
		var st bridgeStatus
		if err := json.Unmarshal([]byte(readAll(t, resp)), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := status()
	if !st.Connected || st.Protocol != "tether" || st.Since == nil || len(st.Servers) != 1 ||
		st.Servers[0].Name != "everything" || st.Servers[0].ToolCount != 3 || st.Servers[0].Restarts != 1 {
		t.Fatalf("status = %+v", st)
	}

	// A catalog frame replaces the list; a sync round trip orders it.
	fb.write(relay.Frame{Kind: relay.KindCatalog, Servers: []relay.ServerInfo{
		{Name: "everything", State: "ready", ToolCount: 4},
		{Name: "github", State: "crashloop", Error: `mcp server "github" exited with status 1`, ErrorKind: relay.ErrorExited}}})
	fb.waitOnline(t, r, "alice")
	st = status()
	if len(st.Servers) != 2 || st.Servers[1].Name != "github" || st.Servers[1].State != "crashloop" ||
		st.Servers[1].Error != `mcp server "github" exited with status 1` || st.Servers[1].ErrorKind != relay.ErrorExited {
		t.Fatalf("after catalog: %+v", st)
	}

	// A bridge older than errorKind sends its child's raw error, stderr
	// and all: the relay does not show that text to clients.
	const secret = "sk-live-FAKE0123456789"
	fb.write(relay.Frame{Kind: relay.KindCatalog, Servers: []relay.ServerInfo{
		{Name: "everything", State: "ready", ToolCount: 4},
		{Name: "github", State: "backoff", Error: "exited: exit status 3; stderr: GITHUB_TOKEN=" + secret}}})
	fb.waitOnline(t, r, "alice")
	resp, err := hc.Get(r.ts.URL + "/v1/bridges/alice")
	if err != nil {
		t.Fatal(err)
	}
	raw := readAll(t, resp)
	if strings.Contains(raw, secret) || !strings.Contains(raw, `"errorKind":"unavailable"`) {
		t.Fatalf("a legacy bridge's raw error reached the status API: %s", raw)
	}

	cs := connectClient(t, r.mcpURL("alice", "everything"), mustToken(t, "alice", ScopeClient), "2025-11-25", nil)
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "m"}}); err != nil {
		t.Fatal(err)
	}

	resp, err = http.Get(r.ts.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	m := r.metrics(t)
	for _, want := range []string{
		"tether_relay_bridges_connected 1\n",
		`tether_relay_calls_total{status="ok"}`,
		`tether_relay_call_duration_seconds_bucket{le="+Inf"}`,
		"tether_relay_call_duration_seconds_count ",
		`tether_relay_bytes_total{direction="in"}`,
		`tether_relay_bytes_total{direction="out"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

func TestBadFramesKeepSocket(t *testing.T) {
	r := newTestRelay(t, 5*time.Second)
	fb := dialFakeBridge(t, r, "alice")
	for _, tc := range []struct {
		raw  string
		code string
	}{
		{"not json", relay.ErrCodeBadFrame},
		{`{"kind":""}`, relay.ErrCodeBadFrame},
		{`{"kind":"mcp","server":"everything"}`, relay.ErrCodeBadFrame},
		{`{"kind":"mcp","server":"everything","session":"s","msg":{"hello":1}}`, relay.ErrCodeBadFrame},
		{`{"kind":"teleport"}`, relay.ErrCodeUnknownKind},
		{`{"kind":"rpc.response","id":"1","status":200}`, relay.ErrCodeUnknownKind},
		{`{"kind":"hello","protocol":1}`, relay.ErrCodeBadFrame},
	} {
		if err := fb.writeRaw([]byte(tc.raw)); err != nil {
			t.Fatal(err)
		}
		select {
		case f := <-fb.Other:
			if f.Kind != relay.KindError || f.Code != tc.code {
				t.Fatalf("%s: answer %+v, want error %s", tc.raw, f, tc.code)
			}
		case <-fb.Gone:
			t.Fatalf("%s: socket closed", tc.raw)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no error frame", tc.raw)
		}
	}
	// Still serving.
	cs := connectClient(t, r.mcpURL("alice", "everything"), mustToken(t, "alice", ScopeClient), "2025-11-25", nil)
	if _, err := cs.ListTools(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

func TestHelloRules(t *testing.T) {
	r := newTestRelay(t, 5*time.Second)
	for _, first := range []string{`{"kind":"catalog","servers":[]}`, `{"kind":"hello","protocol":0}`, `{"kind":"hello","protocol":1,"devId":"bob"}`} {
		ws, _, err := websocket.DefaultDialer.Dial(r.wsURL("/v1/connect"), http.Header{"Authorization": {"Bearer " + mustToken(t, "alice", ScopeBridge)}})
		if err != nil {
			t.Fatal(err)
		}
		ws.WriteMessage(websocket.TextMessage, []byte(first))
		_, _, err = ws.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != relay.CloseProtocolError {
			t.Fatalf("first frame %s: err %v, want close %d", first, err, relay.CloseProtocolError)
		}
		ws.Close()
	}
}

// TestOversizedFrame: a frame over MaxFrameBytes closes that socket (1009)
// and the relay keeps serving other bridges.
func TestOversizedFrame(t *testing.T) {
	r := newTestRelay(t, 5*time.Second)
	bob := dialFakeBridge(t, r, "bob")
	alice := dialFakeBridge(t, r, "alice")

	big := bytes.Repeat([]byte("x"), relay.MaxFrameBytes+1)
	bob.writeRaw(big) // may fail part way: the relay stops reading and closes
	select {
	case <-bob.Gone:
		t.Logf("oversized frame: bridge saw close code %d", bob.closeCode)
		if bob.closeCode != websocket.CloseMessageTooBig && bob.closeCode != 0 {
			t.Fatalf("close code %d, want %d", bob.closeCode, websocket.CloseMessageTooBig)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("oversized frame did not close the socket")
	}
	alice.waitOnline(t, r, "alice")
	cs := connectClient(t, r.mcpURL("alice", "everything"), mustToken(t, "alice", ScopeClient), "2026-07-28", nil)
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "still here"}}); err != nil {
		t.Fatalf("relay stopped serving others: %v", err)
	}
}

// TestReplacedBridge: the second bridge of a dev takes the slot; the first
// is closed with 4001 and new calls go to the second.
func TestReplacedBridge(t *testing.T) {
	r := newTestRelay(t, 5*time.Second)
	first := dialFakeBridge(t, r, "alice")
	second := dialFakeBridge(t, r, "alice")
	select {
	case <-first.Gone:
		if first.closeCode != relay.CloseReplaced {
			t.Fatalf("old bridge closed with %d, want %d", first.closeCode, relay.CloseReplaced)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("old bridge was not closed")
	}
	cs := connectClient(t, r.mcpURL("alice", "everything"), mustToken(t, "alice", ScopeClient), "2025-11-25", nil)
	if _, err := cs.ListTools(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	second.waitOnline(t, r, "alice")
	if b := r.srv.bridge("alice"); b == nil || b.ws.RemoteAddr().String() != second.ws.LocalAddr().String() {
		t.Fatal("slot is not held by the second bridge")
	}
}

// TestShutdownClosesBridges: Shutdown closes hijacked sockets, which
// http.Server.Shutdown would not.
func TestShutdownClosesBridges(t *testing.T) {
	r := newTestRelay(t, 5*time.Second)
	fb := dialFakeBridge(t, r, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fb.Gone:
		if fb.closeCode != websocket.CloseGoingAway {
			t.Fatalf("close code %d, want 1001", fb.closeCode)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bridge socket still open after Shutdown")
	}
	_, resp, err := websocket.DefaultDialer.Dial(r.wsURL("/v1/connect"), http.Header{"Authorization": {"Bearer " + mustToken(t, "alice", ScopeBridge)}})
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("dial after shutdown: %v %v", resp, err)
	}
}

// TestStatusShowsHostname: the hello's hostname reaches the status API and
// the owner's view, cleaned (control characters dropped, clipped on a rune
// boundary); a bridge that sends none (older than the field) has no
// "hostname" key in the status.
func TestStatusShowsHostname(t *testing.T) {
	r := newTestRelay(t, 5*time.Second)
	hc := authClient(mustToken(t, "alice", ScopeClient))
	status := func() (bridgeStatus, string) {
		t.Helper()
		resp, err := hc.Get(r.ts.URL + "/v1/bridges/alice")
		if err != nil {
			t.Fatal(err)
		}
		raw := readAll(t, resp)
		var st bridgeStatus
		if err := json.Unmarshal([]byte(raw), &st); err != nil {
			t.Fatal(err)
		}
		return st, raw
	}

	old := dialFakeBridge(t, r, "alice") // its hello has no hostname
	if st, raw := status(); !st.Connected || strings.Contains(raw, `"hostname"`) {
		t.Fatalf("an old bridge's status: %s", raw)
	}
	old.ws.Close()

	long := strings.Repeat("é", relay.MaxHostname) // 2 bytes a rune: clipped mid-way
	for _, tt := range []struct{ sent, want string }{
		{"alice-laptop.lan", "alice-laptop.lan"},
		{" box\x07\x1b[2J\n", "box[2J"},
		{long, long[:relay.MaxHostname-1]},
	} {
		ws, _, err := websocket.DefaultDialer.Dial(r.wsURL("/v1/connect"), http.Header{"Authorization": {"Bearer " + mustToken(t, "alice", ScopeBridge)}})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []relay.Frame{
			{Kind: relay.KindHello, Protocol: relay.ProtocolVersion, DevID: "alice", Version: "0.9.0", Hostname: tt.sent},
			{Kind: "x-sync"}, // answered once the hello is taken (see waitOnline)
		} {
			data, _ := relay.EncodeFrame(f)
			if err := ws.WriteMessage(websocket.TextMessage, data); err != nil {
				t.Fatal(err)
			}
		}
		if _, data, err := ws.ReadMessage(); err != nil || !strings.Contains(string(data), relay.ErrCodeUnknownKind) {
			t.Fatalf("sync answer: %s, %v", data, err)
		}
		st, raw := status()
		if !st.Connected || st.Hostname != tt.want || st.Version != "0.9.0" {
			t.Fatalf("hostname %q: status %s, want hostname %q", tt.sent, raw, tt.want)
		}
		if v := r.srv.Bridge("alice"); v.Hostname != tt.want || v.Remote == "" {
			t.Fatalf("hostname %q: owner's view %+v", tt.sent, v)
		}
		ws.Close()
	}
}
