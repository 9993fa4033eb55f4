package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tether-dev/tether/internal/mcpwire"
	"github.com/tether-dev/tether/relay"
)

// tagServerName is the one server a TAG bridge serves: /mcp/{dev}/default.
const tagServerName = "default"

// A TAG bridge (@tournesol-tag/mcp-bridge 0.1.x) knows only
// rpc.request {method:"list"|"call"}, so here the relay is the MCP server.
// It uses a real go-sdk mcp.Server for the handshake, sessions, both eras
// and SSE, and a receiving middleware turns tools/list and tools/call into
// rpc.request frames. Two handlers share that server: a stateful one for
// 2025-era clients (initialize, Mcp-Session-Id) and a stateless one for
// 2026-era requests, because go-sdk serves the 2026 protocol only in
// stateless mode.
//
// Errors: a status other than 200 becomes a JSON-RPC error (not an isError
// tool result), because the TAG bridge sends non-200 only when the child
// answered with a JSON-RPC error or could not be reached — a protocol-level
// failure, not a tool's own failure, which arrives as a 200 CallToolResult
// with isError already set. The code is the child's when the body carries
// one, else -32603.
type tagFacade struct {
	b         *bridgeConn
	stateful  http.Handler
	stateless http.Handler
}

func newTAGFacade(b *bridgeConn) *tagFacade {
	f := &tagFacade{b: b}
	srv := mcp.NewServer(
		&mcp.Implementation{Name: "tag-bridge/" + b.dev, Version: b.version},
		&mcp.ServerOptions{
			Capabilities: &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{}},
			Logger:       b.s.log,
		})
	srv.AddReceivingMiddleware(f.middleware)
	get := func(*http.Request) *mcp.Server { return srv }
	f.stateful = mcp.NewStreamableHTTPHandler(get, &mcp.StreamableHTTPOptions{
		// The relay is a public service authenticated by tokens; it is
		// often behind a proxy on loopback with a public Host header, which
		// go-sdk's DNS-rebinding guard would refuse.
		DisableLocalhostProtection: true,
		SessionTimeout:             b.s.sessionIdleTimeout(),
		MaxRequestBodyBytes:        maxBodyBytes,
		Logger:                     b.s.log,
	})
	f.stateless = mcp.NewStreamableHTTPHandler(get, &mcp.StreamableHTTPOptions{
		Stateless:                    true,
		DisableLocalhostProtection:   true,
		PropagateRequestCancellation: true,
		MaxRequestBodyBytes:          maxBodyBytes,
		Logger:                       b.s.log,
	})
	return f
}

func (f *tagFacade) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.Header.Get(headerSession) == "" {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		if err != nil {
			writeRPCError(w, http.StatusRequestEntityTooLarge, nil, mcpwire.CodeInvalidRequest, "read body: "+err.Error())
			return
		}
		liftReadDeadline(w)
		r.Body = io.NopCloser(bytes.NewReader(body))
		pk, _ := peekMessage(body) // a bad body is the SDK's to reject
		if is2026(r, pk) {
			f.stateless.ServeHTTP(w, r)
			return
		}
	}
	f.stateful.ServeHTTP(w, r)
}

func (f *tagFacade) middleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		switch method {
		case "tools/list":
			body, err := f.b.rpc(ctx, "list", "", nil)
			if err != nil {
				return nil, err
			}
			var res mcp.ListToolsResult
			if err := json.Unmarshal(body, &res); err != nil {
				return nil, &jsonrpc.Error{Code: mcpwire.CodeInternal, Message: "TAG bridge sent a bad tools/list result: " + err.Error()}
			}
			if res.Tools == nil {
				res.Tools = []*mcp.Tool{}
			}
			return &res, nil
		case "tools/call":
			p, ok := req.GetParams().(*mcp.CallToolParamsRaw)
			if !ok || p == nil {
				return nil, &jsonrpc.Error{Code: mcpwire.CodeInvalidParams, Message: "tools/call needs params"}
			}
			args := p.Arguments
			if len(args) == 0 || string(args) == "null" {
				args = json.RawMessage("{}")
			}
			body, err := f.b.rpc(ctx, "call", p.Name, args)
			if err != nil {
				return nil, err
			}
			var res mcp.CallToolResult
			if err := json.Unmarshal(body, &res); err != nil {
				return nil, &jsonrpc.Error{Code: mcpwire.CodeInternal, Message: "TAG bridge sent a bad tools/call result: " + err.Error()}
			}
			return &res, nil
		}
		return next(ctx, method, req)
	}
}

// rpc sends one rpc.request to the TAG bridge and waits for its
// rpc.response. Failures come back as *jsonrpc.Error so the SDK answers
// the client with them.
func (b *bridgeConn) rpc(ctx context.Context, method, path string, body json.RawMessage) (json.RawMessage, error) {
	start := time.Now()
	b.mu.Lock()
	b.nextRPC++
	id := "r" + strconv.FormatUint(b.nextRPC, 10)
	ch := make(chan relay.Frame, 1)
	b.rpcs[id] = ch
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.rpcs, id)
		b.mu.Unlock()
	}()
	rawID, _ := json.Marshal(id)
	if err := b.send(ctx, relay.Frame{Kind: relay.KindRPCRequest, ID: rawID, Method: method, Path: path, Body: body}); err != nil {
		b.s.metrics.observeCall("unavailable", time.Since(start))
		return nil, &jsonrpc.Error{Code: mcpwire.CodeUnavailable, Message: "tether-relay: bridge unavailable: " + err.Error()}
	}
	timer := time.NewTimer(b.s.callTimeout())
	defer timer.Stop()
	select {
	case f := <-ch:
		if f.Status == http.StatusOK {
			b.s.metrics.observeCall("ok", time.Since(start))
			return f.Body, nil
		}
		b.s.metrics.observeCall("error", time.Since(start))
		return nil, tagError(f)
	case <-timer.C:
		b.s.metrics.observeCall("timeout", time.Since(start))
		return nil, &jsonrpc.Error{Code: mcpwire.CodeTimeout, Message: fmt.Sprintf("tether-relay: no answer from the bridge within %v", b.s.callTimeout())}
	case <-ctx.Done():
		b.s.metrics.observeCall("cancelled", time.Since(start))
		return nil, ctx.Err()
	case <-b.done:
		b.s.metrics.observeCall("unavailable", time.Since(start))
		return nil, &jsonrpc.Error{Code: mcpwire.CodeUnavailable, Message: "tether-relay: bridge disconnected before answering"}
	}
}

// tagError turns a non-200 rpc.response into a JSON-RPC error. The TAG
// bridge sends {error: message, code, data} for child errors.
func tagError(f relay.Frame) error {
	var body struct {
		Error string          `json:"error"`
		Code  *int            `json:"code"`
		Data  json.RawMessage `json:"data"`
	}
	json.Unmarshal(f.Body, &body)
	e := &jsonrpc.Error{Code: mcpwire.CodeInternal, Message: body.Error}
	if body.Code != nil {
		e.Code = int64(*body.Code)
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("TAG bridge answered status %d", f.Status)
	}
	if len(body.Data) > 0 && string(body.Data) != "null" {
		e.Data = body.Data
	}
	return e
}

func (b *bridgeConn) routeRPC(f relay.Frame) {
	b.mu.Lock()
	ch := b.rpcs[idString(f.ID)]
	b.mu.Unlock()
	if ch == nil {
		b.s.log.Debug("rpc.response for no waiting request dropped", "dev", b.dev)
		return
	}
	select {
	case ch <- f:
	default: // a duplicate answer
	}
}

func idString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// tagServerInfo describes a TAG bridge's one server from its hello.
func tagServerInfo(tools json.RawMessage) relay.ServerInfo {
	var list []json.RawMessage
	json.Unmarshal(tools, &list)
	return relay.ServerInfo{Name: tagServerName, State: "ready", ToolCount: len(list), Tools: list}
}
