package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ControlClient is a Control for an engine in another process, reached over
// its control socket (see control.go for the API).
type ControlClient struct {
	path string
	tr   *http.Transport
	hc   *http.Client
}

var _ Control = (*ControlClient)(nil)

// controlBase is the URL every request uses; the transport ignores the host
// and dials the socket.
const controlBase = "http://tether"

// maxEventLine bounds one SSE line (one State as JSON).
const maxEventLine = 16 << 20

// DialControl returns a client for the engine listening on socketPath, after
// checking that it answers. When nothing listens there (no socket file, or a
// stale one) the error wraps ErrNoEngine.
func DialControl(ctx context.Context, socketPath string) (*ControlClient, error) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
		DisableCompression:  true,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		// Event streams answer headers at once too, so this bounds every
		// request against a hung engine without cutting streams short.
		ResponseHeaderTimeout: time.Minute,
	}
	c := &ControlClient{path: socketPath, tr: tr, hc: &http.Client{Transport: tr}}
	if _, err := c.State(ctx); err != nil {
		tr.CloseIdleConnections()
		return nil, err
	}
	return c, nil
}

// Path is the socket this client talks to.
func (c *ControlClient) Path() string { return c.path }

// Close releases idle connections. Open event streams end with their
// contexts.
func (c *ControlClient) Close() error {
	c.tr.CloseIdleConnections()
	return nil
}

// State returns the engine's latest snapshot.
func (c *ControlClient) State(ctx context.Context) (State, error) {
	var st State
	resp, err := c.do(ctx, http.MethodGet, "/v1/state", nil)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("control state: decode: %w", err)
	}
	return st, nil
}

// Subscribe streams snapshots from the engine: the current one first, then
// each change. The channel holds only the latest snapshot and closes when
// ctx ends or the stream does (the engine went away).
func (c *ControlClient) Subscribe(ctx context.Context) (<-chan State, error) {
	ctx, cancel := context.WithCancel(ctx)
	resp, err := c.do(ctx, http.MethodGet, "/v1/events", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	ch := make(chan State, 1)
	go func() {
		defer cancel()
		defer close(ch)
		defer resp.Body.Close()
		readStateEvents(resp.Body, func(st State) {
			// Latest wins: replace an unread snapshot. This goroutine is
			// the only sender, so after draining the send cannot block.
			select {
			case ch <- st:
			default:
				select {
				case <-ch:
				default:
				}
				ch <- st
			}
		})
	}()
	return ch, nil
}

// readStateEvents parses a Server-Sent Events stream and calls fn for each
// "state" event until the stream ends. Other events and comments are ignored.
func readStateEvents(r io.Reader, fn func(State)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	var event string
	var data []byte
	for sc.Scan() {
		line := sc.Text()
		if line == "" { // dispatch
			if (event == "" || event == "state") && len(data) > 0 {
				var st State
				if err := json.Unmarshal(data, &st); err == nil {
					fn(st)
				}
			}
			event, data = "", data[:0]
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // keepalive comment
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "data":
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, value...)
		}
	}
}

// Connect asks the engine to go online.
func (c *ControlClient) Connect(ctx context.Context) error {
	return c.command(ctx, http.MethodPost, "/v1/connect", nil)
}

// Disconnect asks the engine to stay offline.
func (c *ControlClient) Disconnect(ctx context.Context) error {
	return c.command(ctx, http.MethodPost, "/v1/disconnect", nil)
}

// SetToken hands the bridge token to the engine (in the request body only).
func (c *ControlClient) SetToken(ctx context.Context, token string) error {
	body, err := json.Marshal(struct {
		Token string `json:"token"`
	}{token})
	if err != nil {
		return fmt.Errorf("control set token: %w", err)
	}
	return c.command(ctx, http.MethodPost, "/v1/token", body)
}

// ClearToken asks the engine to forget the token.
func (c *ControlClient) ClearToken(ctx context.Context) error {
	return c.command(ctx, http.MethodPost, "/v1/token/clear", nil)
}

// Reload asks the engine to read its config files again.
func (c *ControlClient) Reload(ctx context.Context) error {
	return c.command(ctx, http.MethodPost, "/v1/reload", nil)
}

// RestartServer restarts one server.
func (c *ControlClient) RestartServer(ctx context.Context, name string) error {
	return c.command(ctx, http.MethodPost, "/v1/servers/"+url.PathEscape(name)+"/restart", nil)
}

// SetServerEnabled enables or disables one server in mcp.json.
func (c *ControlClient) SetServerEnabled(ctx context.Context, name string, enabled bool) error {
	verb := "disable"
	if enabled {
		verb = "enable"
	}
	return c.command(ctx, http.MethodPost, "/v1/servers/"+url.PathEscape(name)+"/"+verb, nil)
}

// SetRelay asks the engine to use another relay (saved in settings.json).
func (c *ControlClient) SetRelay(ctx context.Context, relayURL string) error {
	body, err := json.Marshal(struct {
		Relay string `json:"relay"`
	}{relayURL})
	if err != nil {
		return fmt.Errorf("control set relay: %w", err)
	}
	return c.command(ctx, http.MethodPost, "/v1/relay", body)
}

// SetLinkRelay asks the engine to use a relay named by a tether:// link; it
// refuses (403) when the token it would send there may not go there.
func (c *ControlClient) SetLinkRelay(ctx context.Context, relayURL string, unboundOK bool) error {
	body, err := json.Marshal(struct {
		Relay     string `json:"relay"`
		FromLink  bool   `json:"fromLink"`
		UnboundOK bool   `json:"unboundTokenOK"`
	}{relayURL, true, unboundOK})
	if err != nil {
		return fmt.Errorf("control set relay: %w", err)
	}
	return c.command(ctx, http.MethodPost, "/v1/relay", body)
}

// ImportServers asks the engine to import other apps' servers into its
// mcp.json.
func (c *ControlClient) ImportServers(ctx context.Context, srcs []ImportSource) (ImportReport, error) {
	body, err := json.Marshal(struct {
		Sources []ImportSource `json:"sources"`
	}{srcs})
	if err != nil {
		return ImportReport{}, fmt.Errorf("control import servers: %w", err)
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/servers/import", body)
	if err != nil {
		return ImportReport{}, err
	}
	defer resp.Body.Close()
	var rep ImportReport
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&rep); err != nil {
		return ImportReport{}, fmt.Errorf("control import servers: decode the report: %w", err)
	}
	return rep, nil
}

func (c *ControlClient) command(ctx context.Context, method, path string, body []byte) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	return nil
}

// do sends one request and turns a non-2xx answer into a *ControlError
// carrying the server's message. The caller closes the body on success.
func (c *ControlClient) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, controlBase+path, rd)
	if err != nil {
		return nil, fmt.Errorf("control %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// url.Error quotes the URL only, never the body, so no secret leaks.
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("%w on %s: %w", ErrNoEngine, c.path, op.Err)
		}
		return nil, fmt.Errorf("control %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxControlBody))
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(raw))
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return nil, &ControlError{Status: resp.StatusCode, Message: msg}
}

// Login asks the engine to start a sign-in with the browser.
func (c *ControlClient) Login(ctx context.Context) (LoginState, error) {
	resp, err := c.do(ctx, http.MethodPost, "/v1/login", nil)
	if err != nil {
		return LoginState{}, err
	}
	defer resp.Body.Close()
	var st LoginState
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return LoginState{}, fmt.Errorf("control login: %w", err)
	}
	return st, nil
}

// CancelLogin asks the engine to stop a waiting sign-in.
func (c *ControlClient) CancelLogin(ctx context.Context) error {
	return c.command(ctx, http.MethodPost, "/v1/login/cancel", nil)
}
