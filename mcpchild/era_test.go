package mcpchild

import (
	"slices"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/mcpwire"
	"github.com/tether-dev/tether/internal/testbin"
)

// A 2025-era client on a child that speaks only 2026-07-28: initialize is
// answered from the child's discovery, and each request gets the session's
// own client info in the per-request _meta.
func TestLegacySessionOnModernOnlyChild(t *testing.T) {
	c := startTestServer(t, testOptions(t), "-era", "modern")
	if era := c.Status().Era; era != Era2026 {
		t.Fatalf("era = %q, want 2026", era)
	}
	cl := newClient(t, c, "a")
	res := cl.initialize("2025-06-18")
	if v := unquote(field(res, "protocolVersion")); v != "2025-06-18" {
		t.Fatalf("initialize answered protocolVersion %q, want the client's 2025-06-18", v)
	}
	if !contains(res, `"tether-testserver"`) {
		t.Fatalf("initialize result lacks serverInfo: %s", res)
	}
	if got := cl.toolText("echo", map[string]any{"text": "x"}); got != "x" {
		t.Fatalf("echo = %q", got)
	}
	if got := cl.toolText("whoami", map[string]any{}); got != "client=test-client" {
		t.Fatalf("whoami = %q: the child did not see the session's own client info", got)
	}
}

// A 2026-era client on a child that speaks only 2025: server/discover is
// answered from the child's initialize result, and the 2026 _meta keys are
// stripped before the request reaches the child.
func TestModernSessionOnLegacyOnlyChild(t *testing.T) {
	c := startTestServer(t, testOptions(t), "-era", "legacy")
	if era := c.Status().Era; era != Era2025 {
		t.Fatalf("era = %q, want 2025", era)
	}
	cl := newClient(t, c, "a")
	disc := cl.mustCall("server/discover", map[string]any{"_meta": modernMeta("modern-client")})
	if !contains(disc, `"supportedVersions":["2026-07-28"]`) || !contains(disc, `"tether-testserver"`) {
		t.Fatalf("discover = %s", disc)
	}
	res := cl.mustCall("tools/call", map[string]any{"_meta": modernMeta("modern-client"), "name": "echo", "arguments": map[string]any{"text": "y"}})
	if !contains(res, `"y"`) {
		t.Fatalf("echo = %s", res)
	}
	if cl.s.Era() != Era2026 {
		t.Fatalf("session era = %q", cl.s.Era())
	}
}

// A 2026 client on a 2026 child: input_required results pass through
// untouched, because the client runs the rounds itself.
func TestModernSessionGetsInputRequiredResultsAsIs(t *testing.T) {
	opts := testOptions(t)
	opts.Era = Era2026 // spoken to in 2026 only (mcp.json "era": "2026")
	c := startTestServer(t, opts)
	cl := newClient(t, c, "a")
	cl.mustCall("server/discover", map[string]any{"_meta": modernMeta("m")})
	res := cl.mustCall("tools/call", map[string]any{"_meta": modernMeta("m"), "name": "roots", "arguments": map[string]any{}})
	if !contains(res, `"resultType":"input_required"`) || !contains(res, `"roots/list"`) {
		t.Fatalf("roots for a 2026 client = %s", res)
	}
	state := field(res, "requestState")
	retry := map[string]any{"_meta": modernMeta("m"), "name": "roots", "arguments": map[string]any{},
		"inputResponses": map[string]any{"roots": map[string]any{"roots": []any{map[string]any{"uri": "file:///z"}}}},
		"requestState":   string(unquote(state))}
	if got := cl.mustCall("tools/call", retry); !contains(got, "file:///z") {
		t.Fatalf("retry = %s", got)
	}
}

// Every released initialize-era version gets itself back from a 2025-era
// child, which the bridge initialized once at the newest; an unknown one
// gets the child's own.
func TestInitializeAnswersTheClientsVersion(t *testing.T) {
	c := startTestServer(t, testOptions(t), "-era", "legacy")
	c.mu.Lock()
	child := unquote(field(c.init.initResult, "protocolVersion"))
	c.mu.Unlock()
	for _, v := range append(slices.Clone(mcpwire.LegacyVersions), "1999-01-01") {
		cl := newClient(t, c, "s-"+v)
		want := v
		if v == "1999-01-01" {
			want = child
		}
		if got := unquote(field(cl.initialize(v), "protocolVersion")); got != want {
			t.Errorf("client asked %s: answered %q, want %q", v, got, want)
		}
	}
}

// A child that answers initialize and takes 2026 requests (the go-sdk's
// servers) is spoken to in both eras: a 2025 client gets its server→client
// requests the 2025 way (roots/list here, as the client asked), a 2026
// client's requests go through with its own _meta.
func TestBothEraChildServesEachClientInItsOwnVersion(t *testing.T) {
	c := startTestServer(t, testOptions(t))
	if era := c.Status().Era; era != EraBoth {
		t.Fatalf("era = %q, want both", era)
	}
	legacy := newClient(t, c, "legacy")
	legacy.initialize("2025-06-18")
	callID, ch := legacy.request("tools/call", map[string]any{"name": "roots", "arguments": map[string]any{}})
	req := legacy.waitOther("roots/list from the server", methodIs("roots/list"))
	if string(req.related) != callID {
		t.Fatalf("roots/list related to %s, want the call %s", req.related, callID)
	}
	m, _ := parseMessage(req.msg)
	if err := legacy.s.Handle(buildResponse(m.id, []byte(`{"roots":[{"uri":"file:///both"}]}`), nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-ch:
		if !contains(resp, "file:///both") {
			t.Fatalf("roots call = %s", resp)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the roots call never finished")
	}

	modern := newClient(t, c, "modern")
	res := modern.mustCall("tools/call", map[string]any{"_meta": modernMeta("modern-client"), "name": "whoami", "arguments": map[string]any{}})
	if !contains(res, "client=modern-client") {
		t.Fatalf("whoami for a 2026 client = %s: its own _meta did not reach the server", res)
	}
}

// A true 2025-only server ignores the 2026 _meta and answers without
// resultType: it is spoken to in 2025 only.
func TestLegacyServerIgnoringMetaIsNotBoth(t *testing.T) {
	bin := testbin.Build(t, "./internal/testservers/rawecho")
	c := startChild(t, Spec{Name: "raw", Command: bin}, testOptions(t))
	if era := c.Status().Era; era != Era2025 {
		t.Fatalf("era = %q, want 2025", era)
	}
}
