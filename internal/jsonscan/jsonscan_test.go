package jsonscan

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// seeds are valid and invalid documents around every branch of the
// grammar; each test checks them against encoding/json.
var seeds = []string{
	// valid
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e-3`, `-2E+10`, `123`, `true`, `false`, `null`, ` {"a" : [1, 2] } ` + "\n",
	`{"kind":"hello","protocol":1,"devId":"alice","servers":[{"name":"a","state":"ready","toolCount":2,"tools":[{"name":"t"}]}]}`,
	`{"kind":"mcp","server":"a","session":"s","msg": { "a" : [1, 2.5e-3, -0, true, false, null, "x\n\u00e9"] } }`,
	`{"jsonrpc":"2.0","id":"a-1","method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
	` {"id" : 7 , "result" : {"content":[{"type":"text","text":"h\u00e9 \"q\" \\ / é 😀"}],"n":-1.5e+3,"ok":true,"z":null}} `,
	`{"\u006bind":"hello"}`, `{"kind":"\u00e9","msg":"\ud800"}`, "{\"kind\":\"h\xffllo\"}", `"\b\f\n\r\t\/\\\""`,
	`[[],{},[{}],{"a":{}}]`, `{"a":[1,{"b":[]}],"c":{"d":"e"}}`,
	// invalid
	``, ` `, `{`, `}`, `[`, `]`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{"a":1,}`, `{,}`, `[1,]`, `[,1]`, `[1 2]`, `{"a":1 "b":2}`,
	`{1:2}`, `{"a":1}x`, `1 2`, `01`, `1.`, `.1`, `-`, `-a`, `1e`, `1e+`, `+1`, `0x1`, `tru`, `nul`, `falsey`, `True`,
	`"abc`, `"\x"`, `"\u12"`, `"\u123`, `"\u1234`, `"\u`, `"\u12g4"`, "\"\x01\"", "\"\x1f\"", `"\`, `[1]]`, `{"a":1}}`, `{]`, `[}`, "\x00",
	`{"kind":"hello",}`, `{"kind":"hello" "x":1}`, `{"kind":"hello","x":[1,]}`, `{"kind":"hello","x":01}`,
}

func TestValidAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range seeds {
		checkValid(t, []byte(s))
	}
}

// checkValid fails t when Valid or Object disagree with encoding/json on d.
func checkValid(t *testing.T, d []byte) {
	t.Helper()
	want := json.Valid(d)
	if got := Valid(d); got != want {
		t.Fatalf("Valid(%q) = %v, json.Valid = %v", d, got, want)
	}
	// Object validates exactly as Value does, on objects.
	i := SkipSpace(d, 0)
	end, ok := Object(d, i, 0, nil)
	objValid := ok && SkipSpace(d, end) == len(d)
	if wantObj := want && i < len(d) && d[i] == '{'; objValid != wantObj {
		t.Fatalf("Object(%q) valid %v, want %v", d, objValid, wantObj)
	}
}

func TestNestingLimit(t *testing.T) {
	for _, n := range []int{1, 31, 32, 33, MaxDepth - 1, MaxDepth, MaxDepth + 1} {
		docs := map[string]string{
			"arrays":  strings.Repeat("[", n) + strings.Repeat("]", n),
			"objects": strings.Repeat(`{"a":`, n-1) + "{}" + strings.Repeat("}", n-1),
			"mixed":   strings.Repeat(`[{"a":`, n/2) + strings.Repeat("[", n%2) + strings.Repeat("]", n%2) + strings.Repeat("}]", n/2),
		}
		for name, doc := range docs {
			checkValid(t, []byte(doc))
			// Inside one enclosing container the limit is one level lower.
			inner, ok := Value([]byte(doc), 0, 1)
			wrapped := "[" + doc + "]"
			if want := json.Valid([]byte(wrapped)); ok != want || (ok && inner != len(doc)) {
				t.Fatalf("%s, depth %d: Value at depth 1 = %d, %v; json.Valid(wrapped) = %v", name, n, inner, ok, want)
			}
		}
	}
}

func TestObjectMembers(t *testing.T) {
	d := []byte(` { "a" : 1 , "b\"c":{"x":[1]}, "d":"e\n" ,"":null} `)
	type member struct {
		key, val string
		escaped  bool
	}
	var got []member
	end, ok := Object(d, 1, 0, func(key, val []byte, escaped bool) bool {
		if cap(val) != len(val) {
			t.Errorf("value %q has capacity %d past its end", val, cap(val)-len(val))
		}
		got = append(got, member{string(key), string(val), escaped})
		return true
	})
	if !ok || end != len(d)-1 {
		t.Fatalf("end %d ok %v, want %d true", end, ok, len(d)-1)
	}
	want := []member{{"a", "1", false}, {`b\"c`, `{"x":[1]}`, true}, {"d", `"e\n"`, false}, {"", "null", false}}
	if len(got) != len(want) {
		t.Fatalf("members %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("member %d: %+v, want %+v", i, got[i], want[i])
		}
	}

	// member returning false stops the walk.
	calls := 0
	if _, ok := Object(d, 1, 0, func(key, _ []byte, _ bool) bool { calls++; return string(key) != "a" }); ok || calls != 1 {
		t.Errorf("stopped walk: ok %v after %d calls, want false after 1", ok, calls)
	}
	// Not an object, or an object at the nesting limit.
	for _, c := range []struct {
		d     string
		depth int
	}{{`[]`, 0}, {``, 0}, {`{}`, MaxDepth}, {`{"a":{}}`, MaxDepth - 1}} {
		if _, ok := Object([]byte(c.d), 0, c.depth, nil); ok {
			t.Errorf("Object(%q, depth %d) accepted", c.d, c.depth)
		}
	}
	if end, ok := Object([]byte(`{"a":[]}`), 0, MaxDepth-2, nil); !ok || end != 8 {
		t.Errorf("object two levels under the limit: %d %v", end, ok)
	}
}

func TestString(t *testing.T) {
	for _, c := range []struct {
		in          string
		end         int
		escaped, ok bool
	}{
		{`"abc"x`, 5, false, true}, {`""`, 2, false, true}, {`"a\"b"`, 6, true, true}, {`"\u00e9"`, 8, true, true},
		{"\"\xff\xfe\"", 4, false, true}, {`"abc`, 0, false, false}, {`"a\qb"`, 0, false, false}, {"\"a\tb\"", 0, false, false},
	} {
		end, escaped, ok := String([]byte(c.in), 0)
		if end != c.end || escaped != c.escaped || ok != c.ok {
			t.Errorf("String(%q) = %d, %v, %v; want %d, %v, %v", c.in, end, escaped, ok, c.end, c.escaped, c.ok)
		}
	}
}

// TestRandomDocuments: random documents, and each with one byte changed,
// deleted or duplicated, get encoding/json's verdict.
func TestRandomDocuments(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte(`{}[]:,"\ 0123456789-+.eEtrufalsn` + "\x01\xff\t\n")
	for range 20000 {
		d := randomValue(rng, nil, 0)
		checkValid(t, d)
		if len(d) == 0 {
			continue
		}
		m := bytes.Clone(d)
		switch j := rng.IntN(len(m)); rng.IntN(3) {
		case 0:
			m[j] = alphabet[rng.IntN(len(alphabet))]
		case 1:
			m = append(m[:j], m[j+1:]...)
		default:
			m = append(m[:j+1], m[j:]...)
		}
		checkValid(t, m)
	}
}

func randomValue(rng *rand.Rand, b []byte, depth int) []byte {
	ws := func() {
		if rng.IntN(4) == 0 {
			b = append(b, " \t\n\r"[rng.IntN(4)])
		}
	}
	ws()
	switch k := rng.IntN(9); {
	case k < 2 && depth < 6:
		open, closing := byte('['), byte(']')
		if k == 1 {
			open, closing = '{', '}'
		}
		b = append(b, open)
		for j := range rng.IntN(4) {
			if j > 0 {
				b = append(b, ',')
			}
			if open == '{' {
				ws()
				b = append(b, `"k\u00e9y"`...)
				ws()
				b = append(b, ':')
			}
			b = randomValue(rng, b, depth+1)
		}
		ws()
		b = append(b, closing)
	case k == 2:
		b = append(b, []string{`""`, `"a\"b\\"`, "\"é\xff\"", `"\ud83d\ude00"`}[rng.IntN(4)]...)
	case k == 3:
		b = append(b, []string{"true", "false", "null"}[rng.IntN(3)]...)
	default:
		b = append(b, []string{"0", "-1", "12.5", "1e9", "-0.0E-7", "100"}[rng.IntN(6)]...)
	}
	ws()
	return b
}

// TestNoAllocations: scanning, including an Object walk with a closure, does
// not allocate below 32 levels of nesting.
func TestNoAllocations(t *testing.T) {
	d := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` + strings.Repeat("x\\n", 100) +
		`"}],"deep":` + strings.Repeat("[", 30) + strings.Repeat("]", 30) + `}}`)
	n := 0
	allocs := testing.AllocsPerRun(100, func() {
		if !Valid(d) {
			t.Fatal("not valid")
		}
		if _, ok := Object(d, 0, 0, func(key, _ []byte, _ bool) bool { n += len(key); return true }); !ok {
			t.Fatal("object not valid")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per scan", allocs)
	}
}

func FuzzValid(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) { checkValid(t, d) })
}

func BenchmarkValid(b *testing.B) {
	d := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` + strings.Repeat("hello world ", 1000) + `"}],"n":[1,2.5,-3e4,true,null]}}`)
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		if !Valid(d) {
			b.Fatal("not valid")
		}
	}
}
