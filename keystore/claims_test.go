package keystore

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// jwt builds an unsigned-but-shaped JWT: the signature is never checked here.
func jwt(payload string) Token {
	return Token(b64(`{"alg":"HS256","typ":"JWT"}`) + "." + b64(payload) + "." + b64("signature-bytes"))
}

func TestParseClaimsGood(t *testing.T) {
	iat := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	exp := iat.Add(30 * 24 * time.Hour)
	c, err := ParseClaims(jwt(`{"sub":"dev:alice","scope":["bridge"],"iat":1793527200,"exp":1796119200,"extra":{"x":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Dev != "alice" || len(c.Scopes) != 1 || c.Scopes[0] != "bridge" ||
		!c.IssuedAt.Equal(iat) || !c.Expiry.Equal(exp) {
		t.Fatalf("claims = %+v, want alice [bridge] iat %v exp %v", c, iat, exp)
	}
	if c.Expired(exp.Add(-time.Second)) || !c.Expired(exp) || !c.Expired(exp.Add(time.Hour)) {
		t.Error("Expired is wrong around exp")
	}
	threeDays := 72 * time.Hour
	if c.ExpiresWithin(threeDays, exp.Add(-threeDays)) || !c.ExpiresWithin(threeDays, exp.Add(-threeDays+time.Second)) {
		t.Error("ExpiresWithin is wrong around exp-3d")
	}
	if !c.ExpiresWithin(threeDays, exp.Add(time.Hour)) {
		t.Error("an expired token should also count as expiring within 3 days")
	}

	// OAuth-style scope string, no exp or iat, fractional dates elsewhere.
	c, err = ParseClaims(jwt(`{"sub":"dev:bob-2","scope":"client bridge"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Dev != "bob-2" || strings.Join(c.Scopes, ",") != "client,bridge" || !c.Expiry.IsZero() {
		t.Fatalf("claims = %+v", c)
	}
	if c.Expired(time.Now()) || c.ExpiresWithin(1000*time.Hour, time.Now()) {
		t.Error("a token without exp never expires")
	}

	// Padding is tolerated.
	padded := Token(base64.URLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
		base64.URLEncoding.EncodeToString([]byte(`{"sub":"dev:c","exp":1.5}`)) + ".c2ln")
	c, err = ParseClaims(padded)
	if err != nil || c.Expiry.UnixMilli() != 1500 {
		t.Fatalf("padded: %+v %v", c, err)
	}
}

func TestParseClaimsExpired(t *testing.T) {
	c, err := ParseClaims(jwt(`{"sub":"dev:alice","scope":["bridge"],"exp":1000000000}`))
	if err != nil {
		t.Fatal(err) // an expired token still parses: the UI shows "expired on …"
	}
	if !c.Expired(time.Now()) || c.Expiry.Year() != 2001 {
		t.Fatalf("expiry %v should be in 2001 and expired", c.Expiry)
	}
}

func TestParseClaimsGarbage(t *testing.T) {
	for _, c := range []struct {
		name string
		tok  Token
		want string
	}{
		{"empty", "", "want 3 dot-separated parts, got 1"},
		{"opaque", "tthr_0123456789abcdefSECRET", "want 3 dot-separated parts, got 1"},
		{"two parts", Token(b64(`{"alg":"HS256"}`) + "." + b64(`{"sub":"dev:a"}`)), "got 2"},
		{"four parts", jwt(`{"sub":"dev:a"}`) + ".x", "got 4"},
		{"header not base64", Token("!!!." + b64(`{"sub":"dev:a"}`) + ".c2ln"), "header: not base64url"},
		{"header not json", Token(b64("hello") + "." + b64(`{"sub":"dev:a"}`) + ".c2ln"), "header: not a JSON object"},
		{"no alg", Token(b64(`{"typ":"JWT"}`) + "." + b64(`{"sub":"dev:a"}`) + ".c2ln"), "header has no alg"},
		{"payload not base64", Token(b64(`{"alg":"HS256"}`) + ".%%%.c2ln"), "payload: not base64url"},
		{"payload array", jwt(`["dev:a"]`), "payload: not a JSON object"},
		{"no signature", Token(b64(`{"alg":"HS256"}`) + "." + b64(`{"sub":"dev:a"}`) + "."), "signature is empty"},
		{"no sub", jwt(`{"scope":["bridge"]}`), `sub "" is not "dev:<id>"`},
		{"user sub", jwt(`{"sub":"user:alice"}`), `sub "user:alice" is not`},
		{"empty dev", jwt(`{"sub":"dev:"}`), `sub "dev:" is not`},
		{"bad scope", jwt(`{"sub":"dev:a","scope":7}`), "scope is neither"},
		{"bad exp", jwt(`{"sub":"dev:a","exp":"tomorrow"}`), "payload: not a JSON object"},
		{"huge exp", jwt(`{"sub":"dev:a","exp":1e300}`), "exp 1e+300 is not a date"},
	} {
		_, err := ParseClaims(c.tok)
		if !errors.Is(err, ErrNotJWT) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want ErrNotJWT containing %q", c.name, err, c.want)
			continue
		}
		if c.tok != "" && strings.Contains(err.Error(), string(c.tok)) {
			t.Errorf("%s: error quotes the token: %v", c.name, err)
		}
	}
}
