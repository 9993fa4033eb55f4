package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestPeekMatchesEncodingJSON checks peekMessage against encoding/json on
// valid and invalid messages: the same validity verdict, and the same id,
// method, error and _meta protocol version.
func TestPeekMatchesEncodingJSON(t *testing.T) {
	cases := []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`,
		`{"jsonrpc":"2.0","id":"a-1","method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
		` {"id" : 7 , "result" : {"content":[{"type":"text","text":"h\u00e9 \"q\" \\ / é 😀"}],"n":-1.5e+3,"ok":true,"z":null}} ` + "\n",
		`{"result":{"a":[1,2,[3,{}]]},"id":"x\"y"}`,
		`{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"no"}}`,
		`{"jsonrpc":"2.0","id":3,"error":null,"result":{}}`,
		`{"method":"notifications/progress","params":{"progressToken":1}}`,
		`{"method":"n\u0061me","id":null}`,
		`{"params":[1,2],"method":"m","id":1}`,
		`{}`,
		// invalid
		`{"id":1,}`, `{"id":01}`, `{"id":1.}`, `{"id":-}`, `{"id":"a` + "\x01" + `"}`, `{"id":"\x"}`,
		`{"id":1} x`, `[1]`, `{"id":tru}`, `{"id":"\ud83d"}`, `{"id":1`, `{"id" 1}`, "{\"id\":\"\xff\"}", ``, `nul`,
	}
	for _, c := range cases {
		p, ok := peekMessage([]byte(c))
		var want struct {
			ID     json.RawMessage `json:"id"`
			Method *string         `json:"method"`
			Error  json.RawMessage `json:"error"`
		}
		werr := json.Unmarshal([]byte(c), &want)
		valid := json.Valid([]byte(c)) && len(c) > 0 && firstNonSpace(c) == '{'
		if ok != valid {
			t.Errorf("%q: ok=%v, encoding/json valid=%v", c, ok, valid)
			continue
		}
		if !ok || werr != nil {
			continue
		}
		if string(p.ID) != string(want.ID) && !(p.ID == nil && want.ID == nil) {
			t.Errorf("%q: id %s, want %s", c, p.ID, want.ID)
		}
		if want.Method != nil && p.Method != *want.Method {
			t.Errorf("%q: method %q, want %q", c, p.Method, *want.Method)
		}
		if hasErr := len(want.Error) > 0 && string(want.Error) != "null"; p.HasError != hasErr {
			t.Errorf("%q: HasError %v, want %v", c, p.HasError, hasErr)
		}
	}
	p, _ := peekMessage([]byte(cases[1]))
	if p.MetaProtocol != "2026-07-28" || p.Method != "server/discover" {
		t.Errorf("meta protocol %q method %q", p.MetaProtocol, p.Method)
	}
	p, _ = peekMessage([]byte(cases[4]))
	if !p.HasError || p.ErrorCode != -32601 || statelessErrorStatus([]byte(cases[4])) != 404 {
		t.Errorf("error code %d", p.ErrorCode)
	}
	if _, ok := peekMessage([]byte(`{"method":5,"id":1}`)); ok {
		t.Error("a non-string method was accepted")
	}
	// The relay routes on id and method: a message naming either twice
	// would be routed on one value and read by the bridge with the other.
	for _, c := range []string{`{"id":1,"id":2,"method":"m"}`, `{"id":1,"method":"a","\u006dethod":"b"}`} {
		if p, ok := peekMessage([]byte(c)); ok {
			t.Errorf("%s: accepted as %+v", c, p)
		}
	}
	if p, ok := peekMessage([]byte(`{"\u0069d":1,"method":"m"}`)); !ok || string(p.ID) != "1" {
		t.Errorf("an escaped \"id\" key: %+v, %v", p, ok)
	}
}

func firstNonSpace(s string) byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && c != '\n' && c != '\t' && c != '\r' {
			return c
		}
	}
	return 0
}

// TestIDKeyFastPathAgrees: the fast paths give the key the slow path
// gives, and ids that are equal as JSON values share a key.
func TestIDKeyFastPathAgrees(t *testing.T) {
	slow := func(raw string) string {
		var v any
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			return "x:" + raw
		}
		if s, ok := v.(string); ok {
			return "s:" + s
		}
		b, _ := json.Marshal(v)
		return "n:" + string(b)
	}
	for _, raw := range []string{`0`, `1`, `-1`, `42`, `999999999999999`, `1234567890123456789`, `"abc"`, `""`, `"a\"b"`, `1.0`, `1e3`, `-0`, `"\u0041"`} {
		if got, want := idKey(json.RawMessage(raw)), slow(raw); got != want {
			t.Errorf("idKey(%s) = %q, slow path %q", raw, got, want)
		}
	}
	if idKey(json.RawMessage(`1000`)) != idKey(json.RawMessage(`1e3`)) || idKey(json.RawMessage(`"A"`)) != idKey(json.RawMessage(`"\u0041"`)) {
		t.Error("equal ids got different keys")
	}
	if idKey(json.RawMessage(`1`)) == idKey(json.RawMessage(`"1"`)) {
		t.Error("number 1 and string \"1\" share a key")
	}
}

// TestVerifyCacheKeepsExpiry: a token verified once is remembered, but
// still expires, and a token that failed is not remembered as good.
func TestVerifyCacheKeepsExpiry(t *testing.T) {
	now := time.Now()
	v := &Verifier{Secret: testSecret, Now: func() time.Time { return now }}
	tok, err := Issue(testSecret, "alice", ScopeClient, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if c, err := v.Verify(tok); err != nil || c.Dev != "alice" {
			t.Fatalf("verify %d: %+v %v", i, c, err)
		}
	}
	now = now.Add(2 * time.Minute)
	if _, err := v.Verify(tok); !errors.Is(err, ErrExpiredToken) {
		t.Fatalf("cached token past expiry: %v", err)
	}
	// Change a signature character that carries no padding bits, to one
	// that differs from it: "xx" at the end could, about once in a thousand
	// runs, decode to the very signature it replaced.
	pos := len(tok) - 5
	swap := byte('A')
	if tok[pos] == swap {
		swap = 'B'
	}
	forged := tok[:pos] + string(swap) + tok[pos+1:]
	for i := range 2 {
		if _, err := v.Verify(forged); !errors.Is(err, ErrBadToken) {
			t.Fatalf("forged token, try %d: %v", i, err)
		}
	}
	// The cache is bounded.
	now = time.Now()
	for i := range verifiedCacheMax + 10 {
		tk, _ := Issue(testSecret, fmt.Sprintf("d%d", i), ScopeClient, time.Hour)
		if _, err := v.Verify(tk); err != nil {
			t.Fatal(err)
		}
	}
	v.mu.Lock()
	n := len(v.verified)
	v.mu.Unlock()
	if n > verifiedCacheMax {
		t.Fatalf("cache holds %d tokens, max %d", n, verifiedCacheMax)
	}
}

// FuzzPeekMessage: whatever the bytes, peekMessage does not panic, and what
// it accepts is exactly what encoding/json reads as an object without
// repeated member names, with the same method and id as encoding/json
// decodes them (the relay routes on exactly what the next hop reads).
func FuzzPeekMessage(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`,
		`{"jsonrpc":"2.0","id":"a\u0062","result":{}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"id":1,"id":2,"method":"x"}`,
		`{"\u006dethod":"tools/list","id":3}`,
		`{"method":"a","Method":"b","id":1}`,
		`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"x"}}`,
		`{"params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}},"method":"m","id":9}`,
		`[1]`, `{"method":1}`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		p, ok := peekMessage(d)
		if !ok {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(d, &m); err != nil {
			t.Fatalf("peekMessage accepted %q, encoding/json: %v", d, err)
		}
		if raw, has := m["method"]; has {
			var method string
			if err := json.Unmarshal(raw, &method); err != nil || method != p.Method {
				t.Fatalf("%q: method %q, encoding/json reads %s", d, p.Method, raw)
			}
		} else if p.Method != "" {
			t.Fatalf("%q: method %q where encoding/json sees none", d, p.Method)
		}
		if raw, has := m["id"]; has != (p.ID != nil) || (has && !bytes.Equal(bytes.TrimSpace(raw), bytes.TrimSpace(p.ID))) {
			t.Fatalf("%q: id %s, encoding/json reads %s", d, p.ID, raw)
		}
	})
}
