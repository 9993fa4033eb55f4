package mcpchild

import (
	"strings"
	"testing"
)

// BenchmarkParseMessage is the per-message cost of reading a message: a
// client's tools/call (validated, params walked for name and progress
// token) and a child's 64 KiB result (validated once, never decoded).
func BenchmarkParseMessage(b *testing.B) {
	for _, c := range []struct{ name, msg string }{
		{"call", `{"jsonrpc":"2.0","id":"r1","method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"},"_meta":{"progressToken":"tok"}}}`},
		{"result64k", `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"` + strings.Repeat("x", 64<<10) + `"}]}}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			raw := []byte(c.msg)
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := parseMessage(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
