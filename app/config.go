package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/tether-dev/tether/mcpchild"
)

// Config is a parsed mcp.json (Claude Desktop format) with Tether's own
// optional per-server keys. This is the minimal loader; hot reload, .env
// files and tool allow/deny lists come later.
type Config struct {
	// Servers holds every enabled server, with ${VAR} already expanded.
	Servers map[string]mcpchild.Spec
	// Eras holds the servers whose "era" key pins the protocol generation.
	Eras map[string]mcpchild.Era
	// Disabled lists the servers skipped because of "disabled": true, sorted.
	Disabled []string
	// Missing lists "server: VAR" for every ${VAR} that was not set.
	Missing []string
}

// serverEntry is one "mcpServers" value. Unknown keys are ignored (not
// rejected), so configs written for other apps keep working.
type serverEntry struct {
	mcpchild.Spec
	Disabled bool   `json:"disabled,omitempty"`
	Era      string `json:"era,omitempty"`
}

// LoadConfig reads and parses the mcp.json at path. Variables are expanded
// from this process's environment.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := ParseConfig(data, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses mcp.json content. lookup expands ${VAR} references
// (nil expands nothing). A syntax error is reported with line:column, because
// a byte offset is useless to someone editing the file by hand.
func ParseConfig(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	var doc struct {
		MCPServers map[string]json.RawMessage `json:"mcpServers"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, withPosition(data, err)
	}
	cfg := &Config{Servers: map[string]mcpchild.Spec{}, Eras: map[string]mcpchild.Era{}}
	names := make([]string, 0, len(doc.MCPServers))
	for name := range doc.MCPServers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		var e serverEntry
		if err := json.Unmarshal(doc.MCPServers[name], &e); err != nil {
			return nil, fmt.Errorf("server %q: %w", name, withPosition(doc.MCPServers[name], err))
		}
		if e.Disabled {
			cfg.Disabled = append(cfg.Disabled, name)
			continue
		}
		if e.Command == "" && e.URL == "" {
			return nil, fmt.Errorf("server %q: needs a \"command\" (or a \"url\")", name)
		}
		switch e.Era {
		case "":
		case string(mcpchild.Era2025), string(mcpchild.Era2026):
			cfg.Eras[name] = mcpchild.Era(e.Era)
		default:
			return nil, fmt.Errorf("server %q: era must be \"2025\" or \"2026\", not %q", name, e.Era)
		}
		spec := e.Spec
		if lookup != nil {
			var missing []string
			spec, missing = spec.Expand(lookup)
			for _, v := range missing {
				cfg.Missing = append(cfg.Missing, name+": "+v)
			}
		}
		spec.Name = name
		cfg.Servers[name] = spec
	}
	return cfg, nil
}

// withPosition turns the byte offset of a JSON error into line:column.
func withPosition(data []byte, err error) error {
	var off int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	}
	if off < 0 {
		return fmt.Errorf("parse config: %w", err)
	}
	line, col := position(data, off)
	return fmt.Errorf("line %d:%d: %w", line, col, err)
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
