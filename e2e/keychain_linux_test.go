//go:build linux

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testbin"
)

// privateKeyring starts a private DBus session bus with an unlocked
// gnome-keyring on it and returns the environment that points at it. Every
// tetherd started with that environment uses the real Secret Service, and a
// developer's own keyring is never touched.
func privateKeyring(t *testing.T) []string {
	t.Helper()
	testbin.NeedTools(t, "secret-tool")
	bus, xdg := testbin.PrivateKeyring(t)
	return append(xdg, "DBUS_SESSION_BUS_ADDRESS="+bus)
}

// tetherdCmd runs one tetherd command to completion.
func tetherdCmd(t *testing.T, env []string, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testbin.Build(t, "./cmd/svc"), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestKeychainToken: `tetherd token set` stores the token in the real
// Secret Service, a fresh `tetherd run` connects with it (no token in its
// environment or files), and `token clear` removes it and disconnects.
func TestKeychainToken(t *testing.T) {
	bus := privateKeyring(t)
	r := startRelay(t)
	home := t.TempDir()
	env := append([]string{"TETHER_HOME=" + home, "TETHER_TOKEN=", "TETHER_TOKEN_FILE=", "TETHER_RELAY="}, bus...)
	bridgeTok := r.token(t, dev, "bridge")
	client := r.token(t, dev, "client")

	out, err := tetherdCmd(t, env, bridgeTok+"\n", "token", "set", "--relay", r.url())
	if err != nil || !strings.Contains(out, "Stored the bridge token for dev "+dev) {
		t.Fatalf("token set: %v\n%s", err, out)
	}
	// An independent Secret Service client sees it under the relay's URL.
	lookup := exec.Command("secret-tool", "lookup", "service", "tether", "username", r.url())
	lookup.Env = append(os.Environ(), bus...)
	if got, err := lookup.Output(); err != nil || string(got) != bridgeTok {
		t.Fatalf("secret-tool lookup: %v (got %d bytes)", err, len(got))
	}
	out, err = tetherdCmd(t, env, "", "token", "show")
	if err != nil || !strings.Contains(out, "source:  keychain") || !strings.Contains(out, "dev:     "+dev) || strings.Contains(out, bridgeTok) {
		t.Fatalf("token show: %v\n%s", err, out)
	}

	// A fresh engine: the relay URL comes from settings.json (written by
	// token set), the token from the keychain.
	writeFileT(t, filepath.Join(home, "mcp.json"), `{"mcpServers": {"test": {"command": "`+testbin.Build(t, "./internal/testservers/mcpserver")+`"}}}`)
	d := startTetherd(t, "", env, "run")
	r.waitServing(t, dev, client, "test", 30*time.Second)
	d.log.waitFor(t, 0, "source=keychain", 10*time.Second)

	out, err = tetherdCmd(t, env, "", "status")
	if err != nil || !strings.Contains(out, "connected to ") || !strings.Contains(out, "from keychain") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	out, err = tetherdCmd(t, env, "", "token", "clear")
	if err != nil || !strings.Contains(out, "Removed") {
		t.Fatalf("token clear: %v\n%s", err, out)
	}
	r.waitStatus(t, dev, client, "the bridge disconnected after token clear", 30*time.Second, func(s bridgeStatus) bool { return !s.Connected })
	again := exec.Command("secret-tool", "lookup", "service", "tether", "username", r.url())
	again.Env = append(os.Environ(), bus...)
	if got, err := again.Output(); err == nil && len(got) > 0 {
		t.Fatal("the token is still in the keychain after token clear")
	}
	d.stop(t)
	assertNoToken(t, bridgeTok, home, d.log.String())
}

// TestKeychainUnreachable: with no Secret Service, token set says exactly
// that and how to give the token another way, and stores nothing anywhere.
func TestKeychainUnreachable(t *testing.T) {
	home := t.TempDir()
	env := []string{"TETHER_HOME=" + home, "DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(home, "no-bus")}
	tok := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkZXY6YWxpY2UiLCJzY29wZSI6WyJicmlkZ2UiXX0.c2ln"
	out, err := tetherdCmd(t, env, tok+"\n", "token", "set", "--relay", "https://relay.example.com")
	if err == nil || !strings.Contains(out, "no OS keychain is reachable") || !strings.Contains(out, "--token-file") || !strings.Contains(out, "TETHER_TOKEN") {
		t.Fatalf("token set without a Secret Service: %v\n%s", err, out)
	}
	assertNoToken(t, tok, home, out)
}
