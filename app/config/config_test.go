package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-dev/tether/mcpchild"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	data := []byte(`{
  "mcpServers": {
    "a": {"command": "npx", "args": ["-y", "x"], "env": {"K": "${HOME_X}"}, "cwd": "/tmp", "era": "2025", "allow": ["read_*"], "shareStderr": true},
    "b": {"command": "uvx", "disabled": true},
    "c": {"command": "srv", "args": ["${MISSING_VAR}"], "unknownKey": {"kept": "ignored"}}
  },
  "somethingElse": 1
}`)
	env := map[string]string{"HOME_X": "hx"}
	cfg, err := Parse(data, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Servers["a"]
	if a.Name != "a" || a.Command != "npx" || strings.Join(a.Args, " ") != "-y x" || a.Env["K"] != "hx" || a.Cwd != "/tmp" {
		t.Errorf("a = %+v", a)
	}
	if !a.ShareStderr || cfg.Servers["c"].ShareStderr {
		t.Errorf("shareStderr: a %v, c %v", a.ShareStderr, cfg.Servers["c"].ShareStderr)
	}
	if cfg.Eras["a"] != mcpchild.Era2025 || cfg.Eras["c"] != "" {
		t.Errorf("eras = %v", cfg.Eras)
	}
	if _, ok := cfg.Servers["b"]; ok || strings.Join(cfg.Disabled, ",") != "b" {
		t.Errorf("disabled server not skipped: %v %v", cfg.Servers, cfg.Disabled)
	}
	if strings.Join(cfg.Missing, ",") != "c: MISSING_VAR" {
		t.Errorf("missing = %v", cfg.Missing)
	}
	if f := cfg.Filters["a"]; strings.Join(f.Allow, ",") != "read_*" {
		t.Errorf("filters = %v", cfg.Filters)
	}
	if _, ok := cfg.Filters["c"]; ok {
		t.Errorf("c has no filter but is in Filters")
	}
	var names []string
	for _, e := range cfg.Entries {
		names = append(names, e.Name)
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Errorf("entries = %v", names)
	}
	if b := cfg.Entries[1]; !b.Disabled || b.Kind != "stdio" || b.Spec.Command != "uvx" || b.Line != 4 {
		t.Errorf("entry b = %+v", b)
	}
}

// JWCC: comments and trailing commas, as VS Code and our example write them.
func TestParseConfigJWCC(t *testing.T) {
	t.Parallel()
	data := []byte(`// my servers
{
  /* block
     comment */
  "mcpServers": {
    "zeta": {"url": "https://x.example/mcp", "headers": {"A": "b"},}, // http
    "alpha": {
      "command": "node", // trailing comment
      "args": ["s.js",],
    },
  },
}
`)
	cfg, err := Parse(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Entries) != 2 || cfg.Entries[0].Name != "zeta" || cfg.Entries[1].Name != "alpha" {
		t.Fatalf("entries not in file order: %+v", cfg.Entries)
	}
	if z := cfg.Entries[0]; z.Kind != "http" || z.Spec.URL != "https://x.example/mcp" || z.Spec.Headers["A"] != "b" || z.Line != 6 {
		t.Errorf("zeta = %+v", z)
	}
	if a := cfg.Servers["alpha"]; a.Command != "node" || strings.Join(a.Args, ",") != "s.js" {
		t.Errorf("alpha = %+v", a)
	}
}

func TestParseConfigEmpty(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`{}`, `{"mcpServers": {}}`, `{"mcpServers": null}`, "// nothing yet\n{\n}\n"} {
		cfg, err := Parse([]byte(in), nil)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if len(cfg.Servers) != 0 || len(cfg.Entries) != 0 {
			t.Errorf("%q: servers %v", in, cfg.Servers)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ in, want string }{
		"syntax":     {"{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\" \"args\": []}\n  }\n}", "line 3:"},
		"eof":        {"{\n  \"mcpServers\": {\n", "line 3:1: parsing value: unexpected EOF"},
		"type":       {"{\"mcpServers\": {\"a\": {\"command\": 5}}}", `line 1:34: server "a": "command": expected a string, not a number`},
		"typebool":   {"{\"mcpServers\": {\n \"a\": {\"command\": \"x\", \"disabled\": \"yes\"}}}", `line 2:`},
		"envtype":    {`{"mcpServers": {"a": {"command": "x", "env": {"K": 1}}}}`, `"env": expected a string`},
		"era":        {`{"mcpServers": {"a": {"command": "x", "era": "2024"}}}`, `era must be "2025" or "2026"`},
		"nocmd":      {`{"mcpServers": {"a": {"args": []}}}`, `needs a "command"`},
		"both":       {`{"mcpServers": {"a": {"command": "x", "url": "http://h/"}}}`, `has both "command" and "url"`},
		"sharehttp":  {`{"mcpServers": {"a": {"url": "http://h/", "shareStderr": true}}}`, `"shareStderr" is for a local server`},
		"sharetype":  {`{"mcpServers": {"a": {"command": "x", "shareStderr": "yes"}}}`, `"shareStderr": expected`},
		"notobject":  {`[1]`, "line 1:1:"},
		"srvnotobj":  {`{"mcpServers": {"a": "npx"}}`, `server "a": must be an object`},
		"serversarr": {`{"mcpServers": []}`, `"mcpServers" must be an object`},
		"badname":    {`{"mcpServers": {"my server": {"command": "x"}}}`, `server "my server": name "my server" has ' '`},
		"slashname":  {`{"mcpServers": {"a/b": {"command": "x"}}}`, `has '/'`},
		"dotdot":     {`{"mcpServers": {"..": {"command": "x"}}}`, `cannot be a server name`},
		"emptyname":  {`{"mcpServers": {"": {"command": "x"}}}`, `cannot be empty`},
		"badglob":    {`{"mcpServers": {"a": {"command": "x", "deny": ["[abc"]}}}`, `server "a": tool pattern "[abc" is not a valid glob`},
		"allowtype":  {`{"mcpServers": {"a": {"command": "x", "allow": "read_*"}}}`, `"allow": expected a list of strings`},
		"dup":        {"{\"mcpServers\": {\n\"a\": {\"command\": \"x\"},\n\"a\": {\"command\": \"y\"}}}", `line 3:1: server "a" is defined twice (first on line 2)`},
		"vscode":     {`{"servers": {"a": {"command": "x"}}}`, `VS Code's "servers" key`},
		"isolate":    {`{"mcpServers": {"a": {"command": "x", "isolate": "process"}}}`, `isolate must be "none" or "session", not "process"`},
		"maxzero":    {`{"mcpServers": {"a": {"command": "x", "isolate": "session", "maxProcesses": 0}}}`, `maxProcesses must be 1 to 256, not 0`},
		"maxbig":     {`{"mcpServers": {"a": {"command": "x", "isolate": "session", "maxProcesses": 257}}}`, `maxProcesses must be 1 to 256, not 257`},
		"maxshared":  {`{"mcpServers": {"a": {"command": "x", "maxProcesses": 2}}}`, `"maxProcesses" applies only with "isolate": "session"`},
		"maxtype":    {`{"mcpServers": {"a": {"command": "x", "isolate": "session", "maxProcesses": "2"}}}`, `"maxProcesses": expected a whole number, not a string`},
	}
	for name, c := range cases {
		_, err := Parse([]byte(c.in), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
	// The column points at the offending character: the second string (column 26).
	_, err := Parse([]byte("{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\" \"args\": []}\n  }\n}"), nil)
	var ce *configError
	if !errors.As(err, &ce) || ce.Line != 3 || ce.Col != 26 {
		t.Errorf("position: %v (%+v)", err, ce)
	}
	// A comment does not shift the position of a later error.
	_, err = Parse([]byte("{ /* a long comment here */ \"mcpServers\": {\"a\": {\"command\": true}}}"), nil)
	if err == nil || !strings.Contains(err.Error(), "line 1:64:") {
		t.Errorf("position after comment: %v", err)
	}
}

func TestParseConfigBOM(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte("\ufeff{\"mcpServers\": {\"a\": {\"command\": \"x\"}}}"), nil)
	if err != nil || cfg.Servers["a"].Command != "x" {
		t.Fatalf("BOM: %v %+v", err, cfg)
	}
}

func TestToolFilter(t *testing.T) {
	t.Parallel()
	f := ToolFilter{Allow: []string{"read_*", "list_*"}, Deny: []string{"read_secret*"}}
	for tool, want := range map[string]bool{
		"read_file": true, "list_dir": true, "read_secrets": false, "write_file": false, "": false,
	} {
		if got := f.Allows(tool); got != want {
			t.Errorf("Allows(%q) = %v, want %v", tool, got, want)
		}
	}
	if !(ToolFilter{}).Allows("anything") {
		t.Error("zero filter must allow everything")
	}
	if (ToolFilter{Deny: []string{"*"}}).Allows("x") {
		t.Error("deny * must deny everything")
	}
	if !(ToolFilter{Deny: []string{"rm"}}).Allows("ls") {
		t.Error("deny-only filter must allow the rest")
	}
}

func TestServerEntryHash(t *testing.T) {
	t.Parallel()
	base := `{"mcpServers": {"a": {"command": "x", "args": ["1"], "allow": ["r*", "l*"]%s}}}`
	hash := func(extra string) string {
		t.Helper()
		cfg, err := Parse([]byte(strings.Replace(base, "%s", extra, 1)), func(k string) (string, bool) { return "v-" + k, true })
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Entries[0].Hash()
	}
	h0 := hash("")
	if hash(`, "disabled": false`) != h0 || hash(`, "type": "stdio"`) != h0 {
		t.Error("hash changed for an edit that does not change how the server runs")
	}
	if hash(`, "isolate": "none"`) != h0 {
		t.Error(`"isolate": "none" (the default) changed the hash`)
	}
	for _, extra := range []string{`, "era": "2026"`, `, "deny": ["w*"]`, `, "env": {"A": "b"}`, `, "cwd": "/"`, `, "isolate": "session"`} {
		if hash(extra) == h0 {
			t.Errorf("hash unchanged by %s", extra)
		}
	}
	if hash(`, "isolate": "session", "maxProcesses": 3`) == hash(`, "isolate": "session"`) {
		t.Error("hash unchanged by maxProcesses")
	}
	// Allow order does not matter.
	e := ServerEntry{Spec: mcpchild.Spec{Command: "x"}, Filter: ToolFilter{Allow: []string{"a", "b"}}}
	e2 := e
	e2.Filter = ToolFilter{Allow: []string{"b", "a"}}
	if e.Hash() != e2.Hash() {
		t.Error("allow order changed the hash")
	}
	// A changed variable value changes the hash (the .env was edited).
	cfg1, _ := Parse([]byte(`{"mcpServers": {"a": {"command": "${X}"}}}`), func(string) (string, bool) { return "1", true })
	cfg2, _ := Parse([]byte(`{"mcpServers": {"a": {"command": "${X}"}}}`), func(string) (string, bool) { return "2", true })
	if cfg1.Entries[0].Hash() == cfg2.Entries[0].Hash() {
		t.Error("hash ignores the expanded value")
	}
}

func TestLoadConfigWithDotEnv(t *testing.T) {
	dir := t.TempDir()
	p := struct{ MCPJSON, EnvFile string }{filepath.Join(dir, "mcp.json"), filepath.Join(dir, ".env")}
	t.Setenv("TETHER_TEST_FROM_ENV", "env-wins")
	write(t, p.EnvFile, "# secrets\nexport API_KEY='k 1'\nTETHER_TEST_FROM_ENV=dotenv-loses\n")
	write(t, p.MCPJSON, `{"mcpServers": {
  "s": {"command": "x", "env": {"KEY": "${API_KEY}", "E": "${TETHER_TEST_FROM_ENV}", "M": "${NOPE_NOT_SET}"}},
  "off": {"command": "y", "args": ["${ALSO_NOT_SET}"], "disabled": true}
}}`)
	for _, load := range []func() (*Config, error){
		func() (*Config, error) { return loadWithEnv(p.MCPJSON, p.EnvFile) },
		func() (*Config, error) { return Load(p.MCPJSON) },
	} {
		cfg, err := load()
		if err != nil {
			t.Fatal(err)
		}
		env := cfg.Servers["s"].Env
		if env["KEY"] != "k 1" || env["E"] != "env-wins" || env["M"] != "" {
			t.Errorf("env = %v", env)
		}
		// Missing variables of disabled servers are not worth a warning.
		if strings.Join(cfg.Missing, ",") != "s: NOPE_NOT_SET" {
			t.Errorf("missing = %v", cfg.Missing)
		}
	}
	// A broken .env is an error that names the file and line, not the value.
	write(t, p.EnvFile, "OK=1\nthis line is broken secret123\n")
	_, err := loadWithEnv(p.MCPJSON, p.EnvFile)
	if err == nil || !strings.Contains(err.Error(), p.EnvFile+": line 2") || strings.Contains(err.Error(), "secret123") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadConfigErrorNamesFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "mcp.json")
	write(t, path, "{\n  \"mcpServers\": {\n    \"a\": {\"command\": }\n  }\n}\n")
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+": line 3:22: invalid character '}'") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "nope.json"))
	if err == nil || !os.IsNotExist(unwrapAll(err)) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not-exist", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseIsolate(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(`{"mcpServers": {
		"shared": {"command": "x"},
		"none": {"command": "x", "isolate": "none"},
		"iso": {"command": "x", "isolate": "session"},
		"iso3": {"command": "x", "isolate": "session", "maxProcesses": 3},
		"web": {"url": "http://h/", "isolate": "session", "maxProcesses": 256}
	}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		iso Isolation
		max int
	}{
		"shared": {IsolateNone, 0}, "none": {IsolateNone, 0},
		"iso": {IsolateSession, mcpchild.DefaultMaxProcesses}, "iso3": {IsolateSession, 3}, "web": {IsolateSession, 256},
	}
	for _, e := range cfg.Entries {
		if w := want[e.Name]; e.Isolate != w.iso || e.MaxProcesses != w.max {
			t.Errorf("%s: isolate %q, maxProcesses %d; want %q, %d", e.Name, e.Isolate, e.MaxProcesses, w.iso, w.max)
		}
	}
}
