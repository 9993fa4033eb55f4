package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tailscale/hujson"

	"github.com/tether-dev/tether/mcpchild"
)

// Config is a parsed mcp.json (Claude Desktop format, read as JWCC: comments
// and trailing commas allowed) with Tether's own optional per-server keys.
type Config struct {
	// Servers holds every enabled server, with ${VAR} already expanded.
	Servers map[string]mcpchild.Spec
	// Eras holds the enabled servers whose "era" key pins the protocol generation.
	Eras map[string]mcpchild.Era
	// Filters holds the enabled servers that have an "allow" or "deny" list.
	// A server not in the map exposes every tool (the zero ToolFilter).
	Filters map[string]ToolFilter
	// Disabled lists the servers skipped because of "disabled": true, sorted.
	Disabled []string
	// Missing lists "server: VAR" for every ${VAR} of an enabled server that
	// is set neither in the environment nor in the .env file.
	Missing []string
	// Entries is every server, enabled or not, in file order: what a UI lists
	// and what the engine diff-applies by ServerEntry.Hash.
	Entries []ServerEntry
}

// ServerKind is how a server is reached.
type ServerKind string

const (
	KindStdio ServerKind = "stdio" // a child process (Spec.Command)
	KindHTTP  ServerKind = "http"  // an HTTP MCP server (Spec.URL)
)

// ServerEntry is one server of mcp.json as Tether will run it.
type ServerEntry struct {
	Name   string
	Spec   mcpchild.Spec // ${VAR} expanded; Spec.Name == Name
	Era    mcpchild.Era  // "" = detect
	Filter ToolFilter
	// Isolate is "isolate" (IsolateNone when absent); MaxProcesses bounds
	// an isolated server's per-session processes (0 when not isolated).
	Isolate      Isolation
	MaxProcesses int
	Disabled     bool
	Kind         ServerKind
	Line         int // 1-based line of the server's name in mcp.json, for messages
}

// Hash changes whenever the server must be restarted for an edit to take
// effect: its spec (after ${VAR} expansion, so a changed .env counts), its
// pinned era and its tool filter. Disabled is not part of it: enabling and
// disabling are a start or a stop, which the engine sees directly.
func (e ServerEntry) Hash() string {
	f := ToolFilter{Allow: slices.Sorted(slices.Values(e.Filter.Allow)), Deny: slices.Sorted(slices.Values(e.Filter.Deny))}
	fb, err := json.Marshal(f)
	if err != nil {
		panic("config: marshal tool filter: " + err.Error()) // two string slices cannot fail
	}
	// The tag keeps its old package name: a hash must not change with a move.
	in := fmt.Appendf(nil, "app.ServerEntry/v1\nspec %s\nera %s\nfilter %s\n", e.Spec.Hash(), e.Era, fb)
	if e.Isolate == IsolateSession {
		// Only when set, so the hash of every other server stays as it was.
		in = fmt.Appendf(in, "isolate %s %d\n", e.Isolate, e.MaxProcesses)
	}
	sum := sha256.Sum256(in)
	return hex.EncodeToString(sum[:])
}

// Isolation is how a server's processes are shared by remote sessions
// (mcp.json "isolate").
type Isolation string

const (
	// IsolateNone: one warm process serves every session (the default).
	IsolateNone Isolation = "none"
	// IsolateSession: every session gets a process of its own, so the
	// server's requests to its client (sampling, elicitation, roots) always
	// reach the right one. "maxProcesses" bounds them.
	IsolateSession Isolation = "session"
)

// MaxProcessesLimit is the largest "maxProcesses" accepted.
const MaxProcessesLimit = 256

// ToolFilter decides which of a server's tools agents may see and call.
// Patterns are path.Match globs on tool names ("read_*", "*delete*").
type ToolFilter struct {
	Allow []string `json:"allow,omitempty"` // empty = every tool
	Deny  []string `json:"deny,omitempty"`  // checked first: deny wins
}

// Allows reports whether tool passes the filter. Patterns were validated
// when the config was parsed, so a match error cannot happen here.
func (f ToolFilter) Allows(tool string) bool {
	for _, p := range f.Deny {
		if ok, _ := path.Match(p, tool); ok {
			return false
		}
	}
	if len(f.Allow) == 0 {
		return true
	}
	for _, p := range f.Allow {
		if ok, _ := path.Match(p, tool); ok {
			return true
		}
	}
	return false
}

// IsZero reports whether the filter lets every tool through.
func (f ToolFilter) IsZero() bool { return len(f.Allow) == 0 && len(f.Deny) == 0 }

// serverJSON is one "mcpServers" value. Unknown keys ("type", other apps'
// settings) are ignored, not rejected, so configs written for other apps
// keep working.
type serverJSON struct {
	mcpchild.Spec
	Disabled bool     `json:"disabled,omitempty"`
	Era      string   `json:"era,omitempty"`
	Allow    []string `json:"allow,omitempty"`
	Deny     []string `json:"deny,omitempty"`
	Isolate  string   `json:"isolate,omitempty"`
	// MaxProcesses is a pointer so that an explicit 0 is refused, not
	// taken for "absent".
	MaxProcesses *int `json:"maxProcesses,omitempty"`
}

// Load reads and parses the mcp.json at path. ${VAR} expands from
// this process's environment, then from the .env file beside path.
func Load(path string) (*Config, error) {
	return loadWithEnv(path, filepath.Join(filepath.Dir(path), ".env"))
}

// loadWithEnv reads the mcp.json at path; ${VAR} expands from the
// environment first, then from envFile ("" or a missing file: no .env).
// Errors start with the file they are about.
func loadWithEnv(path, envFile string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	dotenv := map[string]string{}
	if envFile != "" {
		if dotenv, err = loadEnvFile(envFile); err != nil {
			return nil, err
		}
	}
	lookup := func(k string) (string, bool) {
		if v, ok := os.LookupEnv(k); ok {
			return v, true
		}
		v, ok := dotenv[k]
		return v, ok
	}
	cfg, err := Parse(data, lookup)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse parses mcp.json content. lookup expands ${VAR} references
// (nil expands nothing). Every error that has a place says "line L:C", since
// a byte offset is useless to someone editing the file by hand; errors.As
// with *configError gives the numbers to a UI.
func Parse(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	root, std, err := parseJWCC(data)
	if err != nil {
		return nil, err
	}
	top, ok := root.Value.(*hujson.Object)
	if !ok {
		return nil, errAt(data, root.StartOffset, nil, `the file must be an object: {"mcpServers": {...}}`)
	}
	servers, err := findMember(data, top, "mcpServers")
	if err != nil {
		return nil, err
	}
	cfg := &Config{
		Servers: map[string]mcpchild.Spec{},
		Eras:    map[string]mcpchild.Era{},
		Filters: map[string]ToolFilter{},
	}
	if servers == nil {
		if vs, _ := findMember(data, top, "servers"); vs != nil {
			return nil, errAt(data, vs.StartOffset, nil, `found VS Code's "servers" key: Tether reads "mcpServers" (rename the key, or import the file)`)
		}
		return cfg, nil // no servers yet is a valid config
	}
	if lit, ok := servers.Value.(hujson.Literal); ok && lit.Kind() == 'n' {
		return cfg, nil
	}
	obj, ok := servers.Value.(*hujson.Object)
	if !ok {
		return nil, errAt(data, servers.StartOffset, nil, `"mcpServers" must be an object of servers by name`)
	}
	seen := map[string]int{}
	for _, m := range obj.Members {
		name := m.Name.Value.(hujson.Literal).String()
		line, _ := position(data, int64(m.Name.StartOffset)+1)
		if first, dup := seen[name]; dup {
			return nil, errAt(data, m.Name.StartOffset, nil, fmt.Sprintf("server %q is defined twice (first on line %d)", name, first))
		}
		seen[name] = line
		e, err := parseServer(data, std, name, m.Name.StartOffset, m.Value, lookup)
		if err != nil {
			return nil, err
		}
		e.Line = line
		cfg.Entries = append(cfg.Entries, e.ServerEntry)
		if e.Disabled {
			cfg.Disabled = append(cfg.Disabled, name)
			continue
		}
		for _, v := range e.missing {
			cfg.Missing = append(cfg.Missing, name+": "+v)
		}
		cfg.Servers[name] = e.Spec
		if e.Era != "" {
			cfg.Eras[name] = e.Era
		}
		if !e.Filter.IsZero() {
			cfg.Filters[name] = e.Filter
		}
	}
	sort.Strings(cfg.Disabled)
	return cfg, nil
}

type parsedServer struct {
	ServerEntry
	missing []string
}

// parseServer decodes and validates one server. nameOff is where its name
// starts, so errors that are about the server as a whole point there.
func parseServer(data, std []byte, name string, nameOff int, v hujson.Value, lookup func(string) (string, bool)) (parsedServer, error) {
	fail := func(off int, err error, format string, args ...any) (parsedServer, error) {
		return parsedServer{}, errAt(data, off, err, fmt.Sprintf("server %q: ", name)+fmt.Sprintf(format, args...))
	}
	if err := validServerName(name); err != nil {
		return fail(nameOff, err, "%v", err)
	}
	if v.Value.Kind() != '{' {
		return fail(v.StartOffset, nil, `must be an object like {"command": "..."} or {"url": "..."}`)
	}
	var sj serverJSON
	if err := json.Unmarshal(std[v.StartOffset:v.EndOffset], &sj); err != nil {
		off, msg := describeJSONError(err)
		if off < 0 {
			return fail(v.StartOffset, err, "%s", msg)
		}
		return fail(v.StartOffset+int(off), err, "%s", msg)
	}
	switch {
	case sj.Command == "" && sj.URL == "":
		return fail(nameOff, nil, `needs a "command" (a local server) or a "url" (an HTTP server)`)
	case sj.Command != "" && sj.URL != "":
		return fail(nameOff, nil, `has both "command" and "url": keep one`)
	case sj.ShareStderr && sj.URL != "":
		return fail(nameOff, nil, `"shareStderr" is for a local server ("command"): an HTTP server has no stderr`)
	}
	var era mcpchild.Era
	switch sj.Era {
	case "":
	case string(mcpchild.Era2025), string(mcpchild.Era2026):
		era = mcpchild.Era(sj.Era)
	default:
		return fail(nameOff, nil, "era must be %q or %q, not %q", mcpchild.Era2025, mcpchild.Era2026, sj.Era)
	}
	isolate, maxProcs := IsolateNone, 0
	switch Isolation(sj.Isolate) {
	case "", IsolateNone:
	case IsolateSession:
		isolate, maxProcs = IsolateSession, mcpchild.DefaultMaxProcesses
	default:
		return fail(nameOff, nil, "isolate must be %q or %q, not %q", IsolateNone, IsolateSession, sj.Isolate)
	}
	if n := sj.MaxProcesses; n != nil {
		switch {
		case isolate != IsolateSession:
			return fail(nameOff, nil, `"maxProcesses" applies only with "isolate": "session"`)
		case *n < 1 || *n > MaxProcessesLimit:
			return fail(nameOff, nil, "maxProcesses must be 1 to %d, not %d", MaxProcessesLimit, *n)
		}
		maxProcs = *n
	}
	for _, list := range [][]string{sj.Allow, sj.Deny} {
		for _, p := range list {
			if _, err := path.Match(p, ""); err != nil {
				return fail(nameOff, err, "tool pattern %q is not a valid glob", p)
			}
		}
	}
	spec := sj.Spec
	var missing []string
	if lookup != nil {
		spec, missing = spec.Expand(lookup)
	}
	spec.Name = name
	kind := KindStdio
	if sj.URL != "" {
		kind = KindHTTP
	}
	return parsedServer{
		ServerEntry: ServerEntry{
			Name:         name,
			Spec:         spec,
			Era:          era,
			Filter:       ToolFilter{Allow: sj.Allow, Deny: sj.Deny},
			Isolate:      isolate,
			MaxProcesses: maxProcs,
			Disabled:     sj.Disabled,
			Kind:         kind,
		},
		missing: missing,
	}, nil
}

// validServerName reports whether name can be a server name. Names become
// a path segment of the relay URL (/mcp/{dev}/{server}) and a log file
// name, so they are limited to characters that need no escaping anywhere.
func validServerName(name string) error {
	if name == "" {
		return errors.New("a server name cannot be empty")
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%q cannot be a server name", name)
	}
	for _, r := range name {
		if !isNameChar(r) {
			return fmt.Errorf("name %q has %q: use only letters, digits, '-', '_' and '.' (it becomes part of a URL)", name, r)
		}
	}
	return nil
}

func isNameChar(r rune) bool {
	return r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}

// configError is a problem at a place in a config file. Line and Col are
// 1-based (0 when the problem has no single place).
type configError struct {
	Line, Col int
	Msg       string
	Err       error // the underlying error, if any
}

func (e *configError) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d:%d: %s", e.Line, e.Col, e.Msg)
}

func (e *configError) Unwrap() error { return e.Err }

// errAt builds a configError for the byte at offset off of data.
func errAt(data []byte, off int, err error, msg string) error {
	line, col := position(data, int64(off)+1)
	return &configError{Line: line, Col: col, Msg: msg, Err: err}
}

var hujsonErrRE = regexp.MustCompile(`^hujson: line (\d+), column (\d+): (.*)$`)

// parseJWCC parses JSON with comments and trailing commas. It returns the
// syntax tree (for file order and in-place edits) and the same bytes as
// standard JSON: comments and trailing commas become spaces, so every byte
// offset, line and column in std is the same as in data.
func parseJWCC(data []byte) (hujson.Value, []byte, error) {
	// A UTF-8 byte order mark (Windows Notepad writes one) is not JSON;
	// three spaces keep every offset where it was.
	if bytes.HasPrefix(data, []byte("\ufeff")) {
		data = append([]byte("   "), data[3:]...)
	}
	root, err := hujson.Parse(data)
	if err != nil {
		if m := hujsonErrRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			return hujson.Value{}, nil, &configError{Line: line, Col: col, Msg: m[3], Err: err}
		}
		return hujson.Value{}, nil, &configError{Msg: err.Error(), Err: err}
	}
	// Standardize parses again rather than working on root.Clone():
	// Clone drops the marker of a trailing comma, so the comma would be
	// removed instead of blanked and every later offset would shift.
	std, err := hujson.Standardize(data)
	if err != nil || len(std) != len(data) {
		return hujson.Value{}, nil, &configError{Msg: "internal error: comment stripping moved offsets", Err: err}
	}
	return root, std, nil
}

// findMember returns the value of key in obj, nil if absent, and an error
// if the key appears twice (JSON parsers disagree on which one wins).
func findMember(data []byte, obj *hujson.Object, key string) (*hujson.Value, error) {
	var found *hujson.Value
	for i := range obj.Members {
		m := &obj.Members[i]
		if m.Name.Value.(hujson.Literal).String() != key {
			continue
		}
		if found != nil {
			return nil, errAt(data, m.Name.StartOffset, nil, fmt.Sprintf("%q appears twice", key))
		}
		found = &m.Value
	}
	return found, nil
}

// describeJSONError turns an encoding/json error into a message for a
// person (no Go type names) and the offset it is about (-1 if none).
func describeJSONError(err error) (int64, string) {
	var typ *json.UnmarshalTypeError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &typ):
		field := typ.Field
		if i := strings.LastIndexByte(field, '.'); i >= 0 {
			field = field[i+1:]
		}
		want := "a " + typ.Type.Kind().String()
		switch typ.Type.Kind() {
		case reflect.Slice:
			want = "a list of " + typ.Type.Elem().Kind().String() + "s"
		case reflect.Map:
			want = "an object of " + typ.Type.Elem().Kind().String() + "s"
		case reflect.Bool:
			want = "true or false"
		case reflect.Int:
			want = "a whole number"
		}
		if field == "" {
			return typ.Offset - 1, fmt.Sprintf("expected %s, not a %s", want, typ.Value)
		}
		// Offset is just past the value; point at its last byte.
		return typ.Offset - 1, fmt.Sprintf("%q: expected %s, not a %s", field, want, typ.Value)
	case errors.As(err, &syn):
		return syn.Offset - 1, syn.Error()
	}
	return -1, err.Error()
}

// position returns the 1-based line and column of byte offset off. The
// decoder's offset points just past the offending byte, so step back one.
func position(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off > 0 {
		off--
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}
