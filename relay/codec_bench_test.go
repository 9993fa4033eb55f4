package relay

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// benchMsgs are a typical small tools/call answer and a 10 MiB one (the
// payload section of the bench harness).
func benchMsgs() map[string]json.RawMessage {
	big := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"` +
		strings.Repeat("abcdefghij", 1<<20) + `"}]}}`
	return map[string]json.RawMessage{
		"small": json.RawMessage(`{"jsonrpc":"2.0","id":12345,"result":{"content":[{"type":"text","text":"hello world"}],"isError":false}}`),
		"10MiB": json.RawMessage(big),
	}
}

func BenchmarkEncodeFrame(b *testing.B) {
	for _, name := range []string{"small", "10MiB"} {
		msg := benchMsgs()[name]
		b.Run(name, func(b *testing.B) {
			f := Frame{Kind: KindMCP, Server: "everything", Session: "s-0123456789abcdef", Msg: msg, Related: json.RawMessage("12")}
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := EncodeFrame(f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeFrame(b *testing.B) {
	for _, name := range []string{"small", "10MiB"} {
		msg := benchMsgs()[name]
		b.Run(name, func(b *testing.B) {
			data, err := EncodeFrame(Frame{Kind: KindMCP, Server: "everything", Session: "s-0123456789abcdef", Msg: msg, Related: json.RawMessage("12")})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				f, err := DecodeFrame(data)
				if err != nil || !bytes.Equal(f.Msg, msg) {
					b.Fatal("decode", err)
				}
			}
		})
	}
}
