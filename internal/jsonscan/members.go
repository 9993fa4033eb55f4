package jsonscan

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// Member is one member of an object walked by Members. Offsets are into the
// d given to Members.
type Member struct {
	// Key is the member name as encoding/json decodes it: escapes resolved
	// and invalid UTF-8 replaced, so {"\u006eame":1} has the key "name".
	// It aliases d when the raw name needs no decoding; the caller must not
	// keep it past the callback.
	Key []byte
	// KeyStart is the index of the key's opening quote; ValStart and
	// ValEnd delimit the value's raw text.
	KeyStart, ValStart, ValEnd int
}

// Val is the member's raw value in d, with its capacity capped so that
// appending to it never writes into d.
func (m Member) Val(d []byte) []byte { return d[m.ValStart:m.ValEnd:m.ValEnd] }

// dupScanLimit is how many members are checked for duplicates by
// comparing with each earlier one; a bigger object switches to a set.
const dupScanLimit = 16

// Members walks the object at d[i] (d[i] must be '{'), validating it as
// Object does, and calls member, when not nil, with each member in order.
// Unlike Object it compares keys decoded, and refuses (ok false) an object
// that names a member twice: parsers disagree about which of two equal
// names wins (encoding/json and JSON.parse take the last, a scan for the
// first takes the first), so a decision made on such an object might not
// be about what the next reader sees. The refusal is checked for this
// object's own members only, not for the objects nested in its values.
// member returning false stops the walk with ok false. depth is how many
// containers enclose the object; end is the index just past '}'.
//
// Members does not allocate for objects of up to dupScanLimit members whose
// keys are plain (no escapes, valid UTF-8).
func Members(d []byte, i, depth int, member func(Member) bool) (end int, ok bool) {
	var backing [dupScanLimit][]byte
	seen := backing[:0]
	var seenSet map[string]struct{}
	var scratch []byte // decoded keys, when a key has escapes
	return object(d, i, depth, func(ks, ke int, escaped bool, vs, ve int) bool {
		raw := d[ks:ke]
		key := raw
		if escaped || !utf8.Valid(raw) {
			dec, ok := decodeKey(raw)
			if !ok {
				return false
			}
			// Keys are kept for the duplicate check, so each decoded key
			// gets its own slice of scratch (a fresh one when full).
			if cap(scratch)-len(scratch) < len(dec) {
				scratch = make([]byte, 0, max(64, 2*len(dec)))
			}
			n := len(scratch)
			scratch = append(scratch, dec...)
			key = scratch[n:len(scratch):len(scratch)]
		}
		if seenSet == nil && len(seen) < dupScanLimit {
			for _, k := range seen {
				if bytes.Equal(k, key) {
					return false
				}
			}
			seen = append(seen, key)
		} else {
			if seenSet == nil {
				seenSet = make(map[string]struct{}, 2*dupScanLimit)
				for _, k := range seen {
					seenSet[string(k)] = struct{}{}
				}
			}
			if _, dup := seenSet[string(key)]; dup {
				return false
			}
			seenSet[string(key)] = struct{}{}
		}
		if member == nil {
			return true
		}
		return member(Member{Key: key, KeyStart: ks - 1, ValStart: vs, ValEnd: ve})
	})
}

// decodeKey decodes the raw text of a key (between its quotes) exactly as
// encoding/json does. It is the slow path: keys with escapes or bytes that
// are not UTF-8 are rare.
func decodeKey(raw []byte) ([]byte, bool) {
	q := make([]byte, 0, len(raw)+2)
	q = append(q, '"')
	q = append(q, raw...)
	q = append(q, '"')
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return nil, false
	}
	return []byte(s), true
}

// Field returns the raw value of the member named key (compared decoded)
// of the object d, or nil when d is not one valid object without duplicate
// names, or has no such member. d may be surrounded by whitespace.
func Field(d []byte, key string) []byte {
	var out []byte
	i := SkipSpace(d, 0)
	end, ok := Members(d, i, 0, func(m Member) bool {
		if string(m.Key) == key {
			out = m.Val(d)
		}
		return true
	})
	if !ok || SkipSpace(d, end) != len(d) {
		return nil
	}
	return out
}

// Elements walks the array at d[i] (d[i] must be '['), validating it, and
// calls elem, when not nil, with each element's span in d. elem returning
// false stops the walk with ok false. depth is how many containers enclose
// the array; end is the index just past ']'.
func Elements(d []byte, i, depth int, elem func(start, end int) bool) (end int, ok bool) {
	if i >= len(d) || d[i] != '[' || depth >= MaxDepth {
		return 0, false
	}
	i = SkipSpace(d, i+1)
	if i < len(d) && d[i] == ']' {
		return i + 1, true
	}
	for {
		vend, ok := Value(d, i, depth+1)
		if !ok {
			return 0, false
		}
		if elem != nil && !elem(i, vend) {
			return 0, false
		}
		var done bool
		if i, done, ok = afterItem(d, vend, ']'); !ok || done {
			return i, ok
		}
	}
}
