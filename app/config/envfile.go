package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
)

// loadEnvFile reads a .env file (see parseEnvFile). A missing file is an
// empty set of variables, not an error: the .env is optional.
func loadEnvFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read env file: %w", err)
	}
	vars, err := parseEnvFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return vars, nil
}

// parseEnvFile parses KEY=VALUE lines in the common dotenv dialect: blank
// lines and "#" comments are skipped, an "export " prefix is allowed, a
// value may be 'single quoted' (taken literally) or "double quoted" (with
// \n, \t, \" and \\ escapes), and an unquoted value ends at " #". Nothing is
// evaluated: no $VAR expansion, no command substitution, so reading the file
// can never run anything. A later KEY replaces an earlier one.
//
// Errors name the line but never echo its content: .env files hold secrets.
func parseEnvFile(data []byte) (map[string]string, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	vars := map[string]string{}
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			line = strings.TrimSpace(rest)
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: expected KEY=VALUE", n)
		}
		key = strings.TrimSpace(key)
		if !validEnvName(key) {
			return nil, fmt.Errorf("line %d: %q is not a variable name (letters, digits and _, not starting with a digit)", n, key)
		}
		v, err := envValue(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", n, key, err)
		}
		vars[key] = v
	}
	return vars, nil
}

// envValue decodes the right-hand side of one KEY=VALUE line.
func envValue(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	switch q := s[0]; q {
	case '\'', '"':
		var b strings.Builder
		i := 1
		for ; i < len(s) && s[i] != q; i++ {
			c := s[i]
			if q == '"' && c == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					c = '\n'
				case 'r':
					c = '\r'
				case 't':
					c = '\t'
				case '"', '\\', '$':
					c = s[i]
				default:
					b.WriteByte('\\') // unknown escape: keep it as written
					c = s[i]
				}
			}
			b.WriteByte(c)
		}
		if i == len(s) {
			return "", fmt.Errorf("missing closing %c quote (values must fit on one line)", q)
		}
		if rest := strings.TrimSpace(s[i+1:]); rest != "" && rest[0] != '#' {
			return "", fmt.Errorf("unexpected text after the closing %c quote", q)
		}
		return b.String(), nil
	}
	// Unquoted: a " #" starts a comment; a "#" inside a word (a URL
	// fragment, a password) does not.
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, "\t#"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s), nil
}

func validEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}
