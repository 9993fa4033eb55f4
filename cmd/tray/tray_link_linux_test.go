//go:build linux

package main

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testbin"
)

// TestLinkHandOverOverDBus runs two real tether processes the way the OS
// does for a clicked tether:// link. The first is started with a link (no
// tray ran yet): it becomes the tray, shows the link in its menu, and its
// command line no longer holds the token. The second gets another link:
// it hands it to the first over tray.sock and exits at once, before anyone
// answers the question — the token lived in its argv only that long — and
// the first queues the link behind the pending one.
func TestLinkHandOverOverDBus(t *testing.T) {
	needTool(t, "dbus-daemon", "dbus-daemon")
	tray := testbin.Build(t, "./cmd/tray")
	home, err := os.MkdirTemp("", "tt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	writeJSON(t, filepath.Join(home, "settings.json"), map[string]any{"relay": "http://127.0.0.1:9"})
	writeJSON(t, filepath.Join(home, "mcp.json"), map[string]any{"mcpServers": map[string]any{}})
	env := []string{"TETHER_TOKEN=", "TETHER_TOKEN_FILE=", "CREDENTIALS_DIRECTORY="}
	link := func(relay, tok string) string {
		return "tether://connect?relay=" + url.QueryEscape(relay) + "&token=" + tok
	}
	bobTok := jwt("dev:bob", "bridge", time.Now().Add(time.Hour))
	carolTok := jwt("dev:carol", "bridge", time.Now().Add(time.Hour))

	addr := startBus(t)
	first := launchTrayArgs(t, tray, addr, home, []string{link("https://a.example.com:8443/team", bobTok)}, env...)
	const qa = "Link: connect to https://a.example.com:8443/team as bob?"
	const qb = "Link: connect to https://b.example.com as carol?"
	first.menu.waitFor(qa, 20*time.Second, func(n node) bool { return n.find(qa) != nil })
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(first.cmd.Process.Pid) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cmdline), bobTok) || strings.Contains(string(cmdline), "token=") {
		t.Errorf("the running tray's command line still holds the link's token: %q", cmdline)
	}

	second := exec.Command(tray, link("https://b.example.com", carolTok))
	second.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+addr, "TETHER_HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, "xdg"))
	second.Env = append(second.Env, env...)
	var out strings.Builder
	second.Stdout, second.Stderr = &out, &out
	start := time.Now()
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("second launch: %v: %s", err, out.String())
		}
	case <-time.After(15 * time.Second):
		second.Process.Kill()
		<-done
		t.Fatalf("the second launch did not exit while its link waits in the menu: %s", out.String())
	}
	t.Logf("second launch: argv with the token lived %v (start to exit)", time.Since(start).Round(time.Microsecond))
	if !strings.Contains(out.String(), "open its menu to accept the link (Link: connect to https://b.example.com as carol?)") {
		t.Errorf("second launch said %q", out.String())
	}
	if strings.Contains(out.String(), carolTok) {
		t.Error("second launch printed the token")
	}

	// The first tray got it over the socket and queued it behind its own.
	n := first.menu.waitFor("the queued link", 15*time.Second, func(n node) bool { return n.find(qa+" (1 more link waiting)") != nil })
	if n.find(qb) != nil {
		t.Fatalf("the newer link replaced the pending one:\n%s", n)
	}
	first.menu.click(n.find("Dismiss link"))
	first.menu.waitFor(qb, 15*time.Second, func(n node) bool { return n.find(qb) != nil })
}
