package server

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
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
	if info.JTI == "" || info.Audience != "https://other.example.com" {
		t.Fatalf("issued %+v", info)
	}
	if _, err := v.Verify(tok); !errors.Is(err, ErrBadToken) {
		t.Fatalf("token for another relay: %v", err)
	}
}

// TestTakeoverSameToken: a second bridge with the same token takes the
// slot; the relay counts it.
func TestTakeoverSameToken(t *testing.T) {
	r := newTestRelay(t, 5*time.Second)
	tok := mustToken(t, "alice", ScopeBridge)
	for range 2 {
		fb, _, err := tryDialFakeBridge(r, tok, "alice")
		if err != nil {
			t.Fatal(err)
		}
		fb.t = t
		defer fb.ws.Close()
		fb.waitOnline(t, r, "alice")
	}
	if body := r.metrics(t); !strings.Contains(body, "tether_relay_slot_takeovers_total 1\n") {
		t.Fatalf("metrics:\n%s", body)
	}
}
