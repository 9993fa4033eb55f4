package server

import (
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tether-dev/tether/relay"
)

func signClaims(t *testing.T, rc jwt.RegisteredClaims) string {
	t.Helper()
	if rc.Subject == "" {
		rc.Subject = "dev:alice"
	}
	if rc.ExpiresAt == nil {
		rc.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, tokenClaims{RegisteredClaims: rc, Scope: scopes{ScopeClient}}).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerifyIssuerAudienceIAT(t *testing.T) {
	v := &Verifier{Secret: testSecret, Audiences: []string{"https://relay.example.com/"}}
	now := time.Now()
	cases := []struct {
		name string
		rc   jwt.RegisteredClaims
		ok   bool
	}{
		{"issued today", jwt.RegisteredClaims{ID: "a", Issuer: Issuer, Audience: jwt.ClaimStrings{DefaultAudience}}, true},
		{"for this relay", jwt.RegisteredClaims{ID: "b", Issuer: Issuer, Audience: jwt.ClaimStrings{"https://relay.example.com"}}, true},
		{"before iss/aud existed", jwt.RegisteredClaims{}, true},
		{"foreign issuer", jwt.RegisteredClaims{Issuer: "someone-else"}, false},
		{"foreign audience", jwt.RegisteredClaims{Issuer: Issuer, Audience: jwt.ClaimStrings{"https://evil.example.com"}}, false},
		{"iat within skew", jwt.RegisteredClaims{IssuedAt: jwt.NewNumericDate(now.Add(30 * time.Second))}, true},
		{"iat in the future", jwt.RegisteredClaims{IssuedAt: jwt.NewNumericDate(now.Add(5 * time.Minute))}, false},
	}
	for _, c := range cases {
		_, err := v.Verify(signClaims(t, c.rc))
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: %v is not ErrBadToken", c.name, err)
		}
	}

	tok, info, err := IssueToken(testSecret, TokenSpec{Dev: "alice", Scope: ScopeBridge, TTL: time.Hour, Audience: "https://other.example.com"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if info.ID == "" || info.Audience != "https://other.example.com" {
		t.Fatalf("issued %+v", info)
	}
	if _, err := v.Verify(tok); !errors.Is(err, ErrBadToken) {
		t.Fatalf("token for another relay: %v", err)
	}
}

// TestRevocation: a revoked client token gets 401 at once; a revoked
// bridge token's socket is closed with 4003.
func TestRevocation(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "secret.tokens")
	now := time.Now()
	client, ci, _ := IssueToken(testSecret, TokenSpec{Dev: "alice", Scope: ScopeClient, TTL: time.Hour}, now)
	bridge, bi, _ := IssueToken(testSecret, TokenSpec{Dev: "alice", Scope: ScopeBridge, TTL: time.Hour}, now)
	l := &TokenLog{Issued: []IssuedToken{ci, bi}}
	if err := l.Write(logPath); err != nil {
		t.Fatal(err)
	}
	rv, err := NewRevocations(logPath)
	if err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, &Server{Verifier: &Verifier{Secret: testSecret, Revocations: rv}})
	fb, _, err := tryDialFakeBridge(r, bridge, "alice")
	if err != nil {
		t.Fatal(err)
	}
	fb.t = t
	defer fb.ws.Close()
	fb.waitOnline(t, r, "alice")

	hc := authClient(client)
	url := r.mcpURL("alice", "everything")
	sid := openRaw(t, hc, url)

	if err := l.Revoke(ci.ID, now); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(logPath); err != nil {
		t.Fatal(err)
	}
	resp, body := rawPost(t, hc, url, sid, listBody)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "revoked") {
		t.Fatalf("revoked client token: %d %s", resp.StatusCode, body)
	}

	if err := l.Revoke(bi.ID, now); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(logPath); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fb.Gone:
	case <-time.After(10 * time.Second):
		t.Fatal("revoked bridge still connected")
	}
	if fb.closeCode != relay.CloseUnauthorized {
		t.Fatalf("close code %d, want %d", fb.closeCode, relay.CloseUnauthorized)
	}
}
