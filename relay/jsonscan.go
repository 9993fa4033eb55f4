package relay

// A small validating JSON scanner for the frame codec. It accepts exactly
// what encoding/json's checkValid accepts (json.Valid), including its
// nesting limit, but it only finds where values end: nothing is decoded or
// copied. Relayed messages are megabytes at times and are only passed on, so
// the codec must not build or re-marshal them.

// maxNestingDepth is encoding/json's limit (scanner.go); a frame deeper than
// that is rejected the same way.
const maxNestingDepth = 10000

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

// skipSpace returns the index of the first non-whitespace byte at or after i.
func skipSpace(d []byte, i int) int {
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	return i
}

// scanString expects d[i] == '"' and returns the index just past the
// closing quote, and whether the string holds any escape.
func scanString(d []byte, i int) (end int, escaped, ok bool) {
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

// scanNumber returns the end of the number starting at d[i], by JSON's
// grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(d []byte, i int) (int, bool) {
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

func hasLiteral(d []byte, i int, lit string) bool {
	return len(d)-i >= len(lit) && string(d[i:i+len(lit)]) == lit
}

// scanValue validates the one JSON value that starts at d[i] (no leading
// whitespace) and returns the index just past it. depth is how many
// containers already enclose it.
func scanValue(d []byte, i, depth int) (int, bool) {
	if i >= len(d) {
		return 0, false
	}
	switch c := d[i]; {
	case c == '"':
		end, _, ok := scanString(d, i)
		return end, ok
	case c == '{' || c == '[':
		return scanContainer(d, i, depth)
	case c == 't':
		return i + 4, hasLiteral(d, i, "true")
	case c == 'f':
		return i + 5, hasLiteral(d, i, "false")
	case c == 'n':
		return i + 4, hasLiteral(d, i, "null")
	default:
		return scanNumber(d, i)
	}
}

// scanContainer validates an object or array starting at d[i] without
// recursion: stack holds the open containers ('{' or '[').
func scanContainer(d []byte, i, depth int) (int, bool) {
	var backing [32]byte
	stack := backing[:0]
	open := func(c byte) bool {
		stack = append(stack, c)
		return depth+len(stack) <= maxNestingDepth
	}
	if !open(d[i]) {
		return 0, false
	}
	i++
	// Each turn is at a member or element, after a comma, or at a
	// closing bracket.
	first := true // no member or element yet in the innermost container
	for {
		i = skipSpace(d, i)
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
			i = skipSpace(d, i+1)
			if i >= len(d) {
				return 0, false
			}
		}
		if top == '{' {
			if d[i] != '"' {
				return 0, false
			}
			end, _, ok := scanString(d, i)
			if !ok {
				return 0, false
			}
			i = skipSpace(d, end)
			if i >= len(d) || d[i] != ':' {
				return 0, false
			}
			i = skipSpace(d, i+1)
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
		end, ok := scanValue(d, i, depth+len(stack))
		if !ok {
			return 0, false
		}
		i = end
		first = false
	}
}

// validJSON reports whether raw is exactly one JSON value, optionally
// surrounded by whitespace: json.Valid, faster.
func validJSON(raw []byte) bool {
	i := skipSpace(raw, 0)
	end, ok := scanValue(raw, i, 0)
	return ok && skipSpace(raw, end) == len(raw)
}
