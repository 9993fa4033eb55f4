package mcpchild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/tether-dev/tether/internal/mcpwire"
)

// handshake is what the bridge learned from a child when it started.
type handshake struct {
	era Era
	// initResult is the child's initialize result (2025) or one synthesized
	// from its discovery (2026), as a 2025-era session expects it.
	initResult []byte
	// discover is the child's server/discover result (2026), or one
	// synthesized from its initialize result (2025), as a 2026-era session
	// expects it.
	discover     []byte
	capabilities []byte
	hasTools     bool
	hasLogging   bool
}

// The era choice. The bridge probes with server/discover; a child that
// answers it is spoken to in 2026-07-28, including one that supports both
// eras. Why:
//   - it is forced in practice: the go-sdk server treats discover as the start
//     of the connection and rejects a later initialize as a duplicate
//     (measured), so switching back would cost a second process start;
//   - it fits multiplexing: every request carries its own session's client
//     info, capabilities and log level in _meta, where 2025 has one
//     initialize (one set of capabilities, one log level) for all sessions;
//   - input requests (roots, sampling, elicitation) come back as
//     "input_required" results of the very request that needs them, so
//     routing them is never ambiguous; in 2025 a server→client request is
//     ambiguous whenever two sessions have calls in flight.
// The cost: server code that still sends server-initiated requests the 2025
// way (session.ListRoots etc.) fails on a 2026 connection in the go-sdk.
// Such a server is pinned to 2025 with Options.Era (mcp.json: "era": "2025").
// 2025-era sessions on a 2026 child get multi-round-trip results translated
// into ordinary server→client requests (see mrtr.go).

// bridgeCapabilities are declared in the bridge's initialize so a child is
// willing to send roots, sampling and elicitation requests, which are then
// routed to the session that can answer.
const bridgeCapabilities = `{"roots":{"listChanged":true},"sampling":{},"elicitation":{"form":{},"url":{}}}`

func (c *Child) clientInfo() []byte {
	b, _ := json.Marshal(map[string]string{"name": c.opts.ClientName, "version": c.opts.ClientVersion})
	return b
}

func (c *Child) handshake(ctx context.Context, in *instance) (handshake, error) {
	if c.opts.Era != Era2025 {
		hs, err := c.probeDiscover(ctx, in)
		switch {
		case err == nil:
			c.openBridgeListen(in)
			return hs, nil
		case err != nil && c.opts.Era == Era2026:
			return handshake{}, fmt.Errorf("server/discover: %w", err)
		case err != nil:
			c.log.Debug("server/discover probe failed; using initialize", "err", err)
		}
		if ctx.Err() != nil {
			return handshake{}, ctx.Err()
		}
	}
	return c.initialize(ctx, in)
}

// probeDiscover asks the child for server/discover (2026-07-28).
func (c *Child) probeDiscover(ctx context.Context, in *instance) (handshake, error) {
	meta := []byte(`{}`)
	meta = setField(meta, mcpwire.MetaProtocolVersion, []byte(strconv.Quote(mcpwire.Version2026)))
	meta = setField(meta, mcpwire.MetaClientInfo, c.clientInfo())
	meta = setField(meta, mcpwire.MetaClientCapabilities, []byte(bridgeCapabilities))
	params := setField(nil, "_meta", meta)
	pctx, cancel := context.WithTimeout(ctx, c.opts.ProbeTimeout)
	defer cancel()
	res, err := c.request(pctx, in, "server/discover", params)
	if err != nil {
		return handshake{}, err
	}
	var d struct {
		SupportedVersions []string                   `json:"supportedVersions"`
		Capabilities      json.RawMessage            `json:"capabilities"`
		Instructions      string                     `json:"instructions"`
		Meta              map[string]json.RawMessage `json:"_meta"`
	}
	if err := json.Unmarshal(res, &d); err != nil {
		return handshake{}, fmt.Errorf("server/discover result: %w", err)
	}
	if !slices.ContainsFunc(d.SupportedVersions, mcpwire.IsModern) {
		return handshake{}, errors.New("server/discover lists no 2026-era protocol version")
	}
	caps := orEmpty(d.Capabilities)
	initRes := map[string]any{
		"protocolVersion": mcpwire.Version2025,
		"capabilities":    caps,
		"serverInfo":      rawOr(d.Meta[mcpwire.MetaServerInfo], `{"name":"unknown","version":""}`),
	}
	if d.Instructions != "" {
		initRes["instructions"] = d.Instructions
	}
	initJSON, _ := json.Marshal(initRes)
	return handshake{
		era:          Era2026,
		initResult:   initJSON,
		discover:     res,
		capabilities: caps,
		hasTools:     field(caps, "tools") != nil,
		hasLogging:   field(caps, "logging") != nil,
	}, nil
}

// openBridgeListen opens the bridge's own subscriptions/listen on a 2026
// child: without one the child announces no list changes, and the bridge
// needs them to refresh its tool cache and to tell 2025-era sessions. The
// request stays open for the life of the process.
func (c *Child) openBridgeListen(in *instance) {
	params := addProtocolMeta([]byte(`{"notifications":{"toolsListChanged":true,"promptsListChanged":true,"resourcesListChanged":true}}`),
		c.clientInfo(), []byte(bridgeCapabilities))
	p := &pending{method: "subscriptions/listen", internal: make(chan []byte, 1)}
	id, err := c.send(in, p, func(_ int64, id []byte) []byte { return buildRequest(id, "subscriptions/listen", params) })
	if err != nil {
		c.log.Warn("subscriptions/listen", "err", err)
		return
	}
	c.bridgeListen.Store(id)
}

// initialize runs the 2025-era handshake: initialize, then initialized.
func (c *Child) initialize(ctx context.Context, in *instance) (handshake, error) {
	params, _ := json.Marshal(map[string]any{
		"protocolVersion": mcpwire.Version2025,
		"capabilities":    json.RawMessage(bridgeCapabilities),
		"clientInfo":      json.RawMessage(c.clientInfo()),
	})
	res, err := c.request(ctx, in, "initialize", params)
	if err != nil {
		return handshake{}, fmt.Errorf("initialize: %w", err)
	}
	if err := in.write(buildNotification("notifications/initialized", nil)); err != nil {
		return handshake{}, fmt.Errorf("notifications/initialized: %w", err)
	}
	var r struct {
		Capabilities json.RawMessage `json:"capabilities"`
		ServerInfo   json.RawMessage `json:"serverInfo"`
		Instructions string          `json:"instructions"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return handshake{}, fmt.Errorf("initialize result: %w", err)
	}
	caps := orEmpty(r.Capabilities)
	disc := map[string]any{
		"resultType":        "complete",
		"supportedVersions": []string{mcpwire.Version2026},
		"capabilities":      caps,
		"_meta":             map[string]json.RawMessage{mcpwire.MetaServerInfo: rawOr(r.ServerInfo, `{"name":"unknown","version":""}`)},
	}
	if r.Instructions != "" {
		disc["instructions"] = r.Instructions
	}
	discRes, _ := json.Marshal(disc)
	hs := handshake{
		era:          Era2025,
		initResult:   res,
		discover:     discRes,
		capabilities: caps,
		hasTools:     field(caps, "tools") != nil,
		hasLogging:   field(caps, "logging") != nil,
	}
	// A 2025 child sends no log notifications until logging/setLevel, and
	// the level is one per child: ask for everything and filter per session.
	if hs.hasLogging {
		if _, err := c.request(ctx, in, "logging/setLevel", []byte(`{"level":"debug"}`)); err != nil {
			c.log.Warn("logging/setLevel", "err", err)
		}
	}
	return hs, nil
}

// listTools follows nextCursor pages and returns every tool object as sent.
func (c *Child) listTools(ctx context.Context, in *instance, hs handshake) ([]json.RawMessage, error) {
	if !hs.hasTools {
		return nil, nil
	}
	var tools []json.RawMessage
	cursor := ""
	for page := 0; ; page++ {
		if page > 1000 {
			return nil, errors.New("tools/list: more than 1000 pages; the server's cursor does not advance")
		}
		params := []byte(`{}`)
		if cursor != "" {
			params = setField(params, "cursor", []byte(strconv.Quote(cursor)))
		}
		if hs.era == Era2026 {
			params = addProtocolMeta(params, c.clientInfo(), []byte(bridgeCapabilities))
		}
		res, err := c.request(ctx, in, "tools/list", params)
		if err != nil {
			return nil, err
		}
		var r struct {
			Tools      []json.RawMessage `json:"tools"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := json.Unmarshal(res, &r); err != nil {
			return nil, fmt.Errorf("tools/list result: %w", err)
		}
		tools = append(tools, r.Tools...)
		if r.NextCursor == "" {
			return tools, nil
		}
		cursor = r.NextCursor
	}
}

func orEmpty(b json.RawMessage) json.RawMessage {
	if len(b) == 0 || string(b) == "null" {
		return json.RawMessage(`{}`)
	}
	return b
}

func rawOr(b json.RawMessage, def string) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage(def)
	}
	return b
}
