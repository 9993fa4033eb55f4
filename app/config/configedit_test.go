package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestSetServerDisabled(t *testing.T) {
	t.Parallel()
	orig := `// my config
{
  "mcpServers": {
    // the GitHub one
    "github": {
      "command": "npx", // via npx
      "args": ["-y", "@modelcontextprotocol/server-github"]
    },
    "compact": {"command": "x"},
    "trailing": {
      "url": "http://127.0.0.1:9/mcp", // same-line comment
    },
    "off": {
      "command": "y",
      "disabled": true, /* keep me */
    },
  },
}
`
	path := filepath.Join(t.TempDir(), "mcp.json")
	write(t, path, orig)
	if runtime.GOOS != "windows" {
		if err := os.Chmod(path, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		name     string
		disabled bool
	}{{"github", true}, {"compact", true}, {"trailing", true}, {"off", false}} {
		if err := SetServerDisabled(path, step.name, step.disabled); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
	}
	want := `// my config
{
  "mcpServers": {
    // the GitHub one
    "github": {
      "command": "npx", // via npx
      "args": ["-y", "@modelcontextprotocol/server-github"],
      "disabled": true
    },
    "compact": {"command": "x", "disabled": true},
    "trailing": {
      "url": "http://127.0.0.1:9/mcp", // same-line comment
      "disabled": true,
    },
    "off": {
      "command": "y",
      "disabled": false, /* keep me */
    },
  },
}
`
	if got := read(t, path); got != want {
		t.Errorf("edited:\n%s\nwant:\n%s", got, want)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Disabled, ",") != "compact,github,trailing" || len(cfg.Servers) != 1 {
		t.Errorf("disabled = %v servers = %v", cfg.Disabled, cfg.Servers)
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o640 {
		t.Errorf("mode not kept: %v", fi.Mode().Perm())
	}
	// Enabling a server with no "disabled" key changes nothing.
	before, _ := os.Stat(path)
	if err := SetServerDisabled(path, "off", false); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(path); !os.SameFile(before, after) {
		t.Error("a no-op edit rewrote the file")
	}
	// Unknown server: an error, file untouched.
	if err := SetServerDisabled(path, "nope", true); err == nil || !strings.Contains(err.Error(), `no server "nope"`) {
		t.Errorf("unknown server: %v", err)
	}
	if read(t, path) != want {
		t.Error("file changed by a failed edit")
	}
	// A file with a syntax error is not edited.
	write(t, path, "{\"mcpServers\": {\"a\": {\"command\": }}}")
	if err := SetServerDisabled(path, "a", true); err == nil || !strings.Contains(err.Error(), "line 1:") {
		t.Errorf("broken file: %v", err)
	}
	if err := SetServerDisabled(filepath.Join(t.TempDir(), "none.json"), "a", true); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestSetServerDisabledSymlink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := filepath.Join(dir, "dotfiles", "mcp.json")
	write(t, target, `{"mcpServers": {"a": {"command": "x"}}}`)
	link := filepath.Join(dir, "mcp.json")
	if err := os.Symlink(target, link); err != nil {
		if runtime.GOOS == "windows" {
			t.Logf("no symlink test: creating symlinks needs Developer Mode on Windows: %v", err)
			return
		}
		t.Fatal(err)
	}
	if err := SetServerDisabled(link, "a", true); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlink replaced: %v", err)
	}
	if got := read(t, target); got != `{"mcpServers": {"a": {"command": "x", "disabled": true}}}` {
		t.Errorf("target = %s", got)
	}
}

func TestAddServers(t *testing.T) {
	t.Parallel()
	entries := map[string]json.RawMessage{
		"zed":   json.RawMessage(`{"command":"z","args":["1"],"disabled":true}`),
		"alpha": json.RawMessage(`{"url":"https://a.example/mcp?x=1&y=2","disabled":true}`),
		"keep":  json.RawMessage(`{"command":"new"}`),
	}
	cases := map[string]struct{ in, want string }{
		"existing": {
			in: `{
  // mine
  "mcpServers": {
    "keep": {"command": "old"}, // stays
  },
}
`,
			want: `{
  // mine
  "mcpServers": {
    "keep": {"command": "old"}, // stays
    "alpha": {
      "url": "https://a.example/mcp?x=1&y=2",
      "disabled": true
    },
    "zed": {
      "command": "z",
      "args": [
        "1"
      ],
      "disabled": true
    },
  },
}
`,
		},
		"empty object": {
			in: "{}",
			want: `{
  "mcpServers": {
    "alpha": {
      "url": "https://a.example/mcp?x=1&y=2",
      "disabled": true
    },
    "keep": {
      "command": "new"
    },
    "zed": {
      "command": "z",
      "args": [
        "1"
      ],
      "disabled": true
    }
  }
}`,
		},
		"tabs": {
			in:   "{\n\t\"other\": 1,\n\t\"mcpServers\": {\n\t\t// none yet\n\t}\n}\n",
			want: "{\n\t\"other\": 1,\n\t\"mcpServers\": {\n\t\t// none yet\n\t\t\"alpha\": {\n\t\t\t\"url\": \"https://a.example/mcp?x=1&y=2\",\n\t\t\t\"disabled\": true\n\t\t},\n\t\t\"keep\": {\n\t\t\t\"command\": \"new\"\n\t\t},\n\t\t\"zed\": {\n\t\t\t\"command\": \"z\",\n\t\t\t\"args\": [\n\t\t\t\t\"1\"\n\t\t\t],\n\t\t\t\"disabled\": true\n\t\t}\n\t}\n}\n",
		},
	}
	for name, c := range cases {
		path := filepath.Join(t.TempDir(), "mcp.json")
		write(t, path, c.in)
		added, err := addServers(path, entries)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := read(t, path); got != c.want {
			t.Errorf("%s:\n%s\nwant:\n%s", name, got, c.want)
		}
		wantAdded := "alpha,keep,zed"
		if name == "existing" {
			wantAdded = "alpha,zed"
		}
		if strings.Join(added, ",") != wantAdded {
			t.Errorf("%s: added = %v", name, added)
		}
		if _, err := Load(path); err != nil {
			t.Errorf("%s: result does not parse: %v", name, err)
		}
	}
	// Into the example: still valid, comments kept, nothing enabled.
	path := filepath.Join(t.TempDir(), "mcp.json")
	if _, err := EnsureExample(path); err != nil {
		t.Fatal(err)
	}
	if _, err := addServers(path, entries); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("example + added: %v\n%s", err, read(t, path))
	}
	if len(cfg.Entries) != 6 || len(cfg.Servers) != 1 || !strings.Contains(read(t, path), "// A test server with many tools.") {
		t.Errorf("entries=%d servers=%v", len(cfg.Entries), cfg.Servers)
	}
	// Bad input is refused before anything is written.
	before := read(t, path)
	for _, bad := range []map[string]json.RawMessage{
		{"bad name": json.RawMessage(`{"command":"x"}`)},
		{"ok": json.RawMessage(`[1]`)},
	} {
		if _, err := addServers(path, bad); err == nil {
			t.Errorf("accepted %v", bad)
		}
	}
	if read(t, path) != before {
		t.Error("a refused add changed the file")
	}
}
