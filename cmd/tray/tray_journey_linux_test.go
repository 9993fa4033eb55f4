//go:build linux

package main

// The two ways issue 14 promises from nothing to a connected bridge with
// only a browser and the tray, each run whole: the real tether binary on a
// private session bus (its menu read and clicked over DBus, its token in
// the real Secret Service, its notifications sent to a notification
// service on that bus), a real tether-relay with its store and web page,
// and the test as the person's browser — a cookie-keeping HTTP client
// that signs in through a `tether-relay user add` link and submits the
// relay's own forms with their CSRF tokens, as a browser would. Nobody
// copies a token: the tray's command line and environment never hold one.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/internal/testbin"
	"github.com/tether-dev/tether/keystore"
)

// browser is the person's browser on the relay's page: it keeps cookies
// and sends the relay's Origin on its form posts.
type browser struct {
	t     *testing.T
	relay relay
	c     *http.Client
}

func newBrowser(t *testing.T, rl relay) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, relay: rl, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

func (b *browser) get(u string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// post submits a form the way a browser does from the relay's own page.
func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.relay.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.relay.url)
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var csrfFieldRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) csrf(page string) string {
	b.t.Helper()
	m := csrfFieldRE.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no CSRF field on the page:\n%s", page)
	}
	return m[1]
}

// signUp does what a new user does with the link `tether-relay user add`
// printed: opens it, sets a password, and is signed in (a session cookie).
func (b *browser) signUp(user string) {
	b.t.Helper()
	out, err := exec.Command(b.relay.bin, "user", "add", user, "--secret-file", b.relay.secret, "--public-url", b.relay.url).Output()
	if err != nil {
		b.t.Fatalf("tether-relay user add: %v", err)
	}
	link := strings.TrimSpace(string(out))
	code, page := b.get(link)
	if code != http.StatusOK || !strings.Contains(page, "Welcome, "+user) {
		b.t.Fatalf("sign-in link page: %d\n%s", code, page)
	}
	const pw = "correct horse battery"
	code, page = b.post("/signin/link", url.Values{"csrf": {b.csrf(page)}, "code": {link[strings.LastIndex(link, "/")+1:]},
		"password": {pw}, "password2": {pw}})
	if code != http.StatusOK || !strings.Contains(page, "My bridge") {
		b.t.Fatalf("set password: %d\n%s", code, page)
	}
}

// events follows the My bridge panel as the page does (its SSE stream)
// and returns each rendered panel.
func (b *browser) events() <-chan string {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.relay.url+"/events", nil)
	c := *b.c
	c.Timeout = 0 // a stream
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		b.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		b.t.Fatalf("GET /events: %d", resp.StatusCode)
	}
	panels := make(chan string, 16)
	done := make(chan struct{})
	b.t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	go func() {
		defer close(done)
		defer close(panels)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var data strings.Builder
		for sc.Scan() {
			switch line := sc.Text(); {
			case strings.HasPrefix(line, "data: "):
				data.WriteString(strings.TrimPrefix(line, "data: ") + "\n")
			case line == "" && data.Len() > 0:
				select {
				case panels <- data.String():
				case <-ctx.Done():
					return
				}
				data.Reset()
			}
		}
	}()
	return panels
}

// waitPanel reads panels until one has all of want.
func waitPanel(t *testing.T, panels <-chan string, timeout time.Duration, want ...string) string {
	t.Helper()
	deadline := time.After(timeout)
	last := ""
	for {
		select {
		case p, ok := <-panels:
			if !ok {
				t.Fatalf("the My bridge stream ended; last panel:\n%s", last)
			}
			last = p
			ok = true
			for _, w := range want {
				ok = ok && strings.Contains(p, w)
			}
			if ok {
				return p
			}
		case <-deadline:
			t.Fatalf("My bridge never showed %q within %v; last panel:\n%s", want, timeout, last)
		}
	}
}

var newTokenFieldRE = regexp.MustCompile(`<pre id="new-token">([^<]+)</pre>`)

// clientToken creates a client token on the Tokens page (for an agent; the
// test uses it to ask the relay's status API).
func (b *browser) clientToken() string {
	b.t.Helper()
	_, page := b.get(b.relay.url + "/tokens")
	code, page := b.post("/tokens", url.Values{"csrf": {b.csrf(page)}, "kind": {"client"}, "ttl": {"30d"}, "name": {"status check"}})
	m := newTokenFieldRE.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		b.t.Fatalf("create a client token: %d\n%s", code, page)
	}
	return html.UnescapeString(m[1])
}

// bridgeStatus is the relay's GET /v1/bridges/{dev}.
func (rl relay) bridgeStatus(t *testing.T, dev, clientTok string) (st struct {
	Connected bool   `json:"connected"`
	Version   string `json:"version"`
	Hostname  string `json:"hostname"`
}) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rl.url+"/v1/bridges/"+dev, nil)
	req.Header.Set("Authorization", "Bearer "+clientTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/bridges/%s: %d", dev, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// fakeOpener puts an xdg-open first on the tray's PATH that hands the URL
// it is asked to open to the test (the person's browser) through a FIFO,
// so the test learns of it when it happens. It returns the PATH entry and
// the URLs opened.
func fakeOpener(t *testing.T) (env string, opened <-chan string) {
	t.Helper()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "opened")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nprintf '%s\\n' \"$1\" >'" + fifo + "'\n"
	if err := os.WriteFile(filepath.Join(dir, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			f, err := os.Open(fifo) // blocks until xdg-open (or the cleanup) opens it
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(f).ReadString('\n')
			f.Close()
			if line == "" {
				return // the cleanup's empty write
			}
			urls <- strings.TrimSpace(line)
		}
	}()
	t.Cleanup(func() {
		// O_RDWR never blocks on a FIFO: it wakes the reader's open, and
		// closing at once gives it an empty read.
		if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
			f.Close()
		}
		<-done
	})
	return "PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH"), urls
}

// keychainToken reads the bridge token the tray stored for relayURL in the
// Secret Service on bus, as another program would (secret-tool).
func keychainToken(t *testing.T, bus string, xdg []string, relayURL string) keystore.Token {
	t.Helper()
	cmd := exec.Command("secret-tool", "lookup", "service", keystore.DefaultService, "username", keystore.AccountFor(relayURL))
	cmd.Env = append(append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+bus), xdg...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("secret-tool lookup: %v", err)
	}
	return keystore.Token(strings.TrimSpace(string(out)))
}

// journeyTray is the tray on a private session bus with the real Secret
// Service, a notification service, and an empty keychain: no token
// anywhere. settings is the settings.json to start with (nil: none).
type journeyTray struct {
	trayRun
	home, bus string
	xdg, env  []string
	notes     *fakeNotifications
	opened    <-chan string
}

func startJourneyTray(t *testing.T, settings map[string]any) *journeyTray {
	t.Helper()
	needTool(t, "dbus-daemon", "dbus-daemon")
	testbin.NeedTools(t, "secret-tool")
	tray := testbin.Build(t, "./cmd/tray")
	mcpBin := testbin.Build(t, "./internal/testservers/mcpserver")
	// A short TETHER_HOME: the control socket path must fit in sun_path.
	home, err := os.MkdirTemp("", "tt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if settings != nil {
		writeJSON(t, filepath.Join(home, "settings.json"), settings)
	}
	writeJSON(t, filepath.Join(home, "mcp.json"), map[string]any{"mcpServers": map[string]any{"test": map[string]any{"command": mcpBin}}})

	bus, xdg := keyringBus(t)
	notes := serveNotifications(t, bus, "body")
	path, opened := fakeOpener(t)
	env := append([]string{"TETHER_TOKEN=", "TETHER_TOKEN_FILE=", "CREDENTIALS_DIRECTORY=", path}, xdg...)
	tr := launchTray(t, tray, bus, home, env...)
	return &journeyTray{trayRun: tr, home: home, bus: bus, xdg: xdg, env: env, notes: notes, opened: opened}
}

// noTokenInProcess checks that no token was handed to the tray by hand:
// neither its command line nor its environment holds one.
func (j *journeyTray) noTokenInProcess(t *testing.T) {
	t.Helper()
	for _, f := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", j.cmd.Process.Pid, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range strings.Split(string(b), "\x00") {
			if k, v, _ := strings.Cut(kv, "="); (k == "TETHER_TOKEN" && v != "") || strings.Contains(kv, "eyJ") {
				t.Errorf("the tray's %s holds a token: %q", f, kv)
			}
		}
	}
}

// connected waits until the menu says the bridge is connected to rl as dev
// with the test server's tools listed.
func (j *journeyTray) connected(t *testing.T, rl relay, dev string) node {
	t.Helper()
	want := "Connected to " + strings.TrimPrefix(rl.url, "http://") + " as " + dev
	return j.menu.waitFor(want, 30*time.Second, func(n node) bool {
		s := n.findPrefix("test — ")
		return n.find(want) != nil && s != nil && strings.HasSuffix(s.Label, "tools")
	})
}

// TestSignInWithBrowserOverDBus: "Sign in with browser…" clicked in the
// real tray → the tray opens the relay's approval page and shows the code
// in its menu and in a notification → the signed-in person approves that
// code on the relay's page → the token lands in the Secret Service and the
// bridge connects, as the menu, My bridge (live) and the status API say.
func TestSignInWithBrowserOverDBus(t *testing.T) {
	rl := startRelay(t)
	j := startJourneyTray(t, map[string]any{"relay": rl.url})
	m := j.menu
	start := time.Now()

	// The person signs in to the relay's page in their browser and keeps
	// My bridge open: offline for now.
	b := newBrowser(t, rl)
	b.signUp("alice")
	panels := b.events()
	waitPanel(t, panels, 10*time.Second, `data-state="offline"`)

	n := m.waitFor("Sign in with browser…", 20*time.Second, func(n node) bool {
		it := n.find("Sign in with browser…")
		return it != nil && it.Enabled && n.find("No token — sign in to connect") != nil
	})
	m.click(n.find("Sign in with browser…"))

	codeRE := regexp.MustCompile(`^Enter code ([A-Z]{4}-[A-Z]{4}) on (.+)$`)
	var userCode string
	m.waitFor("the sign-in code", 20*time.Second, func(n node) bool {
		for _, c := range n.Children {
			if mm := codeRE.FindStringSubmatch(c.Label); mm != nil {
				if mm[2] != strings.TrimPrefix(rl.url, "http://") {
					t.Fatalf("the code line names %q, not the relay", c.Label)
				}
				userCode = mm[1]
				return true
			}
		}
		return false
	})
	t.Logf("menu: Enter code %s (%v after start)", userCode, time.Since(start).Round(time.Millisecond))

	// The tray opened the approval page with the code filled in …
	var page string
	select {
	case page = <-j.opened:
	case <-time.After(20 * time.Second):
		logs, _ := os.ReadFile(filepath.Join(j.home, "logs", "tray.log"))
		t.Fatalf("the tray did not open the sign-in page; menu:\n%s\ntray.log:\n%s", m.layout(), logs)
	}
	if want := rl.url + "/device?user_code=" + userCode; page != want {
		t.Fatalf("the tray opened %q, want %q", page, want)
	}
	// … and said so in a notification, over DBus.
	note := j.notes.next(t, userCode, 20*time.Second)
	if note.Summary != "Tether: approve this computer" || !strings.Contains(note.Body, "Enter code "+userCode+" on "+strings.TrimPrefix(rl.url, "http://")) {
		t.Fatalf("sign-in notification: %+v", note)
	}

	// The person's browser shows the page the tray opened: which computer
	// asks, with the same code; they approve.
	code, body := b.get(page)
	host, _ := os.Hostname()
	if code != http.StatusOK || !strings.Contains(body, userCode) || !strings.Contains(body, html.EscapeString(host)) {
		t.Fatalf("approval page (want code %s, computer %q): %d\n%s", userCode, host, code, body)
	}
	code, body = b.post("/device", url.Values{"user_code": {userCode}, "csrf": {b.csrf(body)}, "action": {"approve"}})
	if code != http.StatusOK || !strings.Contains(body, "Approved.") {
		t.Fatalf("approve: %d\n%s", code, body)
	}
	approved := time.Now()

	n = j.connected(t, rl, "alice")
	t.Logf("approve → menu connected: %v; menu:\n%s", time.Since(approved).Round(time.Millisecond), n)
	if n.findPrefix("Enter code ") != nil {
		t.Errorf("the code is still shown after the sign-in:\n%s", n)
	}
	p := waitPanel(t, panels, 20*time.Second, `data-state="online"`, `data-fact="hostname">`+html.EscapeString(host)+`<`, "<strong>test</strong>")
	if !strings.Contains(p, `data-fact="remote">127.0.0.1:`) {
		t.Errorf("My bridge lacks the address:\n%s", p)
	}
	if st := rl.bridgeStatus(t, "alice", b.clientToken()); !st.Connected || st.Hostname != host || st.Version == "" {
		t.Fatalf("GET /v1/bridges/alice = %+v, want connected from %q", st, host)
	}

	// The token is in the Secret Service under the relay, a bridge token
	// for alice; nobody handed it over.
	c, err := app.CheckBridgeToken(keychainToken(t, j.bus, j.xdg, rl.url), time.Now())
	if err != nil || c.Dev != "alice" {
		t.Fatalf("keychain token: %+v, %v", c, err)
	}
	j.noTokenInProcess(t)
	t.Logf("whole journey: %v", time.Since(start).Round(time.Millisecond))
}

var connectHrefRE = regexp.MustCompile(`href="(tether://connect\?[^"]+)"`)

// TestConnectThisComputerOverDBus: with no relay set and no token, the
// person presses "Connect this computer" on the relay's page; the browser
// hands the tether://connect?relay=…&code=… link to the OS, which runs
// tether with it; the running tray asks in its menu, the person clicks
// Accept, and the bridge comes online.
func TestConnectThisComputerOverDBus(t *testing.T) {
	rl := startRelay(t)
	j := startJourneyTray(t, nil) // nothing set up: no relay, no token
	m := j.menu
	start := time.Now()
	m.waitFor("no relay yet", 20*time.Second, func(n node) bool {
		it := n.find("Sign in with browser…")
		return it != nil && !it.Enabled // no relay to sign in to
	})

	b := newBrowser(t, rl)
	b.signUp("alice")
	panels := b.events()
	waitPanel(t, panels, 10*time.Second, `data-state="offline"`)

	// The button: a form post to /v1/connect-codes; the answer opens the
	// tether:// link.
	code, page := b.get(rl.url + "/connect")
	if code != http.StatusOK || !strings.Contains(page, "Connect this computer") {
		t.Fatalf("GET /connect: %d\n%s", code, page)
	}
	code, page = b.post("/v1/connect-codes", url.Values{"csrf": {b.csrf(page)}})
	mm := connectHrefRE.FindStringSubmatch(page)
	if code != http.StatusOK || mm == nil {
		t.Fatalf("Connect this computer: %d\n%s", code, page)
	}
	link := html.UnescapeString(mm[1])
	lu, err := url.Parse(link)
	if err != nil || lu.Query().Get("relay") != rl.url || lu.Query().Get("code") == "" || lu.Query().Has("token") {
		t.Fatalf("the page's link %q: want relay %s and a code, no token", link, rl.url)
	}

	// The OS runs tether with the link; it hands it to the running tray.
	second := exec.Command(j.cmd.Path, link)
	second.Env = j.cmd.Env
	out, err := second.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "open its menu to accept the link") {
		t.Fatalf("tether %s: %v: %s", link, err, out)
	}
	question := "Link: connect to " + rl.url + "?"
	n := m.waitFor(question, 20*time.Second, func(n node) bool { return n.find(question) != nil })
	if note := j.notes.next(t, question, 20*time.Second); note.Summary != "Tether" {
		t.Errorf("link notification: %+v", note)
	}
	m.click(n.find("Accept link and connect"))
	accepted := time.Now()

	n = j.connected(t, rl, "alice")
	t.Logf("accept → menu connected: %v; menu:\n%s", time.Since(accepted).Round(time.Millisecond), n)
	host, _ := os.Hostname()
	waitPanel(t, panels, 20*time.Second, `data-state="online"`, `data-fact="hostname">`+html.EscapeString(host)+`<`, "<strong>test</strong>")
	if st := rl.bridgeStatus(t, "alice", b.clientToken()); !st.Connected || st.Hostname != host {
		t.Fatalf("GET /v1/bridges/alice = %+v", st)
	}

	// The relay is now in settings.json and the token in the keychain.
	var settings struct {
		Relay string `json:"relay"`
	}
	if data, err := os.ReadFile(filepath.Join(j.home, "settings.json")); err != nil || json.Unmarshal(data, &settings) != nil || settings.Relay != rl.url {
		t.Fatalf("settings.json after the link: %s (%v)", data, err)
	}
	c, err := app.CheckBridgeToken(keychainToken(t, j.bus, j.xdg, rl.url), time.Now())
	if err != nil || c.Dev != "alice" {
		t.Fatalf("keychain token: %+v, %v", c, err)
	}
	j.noTokenInProcess(t)

	// The code was single-use: the same link again is refused at Accept
	// and changes nothing.
	again := exec.Command(j.cmd.Path, link)
	again.Env = j.cmd.Env
	if out, err := again.CombinedOutput(); err != nil {
		t.Fatalf("second hand-over: %v: %s", err, out)
	}
	n = m.waitFor(question, 20*time.Second, func(n node) bool { return n.find(question) != nil })
	m.click(n.find("Accept link and connect"))
	m.waitFor("the spent code refused", 20*time.Second, func(n node) bool {
		return n.findPrefix("Connected to ") != nil && n.find(question) == nil &&
			n.findPrefix("the relay refused the connect code: invalid") != nil // invalid_grant, "_" doubled by dbusmenu
	})
	t.Logf("whole journey: %v", time.Since(start).Round(time.Millisecond))
}
