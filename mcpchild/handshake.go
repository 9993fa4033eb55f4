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
	// both: the child was initialized (era 2025) and also answers
	// server/discover. 2025-era sessions are then spoken to in 2025, and
	// 2026-era sessions' requests go to it as they are, with their own
	// per-request _meta: every client gets the child in its own version.
	both bool
}

// The era choice. Unless mcp.json pins an era, the bridge initializes the
// child (2025) and then sends it one list request with the 2026-07-28
// per-request _meta (see probeModernRequest):
//   - a child that answers both is spoken to in both: a 2025-era session's
//     requests go to it as 2025 requests (sampling, elicitation and roots as
//     server→client requests, resources/subscribe, one log level), a
//     2026-era session's requests go as they are, with the client's own
//     per-request _meta (multi-round-trip results, subscriptions/listen).
//     Each client thus meets the server in the version it asked for, with
//     no translation — measured: the go-sdk's servers refuse 2025-style
//     server→client requests on a 2026 request, and have no
//     resources/subscribe in 2026, so translating one era into the other
//     loses features. (Measured too: the go-sdk's stdio server, initialized
//     once at 2025, still asks a 2026 request's input with server→client
//     requests and sends resource updates as 2025 notifications; held.go
//     and subs.go turn those into a 2026 client's shapes.)
//     server/discover is not sent to such a child: the
//     go-sdk server treats it as the start of a 2026 connection (rejecting
//     a later initialize, and treating 2025 requests as 2026 ones); 2026
//     sessions get a discover result made from the initialize result.
//   - a child that refuses initialize is probed with server/discover and
//     spoken to in 2026 only; 2025-era sessions get multi-round-trip results
//     translated into ordinary server→client requests (see mrtr.go).
//   - a child that refuses server/discover is spoken to in 2025 only; 2026
//     sessions get their _meta stripped and list changes on their listen.
// "era": "2026" in mcp.json skips initialize (a server that misbehaves on
// it, or one written for 2026 clients' multi-round-trip input requests),
// "era": "2025" skips the probe. HTTP servers are probed with
// server/discover first (see handshake).

// bridgeCapabilities are declared in the bridge's initialize so a child is
// willing to send roots, sampling and elicitation requests, which are then
// routed to the session that can answer.
const bridgeCapabilities = `{"roots":{"listChanged":true},"sampling":{},"elicitation":{"form":{},"url":{}}}`

func (c *Child) clientInfo() []byte {
	b, _ := json.Marshal(map[string]string{"name": c.opts.ClientName, "version": c.opts.ClientVersion})
	return b
}

func (c *Child) handshake(ctx context.Context, in *instance) (handshake, error) {
	if c.spec.URL != "" && c.opts.Era != Era2025 {
		// An HTTP server is probed with server/discover first, as before:
		// a stateless one has no 2025 session to hold sampling, roots or a
		// client's identity, so 2026 (with the session's _meta on every
		// request) serves both kinds of client better there.
		hs, err := c.probeDiscover(ctx, in)
		switch {
		case err == nil:
			c.openBridgeListen(in)
			return hs, nil
		case c.opts.Era == Era2026:
			return handshake{}, fmt.Errorf("server/discover: %w", err)
		}
		c.log.Debug("server/discover probe failed; using initialize", "err", err)
		if ctx.Err() != nil {
			return handshake{}, ctx.Err()
		}
		return c.initialize(ctx, in)
	}
	if c.opts.Era == Era2026 {
		hs, err := c.probeDiscover(ctx, in)
		if err != nil {
			return handshake{}, fmt.Errorf("server/discover: %w", err)
		}
		c.openBridgeListen(in)
		return hs, nil
	}
	hs, err := c.initialize(ctx, in)
	if err != nil {
		if c.opts.Era == Era2025 || ctx.Err() != nil {
			return handshake{}, err
		}
		// Refused: a 2026-only child, which has no initialize.
		c.log.Debug("initialize refused; probing server/discover", "err", err)
		hs2, derr := c.probeDiscover(ctx, in)
		if derr != nil {
			return handshake{}, fmt.Errorf("%w; server/discover: %w", err, derr)
		}
		c.openBridgeListen(in)
		return hs2, nil
	}
	if c.opts.Era == Era2025 {
		return hs, nil
	}
	hs.both = c.probeModernRequest(ctx, in, hs)
	return hs, nil
}

// probeModernRequest asks an initialized child one list request carrying
// the 2026 per-request _meta and reports whether it answered as a 2026
// server does (a result with "resultType"). Not server/discover: the go-sdk
// server takes that as the start of a 2026 connection and from then on
// treats 2025 requests as 2026 ones too (no server→client requests, no
// plain list_changed), while a request with 2026 _meta leaves the
// connection as it was (measured with the go-sdk's servers).
func (c *Child) probeModernRequest(ctx context.Context, in *instance, hs handshake) bool {
	method := ""
	for _, m := range []struct{ capability, method string }{{"tools", "tools/list"}, {"prompts", "prompts/list"}, {"resources", "resources/list"}} {
		if field(hs.capabilities, m.capability) != nil {
			method = m.method
			break
		}
	}
	if method == "" {
		return false // nothing to ask that a 2025 server must answer
	}
	pctx, cancel := context.WithTimeout(ctx, c.opts.ProbeTimeout)
	defer cancel()
	res, err := c.request(pctx, in, method, addProtocolMeta([]byte(`{}`), c.clientInfo(), []byte(bridgeCapabilities)))
	if err != nil {
		c.log.Debug("2026 probe failed; speaking 2025 only", "method", method, "err", err)
		return false
	}
	return field(res, "resultType") != nil
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
