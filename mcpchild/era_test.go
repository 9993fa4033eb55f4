package mcpchild

import (
	"slices"
	"testing"

	"github.com/tether-dev/tether/internal/mcpwire"
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
	c := startTestServer(t, testOptions(t))
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
