package mcpchild

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"
)

// Spec describes how to start (or reach) one MCP server, as in mcp.json
// (Claude Desktop format). A Spec with URL set is an HTTP server; otherwise
// Command is a stdio server.
type Spec struct {
	Name    string            `json:"-"`
	Command string            `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Cwd     string            `json:"cwd,omitempty"`
	URL     string            `json:"url,omitempty"`     // Streamable HTTP MCP server
	Headers map[string]string `json:"headers,omitempty"` // sent with every HTTP request; never logged
	// ShareStderr lets remote clients see the server's full error text,
	// stderr lines included, instead of a classified one (see Failure).
	// Off by default: stderr has been seen to carry API keys.
	ShareStderr bool `json:"shareStderr,omitempty"`
}

// Hash is a stable sha256 hex digest of everything that decides how the
// server runs, so that hot reload restarts a server only when its spec really
// changed. Name is excluded: the config diff matches servers by name already.
// encoding/json writes map keys sorted and omits empty fields, so map order,
// nil versus empty slices and nil versus empty maps never change the hash.
func (s Spec) Hash() string {
	b, err := json.Marshal(s)
	if err != nil {
		// Spec holds only strings, slices and maps of strings: Marshal cannot fail.
		panic("mcpchild: marshal spec: " + err.Error())
	}
	sum := sha256.Sum256(append([]byte("mcpchild.Spec/v1\n"), b...))
	return hex.EncodeToString(sum[:])
}

// Expand returns a copy with ${VAR}, ${VAR:-default} and $VAR in Command,
// Args, Env values, Cwd, URL and Header values expanded via lookup. Unknown
// variables expand to "" (or to the default) and are reported, once each in
// order of first use, in the returned list of missing names (a variable with
// a default is not reported). The rules are docker-compose's, which many
// users know: "$$" is a literal "$", and a "$" that does not start a
// variable reference stays as it is (a regex "^x$", "${not a name}").
func (s Spec) Expand(lookup func(string) (string, bool)) (Spec, []string) {
	e := expander{lookup: lookup, seen: map[string]bool{}}
	out := s
	out.Command = e.expand(s.Command)
	out.Cwd = e.expand(s.Cwd)
	out.URL = e.expand(s.URL)
	if s.Args != nil {
		out.Args = make([]string, len(s.Args))
		for i, a := range s.Args {
			out.Args[i] = e.expand(a)
		}
	}
	out.Env = e.expandMap(s.Env)
	out.Headers = e.expandMap(s.Headers)
	return out, e.missing
}

type expander struct {
	lookup  func(string) (string, bool)
	seen    map[string]bool
	missing []string
}

func (e *expander) expandMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	// Sorted keys, so the list of missing names comes out in a stable order.
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out[k] = e.expand(m[k])
	}
	return out
}

func (e *expander) expand(s string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		if s[i+1] == '$' {
			b.WriteByte('$')
			i += 2
			continue
		}
		if s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				b.WriteString(s[i:]) // unterminated: keep literally
				break
			}
			body := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(body, ":-")
			if !validName(name) {
				b.WriteString(s[i : i+3+end]) // "${not a name}": keep literally
			} else {
				b.WriteString(e.value(name, def, hasDef))
			}
			i += 3 + end
			continue
		}
		n := nameLen(s[i+1:])
		if n == 0 {
			b.WriteByte('$')
			i++
			continue
		}
		b.WriteString(e.value(s[i+1:i+1+n], "", false))
		i += 1 + n
	}
	return b.String()
}

func (e *expander) value(name, def string, hasDef bool) string {
	if v, ok := e.lookup(name); ok && (v != "" || !hasDef) {
		return v
	}
	if hasDef {
		return def // like the shell's ":-": empty or unset takes the default
	}
	if !e.seen[name] {
		e.seen[name] = true
		e.missing = append(e.missing, name)
	}
	return ""
}

// nameLen is the length of the variable name ([A-Za-z_][A-Za-z0-9_]*) at the
// start of s, or 0.
func nameLen(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return i
		}
	}
	return len(s)
}

func validName(s string) bool { return s != "" && nameLen(s) == len(s) }
