//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tether-dev/tether/relay/server"
)

// relayProc is one tether-relay serve process; it can be killed and
// started again on the same port with the same secret.
type relayProc struct {
	e    *env
	addr string
	// metricsAddr is where the relay serves its metrics (--metrics-listen):
	// its public address does not.
	metricsAddr string
	secret      []byte
	file        string
	p           *proc
}

func (e *env) startRelay(ctx context.Context) (*relayProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	// The harness writes the secret itself so it can sign tokens in
	// process (1,000 bridge tokens through the CLI would take a while).
	secret := []byte(fmt.Sprintf("bench-secret-%d-0123456789abcdef", time.Now().UnixNano()))
	file := filepath.Join(e.dir, "relay-"+strings.ReplaceAll(addr, ":", "_")+".secret")
	if err := os.WriteFile(file, append(secret, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write secret: %w", err)
	}
	metricsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	r := &relayProc{e: e, addr: addr, metricsAddr: metricsAddr, secret: secret, file: file}
	return r, r.start(ctx)
}

// start runs serve and returns once it listens.
func (r *relayProc) start(ctx context.Context) error {
	p, err := r.e.start("tether-relay", nil, r.e.relay, "serve", "--listen", r.addr, "--secret-file", r.file, "--call-timeout", "30s",
		// The benchmarks drive thousands of calls a second through one
		// token, over many connections from one address (loopback): the
		// per-token rate and the per-address connection cap are off.
		"--client-rate", "0", "--max-conns-per-ip", "0", "--metrics-listen", r.metricsAddr)
	if err != nil {
		return err
	}
	r.p = p
	return p.waitOutput(ctx, "listening on http://", 15*time.Second)
}

func (r *relayProc) url() string { return "http://" + r.addr }

func (r *relayProc) mcpURL(dev, server string) string { return r.url() + "/mcp/" + dev + "/" + server }

func (r *relayProc) token(dev, scope string) string {
	tok, err := server.Issue(r.secret, dev, scope, 24*time.Hour)
	if err != nil {
		panic(err) // only on a bad dev id, which is a harness bug
	}
	return tok
}

// bridgeStatus is the body of GET /v1/bridges/{dev}.
type bridgeStatus struct {
	Connected bool       `json:"connected"`
	Since     *time.Time `json:"since"`
	Protocol  string     `json:"protocol"`
	Servers   []struct {
		Name      string `json:"name"`
		State     string `json:"state"`
		ToolCount int    `json:"toolCount"`
	} `json:"servers"`
}

func (r *relayProc) status(ctx context.Context, dev string) (bridgeStatus, error) {
	var st bridgeStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url()+"/v1/bridges/"+dev, nil)
	if err != nil {
		return st, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token(dev, server.ScopeClient))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// ready reports whether name is listed ready with at least one tool.
func (st bridgeStatus) ready(name string) bool {
	if !st.Connected {
		return false
	}
	for _, s := range st.Servers {
		if s.Name == name && s.State == "ready" && s.ToolCount > 0 {
			return true
		}
	}
	return false
}

// waitReady polls the status API (the only place that shows when a bridge
// holds its slot) until name is ready, failing early if watch exits.
func (r *relayProc) waitReady(ctx context.Context, dev, name string, watch *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last bridgeStatus
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = r.status(ctx, dev)
		if lastErr == nil && last.ready(name) {
			return nil
		}
		if watch != nil && watch.exited() {
			return fmt.Errorf("%s exited (%v):\n%s", watch.name, watch.err, tail(watch.out.String(), 2000))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond): // poll interval of a status API
		}
	}
	return fmt.Errorf("%s/%s not ready within %v (last %+v, err %v)", dev, name, timeout, last, lastErr)
}

// startTetherd runs `tetherd run` with an mcp.json holding servers (name →
// argv) and waits until the relay lists every one of them ready.
func (e *env) startTetherd(ctx context.Context, r *relayProc, dev, home string, servers map[string][]string, extraEnv ...string) (*proc, error) {
	p, err := e.runTetherd(r.url(), r.token(dev, server.ScopeBridge), home, servers, extraEnv...)
	if err != nil {
		return nil, err
	}
	for name := range servers {
		if err := r.waitReady(ctx, dev, name, p, 30*time.Second); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// runTetherd starts tetherd without waiting. home becomes TETHER_HOME (a new
// temp dir when empty) and holds the mcp.json. The token goes in through
// the environment, never argv.
func (e *env) runTetherd(relayURL, token, home string, servers map[string][]string, extraEnv ...string) (*proc, error) {
	if home == "" {
		var err error
		if home, err = os.MkdirTemp(e.dir, "home-"); err != nil {
			return nil, err
		}
	}
	if err := writeMCPJSON(filepath.Join(home, "mcp.json"), servers); err != nil {
		return nil, err
	}
	env := append([]string{"TETHER_HOME=" + home, "TETHER_TOKEN=" + token}, extraEnv...)
	return e.start("tetherd", env, e.tetherd, "run", "--relay", relayURL)
}

// writeMCPJSON saves the config atomically (temp file + rename), the way
// editors save, so a watcher never sees a half-written file.
func writeMCPJSON(path string, servers map[string][]string) error {
	m := map[string]any{}
	for name, argv := range servers {
		m[name] = map[string]any{"command": argv[0], "args": argv[1:]}
	}
	b, err := json.MarshalIndent(map[string]any{"mcpServers": m}, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write mcp.json: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save mcp.json: %w", err)
	}
	return nil
}

// startTAGBridge runs the published tag-mcp-bridge against the relay with
// one child command; its dev comes from the token.
func (e *env) startTAGBridge(ctx context.Context, r *relayProc, dev, childCmd string) (*proc, error) {
	p, err := e.runTAGBridge(r.url(), r.token(dev, server.ScopeBridge), childCmd)
	if err != nil {
		return nil, err
	}
	return p, r.waitReady(ctx, dev, "default", p, 60*time.Second)
}

// runTAGBridge starts tag-mcp-bridge without waiting for it to connect.
func (e *env) runTAGBridge(relayURL, token, childCmd string) (*proc, error) {
	return e.start("tag-mcp-bridge", []string{"TAG_BRIDGE_TOKEN=" + token},
		e.node, e.tagBridge, "--relay", relayURL, "--mcp-cmd", childCmd)
}

// startSupergateway runs supergateway stdio → Streamable HTTP, stateful
// (one child per session, kept warm: its stateless mode spawns a child per
// POST), logging off (it logs every message at info).
func (e *env) startSupergateway(ctx context.Context, childCmd string) (string, *proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	_, port, _ := strings.Cut(addr, ":")
	p, err := e.start("supergateway", nil, e.node, e.supergateway, "--stdio", childCmd,
		"--outputTransport", "streamableHttp", "--stateful", "--port", port, "--logLevel", "none",
		"--healthEndpoint", "/healthz")
	if err != nil {
		return "", nil, err
	}
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base + "/mcp", p, nil
			}
		}
		if p.exited() {
			return "", nil, fmt.Errorf("supergateway exited (%v):\n%s", p.err, tail(p.out.String(), 2000))
		}
		select {
		case <-ctx.Done():
			return "", nil, ctx.Err()
		case <-time.After(10 * time.Millisecond): // waiting for a port to open
		}
	}
	return "", nil, fmt.Errorf("supergateway not listening within 30s:\n%s", tail(p.out.String(), 2000))
}
