package main

import (
	"context"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/keystore"
	"github.com/tether-dev/tether/relay/server"
	"github.com/tether-dev/tether/relay/store"
)

// codeLinkControl is an engine that follows SetLinkRelay at once and records the token.
type codeLinkControl struct {
	app.Control
	mu    sync.Mutex
	relay string
	token string
}

func (c *codeLinkControl) State(context.Context) (app.State, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return app.State{Relay: app.RelayState{URL: c.relay}}, nil
}

func (c *codeLinkControl) SetLinkRelay(_ context.Context, u string, _ bool) error {
	c.mu.Lock()
	c.relay = u
	c.mu.Unlock()
	return nil
}

func (c *codeLinkControl) Subscribe(ctx context.Context) (<-chan app.State, error) {
	st, _ := c.State(ctx)
	ch := make(chan app.State, 1)
	ch <- st
	close(ch)
	return ch, nil
}

func (c *codeLinkControl) SetToken(_ context.Context, tok string) error {
	c.mu.Lock()
	c.token = tok
	c.mu.Unlock()
	return nil
}

func TestParseConnectCodeLink(t *testing.T) {
	l, err := parseLink("tether://connect?relay=" + url.QueryEscape("https://relay.example.com:8443") + "&code=abc_DEF-123")
	if err != nil {
		t.Fatal(err)
	}
	if l.code != "abc_DEF-123" || l.token != "" || l.question() != "Link: connect to https://relay.example.com:8443?" {
		t.Fatalf("parsed %+v, question %q", l, l.question())
	}
	tok := jwt("dev:bob", "bridge", time.Now().Add(time.Hour))
	for _, bad := range []string{
		"tether://connect?code=abc",                                               // no relay
		"tether://connect?relay=https://r.example&code=abc&token=" + tok,          // both
		"tether://connect?relay=https://r.example&code=" + url.QueryEscape("a b"), // not base64url
		"tether://connect?relay=https://r.example&code=" + strings.Repeat("a", maxConnectCode+1),
		"tether://connect?relay=http://r.example&code=abc", // clear text off loopback
	} {
		if _, err := parseLink(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// TestConnectCodeLinkApply redeems a real relay's connect code on Accept,
// then points the engine at the relay and stores the token; the code
// works once.
func TestConnectCodeLinkApply(t *testing.T) {
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AddUser(t.Context(), store.User{ID: "alice", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	dev := &server.Device{Store: st, Secret: secret}
	srv := &server.Server{Verifier: &server.Verifier{Secret: secret}, Device: dev}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()

	cc, err := dev.NewConnectCode(t.Context(), "alice", ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cc.URL, "token") {
		t.Fatalf("the link carries a token: %s", cc.URL)
	}
	l, err := parseLink(cc.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctl := &codeLinkControl{relay: "https://old.example"}
	if err := l.apply(t.Context(), ctl, false); err != nil {
		t.Fatal(err)
	}
	if ctl.relay != ts.URL {
		t.Fatalf("relay %q, want %q", ctl.relay, ts.URL)
	}
	if c, err := keystore.ParseClaims(keystore.Token(ctl.token)); err != nil || c.Dev != "alice" {
		t.Fatalf("stored token claims %+v %v", c, err)
	}

	// Accepting the same link again: the code is spent, nothing changes.
	ctl2 := &codeLinkControl{relay: "https://old.example"}
	if err := l.apply(t.Context(), ctl2, false); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("second apply: %v", err)
	}
	if ctl2.relay != "https://old.example" || ctl2.token != "" {
		t.Fatalf("a spent code changed the engine: %+v", ctl2)
	}
}
