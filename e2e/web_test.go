package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testbin"
)

// TestWebPageInBrowser: the relay's web page in a real browser (Debian's
// chromium, driven by playwright-core): `user add` → the link → create
// a passkey (Chromium's virtual authenticator) → sign out → sign in with
// it → add a second passkey → remove the first (the last cannot go) →
// set a password → sign in with it → create a bridge token → tetherd
// started with it goes online on My bridge live (no reload), with its server, tools and a call → revoke
// → the relay drops the bridge and the page shows it offline. Screenshots
// go to $TETHER_ARTIFACTS/web (or a temp folder, logged).
func TestWebPageInBrowser(t *testing.T) {
	testbin.NeedTools(t, "chromium")
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

	r := startRelay(t)
	// Passkeys need a host name (an RP ID is never an IP address), and
	// WebAuthn takes http://localhost as a secure context.
	_, port, _ := net.SplitHostPort(r.addr)
	out, err := exec.Command(r.bin, "user", "add", dev, "--secret-file", r.secret, "--public-url", "http://localhost:"+port).Output()
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

	next("passkeys")
	token, _ := next("token")["token"].(string)
	if strings.Count(token, ".") != 2 {
		t.Fatalf("the page's bridge token %q is no JWT", token)
	}
	cfg := writeConfig(t, map[string]any{
		"test": map[string]any{"command": testbin.Build(t, "./internal/testservers/mcpserver")},
	})
	startTetherd(t, token, nil, "run", "--config", cfg, "--relay", r.url())
	next("online")

	client := r.token(t, dev, "client")
	r.waitServing(t, dev, client, "test", 60*time.Second)
	cs := connect(t, ctx, r.mcpURL(dev, "test"), client, "", nil)
	if got, err := callText(ctx, cs, "echo", map[string]any{"text": "hi"}); err != nil || got != "hi" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	stdin.Write([]byte("called\n"))
	if m := next("seenCall"); m["navigations"] != float64(0) {
		t.Fatalf("the page navigated %v times while waiting: it must update live", m["navigations"])
	}

	next("revoked")
	r.out.waitFor(t, 0, "bridge token revoked; socket closed", 15*time.Second)
	if m := next("offline"); m["problems"] != nil && len(m["problems"].([]any)) > 0 {
		t.Fatalf("the browser reported errors (a CSP violation?): %v", m["problems"])
	}
}
