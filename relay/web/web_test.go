package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-dev/tether/internal/mcpwire"
	"github.com/tether-dev/tether/relay"
	"github.com/tether-dev/tether/relay/server"
	"github.com/tether-dev/tether/relay/store"
)

var testSecret = []byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ")

// env is a relay with its web page on loopback, over a fresh SQLite store.
type env struct {
	t     *testing.T
	ts    *httptest.Server
	st    *store.Store
	srv   *server.Server
	web   *Web
	clock *clock
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	// A long poll: a revocation must take effect through Revoke's own
	// refresh, not the next tick.
	rv, err := server.NewRevocations(ctx, st, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &server.Server{Verifier: &server.Verifier{Secret: testSecret, Revocations: rv}, BridgeWait: -1}
	if cfg.PublicURL != "" {
		srv.PublicURLs = []string{cfg.PublicURL} // as cmd/relay does from --public-url
	}
	cfg.Store, cfg.Relay = st, srv
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now()}
	w.now = c.now
	srv.Web = w
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		w.Close()
		srv.Close()
		ts.Close()
		cancel()
		<-rv.Done()
		st.Close()
	})
	return &env{t: t, ts: ts, st: st, srv: srv, web: w, clock: c}
}

// browser is a cookie-keeping client that does not follow redirects, so
// each answer's status can be checked.
func (e *env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (e *env) link(user string) string {
	e.t.Helper()
	if err := e.st.AddUser(e.t.Context(), store.User{ID: user, Created: e.clock.now()}); err != nil && !errors.Is(err, store.ErrExists) {
		e.t.Fatal(err)
	}
	l, err := NewSignInLink(e.t.Context(), e.st, e.ts.URL, user, e.clock.now())
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// post sends a form as a same-origin browser would (Origin: the relay).
func (e *env) post(c *http.Client, path string, form url.Values, origin string) (*http.Response, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin == "" {
		origin = e.ts.URL
	}
	req.Header.Set("Origin", origin)
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", page)
	}
	return m[1]
}

// signUp follows a fresh sign-in link, sets password pw and returns the
// signed-in browser and the dashboard's CSRF token.
func (e *env) signUp(user, pw string) (*http.Client, string) {
	e.t.Helper()
	c := e.browser()
	link := e.link(user)
	resp, page := get(e.t, c, link)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("link page: %d\n%s", resp.StatusCode, page)
	}
	code := link[strings.LastIndex(link, "/")+1:]
	resp, body := e.post(c, "/signin/link", url.Values{"csrf": {csrfOf(e.t, page)}, "code": {code}, "password": {pw}, "password2": {pw}}, "")
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("set password: %d\n%s", resp.StatusCode, body)
	}
	resp, page = get(e.t, c, e.ts.URL+"/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "My bridge") {
		e.t.Fatalf("dashboard after sign-up: %d\n%s", resp.StatusCode, page)
	}
	return c, csrfOf(e.t, page)
}

func TestSignInLinkOnceAndSessionCookie(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.browser()
	link := e.link("alice")
	code := link[strings.LastIndex(link, "/")+1:]
	resp, page := get(t, c, link)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Welcome, alice") {
		t.Fatalf("link page: %d\n%s", resp.StatusCode, page)
	}
	// Showing the page does not use the link (link previews fetch it).
	if resp, _ := get(t, e.browser(), link); resp.StatusCode != http.StatusOK {
		t.Fatalf("second view of an unused link: %d", resp.StatusCode)
	}
	csrf := csrfOf(t, page)
	form := url.Values{"csrf": {csrf}, "code": {code}, "password": {"correct horse"}, "password2": {"correct horse"}}
	resp, _ = e.post(c, "/signin/link", form, "")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set password: %d", resp.StatusCode)
	}
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie && ck.Value != "" {
			sess = ck
		}
	}
	if sess == nil {
		t.Fatalf("no session cookie in %v", resp.Header["Set-Cookie"])
	}
	if !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Secure || sess.Path != "/" {
		t.Fatalf("session cookie flags: %+v", sess)
	}
	if _, err := e.st.WebSession(t.Context(), sess.Value, e.clock.now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the store holds the session id itself, not its hash: %v", err)
	}

	// Used: the page and the form both refuse it now.
	if resp, _ := get(t, e.browser(), link); resp.StatusCode != http.StatusGone {
		t.Fatalf("used link page: %d", resp.StatusCode)
	}
	c2 := e.browser()
	_, page = get(t, c2, e.ts.URL+"/")
	form.Set("csrf", csrfOf(t, page))
	if resp, _ := e.post(c2, "/signin/link", form, ""); resp.StatusCode != http.StatusGone {
		t.Fatalf("reused link: %d", resp.StatusCode)
	}

	// Expired: 15 minutes.
	link = e.link("alice")
	e.clock.add(LinkTTL)
	if resp, _ := get(t, e.browser(), link); resp.StatusCode != http.StatusGone {
		t.Fatalf("expired link: %d", resp.StatusCode)
	}

	// The password works; sign-out ends the session in the store too.
	c3 := e.browser()
	_, page = get(t, c3, e.ts.URL+"/")
	resp, _ = e.post(c3, "/signin", url.Values{"csrf": {csrfOf(t, page)}, "user": {"alice"}, "password": {"correct horse"}}, "")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	_, page = get(t, c3, e.ts.URL+"/")
	if !strings.Contains(page, "Sign out") {
		t.Fatalf("not signed in:\n%s", page)
	}
	// Sessions end after SessionTTL.
	e.clock.add(SessionTTL - time.Minute)
	if resp, _ := get(t, c3, e.ts.URL+"/tokens"); resp.StatusCode != http.StatusOK {
		t.Fatalf("tokens page within the session's life: %d", resp.StatusCode)
	}
	e.clock.add(time.Minute)
	if resp, _ := get(t, c3, e.ts.URL+"/tokens"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("tokens page after the session's life: %d", resp.StatusCode)
	}
	e.clock.add(-SessionTTL)
	resp, _ = e.post(c3, "/signout", url.Values{"csrf": {csrfOf(t, page)}}, "")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	if resp, _ := get(t, c3, e.ts.URL+"/tokens"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("tokens page after sign-out: %d", resp.StatusCode)
	}
}

func TestSecureCookiesUnderTLS(t *testing.T) {
	e := newEnv(t, Config{PublicURL: "https://relay.example.com"})
	rec := httptest.NewRecorder()
	e.web.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://relay.example.com/", nil))
	cookies := rec.Result().Cookies()
	if len(cookies) == 0 {
		t.Fatal("sign-in page set no cookie")
	}
	for _, ck := range cookies {
		if !ck.Secure || !ck.HttpOnly {
			t.Fatalf("cookie %s under https: %+v", ck.Name, ck)
		}
	}
	// A name the relay does not have (DNS rebinding) is refused.
	req0 := httptest.NewRequest(http.MethodGet, "/", nil)
	req0.Host = "rebind.evil.example"
	rec0 := httptest.NewRecorder()
	e.web.ServeHTTP(rec0, req0)
	if rec0.Code != http.StatusMisdirectedRequest {
		t.Fatalf("GET / for another host name: %d", rec0.Code)
	}
	// The relay's own origin is its public URL: the loopback one is foreign.
	form := url.Values{"csrf": {cookies[0].Value}, "user": {"x"}, "password": {"y"}}
	req := httptest.NewRequest(http.MethodPost, "https://relay.example.com/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://example.com")
	req.AddCookie(cookies[0])
	rec = httptest.NewRecorder()
	e.web.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("POST from another origin: %d", rec.Code)
	}
	h := rec.Result().Header
	if !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") || h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "same-origin" {
		t.Fatalf("security headers: %v", h)
	}
}

func TestWrongPasswordAndRateLimits(t *testing.T) {
	e := newEnv(t, Config{Limits: Limits{AccountBurst: 3, IPBurst: 6}})
	e.signUp("alice", "correct horse")
	c := e.browser()
	attempt := func(user, pw string) *http.Response {
		_, page := get(t, c, e.ts.URL+"/")
		resp, _ := e.post(c, "/signin", url.Values{"csrf": {csrfOf(t, page)}, "user": {user}, "password": {pw}}, "")
		return resp
	}
	for i := range 3 {
		if resp := attempt("alice", "wrong horse"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i, resp.StatusCode)
		}
	}
	// The account's bucket is empty: even the right password waits.
	resp := attempt("alice", "correct horse")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("4th attempt: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Per address: three more (other accounts) and the address is done.
	for i := range 2 {
		if resp := attempt("nobody", "x"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unknown user %d: %d", i, resp.StatusCode)
		}
	}
	if resp := attempt("someone", "x"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("6th attempt from the address: %d", resp.StatusCode)
	}
	if resp := attempt("another", "x"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("7th attempt from the address: %d", resp.StatusCode)
	}
}

func TestCSRFAndOrigin(t *testing.T) {
	e := newEnv(t, Config{})
	c, csrf := e.signUp("alice", "correct horse")
	create := url.Values{"kind": {"client"}, "ttl": {"1d"}, "name": {"x"}}
	if resp, _ := e.post(c, "/tokens", create, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST without CSRF token: %d", resp.StatusCode)
	}
	create.Set("csrf", csrf+"x")
	if resp, _ := e.post(c, "/tokens", create, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST with a wrong CSRF token: %d", resp.StatusCode)
	}
	create.Set("csrf", csrf)
	if resp, _ := e.post(c, "/tokens", create, "https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST from a foreign origin: %d", resp.StatusCode)
	}
	if resp, _ := e.post(c, "/tokens", create, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST with the right token: %d", resp.StatusCode)
	}
	// The sign-in form's token is bound to its cookie.
	if resp, _ := e.post(e.browser(), "/signin", url.Values{"csrf": {csrf}, "user": {"alice"}, "password": {"correct horse"}}, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without the form's cookie: %d", resp.StatusCode)
	}
	toks, err := e.st.Tokens(t.Context(), "alice")
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens after one good POST: %v, %v", toks, err)
	}
}

// fakeBridge is a Tether bridge on a WebSocket: it sends a hello and
// answers every MCP request with an empty result.
type fakeBridge struct {
	ws     *websocket.Conn
	closed chan error // the read loop's end
}

func dialBridge(t *testing.T, e *env, token string) *fakeBridge {
	t.Helper()
	return dialBridgeFrom(t, e, token, "alice-laptop")
}

// dialBridgeFrom is dialBridge with the hello's hostname ("": a bridge
// older than the field, which leaves it out).
func dialBridgeFrom(t *testing.T, e *env, token, hostname string) *fakeBridge {
	t.Helper()
	u := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/v1/connect"
	ws, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("dial bridge: %v (%v)", err, resp)
	}
	hello := relay.Frame{Kind: relay.KindHello, Protocol: relay.ProtocolVersion, Version: "tetherd-test-1.2", Hostname: hostname, Servers: []relay.ServerInfo{{
		Name: "files", State: "ready", ToolCount: 1, Tools: []json.RawMessage{json.RawMessage(`{"name":"read_file","description":"Reads a file"}`)},
	}}}
	b, _ := json.Marshal(hello)
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
	fb := &fakeBridge{ws: ws, closed: make(chan error, 1)}
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				fb.closed <- err
				return
			}
			f, err := relay.DecodeFrame(data)
			if err != nil || f.Kind != relay.KindMCP {
				continue
			}
			var req struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			if json.Unmarshal(f.Msg, &req) != nil || len(req.ID) == 0 || req.Method == "" {
				continue
			}
			msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": map[string]any{"content": []any{}}})
			out, _ := json.Marshal(relay.Frame{Kind: relay.KindMCP, Server: f.Server, Session: f.Session, Msg: msg})
			ws.WriteMessage(websocket.TextMessage, out)
		}
	}()
	t.Cleanup(func() { ws.Close() })
	return fb
}

// waitFor waits until cond holds, woken by the relay's change signal.
func waitFor(t *testing.T, e *env, dev string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		ch := e.srv.Changes(dev)
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("timed out waiting for the bridge's state")
		}
	}
}

var newTokenRE = regexp.MustCompile(`<pre id="new-token">([^<]+)</pre>`)

func (e *env) createToken(c *http.Client, csrf, kind, name string) (string, string) {
	e.t.Helper()
	resp, page := e.post(c, "/tokens", url.Values{"csrf": {csrf}, "kind": {kind}, "ttl": {"30d"}, "name": {name}}, "")
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("create %s token: %d\n%s", kind, resp.StatusCode, page)
	}
	m := newTokenRE.FindStringSubmatch(page)
	if m == nil {
		e.t.Fatalf("no new token on the page:\n%s", page)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		e.t.Fatalf("a page with a token may be cached: %q", resp.Header.Get("Cache-Control"))
	}
	return m[1], page
}

func TestTokensCreateListRevoke(t *testing.T) {
	e := newEnv(t, Config{})
	c, csrf := e.signUp("alice", "correct horse")
	tok, page := e.createToken(c, csrf, "bridge", "laptop")
	if !strings.Contains(page, "| tetherd token set --relay &#39;"+e.ts.URL+"&#39;") {
		t.Fatalf("no tetherd command with the relay URL:\n%s", page)
	}
	claims, err := e.srv.Verifier.Verify(tok)
	if err != nil || claims.Dev != "alice" || !claims.HasScope(server.ScopeBridge) {
		t.Fatalf("issued token: %+v, %v", claims, err)
	}
	jti := strings.TrimPrefix(claims.ID, "j:")
	rec, err := e.st.Token(t.Context(), jti)
	if err != nil || rec.Name != "laptop" || rec.Kind != store.KindBridge {
		t.Fatalf("token record: %+v, %v", rec, err)
	}

	fb := dialBridge(t, e, tok)
	waitFor(t, e, "alice", func() bool { return e.srv.Bridge("alice").Connected })

	// A client token's page names the bridge's server in every snippet.
	_, page = e.createToken(c, csrf, "client", "agent")
	mcpURL := e.ts.URL + "/mcp/alice/files"
	for _, want := range []string{
		"claude mcp add --transport http &#39;files&#39; &#39;" + mcpURL + "&#39; --header &#39;Authorization: Bearer ",
		"&#34;mcpServers&#34;", "&#34;servers&#34;", "&#34;type&#34;: &#34;http&#34;", "gemini mcp add", "[mcp_servers.files]", "bearer_token_env_var", "mcp-remote",
	} {
		if !strings.Contains(page, want) {
			t.Fatalf("client snippets lack %q:\n%s", want, page)
		}
	}

	_, page = get(t, c, e.ts.URL+"/tokens")
	if !strings.Contains(page, `data-jti="`+jti+`"`) || !strings.Contains(page, "laptop") || !strings.Contains(page, "agent") {
		t.Fatalf("tokens list:\n%s", page)
	}

	// Another user cannot revoke alice's token.
	c2, csrf2 := e.signUp("bob", "battery staple")
	if resp, _ := e.post(c2, "/tokens/revoke", url.Values{"csrf": {csrf2}, "jti": {jti}}, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("bob revokes alice's token: %d", resp.StatusCode)
	}

	resp, _ := e.post(c, "/tokens/revoke", url.Values{"csrf": {csrf}, "jti": {jti}}, "")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	select {
	case err := <-fb.closed:
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != relay.CloseUnauthorized {
			t.Fatalf("bridge ended with %v, want close 4003", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the bridge holding the revoked token is still connected")
	}
	_, page = get(t, c, e.ts.URL+"/tokens")
	if !strings.Contains(page, `state-revoked">revoked`) {
		t.Fatalf("revoked token not shown as revoked:\n%s", page)
	}
}

// sseReader yields the data of each "bridge" event of a stream.
func sseReader(t *testing.T, body io.Reader) <-chan string {
	events := make(chan string, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(body)
		sc.Buffer(nil, 1<<20)
		var data strings.Builder
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "data: "):
				data.WriteString(strings.TrimPrefix(line, "data: ") + "\n")
			case line == "" && data.Len() > 0:
				events <- data.String()
				data.Reset()
			}
		}
	}()
	return events
}

func nextEvent(t *testing.T, events <-chan string, want func(string) bool, what string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("stream ended waiting for %s", what)
			}
			if want(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no event with %s", what)
		}
	}
}

func TestEventsLive(t *testing.T) {
	e := newEnv(t, Config{})
	c, csrf := e.signUp("alice", "correct horse")
	bridgeTok, _ := e.createToken(c, csrf, "bridge", "laptop")
	clientTok, _ := e.createToken(c, csrf, "client", "my agent")

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.ts.URL+"/events", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := sseReader(t, resp.Body)
	nextEvent(t, events, func(s string) bool { return strings.Contains(s, `data-state="offline"`) }, "offline")

	fb := dialBridge(t, e, bridgeTok)
	ev := nextEvent(t, events, func(s string) bool { return strings.Contains(s, `data-state="online"`) }, "online")
	for _, want := range []string{`data-fact="hostname">alice-laptop<`, `data-fact="version">tetherd-test-1.2<`, "files", "1 tools", "read_file"} {
		if !strings.Contains(ev, want) {
			t.Fatalf("online event lacks %q:\n%s", want, ev)
		}
	}

	// A tool call shows up with its tool, outcome and client token's name.
	call := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/secret/args"}}}`
	mreq, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/mcp/alice/files", strings.NewReader(call))
	mreq.Header.Set("Authorization", "Bearer "+clientTok)
	mreq.Header.Set("Content-Type", "application/json")
	mreq.Header.Set("Accept", "application/json, text/event-stream")
	mreq.Header.Set("Mcp-Protocol-Version", mcpwire.Version2026)
	mreq.Header.Set("Mcp-Method", "tools/call") // 2026 requests mirror method and name in headers
	mreq.Header.Set("Mcp-Name", "read_file")
	mresp, err := http.DefaultClient.Do(mreq)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if mresp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"result"`) {
		t.Fatalf("tools/call: %d %s", mresp.StatusCode, body)
	}
	ev = nextEvent(t, events, func(s string) bool { return strings.Contains(s, "<code>read_file</code></td>") }, "the call")
	for _, want := range []string{"outcome-ok", "my agent"} {
		if !strings.Contains(ev, want) {
			t.Fatalf("call event lacks %q:\n%s", want, ev)
		}
	}
	if strings.Contains(ev, "/secret/args") {
		t.Fatalf("the call's arguments reached the page:\n%s", ev)
	}

	fb.ws.Close()
	nextEvent(t, events, func(s string) bool { return strings.Contains(s, `data-state="offline"`) }, "offline again")
}

// TestPanelShowsHostname: My bridge names the computer from the bridge's
// hello, apart from the address it connected from; the name is text (a
// hostile one is escaped, control characters dropped), and a bridge older
// than the field is said to have sent none.
func TestPanelShowsHostname(t *testing.T) {
	for _, tt := range []struct{ name, hostname, want string }{
		{"plain", "alice-laptop.lan", `data-fact="hostname">alice-laptop.lan</dd>`},
		{"hostile", "<b>box</b>\n\x1b[2J", `data-fact="hostname">&lt;b&gt;box&lt;/b&gt;[2J</dd>`},
		{"old bridge", "", `data-fact="hostname">not sent (a bridge older than this page)</dd>`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			c, csrf := e.signUp("alice", "correct horse")
			tok, _ := e.createToken(c, csrf, "bridge", "laptop")
			dialBridgeFrom(t, e, tok, tt.hostname)
			waitFor(t, e, "alice", func() bool { return e.srv.Bridge("alice").Connected })
			_, page := get(t, c, e.ts.URL+"/")
			if !strings.Contains(page, tt.want) {
				t.Fatalf("My bridge lacks %q:\n%s", tt.want, page)
			}
			if !strings.Contains(page, `<dt>From address</dt><dd data-fact="remote">127.0.0.1:`) {
				t.Fatalf("My bridge lacks the address apart from the computer:\n%s", page)
			}
		})
	}
}

func TestTrustedAuthHeader(t *testing.T) {
	e := newEnv(t, Config{AuthHeader: "X-Forwarded-User"})
	if err := e.st.AddUser(t.Context(), store.User{ID: "alice", Created: e.clock.now()}); err != nil {
		t.Fatal(err)
	}
	do := func(method, path, user string, form url.Values) (*http.Response, string) {
		req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", e.ts.URL)
		if user != "" {
			req.Header.Set("X-Forwarded-User", user)
		}
		resp, err := e.browser().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	_, page := do(http.MethodGet, "/", "alice", nil)
	if !strings.Contains(page, "My bridge") {
		t.Fatalf("header user alice does not see the dashboard:\n%s", page)
	}
	if _, page := do(http.MethodGet, "/", "mallory", nil); !strings.Contains(page, "Sign in") {
		t.Fatalf("a header naming no account signed in:\n%s", page)
	}
	csrf := csrfOf(t, page)
	form := url.Values{"kind": {"client"}, "ttl": {"1d"}}
	if resp, _ := do(http.MethodPost, "/tokens", "alice", form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("header POST without CSRF: %d", resp.StatusCode)
	}
	form.Set("csrf", csrf)
	if resp, _ := do(http.MethodPost, "/tokens", "alice", form); resp.StatusCode != http.StatusOK {
		t.Fatalf("header POST with CSRF: %d", resp.StatusCode)
	}
}
