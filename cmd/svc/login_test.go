package main

import (
	"bufio"
	"context"
	"io"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/app/config"
	"github.com/tether-dev/tether/keystore"
	"github.com/tether-dev/tether/relay/server"
	"github.com/tether-dev/tether/relay/store"
)

// TestLoginCommand runs `tetherd login` against a real relay: it prints
// the code and link, "opens" the link, and once the code is approved
// stores the bridge token and saves the relay.
func TestLoginCommand(t *testing.T) {
	home := t.TempDir()
	t.Setenv("TETHER_HOME", home)
	t.Setenv("TETHER_RELAY", "")
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AddUser(t.Context(), store.User{ID: "alice", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	dev := &server.Device{Store: st, Secret: secret, Interval: time.Second}
	srv := &server.Server{Verifier: &server.Verifier{Secret: secret}, Device: dev}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()

	kc := &keystore.Memory{}
	var mu sync.Mutex
	var opened []string
	browser := func(_ context.Context, u string) error {
		mu.Lock()
		opened = append(opened, u)
		mu.Unlock()
		return nil
	}
	pr, pw := io.Pipe()
	var out strings.Builder
	done := make(chan error, 1)
	go func() {
		done <- runLogin(t.Context(), []string{"--relay", ts.URL}, pw, io.Discard, kc, browser)
		pw.Close()
	}()
	code := regexp.MustCompile(`shows the code  ([A-Z]{4}-[A-Z]{4})`)
	sc := bufio.NewScanner(pr)
	approved := false
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if m := code.FindStringSubmatch(sc.Text()); m != nil && !approved {
			if err := dev.Approve(t.Context(), m[1], "alice", true); err != nil {
				t.Fatal(err)
			}
			approved = true
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("login: %v\n%s", err, out.String())
	}
	if !approved {
		t.Fatalf("no code printed:\n%s", out.String())
	}
	for _, want := range []string{ts.URL + "/device?user_code=", "Approved.", "Stored the bridge token for dev alice", "Saved relay " + ts.URL} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	if len(opened) != 1 || !strings.HasPrefix(opened[0], ts.URL+"/device?user_code=") {
		t.Fatalf("browser opened %q", opened)
	}
	tok, err := kc.Get(keystore.AccountFor(ts.URL))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := keystore.ParseClaims(tok); err != nil || c.Dev != "alice" {
		t.Fatalf("stored token: %+v %v", c, err)
	}
	s, err := config.LoadSettings(filepath.Join(home, "settings.json"))
	if err != nil || s.Relay != ts.URL {
		t.Fatalf("settings: %+v %v", s, err)
	}
}

func TestLoginCommandNeedsARelay(t *testing.T) {
	t.Setenv("TETHER_HOME", t.TempDir())
	t.Setenv("TETHER_RELAY", "")
	err := runLogin(t.Context(), nil, io.Discard, io.Discard, &keystore.Memory{}, nil)
	if err == nil || !strings.Contains(err.Error(), "--relay") {
		t.Fatalf("login without a relay: %v", err)
	}
}
