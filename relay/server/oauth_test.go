package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/tether-dev/tether/relay/store"
)

// oauthRelay is a relay with OAuth on, a store, and a fake browser
// session: a request with the cookie test-user=NAME is signed in as NAME.
type oauthRelay struct {
	*testRelay
	st     *store.Store
	skew   atomic.Int64 // added to the relay's clock, in ns
	frozen atomic.Int64 // when not 0, the relay's clock stands at this unix ns
}

const userCookie = "test-user"

// newOAuthRelay starts a relay with OAuth on; its public URLs are its
// address, then the same port under each of moreNames.
func newOAuthRelay(t *testing.T, cfg OAuthConfig, moreNames ...string) *oauthRelay {
	t.Helper()
	return newOAuthRelayWith(t, cfg, nil, moreNames...)
}

// newOAuthRelayWith is newOAuthRelay with setup applied to the Server
// before it starts.
func newOAuthRelayWith(t *testing.T, cfg OAuthConfig, setup func(*Server), moreNames ...string) *oauthRelay {
	t.Helper()
	st := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "relay.db"))
	// A long poll: the relay refreshes its revocations itself when it
	// revokes a grant, which is what these tests check.
	rv, err := NewRevocations(t.Context(), st, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := &oauthRelay{st: st}
	cfg.Store = st
	cfg.SignedInUser = func(r *http.Request) (string, bool) {
		c, err := r.Cookie(userCookie)
		if err != nil || c.Value == "" {
			return "", false
		}
		return c.Value, true
	}
	srv := &Server{Verifier: &Verifier{Secret: testSecret, Revocations: rv}, OAuth: &cfg}
	srv.now = func() time.Time {
		if f := o.frozen.Load(); f != 0 {
			return time.Unix(0, f)
		}
		return time.Now().Add(time.Duration(o.skew.Load()))
	}
	ts := httptest.NewUnstartedServer(srv)
	base := "http://" + ts.Listener.Addr().String()
	urls := []string{base}
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	for _, n := range moreNames {
		urls = append(urls, "http://"+net.JoinHostPort(n, port))
	}
	srv.PublicURLs, srv.Verifier.Audiences = urls, urls
	if setup != nil {
		setup(srv)
	}
	ts.Start()
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	o.testRelay = &testRelay{srv: srv, ts: ts}
	return o
}

// browser is an HTTP client that does not follow redirects, signed in as user.
type browser struct {
	t    *testing.T
	user string
	hc   *http.Client
}

func (o *oauthRelay) browser(t *testing.T, user string) *browser {
	return &browser{t: t, user: user, hc: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var req *http.Request
	var err error
	if form != nil {
		req, err = http.NewRequest(method, u, strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequest(method, u, nil)
	}
	if err != nil {
		b.t.Fatal(err)
	}
	if b.user != "" {
		req.AddCookie(&http.Cookie{Name: userCookie, Value: b.user})
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, readAll(b.t, resp)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// consentForm opens the consent page of authURL and returns its form.
func (b *browser) consentForm(authURL string) (url.Values, string) {
	b.t.Helper()
	resp, body := b.do("GET", authURL, nil)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("consent page: %d %s (Location %q)", resp.StatusCode, body, resp.Header.Get("Location"))
	}
	assertStrictPage(b.t, "consent page", resp.Header, body, false)
	f := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		f.Set(m[1], html.UnescapeString(m[2]))
	}
	if f.Get("csrf") == "" {
		b.t.Fatalf("consent page has no nonce: %s", body)
	}
	return f, body
}

// submit posts the consent form and returns the redirect's query.
func (b *browser) submit(base string, f url.Values, action string) url.Values {
	b.t.Helper()
	f.Set("action", action)
	resp, body := b.do("POST", base+"/oauth/authorize", f)
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("consent %s: %d %s", action, resp.StatusCode, body)
	}
	return redirectQuery(b.t, resp)
}

func redirectQuery(t *testing.T, resp *http.Response) url.Values {
	t.Helper()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("want a redirect, got %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query()
}

// TestOAuthJourneyGoSDK: a client that knows only the MCP URL — the
// go-sdk's own OAuth client — discovers the relay from the 401, reads the
// resource and server metadata, registers (DCR), has the user approve,
// gets a token and calls a tool on the bridged server.
func TestOAuthJourneyGoSDK(t *testing.T) {
	o := newOAuthRelay(t, OAuthConfig{})
	dialFakeBridge(t, o.testRelay, "alice")
	base, mcpURL := o.ts.URL, o.mcpURL("alice", "everything")

	resp, _ := rawPost(t, http.DefaultClient, mcpURL, "", initBody)
	want := `Bearer realm="tether-relay", resource_metadata="` + base + `/.well-known/oauth-protected-resource/mcp/alice/everything", scope="mcp"`
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("no token: %d %q, want 401 %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
	}
	var prm resourceMetadata
	getJSON(t, base+"/.well-known/oauth-protected-resource/mcp/alice/everything", &prm)
	if prm.Resource != mcpURL || len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != base ||
		strings.Join(prm.BearerMethodsSupported, ",") != "header" || strings.Join(prm.ScopesSupported, ",") != scopeMCP {
		t.Fatalf("protected resource metadata %+v", prm)
	}
	var asm map[string]any
	getJSON(t, base+"/.well-known/oauth-authorization-server", &asm)
	for k, v := range map[string]any{"issuer": base, "client_id_metadata_document_supported": true,
		"authorization_response_iss_parameter_supported": true, "registration_endpoint": base + "/oauth/register"} {
		if asm[k] != v {
			t.Errorf("AS metadata %s = %v, want %v", k, asm[k], v)
		}
	}
	if m, _ := json.Marshal(asm["code_challenge_methods_supported"]); string(m) != `["S256"]` {
		t.Errorf("code_challenge_methods_supported %s", m)
	}
	if m, _ := json.Marshal(asm["token_endpoint_auth_methods_supported"]); !strings.Contains(string(m), `"none"`) {
		t.Errorf("token_endpoint_auth_methods_supported %s", m)
	}

	req, _ := http.NewRequest("OPTIONS", base+"/oauth/token", nil)
	req.Header.Set("Origin", "https://inspector.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent ||
		resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("CORS preflight of the token endpoint: %v %v", resp, err)
	}

	b := o.browser(t, "alice")
	approvals := 0
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "journey", RedirectURIs: []string{"http://127.0.0.1:1/callback"},
			GrantTypes: []string{"authorization_code", "refresh_token"}, TokenEndpointAuthMethod: "none",
		}},
		RequestRefreshToken: true,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			approvals++
			f, page := b.consentForm(args.URL)
			if !strings.Contains(page, "journey") || !strings.Contains(page, "127.0.0.1:1") || !strings.Contains(page, "everything") {
				t.Errorf("consent page does not name the client, redirect host and server:\n%s", page)
			}
			q := b.submit(base, f, "approve")
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "journey", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: mcpURL, OAuthHandler: h}, nil)
	if err != nil {
		t.Fatalf("connect with OAuth: %v", err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hi over oauth"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := toolText(t, res); got != "hi over oauth" {
		t.Fatalf("echo = %q", got)
	}
	if approvals != 1 {
		t.Fatalf("user approved %d times, want 1", approvals)
	}
	var apps []connectedApp
	resp, body := b.do("GET", base+"/oauth/apps", nil)
	if err := json.Unmarshal([]byte(body), &apps); err != nil || resp.StatusCode != 200 || len(apps) != 1 ||
		apps[0].ClientName != "journey" || apps[0].Resource != mcpURL {
		t.Fatalf("connected apps: %d %s", resp.StatusCode, body)
	}
}

// TestOAuthSecondPublicURL: a relay with two names (--public-url twice)
// answers discovery on each with that name's resource — the URL the user
// pasted — or real clients (the TypeScript SDK, mcp-remote) refuse the
// metadata; the issuer stays the first name, and a token for the second
// name's resource calls there.
func TestOAuthSecondPublicURL(t *testing.T) {
	o := newOAuthRelay(t, OAuthConfig{}, "localhost")
	dialFakeBridge(t, o.testRelay, "alice")
	second := o.srv.PublicURLs[1]
	mcpURL := second + "/mcp/alice/everything"

	resp, _ := rawPost(t, http.DefaultClient, mcpURL, "", initBody)
	if ch := resp.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `resource_metadata="`+second+`/.well-known/oauth-protected-resource/mcp/alice/everything"`) {
		t.Fatalf("challenge on the second name: %q", ch)
	}
	for base, want := range map[string]string{second: mcpURL, o.ts.URL: o.mcpURL("alice", "everything")} {
		var prm resourceMetadata
		getJSON(t, base+"/.well-known/oauth-protected-resource/mcp/alice/everything", &prm)
		if prm.Resource != want || len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != o.ts.URL {
			t.Errorf("metadata at %s: %+v, want resource %s and issuer %s", base, prm, want, o.ts.URL)
		}
	}
	c := o.register(t, "second name", "http://127.0.0.1:5555/cb")
	tok, _ := c.mustTokens(c.code("alice", mcpURL))
	if st, _ := mcpStatus(t, tok, mcpURL); st != http.StatusOK {
		t.Fatalf("token for the second name's resource: %d", st)
	}
	if st, _ := mcpStatus(t, tok, o.mcpURL("alice", "other")); st != http.StatusUnauthorized {
		t.Fatalf("the same token on another server: %d, want 401", st)
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// manualClient is a hand-written OAuth client, for the refusals.
type manualClient struct {
	t        *testing.T
	o        *oauthRelay
	id       string
	redirect string
}

func (o *oauthRelay) register(t *testing.T, name string, redirects ...string) *manualClient {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"client_name": name, "redirect_uris": redirects, "token_endpoint_auth_method": "none"})
	resp, err := http.Post(o.ts.URL+"/oauth/register", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	out := readAll(t, resp)
	var m clientMetadata
	if err := json.Unmarshal([]byte(out), &m); err != nil || resp.StatusCode != http.StatusCreated || m.ClientID == "" {
		t.Fatalf("register: %d %s", resp.StatusCode, out)
	}
	return &manualClient{t: t, o: o, id: m.ClientID, redirect: redirects[0]}
}

func challengeOf(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

const verifier = "the-verifier-the-verifier-the-verifier-0123456789"

// authURL builds an authorization request; extra overrides parameters
// ("" deletes one).
func (c *manualClient) authURL(resource string, extra ...string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {c.redirect}, "state": {"st8"},
		"code_challenge": {challengeOf(verifier)}, "code_challenge_method": {"S256"}, "resource": {resource}, "scope": {"mcp"}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			q.Del(extra[i])
		} else {
			q.Set(extra[i], extra[i+1])
		}
	}
	return c.o.ts.URL + "/oauth/authorize?" + q.Encode()
}

// code runs authorize and approval as user and returns the code.
func (c *manualClient) code(user, resource string) string {
	c.t.Helper()
	b := c.o.browser(c.t, user)
	f, _ := b.consentForm(c.authURL(resource))
	q := b.submit(c.o.ts.URL, f, "approve")
	if q.Get("code") == "" || q.Get("state") != "st8" || q.Get("iss") != c.o.ts.URL {
		c.t.Fatalf("approval redirect %v", q)
	}
	return q.Get("code")
}

// token posts to the token endpoint.
func (c *manualClient) token(form url.Values) (int, map[string]any) {
	c.t.Helper()
	if !form.Has("client_id") {
		form.Set("client_id", c.id)
	}
	resp, err := http.PostForm(c.o.ts.URL+"/oauth/token", form)
	if err != nil {
		c.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(readAll(c.t, resp)), &m); err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, m
}

func (c *manualClient) exchange(code string) (int, map[string]any) {
	return c.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.redirect},
		"code_verifier": {verifier}})
}

// mustTokens exchanges a code and returns access and refresh tokens.
func (c *manualClient) mustTokens(code string) (string, string) {
	c.t.Helper()
	st, m := c.exchange(code)
	if st != 200 || m["token_type"] != "Bearer" || m["expires_in"] != float64(3600) {
		c.t.Fatalf("token: %d %v", st, m)
	}
	return m["access_token"].(string), m["refresh_token"].(string)
}

func wantOAuthError(t *testing.T, what string, status int, m map[string]any, code string) {
	t.Helper()
	if status != http.StatusBadRequest || m["error"] != code {
		t.Fatalf("%s: %d %v, want 400 %s", what, status, m, code)
	}
}

// mcpStatus is the status of an initialize with token at url.
func mcpStatus(t *testing.T, token, u string) (int, string) {
	t.Helper()
	resp, _ := rawPost(t, authClient(token), u, "", initBody)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

func TestOAuthAuthorizeRefusals(t *testing.T) {
	o := newOAuthRelay(t, OAuthConfig{})
	c := o.register(t, "refusals", "http://127.0.0.1:5555/cb")
	res := o.mcpURL("alice", "everything")
	b := o.browser(t, "alice")

	for _, tc := range []struct {
		name  string
		extra []string
		code  string
	}{
		{"plain PKCE", []string{"code_challenge_method", "plain", "code_challenge", verifier}, "invalid_request"},
		{"no PKCE", []string{"code_challenge", "", "code_challenge_method", ""}, "invalid_request"},
		{"foreign resource", []string{"resource", "https://elsewhere.example/mcp/alice/everything"}, "invalid_target"},
		{"another user's server", []string{"resource", o.mcpURL("bob", "everything")}, "invalid_target"},
		{"implicit", []string{"response_type", "token"}, "unsupported_response_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := b.do("GET", c.authURL(res, tc.extra...), nil)
			q := redirectQuery(t, resp)
			if q.Get("error") != tc.code || q.Get("state") != "st8" || q.Get("iss") != o.ts.URL ||
				!strings.HasPrefix(resp.Header.Get("Location"), c.redirect+"?") {
				t.Fatalf("redirect %s (%s), want error %s with state and iss", resp.Header.Get("Location"), body, tc.code)
			}
		})
	}
	t.Run("redirect mismatch is shown, not followed", func(t *testing.T) {
		for _, bad := range []string{"https://evil.example/cb", "http://127.0.0.1:5555/other", "http://evil.example:5555/cb"} {
			resp, body := b.do("GET", c.authURL(res, "redirect_uri", bad), nil)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, "redirect_uri") {
				t.Fatalf("%s: %d %s", bad, resp.StatusCode, body)
			}
		}
		// Loopback: any port.
		b.consentForm(c.authURL(res, "redirect_uri", "http://127.0.0.1:6000/cb"))
	})
	t.Run("not signed in goes to sign-in and back", func(t *testing.T) {
		u := c.authURL(res)
		resp, _ := o.browser(t, "").do("GET", u, nil)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Path != "/" || o.ts.URL+loc.Query().Get(signInReturnParam) != u {
			t.Fatalf("%d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("consent nonce", func(t *testing.T) {
		f, _ := b.consentForm(c.authURL(res))
		forged := url.Values{}
		for k, v := range f {
			forged[k] = v
		}
		forged.Set("csrf", "AAAA")
		forged.Set("action", "approve")
		if resp, _ := b.do("POST", o.ts.URL+"/oauth/authorize", forged); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("forged nonce: %d", resp.StatusCode)
		}
		f.Set("action", "approve")
		if resp, _ := o.browser(t, "bob").do("POST", o.ts.URL+"/oauth/authorize", f); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("alice's form posted by bob: %d", resp.StatusCode)
		}
		f.Set("resource", o.mcpURL("alice", "other"))
		if resp, _ := b.do("POST", o.ts.URL+"/oauth/authorize", f); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("form with a changed resource: %d", resp.StatusCode)
		}
	})
	t.Run("deny", func(t *testing.T) {
		f, _ := b.consentForm(c.authURL(res))
		if q := b.submit(o.ts.URL, f, "deny"); q.Get("error") != "access_denied" || q.Get("code") != "" {
			t.Fatalf("deny: %v", q)
		}
	})
}

func TestOAuthTokenRefusals(t *testing.T) {
	o := newOAuthRelay(t, OAuthConfig{})
	dialFakeBridge(t, o.testRelay, "alice")
	c := o.register(t, "tokens", "http://127.0.0.1:5555/cb")
	res := o.mcpURL("alice", "everything")

	t.Run("wrong verifier", func(t *testing.T) {
		st, m := c.token(url.Values{"grant_type": {"authorization_code"}, "code": {c.code("alice", res)},
			"redirect_uri": {c.redirect}, "code_verifier": {strings.Repeat("x", 50)}})
		wantOAuthError(t, "wrong verifier", st, m, "invalid_grant")
	})
	t.Run("redirect mismatch", func(t *testing.T) {
		st, m := c.token(url.Values{"grant_type": {"authorization_code"}, "code": {c.code("alice", res)},
			"redirect_uri": {"http://127.0.0.1:5555/other"}, "code_verifier": {verifier}})
		wantOAuthError(t, "redirect mismatch", st, m, "invalid_grant")
	})
	t.Run("wrong resource", func(t *testing.T) {
		st, m := c.token(url.Values{"grant_type": {"authorization_code"}, "code": {c.code("alice", res)},
			"redirect_uri": {c.redirect}, "code_verifier": {verifier}, "resource": {o.mcpURL("alice", "other")}})
		wantOAuthError(t, "wrong resource", st, m, "invalid_target")
	})
	t.Run("another client", func(t *testing.T) {
		other := o.register(t, "other", "http://127.0.0.1:5555/cb")
		st, m := other.exchange(c.code("alice", res))
		wantOAuthError(t, "code of another client", st, m, "invalid_grant")
	})
	t.Run("expired code", func(t *testing.T) {
		code := c.code("alice", res)
		o.skew.Store(int64(codeTTL + time.Second))
		defer o.skew.Store(0)
		st, m := c.exchange(code)
		wantOAuthError(t, "expired code", st, m, "invalid_grant")
	})
	t.Run("code reuse revokes what it gave", func(t *testing.T) {
		code := c.code("alice", res)
		access, refresh := c.mustTokens(code)
		if st, _ := mcpStatus(t, access, res); st != 200 {
			t.Fatalf("fresh token: %d", st)
		}
		st, m := c.exchange(code)
		wantOAuthError(t, "reused code", st, m, "invalid_grant")
		if st, _ := mcpStatus(t, access, res); st != http.StatusUnauthorized {
			t.Fatalf("token of a reused code: %d, want 401", st)
		}
		st, m = c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		wantOAuthError(t, "refresh of a reused code", st, m, "invalid_grant")
	})
	t.Run("refresh rotates; reuse revokes the family", func(t *testing.T) {
		a1, r1 := c.mustTokens(c.code("alice", res))
		st, m := c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r1}})
		if st != 200 || m["refresh_token"] == r1 || m["access_token"] == nil {
			t.Fatalf("refresh: %d %v", st, m)
		}
		a2, r2 := m["access_token"].(string), m["refresh_token"].(string)
		for _, a := range []string{a1, a2} {
			if st, _ := mcpStatus(t, a, res); st != 200 {
				t.Fatalf("access token before the reuse: %d", st)
			}
		}
		st, m = c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r1}})
		wantOAuthError(t, "reused refresh token", st, m, "invalid_grant")
		for _, a := range []string{a1, a2} {
			if st, _ := mcpStatus(t, a, res); st != http.StatusUnauthorized {
				t.Fatalf("access token of a revoked family: %d, want 401", st)
			}
		}
		st, m = c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r2}})
		wantOAuthError(t, "newest refresh token of a revoked family", st, m, "invalid_grant")
	})
	t.Run("refresh lifetime slides up to the grant's age", func(t *testing.T) {
		defer o.skew.Store(0)
		refreshAt := func(days int, rt string) (int, map[string]any) {
			o.skew.Store(int64(time.Duration(days) * 24 * time.Hour))
			return c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		}
		_, r := c.mustTokens(c.code("alice", res))
		for _, day := range []int{29, 58, 87} { // each within 30 days of the last
			st, m := refreshAt(day, r)
			if st != 200 {
				t.Fatalf("refresh on day %d: %d %v", day, st, m)
			}
			r = m["refresh_token"].(string)
		}
		// Only 4 days old, but the token issued on day 87 ends with the
		// grant, 90 days after the approval.
		st, m := refreshAt(91, r)
		wantOAuthError(t, "refresh past the grant's 90 days", st, m, "invalid_grant")

		_, idle := c.mustTokens(c.code("alice", res)) // approved on day 91
		st, m = refreshAt(91+31, idle)
		wantOAuthError(t, "refresh token idle 31 days", st, m, "invalid_grant")
		if m["error_description"] != "refresh token expired" {
			t.Fatalf("refused for %v, want the refresh token's expiry", m)
		}
	})
	t.Run("refresh by another client", func(t *testing.T) {
		_, r1 := c.mustTokens(c.code("alice", res))
		st, m := c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r1}, "client_id": {"tc_someone"}})
		wantOAuthError(t, "refresh by another client", st, m, "invalid_grant")
	})
}

// TestOAuthAudience: a token for /mcp/alice/everything calls that server
// only; one for /mcp/alice calls all of alice's; neither calls bob's or
// the status API; static tokens work on /mcp and /mcp-token.
func TestOAuthAudience(t *testing.T) {
	o := newOAuthRelay(t, OAuthConfig{})
	dialFakeBridge(t, o.testRelay, "alice")
	dialFakeBridge(t, o.testRelay, "bob")
	c := o.register(t, "audience", "http://127.0.0.1:5555/cb")
	one, _ := c.mustTokens(c.code("alice", o.mcpURL("alice", "everything")))
	all, _ := c.mustTokens(c.code("alice", o.ts.URL+"/mcp/alice"))

	if st, _ := mcpStatus(t, one, o.mcpURL("alice", "everything")); st != 200 {
		t.Fatalf("own server: %d", st)
	}
	st, challenge := mcpStatus(t, one, o.mcpURL("alice", "other"))
	if st != http.StatusUnauthorized || challenge != `Bearer realm="tether-relay", resource_metadata="`+o.ts.URL+
		`/.well-known/oauth-protected-resource/mcp/alice/other", scope="mcp", error="invalid_token"` {
		t.Fatalf("server A's token on server B: %d %q", st, challenge)
	}
	for _, tok := range []string{one, all} {
		if st, _ := mcpStatus(t, tok, o.mcpURL("bob", "everything")); st != http.StatusForbidden {
			t.Fatalf("alice's token on bob's server: %d, want 403", st)
		}
		req, _ := http.NewRequest("GET", o.ts.URL+"/v1/bridges/alice", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("resource-bound token on the status API: %d", resp.StatusCode)
		}
	}
	// The dev-wide token passes auth on every server of alice ("other" is
	// not bridged: 404 from the bridge lookup, not an auth refusal).
	for _, name := range []string{"everything", "other"} {
		if st, _ := mcpStatus(t, all, o.mcpURL("alice", name)); st == http.StatusUnauthorized || st == http.StatusForbidden {
			t.Fatalf("dev-wide token on %s: %d", name, st)
		}
	}

	// Step-up: a token without the client scope.
	st, challenge = mcpStatus(t, mustToken(t, "alice", ScopeBridge), o.mcpURL("alice", "everything"))
	if st != http.StatusForbidden || challenge != `Bearer realm="tether-relay", resource_metadata="`+o.ts.URL+
		`/.well-known/oauth-protected-resource/mcp/alice/everything", error="insufficient_scope", scope="mcp"` {
		t.Fatalf("bridge token on MCP: %d %q", st, challenge)
	}

	// Static tokens: unchanged on /mcp, and the header-only alias names
	// no metadata.
	static := mustToken(t, "alice", ScopeClient)
	for _, u := range []string{o.mcpURL("alice", "everything"), o.ts.URL + "/mcp-token/alice/everything"} {
		if st, _ := mcpStatus(t, static, u); st != 200 {
			t.Fatalf("static token at %s: %d", u, st)
		}
	}
	// A decoded path that could break out of the quoted parameter gets
	// the plain challenge.
	resp, _ := rawPost(t, http.DefaultClient, o.ts.URL+"/mcp/alice/x%22,resource_metadata=%22https:evil", "", initBody)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="tether-relay"` {
		t.Fatalf("quote in the path: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, _ = rawPost(t, http.DefaultClient, o.ts.URL+"/mcp-token/alice/everything", "", initBody)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="tether-relay"` {
		t.Fatalf("alias without token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	for _, u := range []string{"/.well-known/oauth-protected-resource/mcp-token/alice/everything", "/.well-known/oauth-protected-resource"} {
		resp, err := http.Get(o.ts.URL + u)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s: %d, want 404", u, resp.StatusCode)
		}
	}
}

// TestConnectedApps: the user sees the app and revokes it; its tokens
// die at once.
func TestConnectedApps(t *testing.T) {
	o := newOAuthRelay(t, OAuthConfig{})
	dialFakeBridge(t, o.testRelay, "alice")
	c := o.register(t, "Revokable <App>", "http://127.0.0.1:5555/cb")
	res := o.mcpURL("alice", "everything")
	access, refresh := c.mustTokens(c.code("alice", res))
	if st, _ := mcpStatus(t, access, res); st != 200 {
		t.Fatalf("fresh token: %d", st)
	}
	b := o.browser(t, "alice")
	resp, page := b.do("GET", o.ts.URL+"/apps", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "Revokable &lt;App&gt;") {
		t.Fatalf("apps page: %d %s", resp.StatusCode, page)
	}
	assertStrictPage(t, "apps page", resp.Header, page, true)
	m := revokeFormRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no revoke form: %s", page)
	}
	form := url.Values{"client_id": {html.UnescapeString(m[1])}, "csrf": {m[2]}}
	if resp, _ := o.browser(t, "bob").do("POST", o.ts.URL+"/apps/revoke", form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob revoking alice's app with her nonce: %d", resp.StatusCode)
	}
	if resp, _ := b.do("POST", o.ts.URL+"/apps/revoke", url.Values{"client_id": form["client_id"], "csrf": {"forged"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged nonce: %d", resp.StatusCode)
	}
	if st, _ := mcpStatus(t, access, res); st != 200 {
		t.Fatalf("token before the revoke: %d", st)
	}
	if resp, body := b.do("POST", o.ts.URL+"/apps/revoke", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	if st, _ := mcpStatus(t, access, res); st != http.StatusUnauthorized {
		t.Fatalf("token of a revoked app: %d, want 401", st)
	}
	st, em := c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	wantOAuthError(t, "refresh of a revoked app", st, em, "invalid_grant")
	if _, body := b.do("GET", o.ts.URL+"/oauth/apps", nil); strings.TrimSpace(body) != "[]" {
		t.Fatalf("apps after revoke: %s", body)
	}

	// The API: DELETE, and only one's own apps.
	access, _ = c.mustTokens(c.code("alice", res))
	var apps []connectedApp
	_, body := b.do("GET", o.ts.URL+"/oauth/apps", nil)
	if err := json.Unmarshal([]byte(body), &apps); err != nil || len(apps) != 1 {
		t.Fatalf("apps: %s", body)
	}
	if resp, _ := o.browser(t, "bob").do("DELETE", o.ts.URL+"/oauth/apps/"+apps[0].ID, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("bob deleting alice's app: %d", resp.StatusCode)
	}
	if resp, _ := b.do("DELETE", o.ts.URL+"/oauth/apps/"+apps[0].ID, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if st, _ := mcpStatus(t, access, res); st != http.StatusUnauthorized {
		t.Fatalf("token of a deleted app: %d, want 401", st)
	}
}
