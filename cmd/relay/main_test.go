package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testpg"
	"github.com/tether-dev/tether/relay/server"
	"github.com/tether-dev/tether/relay/store"
)

func buildRelay(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tether-relay")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startServe runs `serve` and returns its base URL from the one line it prints.
func startServe(t *testing.T, bin, secretFile string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--secret-file", secretFile, "--call-timeout", "5s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("no listen line: %v (stderr: %s)", err, stderr.String())
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "tether-relay listening on ")
	if !ok {
		t.Fatalf("listen line %q", line)
	}
	return url, cmd
}

func TestBinaryTokenThenServe(t *testing.T) {
	bin := buildRelay(t)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("k3J9-q8Zt_w2LmX7-pV4nR6sY1uB5cD0eF\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(bin, "token", "--secret-file", secretFile, "--dev", "alice", "--scope", "client", "--ttl", "1h").Output()
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	tok := strings.TrimSpace(string(out))
	if strings.Count(tok, ".") != 2 || strings.Count(string(out), "\n") != 1 {
		t.Fatalf("token output %q is not exactly one JWT line", out)
	}
	if err := exec.Command(bin, "token", "--secret-file", secretFile, "--dev", "alice", "--scope", "root").Run(); err == nil {
		t.Fatal("token accepted scope root")
	}

	url, cmd := startServe(t, bin, secretFile)
	resp, err := http.Get(url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	// The token printed by `token` is accepted by `serve` with the same secret.
	req, _ := http.NewRequest("GET", url+"/v1/bridges/alice", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Dev       string `json:"dev"`
		Connected bool   `json:"connected"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if resp.StatusCode != 200 || st.Dev != "alice" || st.Connected {
		t.Fatalf("status %d %+v", resp.StatusCode, st)
	}

	// The store is the default one, beside the secret, readable by its owner only.
	if fi, err := os.Stat(secretFile + ".db"); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("default store file: %v %v", fi, err)
	}

	// `token revoke`, another process writing the store while serve runs:
	// serve refuses the token within its poll interval. Nothing outside
	// the relay can await that, so the test asks until a deadline.
	jti := strings.TrimPrefix(mustClaims(t, tok).ID, "j:")
	if out, err := exec.Command(bin, "token", "revoke", "--secret-file", secretFile, "--jti", jti).CombinedOutput(); err != nil {
		t.Fatalf("token revoke: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked token still answered %d after 10s", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Graceful shutdown on SIGTERM.
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}

func TestServeCreatesSecret(t *testing.T) {
	bin := buildRelay(t)
	secretFile := filepath.Join(t.TempDir(), "sub", "secret")
	url, _ := startServe(t, bin, secretFile)
	fi, err := os.Stat(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(secretFile)
	if len(strings.TrimSpace(string(b))) != 64 {
		t.Fatalf("secret is %d hex chars, want 64", len(strings.TrimSpace(string(b))))
	}
	out, err := exec.Command(bin, "token", "--secret-file", secretFile, "--dev", "bob", "--scope", "bridge").Output()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", url+"/v1/bridges/bob", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(out)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("token from created secret: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestUsage(t *testing.T) {
	var out, errb strings.Builder
	if err := run(t.Context(), []string{"help"}, &out, &errb); err != nil || !strings.Contains(out.String(), "Examples:") {
		t.Fatalf("help: %v %q", err, out.String())
	}
	if err := run(t.Context(), []string{"bogus"}, &out, &errb); err == nil {
		t.Fatal("unknown command accepted")
	}
	if err := run(t.Context(), []string{"serve"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "--secret-file") {
		t.Fatalf("serve without secret: %v", err)
	}
}

func TestSecretFileChecks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	good := "k3J9-q8Zt_w2LmX7-pV4nR6sY1uB5cD0eF"
	cases := []struct {
		name, path, want string
	}{
		{"world-readable", write("open", good, 0o644), "chmod 600"},
		{"short", write("short", "0123456789abcdef-xyz", 0o600), "32 random bytes"},
		{"short hex", write("hex", strings.Repeat("0123456789abcdef", 3), 0o600), "64 hex digits"},
		{"repetitive", write("rep", strings.Repeat("ab", 40), 0o600), "distinct"},
	}
	for _, c := range cases {
		var out, errb strings.Builder
		err := run(t.Context(), []string{"serve", "--listen", "127.0.0.1:0", "--secret-file", c.path}, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: serve error %v, want one saying %q", c.name, err, c.want)
		}
	}
}

const testSecret = "k3J9-q8Zt_w2LmX7-pV4nR6sY1uB5cD0eF"

func mustClaims(t *testing.T, tok string) server.Claims {
	t.Helper()
	c, err := (&server.Verifier{Secret: []byte(testSecret), Audiences: []string{"https://relay.example.com"}}).Verify(tok)
	if err != nil {
		t.Fatalf("issued token: %v", err)
	}
	return c
}

// TestTokenListRevoke issues, lists and revokes through the commands, on
// both databases.
func TestTokenListRevoke(t *testing.T) {
	for _, b := range []struct {
		name string
		db   func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "r.db") }},
		{"postgres", func(t *testing.T) string { return testpg.Start(t).DB(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			db := b.db(t)
			secret := filepath.Join(t.TempDir(), "secret")
			if err := os.WriteFile(secret, []byte(testSecret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := func(args ...string) (string, error) {
				var out, errb strings.Builder
				err := run(t.Context(), append(args, "--secret-file", secret, "--db", db), &out, &errb)
				return out.String(), err
			}
			out, err := cmd("token", "--dev", "alice", "--scope", "bridge", "--aud", "https://relay.example.com/")
			if err != nil {
				t.Fatal(err)
			}
			tok := strings.TrimSpace(out)
			jti := strings.TrimPrefix(mustClaims(t, tok).ID, "j:")
			if _, err := os.Stat(secret + ".db"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("--db %s, yet the default file was made: %v", b.name, err)
			}

			out, err = cmd("token", "list")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, jti) || !strings.Contains(out, "valid") || strings.Contains(out, tok) {
				t.Fatalf("list: %s", out)
			}
			if _, err := cmd("token", "revoke", "--jti", "nope"); err == nil || !strings.Contains(err.Error(), "token list") {
				t.Fatalf("revoked an id never issued: %v", err)
			}
			if _, err := cmd("token", "revoke", "--jti", jti); err != nil {
				t.Fatal(err)
			}
			out, _ = cmd("token", "list")
			if !strings.Contains(out, "revoked") {
				t.Fatalf("list after revoke: %s", out)
			}
			st, err := store.Open(t.Context(), db)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			rv, err := server.NewRevocations(t.Context(), st, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			v := &server.Verifier{Secret: []byte(testSecret), Audiences: []string{"https://relay.example.com"}, Revocations: rv}
			if _, err := v.Verify(tok); !errors.Is(err, server.ErrRevokedToken) {
				t.Fatalf("revoked token: %v", err)
			}
			es, err := st.AuditEvents(t.Context(), 10)
			if err != nil || len(es) != 2 || es[0].Action != "token.revoke" || es[1].Action != "token.issue" || es[0].Subject != jti {
				t.Fatalf("audit trail: %+v, %v", es, err)
			}
		})
	}
}

// TestLegacyTokenFileImported: an older relay's FILE.tokens is imported
// by the first command, its revocations still hold, and it is renamed.
func TestLegacyTokenFileImported(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	legacy := `{"issued":[{"jti":"old1","dev":"alice","scope":"client","aud":"tether-relay","iat":"2026-01-01T00:00:00Z","exp":"2099-01-01T00:00:00Z"},
		{"jti":"old2","dev":"bob","scope":"bridge","aud":"tether-relay","iat":"2026-01-01T00:00:00Z","exp":"2099-01-01T00:00:00Z"}],
		"revoked":[{"jti":"old1","at":"2026-01-02T00:00:00Z"}]}`
	if err := os.WriteFile(secret+".tokens", []byte(legacy), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	if err := run(t.Context(), []string{"token", "list", "--secret-file", secret}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "old1") || !strings.Contains(out.String(), "revoked 2026-01-02") || !strings.Contains(out.String(), "old2") {
		t.Fatalf("list after import: %s", out.String())
	}
	if !strings.Contains(errb.String(), "imported") {
		t.Fatalf("the import was not reported: %q", errb.String())
	}
	if _, err := os.Stat(secret + ".tokens"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("legacy file still in place: %v", err)
	}
	if _, err := os.Stat(secret + ".tokens.imported"); err != nil {
		t.Fatal(err)
	}
}

// `tether-relay version` names the build: version, commit, date, toolchain.
func TestVersionCommand(t *testing.T) {
	var out strings.Builder
	if err := run(t.Context(), []string{"version"}, &out, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.HasPrefix(s, "tether-relay dev (commit ") || !strings.Contains(s, " go1.") {
		t.Fatalf("version printed %q", s)
	}
}
