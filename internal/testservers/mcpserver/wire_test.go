package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestWire2026 pins the 2026-07-28 stdio wire format that the multiplexer
// has to route: server/discover, per-request _meta, and multi-round-trip
// (input_required result, then a retry carrying inputResponses and
// requestState). Run with -v to print every frame.
func TestWire2026(t *testing.T) {
	cs, w := connectWire(t, v2026, inputClientOptions(), "file:///r1")
	if got := callText(t, cs, "echo", map[string]any{"text": "hi"}); got != "hi" {
		t.Fatalf("echo = %q", got)
	}
	if got := callText(t, cs, "elicit", map[string]any{"message": "ok?"}); got != "yes to ok?" {
		t.Fatalf("elicit = %q", got)
	}
	if got := callText(t, cs, "roots", map[string]any{}); got != "file:///r1" {
		t.Fatalf("roots = %q", got)
	}
	lines := w.snapshot()
	for _, l := range lines {
		t.Log(l)
	}

	frames := decodeFrames(t, lines)
	find := func(dir, method string, pred func(frame) bool) frame {
		t.Helper()
		for _, f := range frames {
			if f.dir == dir && f.Method == method && (pred == nil || pred(f)) {
				return f
			}
		}
		t.Fatalf("no %s %s frame in:\n%s", dir, method, strings.Join(lines, "\n"))
		return frame{}
	}

	disc := find("C>S", "server/discover", nil)
	for _, k := range []string{mcp.MetaKeyProtocolVersion, mcp.MetaKeyClientInfo, mcp.MetaKeyClientCapabilities} {
		if _, ok := disc.Params.Meta[k]; !ok {
			t.Fatalf("discover lacks _meta %s", k)
		}
	}
	call := find("C>S", "tools/call", func(f frame) bool { return f.Params.Name == "echo" })
	if v, _ := call.Params.Meta[mcp.MetaKeyProtocolVersion].(string); v != v2026 {
		t.Fatalf("tools/call _meta protocolVersion = %v", call.Params.Meta[mcp.MetaKeyProtocolVersion])
	}
	for _, f := range frames {
		if f.dir == "C>S" && f.Method == "initialize" {
			t.Fatal("a 2026 client sent initialize")
		}
	}

	first := find("C>S", "tools/call", func(f frame) bool { return f.Params.Name == "elicit" && f.Params.RequestState == "" })
	var inputRequired map[string]any
	for _, f := range frames {
		if f.dir == "S>C" && string(f.ID) == string(first.ID) {
			_ = json.Unmarshal(f.Result, &inputRequired)
		}
	}
	if inputRequired["resultType"] != "input_required" || inputRequired["requestState"] != "elicit-1" {
		t.Fatalf("first elicit result = %v", inputRequired)
	}
	retry := find("C>S", "tools/call", func(f frame) bool { return f.Params.Name == "elicit" && f.Params.RequestState != "" })
	if retry.Params.RequestState != "elicit-1" || retry.Params.InputResponses["answer"] == nil {
		t.Fatalf("retry params = %+v", retry.Params)
	}
	if string(retry.ID) == string(first.ID) {
		t.Fatal("retry reused the JSON-RPC id")
	}
}

// TestWire2025Roots pins the 2025-era form of the same tool: the server
// sends a real roots/list request to the client mid-call.
func TestWire2025Roots(t *testing.T) {
	cs, w := connectWire(t, v2025, nil, "file:///r1", "file:///r2")
	if got := callText(t, cs, "roots", map[string]any{}); got != "file:///r1,file:///r2" {
		t.Fatalf("roots = %q", got)
	}
	lines := w.snapshot()
	for _, l := range lines {
		t.Log(l)
	}
	var sawRequest bool
	for _, f := range decodeFrames(t, lines) {
		if f.dir == "S>C" && f.Method == "roots/list" && len(f.ID) > 0 {
			sawRequest = true
		}
		if f.dir == "C>S" && f.Params.RequestState != "" {
			t.Fatal("2025 client sent a multi-round-trip retry")
		}
	}
	if !sawRequest {
		t.Fatal("no server-to-client roots/list request on the wire")
	}
}

// TestWire2026ListChanged pins how a 2026 client gets list_changed over
// stdio: a long-lived subscriptions/listen request whose id the server
// stamps into each notification's _meta.
func TestWire2026ListChanged(t *testing.T) {
	changed := make(chan struct{}, 1)
	cs, w := connectWire(t, v2026, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case changed <- struct{}{}:
			default:
			}
		},
	})
	callText(t, cs, "add_tool", map[string]any{"name": "fresh"})
	select {
	case <-changed:
	case <-testCtx(t).Done():
		t.Fatal("no list_changed")
	}
	lines := w.snapshot()
	for _, l := range lines {
		t.Log(l)
	}
	var listenID string
	for _, f := range decodeFrames(t, lines) {
		if f.dir == "C>S" && f.Method == "subscriptions/listen" {
			listenID = string(f.ID)
		}
		if f.dir == "S>C" && f.Method == "notifications/tools/list_changed" {
			sub, _ := json.Marshal(f.Params.Meta[mcp.MetaKeySubscriptionID])
			if listenID == "" || string(sub) != listenID {
				t.Fatalf("list_changed subscriptionId %s, listen id %q", sub, listenID)
			}
			return
		}
	}
	t.Fatal("no notifications/tools/list_changed frame")
}

type frame struct {
	dir    string
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		Meta           map[string]any             `json:"_meta"`
		Name           string                     `json:"name"`
		RequestState   string                     `json:"requestState"`
		InputResponses map[string]json.RawMessage `json:"inputResponses"`
	} `json:"params"`
	Result json.RawMessage `json:"result"`
}

func decodeFrames(t *testing.T, lines []string) []frame {
	t.Helper()
	out := make([]frame, 0, len(lines))
	for _, l := range lines {
		var f frame
		if err := json.Unmarshal([]byte(l[4:]), &f); err != nil {
			t.Fatalf("frame %q is not JSON: %v", l, err)
		}
		f.dir = l[:3]
		out = append(out, f)
	}
	return out
}
