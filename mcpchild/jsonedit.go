package mcpchild

// The hot path relays raw JSON-RPC bytes. Decoding whole messages into SDK
// types costs ~180 KiB of garbage per call (see the architecture doc), so the
// multiplexer only finds the spans of the few members it needs (id, method,
// params, result, error, a tool's name, progress tokens) with
// internal/jsonscan, and splices new values in. Everything else passes
// through byte for byte.

import (
	"bytes"

	"github.com/tether-dev/tether/internal/jsonscan"
)

// field returns the raw value of key in object b, or nil: absent, or b is
// not one valid object without duplicate member names.
func field(b []byte, key string) []byte { return jsonscan.Field(b, key) }

// members walks the top-level members of the object b (whitespace around it
// allowed), keys compared decoded. It reports false when b is not one valid
// object, or names a member twice.
func members(b []byte, fn func(jsonscan.Member)) bool {
	i := jsonscan.SkipSpace(b, 0)
	end, ok := jsonscan.Members(b, i, 0, func(m jsonscan.Member) bool {
		if fn != nil {
			fn(m)
		}
		return true
	})
	return ok && jsonscan.SkipSpace(b, end) == len(b)
}

// span is where a value lies in the bytes it was read from; s is -1 when
// there is none.
type span struct{ s, e int }

var noSpan = span{-1, -1}

// memberSpan is the span of key's value in object b, or noSpan.
func memberSpan(b []byte, key string) span {
	sp := noSpan
	members(b, func(m jsonscan.Member) {
		if string(m.Key) == key {
			sp = span{m.ValStart, m.ValEnd}
		}
	})
	return sp
}

// setField returns a copy of object obj with key set to val (replaced where
// present, otherwise added first). obj may be nil or "null", meaning {}.
func setField(obj []byte, key string, val []byte) []byte {
	obj = bytes.TrimSpace(obj)
	if len(obj) == 0 || string(obj) == "null" {
		obj = []byte("{}")
	}
	if sp := memberSpan(obj, key); sp.s >= 0 {
		return splice(obj, sp.s, sp.e, val)
	}
	open := bytes.IndexByte(obj, '{')
	rest := bytes.TrimSpace(obj[open+1:])
	out := make([]byte, 0, len(obj)+len(key)+len(val)+4)
	out = append(out, '{', '"')
	out = append(out, key...)
	out = append(out, '"', ':')
	out = append(out, val...)
	if len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...)
}

// deleteFields returns a copy of object obj without the members whose
// (decoded) key matches drop, and whether anything was dropped.
func deleteFields(obj []byte, drop func(key []byte) bool) ([]byte, bool) {
	var keep []span // kept members, from key start to value end
	var dropped bool
	ok := members(obj, func(m jsonscan.Member) {
		if drop(m.Key) {
			dropped = true
		} else {
			keep = append(keep, span{m.KeyStart, m.ValEnd})
		}
	})
	if !ok || !dropped {
		return obj, false
	}
	out := make([]byte, 0, len(obj))
	out = append(out, '{')
	for n, sp := range keep {
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, obj[sp.s:sp.e]...)
	}
	return append(out, '}'), true
}

// sameBytes reports whether a and b are the same bytes in memory, not just
// equal ones.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// splice returns b with b[s:e] replaced by v (a new slice).
func splice(b []byte, s, e int, v []byte) []byte {
	out := make([]byte, 0, len(b)-(e-s)+len(v))
	out = append(out, b[:s]...)
	out = append(out, v...)
	return append(out, b[e:]...)
}
