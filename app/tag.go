package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tether-dev/tether/mcpchild"
	"github.com/tether-dev/tether/relay"
)

// tagCallTimeout bounds one TAG call at the child. The relay has its own
// (shorter) per-call timeout; this one only stops work nobody waits for.
const tagCallTimeout = 10 * time.Minute

// handleTAG answers one rpc.request from a TAG relay: "list" with the
// flattened tool list, "call" by routing the flattened name to its child's
// tools/call under the tool's own name. Status codes follow the TAG bridge:
// 200 with the MCP result, 500 when the child answered with a JSON-RPC error,
// 502 when the child is not running, 400 for an unknown method.
func (b *bridge) handleTAG(f relay.Frame) {
	start := time.Now()
	status, body := b.tagAnswer(f)
	if f.Method == "call" && b.opts.OnCall != nil {
		b.recordTAGCall(f.Path, start, status, body)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		status, raw = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	b.send(relay.Frame{Kind: relay.KindRPCResponse, ID: f.ID, Status: status, Body: raw})
}

func (b *bridge) tagAnswer(f relay.Frame) (int, any) {
	switch f.Method {
	case "list":
		return http.StatusOK, map[string]json.RawMessage{"tools": b.flattenTools(b.servers())}
	case "call":
	default:
		return http.StatusBadRequest, tagError("unknown method " + f.Method)
	}
	b.mu.Lock()
	route, ok := b.routes[f.Path]
	b.mu.Unlock()
	if !ok {
		return http.StatusNotFound, tagError("unknown tool " + f.Path)
	}
	c := b.Child(route.Server)
	if c == nil {
		return http.StatusBadGateway, tagError("mcp server " + route.Server + " is not running")
	}
	if mustWait(c.Phase()) {
		// Starting or restarting: wait for it, as MCP sessions do.
		wctx, cancel := context.WithTimeout(b.runCtx, b.opts.ReadyWait)
		err := c.WaitReady(wctx)
		cancel()
		if err != nil {
			return http.StatusBadGateway, tagError(fmt.Sprintf("mcp server %s did not become ready within %v: %v", route.Server, b.opts.ReadyWait, c.RemoteError(err)))
		}
	}
	if c.Phase() != mcpchild.PhaseReady {
		return http.StatusBadGateway, tagError("mcp server " + route.Server + " is not running")
	}
	args := f.Body
	if len(args) == 0 || string(args) == "null" {
		args = json.RawMessage("{}")
	}
	params, err := json.Marshal(map[string]any{"name": route.Tool, "arguments": args})
	if err != nil {
		return http.StatusBadRequest, tagError("arguments are not JSON")
	}
	ctx, cancel := context.WithTimeout(b.runCtx, tagCallTimeout)
	defer cancel()
	res, err := c.Call(ctx, "tools/call", params)
	if err != nil {
		var rpcErr *mcpchild.RPCError
		if errors.As(err, &rpcErr) {
			return http.StatusInternalServerError, map[string]any{"error": rpcErr.Message, "code": rpcErr.Code}
		}
		return http.StatusBadGateway, tagError(c.RemoteError(err)) // no stderr to the TAG relay unless shared
	}
	return http.StatusOK, res
}

func tagError(msg string) map[string]string { return map[string]string{"error": msg} }

// recordTAGCall reports a finished TAG call like an MCP one.
func (b *bridge) recordTAGCall(path string, start time.Time, status int, body any) {
	b.mu.Lock()
	route, ok := b.routes[path]
	b.mu.Unlock()
	rec := CallRecord{At: start, Server: route.Server, Tool: route.Tool, Duration: time.Since(start), Outcome: OutcomeOK}
	if !ok {
		rec.Tool = path
	}
	if status != http.StatusOK {
		rec.Outcome = OutcomeError
		if m, ok := body.(map[string]string); ok {
			rec.Error = m["error"]
		} else if m, ok := body.(map[string]any); ok {
			rec.Error, _ = m["error"].(string)
		}
	} else if raw, ok := body.(json.RawMessage); ok && bytes.Contains(raw, []byte(`"isError":true`)) {
		rec.Outcome = OutcomeToolError
	}
	b.opts.OnCall(rec)
}
