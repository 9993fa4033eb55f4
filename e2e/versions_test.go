package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testbin"
)

// TestVersionTable speaks every released MCP version, as raw JSON-RPC over
// Streamable HTTP, through the real relay and bridge to children of each
// era, and tries every feature: each cell checks the feature works in that
// version's shape, or — for a feature the version lacks — that it is not
// offered in a shape the client cannot parse.
func TestVersionTable(t *testing.T) {
	r := startRelay(t)
	bin := testbin.Build(t, "./internal/testservers/mcpserver")
	children := map[string][]string{"legacy": {"-era", "legacy"}, "modern": {"-era", "modern"}, "both": nil}
	servers := map[string]any{}
	for name, args := range children {
		servers[name] = map[string]any{"command": bin, "args": args}
	}
	cfg := writeConfig(t, servers)
	startTetherd(t, r.token(t, dev, "bridge"), nil, "run", "--config", cfg, "--relay", r.url(), "--dev-id", dev)
	tok := r.token(t, dev, "client")
	for name := range children {
		r.waitServing(t, dev, tok, name, 30*time.Second)
	}
	versions := []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"}
	features := []struct {
		name string
		run  func(t *testing.T, c *rawClient)
	}{
		{"tools", featTools}, {"resources", featResources}, {"prompts", featPrompts},
		{"completion", featCompletion}, {"subscriptions", featSubscriptions},
		{"sampling", featInput("sample", map[string]any{"prompt": "hi"}, "sampled")},
		{"elicitation", featInput("elicit", map[string]any{"message": "name?"}, "elicited")},
		{"roots", featInput("roots", map[string]any{}, "file:///table")},
		{"logging", featLogging}, {"progress", featProgress}, {"cancellation", featCancellation}, {"ping", featPing},
		{"shapes", featShapes}, {"batch", featBatch},
	}
	for _, child := range []string{"legacy", "modern", "both"} {
		for _, v := range versions {
			t.Run(child+"/"+v, func(t *testing.T) {
				c := newRawClient(t, r, tok, child, v)
				for _, f := range features {
					t.Run(f.name, func(t *testing.T) { f.run(t, c) })
				}
			})
		}
	}
}

// rawClient is an MCP client of one version, written with raw JSON-RPC so
// that any version can be spoken exactly.
type rawClient struct {
	t       *testing.T
	url     string
	tok     string
	version string
	sid     string
	http    *http.Client
	nextID  atomic.Int64
	stream  chan json.RawMessage // the 2025-era GET stream's messages
	caps    map[string]any
	init    json.RawMessage // the initialize result (2025 era)
	streams sync.WaitGroup
}

func modern(v string) bool { return v >= "2026-07-28" }

// hasElicitation: elicitation came with 2025-06-18.
func hasElicitation(v string) bool { return v >= "2025-06-18" }

func newRawClient(t *testing.T, r *relayProc, tok, server, version string) *rawClient {
	c := &rawClient{t: t, url: r.mcpURL(dev, server), tok: tok, version: version, http: r.http(), stream: make(chan json.RawMessage, 256)}
	c.caps = map[string]any{"roots": map[string]any{"listChanged": true}, "sampling": map[string]any{}}
	if hasElicitation(version) {
		c.caps["elicitation"] = map[string]any{"form": map[string]any{}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); c.streams.Wait() })
	if modern(version) {
		res, errObj, _ := c.call(ctx, "server/discover", map[string]any{})
		var d struct {
			SupportedVersions []string `json:"supportedVersions"`
		}
		if errObj != nil || json.Unmarshal(res, &d) != nil || !slices.Contains(d.SupportedVersions, version) {
			t.Fatalf("server/discover = %s %s: %s not supported", res, errObj, version)
		}
		return c
	}
	res, errObj, _ := c.call(ctx, "initialize", map[string]any{
		"protocolVersion": version, "capabilities": c.caps,
		"clientInfo": map[string]any{"name": "version-table", "version": "1"},
	})
	if errObj != nil {
		t.Fatalf("initialize: %s", errObj)
	}
	if got := str(res, "protocolVersion"); got != version {
		t.Fatalf("initialize asked for %s, answered %q", version, got)
	}
	if c.sid == "" {
		t.Fatal("initialize gave no Mcp-Session-Id")
	}
	c.init = res
	c.notify("notifications/initialized", nil)
	c.openStream(ctx)
	return c
}

// post sends one message and returns the HTTP response.
func (c *rawClient) post(ctx context.Context, msg any) *http.Response {
	body, _ := json.Marshal(msg)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	c.headers(req)
	if modern(c.version) {
		mirrorHeaders(req, msg)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("POST %s: %v", body, err)
	}
	return resp
}

// mirrorHeaders sets what a 2026-07-28 client mirrors from a request's body
// into headers for intermediaries (SEP-2243): Mcp-Method, and Mcp-Name for
// tools/call, prompts/get (params.name) and resources/read (params.uri).
// The relay refuses a 2026 request without them, as the spec says.
func mirrorHeaders(req *http.Request, msg any) {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Name string `json:"name"`
			URI  string `json:"uri"`
		} `json:"params"`
	}
	b, _ := json.Marshal(msg)
	if json.Unmarshal(b, &m) != nil || m.Method == "" {
		return
	}
	req.Header.Set("Mcp-Method", m.Method)
	switch m.Method {
	case "tools/call", "prompts/get":
		req.Header.Set("Mcp-Name", m.Params.Name)
	case "resources/read":
		req.Header.Set("Mcp-Name", m.Params.URI)
	}
}

func (c *rawClient) headers(req *http.Request) {
	req.Header.Set("Authorization", "Bearer "+c.tok)
	if c.sid != "" {
		req.Header.Set("Mcp-Session-Id", c.sid)
	}
	if c.sid != "" || modern(c.version) {
		req.Header.Set("Mcp-Protocol-Version", c.version)
	}
}

func (c *rawClient) notify(method string, params any) {
	msg := map[string]any{"jsonrpc": "2.0", "method": method}
	if params != nil {
		msg["params"] = params
	}
	resp := c.post(context.Background(), msg)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		c.t.Fatalf("%s: HTTP %d", method, resp.StatusCode)
	}
}

// openStream opens the 2025-era GET stream and feeds c.stream.
func (c *rawClient) openStream(ctx context.Context) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	c.headers(req)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET stream: %v %v", resp, err)
	}
	c.streams.Add(1)
	go func() {
		defer c.streams.Done()
		defer resp.Body.Close()
		readMessages(resp, func(m json.RawMessage) bool {
			select {
			case c.stream <- m:
			default: // the tests read what they wait for; drop the rest
			}
			return false
		})
	}()
}

// readMessages calls fn for each message of a JSON or SSE response until
// fn returns true or the body ends.
func readMessages(resp *http.Response, fn func(json.RawMessage) bool) {
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		if len(bytes.TrimSpace(b)) > 0 {
			fn(b)
		}
		return
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if len(data) > 0 && fn(data) {
				return
			}
			data = nil
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data, bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))...)
		}
	}
}

// call sends a request and returns its result or error, and the messages
// that came before it on the same stream. Server→client requests on the
// stream are answered (answerInput) as a client of c.version does.
func (c *rawClient) call(ctx context.Context, method string, params map[string]any) (result, errObj json.RawMessage, before []json.RawMessage) {
	c.t.Helper()
	return c.callWatch(ctx, method, params, nil)
}

// callWatch is call with watch seeing every message before the answer.
func (c *rawClient) callWatch(ctx context.Context, method string, params map[string]any, watch func(json.RawMessage)) (result, errObj json.RawMessage, before []json.RawMessage) {
	c.t.Helper()
	id := c.nextID.Add(1)
	if modern(c.version) {
		params = withMeta(params, map[string]any{
			"io.modelcontextprotocol/protocolVersion":    c.version,
			"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "version-table", "version": "1"},
			"io.modelcontextprotocol/clientCapabilities": c.caps,
		})
	}
	resp := c.post(ctx, map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	defer resp.Body.Close()
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" && method == "initialize" {
		c.sid = sid
	}
	readMessages(resp, func(m json.RawMessage) bool {
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(m, &msg); err != nil {
			c.t.Errorf("%s: a message the client cannot parse: %s", method, m)
			return true
		}
		if watch != nil {
			watch(m)
		}
		switch {
		case msg.Method != "" && msg.ID != nil:
			before = append(before, m)
			res, e := c.answerInput(msg.Method, msg.Params)
			out := map[string]any{"jsonrpc": "2.0", "id": msg.ID}
			if e != "" {
				out["error"] = map[string]any{"code": -32601, "message": e}
			} else {
				out["result"] = res
			}
			r := c.post(ctx, out)
			r.Body.Close()
			return false
		case msg.Method != "":
			before = append(before, m)
			return false
		case string(msg.ID) == strconv.FormatInt(id, 10):
			result, errObj = msg.Result, msg.Error
			return true
		}
		c.t.Errorf("%s: a response to an id the client never sent: %s", method, m)
		return false
	})
	if result == nil && errObj == nil && ctx.Err() == nil {
		c.t.Fatalf("%s: the response ended without an answer (HTTP %d)", method, resp.StatusCode)
	}
	return result, errObj, before
}

func withMeta(params map[string]any, add map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range params {
		out[k] = v
	}
	meta := map[string]any{}
	if m, ok := params["_meta"].(map[string]any); ok {
		for k, v := range m {
			meta[k] = v
		}
	}
	for k, v := range add {
		meta[k] = v
	}
	out["_meta"] = meta
	return out
}

// answerInput is what the client answers to an input request: a
// server→client request (2025) or an input request of an input_required
// result (2026). A request for something the client did not declare is a
// failure of the cell.
func (c *rawClient) answerInput(method string, params json.RawMessage) (any, string) {
	switch method {
	case "roots/list":
		return map[string]any{"roots": []any{map[string]any{"uri": "file:///table", "name": "table"}}}, ""
	case "sampling/createMessage":
		c.lacksNone(method, params, "2025-11-25", "tools", "toolChoice", "task")
		return map[string]any{"role": "assistant", "model": "table", "content": map[string]any{"type": "text", "text": "sampled"}}, ""
	case "elicitation/create":
		if !hasElicitation(c.version) {
			c.t.Errorf("a %s client got elicitation/create, which its version does not have: %s", c.version, params)
			return nil, "method not found"
		}
		c.lacksNone(method, params, "2025-11-25", "mode", "task")
		return map[string]any{"action": "accept", "content": map[string]any{"answer": "elicited"}}, ""
	}
	c.t.Errorf("unexpected server→client request %s %s", method, params)
	return nil, "method not found"
}

// lacksNone fails the cell when a request's params hold a member that
// came with version since, which the client's version lacks (the bridge
// shapes server→client requests: mcpchild/shapereq.go).
func (c *rawClient) lacksNone(method string, params json.RawMessage, since string, keys ...string) {
	if c.version >= since || c.version == "2026-07-28" {
		return
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(params, &p); err != nil {
		c.t.Errorf("%s params: %v: %s", method, err, params)
		return
	}
	for _, k := range keys {
		if _, ok := p[k]; ok {
			c.t.Errorf("a %s client got %s with %q, which its version does not have: %s", c.version, method, k, params)
		}
	}
}

// tool calls a tool the way the version does, running 2026 input rounds,
// and returns the result and the messages seen before it.
func (c *rawClient) tool(ctx context.Context, name string, args map[string]any, meta map[string]any) (json.RawMessage, json.RawMessage, []json.RawMessage) {
	c.t.Helper()
	params := map[string]any{"name": name, "arguments": args}
	if meta != nil {
		params["_meta"] = meta
	}
	var all []json.RawMessage
	for round := 0; ; round++ {
		res, errObj, before := c.call(ctx, "tools/call", params)
		all = append(all, before...)
		if errObj != nil || str(res, "resultType") != "input_required" {
			return res, errObj, all
		}
		if !modern(c.version) {
			c.t.Fatalf("a %s client got an input_required result: %s", c.version, res)
		}
		if round == 10 {
			c.t.Fatalf("more than 10 input rounds: %s", res)
		}
		var ir struct {
			InputRequests map[string]struct {
				Method string          `json:"method"`
				Params json.RawMessage `json:"params"`
			} `json:"inputRequests"`
			RequestState string `json:"requestState"`
		}
		if err := json.Unmarshal(res, &ir); err != nil || len(ir.InputRequests) == 0 {
			c.t.Fatalf("input_required without inputRequests: %s", res)
		}
		responses := map[string]any{}
		for k, req := range ir.InputRequests {
			r, e := c.answerInput(req.Method, req.Params)
			if e != "" {
				c.t.Fatalf("input request %s: %s", req.Method, e)
			}
			responses[k] = r
		}
		params["inputResponses"] = responses
		params["requestState"] = ir.RequestState
	}
}

func str(obj json.RawMessage, key string) string {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(obj, &m)
	var s string
	_ = json.Unmarshal(m[key], &s)
	return s
}

func text0(res json.RawMessage) (string, bool) {
	var r struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	}
	_ = json.Unmarshal(res, &r)
	if len(r.Content) == 0 {
		return "", r.IsError
	}
	return r.Content[0].Text, r.IsError
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustResult(t *testing.T, what string, res, errObj json.RawMessage) json.RawMessage {
	t.Helper()
	if errObj != nil {
		t.Fatalf("%s: error %s", what, errObj)
	}
	if r := str(res, "resultType"); modern(versionOf(t)) && r != "complete" && r != "" {
		t.Fatalf("%s: resultType %q", what, r)
	}
	return res
}

// childVersionOf is the version the subtest's child speaks to the bridge
// (child/version/feature): the 2026 era for the modern child, else 2025's
// newest.
func childVersionOf(t *testing.T) string {
	if strings.HasPrefix(strings.TrimPrefix(t.Name(), "TestVersionTable/"), "modern/") {
		return "2026-07-28"
	}
	return "2025-11-25"
}

// versionOf reads the version back from the subtest name (child/version/feature).
func versionOf(t *testing.T) string {
	parts := strings.Split(t.Name(), "/")
	if len(parts) < 3 {
		return ""
	}
	return parts[len(parts)-2]
}

func featTools(t *testing.T, c *rawClient) {
	ctx := ctx10(t)
	res, errObj, _ := c.call(ctx, "tools/list", map[string]any{})
	if res = mustResult(t, "tools/list", res, errObj); !bytes.Contains(res, []byte(`"echo"`)) {
		t.Fatalf("tools/list lacks echo: %.300s", res)
	}
	res, errObj, _ = c.tool(ctx, "echo", map[string]any{"text": "hi"}, nil)
	if got, isErr := text0(mustResult(t, "echo", res, errObj)); got != "hi" || isErr {
		t.Fatalf("echo = %s", res)
	}
	if c.version < "2025-06-18" && bytes.Contains(res, []byte(`"structuredContent"`)) {
		t.Errorf("a %s client got structuredContent, which its version does not have: %s", c.version, res)
	}
}

func featResources(t *testing.T, c *rawClient) {
	ctx := ctx10(t)
	res, errObj, _ := c.call(ctx, "resources/list", map[string]any{})
	if res = mustResult(t, "resources/list", res, errObj); !bytes.Contains(res, []byte(`"test://static"`)) {
		t.Fatalf("resources/list = %.300s", res)
	}
	res, errObj, _ = c.call(ctx, "resources/read", map[string]any{"uri": "test://static"})
	if res = mustResult(t, "resources/read", res, errObj); !bytes.Contains(res, []byte(`"static resource"`)) {
		t.Fatalf("resources/read = %.300s", res)
	}
}

func featPrompts(t *testing.T, c *rawClient) {
	ctx := ctx10(t)
	res, errObj, _ := c.call(ctx, "prompts/list", map[string]any{})
	if res = mustResult(t, "prompts/list", res, errObj); !bytes.Contains(res, []byte(`"greet"`)) {
		t.Fatalf("prompts/list = %.300s", res)
	}
	res, errObj, _ = c.call(ctx, "prompts/get", map[string]any{"name": "greet", "arguments": map[string]any{"name": "ada"}})
	if res = mustResult(t, "prompts/get", res, errObj); !bytes.Contains(res, []byte(`"hello ada"`)) {
		t.Fatalf("prompts/get = %.300s", res)
	}
}

func featCompletion(t *testing.T, c *rawClient) {
	res, errObj, _ := c.call(ctx10(t), "completion/complete", map[string]any{
		"ref": map[string]any{"type": "ref/prompt", "name": "greet"}, "argument": map[string]any{"name": "name", "value": "a"}})
	if res = mustResult(t, "completion/complete", res, errObj); !bytes.Contains(res, []byte(`["ada","alan"]`)) {
		t.Fatalf("completion/complete = %.300s", res)
	}
}

// featSubscriptions: 2025 clients subscribe with resources/subscribe and
// hear notifications/resources/updated on the GET stream; 2026 clients ask
// subscriptions/listen for the resource and hear it on that stream.
func featSubscriptions(t *testing.T, c *rawClient) {
	ctx := ctx10(t)
	isUpdate := func(m json.RawMessage) bool {
		return bytes.Contains(m, []byte(`"notifications/resources/updated"`)) && bytes.Contains(m, []byte(`test://static`))
	}
	if !modern(c.version) {
		res, errObj, _ := c.call(ctx, "resources/subscribe", map[string]any{"uri": "test://static"})
		mustResult(t, "resources/subscribe", res, errObj)
		res, errObj, before := c.tool(ctx, "touch", map[string]any{"uri": "test://static"}, nil)
		mustResult(t, "touch", res, errObj)
		if slices.ContainsFunc(before, isUpdate) {
			return
		}
		for {
			select {
			case m := <-c.stream:
				if isUpdate(m) {
					res, errObj, _ := c.call(ctx, "resources/unsubscribe", map[string]any{"uri": "test://static"})
					mustResult(t, "resources/unsubscribe", res, errObj)
					return
				}
			case <-ctx.Done():
				t.Fatal("no notifications/resources/updated after resources/subscribe and touch")
			}
		}
	}
	lctx, stop := context.WithCancel(ctx)
	acked, updated := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ackOnce, updOnce sync.Once
		c.callWatch(lctx, "subscriptions/listen", map[string]any{"notifications": map[string]any{"resourceSubscriptions": []string{"test://static"}}},
			func(m json.RawMessage) {
				if bytes.Contains(m, []byte(`"notifications/subscriptions/acknowledged"`)) {
					ackOnce.Do(func() { close(acked) })
				}
				if isUpdate(m) {
					updOnce.Do(func() { close(updated) })
				}
			})
	}()
	defer func() { stop(); <-done }()
	select {
	case <-acked:
	case <-ctx.Done():
		t.Fatal("subscriptions/listen was never acknowledged")
	}
	res, errObj, _ := c.tool(ctx, "touch", map[string]any{"uri": "test://static"}, nil)
	mustResult(t, "touch", res, errObj)
	select {
	case <-updated:
	case <-ctx.Done():
		t.Fatal("no notifications/resources/updated on the subscriptions/listen stream")
	}
}

// featInput: sampling, elicitation and roots, which the server asks of the
// client during a tool call.
func featInput(tool string, args map[string]any, want string) func(t *testing.T, c *rawClient) {
	return func(t *testing.T, c *rawClient) {
		res, errObj, _ := c.tool(ctx10(t), tool, args, nil)
		if tool == "elicit" && !hasElicitation(c.version) {
			// Not offered: the call fails plainly (answerInput fails the cell
			// if an elicitation/create reached the client).
			if got, isErr := text0(res); errObj == nil && !isErr {
				t.Fatalf("elicit for a %s client = %q, want an error", c.version, got)
			}
			return
		}
		if got, isErr := text0(mustResult(t, tool, res, errObj)); !strings.Contains(got, want) || isErr {
			t.Fatalf("%s = %s, want %q", tool, res, want)
		}
	}
}

func featLogging(t *testing.T, c *rawClient) {
	ctx := ctx10(t)
	isLog := func(m json.RawMessage) bool {
		return bytes.Contains(m, []byte(`"notifications/message"`)) && bytes.Contains(m, []byte(`table-log`))
	}
	var meta map[string]any
	if modern(c.version) {
		meta = map[string]any{"io.modelcontextprotocol/logLevel": "info"}
	} else {
		res, errObj, _ := c.call(ctx, "logging/setLevel", map[string]any{"level": "info"})
		mustResult(t, "logging/setLevel", res, errObj)
	}
	res, errObj, before := c.tool(ctx, "log", map[string]any{"level": "warning", "text": "table-log"}, meta)
	mustResult(t, "log", res, errObj)
	if slices.ContainsFunc(before, isLog) {
		return
	}
	if modern(c.version) {
		t.Fatalf("no notifications/message on the call's stream (got %d messages)", len(before))
	}
	for {
		select {
		case m := <-c.stream:
			if isLog(m) {
				return
			}
		case <-ctx.Done():
			t.Fatal("no notifications/message after logging/setLevel")
		}
	}
}

func featProgress(t *testing.T, c *rawClient) {
	res, errObj, before := c.tool(ctx10(t), "progress", map[string]any{"steps": 3}, map[string]any{"progressToken": "tok-1"})
	mustResult(t, "progress", res, errObj)
	n := 0
	for _, m := range before {
		if bytes.Contains(m, []byte(`"notifications/progress"`)) {
			if !bytes.Contains(m, []byte(`"progressToken":"tok-1"`)) {
				t.Fatalf("progress with a token that is not the client's: %s", m)
			}
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d progress notifications, want 3: %s", n, before)
	}
}

// featCancellation: a 2025 client sends notifications/cancelled, a 2026
// client drops its POST; either way the sleep at the server ends.
func featCancellation(t *testing.T, c *rawClient) {
	ctx := ctx10(t)
	count := func() int {
		res, errObj, _ := c.tool(ctx, "cancels", map[string]any{}, nil)
		s, _ := text0(mustResult(t, "cancels", res, errObj))
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("cancels = %s", res)
		}
		return n
	}
	before := count()
	cctx, cancel := context.WithCancel(ctx)
	started := make(chan struct{})
	done := make(chan struct{})
	var callID int64
	go func() {
		defer close(done)
		var once sync.Once
		callID = c.nextID.Load() + 1
		c.callWatch(cctx, "tools/call", map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 60000}, "_meta": map[string]any{"progressToken": "sleep-1"}},
			func(m json.RawMessage) {
				if bytes.Contains(m, []byte(`"notifications/progress"`)) {
					// The server says "sleeping": progress messages came with 2025-03-26.
					if c.version < "2025-03-26" && bytes.Contains(m, []byte(`"message"`)) {
						t.Errorf("a %s client got a progress message, which its version does not have: %s", c.version, m)
					}
					once.Do(func() { close(started) })
				}
			})
	}()
	select {
	case <-started:
	case <-ctx.Done():
		cancel()
		<-done
		t.Fatal("the sleep never started")
	}
	if modern(c.version) {
		cancel() // a 2026 client cancels by dropping the request
		<-done
	} else {
		// The POST stays open: the cancel must work by itself.
		c.notify("notifications/cancelled", map[string]any{"requestId": callID, "reason": "table"})
		defer func() { cancel(); <-done }()
	}
	// The cancel reaches the server shortly after: watch its count.
	for count() == before {
		select {
		case <-ctx.Done():
			t.Fatal("the sleep was never cancelled at the server")
		case <-time.After(50 * time.Millisecond): // polling the server's count, not synchronisation by sleep
		}
	}
}

func featPing(t *testing.T, c *rawClient) {
	res, errObj, _ := c.call(ctx10(t), "ping", map[string]any{})
	if errObj != nil || res == nil {
		t.Fatalf("ping = %s %s", res, errObj)
	}
}

// featBatch: a JSON-RPC batch is answered as one JSON array for a
// 2025-03-26 client (the one version with batches, which receivers MUST
// take), and refused (400) for every other version.
func featBatch(t *testing.T, c *rawClient) {
	a, b := c.nextID.Add(1), c.nextID.Add(1)
	batch := []any{
		map[string]any{"jsonrpc": "2.0", "id": a, "method": "tools/list"},
		map[string]any{"jsonrpc": "2.0", "method": "notifications/roots/list_changed"},
		map[string]any{"jsonrpc": "2.0", "id": b, "method": "ping"},
	}
	resp := c.post(ctx10(t), batch)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if c.version != "2025-03-26" {
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("batches are not supported")) {
			t.Fatalf("batch from a %s client = %d %s, want 400 saying batches are not supported", c.version, resp.StatusCode, body)
		}
		return
	}
	var answers []struct {
		ID     int64           `json:"id"`
		Result json.RawMessage `json:"result"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &answers) != nil || len(answers) != 2 ||
		answers[0].ID != a || answers[1].ID != b || !bytes.Contains(answers[0].Result, []byte(`"tools"`)) || answers[1].Result == nil {
		t.Fatalf("batch = %d %s, want the answers to %d (tools/list) and %d (ping) in one array", resp.StatusCode, body, a, b)
	}
}

// The members, content types and capabilities the table's server offers
// that older versions lack, with the first version that has each (from the
// spec's schema.ts per revision; docs/protocol.md "Per-version shape").
var (
	shapeToolSince     = map[string]string{"annotations": "2025-03-26", "title": "2025-06-18", "outputSchema": "2025-06-18", "_meta": "2025-06-18", "icons": "2025-11-25", "execution": "2025-11-25"}
	shapeMetaSince     = map[string]string{"title": "2025-06-18", "_meta": "2025-06-18", "icons": "2025-11-25"}
	shapeImplSince     = map[string]string{"title": "2025-06-18", "icons": "2025-11-25", "description": "2025-11-25", "websiteUrl": "2025-11-25"}
	shapeCapsSince     = map[string]string{"completions": "2025-03-26", "tasks": "2025-11-25", "extensions": "2026-07-28"}
	shapeResultSince   = map[string]string{"resultType": "2026-07-28", "cacheScope": "2026-07-28", "ttlMs": "2026-07-28", "structuredContent": "2025-06-18"}
	shapeBlockSince    = map[string]string{"_meta": "2025-06-18"}
	shapeBlockTypeFrom = map[string]string{"text": "2024-11-05", "image": "2024-11-05", "resource": "2024-11-05", "audio": "2025-03-26", "resource_link": "2025-06-18"}
)

// objects decodes the array at key of obj (empty when absent).
func objects(t *testing.T, obj json.RawMessage, key string) []map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		t.Fatalf("not an object: %.300s", obj)
	}
	var out []map[string]json.RawMessage
	if raw, ok := m[key]; ok {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s is not an array of objects: %.300s", key, raw)
		}
	}
	return out
}

// noneLacking fails when obj has a member that version v lacks, and returns
// the members it has.
func noneLacking(t *testing.T, v, what string, obj map[string]json.RawMessage, since map[string]string) {
	t.Helper()
	for k := range obj {
		if first, ok := since[k]; ok && v < first {
			t.Errorf("a %s client got %s.%s, which its version does not have", v, what, k)
		}
	}
}

// featShapes: every message is in the shape of the client's version: no
// member, capability or content type it lacks; content it lacks arrives as
// text that says what was there. Newer clients get all of it.
func featShapes(t *testing.T, c *rawClient) {
	ctx := ctx10(t)
	v := c.version
	if !modern(v) {
		var init struct {
			Capabilities map[string]json.RawMessage `json:"capabilities"`
			ServerInfo   map[string]json.RawMessage `json:"serverInfo"`
		}
		if err := json.Unmarshal(c.init, &init); err != nil || init.ServerInfo == nil {
			t.Fatalf("initialize result = %.300s", c.init)
		}
		noneLacking(t, v, "capabilities", init.Capabilities, shapeCapsSince)
		noneLacking(t, v, "serverInfo", init.ServerInfo, shapeImplSince)
		if _, ok := init.ServerInfo["title"]; v >= "2025-06-18" && !ok {
			t.Errorf("a %s client lost serverInfo.title: %s", v, c.init)
		}
	}
	result := func(what string, res json.RawMessage) json.RawMessage {
		t.Helper()
		var m map[string]json.RawMessage
		if err := json.Unmarshal(res, &m); err != nil {
			t.Fatalf("%s = %.300s", what, res)
		}
		if childV := childVersionOf(t); v < childV {
			// The bridge reshapes only for a client older than the child.
			// (The go-sdk's 2025-era servers add 2026's ttlMs and
			// cacheScope to list results for 2025-11-25 clients too; a
			// Result's schema allows unknown members, so they pass.)
			noneLacking(t, v, what+" result", m, shapeResultSince)
		}
		return res
	}
	res, errObj, _ := c.call(ctx, "tools/list", map[string]any{})
	res = result("tools/list", mustResult(t, "tools/list", res, errObj))
	var shapes map[string]json.RawMessage
	for _, tool := range objects(t, res, "tools") {
		noneLacking(t, v, "tool", tool, shapeToolSince)
		if string(tool["name"]) == `"shapes"` {
			shapes = tool
		}
	}
	if shapes == nil {
		t.Fatalf("tools/list lacks shapes: %.300s", res)
	}
	for k, first := range map[string]string{"annotations": "2025-03-26", "title": "2025-06-18", "outputSchema": "2025-06-18", "icons": "2025-11-25"} {
		if _, ok := shapes[k]; v >= first && !ok {
			t.Errorf("a %s client lost tool.%s: %v", v, k, shapes)
		}
	}
	res, errObj, _ = c.call(ctx, "prompts/list", map[string]any{})
	for _, p := range objects(t, result("prompts/list", mustResult(t, "prompts/list", res, errObj)), "prompts") {
		noneLacking(t, v, "prompt", p, shapeMetaSince)
		var args []map[string]json.RawMessage
		_ = json.Unmarshal(p["arguments"], &args)
		for _, a := range args {
			noneLacking(t, v, "prompt argument", a, map[string]string{"title": "2025-06-18"})
		}
	}
	res, errObj, _ = c.call(ctx, "resources/list", map[string]any{})
	for _, r := range objects(t, result("resources/list", mustResult(t, "resources/list", res, errObj)), "resources") {
		noneLacking(t, v, "resource", r, shapeMetaSince)
	}

	res, errObj, _ = c.tool(ctx, "shapes", map[string]any{}, nil)
	res = result("shapes", mustResult(t, "shapes", res, errObj))
	var types, texts []string
	for _, b := range objects(t, res, "content") {
		noneLacking(t, v, "content block", b, shapeBlockSince)
		var typ, text string
		_ = json.Unmarshal(b["type"], &typ)
		_ = json.Unmarshal(b["text"], &text)
		if first, ok := shapeBlockTypeFrom[typ]; !ok || v < first {
			t.Errorf("a %s client got a content block of type %q: %.300s", v, typ, res)
		}
		types, texts = append(types, typ), append(texts, text)
	}
	want := []string{"text", "audio", "resource_link"}
	if v < "2025-06-18" {
		want[2] = "text"
		if !strings.Contains(texts[2], "test://static") {
			t.Errorf("a %s client's stand-in for the resource link does not name it: %q", v, texts[2])
		}
	}
	if v < "2025-03-26" {
		want[1] = "text"
		if !strings.Contains(texts[1], "audio") {
			t.Errorf("a %s client's stand-in for the audio does not say so: %q", v, texts[1])
		}
	}
	if !slices.Equal(types, want) {
		t.Errorf("a %s client got content types %v, want %v: %.300s", v, types, want, res)
	}
}
