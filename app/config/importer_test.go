package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestImportCandidates(t *testing.T) {
	t.Parallel()
	home := filepath.Join("/", "home", "u")
	want := map[string][]string{
		"linux": {
			filepath.Join(home, ".config", "Claude", "claude_desktop_config.json"),
			filepath.Join(home, ".cursor", "mcp.json"),
			filepath.Join(home, ".config", "Code", "User", "mcp.json"),
		},
		"darwin": {
			filepath.Join(home, "Library", "Application Support", "Claude", "claude_desktop_config.json"),
			filepath.Join(home, ".cursor", "mcp.json"),
			filepath.Join(home, "Library", "Application Support", "Code", "User", "mcp.json"),
		},
		"windows": {
			filepath.Join(home, "AppData", "Roaming", "Claude", "claude_desktop_config.json"),
			filepath.Join(home, ".cursor", "mcp.json"),
			filepath.Join(home, "AppData", "Roaming", "Code", "User", "mcp.json"),
		},
	}
	for goos, paths := range want {
		got := ImportCandidates(home, goos)
		if len(got) != 3 || got[0].App != AppClaudeDesktop || got[1].App != AppCursor || got[2].App != AppVSCode {
			t.Fatalf("%s: %+v", goos, got)
		}
		for i, p := range paths {
			if got[i].Path != p {
				t.Errorf("%s %s: %q, want %q", goos, got[i].App, got[i].Path, p)
			}
		}
	}
}

func TestImportServers(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	srcs := ImportCandidates(home, "linux")
	write(t, srcs[0].Path, `{
  "globalShortcut": "Ctrl+Space",
  "mcpServers": {
    "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"], "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_SECRET"}},
    "fetch": {"command": "uvx", "args": ["mcp-server-fetch"]},
    "my files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
    "broken": {"args": ["x"]},
    "badenv": {"command": "x", "env": {"N": 1}}
  }
}`)
	write(t, srcs[1].Path, `{
  "mcpServers": {
    "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"], "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_SECRET"}},
    "fetch": {"command": "uvx", "args": ["mcp-server-fetch", "--ignore-robots-txt"]},
    "linear": {"url": "https://mcp.linear.app/mcp?a=1&b=2", "headers": {"Authorization": "Bearer ${env:LINEAR_KEY}"}},
    "everything": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-everything"]}
  }
}`)
	// VS Code's format: "servers", "type", inputs, comments, trailing commas.
	write(t, srcs[2].Path, `// VS Code user MCP config
{
  "inputs": [
    {"type": "promptString", "id": "token", "description": "API token", "password": true},
  ],
  "servers": {
    "github": {"type": "stdio", "command": "docker", "args": ["run", "-i", "ghcr.io/github/github-mcp-server"]},
    "remote": {
      "type": "http",
      "url": "https://api.example.com/mcp",
      "headers": {"Authorization": "Bearer ${input:token}"}, // prompts in VS Code
    },
    "legacy": {"type": "sse", "url": "http://localhost:3001/sse"},
    "ws": {"command": "node", "args": ["${workspaceFolder}/server.js", "${userHome}/data"], "envFile": "${userHome}/.env"},
  },
}`)
	broken := ImportSource{App: "Windsurf", Path: filepath.Join(home, "broken.json")}
	write(t, broken.Path, `{"mcpServers": {`)
	missing := ImportSource{App: "Nowhere", Path: filepath.Join(home, "nope.json")}

	dst := filepath.Join(home, "tether", "mcp.json")
	rep, err := ImportServers(dst, append(srcs, broken, missing))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Created || rep.Dst != dst || len(rep.Sources) != 5 {
		t.Fatalf("report = %+v", rep)
	}
	claude, cursor, vscode, bad, none := rep.Sources[0], rep.Sources[1], rep.Sources[2], rep.Sources[3], rep.Sources[4]

	eq := func(what string, got []string, want ...string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	skipped := func(sr SourceReport) []string {
		var out []string
		for _, s := range sr.Skipped {
			out = append(out, s.Name+": "+s.Reason)
		}
		return out
	}
	eq("claude imported", claude.Imported, "github", "fetch", "my-files")
	eq("claude skipped", skipped(claude),
		`broken: has neither "command" nor "url"`,
		`badenv: invalid: "env": expected a string, not a number`)
	eq("cursor imported", cursor.Imported, "fetch-cursor", "linear")
	eq("cursor skipped", skipped(cursor),
		`github: same server as "github" from Claude Desktop`,
		`everything: "everything" is already in mcp.json`)
	eq("vscode imported", vscode.Imported, "github-vscode", "remote", "legacy", "ws")
	if !claude.Found || !cursor.Found || !vscode.Found || !bad.Found || none.Found {
		t.Errorf("found flags: %+v", rep.Sources)
	}
	if bad.Error == "" || !strings.Contains(bad.Error, "line 1:") || len(bad.Imported) != 0 {
		t.Errorf("broken source: %+v", bad)
	}
	warn := strings.Join(append(append(claude.Warnings, cursor.Warnings...), vscode.Warnings...), "\n")
	for _, w := range []string{
		`my files: renamed to "my-files"`,
		`fetch: imported as "fetch-cursor" (Claude Desktop already has "fetch")`,
		`remote: ${input:token} is a VS Code prompt`,
		`legacy: uses the old SSE transport`,
		`ws: ${workspaceFolder} is an editor variable`,
		`ws: "envFile" is not read by Tether`,
	} {
		if !strings.Contains(warn, w) {
			t.Errorf("warnings lack %q:\n%s", w, warn)
		}
	}
	if strings.Contains(warn, "SECRET") {
		t.Error("a warning shows a secret")
	}
	eq("all imported", rep.Imported(), "github", "fetch", "my-files", "fetch-cursor", "linear", "github-vscode", "remote", "legacy", "ws")

	// The result is a valid Tether config in which every import is disabled.
	t.Setenv("LINEAR_KEY", "lin_123")
	cfg, err := Load(dst)
	if err != nil {
		t.Fatalf("%v\n%s", err, read(t, dst))
	}
	if len(cfg.Servers) != 0 {
		t.Errorf("imports arrived enabled: %v", cfg.Servers)
	}
	byName := map[string]ServerEntry{}
	for _, e := range cfg.Entries {
		byName[e.Name] = e
	}
	for _, n := range rep.Imported() {
		if e, ok := byName[n]; !ok || !e.Disabled {
			t.Errorf("%s: %+v", n, e)
		}
	}
	if h := byName["linear"].Spec.Headers["Authorization"]; h != "Bearer lin_123" {
		t.Errorf("${env:X} not converted: %q", h)
	}
	if u := byName["linear"].Spec.URL; u != "https://mcp.linear.app/mcp?a=1&b=2" {
		t.Errorf("url = %q", u)
	}
	if h := byName["remote"].Spec.Headers["Authorization"]; h != "Bearer ${input:token}" {
		t.Errorf("input placeholder not kept: %q", h)
	}
	if a := byName["ws"].Spec.Args; len(a) != 2 || a[1] != home+"/data" {
		t.Errorf("${userHome} not converted: %q", a)
	}
	if e := byName["github"].Spec.Env["GITHUB_PERSONAL_ACCESS_TOKEN"]; e != "ghp_SECRET" {
		t.Errorf("env not copied: %q", e)
	}
	if !strings.Contains(read(t, dst), "// A test server with many tools.") {
		t.Error("example comments lost")
	}

	// Importing again adds nothing and says why.
	before := read(t, dst)
	rep2, err := ImportServers(dst, srcs)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Created || len(rep2.Imported()) != 0 || read(t, dst) != before {
		t.Errorf("second import changed things: %+v", rep2)
	}
	for _, sr := range rep2.Sources {
		for _, s := range sr.Skipped {
			if !strings.Contains(s.Reason, "already in mcp.json") && !strings.Contains(s.Reason, "neither") && !strings.Contains(s.Reason, "invalid") && !strings.Contains(s.Reason, "same server") {
				t.Errorf("second run: %s skipped for %q", s.Name, s.Reason)
			}
		}
	}
}

func TestImportIntoBrokenDst(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	src := ImportSource{App: AppCursor, Path: filepath.Join(home, ".cursor", "mcp.json")}
	write(t, src.Path, `{"mcpServers": {"a": {"command": "x"}}}`)
	dst := filepath.Join(home, "tether", "mcp.json")
	write(t, dst, `{"mcpServers": {`)
	if _, err := ImportServers(dst, []ImportSource{src}); err == nil || !strings.Contains(err.Error(), "line 1:") {
		t.Errorf("err = %v", err)
	}
	if read(t, dst) != `{"mcpServers": {` {
		t.Error("broken dst was changed")
	}
}
