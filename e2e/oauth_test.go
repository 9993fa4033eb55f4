//go:build linux

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tether-dev/tether/internal/testbin"
)

// TestOAuthClients: hosted-agent sign-in with real OAuth clients against
// the built relay (OAuth on: its --public-url are its loopback address
// under two names, 127.0.0.1 the issuer and localhost) and a
// real tetherd bridging two stdio test servers, "a" and "b", for alice:
//
//   - the TypeScript MCP SDK's client auth flow, knowing only the MCP URL:
//     401 → protected-resource metadata → authorization-server metadata →
//     dynamic registration → consent in headless chromium (the password
//     set through `user add`'s one-time link) → code to a loopback
//     redirect URI → tokens → tools/list, tools/call → refresh;
//   - the same SDK with a Client ID Metadata Document served by a loopback
//     HTTPS server (the relay's test-only CA switch);
//   - mcp-remote as a stdio proxy, with the go-sdk speaking MCP over its
//     stdio and chromium approving the URL it prints;
//   - refusals through the relay with the right OAuth errors, and
//     audience isolation.
//
// Linux only: mcp-remote opens a browser through xdg-open, which the
// test points at a no-op $BROWSER; elsewhere it would open a real one.
func TestOAuthClients(t *testing.T) {
	testbin.NeedTools(t, "chromium")
	node := testbin.Node(t)
	nm := filepath.Join(testbin.RepoRoot(t), "tools", "npm", "node_modules")
	for _, p := range []string{"playwright-core", "@modelcontextprotocol/sdk", "mcp-remote"} {
		if _, err := os.Stat(filepath.Join(nm, p)); err != nil {
			t.Fatalf("%s is not installed (npm ci --prefix tools/npm): %v", p, err)
		}
	}
	e := startOAuthEnv(t)
	e.node, e.nm, e.root = node, nm, testbin.RepoRoot(t)

	if !t.Run("TypeScriptSDK", e.typeScriptSDK) {
		return // the later steps sign in with the password this one set
	}
	t.Run("CIMD", e.cimdClient)
	t.Run("MCPRemote", e.mcpRemote)
	t.Run("Refusals", e.refusals)
}

const oauthPassword = "correct horse battery staple"

type oauthEnv struct {
	r        *relayProc
	link     string // alice's one-time link from `user add`
	cimdURL  string // the client metadata document
	cimdHits atomic.Int32
	node, nm string
	root     string // the repository
	shots    string
	// ts is what the TypeScript SDK run reported; refusals reuse its tokens.
	ts tsResult
}

func startOAuthEnv(t *testing.T) *oauthEnv {
	e := &oauthEnv{shots: t.TempDir()}
	if a := os.Getenv("TETHER_ARTIFACTS"); a != "" {
		e.shots = filepath.Join(a, "oauth")
		if err := os.MkdirAll(e.shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// The client metadata document, on loopback HTTPS. Its redirect URI
	// has no port: loopback redirect URIs match on any port (RFC 8252).
	cimd := httptest.NewUnstartedServer(nil)
	cimd.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/tether-e2e/client.json" {
			http.NotFound(w, r)
			return
		}
		e.cimdHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=3600")
		json.NewEncoder(w).Encode(map[string]any{
			"client_id": e.cimdURL, "client_name": "CIMD e2e client", "redirect_uris": []string{"http://127.0.0.1/callback"},
			"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
			"token_endpoint_auth_method": "none",
		})
	})
	cimd.StartTLS()
	t.Cleanup(cimd.Close)
	e.cimdURL = cimd.URL + "/tether-e2e/client.json"
	ca := filepath.Join(t.TempDir(), "cimd-ca.pem")
	writeFileT(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cimd.Certificate().Raw})))

	r := &relayProc{bin: testbin.Build(t, "./cmd/relay"), secret: filepath.Join(t.TempDir(), "secret"), addr: freeAddr(t)}
	// Two names, as a relay with a public and an internal name has: the
	// first is the issuer; mcp-remote is given the second.
	r.args = []string{"--public-url", "http://" + r.addr, "--public-url", "http://localhost:" + strings.TrimPrefix(r.addr, "127.0.0.1:"),
		"--oauth-cimd-insecure-test-ca", ca}
	r.start(t)
	e.r = r
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("relay log:\n%s", r.out.String())
		}
	})
	out, err := exec.Command(r.bin, "user", "add", dev, "--secret-file", r.secret, "--public-url", r.url()).Output()
	if err != nil {
		t.Fatalf("user add: %v", err)
	}
	e.link = strings.TrimSpace(string(out))

	srv := testbin.Build(t, "./internal/testservers/mcpserver")
	cfg := writeConfig(t, map[string]any{"a": map[string]any{"command": srv}, "b": map[string]any{"command": srv}})
	startTetherd(t, r.token(t, dev, "bridge"), nil, "run", "--config", cfg, "--relay", r.url())
	static := r.token(t, dev, "client")
	r.waitServing(t, dev, static, "a", 60*time.Second)
	r.waitServing(t, dev, static, "b", 60*time.Second)
	return e
}

type tsResult struct {
	ClientID  string `json:"clientID"`
	Authorize struct {
		Resource, Method, Scope string
	} `json:"authorize"`
	First     struct{ Access, Refresh string } `json:"first"`
	Refreshed struct{ Access, Refresh string } `json:"refreshed"`
	Tools     []string                         `json:"tools"`
	Echoed    string                           `json:"echoed"`
	Echoed2   string                           `json:"echoed2"`
}

// runNode runs a script of e2e/testdata with the browser's environment
// and decodes its last stdout line into out.
func (e *oauthEnv) runNode(t *testing.T, ctx context.Context, script string, out any, env ...string) {
	t.Helper()
	stderr, err := e.runNodeErr(ctx, script, out, env...)
	if err != nil {
		t.Fatal(err)
	}
	if stderr != "" {
		t.Logf("%s stderr:\n%s", script, stderr)
	}
}

func (e *oauthEnv) typeScriptSDK(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	mcpURL := e.r.mcpURL(dev, "a")
	e.runNode(t, ctx, "oauth_ts.mjs", &e.ts, "MCP_URL="+mcpURL, "ISSUER="+e.r.url(), "LINK="+e.link,
		"CLIENT_NAME=TS SDK e2e", `WANT=["TS SDK e2e", "127.0.0.1", "the server “a”", "Signed in as alice"]`)
	got := e.ts
	if !strings.HasPrefix(got.ClientID, "tc_") {
		t.Errorf("client_id %q: not a dynamically registered client", got.ClientID)
	}
	if got.Authorize.Resource != mcpURL || got.Authorize.Method != "S256" {
		t.Errorf("authorization request: resource %q, method %q; want %q, S256", got.Authorize.Resource, got.Authorize.Method, mcpURL)
	}
	if !strings.Contains(strings.Join(got.Tools, " "), "echo") || got.Echoed != "hello over oauth" || got.Echoed2 != "hello after refresh" {
		t.Errorf("tools %v, echoed %q then %q", got.Tools, got.Echoed, got.Echoed2)
	}
	if got.Refreshed.Refresh == "" || got.Refreshed.Refresh == got.First.Refresh || got.Refreshed.Access == got.First.Access {
		t.Errorf("refresh did not rotate: %+v → %+v", got.First, got.Refreshed)
	}
}

func (e *oauthEnv) cimdClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var got tsResult
	// A fresh browser: it signs in with the password the first step set.
	e.runNode(t, ctx, "oauth_ts.mjs", &got, "MCP_URL="+e.r.mcpURL(dev, "b"), "ISSUER="+e.r.url(), "CIMD_URL="+e.cimdURL,
		"CLIENT_NAME=not what the consent page shows", `WANT=["CIMD e2e client", "the server “b”"]`)
	if got.ClientID != e.cimdURL {
		t.Errorf("client_id %q, want the document's URL %q", got.ClientID, e.cimdURL)
	}
	if got.Echoed != "hello over oauth" || got.Echoed2 != "hello after refresh" {
		t.Errorf("echoed %q then %q", got.Echoed, got.Echoed2)
	}
	// Fetched once and cached (max-age=3600) across authorize, consent and token.
	if n := e.cimdHits.Load(); n != 1 {
		t.Errorf("the relay fetched the metadata document %d times, want 1", n)
	}
}

// mcpRemote runs mcp-remote as a stdio proxy; the go-sdk speaks MCP over
// its stdio. mcp-remote opens the browser through `open` → xdg-open →
// $BROWSER; $BROWSER is `true` here (no display), and chromium opens the
// URL mcp-remote prints instead.
func (e *oauthEnv) mcpRemote(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	// The relay's second public URL: the resource is the URL the user
	// pasted, whichever of the relay's names it uses.
	mcpURL := "http://localhost:" + strings.TrimPrefix(e.r.addr, "127.0.0.1:") + "/mcp/" + dev + "/a"
	cmd := exec.Command(filepath.Join(e.nm, ".bin", "mcp-remote"), mcpURL, port, "--host", "127.0.0.1", "--auth-timeout", "50")
	cfgDir, home := t.TempDir(), t.TempDir()
	cmd.Env = append(envWithout("DISPLAY", "WAYLAND_DISPLAY", "XDG_CURRENT_DESKTOP", "DESKTOP_SESSION", "BROWSER", "HOME"),
		"BROWSER=true", "MCP_REMOTE_CONFIG_DIR="+cfgDir, "HOME="+home)
	stderr := newLogBuf()
	cmd.Stderr = stderr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mcp-remote stderr:\n%s", stderr.String())
		}
	})

	// A failed browser step ends the connect below, which waits on it.
	connectCtx, stopConnect := context.WithCancel(ctx)
	defer stopConnect()
	approved := make(chan error, 1)
	go func() {
		err := e.approveFromLog(ctx, stderr, port)
		if err != nil {
			stopConnect()
		}
		approved <- err
	}()

	c := mcp.NewClient(&mcp.Implementation{Name: "e2e-via-mcp-remote", Version: "1"}, nil)
	cs, err := c.Connect(connectCtx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		select {
		case aerr := <-approved:
			t.Fatalf("connect through mcp-remote: %v; the browser step: %v", err, aerr)
		default:
			t.Fatalf("connect through mcp-remote: %v", err)
		}
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list through mcp-remote: %v", err)
	}
	if len(tools.Tools) == 0 {
		t.Fatal("tools/list through mcp-remote: no tools")
	}
	if got, err := callText(ctx, cs, "echo", map[string]any{"text": "via mcp-remote"}); err != nil || got != "via mcp-remote" {
		t.Fatalf("echo through mcp-remote: %q, %v", got, err)
	}
	select {
	case err := <-approved:
		if err != nil {
			t.Fatalf("browser step: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the browser step never finished")
	}
	// Its tokens went to the throwaway config dir, and nothing to $HOME.
	if !dirHasFile(cfgDir, "_tokens.json") {
		t.Errorf("mcp-remote wrote no tokens under MCP_REMOTE_CONFIG_DIR")
	}
	if dirHasFile(home, "") {
		t.Errorf("mcp-remote wrote into $HOME")
	}
}

// approveFromLog waits for the authorization URL mcp-remote prints and
// approves it in the browser, which must land on mcp-remote's callback.
func (e *oauthEnv) approveFromLog(ctx context.Context, stderr *logBuf, port string) error {
	authURL, err := awaitAfter(ctx, stderr, "Please authorize this client by visiting:")
	if err != nil {
		return err
	}
	var got struct{ Landed string }
	if _, err := e.runNodeErr(ctx, "oauth_approve.mjs", &got, "AUTH_URL="+authURL, `WANT=["the server “a”", "127.0.0.1:`+port+`"]`); err != nil {
		return err
	}
	if !strings.HasPrefix(got.Landed, "http://127.0.0.1:"+port+"/oauth/callback?code=") {
		return fmt.Errorf("the browser landed on %q, not mcp-remote's callback", got.Landed)
	}
	return nil
}

// runNodeErr is runNode for a goroutine: it returns the script's stderr
// and the error.
func (e *oauthEnv) runNodeErr(ctx context.Context, script string, out any, env ...string) (string, error) {
	cmd := exec.CommandContext(ctx, e.node, filepath.Join(e.root, "e2e", "testdata", script))
	chromium, _ := exec.LookPath("chromium")
	cmd.Env = append(os.Environ(), append([]string{"PW=" + filepath.Join(e.nm, "playwright-core"), "NM=" + e.nm,
		"CHROMIUM=" + chromium, "SHOTS=" + e.shots, "USER_ID=" + dev, "PASSWORD=" + oauthPassword}, env...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// The browser scripts' own timeouts are shorter; this is the backstop.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stderr.String(), fmt.Errorf("%s: %v\n%s", script, err, stderr.String())
	}
	lines := scanLines(stdout.String())
	if len(lines) == 0 {
		return stderr.String(), fmt.Errorf("%s printed nothing:\n%s", script, stderr.String())
	}
	return stderr.String(), json.Unmarshal([]byte(lines[len(lines)-1]), out)
}

// envWithout is the test's environment less the named variables.
func envWithout(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, k) {
			env = append(env, kv)
		}
	}
	return env
}

// awaitAfter waits for marker in b and returns the next non-empty line
// after it, woken by every write (no polling).
func awaitAfter(ctx context.Context, b *logBuf, marker string) (string, error) {
	for {
		text, changed := b.Snapshot()
		if _, rest, ok := strings.Cut(text, marker); ok {
			for _, line := range strings.Split(rest, "\n")[1:] {
				if line = strings.TrimSpace(line); line != "" && strings.Contains(rest, line+"\n") {
					return line, nil
				}
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", fmt.Errorf("no %q in the output: %w\n%s", marker, ctx.Err(), text)
		}
	}
}

// dirHasFile reports whether a file under dir has a name ending in suffix.
func dirHasFile(dir, suffix string) bool {
	found := false
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), suffix) {
			found = true
		}
		return nil
	})
	return found
}

// ---- refusals, with a small Go OAuth client ----

// oauthClient is a registered public client with a signed-in browser
// session (a cookie jar) that approves on the consent page over HTTP.
type goOAuth struct {
	r        *relayProc
	http     *http.Client // no redirects followed: the tests read them
	clientID string
	redirect string
}

func (e *oauthEnv) goClient(t *testing.T, name string) *goOAuth {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &goOAuth{r: e.r, redirect: "http://127.0.0.1:9/cb",
		http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	// Sign in like the page does: the form's csrf, then the password.
	page := c.get(t, e.r.url()+"/", http.StatusOK)
	csrf := hiddenFields(page)["csrf"]
	resp, err := c.http.PostForm(e.r.url()+"/signin", neturl.Values{"csrf": {csrf}, "user": {dev}, "password": {oauthPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("sign-in: status %d", resp.StatusCode)
	}
	// Dynamic registration.
	body, _ := json.Marshal(map[string]any{"client_name": name, "redirect_uris": []string{c.redirect}})
	resp, err = http.Post(e.r.url()+"/oauth/register", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reg struct {
		ClientID string `json:"client_id"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&reg) != nil {
		t.Fatalf("register: status %d", resp.StatusCode)
	}
	c.clientID = reg.ClientID
	return c
}

func (c *goOAuth) get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := c.http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d\n%s", url, resp.StatusCode, want, b)
	}
	return string(b)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

func hiddenFields(page string) map[string]string {
	m := map[string]string{}
	for _, f := range hiddenRE.FindAllStringSubmatch(page, -1) {
		m[html.UnescapeString(f[1])] = html.UnescapeString(f[2])
	}
	return m
}

func pkcePair() (verifier, challenge string) {
	verifier = base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("verifier-%d-0123456789abcdefghijklmnop", time.Now().UnixNano())))
	h := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(h[:])
}

// authorize runs the authorization request for resource and approves it;
// it returns the redirect's query (code, or error) and the verifier.
func (c *goOAuth) authorize(t *testing.T, resource, redirect string) (neturl.Values, string) {
	t.Helper()
	verifier, challenge := pkcePair()
	q := neturl.Values{"response_type": {"code"}, "client_id": {c.clientID}, "redirect_uri": {redirect},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "resource": {resource}, "state": {"s1"}, "scope": {"mcp"}}
	resp, err := c.http.Get(c.r.url() + "/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusFound { // an error sent back to the client
		return redirectQuery(t, resp), verifier
	}
	if resp.StatusCode != http.StatusOK {
		return neturl.Values{"status": {fmt.Sprint(resp.StatusCode)}, "body": {string(b)}}, verifier
	}
	form := neturl.Values{"action": {"approve"}}
	for k, v := range hiddenFields(string(b)) {
		form.Set(k, v)
	}
	resp, err = c.http.PostForm(c.r.url()+"/oauth/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("approve: status %d", resp.StatusCode)
	}
	return redirectQuery(t, resp), verifier
}

func redirectQuery(t *testing.T, resp *http.Response) neturl.Values {
	t.Helper()
	loc, err := neturl.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query()
}

// token posts to the token endpoint; it returns the status and the JSON.
func (c *goOAuth) token(t *testing.T, form neturl.Values) (int, map[string]any) {
	t.Helper()
	form.Set("client_id", c.clientID)
	resp, err := http.PostForm(c.r.url()+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (c *goOAuth) redeem(t *testing.T, code, verifier, resource string) (int, map[string]any) {
	t.Helper()
	return c.token(t, neturl.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"redirect_uri": {c.redirect}, "resource": {resource}})
}

func wantOAuthErr(t *testing.T, what string, status int, m map[string]any, code string) {
	t.Helper()
	if status != http.StatusBadRequest || m["error"] != code {
		t.Errorf("%s: status %d, %v; want 400 %s", what, status, m, code)
	}
}

// mcpStatus is the status of an initialize on url with tok.
func mcpStatus(t *testing.T, url, tok string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (e *oauthEnv) refusals(t *testing.T) {
	c := e.goClient(t, "refusals e2e")
	resA, resB := e.r.mcpURL(dev, "a"), e.r.mcpURL(dev, "b")

	// Wrong PKCE verifier.
	q, _ := c.authorize(t, resA, c.redirect)
	st, m := c.redeem(t, q.Get("code"), "wrong-verifier-wrong-verifier-wrong-verifier-0", resA)
	wantOAuthErr(t, "wrong verifier", st, m, "invalid_grant")

	// Wrong resource: at the token endpoint, and for another user's server
	// at the authorization endpoint (sent back to the client).
	q, v := c.authorize(t, resA, c.redirect)
	st, m = c.redeem(t, q.Get("code"), v, resB)
	wantOAuthErr(t, "token for another resource", st, m, "invalid_target")
	if q, _ := c.authorize(t, e.r.mcpURL("bob", "a"), c.redirect); q.Get("error") != "invalid_target" {
		t.Errorf("authorize for bob's server: %v, want error=invalid_target", q)
	}

	// Redirect mismatch: the user sees the refusal (the URI is not trusted),
	// and a code is not redeemed for another redirect_uri.
	if q, _ := c.authorize(t, resA, "http://127.0.0.1:9/elsewhere"); q.Get("status") != "400" || !strings.Contains(q.Get("body"), "invalid_request: redirect_uri") {
		t.Errorf("unregistered redirect_uri: %v, want a 400 page", q)
	}
	q, v = c.authorize(t, resA, c.redirect)
	st, m = c.token(t, neturl.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "code_verifier": {v},
		"redirect_uri": {"http://127.0.0.1:9/other"}, "resource": {resA}})
	wantOAuthErr(t, "redeemed with another redirect_uri", st, m, "invalid_grant")

	// Reused code: the second redemption fails and revokes the first's token.
	q, v = c.authorize(t, resA, c.redirect)
	if q.Get("iss") != e.r.url() {
		t.Errorf("redirect iss %q, want %q (RFC 9207)", q.Get("iss"), e.r.url())
	}
	st, m = c.redeem(t, q.Get("code"), v, resA)
	access, _ := m["access_token"].(string)
	if st != http.StatusOK || access == "" {
		t.Fatalf("redeem: %d %v", st, m)
	}
	if s := mcpStatus(t, resA, access); s != http.StatusOK {
		t.Fatalf("the fresh token gets %d on its own resource", s)
	}
	// Audience: this token is for /mcp/alice/a only.
	if s := mcpStatus(t, resB, access); s != http.StatusUnauthorized && s != http.StatusForbidden {
		t.Errorf("a token for %s on %s: status %d", resA, resB, s)
	}
	if s := mcpStatus(t, e.r.mcpURL("bob", "a"), access); s != http.StatusUnauthorized && s != http.StatusForbidden {
		t.Errorf("alice's token on bob's server: status %d", s)
	}
	// … unless granted: a token for all of alice's servers calls both,
	// and still not bob's.
	qAll, vAll := c.authorize(t, e.r.url()+"/mcp/"+dev, c.redirect)
	st, m = c.redeem(t, qAll.Get("code"), vAll, e.r.url()+"/mcp/"+dev)
	all, _ := m["access_token"].(string)
	if st != http.StatusOK || mcpStatus(t, resA, all) != http.StatusOK || mcpStatus(t, resB, all) != http.StatusOK {
		t.Errorf("a dev-wide grant: %d %v, or its token is refused on a or b", st, m)
	}
	if s := mcpStatus(t, e.r.mcpURL("bob", "a"), all); s != http.StatusUnauthorized && s != http.StatusForbidden {
		t.Errorf("alice's dev-wide token on bob's server: status %d", s)
	}

	st, m = c.redeem(t, q.Get("code"), v, resA)
	wantOAuthErr(t, "reused code", st, m, "invalid_grant")
	if s := mcpStatus(t, resA, access); s != http.StatusUnauthorized {
		t.Errorf("after the code's reuse its token gets %d, want 401", s)
	}

	// Reused refresh token (the TypeScript SDK's first, rotated away):
	// refused, and the whole family with it — the SDK's current token dies.
	if e.ts.First.Refresh == "" {
		t.Fatal("no tokens from the TypeScript SDK step")
	}
	ts := &goOAuth{r: e.r, clientID: e.ts.ClientID}
	if s := mcpStatus(t, resA, e.ts.Refreshed.Access); s != http.StatusOK {
		t.Fatalf("the SDK's refreshed token gets %d before the reuse", s)
	}
	st, m = ts.token(t, neturl.Values{"grant_type": {"refresh_token"}, "refresh_token": {e.ts.First.Refresh}})
	wantOAuthErr(t, "reused refresh token", st, m, "invalid_grant")
	if s := mcpStatus(t, resA, e.ts.Refreshed.Access); s != http.StatusUnauthorized {
		t.Errorf("after the refresh token's reuse the family's access token gets %d, want 401", s)
	}
	st, m = ts.token(t, neturl.Values{"grant_type": {"refresh_token"}, "refresh_token": {e.ts.Refreshed.Refresh}})
	wantOAuthErr(t, "the family's current refresh token", st, m, "invalid_grant")

	// Revoked on the Connected apps page: its tokens die at once.
	q, v = c.authorize(t, resA, c.redirect)
	st, m = c.redeem(t, q.Get("code"), v, resA)
	access, _ = m["access_token"].(string)
	refresh, _ := m["refresh_token"].(string)
	if st != http.StatusOK || mcpStatus(t, resA, access) != http.StatusOK {
		t.Fatalf("redeem for the apps page: %d %v", st, m)
	}
	apps := c.get(t, e.r.url()+"/apps", http.StatusOK)
	if err := c.revokeOnPage(apps, "refusals e2e"); err != nil {
		t.Fatal(err)
	}
	if s := mcpStatus(t, resA, access); s != http.StatusUnauthorized {
		t.Errorf("after revoking the app its token gets %d, want 401", s)
	}
	st, m = c.token(t, neturl.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	wantOAuthErr(t, "refresh after the app's revocation", st, m, "invalid_grant")
}

// revokeOnPage submits the Revoke form of the named client's row on the
// apps page (one row per client, whose Revoke revokes all its approvals).
func (c *goOAuth) revokeOnPage(page, name string) error {
	rows := regexp.MustCompile(`(?s)<tr><td>([^<]*)</td>.*?<form method="post" action="/apps/revoke"><input type="hidden" name="client_id" value="([^"]*)"><input type="hidden" name="csrf" value="([^"]*)">`).FindAllStringSubmatch(page, -1)
	n := 0
	for _, row := range rows {
		if html.UnescapeString(row[1]) != name {
			continue
		}
		resp, err := c.http.PostForm(c.r.url()+"/apps/revoke", neturl.Values{"client_id": {html.UnescapeString(row[2])},
			"csrf": {html.UnescapeString(row[3])}})
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			return fmt.Errorf("revoke %s: status %d", row[2], resp.StatusCode)
		}
		n++
	}
	if n == 0 {
		return errors.New("no row for " + name + " on the apps page:\n" + page)
	}
	return nil
}
