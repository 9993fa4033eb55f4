package server

import (
	"net/http"
	"net/url"
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
