// Package jsonscan is Tether's one JSON scanner: small, validating, and
// built for messages that are relayed rather than decoded. It accepts exactly
// what encoding/json's checkValid accepts (json.Valid), including its
// nesting limit, but it only finds where values end: nothing is decoded,
// copied or allocated, and nesting is tracked on a stack, not by recursion.
// The relay and the bridge pass megabyte messages on without building them,
// and only look at a few members (see Object and Members).
//
// Members is the walk for policy decisions (a tool allowed or denied, a
// message routed): it compares member names decoded, as the next reader
// will, and refuses an object that names a member twice.
//
// Indexes are into d; a function that returns ok false returns end 0.
package jsonscan

// MaxDepth is encoding/json's nesting limit (scanner.go): a value nested
// deeper is rejected the same way.
const MaxDepth = 10000

// plainStringByte marks the bytes a JSON string may hold without attention:
// anything but '"', '\\' and control characters. Bytes ≥ 0x80 pass as they
// are, like encoding/json, which does not check UTF-8 when validating.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipSpace returns the index of the first non-whitespace byte at or after i.
func SkipSpace(d []byte, i int) int {
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	return i
}

// Valid reports whether raw is exactly one JSON value, optionally
// surrounded by whitespace: json.Valid, faster.
func Valid(raw []byte) bool {
	end, ok := Value(raw, SkipSpace(raw, 0), 0)
	return ok && SkipSpace(raw, end) == len(raw)
}

// String expects d[i] == '"' and returns the index just past the closing
// quote, and whether the string holds any escape.
func String(d []byte, i int) (end int, escaped, ok bool) {
	i++
	for {
		for i < len(d) && plainStringByte[d[i]] {
			i++
		}
		if i >= len(d) {
			return 0, false, false
		}
		switch c := d[i]; {
		case c == '"':
			return i + 1, escaped, true
		case c == '\\':
			escaped = true
			if i+1 >= len(d) {
				return 0, false, false
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
					return 0, false, false
				}
				i += 6
			default:
				return 0, false, false
			}
		default: // a control character
			return 0, false, false
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// number returns the end of the number starting at d[i], by JSON's
// grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func number(d []byte, i int) (int, bool) {
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	default:
		return 0, false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !isDigit(d[i]) {
			return 0, false
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			return 0, false
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	return i, true
}

func literal(d []byte, i int, lit string) (int, bool) {
	if len(d)-i < len(lit) || string(d[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// Value validates the one JSON value that starts at d[i] (no leading
// whitespace) and returns the index just past it. depth is how many
// containers already enclose it (0 for a whole document).
func Value(d []byte, i, depth int) (end int, ok bool) {
	if i >= len(d) {
		return 0, false
	}
	switch c := d[i]; {
	case c == '"':
		end, _, ok := String(d, i)
		return end, ok
	case c == '{' || c == '[':
		return container(d, i, depth)
	case c == 't':
		return literal(d, i, "true")
	case c == 'f':
		return literal(d, i, "false")
	case c == 'n':
		return literal(d, i, "null")
	default:
		return number(d, i)
	}
}

// Object walks the object at d[i] (d[i] must be '{'), validating it, and
// calls member, when not nil, with each key and value in order: key is the
// raw text between the quotes (keyEscaped says whether it holds escapes,
// which the caller must decode to compare it as encoding/json would), val
// the value's raw text with its capacity capped, so appending to it never
// writes into d. member returning false stops the walk with ok false.
// depth is how many containers enclose the object. end is the index just
// past '}'.
func Object(d []byte, i, depth int, member func(key, val []byte, keyEscaped bool) bool) (end int, ok bool) {
	if member == nil {
		return object(d, i, depth, nil)
	}
	return object(d, i, depth, func(ks, ke int, escaped bool, vs, ve int) bool {
		return member(d[ks:ke], d[vs:ve:ve], escaped)
	})
}

// object is Object with offsets: the raw key is d[ks:ke] (inside its
// quotes), the value d[vs:ve].
func object(d []byte, i, depth int, member func(ks, ke int, escaped bool, vs, ve int) bool) (end int, ok bool) {
	if i >= len(d) || d[i] != '{' || depth >= MaxDepth {
		return 0, false
	}
	i = SkipSpace(d, i+1)
	if i < len(d) && d[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(d) || d[i] != '"' {
			return 0, false
		}
		kend, escaped, ok := String(d, i)
		if !ok {
			return 0, false
		}
		ks := i + 1
		i = SkipSpace(d, kend)
		if i >= len(d) || d[i] != ':' {
			return 0, false
		}
		vstart := SkipSpace(d, i+1)
		vend, ok := Value(d, vstart, depth+1)
		if !ok {
			return 0, false
		}
		if member != nil && !member(ks, kend-1, escaped, vstart, vend) {
			return 0, false
		}
		var done bool
		if i, done, ok = afterItem(d, vend, '}'); !ok || done {
			return i, ok
		}
	}
}

// afterItem reads what follows a member or element that ends at d[i]: a
// comma (next is where the next item starts), or closer (next is just
// past it, done). Anything else is invalid.
func afterItem(d []byte, i int, closer byte) (next int, done, ok bool) {
	i = SkipSpace(d, i)
	switch {
	case i >= len(d):
		return 0, false, false
	case d[i] == ',':
		return SkipSpace(d, i+1), false, true
	case d[i] == closer:
		return i + 1, true, true
	}
	return 0, false, false
}

// container validates an object or array starting at d[i] without
// recursion: stack holds the open containers ('{' or '['). It allocates
// only past 32 levels, which real messages do not reach.
func container(d []byte, i, depth int) (int, bool) {
	var backing [32]byte
	stack := backing[:0]
	open := func(c byte) bool {
		stack = append(stack, c)
		return depth+len(stack) <= MaxDepth
	}
	if !open(d[i]) {
		return 0, false
	}
	i++
	// Each turn is at a member or element, after a comma, or at a
	// closing bracket.
	first := true // no member or element yet in the innermost container
	for {
		i = SkipSpace(d, i)
		if i >= len(d) {
			return 0, false
		}
		top := stack[len(stack)-1]
		if c := d[i]; c == '}' && top == '{' || c == ']' && top == '[' {
			i++
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return i, true
			}
			first = false
			continue
		}
		if !first {
			if d[i] != ',' {
				return 0, false
			}
			i = SkipSpace(d, i+1)
			if i >= len(d) {
				return 0, false
			}
		}
		if top == '{' {
			if d[i] != '"' {
				return 0, false
			}
			end, _, ok := String(d, i)
			if !ok {
				return 0, false
			}
			i = SkipSpace(d, end)
			if i >= len(d) || d[i] != ':' {
				return 0, false
			}
			i = SkipSpace(d, i+1)
			if i >= len(d) {
				return 0, false
			}
		}
		if c := d[i]; c == '{' || c == '[' {
			if !open(c) {
				return 0, false
			}
			i++
			first = true
			continue
		}
		end, ok := Value(d, i, depth+len(stack))
		if !ok {
			return 0, false
		}
		i = end
		first = false
	}
}
