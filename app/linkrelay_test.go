package app

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/tether-dev/tether/app/config"
	"github.com/tether-dev/tether/keystore"
)

// TestEngineSetLinkRelay: the engine, not only the tray, refuses a link's
// relay when the token it would send there (here $TETHER_TOKEN, which
// follows every relay) is bound to another relay, or to none without the
// user's confirmation; and State shows the token's audience so a UI can
// ask first.
func TestEngineSetLinkRelay(t *testing.T) {
	var mu sync.Mutex
	envToken := ""
	setEnv := func(tok keystore.Token) {
		mu.Lock()
		envToken = tok.Reveal()
		mu.Unlock()
	}
	f := startEngine(t, `{"mcpServers": {}}`, func(o *EngineOptions) {
		o.Getenv = func(k string) string {
			mu.Lock()
			defer mu.Unlock()
			if k == keystore.EnvToken {
				return envToken
			}
			return ""
		}
	})
	ctx := context.Background()
	relayIs := func(want string) {
		t.Helper()
		s, err := config.LoadSettings(f.paths.Settings)
		if err != nil || s.Relay != want {
			t.Fatalf("settings.json relay %q (%v), want %q", s.Relay, err, want)
		}
	}
	f.waitState(t, "the keychain token", func(st State) bool { return st.Token.Present })

	// The keychain's entry for another relay is that relay's: allowed.
	other := "https://other.invalid"
	if err := f.eng.SetLinkRelay(ctx, other, false); err != nil {
		t.Fatalf("keychain token: %v", err)
	}
	relayIs(other)

	unbound := fakeJWT(t, map[string]any{"sub": "dev:alice", "scope": "bridge", "aud": "tether-relay"})
	setEnv(unbound)
	evil := "https://evil.invalid:8443"
	err := f.eng.SetLinkRelay(ctx, evil, false)
	if !errors.Is(err, ErrTokenUnbound) {
		t.Fatalf("unbound env token, not confirmed: %v", err)
	}
	var sc interface{ StatusCode() int }
	if !errors.As(err, &sc) || sc.StatusCode() != 403 {
		t.Errorf("refusal is not a 403: %v", err)
	}
	relayIs(other)
	if err := f.eng.SetLinkRelay(ctx, evil, true); err != nil {
		t.Fatalf("unbound env token, confirmed: %v", err)
	}
	relayIs(evil)

	bound := fakeJWT(t, map[string]any{"sub": "dev:alice", "scope": "bridge", "aud": "https://a.example"})
	setEnv(bound)
	if err := f.eng.SetLinkRelay(ctx, "https://b.example", true); !errors.Is(err, ErrTokenOtherRelay) {
		t.Fatalf("env token bound to another relay: %v", err)
	}
	relayIs(evil)
	if err := f.eng.SetLinkRelay(ctx, "https://a.example/", false); err != nil {
		t.Fatalf("env token bound to the link's relay: %v", err)
	}
	relayIs("https://a.example/")
	f.waitState(t, "the env token's audience", func(st State) bool {
		return st.Token.Source == keystore.SourceEnv && slices.Equal(st.Token.Audience, []string{"https://a.example"})
	})
}
