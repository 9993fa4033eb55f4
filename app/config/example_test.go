package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestEnsureExampleConfig(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tether", "mcp.json")
	created, err := EnsureExample(path)
	if err != nil || !created {
		t.Fatalf("created=%v err=%v", created, err)
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v", fi.Mode().Perm())
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("example does not parse: %v", err)
	}
	if len(cfg.Servers) != 0 || len(cfg.Missing) != 0 {
		t.Errorf("example enables servers: %v missing %v", cfg.Servers, cfg.Missing)
	}
	kinds := map[ServerKind]int{}
	var filtered bool
	for _, e := range cfg.Entries {
		if !e.Disabled {
			t.Errorf("%s is enabled", e.Name)
		}
		kinds[e.Kind]++
		filtered = filtered || !e.Filter.IsZero()
	}
	if kinds[KindStdio] == 0 || kinds[KindHTTP] == 0 || !filtered {
		t.Errorf("example lacks a stdio, http or filtered server: %v", cfg.Entries)
	}
	if !strings.Contains(read(t, path), "@modelcontextprotocol/server-everything") {
		t.Error("example has no server-everything")
	}

	// Never overwrite.
	write(t, path, `{"mcpServers": {}}`)
	created, err = EnsureExample(path)
	if err != nil || created || read(t, path) != `{"mcpServers": {}}` {
		t.Errorf("overwrote: created=%v err=%v", created, err)
	}
}

// Enabling the example server via SetServerDisabled gives a valid enabled server.
func TestExampleEnable(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "mcp.json")
	if _, err := EnsureExample(path); err != nil {
		t.Fatal(err)
	}
	if err := SetServerDisabled(path, "everything", false); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := cfg.Servers["everything"]; !ok || s.Command != "npx" || len(cfg.Servers) != 1 {
		t.Errorf("servers = %v", cfg.Servers)
	}
	if !strings.Contains(read(t, path), "// A test server with many tools.") {
		t.Error("comments lost")
	}
}
