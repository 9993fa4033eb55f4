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

// BenchmarkDeliverShape is the cost of Session.deliver for a child's 64 KiB
// tools/call result, per session version: a 2025-11-25 session (the child's
// own version) must cost what a plain hand-off does ("baseline"); older
// versions pay one walk, and a copy only when something changes.
func BenchmarkDeliverShape(b *testing.B) {
	result := []byte(`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"` + strings.Repeat("x", 64<<10) + `"}],"structuredContent":{"n":1}}}`)
	var sink []byte
	out := func(msg, _ []byte) { sink = msg }
	b.Run("baseline", func(b *testing.B) {
		b.SetBytes(int64(len(result)))
		b.ReportAllocs()
		for b.Loop() {
			out(result, nil)
		}
	})
	for _, v := range []string{"2025-11-25", "2025-06-18", "2024-11-05"} {
		b.Run(v, func(b *testing.B) {
			s := &Session{version: v, childV: "2025-11-25", out: out}
			b.SetBytes(int64(len(result)))
			b.ReportAllocs()
			for b.Loop() {
				s.deliver(result, nil)
			}
		})
	}
	_ = sink
}
