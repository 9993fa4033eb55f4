package mcpchild

// The hot path relays raw JSON-RPC bytes. Decoding whole messages into SDK
// types costs ~180 KiB of garbage per call (see the architecture doc), so the
// multiplexer only finds the spans of the few top-level fields it needs (id,
// method, params, result, error) and of progress tokens, and splices new
// values in. Everything else passes through byte for byte.

import (
	"bytes"
	"errors"
)

var errScan = errors.New("malformed JSON")

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string that starts at b[i]=='"'.
func skipString(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errScan
}

// skipValue returns the index just past the JSON value that starts at b[i].
// It balances brackets and skips strings; full validation is json.Valid's job.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errScan
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errScan
	default: // number, true, false, null
		start := i
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if i == start {
					return 0, errScan
				}
				return i, nil
			}
			i++
		}
		if i == start {
			return 0, errScan
		}
		return i, nil
	}
}

// eachKey calls fn for every top-level member of the JSON object in b with
// the raw key (no quotes, escapes left as they are) and the value's span.
// fn returns false to stop early.
func eachKey(b []byte, fn func(key []byte, start, end int) bool) error {
	return eachMember(b, func(_ int, key []byte, s, e int) bool { return fn(key, s, e) })
}

// eachMember is eachKey that also gives where the member's key starts.
func eachMember(b []byte, fn func(keyStart int, key []byte, start, end int) bool) error {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errScan
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return errScan
		}
		kstart := i
		kend, err := skipString(b, i)
		if err != nil {
			return err
		}
		key := b[i+1 : kend-1]
		i = skipWS(b, kend)
		if i >= len(b) || b[i] != ':' {
			return errScan
		}
		vstart := skipWS(b, i+1)
		vend, err := skipValue(b, vstart)
		if err != nil {
			return err
		}
		if !fn(kstart, key, vstart, vend) {
			return nil
		}
		i = skipWS(b, vend)
		if i >= len(b) {
			return errScan
		}
		if b[i] == '}' {
			return nil
		}
		if b[i] != ',' {
			return errScan
		}
		i = skipWS(b, i+1)
	}
}

// field returns the raw value of key in object b, or nil.
func field(b []byte, key string) []byte {
	var out []byte
	_ = eachKey(b, func(k []byte, s, e int) bool {
		if string(k) == key {
			out = b[s:e]
			return false
		}
		return true
	})
	return out
}

// setField returns a copy of object obj with key set to val (replaced where
// present, otherwise added first). obj may be nil or "null", meaning {}.
func setField(obj []byte, key string, val []byte) []byte {
	obj = bytes.TrimSpace(obj)
	if len(obj) == 0 || string(obj) == "null" {
		obj = []byte("{}")
	}
	s, e := -1, -1
	_ = eachKey(obj, func(k []byte, vs, ve int) bool {
		if string(k) == key {
			s, e = vs, ve
			return false
		}
		return true
	})
	if s >= 0 {
		out := make([]byte, 0, len(obj)-(e-s)+len(val))
		out = append(out, obj[:s]...)
		out = append(out, val...)
		return append(out, obj[e:]...)
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

// deleteFields returns a copy of object obj without the members whose key
// matches drop, and whether anything was dropped.
func deleteFields(obj []byte, drop func(key []byte) bool) ([]byte, bool) {
	type span struct{ s, e int }
	var keep []span
	var dropped bool
	// Kept members are re-joined from key start to value end.
	err := eachMember(obj, func(ks int, k []byte, _, ve int) bool {
		if drop(k) {
			dropped = true
		} else {
			keep = append(keep, span{ks, ve})
		}
		return true
	})
	if err != nil || !dropped {
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

// eachElement calls fn with the span of every element of the JSON array in
// b. fn returns false to stop early.
func eachElement(b []byte, fn func(start, end int) bool) error {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '[' {
		return errScan
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return nil
	}
	for {
		end, err := skipValue(b, i)
		if err != nil {
			return err
		}
		if !fn(i, end) {
			return nil
		}
		i = skipWS(b, end)
		if i >= len(b) {
			return errScan
		}
		if b[i] == ']' {
			return nil
		}
		if b[i] != ',' {
			return errScan
		}
		i = skipWS(b, i+1)
	}
}
