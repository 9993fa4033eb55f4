package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-dev/tether/mcpchild"
)

func TestParseConfig(t *testing.T) {
	data := []byte(`{
  "mcpServers": {
    "a": {"command": "npx", "args": ["-y", "x"], "env": {"K": "${HOME_X}"}, "cwd": "/tmp", "era": "2025", "allow": ["ignored"]},
    "b": {"command": "uvx", "disabled": true},
    "c": {"command": "srv", "args": ["${MISSING_VAR}"]}
  },
  "somethingElse": 1
}`)
	env := map[string]string{"HOME_X": "hx"}
	cfg, err := ParseConfig(data, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Servers["a"]
	if a.Name != "a" || a.Command != "npx" || strings.Join(a.Args, " ") != "-y x" || a.Env["K"] != "hx" || a.Cwd != "/tmp" {
		t.Errorf("a = %+v", a)
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
}

func TestParseConfigErrors(t *testing.T) {
	cases := map[string]struct{ in, want string }{
		"syntax":    {"{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\",}\n  }\n}", "line 3:"},
		"type":      {"{\"mcpServers\": {\"a\": {\"command\": 5}}}", "line 1:"},
		"era":       {`{"mcpServers": {"a": {"command": "x", "era": "2024"}}}`, `era must be "2025" or "2026"`},
		"nocmd":     {`{"mcpServers": {"a": {"args": []}}}`, `needs a "command"`},
		"notobject": {`[1]`, "line 1:"},
	}
	for name, c := range cases {
		_, err := ParseConfig([]byte(c.in), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
	// The column points at the offending character: the "}" after the comma (column 26).
	_, err := ParseConfig([]byte("{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\",}\n  }\n}"), nil)
	if err == nil || !strings.Contains(err.Error(), "line 3:26") {
		t.Errorf("position: %v", err)
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "nope.json"))
	if err == nil || !os.IsNotExist(unwrapAll(err)) {
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
