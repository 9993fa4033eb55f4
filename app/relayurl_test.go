package app

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tether-dev/tether/keystore"
)

// fakeJWT has the shape ParseClaims reads; the signature is not checked
// client-side.
func fakeJWT(t *testing.T, claims map[string]any) keystore.Token {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return keystore.Token(enc(map[string]string{"alg": "HS256", "typ": "JWT"}) + "." + enc(claims) + ".c2ln")
}

func TestCheckTokenAudience(t *testing.T) {
	one := fakeJWT(t, map[string]any{"sub": "dev:alice", "scope": "bridge", "aud": "https://relay.example.com"})
	many := fakeJWT(t, map[string]any{"sub": "dev:alice", "scope": "bridge", "aud": []string{"https://a.example", "https://relay.example.com/"}})
	none := fakeJWT(t, map[string]any{"sub": "dev:alice", "scope": "bridge"})
	named := fakeJWT(t, map[string]any{"sub": "dev:alice", "scope": "bridge", "aud": "tether-relay"})
	mixed := fakeJWT(t, map[string]any{"sub": "dev:alice", "scope": "bridge", "aud": []string{"tether-relay", "https://relay.example.com"}})
	for _, tc := range []struct {
		name  string
		tok   keystore.Token
		relay string
		ok    bool
	}{
		{"same URL", one, "https://relay.example.com", true},
		{"trailing slash, case, default port", one, "HTTPS://Relay.Example.com:443/", true},
		{"wss form of the same relay", one, "wss://relay.example.com", true},
		{"another host", one, "https://evil.example", false},
		{"same host over http", one, "http://relay.example.com", false},
		{"another port", one, "https://relay.example.com:8443", false},
		{"another path prefix", one, "https://relay.example.com/other", false},
		{"one of several", many, "https://relay.example.com", true},
		{"none of several", many, "https://b.example", false},
		{"older token without aud", none, "https://evil.example", true},
		{"aud that names no place (tether-relay's default)", named, "http://127.0.0.1:8080", true},
		{"a name beside a URL: the URL decides", mixed, "https://evil.example", false},
		{"a name beside a URL, the URL's relay", mixed, "https://relay.example.com", true},
	} {
		err := CheckTokenAudience(tc.tok, tc.relay)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrTokenOtherRelay)) {
			t.Errorf("%s: err %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), tc.tok.Reveal()) {
			t.Errorf("%s: message carries the token", tc.name)
		}
	}
}

func TestCheckLinkRelay(t *testing.T) {
	relay := "https://relay.example.com:8443/team"
	for _, tc := range []struct {
		name      string
		aud       []string
		src       keystore.Source
		unboundOK bool
		want      error // nil: allowed
	}{
		{"keychain entry: stored for that relay", []string{"tether-relay"}, keystore.SourceKeychain, false, nil},
		{"no token at all", nil, "", false, nil},
		{"env token bound to the link's relay", []string{"HTTPS://Relay.Example.com:8443/team/"}, keystore.SourceEnv, false, nil},
		{"env token bound to another relay", []string{"https://relay.example.com"}, keystore.SourceEnv, true, ErrTokenOtherRelay},
		{"file token bound to another port", []string{"https://relay.example.com:9443/team"}, keystore.SourceTokenFile, true, ErrTokenOtherRelay},
		{"default audience, not confirmed", []string{"tether-relay"}, keystore.SourceEnv, false, ErrTokenUnbound},
		{"no aud, not confirmed", nil, keystore.SourceSystemd, false, ErrTokenUnbound},
		{"default audience, confirmed by the user", []string{"tether-relay"}, keystore.SourceTokenFile, true, nil},
	} {
		err := CheckLinkRelay(tc.aud, tc.src, relay, tc.unboundOK)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := MatchAudience([]string{"tether-relay", "https://relay.example.com:8443/team"}, relay); got != AudienceThisRelay {
		t.Errorf("a name beside the matching URL: %v", got)
	}
	if got := MatchAudience([]string{"tether-relay"}, relay); got != AudienceUnbound {
		t.Errorf("a name only: %v", got)
	}
}
