package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUserAddThenSignInPage: `user add` (another process, while serve
// runs) prints a link that the running relay's web page answers.
func TestUserAddThenSignInPage(t *testing.T) {
	bin := buildRelay(t)
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("k3J9-q8Zt_w2LmX7-pV4nR6sY1uB5cD0eF\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url, _ := startServe(t, bin, secretFile)

	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Sign in") {
		t.Fatalf("GET /: %d\n%s", resp.StatusCode, body)
	}

	var stderr bytes.Buffer
	cmd := exec.Command(bin, "user", "add", "alice", "--secret-file", secretFile, "--public-url", url)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("user add: %v\n%s", err, stderr.String())
	}
	link := strings.TrimSpace(string(out))
	if !strings.HasPrefix(link, url+"/signin/link/") || strings.Count(string(out), "\n") != 1 {
		t.Fatalf("user add printed %q, want one link under %s", out, url)
	}
	resp, err = http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Welcome, alice") {
		t.Fatalf("link page: %d\n%s", resp.StatusCode, body)
	}

	// Again for the same user: a new link, not an error.
	if out, err := exec.Command(bin, "user", "add", "alice", "--secret-file", secretFile, "--public-url", url).Output(); err != nil || strings.TrimSpace(string(out)) == link {
		t.Fatalf("second user add: %v %q", err, out)
	}
	// Without --public-url: serve's default address, by a name a passkey
	// can belong to.
	if out, err := exec.Command(bin, "user", "add", "bob", "--secret-file", secretFile).Output(); err != nil ||
		!strings.HasPrefix(string(out), "http://localhost:8080/signin/link/") {
		t.Fatalf("user add without --public-url: %v %q", err, out)
	}
	if err := exec.Command(bin, "user", "add", "no/slash", "--secret-file", secretFile).Run(); err == nil {
		t.Fatal("user add accepted an id that is no dev id")
	}
}

func TestStripAuthHeader(t *testing.T) {
	proxies, err := parseTrustedProxies([]string{"10.0.0.5"})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	h := stripAuthHeader("X-Forwarded-User", proxies, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("X-Forwarded-User")
	}))
	for _, c := range []struct{ remote, want string }{
		{"10.0.0.5:4000", "alice"}, // the proxy
		{"10.0.0.6:4000", ""},      // anyone else
		{"[::1]:4000", ""},
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://relay/", nil)
		req.RemoteAddr = c.remote
		req.Header.Set("X-Forwarded-User", "alice")
		got = "unset"
		h.ServeHTTP(nil, req)
		if got != c.want {
			t.Errorf("from %s the handler saw %q, want %q", c.remote, got, c.want)
		}
	}
	var out, errb bytes.Buffer
	err = run(t.Context(), []string{"serve", "--secret-file", filepath.Join(t.TempDir(), "s"), "--auth-header", "X-Forwarded-User"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "--trusted-proxy") {
		t.Fatalf("--auth-header without --trusted-proxy: %v", err)
	}
}
