package jsonscan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
)

// memberSeeds are objects and arrays around the rules Members adds to
// Object: decoded keys and refused duplicates. FuzzMembers starts from them
// and from testdata/fuzz/FuzzMembers.
var memberSeeds = []string{
	`{"name":"x"}`, `{"\u006eame":"x"}`, `{"name":"x","name":"echo"}`, `{"name":"x","\u006eame":"echo"}`,
	`{"a":{"b":1,"b":2}}`, `{"a":1,"A":2}`, "{\"\xff\":1,\"\xfe\":2}", `{"\ud800":1,"\udc00":2}`, `{"\/":1,"/":2}`,
	`{"é":1,"\u00e9":2}`, `{"":1,"":2}`, `{}`, `[]`, `[1,{"a":1,"a":2},"x"]`, ` { "a" : [ 1 ] , "b" : { } } `,
	`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k3":3}`,
	`{"a":1,}`, `{"a" 1}`, `[1,]`,
}

func TestMembersDecodesKeys(t *testing.T) {
	d := []byte(`{"\u006eame":"echo", "a\"b" : 1, "\u00e9":2, "plain":3}`)
	var keys []string
	var vals []string
	end, ok := Members(d, 0, 0, func(m Member) bool {
		keys = append(keys, string(m.Key))
		vals = append(vals, string(m.Val(d)))
		if d[m.KeyStart] != '"' {
			t.Errorf("KeyStart %d is not at a quote", m.KeyStart)
		}
		return true
	})
	if !ok || end != len(d) {
		t.Fatalf("Members = %d, %v; want %d, true", end, ok, len(d))
	}
	if got, want := strings.Join(keys, "|"), `name|a"b|é|plain`; got != want {
		t.Errorf("keys %q, want %q", got, want)
	}
	if got, want := strings.Join(vals, "|"), `"echo"|1|2|3`; got != want {
		t.Errorf("values %q, want %q", got, want)
	}
}

func TestMembersRefusesDuplicates(t *testing.T) {
	many := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		b.WriteString(extra + "}")
		return b.String()
	}
	for _, c := range []struct {
		doc string
		ok  bool
	}{
		{`{"name":"x","name":"echo"}`, false},
		{`{"name":"x","\u006eame":"echo"}`, false},
		{`{"\u006eame":"x","name":"echo"}`, false},
		{"{\"\xff\":1,\"\xfe\":2}", false}, // both decode to U+FFFD
		{`{"\/":1,"/":2}`, false},
		{`{"a":1,"A":2}`, true},                 // distinct names; encoding/json's case folding is the reader's business
		{`{"a":{"b":1,"b":2}}`, true},           // nested objects are not this walk's
		{many(dupScanLimit-1, `"k0":0`), false}, // within the linear scan
		{many(dupScanLimit+5, `"k3":0`), false}, // past it, in the set
		{many(dupScanLimit+5, `"\u006b3":0`), false},
		{many(dupScanLimit+5, `"z":0`), true},
	} {
		_, ok := Members([]byte(c.doc), 0, 0, nil)
		if ok != c.ok {
			t.Errorf("Members(%q) ok = %v, want %v", c.doc, ok, c.ok)
		}
	}
}

func TestField(t *testing.T) {
	for _, c := range []struct{ doc, key, want string }{
		{` {"a":1,"b":{"c":2}} `, "b", `{"c":2}`},
		{`{"\u0062":[1]}`, "b", `[1]`},
		{`{"a":1}`, "b", ``},
		{`{"b":1,"b":2}`, "b", ``}, // refused, not "the first"
		{`{"b":1`, "b", ``},
		{`[1]`, "b", ``},
	} {
		if got := string(Field([]byte(c.doc), c.key)); got != c.want {
			t.Errorf("Field(%q, %q) = %q, want %q", c.doc, c.key, got, c.want)
		}
	}
}

func TestMembersNoAllocations(t *testing.T) {
	d := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"progressToken":7}}}`)
	n := 0
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := Members(d, 0, 0, func(m Member) bool { n += len(m.Key); return true }); !ok {
			t.Fatal("not valid")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per walk", allocs)
	}
}

// FuzzMembers checks Members and Elements against encoding/json: on a valid
// object they see the keys encoding/json decodes, with the same raw values,
// and refuse exactly the objects where a decoded key repeats; on a valid
// array they see the same elements; anything else they reject.
func FuzzMembers(f *testing.F) {
	for _, s := range append(memberSeeds, seeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) { checkMembers(t, d) })
}

func checkMembers(t *testing.T, d []byte) {
	i := SkipSpace(d, 0)
	valid := json.Valid(d)
	isObject := i < len(d) && d[i] == '{'
	isArray := i < len(d) && d[i] == '['
	var keys, vals []string
	end, ok := Members(d, i, 0, func(m Member) bool {
		keys = append(keys, string(m.Key))
		vals = append(vals, string(m.Val(d)))
		return true
	})
	ok = ok && SkipSpace(d, end) == len(d)
	if !valid || !isObject {
		if ok {
			t.Fatalf("Members(%q) accepted; json.Valid %v", d, valid)
		}
	} else {
		wantKeys, wantVals := stdMembers(t, d)
		dup := map[string]bool{}
		hasDup := false
		for _, k := range wantKeys {
			hasDup = hasDup || dup[k]
			dup[k] = true
		}
		if ok == hasDup {
			t.Fatalf("Members(%q) ok %v, duplicates %v", d, ok, hasDup)
		}
		if ok && (fmt.Sprint(keys) != fmt.Sprint(wantKeys) || fmt.Sprint(vals) != fmt.Sprint(wantVals)) {
			t.Fatalf("Members(%q) = %q %q, encoding/json %q %q", d, keys, vals, wantKeys, wantVals)
		}
	}
	var elems []string
	end, ok = Elements(d, i, 0, func(s, e int) bool { elems = append(elems, string(d[s:e])); return true })
	ok = ok && SkipSpace(d, end) == len(d)
	if ok != (valid && isArray) {
		t.Fatalf("Elements(%q) ok %v; json.Valid %v", d, ok, valid)
	}
	if ok {
		var want []json.RawMessage
		if err := json.Unmarshal(d, &want); err != nil {
			t.Fatal(err)
		}
		if len(want) != len(elems) {
			t.Fatalf("Elements(%q) = %q, encoding/json %q", d, elems, want)
		}
		for n := range want {
			if string(want[n]) != elems[n] {
				t.Fatalf("Elements(%q) = %q, encoding/json %q", d, elems, want)
			}
		}
	}
}

// stdMembers lists a valid object's top-level keys (decoded) and raw values
// with encoding/json's tokenizer, duplicates included.
func stdMembers(t *testing.T, d []byte) (keys, vals []string) {
	dec := json.NewDecoder(bytes.NewReader(d))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		vals = append(vals, string(v))
	}
	if _, err := dec.Token(); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return keys, vals
}
