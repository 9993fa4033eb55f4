package relay

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeFrameErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
	}{
		{"empty", ``},
		{"not json", `hello`},
		{"truncated", `{"kind":"mcp"`},
		{"array", `[1,2]`},
		{"no kind", `{"server":"a"}`},
		{"empty kind", `{"kind":""}`},
		{"kind not a string", `{"kind":7}`},
		{"mcp without msg", `{"kind":"mcp","server":"a","session":"s"}`},
		{"mcp without session", `{"kind":"mcp","server":"a","msg":{}}`},
		{"mcp without server", `{"kind":"mcp","session":"s","msg":{}}`},
		{"mcp with null msg", `{"kind":"mcp","server":"a","session":"s","msg":null}`},
		{"rpc.request with null id", `{"kind":"rpc.request","id":null,"method":"list"}`},
		{"close without session", `{"kind":"close","server":"a"}`},
		{"rpc.request without id", `{"kind":"rpc.request","method":"list"}`},
		{"rpc.response without id", `{"kind":"rpc.response","status":200}`},
		{"status not a number", `{"kind":"rpc.response","id":1,"status":"200"}`},
		{"servers not a list", `{"kind":"catalog","servers":{}}`},
		{"trailing data", `{"kind":"hello"} {}`},
		{"too large", `{"kind":"hello","version":"` + strings.Repeat("v", MaxFrameBytes) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := DecodeFrame([]byte(tc.in))
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("DecodeFrame = %+v, %v; want ErrBadFrame", f, err)
			}
			if f.Kind != "" {
				t.Fatalf("a failed decode returned kind %q", f.Kind)
			}
		})
	}
}

func TestDecodeFrameAccepts(t *testing.T) {
	for _, in := range []string{
		`{"kind":"hello","protocol":1,"devId":"alice","servers":[{"name":"a","state":"ready","toolCount":0}]}`,
		`{"kind":"hello","devId":"alice","version":"0.1.0","tools":[]}`,
		`{"kind":"mcp","server":"a","session":"s","msg":{"jsonrpc":"2.0","id":1,"method":"ping"},"related":1}`,
		`{"kind":"close","server":"a","session":"s"}`,
		`{"kind":"error","code":"unknown_server","message":"no server b"}`,
		`{"kind":"rpc.request","id":"x","method":"call","path":"add","body":{"a":1}}`,
		`{"kind":"rpc.response","id":7,"status":200,"body":null}`,
		`{"kind":"future.kind","whatever":true}`,
	} {
		if _, err := DecodeFrame([]byte(in)); err != nil {
			t.Errorf("DecodeFrame(%s) = %v", in, err)
		}
	}
}

// TestHelloHostnameRoundTrip: a hello's hostname survives the codec, and
// a hello without one (a bridge older than the field) still decodes, with
// no hostname, and re-encodes without the key.
func TestHelloHostnameRoundTrip(t *testing.T) {
	in := Frame{Kind: KindHello, Protocol: ProtocolVersion, DevID: "alice", Version: "0.4.0", Instance: "9f2c", Hostname: "alice-laptop.lan"}
	b, err := EncodeFrame(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"hello","protocol":1,"devId":"alice","version":"0.4.0","instance":"9f2c","hostname":"alice-laptop.lan"}`
	if string(b) != want {
		t.Fatalf("EncodeFrame = %s\nwant          %s", b, want)
	}
	got, err := DecodeFrame(b)
	if err != nil || got.Hostname != in.Hostname || got.Version != in.Version || got.Instance != in.Instance {
		t.Fatalf("DecodeFrame = %+v, %v", got, err)
	}

	old := `{"kind":"hello","protocol":1,"devId":"alice","version":"0.3.0","servers":[]}`
	got, err = DecodeFrame([]byte(old))
	if err != nil || got.Hostname != "" || got.Version != "0.3.0" {
		t.Fatalf("old hello: %+v, %v", got, err)
	}
	if b, _ := EncodeFrame(got); strings.Contains(string(b), "hostname") {
		t.Fatalf("a hello without a hostname encodes one: %s", b)
	}
	// Escaped and non-ASCII names take encoding/json's path both ways.
	for _, h := range []string{"bureau-é", `a"b`, "日本"} {
		b, err := EncodeFrame(Frame{Kind: KindHello, Protocol: 1, Hostname: h})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DecodeFrame(b); err != nil || got.Hostname != h {
			t.Errorf("hostname %q: decoded %q, %v", h, got.Hostname, err)
		}
	}
}

func TestEncodeFrameKeepsRelayedBytes(t *testing.T) {
	msg := `{"jsonrpc":"2.0","id":1,"result":{"text":"a<b && c>d"}}`
	b, err := EncodeFrame(Frame{Kind: KindMCP, Server: "a", Session: "s", Msg: json.RawMessage(msg)})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"mcp","server":"a","session":"s","msg":` + msg + `}`
	if string(b) != want {
		t.Fatalf("EncodeFrame = %s\nwant          %s", b, want)
	}
	if _, err := EncodeFrame(Frame{Kind: KindMCP, Msg: json.RawMessage(`{bad`)}); err == nil {
		t.Fatal("EncodeFrame accepted invalid raw JSON")
	}
}

// FuzzDecodeFrame: DecodeFrame never panics, and whatever it accepts
// re-encodes and decodes again to the same kind and routing fields.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"kind":"hello","protocol":1,"devId":"alice","servers":[{"name":"a","state":"ready","toolCount":2,"tools":[{"name":"t"}]}]}`,
		`{"kind":"mcp","server":"a","session":"s","msg":{"jsonrpc":"2.0","id":1,"method":"ping"},"related":"r"}`,
		`{"kind":"close","server":"a","session":"s"}`,
		`{"kind":"rpc.request","id":"x","method":"call","path":"add","body":{"a":1}}`,
		`{"kind":"rpc.response","id":7,"status":200,"body":null}`,
		`{"kind":"error","code":"bad_frame","message":"x"}`,
		`{"kind":"mcp","server":"a","session":"s","msg":null}`,
		`{"kind":"\u00e9","msg":"\ud800"}`,
		`[]`, `null`, `{}`, `"kind"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := DecodeFrame(data)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error not wrapping ErrBadFrame: %v", err)
			}
			return
		}
		b, err := EncodeFrame(fr)
		if err != nil {
			t.Fatalf("decoded frame does not re-encode: %v\ninput %q", err, data)
		}
		again, err := DecodeFrame(b)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v\ninput %q\nencoded %s", err, data, b)
		}
		if again.Kind != fr.Kind || again.Server != fr.Server || again.Session != fr.Session ||
			again.Path != fr.Path || again.Status != fr.Status {
			t.Fatalf("round trip changed the frame:\n%+v\n%+v", fr, again)
		}
	})
}
