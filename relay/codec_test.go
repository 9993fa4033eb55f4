package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/tether-dev/tether/internal/jsonscan"
)

// referenceDecode is DecodeFrame as it was before the hand-written codec:
// json.Unmarshal and the same checks. The fast codec must agree with it.
func referenceDecode(data []byte) (Frame, error) {
	if len(data) > MaxFrameBytes {
		return Frame{}, ErrBadFrame
	}
	f, err := decodeStd(data)
	if err != nil {
		return Frame{}, err
	}
	switch {
	case f.Kind == "":
		return Frame{}, ErrBadFrame
	case f.Kind == KindMCP && (f.Server == "" || f.Session == "" || isMissing(f.Msg)):
		return Frame{}, ErrBadFrame
	case f.Kind == KindClose && (f.Server == "" || f.Session == ""):
		return Frame{}, ErrBadFrame
	case (f.Kind == KindRPCRequest || f.Kind == KindRPCResponse) && isMissing(f.ID):
		return Frame{}, ErrBadFrame
	}
	return f, nil
}

// referenceEncode is EncodeFrame as it was: encoding/json without HTML
// escaping (which compacts raw fields).
func referenceEncode(f Frame) ([]byte, error) {
	return marshalNoEscape(f)
}

// checkAgrees fails t when the codec and encoding/json differ on data.
func checkAgrees(t *testing.T, data []byte) {
	t.Helper()
	got, gotErr := DecodeFrame(data)
	want, wantErr := referenceDecode(data)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("input %q:\nDecodeFrame error %v\nencoding/json error %v", data, gotErr, wantErr)
	}
	if gotErr != nil {
		if !errors.Is(gotErr, ErrBadFrame) {
			t.Fatalf("error not wrapping ErrBadFrame: %v", gotErr)
		}
		return
	}
	if !reflect.DeepEqual(normalize(got), normalize(want)) {
		t.Fatalf("input %q:\nDecodeFrame   %+v\nencoding/json %+v", data, got, want)
	}
	// Encoding agrees too, up to the whitespace encoding/json compacts out
	// of raw fields.
	enc, err := EncodeFrame(got)
	ref, refErr := referenceEncode(want)
	if (err == nil) != (refErr == nil) {
		t.Fatalf("input %q: EncodeFrame error %v, encoding/json error %v", data, err, refErr)
	}
	if err != nil {
		return
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, enc); err != nil {
		t.Fatalf("EncodeFrame wrote invalid JSON %q: %v", enc, err)
	}
	if !bytes.Equal(compact.Bytes(), ref) {
		t.Fatalf("input %q:\nEncodeFrame   %s\nencoding/json %s", data, enc, ref)
	}
	if again, err := DecodeFrame(enc); err != nil || again.Kind != got.Kind || again.Server != got.Server ||
		again.Session != got.Session || !bytes.Equal(again.Msg, got.Msg) {
		t.Fatalf("re-decode of %s: %+v, %v", enc, again, err)
	}
}

// normalize maps empty raw fields to nil: the fast decoder and
// encoding/json both leave absent fields empty, with different capacities.
func normalize(f Frame) Frame {
	for _, p := range []*json.RawMessage{&f.Tools, &f.Msg, &f.Related, &f.ID, &f.Body} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	return f
}

var codecSeeds = []string{
	`{"kind":"hello","protocol":1,"devId":"alice","servers":[{"name":"a","state":"ready","toolCount":2,"tools":[{"name":"t"}]}]}`,
	`{"kind":"mcp","server":"a","session":"s","msg":{"jsonrpc":"2.0","id":1,"method":"ping"},"related":"r"}`,
	`{"kind":"mcp","server":"a","session":"s","msg": { "a" : [1, 2.5e-3, -0, true, false, null, "x\n\u00e9"] } }`,
	`{"kind":"close","server":"a","session":"s"}`,
	`{"kind":"rpc.request","id":"x","method":"call","path":"add","body":{"a":1}}`,
	`{"kind":"rpc.response","id":7,"status":200,"body":null}`,
	`{"kind":"error","code":"bad_frame","message":"no server \"b\" <here>"}`,
	`{"kind":"mcp","server":"a","session":"s","msg":null}`,
	`{"kind":"mcp","kind":"close","server":"a","session":"s"}`,
	`{"KIND":"hello","Server":"x"}`,
	`{"kind":"hello","status":null,"server":null,"msg":null}`,
	`{"kind":"hello","status":1.0}`,
	`{"kind":"hello","status":-0,"protocol":9223372036854775807}`,
	`{"kind":"hello","protocol":9223372036854775808}`,
	`{"\u006bind":"hello"}`,
	`{"kind":"\u00e9","msg":"\ud800"}`,
	"{\"kind\":\"h\xffllo\"}",
	"{\"kind\":\"hello\",\"x\":\"\x01\"}",
	`{"kind":"hello","servers":{}}`,
	`{"kind":"hello","servers":null}`,
	`{"kind":"hello","extra":[{"a":[]},{}]}`,
	`{"kind":"hello",}`, `{"kind":"hello" "x":1}`, `{"kind":"hello","x":[1,]}`, `{"kind":"hello","x":01}`,
	`{"kind":"hello","x":1.}`, `{"kind":"hello","x":tru}`, `{"kind":"hello"}x`, ` {"kind":"hello"} `,
	`[]`, `null`, `{}`, `"kind"`, ``,
}

func TestCodecAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range codecSeeds {
		checkAgrees(t, []byte(s))
	}
}

func TestCodecNestingLimit(t *testing.T) {
	// The frame object is level 1, so msg may open 9999 more levels. (The
	// scanner's own limit is tested in internal/jsonscan.)
	for _, n := range []int{jsonscan.MaxDepth - 2, jsonscan.MaxDepth - 1, jsonscan.MaxDepth, jsonscan.MaxDepth + 1} {
		msg := strings.Repeat("[", n) + strings.Repeat("]", n)
		in := `{"kind":"mcp","server":"a","session":"s","msg":` + msg + `}`
		checkAgrees(t, []byte(in))
	}
}

// TestCodecRandomFrames: frames built from random field values encode to
// what encoding/json writes and decode back to themselves.
func TestCodecRandomFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	strs := []string{"", "a", "everything", "s-01", "é", "a\"b", "\\", "\n\t", "\u2028", "<&>", "\x7f", "\xff", "日本"}
	raws := []string{"", "1", "-2.5e3", `"x"`, "null", "true", `{"jsonrpc":"2.0","id":1,"result":{}}`, `[1,{"a":[]}]`, `"\u00e9\n"`}
	pick := func(l []string) string { return l[rng.IntN(len(l))] }
	kinds := []Kind{KindHello, KindCatalog, KindMCP, KindClose, KindError, KindRPCRequest, KindRPCResponse, "x"}
	for range 20000 {
		f := Frame{
			Kind: kinds[rng.IntN(len(kinds))], Protocol: rng.IntN(3) - 1, DevID: pick(strs), Version: pick(strs),
			Instance: pick(strs), Hostname: pick(strs),
			Tools: json.RawMessage(pick(raws)), Server: pick(strs), Session: pick(strs), Msg: json.RawMessage(pick(raws)),
			Related: json.RawMessage(pick(raws)), ID: json.RawMessage(pick(raws)), Method: pick(strs), Path: pick(strs),
			Body: json.RawMessage(pick(raws)), Status: rng.IntN(600) - 100, Code: pick(strs), Message: pick(strs),
		}
		if rng.IntN(4) == 0 {
			f.Servers = []ServerInfo{{Name: pick(strs), State: "ready", ToolCount: 1, Tools: []json.RawMessage{json.RawMessage(`{"name":"t"}`)}}}
		}
		enc, err := EncodeFrame(f)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := referenceEncode(f)
		if !bytes.Equal(enc, ref) {
			t.Fatalf("frame %+v:\nEncodeFrame   %s\nencoding/json %s", f, enc, ref)
		}
		checkAgrees(t, enc)
	}
}

func TestEncodeFrameBigMsgIsNotCopied(t *testing.T) {
	msg := json.RawMessage(`{"jsonrpc":"2.0","id":1,"result":{"text":"` + strings.Repeat("x", 1<<20) + `"}}`)
	e, err := EncodeFrameParts(Frame{Kind: KindMCP, Server: "a", Session: "s", Msg: msg, Related: json.RawMessage(`3`)})
	if err != nil {
		t.Fatal(err)
	}
	if &e.Raw[0] != &msg[0] {
		t.Fatal("a large msg was copied into the envelope")
	}
	want := `{"kind":"mcp","server":"a","session":"s","msg":` + string(msg) + `,"related":3}`
	if string(e.Bytes()) != want || e.Len() != len(want) {
		t.Fatal("parts do not join to the frame")
	}
	f, err := DecodeFrame([]byte(want))
	if err != nil || !bytes.Equal(f.Msg, msg) {
		t.Fatalf("decode: %v", err)
	}
}

func TestEncodeFrameRejectsInvalidRaw(t *testing.T) {
	for _, field := range []string{"msg", "related", "id", "body", "tools"} {
		for _, bad := range []string{`{bad`, `1 2`, ` `, `{"a":1,}`, "\"\x01\""} {
			f := Frame{Kind: KindMCP, Server: "a", Session: "s"}
			reflect.ValueOf(&f).Elem().FieldByNameFunc(func(n string) bool { return strings.EqualFold(n, field) }).
				SetBytes([]byte(bad))
			if _, err := EncodeFrame(f); err == nil {
				t.Errorf("%s %q: EncodeFrame accepted invalid JSON", field, bad)
			}
		}
	}
	big := strings.Repeat("x", inlineRawMax+10)
	if _, err := EncodeFrame(Frame{Kind: KindMCP, Msg: json.RawMessage(`{"a":"` + big + `"`)}); err == nil {
		t.Error("EncodeFrame accepted an invalid large msg")
	}
}

// FuzzCodecAgrees: on any input, DecodeFrame and json.Unmarshal accept the
// same frames with the same fields, and EncodeFrame writes what
// encoding/json writes (compacted). internal/jsonscan's FuzzValid checks
// the scanner itself against json.Valid.
func FuzzCodecAgrees(f *testing.F) {
	for _, s := range codecSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAgrees(t, data)
	})
}

func ExampleEncodeFrame() {
	b, _ := EncodeFrame(Frame{Kind: KindMCP, Server: "a", Session: "s", Msg: json.RawMessage(`{"jsonrpc":"2.0","id":1,"result":{}}`)})
	fmt.Println(string(b))
	// Output: {"kind":"mcp","server":"a","session":"s","msg":{"jsonrpc":"2.0","id":1,"result":{}}}
}
