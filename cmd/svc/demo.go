package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/keystore"
	"github.com/tether-dev/tether/mcpchild"
	// demo is the one place cmd/svc uses the relay server package: it runs a
	// throwaway relay in-process so that a user can try Tether with nothing
	// else installed.
	"github.com/tether-dev/tether/relay/server"
)

const (
	demoDev    = "demo"
	demoServer = "sample"
)

// demoCmd runs a loopback relay, the sample server behind an engine, and
// prints how to reach it. The client token it prints is a throwaway: it is
// signed with a random secret that lives only in this process.
func demoCmd(ctx context.Context, stdout, stderr io.Writer) error {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	relaySrv := &server.Server{Verifier: &server.Verifier{Secret: secret}, Logger: logger}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	httpSrv := &http.Server{Handler: relaySrv, ReadHeaderTimeout: 10 * time.Second}
	go httpSrv.Serve(ln)
	defer func() {
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		relaySrv.Shutdown(shut)
		httpSrv.Close()
	}()
	base := "http://" + ln.Addr().String()

	bridgeTok, err := server.Issue(secret, demoDev, server.ScopeBridge, 24*time.Hour)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	clientTok, err := server.Issue(secret, demoDev, server.ScopeClient, 24*time.Hour)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: find tetherd itself: %w", err)
	}
	// The demo runs a whole engine, as `tetherd run` does, but in a folder
	// of its own: the user's mcp.json, settings and keychain are never read
	// or written, and a tetherd already running is not disturbed (no
	// control socket).
	home, err := os.MkdirTemp("", "tether-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(home)
	paths := app.PathsIn(home)
	mcpJSON, err := json.Marshal(map[string]any{"mcpServers": map[string]mcpchild.Spec{
		demoServer: {Command: self, Args: []string{"sample-server"}},
	}})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := os.WriteFile(paths.MCPJSON, mcpJSON, 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	eng := app.NewEngine(app.EngineOptions{
		Paths: paths,
		Relay: base,
		DevID: demoDev,
		// The throwaway token reaches the engine as $TETHER_TOKEN of a
		// private environment: nothing else of the user's environment
		// (a real TETHER_TOKEN, a token file) can take its place.
		Getenv: func(k string) string {
			if k == keystore.EnvToken {
				return bridgeTok
			}
			return ""
		},
		Keychain: &keystore.Memory{},
		Logger:   logger,
		Version:  version,
	})
	runCtx, cancel := context.WithCancel(ctx)
	var runErr error
	stopped := make(chan struct{})
	go func() { runErr = eng.Run(runCtx); close(stopped) }()
	// Whatever ends the demo, the engine (and the sample server it runs)
	// is gone before its folder is removed and the relay shut down.
	defer func() { cancel(); <-stopped }()

	if err := waitServing(ctx, base, clientTok, stopped); err != nil {
		if errors.Is(err, errEngineStopped) && runErr != nil {
			return fmt.Errorf("demo: %w", runErr)
		}
		return err
	}
	url := base + "/mcp/" + demoDev + "/" + demoServer
	fmt.Fprintf(stdout, `Tether demo is running: a relay on loopback, a bridge, and a sample MCP server
with the tools "echo" and "time".

MCP URL:        %s
Authorization:  Bearer %s

(This token is a throwaway for this local demo only: it is signed with a random
secret that disappears when the demo stops.)

Try it with the MCP Inspector (Node.js 20+):
  npx @modelcontextprotocol/inspector --cli %s --transport http --header "Authorization: Bearer %s" --method tools/call --tool-name echo --tool-arg message=hello
or open its web UI with "npx @modelcontextprotocol/inspector", choose
"Streamable HTTP", and paste the URL and the Authorization header above.

or with curl:
  curl -s %s -H "Authorization: Bearer %s" -H "Content-Type: application/json" -H "Accept: application/json, text/event-stream" -H "MCP-Protocol-Version: 2025-11-25" -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'

Press Ctrl-C to stop.
`, url, clientTok, url, clientTok, url, clientTok)

	<-stopped
	fmt.Fprintln(stdout, "demo stopped")
	return runErr
}

// waitServing waits until the relay reports the bridge connected with the
// sample server ready, so that the URL printed next works at once. The relay
// takes the slot a moment after the bridge's hello, and only the relay's
// status shows that moment; a short poll of an in-process handler is cheap.
// errEngineStopped is waitServing's answer when the engine ended first.
var errEngineStopped = errors.New("demo: the engine stopped")

func waitServing(ctx context.Context, base, tok string, stopped <-chan struct{}) error {
	deadline := time.After(90 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stopped:
			return errEngineStopped
		case <-deadline:
			return errors.New("demo: the sample server did not become ready within 90s")
		case <-tick.C:
		}
		if demoReady(ctx, base, tok) {
			return nil
		}
	}
}

func demoReady(ctx context.Context, base, tok string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/bridges/"+demoDev, nil)
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st struct {
		Connected bool `json:"connected"`
		Servers   []struct {
			Name, State string
		} `json:"servers"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil || !st.Connected {
		return false
	}
	for _, s := range st.Servers {
		if s.Name == demoServer && s.State == string(mcpchild.PhaseReady) {
			return true
		}
	}
	return false
}
