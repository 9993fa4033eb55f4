//go:build linux

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testbin"
)

// TestWebPageInBrowser: the relay's web page in a real browser (Debian's
// chromium, driven by playwright-core): `user add` → the link → create
// a passkey (Chromium's virtual authenticator) → sign out → sign in with
// it → add a second passkey → remove the first (the last cannot go) →
// set a password → sign in with it → create a bridge token on Tokens →
// `tetherd login --no-browser`, started by the test beside a `tetherd
// run` that waits without a token, prints its link; the browser opens it,
// sees the code and the computer's name and approves → the token reaches
// the engine through the real Secret Service and the bridge goes online on
// My bridge live (no reload), with its server, tools and a call → the
// same pages on a phone-sized screen in dark mode → revoke the login's
// token on Tokens → the relay drops the bridge (4003) and the page shows
// it offline. Screenshots go to $TETHER_ARTIFACTS/web (or a temp folder,
// logged).
//
// Linux only: the Secret Service is a private gnome-keyring on a private
// session bus (privateKeyring).
func TestWebPageInBrowser(t *testing.T) {
	testbin.NeedTools(t, "chromium")
	bus := privateKeyring(t)
	node := testbin.Node(t)
	pw := filepath.Join(testbin.RepoRoot(t), "tools", "npm", "node_modules", "playwright-core")
	if _, err := os.Stat(pw); err != nil {
		t.Fatalf("playwright-core is not installed (npm ci --prefix tools/npm): %v", err)
	}
	chromium, _ := exec.LookPath("chromium")
	shots := t.TempDir()
	if a := os.Getenv("TETHER_ARTIFACTS"); a != "" {
		shots = filepath.Join(a, "web")
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", shots)

	// Passkeys need a host name (an RP ID is never an IP address), and
	// WebAuthn takes http://localhost as a secure context. The relay is
	// run as one with a name is: its --public-url (which also makes it the
	// OAuth server of its MCP endpoints, so the nav links Connected apps).
	// tetherd uses the same URL, so the link it prints opens where the
	// browser signed in.
	r := &relayProc{bin: testbin.Build(t, "./cmd/relay"), secret: filepath.Join(t.TempDir(), "secret"), addr: freeAddr(t)}
	_, port, _ := net.SplitHostPort(r.addr)
	relayURL := "http://localhost:" + port
	r.args = []string{"--public-url", relayURL}
	r.start(t)
	out, err := exec.Command(r.bin, "user", "add", dev, "--secret-file", r.secret, "--public-url", relayURL).Output()
	if err != nil {
		t.Fatalf("user add: %v", err)
	}
	link := strings.TrimSpace(string(out))

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(testbin.RepoRoot(t), "e2e", "testdata", "web.cjs"))
	cmd.Env = append(os.Environ(), "PW="+pw, "LINK="+link, "CHROMIUM="+chromium, "SHOTS="+shots, "USER_ID="+dev)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	stderr := newLogBuf()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("browser script: %v\n%s", err, stderr.String())
		}
	}()
	lines := make(chan map[string]any)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
	}()
	next := func(key string) map[string]any {
		t.Helper()
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatalf("browser script ended before %q:\n%s", key, stderr.String())
			}
			if _, ok := m[key]; !ok {
				t.Fatalf("browser script said %v, want %q", m, key)
			}
			return m
		case <-ctx.Done():
			t.Fatalf("no %q from the browser script:\n%s", key, stderr.String())
		}
		return nil
	}
	tell := func(m map[string]any) {
		t.Helper()
		b, _ := json.Marshal(m)
		if _, err := stdin.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
	}

	// The bridge's computer, made ready while the browser signs up and in
	// (the builds take seconds): an engine with a relay and a server but
	// no token, as after installing; `tetherd login` hands it one.
	home := t.TempDir()
	tenv := append([]string{"TETHER_HOME=" + home, "TETHER_TOKEN=", "TETHER_TOKEN_FILE=", "TETHER_RELAY="}, bus...)
	writeFileT(t, filepath.Join(home, "settings.json"), `{"relay": "`+relayURL+`"}`)
	writeFileT(t, filepath.Join(home, "mcp.json"), `{"mcpServers": {"test": {"command": "`+testbin.Build(t, "./internal/testservers/mcpserver")+`"}}}`)
	d := startTetherd(t, "", tenv, "run")
	computer, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	svc := testbin.Build(t, "./cmd/svc")

	next("passkeys")
	if token, _ := next("token")["token"].(string); strings.Count(token, ".") != 2 {
		t.Fatalf("the page's bridge token %q is no JWT", token)
	}
	d.log.waitFor(t, 0, "no bridge token", 15*time.Second)

	// `tetherd login`: its link is opened by the signed-in browser.
	login := exec.CommandContext(ctx, svc, "login", "--no-browser")
	login.Env = append(os.Environ(), tenv...)
	loginOut := newLogBuf()
	login.Stdout, login.Stderr = loginOut, loginOut
	if err := login.Start(); err != nil {
		t.Fatal(err)
	}
	loginDone := make(chan error, 1)
	go func() { loginDone <- login.Wait() }()
	loginOut.waitFor(t, 0, "Waiting for approval", 30*time.Second)
	uriRE := regexp.MustCompile(`approve it in your browser:\s+(\S+)`)
	codeRE := regexp.MustCompile(`shows the code  ([A-Z]{4}-[A-Z]{4})`)
	u, c := uriRE.FindStringSubmatch(loginOut.String()), codeRE.FindStringSubmatch(loginOut.String())
	if u == nil || c == nil || !strings.HasPrefix(u[1], relayURL+"/device?user_code=") {
		t.Fatalf("tetherd login printed no link and code for %s:\n%s", relayURL, loginOut.String())
	}
	tell(map[string]any{"approve": u[1], "code": c[1], "computer": computer})
	next("approved")
	select {
	case err := <-loginDone:
		if err != nil {
			t.Fatalf("tetherd login: %v\n%s", err, loginOut.String())
		}
	case <-ctx.Done():
		t.Fatalf("tetherd login did not end after the approval:\n%s", loginOut.String())
	}
	for _, want := range []string{"Approved.", "Stored the bridge token for dev " + dev, "The running engine is connecting"} {
		if !strings.Contains(loginOut.String(), want) {
			t.Fatalf("login output lacks %q:\n%s", want, loginOut.String())
		}
	}
	next("online")

	client := r.token(t, dev, "client")
	r.waitServing(t, dev, client, "test", 60*time.Second)
	cs := connect(t, ctx, r.mcpURL(dev, "test"), client, "", nil)
	if got, err := callText(ctx, cs, "echo", map[string]any{"text": "hi"}); err != nil || got != "hi" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	tell(map[string]any{"called": true})
	if m := next("seenCall"); m["navigations"] != float64(0) {
		t.Fatalf("the page navigated %v times while waiting: it must update live", m["navigations"])
	}
	next("phone")

	next("revoked")
	r.out.waitFor(t, 0, "bridge token revoked; socket closed", 15*time.Second)
	if m := next("offline"); m["problems"] != nil && len(m["problems"].([]any)) > 0 {
		t.Fatalf("the browser reported errors (a CSP violation?): %v", m["problems"])
	}
}
