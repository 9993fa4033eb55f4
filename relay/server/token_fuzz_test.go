package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzAuthorize feeds any Authorization header to the relay's token check
// for alice's MCP endpoint. Whatever it accepts must be alice's client
// token, HS256-signed with the relay's secret and not expired; whatever it
// refuses gets 401 or 403, with an error that does not carry the token.
func FuzzAuthorize(f *testing.F) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	const aud = "https://relay.example.com"
	issue := func(dev, scope, audience string) string {
		tok, _, err := IssueToken(testSecret, TokenSpec{Dev: dev, Scope: scope, TTL: time.Hour, Audience: audience}, now.Add(-time.Minute))
		if err != nil {
			f.Fatal(err)
		}
		return tok
	}
	good := issue("alice", ScopeClient, aud)
	p := strings.Split(good, ".")
	for _, h := range []string{
		"Bearer " + good, "bearer   " + good + " ", "BEARER " + good, "Bearer\t" + good,
		"Bearer " + issue("alice", ScopeClient, ""), "Bearer " + issue("bob", ScopeClient, aud),
		"Bearer " + issue("alice", ScopeBridge, aud), "Bearer " + issue("alice", ScopeClient, "https://evil.example"),
		"Bearer " + p[0] + "." + p[1] + ".", "Bearer " + p[0] + "." + p[1] + "." + p[2] + "=",
		"Bearer " + p[0] + "." + p[1] + "." + p[2] + "." + p[2],
		// {"alg":"none","typ":"JWT"} with alice's claims and no signature
		"Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + p[1] + ".",
		"Basic YWxpY2U6cHc=", "Bearer", "Bearer ", "", "Bearer a.b.c", "Bearer ..",
	} {
		f.Add(h)
	}
	v := &Verifier{Secret: testSecret, Now: func() time.Time { return now }, Audiences: []string{aud}}
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest(http.MethodPost, "/mcp/alice/test", nil)
		r.Header.Set("Authorization", h)
		tok := bearer(r)
		c, code, err := v.authorize(r, "alice", ScopeClient)
		if err != nil {
			if code != http.StatusUnauthorized && code != http.StatusForbidden {
				t.Fatalf("refused with status %d: %v", code, err)
			}
			if len(tok) >= 16 && strings.Contains(err.Error(), tok) {
				t.Fatalf("the error carries the token: %v", err)
			}
			return
		}
		if c.Dev != "alice" || !c.HasScope(ScopeClient) || !now.Before(c.Expiry) {
			t.Fatalf("accepted %q as %+v", h, c)
		}
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %q: %d parts", tok, len(parts))
		}
		var head struct {
			Alg string `json:"alg"`
		}
		hb, err := base64.RawURLEncoding.DecodeString(parts[0])
		if err != nil || json.Unmarshal(hb, &head) != nil || head.Alg != "HS256" {
			t.Fatalf("accepted %q with header %s", tok, hb)
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		mac := hmac.New(sha256.New, testSecret)
		mac.Write([]byte(parts[0] + "." + parts[1]))
		if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
			t.Fatalf("accepted %q without the relay's signature", tok)
		}
	})
}
