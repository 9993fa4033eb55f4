//go:build linux || darwin

package mcpchild

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// markerWriter collects what a child writes to its log and closes seen once
// marker has arrived.
type markerWriter struct {
	marker string
	seen   chan struct{}

	mu   sync.Mutex
	buf  bytes.Buffer
	once sync.Once
}

func newMarkerWriter(marker string) *markerWriter {
	return &markerWriter{marker: marker, seen: make(chan struct{})}
}

func (w *markerWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	if bytes.Contains(w.buf.Bytes(), []byte(w.marker)) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(b), nil
}

func (w *markerWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestChildEnvHasNoTetherSecrets starts a real child through Child (default
// environment, as tetherd does) that prints its environment to stderr, which
// reaches the per-server log. The bridge token and its sources must not be
// there; the user's own variables and what mcp.json sets must be.
func TestChildEnvHasNoTetherSecrets(t *testing.T) {
	t.Setenv("TETHER_TOKEN", "secret-bridge-token")
	t.Setenv("TETHER_TOKEN_FILE", "/secret/token-file")
	t.Setenv("CREDENTIALS_DIRECTORY", "/run/credentials/tetherd.service")
	t.Setenv("TETHER_HOME", "/home/someone/.config/tether")
	t.Setenv("USER_THING", "kept")

	const marker = "END-OF-ENV"
	logw := newMarkerWriter(marker)
	opts := testOptions(t)
	opts.Env = nil // BaseEnv, what the engine uses
	opts.Log = logw
	spec := Spec{Name: "envdump", Command: "sh",
		Args: []string{"-c", "env >&2; echo " + marker + " >&2; exec sleep 600"},
		Env:  map[string]string{"TETHER_RELAY": "named-in-mcp-json"}}
	c := New(spec, opts)
	c.Start(context.Background())
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	}()
	select {
	case <-logw.seen:
	case <-time.After(20 * time.Second):
		t.Fatalf("child printed no environment; log: %q", logw.String())
	}
	env := map[string]string{}
	for _, line := range strings.Split(logw.String(), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	for _, k := range []string{"TETHER_TOKEN", "TETHER_TOKEN_FILE", "CREDENTIALS_DIRECTORY", "TETHER_HOME"} {
		if v, ok := env[k]; ok {
			t.Errorf("child sees %s=%q", k, v)
		}
	}
	if strings.Contains(logw.String(), "secret-bridge-token") {
		t.Error("the bridge token appears in the child's output")
	}
	if env["USER_THING"] != "kept" {
		t.Errorf("USER_THING = %q, want the user's variable kept", env["USER_THING"])
	}
	if env["TETHER_RELAY"] != "named-in-mcp-json" {
		t.Errorf("TETHER_RELAY = %q, want the value mcp.json sets", env["TETHER_RELAY"])
	}
}

func TestWithoutPrivateEnv(t *testing.T) {
	got := WithoutPrivateEnv([]string{"PATH=/bin", "TETHER_TOKEN=x", "TETHER_X=1", "CREDENTIALS_DIRECTORY=/c", "TETHERED=ok", "A=TETHER_TOKEN"})
	want := []string{"PATH=/bin", "TETHERED=ok", "A=TETHER_TOKEN"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %q, want %q", got, want)
	}
}
