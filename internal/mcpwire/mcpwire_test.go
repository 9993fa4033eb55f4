package mcpwire

import (
	"slices"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Each Tether code has one meaning: the codes differ, sit in JSON-RPC's
// server-error range, and stay off the numbers MCP assigns.
func TestTetherCodesAreDistinctAndFree(t *testing.T) {
	t.Parallel()
	tether := []int{CodeUnavailable, CodeTimeout, CodeTooLarge}
	mcpCodes := []int{-32002, mcp.CodeHeaderMismatch, mcp.CodeMissingRequiredClientCapabilities,
		mcp.CodeUnsupportedProtocolVersion, mcp.CodeURLElicitationRequired}
	for i, c := range tether {
		if c > -32000 || c < -32099 {
			t.Errorf("code %d is outside -32099..-32000", c)
		}
		if slices.Contains(tether[:i], c) {
			t.Errorf("code %d is used twice", c)
		}
		if slices.Contains(mcpCodes, c) {
			t.Errorf("code %d is one MCP assigns", c)
		}
	}
}

func TestIsModern(t *testing.T) {
	t.Parallel()
	if IsModern(Version2025) || IsModern("") || !IsModern(Version2026) || !IsModern("2027-01-01") {
		t.Fatal("IsModern does not split the eras at Version2026")
	}
	for _, v := range LegacyVersions {
		if IsModern(v) {
			t.Errorf("legacy %s counted as modern", v)
		}
	}
	if LegacyVersions[0] != Version2025 {
		t.Errorf("LegacyVersions starts with %s, want the newest, %s", LegacyVersions[0], Version2025)
	}
}
