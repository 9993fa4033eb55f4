package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveMetricsTest runs serve on loopback with args until the test ends
// and returns the first n lines it prints (the listen lines).
func serveMetricsTest(t *testing.T, n int, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	lines, done := serveInProcess(t, ctx, n, append([]string{"--listen", "127.0.0.1:0", "--secret-file", writeSecret(t, t.TempDir())}, args...)...)
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})
	return lines
}

func getMetrics(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const metricLine = "tether_relay_bridges_connected "

// TestMetricsListen: with --metrics-listen the metrics are on their own
// address, and the public listener answers /metrics with 404.
func TestMetricsListen(t *testing.T) {
	lines := serveMetricsTest(t, 2, "--metrics-listen", "127.0.0.1:0")
	main, ok1 := strings.CutPrefix(lines[0], "tether-relay listening on ")
	metrics, ok2 := strings.CutPrefix(lines[1], "tether-relay metrics on ")
	if !ok1 || !ok2 {
		t.Fatalf("listen lines %q", lines)
	}
	if code, body := getMetrics(t, main+"/metrics", ""); code != http.StatusNotFound || strings.Contains(body, metricLine) {
		t.Errorf("anonymous /metrics on --listen: %d %s", code, body)
	}
	if code, body := getMetrics(t, metrics, ""); code != http.StatusOK || !strings.Contains(body, metricLine) {
		t.Errorf("metrics listener: %d %s", code, body)
	}
}

// TestMetricsToken: with --metrics-token-file, /metrics on the public
// listener needs that token; a weak token file is refused at start.
func TestMetricsToken(t *testing.T) {
	const token = "Zq8-w3Lk_9PxT2vN7mR4yB6cJ1hD5fG0sA"
	tokFile := filepath.Join(t.TempDir(), "metrics-token")
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := serveMetricsTest(t, 1, "--metrics-token-file", tokFile)
	main, ok := strings.CutPrefix(lines[0], "tether-relay listening on ")
	if !ok {
		t.Fatalf("listen line %q", lines[0])
	}
	for _, tok := range []string{"", "wrong", token[:len(token)-1]} {
		if code, body := getMetrics(t, main+"/metrics", tok); code != http.StatusUnauthorized || strings.Contains(body, metricLine) {
			t.Errorf("/metrics with token %q: %d %s", tok, code, body)
		}
	}
	if code, body := getMetrics(t, main+"/metrics", token); code != http.StatusOK || !strings.Contains(body, metricLine) {
		t.Errorf("/metrics with the token: %d %s", code, body)
	}

	weak := filepath.Join(t.TempDir(), "weak")
	if err := os.WriteFile(weak, []byte("letmein\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	err := run(t.Context(), []string{"serve", "--listen", "127.0.0.1:0", "--secret-file", filepath.Join(t.TempDir(), "s"), "--metrics-token-file", weak}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "metrics token") || !strings.Contains(err.Error(), "32 random bytes") {
		t.Errorf("serve with a weak metrics token: %v", err)
	}
}
