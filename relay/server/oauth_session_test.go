package server

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// refreshed runs a refresh grant and returns the new access and refresh
// tokens.
func (c *manualClient) refreshed(refresh string) (string, string) {
	c.t.Helper()
	st, m := c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	if st != 200 {
		c.t.Fatalf("refresh: %d %v", st, m)
	}
	return m["access_token"].(string), m["refresh_token"].(string)
}

// TestOAuthSessionOutlivesRefresh: an MCP session opened with an OAuth
// access token belongs to the grant, not to that token's jti, so the
// hourly refresh does not end it; a token of another grant or client
// cannot use it, and a revoked grant ends its access at once.
func TestOAuthSessionOutlivesRefresh(t *testing.T) {
	o := newOAuthRelay(t, OAuthConfig{})
	fb := dialFakeBridge(t, o.testRelay, "alice")
	c := o.register(t, "sessions", "http://127.0.0.1:5555/cb")
	res := o.mcpURL("alice", "everything")
	a1, r1 := c.mustTokens(c.code("alice", res))

	sid := openRaw(t, authClient(a1), res)
	if sc, err := o.srv.signer.parse(sid); err != nil || sc.Token == "" || sc.Token[:6] != "grant:" {
		t.Fatalf("session id not bound to the grant: %+v %v", sc, err)
	} else if exp := time.Until(sc.expiry()); exp < accessTTL+time.Minute {
		t.Fatalf("session capped at the access token's expiry: ends in %v", exp)
	}
	a2, r2 := c.refreshed(r1)
	if a2 == a1 {
		t.Fatal("refresh returned the same access token")
	}
	for _, tok := range []string{a1, a2} {
		resp, body := rawPost(t, authClient(tok), res, sid, listBody)
		if resp.StatusCode != 200 || resp.Header.Get(headerSession) != "" && resp.Header.Get(headerSession) != sid {
			t.Fatalf("tools/list on the session after a refresh: %d %s", resp.StatusCode, body)
		}
	}
	// Resumed from the id alone on a new bridge socket with the new
	// token: the same session comes back.
	fb.ws.Close()
	<-fb.Gone
	waitOffline(t, o.testRelay, "alice")
	dialFakeBridge(t, o.testRelay, "alice")
	if resp, body := rawPost(t, authClient(a2), res, sid, listBody); resp.StatusCode != 200 {
		t.Fatalf("resume with the refreshed token: %d %s", resp.StatusCode, body)
	}

	// Another grant of the same client, another client, a static token
	// of the same dev: not theirs.
	other, _ := c.mustTokens(c.code("alice", res))
	stranger := o.register(t, "stranger", "http://127.0.0.1:5555/cb")
	theirs, _ := stranger.mustTokens(stranger.code("alice", res))
	for what, tok := range map[string]string{"another grant": other, "another client": theirs,
		"a static token": mustToken(t, "alice", ScopeClient)} {
		if resp, body := rawPost(t, authClient(tok), res, sid, listBody); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s on the session: %d %s, want 404", what, resp.StatusCode, body)
		}
	}

	// The grant revoked: every token of it gets 401 on the session.
	c.refreshed(r2)
	if st, _ := c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r2}}); st != http.StatusBadRequest {
		t.Fatalf("reused refresh token: %d", st)
	}
	for _, tok := range []string{a1, a2} {
		if resp, body := rawPost(t, authClient(tok), res, sid, listBody); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token of a revoked grant on its session: %d %s, want 401", resp.StatusCode, body)
		}
	}
}

// TestOAuthLimitsFollowTheGrant: the per-token rate limit counts the
// grant, so a refresh does not hand a client a fresh budget.
func TestOAuthLimitsFollowTheGrant(t *testing.T) {
	o := newOAuthRelayWith(t, OAuthConfig{}, func(s *Server) { s.Limits.ClientRate = 1 })
	dialFakeBridge(t, o.testRelay, "alice")
	c := o.register(t, "limits", "http://127.0.0.1:5555/cb")
	res := o.mcpURL("alice", "everything")
	a1, r1 := c.mustTokens(c.code("alice", res))
	o.frozen.Store(time.Now().UnixNano())
	for i := range 2 { // the burst is twice the rate
		if st, _ := mcpStatus(t, a1, res); st != 200 {
			t.Fatalf("request %d within the burst: %d", i, st)
		}
	}
	if st, _ := mcpStatus(t, a1, res); st != http.StatusTooManyRequests {
		t.Fatalf("over the burst: %d, want 429", st)
	}
	a2, _ := c.refreshed(r1)
	if st, _ := mcpStatus(t, a2, res); st != http.StatusTooManyRequests {
		t.Fatalf("refreshed token of the same grant: %d, want 429 (the grant's budget is spent)", st)
	}
	other, _ := c.mustTokens(c.code("alice", res))
	if st, _ := mcpStatus(t, other, res); st != 200 {
		t.Fatalf("another grant: %d, want its own budget", st)
	}
}

// TestOAuthWithoutResource: a client that sends no resource (Claude.ai's
// custom connectors, older Claude Code and Codex) gets a grant for all of
// the signed-in user's servers, and the consent page says so; the token
// request may omit resource or name that audience, and nothing else.
func TestOAuthWithoutResource(t *testing.T) {
	o := newOAuthRelay(t, OAuthConfig{})
	dialFakeBridge(t, o.testRelay, "alice")
	dialFakeBridge(t, o.testRelay, "bob")
	c := o.register(t, "no resource", "http://127.0.0.1:5555/cb")
	b := o.browser(t, "alice")
	devWide := o.ts.URL + "/mcp/alice"

	f, page := b.consentForm(c.authURL("", "resource", ""))
	if !strings.Contains(page, "all your servers") {
		t.Fatalf("consent page does not say the app gets all servers:\n%s", page)
	}
	if f.Get("resource") != devWide {
		t.Fatalf("consent form resource %q, want %q", f.Get("resource"), devWide)
	}
	q := b.submit(o.ts.URL, f, "approve")
	access, refresh := c.mustTokens(q.Get("code"))
	for _, name := range []string{"everything", "other"} {
		if st, _ := mcpStatus(t, access, o.mcpURL("alice", name)); st == http.StatusUnauthorized || st == http.StatusForbidden {
			t.Fatalf("dev-wide token on alice's %s: %d", name, st)
		}
	}
	if st, _ := mcpStatus(t, access, o.mcpURL("bob", "everything")); st != http.StatusForbidden {
		t.Fatalf("alice's token on bob's server: %d, want 403", st)
	}
	var apps []connectedApp
	if _, body := b.do("GET", o.ts.URL+"/oauth/apps", nil); json.Unmarshal([]byte(body), &apps) != nil ||
		len(apps) != 1 || apps[0].Resource != devWide {
		t.Fatalf("connected apps: %s", body)
	}
	// Refresh: without resource, or with the grant's audience.
	_, refresh = c.refreshed(refresh)
	st, m := c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "resource": {devWide + "/"}})
	if st != 200 {
		t.Fatalf("refresh naming the grant's audience: %d %v", st, m)
	}
	st, m = c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {m["refresh_token"].(string)},
		"resource": {o.ts.URL + "/mcp/bob"}})
	wantOAuthError(t, "refresh naming another audience", st, m, "invalid_target")

	// A code of a resource-less request, redeemed without resource.
	f, _ = b.consentForm(c.authURL("", "resource", ""))
	q = b.submit(o.ts.URL, f, "approve")
	st, m = c.token(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {c.redirect},
		"code_verifier": {verifier}, "resource": {o.ts.URL + "/mcp/alice/everything"}})
	wantOAuthError(t, "code redeemed for another resource than the grant's", st, m, "invalid_target")

	// A resource that is not ours is still refused.
	resp, _ := b.do("GET", c.authURL("https://elsewhere.example/mcp/alice"), nil)
	if q := redirectQuery(t, resp); q.Get("error") != "invalid_target" {
		t.Fatalf("foreign resource: %v", q)
	}
}

// TestConnectedAppsLastUsed: a call with an app's access token shows as
// its last use in the Connected apps API and page once the relay records
// token uses (its revocation poll tick; flushed here directly).
func TestConnectedAppsLastUsed(t *testing.T) {
	o := newOAuthRelay(t, OAuthConfig{})
	dialFakeBridge(t, o.testRelay, "alice")
	c := o.register(t, "used app", "http://127.0.0.1:5555/cb")
	res := o.mcpURL("alice", "everything")
	access, refresh := c.mustTokens(c.code("alice", res))
	b := o.browser(t, "alice")
	apps := func() []connectedApp {
		t.Helper()
		var apps []connectedApp
		if _, body := b.do("GET", o.ts.URL+"/oauth/apps", nil); json.Unmarshal([]byte(body), &apps) != nil || len(apps) != 1 {
			t.Fatalf("apps: %s", body)
		}
		return apps
	}
	flush := func() { o.srv.Verifier.Revocations.flushUsed(t.Context()) }
	flush()
	if a := apps()[0]; a.LastUsed != nil {
		t.Fatalf("never used, but last_used %v", a.LastUsed)
	}
	if _, page := b.do("GET", o.ts.URL+"/apps", nil); !strings.Contains(page, "<td>never</td>") {
		t.Fatalf("apps page before any use: %s", page)
	}
	before := time.Now().Add(-time.Second)
	if st, _ := mcpStatus(t, access, res); st != 200 {
		t.Fatalf("call: %d", st)
	}
	flush()
	first := apps()[0].LastUsed
	if first == nil || first.Before(before) || first.After(time.Now().Add(time.Second)) {
		t.Fatalf("last_used %v after a call at %v", first, before)
	}
	if _, page := b.do("GET", o.ts.URL+"/apps", nil); !strings.Contains(page, first.Local().Format("2006-01-02 15:04")) &&
		!strings.Contains(page, first.UTC().Format("2006-01-02 15:04")) {
		t.Fatalf("apps page does not show the last use %v: %s", first, page)
	}
	// A token from a refresh counts for the same app.
	a2, _ := c.refreshed(refresh)
	if st, _ := mcpStatus(t, a2, res); st != 200 {
		t.Fatalf("call with the refreshed token: %d", st)
	}
	flush()
	cl, err := o.srv.Verifier.Verify(a2)
	if err != nil {
		t.Fatal(err)
	}
	jti, _ := cutJTI(cl.ID)
	tok, err := o.st.Token(t.Context(), jti)
	if err != nil || tok.LastUsed.IsZero() {
		t.Fatalf("refreshed token's use not recorded: %+v %v", tok, err)
	}
	if later := apps()[0].LastUsed; later == nil || later.Before(*first) || !later.Equal(tok.LastUsed) {
		t.Fatalf("app's last_used %v, want the refreshed token's %v", later, tok.LastUsed)
	}
}

// TestOAuthUnknownScopesIgnored: scopes the relay does not know (openid,
// profile, which generic OAuth clients add) are ignored, not refused; the
// grant and the token response say mcp.
func TestOAuthUnknownScopesIgnored(t *testing.T) {
	o := newOAuthRelay(t, OAuthConfig{})
	dialFakeBridge(t, o.testRelay, "alice")
	c := o.register(t, "generic client", "http://127.0.0.1:5555/cb")
	res := o.mcpURL("alice", "everything")
	b := o.browser(t, "alice")
	for _, scope := range []string{"openid profile mcp offline_access", "openid", "admin"} {
		f, _ := b.consentForm(c.authURL(res, "scope", scope))
		if f.Get("scope") != scopeMCP {
			t.Fatalf("scope %q: consent form scope %q, want mcp", scope, f.Get("scope"))
		}
		q := b.submit(o.ts.URL, f, "approve")
		st, m := c.exchange(q.Get("code"))
		if st != 200 || m["scope"] != scopeMCP {
			t.Fatalf("scope %q: token %d %v, want scope mcp", scope, st, m)
		}
		if st, _ := mcpStatus(t, m["access_token"].(string), res); st != 200 {
			t.Fatalf("scope %q: call %d", scope, st)
		}
	}
}

var revokeFormRE = regexp.MustCompile(`action="/apps/revoke"><input type="hidden" name="client_id" value="([^"]+)"><input type="hidden" name="csrf" value="([^"]+)"`)

// TestConnectedAppsGroupedByClient: the page shows one row per client,
// however often the user approved it, and its one Revoke revokes every
// approval of that client and no other client's.
func TestConnectedAppsGroupedByClient(t *testing.T) {
	o := newOAuthRelay(t, OAuthConfig{})
	dialFakeBridge(t, o.testRelay, "alice")
	c := o.register(t, "Twice", "http://127.0.0.1:5555/cb")
	other := o.register(t, "Other", "http://127.0.0.1:5555/cb")
	res := o.mcpURL("alice", "everything")
	a1, _ := c.mustTokens(c.code("alice", res))
	a2, _ := c.mustTokens(c.code("alice", o.ts.URL+"/mcp/alice"))
	kept, _ := other.mustTokens(other.code("alice", res))
	b := o.browser(t, "alice")
	_, page := b.do("GET", o.ts.URL+"/apps", nil)
	if n := strings.Count(page, "<td>Twice</td>"); n != 1 || !strings.Contains(page, "(2 approvals)") ||
		!strings.Contains(page, "<code>"+res+"</code>") || !strings.Contains(page, "<code>"+o.ts.URL+"/mcp/alice</code>") {
		t.Fatalf("apps page: %d rows of the twice-approved client, want one naming both resources:\n%s", n, page)
	}
	forms := revokeFormRE.FindAllStringSubmatch(page, -1)
	if len(forms) != 2 {
		t.Fatalf("%d revoke forms, want one per client:\n%s", len(forms), page)
	}
	for _, m := range forms {
		if html.UnescapeString(m[1]) != c.id {
			continue
		}
		// The nonce is bound to the client: not valid for the other one.
		if resp, _ := b.do("POST", o.ts.URL+"/apps/revoke", url.Values{"client_id": {other.id}, "csrf": {m[2]}}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("nonce of one client for another: %d", resp.StatusCode)
		}
		if resp, body := b.do("POST", o.ts.URL+"/apps/revoke", url.Values{"client_id": {c.id}, "csrf": {m[2]}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("revoke: %d %s", resp.StatusCode, body)
		}
		if resp, _ := b.do("POST", o.ts.URL+"/apps/revoke", url.Values{"client_id": {c.id}, "csrf": {m[2]}}); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("revoking a client with nothing left: %d, want 404", resp.StatusCode)
		}
	}
	for _, tok := range []string{a1, a2} {
		if st, _ := mcpStatus(t, tok, res); st != http.StatusUnauthorized {
			t.Fatalf("token of a revoked client: %d, want 401", st)
		}
	}
	if st, _ := mcpStatus(t, kept, res); st != 200 {
		t.Fatalf("the other client's token: %d", st)
	}
	if _, page = b.do("GET", o.ts.URL+"/apps", nil); strings.Contains(page, "Twice") || !strings.Contains(page, "<td>Other</td>") {
		t.Fatalf("apps page after the revoke:\n%s", page)
	}
}
