//go:build linux

package main

// End-to-end test of the real tether binary on a private DBus session bus:
// the test plays the StatusNotifierWatcher (as a desktop panel would), reads
// the menu over com.canonical.dbusmenu and clicks items, against a real
// tether-relay and a real stdio MCP server. Recipe:
// docs/desktop-testing.md §4.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/tether-dev/tether/internal/testbin"
	"github.com/tether-dev/tether/internal/waitbuf"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// needTool fails in CI and skips elsewhere when a program is missing.
func needTool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (install %s): the tray DBus test must run in CI", name, pkg)
		}
		t.Skipf("%s not found; install %s to run the tray DBus test", name, pkg)
	}
}

func startBus(t *testing.T) string {
	t.Helper()
	return startDaemon(t, "--session")
}

// startDaemon runs a dbus-daemon with config (--session, or
// --config-file=…) until the test ends and returns its address.
func startDaemon(t *testing.T, config string) string {
	t.Helper()
	cmd := exec.Command("dbus-daemon", config, "--nofork", "--nopidfile", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon address: %v", err)
	}
	return strings.TrimSpace(line)
}

// watcher plays org.kde.StatusNotifierWatcher.
type watcher struct{ items chan string }

func (w *watcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	if strings.HasPrefix(service, "/") { // fyne.io/systray sends only its object path
		service = string(sender) + service
	}
	w.items <- service
	return nil
}
func (w *watcher) RegisterStatusNotifierHost(string) *dbus.Error { return nil }

// node is one visible menu item as the host sees it.
type node struct {
	ID       int32
	Label    string
	Enabled  bool
	Submenu  bool
	Children []node
}

func parseNode(v []any) (node, bool) {
	props := v[1].(map[string]dbus.Variant)
	prop := func(k string, def any) any {
		if p, ok := props[k]; ok {
			return p.Value()
		}
		return def
	}
	if !prop("visible", true).(bool) {
		return node{}, false
	}
	n := node{ID: v[0].(int32), Label: prop("label", "").(string), Enabled: prop("enabled", true).(bool),
		Submenu: prop("children-display", "") == "submenu"}
	if prop("type", "standard") == "separator" {
		n.Label = "---"
	}
	for _, c := range v[2].([]dbus.Variant) {
		if cn, ok := parseNode(c.Value().([]any)); ok {
			n.Children = append(n.Children, cn)
		}
	}
	return n, true
}

func (n node) find(label string) *node {
	for i := range n.Children {
		if n.Children[i].Label == label {
			return &n.Children[i]
		}
		if f := n.Children[i].find(label); f != nil {
			return f
		}
	}
	return nil
}

func (n node) findPrefix(prefix string) *node {
	for i := range n.Children {
		if strings.HasPrefix(n.Children[i].Label, prefix) {
			return &n.Children[i]
		}
	}
	return nil
}

func (n node) String() string {
	var b strings.Builder
	var walk func(node, int)
	walk = func(n node, d int) {
		for _, c := range n.Children {
			fmt.Fprintf(&b, "%s%s (id %d, enabled %v)\n", strings.Repeat("  ", d), c.Label, c.ID, c.Enabled)
			walk(c, d+1)
		}
	}
	walk(n, 0)
	return b.String()
}

// trayMenu reads and clicks the tray's dbusmenu.
type trayMenu struct {
	t       *testing.T
	menu    dbus.BusObject
	signals chan *dbus.Signal
}

func (m *trayMenu) layout() node {
	m.t.Helper()
	var rev uint32
	var root []any
	// twice: the first GetLayout after a (re)build is one level deep
	for range 2 {
		if err := m.menu.Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &root); err != nil {
			m.t.Fatalf("GetLayout: %v", err)
		}
	}
	n, _ := parseNode(root)
	return n
}

// waitFor re-reads the menu on every layout or property signal until ok.
func (m *trayMenu) waitFor(what string, timeout time.Duration, ok func(node) bool) node {
	m.t.Helper()
	deadline := time.After(timeout)
	for {
		n := m.layout()
		if ok(n) {
			return n
		}
		select {
		case <-m.signals:
		case <-deadline:
			m.t.Fatalf("timed out after %v waiting for %s; menu:\n%s", timeout, what, n)
		}
	}
}

func (m *trayMenu) click(n *node) {
	m.t.Helper()
	if !n.Enabled {
		m.t.Fatalf("%q is disabled", n.Label)
	}
	if err := m.menu.Call("com.canonical.dbusmenu.Event", 0, n.ID, "clicked", dbus.MakeVariant(""), uint32(0)).Err; err != nil {
		m.t.Fatalf("click %q: %v", n.Label, err)
	}
}

// relay is a real tether-relay serve process.
type relay struct {
	bin, secret, url string
}

func startRelay(t *testing.T) relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := relay{bin: testbin.Build(t, "./cmd/relay"), secret: filepath.Join(t.TempDir(), "secret"), url: "http://" + addr}
	cmd := exec.Command(r.bin, "serve", "--listen", addr, "--secret-file", r.secret)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "listening on http://") {
			go func() {
				for sc.Scan() {
				}
			}()
			return r
		}
	}
	t.Fatal("relay did not start")
	return r
}

func (r relay) token(t *testing.T, dev, scope string) string {
	t.Helper()
	out, err := exec.Command(r.bin, "token", "--secret-file", r.secret, "--dev", dev, "--scope", scope, "--ttl", "1h").Output()
	if err != nil {
		t.Fatalf("issue token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// connected asks the relay whether dev's bridge is connected. The relay has
// no event for it, so waitConnected polls.
func (r relay) connected(dev, clientTok string) (bool, error) {
	req, _ := http.NewRequest(http.MethodGet, r.url+"/v1/bridges/"+dev, nil)
	req.Header.Set("Authorization", "Bearer "+clientTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var st struct {
		Connected bool `json:"connected"`
	}
	if resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %d", resp.StatusCode)
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st.Connected, err
}

func (r relay) waitConnected(t *testing.T, dev, clientTok string, want bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		got, err := r.connected(dev, clientTok)
		if err == nil && got == want {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("relay never reported connected=%v for %s (last error %v)", want, dev, last)
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, _ := json.MarshalIndent(v, "", "  ")
	// atomic, as editors save, so the watcher never sees half a file
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// trayRun is one tether process registered on a private session bus.
type trayRun struct {
	cmd    *exec.Cmd
	exited chan error
	out    *waitbuf.Buffer
	item   dbus.BusObject // its StatusNotifierItem
	menu   *trayMenu
}

// launchTray plays the desktop's StatusNotifierWatcher on the bus at addr,
// starts the tray with TETHER_HOME=home plus env, and waits until it
// registers its item.
func launchTray(t *testing.T, tray, addr, home string, env ...string) trayRun {
	t.Helper()
	return launchTrayArgs(t, tray, addr, home, nil, env...)
}

// launchTrayArgs is launchTray with command line arguments for the tray.
func launchTrayArgs(t *testing.T, tray, addr, home string, args []string, env ...string) trayRun {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	w := &watcher{items: make(chan string, 4)}
	if err := conn.Export(w, "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName("org.kde.StatusNotifierWatcher", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own the watcher name: %v %v", reply, err)
	}

	out := &waitbuf.Buffer{}
	app := exec.Command(tray, args...)
	app.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+addr, "TETHER_HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, "xdg"))
	app.Env = append(app.Env, env...)
	app.Stdout, app.Stderr = out, out
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- app.Wait() }()
	t.Cleanup(func() {
		app.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("tether output:\n%s", out)
		}
	})

	var svc string
	select {
	case svc = <-w.items:
	case err := <-exited:
		t.Fatalf("tether exited before registering: %v\n%s", err, out)
	case <-time.After(20 * time.Second):
		t.Fatalf("tether did not register with the watcher\n%s", out)
	}
	bus, path, _ := strings.Cut(svc, "/")
	item := conn.Object(bus, dbus.ObjectPath("/"+path))
	mp, err := item.GetProperty("org.kde.StatusNotifierItem.Menu")
	if err != nil {
		t.Fatal(err)
	}
	sig := make(chan *dbus.Signal, 64)
	conn.Signal(sig)
	if err := conn.AddMatchSignal(dbus.WithMatchSender(bus), dbus.WithMatchInterface("com.canonical.dbusmenu")); err != nil {
		t.Fatal(err)
	}
	m := &trayMenu{t: t, menu: conn.Object(bus, mp.Value().(dbus.ObjectPath)), signals: sig}
	return trayRun{cmd: app, exited: exited, out: out, item: item, menu: m}
}

func TestTrayOverDBus(t *testing.T) {
	needTool(t, "dbus-daemon", "dbus-daemon")
	tray := testbin.Build(t, "./cmd/tray")
	mcpBin := testbin.Build(t, "./internal/testservers/mcpserver")
	rl := startRelay(t)
	bridgeTok, clientTok := rl.token(t, "alice", "bridge"), rl.token(t, "alice", "client")

	// A short TETHER_HOME: the control socket path must fit in sun_path.
	home, err := os.MkdirTemp("", "tt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	writeJSON(t, filepath.Join(home, "settings.json"), map[string]any{"relay": rl.url})
	mcpJSON := filepath.Join(home, "mcp.json")
	writeJSON(t, mcpJSON, map[string]any{"mcpServers": map[string]any{"test": map[string]any{"command": mcpBin}}})

	addr := startBus(t)
	tr := launchTray(t, tray, addr, home, "TETHER_TOKEN="+bridgeTok)
	app, exited, item, m := tr.cmd, tr.exited, tr.item, tr.menu

	// Connected, with the real server's tools listed in its submenu.
	toolsRe := regexp.MustCompile(`^test — (\d+) tools?$`)
	var tools int
	n := m.waitFor("connected with the test server ready", 30*time.Second, func(n node) bool {
		s := n.findPrefix("test — ")
		if n.findPrefix("Connected to 127.0.0.1") == nil || s == nil || !toolsRe.MatchString(s.Label) {
			return false
		}
		tools, _ = strconv.Atoi(toolsRe.FindStringSubmatch(s.Label)[1])
		return tools > 0
	})
	rl.waitConnected(t, "alice", clientTok, true)
	t.Logf("menu over DBus:\n%s", n)
	if st := n.findPrefix("Connected to "); st.Label != "Connected to "+strings.TrimPrefix(rl.url, "http://")+" as alice" || st.Enabled {
		t.Errorf("status line %q enabled=%v", st.Label, st.Enabled)
	}
	srv := n.findPrefix("test — ")
	if !srv.Submenu || srv.find("Restart") == nil || !srv.find("Restart").Enabled || srv.find("Disable") == nil || srv.find("Show log") == nil {
		t.Errorf("server submenu lacks its actions:\n%s", n)
	}
	if srv.find("echo") == nil && len(srv.Children) < 5 {
		t.Errorf("server submenu lists no tools:\n%s", n)
	}
	if q := n.find("Quit Tether"); q == nil || !q.Enabled {
		t.Errorf("no enabled Quit item:\n%s", n)
	}
	if tip, err := item.GetProperty("org.kde.StatusNotifierItem.ToolTip"); err != nil || !strings.Contains(fmt.Sprint(tip.Value()), "Tether — connected · 1 server · "+strconv.Itoa(tools)+" tool") {
		t.Errorf("tooltip %v (%v)", tip, err)
	}

	// An edit of mcp.json changes the tool count in the menu.
	writeJSON(t, mcpJSON, map[string]any{"mcpServers": map[string]any{"test": map[string]any{
		"command": mcpBin, "args": []string{"-extra-tools", "3"}}}})
	want := fmt.Sprintf("test — %d tools", tools+3)
	start := time.Now()
	m.waitFor(want, 30*time.Second, func(n node) bool { return n.find(want) != nil })
	t.Logf("mcp.json edit to %q in the menu: %v", want, time.Since(start).Round(time.Millisecond))

	// Disconnect and Connect through the menu; the relay sees both.
	n = m.layout()
	m.click(n.find("Disconnect"))
	n = m.waitFor("Disconnected", 15*time.Second, func(n node) bool { return n.find("Disconnected") != nil && n.find("Connect") != nil })
	rl.waitConnected(t, "alice", clientTok, false)
	m.click(n.find("Connect"))
	m.waitFor("connected again", 15*time.Second, func(n node) bool {
		return n.findPrefix("Connected to ") != nil && n.find("Disconnect") != nil
	})
	rl.waitConnected(t, "alice", clientTok, true)

	// A second launch finds this tray and exits with a message.
	second := exec.Command(tray)
	second.Env = app.Env
	msg, err := second.CombinedOutput()
	if err != nil || !strings.Contains(string(msg), "already running") {
		t.Errorf("second launch: %v: %s", err, msg)
	}

	// Quit stops the in-process engine and exits cleanly.
	m.click(m.layout().find("Quit Tether"))
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("tether exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("tether did not exit after Quit")
	}
	exited <- nil // for the cleanup
	rl.waitConnected(t, "alice", clientTok, false)
	if _, err := os.Stat(filepath.Join(home, "tether.sock")); !os.IsNotExist(err) {
		t.Errorf("control socket left behind: %v", err)
	}
}

// keyringBus starts a private DBus session bus with an unlocked, empty
// gnome-keyring on it (the real Secret Service), and returns the bus
// address and the XDG environment that goes with it.
func keyringBus(t *testing.T) (string, []string) {
	t.Helper()
	return testbin.PrivateKeyring(t)
}

// TestTrayNoTokenOverDBus: with no token anywhere the status line says in
// plain words what to do — not the token lookup's internal error — and
// the tooltip-only details stay out of the menu.
func TestTrayNoTokenOverDBus(t *testing.T) {
	needTool(t, "dbus-daemon", "dbus-daemon")
	tray := testbin.Build(t, "./cmd/tray")
	tests := []struct {
		name string
		bus  func(t *testing.T) (string, []string)
		want string
	}{
		// An empty keychain: nothing stored yet, the first-run case.
		{"empty keychain", keyringBus, "No token — sign in to connect"},
		// A bus without a Secret Service, as on a bare desktop session.
		{"no keychain", func(t *testing.T) (string, []string) { return startBus(t), nil }, "No keychain here — use a token file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home, err := os.MkdirTemp("", "tt")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(home) })
			// A relay URL, so the keychain is asked; nothing listens there.
			writeJSON(t, filepath.Join(home, "settings.json"), map[string]any{"relay": "http://127.0.0.1:9"})
			writeJSON(t, filepath.Join(home, "mcp.json"), map[string]any{"mcpServers": map[string]any{}})
			addr, env := tt.bus(t)
			env = append(env, "TETHER_TOKEN=", "TETHER_TOKEN_FILE=", "CREDENTIALS_DIRECTORY=")
			m := launchTray(t, tray, addr, home, env...).menu
			n := m.waitFor(tt.want, 20*time.Second, func(n node) bool { return n.find(tt.want) != nil })
			if n.findPrefix("No token:") != nil || strings.Contains(n.String(), "Looked, in order") {
				t.Errorf("menu shows the internal error:\n%s", n)
			}
			if c := n.find("Connect"); c == nil || c.Enabled {
				t.Errorf("Connect should be shown disabled without a token:\n%s", n)
			}
		})
	}
}
